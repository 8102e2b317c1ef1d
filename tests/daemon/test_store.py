from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from daemon.clock import FakeClock
from daemon.errors import StaleTransition, StoreError
from daemon.store import State, open_store
from daemon.store.migrations import MIGRATIONS


def _add(store, name: str = "a.pdf", sha: str = "s1"):  # type: ignore[no-untyped-def]
    return store.add(rel_path=name, location=f"/in/{name}", sha256=sha, size=10, mtime_ns=1)


def test_schema_is_migrated_and_wal(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == MIGRATIONS[-1][0]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    # opening again is a no-op migration, data kept
    store = open_store(tmp_path / "s.db")
    assert store.counts() == {}


def test_same_path_and_content_is_queued_once(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    first = _add(store)
    assert first is not None
    assert _add(store) is None
    # Same name, other content, before the first was sent: the file changed under the same
    # name (a scanner still adding pages) — the same job, refreshed, inspected again.
    refreshed = _add(store, sha="s2")
    assert refreshed is not None and refreshed.id == first.id and refreshed.sha256 == "s2"
    assert _add(store, name="b.pdf") is not None  # same content, other name
    assert store.counts() == {"queued": 2}
    # Once the first has been sent, a new version under the same name is a new document.
    store.transition(first.id, State.QUEUED, State.SUBMITTING, attempts=1)
    assert _add(store, sha="s3").id != first.id
    assert store.counts() == {"queued": 2, "submitting": 1}


def test_transitions_are_guarded(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(tmp_path / "s.db", clock=clock)
    job = _add(store)
    job = store.transition(job.id, State.QUEUED, State.SUBMITTING, attempts=1)
    with pytest.raises(StaleTransition, match="is submitting, expected queued"):
        store.transition(job.id, State.QUEUED, State.SUBMITTING)
    with pytest.raises(StaleTransition, match="not a transition"):
        store.transition(job.id, State.SUBMITTING, State.DONE)
    clock.advance(5)
    job = store.transition(job.id, State.SUBMITTING, State.RECEIVED, remote={"id": "r1"})
    assert job.remote == {"id": "r1"} and job.updated_at == clock.now()
    job = store.transition(job.id, State.RECEIVED, State.DONE)
    assert job.finished_at == clock.now()
    assert [h["dst"] for h in store.history(job.id)] == ["queued", "submitting", "received", "done"]


def test_only_one_of_two_racing_updates_wins(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    job = _add(store)
    wins, losses = [], []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            store.transition(job.id, State.QUEUED, State.SUBMITTING)
            wins.append(1)
        except StaleTransition:
            losses.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(wins), len(losses)) == (1, 7)


def test_retry_puts_failed_back(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    job = _add(store)
    store.transition(job.id, State.QUEUED, State.FAILING, error="x", message="m", attempts=3)
    store.transition(job.id, State.FAILING, State.FAILED)
    [again] = store.retry()
    assert again.state is State.QUEUED and again.attempts == 0 and again.error is None
    assert store.retry() == []


def test_a_file_that_is_not_a_database_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot be used as docinbox's state database"):
        open_store(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_readonly_open_of_missing_db_is_clear(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no state database"):
        open_store(tmp_path / "nope.db", readonly=True)


def test_status_during_start_up_sees_an_empty_store(tmp_path: Path) -> None:
    """The file exists but the daemon has not created its tables yet."""
    sqlite3.connect(tmp_path / "s.db").close()
    store = open_store(tmp_path / "s.db", readonly=True)
    assert store.counts() == {} and store.jobs() == []


def test_transition_many_commits_the_good_moves_and_returns_the_stale(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    a, b, c = _add(store, "a.pdf", "1"), _add(store, "b.pdf", "2"), _add(store, "c.pdf", "3")
    store.transition(b.id, State.QUEUED, State.SUBMITTING)
    out = store.transition_many(
        [
            (a.id, State.QUEUED, State.SUBMITTING, {"attempts": 1}),
            (b.id, State.QUEUED, State.SUBMITTING, {}),  # stale: b moved on already
            (c.id, State.QUEUED, State.DONE, {}),  # not a transition at all
        ]
    )
    assert out[0].state is State.SUBMITTING and out[0].attempts == 1  # type: ignore[union-attr]
    assert isinstance(out[1], StaleTransition) and isinstance(out[2], StaleTransition)
    store.close()
    # committed, in one transaction, and written to the history like single transitions
    store = open_store(tmp_path / "s.db")
    assert store.get(a.id).state is State.SUBMITTING and store.get(c.id).state is State.QUEUED
    assert [h["dst"] for h in store.history(a.id)] == ["queued", "submitting"]


def test_status_queries_do_not_walk_the_history(tmp_path: Path) -> None:
    """Bench, 2026-12-01: migration 5's parent index also matched ``parent_id IS NULL``,
    so every status snapshot (four a second while busy) walked every document ever
    processed, and the latest finished ones were sorted out of the whole history. The
    plans SQLite chooses for what ``docinbox status`` and the tray ask must use the state
    and update-time indexes."""
    from daemon.status import build_snapshot

    store = open_store(tmp_path / "s.db")
    store.add_many(
        [
            dict(rel_path=f"d{i}.pdf", location=f"/in/d{i}.pdf", sha256=f"{i}", size=1, mtime_ns=1)
            for i in range(50)
        ]
    )
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE jobs SET state = 'done' WHERE id % 2 = 0")
    conn.commit()
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    build_snapshot(store, 0.0)
    store._conn.set_trace_callback(None)
    plans = {}
    for sql in statements:
        if sql.startswith("SELECT") and "FROM jobs" in sql:
            plan = " | ".join(r[3] for r in store._conn.execute("EXPLAIN QUERY PLAN " + sql))
            plans[sql] = plan
    assert plans, statements
    for sql, plan in plans.items():
        assert "jobs_parent" not in plan, (sql, plan)
        assert "SCAN jobs" not in plan or "INDEX" in plan, (sql, plan)
        if "ORDER BY updated_at DESC" in sql:
            assert "jobs_updated" in plan and "TEMP B-TREE" not in plan, (sql, plan)
        if "GROUP BY state" in sql:
            assert "COVERING INDEX jobs_state" in plan, (sql, plan)
