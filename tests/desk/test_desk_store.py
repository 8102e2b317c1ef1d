"""The desk's tables in the store (migration 6): search, reviews and approvals, dismissed
failures, and a reader that meets a database not yet migrated."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from daemon.clock import FakeClock
from daemon.errors import StaleTransition
from daemon.status import build_snapshot
from daemon.store import State, open_store
from daemon.store.migrations import MIGRATIONS
from daemon.store.records import IndexedResult


def _job(store: Any, name: str, state: State = State.DONE) -> Any:
    job = store.add(rel_path=name, location=f"/in/{name}", sha256=name, size=1, mtime_ns=1)
    if state is State.DONE:
        store.transition(job.id, State.QUEUED, State.SUBMITTING, attempts=1)
        store.transition(job.id, State.SUBMITTING, State.RECEIVED, result_dir=name)
        return store.transition(job.id, State.RECEIVED, State.DONE)
    store.transition(job.id, State.QUEUED, State.FAILING, error="x", message="m")
    return store.transition(job.id, State.FAILING, State.FAILED)


def _indexed(job_id: int, name: str, md: str, total: str = "45.99") -> IndexedResult:
    return IndexedResult(
        job_id=job_id,
        name=name,
        folder="",
        markdown=md,
        fields=[{"label": "total", "text": total, "score": 0.9}],
        review={"state": "pending", "fields": ["total"]},
    )


def test_results_are_searched_by_words_accents_and_field_values(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    a, b = _job(store, "a.pdf"), _job(store, "b.pdf")
    store.index_results([_indexed(a.id, "a.pdf", "# Informe\n\nConsumo de gasóleo en enero")])
    store.index_results([_indexed(b.id, "b.pdf", "Recibo", total="46.99")])
    assert [i for i, _ in store.search("gasoleo")] == [a.id]  # accents do not matter
    assert [i for i, _ in store.search("GASÓ")] == [a.id]  # a prefix, any case
    assert [i for i, _ in store.search("46.99")] == [b.id]  # field values too
    assert [i for i, _ in store.search("b.pdf")] == [b.id]  # and names
    assert store.search("informe recibo") == []  # every word must match
    snippet = dict(store.search("enero"))[a.id]
    assert "\x02enero\x03" in snippet
    for hostile in ('"', "*", "a OR", "NEAR(", "col:x", "'; DROP TABLE jobs; --", "\x00"):
        store.search(hostile)  # never an FTS5 syntax error
    # written again (an approval): the old text goes
    store.index_results([_indexed(b.id, "b.pdf", "Recibo", total="47.00")])
    assert store.search("46.99") == [] and [i for i, _ in store.search("47.00")] == [b.id]
    assert store.under_review() == [a.id, b.id]
    store.clear_index()
    assert store.search("gasoleo") == [] and sorted(store.unindexed(10)) == [a.id, b.id]


def test_an_approval_is_an_intent_then_an_outcome(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    store = open_store(tmp_path / "s.db", clock=clock)
    job = _job(store, "a.pdf")
    kept = store.save_corrections(job.id, [{"label": "total", "text": "46.99"}])
    kept = store.save_corrections(job.id, [{"label": "fecha", "text": "2025-12-23"}])
    assert kept.state == "editing" and [c["label"] for c in kept.corrections] == ["total", "fecha"]
    asked = store.request_approval(job.id, "dashboard")
    assert asked.state == "approving" and asked.requested_at == 1000.0
    assert len(asked.corrections) == 2  # the corrections travel with the intent
    with pytest.raises(StaleTransition):
        store.request_approval(job.id, "dashboard")  # one at a time
    with pytest.raises(StaleTransition):
        store.save_corrections(job.id, [{"label": "total", "text": "1"}])  # frozen meanwhile
    assert [r.job_id for r in store.approvals_due(clock.now())] == [job.id]
    store.approval_progress(job.id, {"updated": True})
    store.approval_later(job.id, attempts=1, not_before=1010.0, error="network", message="m")
    assert store.approvals_due(clock.now()) == [] and store.next_approval() == 1010.0
    clock.advance(10)
    (due,) = store.approvals_due(clock.now())
    assert due.remote == {"updated": True} and due.attempts == 1
    store.approval_done(_indexed(job.id, "a.pdf", "x"))
    done = store.review(job.id)
    assert done is not None and done.state == "approved" and done.error is None
    assert store.next_approval() is None
    # a person may correct and approve again later; the landed calls start afresh
    again = store.request_approval(job.id, "dashboard")
    assert again.remote == {} and again.attempts == 0
    store.approval_failed(job.id, "rejected", "gone")
    assert store.review(job.id).state == "failed"  # type: ignore[union-attr]


def test_dismissed_failures_leave_the_counts_and_keep_their_row(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    done, one, two = (
        _job(store, "a.pdf"),
        _job(store, "b.pdf", State.FAILED),
        _job(store, "c.pdf", State.FAILED),
    )
    assert store.counts() == {"done": 1, "failed": 2}
    assert store.dismiss([one.id, done.id, 999]) == [one.id]  # only failed ones
    assert store.counts() == {"done": 1, "failed": 1}
    assert [j.id for j in store.jobs(hide_dismissed=True)] == [done.id, two.id]
    assert [j.id for j in store.jobs()] == [done.id, one.id, two.id]
    # "retry every failed document" leaves the dismissed one where it is...
    assert [j.id for j in store.retry()] == [two.id]
    # ...naming it brings it back, and it counts again
    assert [j.id for j in store.retry([one.id])] == [one.id]
    assert store.dismissed_ids() == set() and store.counts() == {"done": 1, "queued": 2}


def test_a_reader_of_a_database_not_migrated_yet_still_counts(tmp_path: Path) -> None:
    """``docinbox status`` after an upgrade, before the new daemon ran: schema 3."""
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    for number, sql in MIGRATIONS:
        if number <= 3:
            conn.executescript(sql + f"; PRAGMA user_version = {number};")
    conn.execute(
        "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, state, created_at, "
        "updated_at) VALUES ('a.pdf', '/f/a.pdf', 's', 1, 1, 'failed', 0, 0)"
    )
    conn.commit()
    conn.close()
    reader = open_store(path, readonly=True)
    assert reader.counts() == {"failed": 1}
    assert len(reader.jobs(hide_dismissed=True)) == 1
    snap = build_snapshot(reader, 0.0)  # no parts column, no budgets table yet
    assert snap.counts == {"failed": 1} and snap.services == ()
    reader.close()
    writer = open_store(path)  # the daemon migrates it
    assert writer.counts() == {"failed": 1} and writer.dismissed_ids() == set()
