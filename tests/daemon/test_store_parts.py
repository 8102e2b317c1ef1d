"""The store's side of issue 16: parts are jobs linked to their document, recorded with
it in one commit, left out of what reads documents, and retried alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from daemon.errors import StaleTransition
from daemon.store import State, open_store
from daemon.store.migrations import migrate


def _doc(store: Any, name: str = "book.pdf", sha: str = "whole") -> Any:
    return store.add(rel_path=name, location=f"/in/{name}", sha256=sha, size=100, mtime_ns=1)


def _part(n: int, first: int, last: int, *, sha: str | None = None) -> dict[str, Any]:
    return {
        "rel_path": f"book.part-{n:03d}.pdf",
        "location": f"/work/1/parts/part-{n:03d}.pdf",
        "sha256": sha or f"part{n}",
        "size": 10,
        "mtime_ns": 2,
        "pages": last - first + 1,
        "first_page": first,
        "last_page": last,
        "options": {"is_ocr": True},
    }


def _split(store: Any, doc: Any, *parts: dict[str, Any]) -> list[Any]:
    return list(
        store.split_into(
            doc.id,
            sha256=doc.sha256,
            kind="pdf",
            pages=400,
            service="mineru",
            options={"is_ocr": True},
            parts=list(parts),
        )
    )


def test_a_document_and_its_parts_are_recorded_together(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    doc = _doc(store)
    parts = _split(store, doc, _part(1, 1, 200), _part(2, 201, 400))
    parent = store.get(doc.id)
    assert parent.state is State.SPLIT and parent.parts == 2 and parent.service == "mineru"
    assert [(p.part, p.first_page, p.last_page, p.state) for p in parts] == [
        (1, 1, 200, State.QUEUED),
        (2, 201, 400, State.QUEUED),
    ]
    assert all(p.parent_id == doc.id and p.service == "mineru" for p in parts)
    assert store.parts_of([doc.id]) == {doc.id: parts}
    # Reading documents leaves parts out; the queue hands them out like any job.
    assert store.counts() == {"split": 1}
    assert [j.id for j in store.jobs()] == [doc.id]
    assert len(store.jobs(parts=True)) == 3
    assert [j.id for j in store.due_for("mineru", 1e12, 10)] == [p.id for p in parts]
    assert store.uninspected(10) == [] and store.unrouted(10) == []
    assert store.clear_routes() == 0  # a part keeps its document's service
    assert store.active_signatures(["book.part-001.pdf"]) == set()
    assert store.in_state(State.QUEUED, documents_only=True) == []


def test_a_document_that_changed_is_not_split(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    doc = _doc(store)
    store.add(rel_path="book.pdf", location="/in/book.pdf", sha256="newer", size=1, mtime_ns=3)
    with pytest.raises(StaleTransition):
        _split(store, doc, _part(1, 1, 200))
    assert store.parts_of([doc.id]) == {doc.id: []}
    assert store.counts() == {"queued": 1}


def test_a_dropped_file_named_like_a_part_is_a_document_of_its_own(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    _split(store, _doc(store), _part(1, 1, 200))
    other = store.add(
        rel_path="book.part-001.pdf", location="/in/x", sha256="part1", size=10, mtime_ns=2
    )
    assert other is not None and other.parent_id is None


def test_retry_puts_back_only_the_failed_parts(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    doc = _doc(store)
    one, two, whole = _split(
        store, doc, _part(1, 1, 150), _part(2, 151, 300), _part(3, 301, 400, sha="whole")
    )
    store.transition(one.id, State.QUEUED, State.SUBMITTING, attempts=1, remote={"b": 1})
    store.transition(one.id, State.SUBMITTING, State.RECEIVED)
    for part in (two, whole):
        store.transition(part.id, State.QUEUED, State.FAILING, error="rejected", remote={"b": 2})
        store.transition(part.id, State.FAILING, State.FAILED)
    store.transition(doc.id, State.SPLIT, State.FAILING, error="rejected")
    store.transition(doc.id, State.FAILING, State.FAILED, location="/failed/book.pdf")
    assert store.counts() == {"failed": 1}
    # A part id is not a document: only its document is retried.
    assert store.retry([two.id]) == []
    [again] = store.retry()
    assert again.id == doc.id and again.state is State.SPLIT and again.error is None
    parts = {p.id: p for p in store.parts_of([doc.id])[doc.id]}
    assert parts[one.id].state is State.RECEIVED and parts[one.id].remote == {"b": 1}
    assert parts[two.id].state is State.QUEUED and parts[two.id].remote == {}
    assert parts[two.id].location == "/work/1/parts/part-002.pdf"
    # The part that is the whole file under a page range follows the original.
    assert parts[whole.id].location == "/failed/book.pdf"


def test_retry_of_a_document_whose_parts_were_all_received_merges_again(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "s.db")
    doc = _doc(store)
    [part] = _split(store, doc, _part(1, 1, 400))
    store.transition(part.id, State.QUEUED, State.SUBMITTING)
    store.transition(part.id, State.SUBMITTING, State.RECEIVED)
    store.transition(doc.id, State.SPLIT, State.RECEIVED)
    store.transition(doc.id, State.RECEIVED, State.FAILING, error="internal")
    store.transition(doc.id, State.FAILING, State.FAILED)
    [again] = store.retry([doc.id])
    assert again.state is State.RECEIVED


def _v3(path: Path) -> None:
    """A database as docinbox left it before issue 16 (schema 3), with a job in it."""
    from daemon.store import migrations

    conn = sqlite3.connect(path)
    for number, step in migrations.MIGRATIONS:
        if number > 3:
            break
        assert isinstance(step, str)
        conn.executescript("BEGIN;" + step + f"; PRAGMA user_version = {number};")
    conn.execute(
        "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, state, created_at, "
        "updated_at, hint) VALUES ('a.pdf', '/in/a.pdf', 's', 1, 1, 'failed', 1, 1, 'h')"
    )
    conn.commit()
    conn.close()


def test_migration_5_keeps_rows_and_indexes_and_allows_split(tmp_path: Path) -> None:
    _v3(tmp_path / "s.db")
    store = open_store(tmp_path / "s.db")
    [job] = store.jobs()
    assert job.rel_path == "a.pdf" and job.hint == "h" and job.parts is None
    conn = sqlite3.connect(tmp_path / "s.db")
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"jobs_state", "jobs_rel_path", "jobs_sha256", "jobs_service", "jobs_parent"} <= indexes
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE jobs SET state = 'bogus'")
    conn.execute("UPDATE jobs SET state = 'split'")


def test_migration_5_keeps_columns_an_earlier_migration_added(tmp_path: Path) -> None:
    """Another migration numbered before 5 may add a column to jobs: the rebuild keeps it
    (and its values), since it copies the table's own definition."""
    conn = sqlite3.connect(":memory:")
    from daemon.store import migrations

    for number, step in migrations.MIGRATIONS[:3]:
        assert isinstance(step, str)
        conn.executescript("BEGIN;" + step + f"; PRAGMA user_version = {number};")
    conn.execute("ALTER TABLE jobs ADD COLUMN budget REAL DEFAULT 0")
    conn.execute(
        "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, state, created_at, "
        "updated_at, budget) VALUES ('a', 'a', 's', 1, 1, 'queued', 1, 1, 2.5)"
    )
    conn.commit()
    assert migrate(conn) == migrations.MIGRATIONS[-1][0]
    assert conn.execute("SELECT budget, parent_id FROM jobs").fetchone() == (2.5, None)
