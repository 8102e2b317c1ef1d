"""Notifications: coalesced, on changes only, once per problem — driven by a fake clock."""

from __future__ import annotations

from daemon.control import DocumentSummary, ServiceHealth, StatusSnapshot
from daemon.tray.notify import Notifier
from daemon.tray.state import problems_of


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Notifier, Clock, list[tuple[str, str]]]:
    clock = Clock()
    sent: list[tuple[str, str]] = []
    return Notifier(lambda t, m: sent.append((t, m)), clock=clock, quiet=5, window=60), clock, sent


def snap(
    done: int = 0, failed: int = 0, recent: tuple[DocumentSummary, ...] = (), **kw: object
) -> StatusSnapshot:
    return StatusSnapshot(counts={"done": done, "failed": failed}, recent=recent, **kw)  # type: ignore[arg-type]


def test_first_snapshot_is_a_baseline() -> None:
    n, clock, sent = make()
    n.observe(snap(done=40, failed=3))
    clock.now += 100
    n.tick()
    assert sent == []


def test_a_burst_becomes_one_message_after_a_quiet_spell() -> None:
    n, clock, sent = make()
    n.observe(snap())
    for done in (1, 3, 5):
        clock.now += 2
        n.observe(snap(done=done))
    assert sent == []  # still arriving
    clock.now += 4.9
    n.tick()
    assert sent == []
    clock.now += 0.2
    n.tick()
    assert sent == [("docinbox", "5 documents processed")]
    clock.now += 100
    n.tick()
    assert len(sent) == 1  # nothing new, nothing sent


def test_one_document_is_named() -> None:
    n, clock, sent = make()
    n.observe(snap())
    n.observe(snap(done=1, recent=(DocumentSummary(7, "invoice.pdf", "done"),)))
    clock.now += 5
    n.tick()
    assert sent == [("docinbox", "invoice.pdf processed")]


def test_a_steady_stream_is_reported_at_least_every_window() -> None:
    n, clock, sent = make()
    n.observe(snap())
    for done in range(1, 40):
        clock.now += 2
        n.observe(snap(done=done))
    # first at t+2, window 60 s: the batch closes at t+62 with documents 1..31
    assert sent == [("docinbox", "31 documents processed")]


def test_failures_are_counted_and_a_single_one_explained() -> None:
    n, clock, sent = make()
    n.observe(snap())
    n.observe(snap(done=4, failed=1))
    clock.now += 5
    n.tick()
    assert sent == [("docinbox: some documents failed", "4 documents processed, 1 failed")]
    bad = DocumentSummary(9, "scan.tiff", "failed", error="unsupported", message="not a document")
    n.observe(snap(done=4, failed=2, recent=(bad,)))
    n.flush()
    assert sent[-1] == ("docinbox: a document failed", "scan.tiff (not a document) failed")


def test_retrying_failed_documents_is_not_news() -> None:
    n, clock, sent = make()
    n.observe(snap(done=1, failed=3))
    n.observe(snap(done=1, failed=0))
    clock.now += 10
    n.tick()
    assert sent == []


def test_a_problem_is_announced_once_while_it_lasts() -> None:
    n, clock, sent = make()
    n.renotify_after = 3600
    bad_key = ServiceHealth("nanonets", "paused", reason="invalid API key", error="auth")
    broken = snap(services=(bad_key,))
    for _ in range(5):
        clock.now += 10
        n.observe(broken, problems_of(broken))
    assert sent == [("docinbox needs attention", "nanonets: invalid API key")]
    # cleared and back soon after: still the same problem, no second pop-up
    n.observe(snap(), ())
    n.observe(broken, problems_of(broken))
    assert len(sent) == 1
    # back after a long while: worth telling again
    n.observe(snap(), ())
    clock.now += 3600
    n.observe(broken, problems_of(broken))
    assert len(sent) == 2
    # a different problem is announced at once
    quota = ServiceHealth("mineru", "paused", reason="quota exhausted", error="quota")
    both = snap(services=(bad_key, quota))
    n.observe(both, problems_of(both))
    assert sent[-1] == ("docinbox needs attention", "mineru: quota exhausted")
    assert len(sent) == 3


# --- start-up: the engine answers "starting" until its state is open -------------------------

STARTING = StatusSnapshot(starting=True)  # what DaemonControl.snapshot() returns then


def test_the_baseline_is_the_first_snapshot_of_a_started_daemon() -> None:
    """A restart must not announce the documents of earlier runs as new."""
    n, clock, sent = make()
    old = (DocumentSummary(3, "old.pdf", "failed", error="unreadable"),)
    n.observe(STARTING, problems_of(STARTING))
    clock.now += 1
    n.observe(snap(done=3, failed=1, recent=old))  # the store is open: earlier runs' documents
    clock.now += 100
    n.tick()
    assert sent == []
    new = DocumentSummary(4, "recibo.pdf", "done")
    n.observe(snap(done=4, failed=1, recent=(new, *old)))
    clock.now += 5
    n.tick()
    assert sent == [("docinbox", "recibo.pdf processed")]


def test_starting_is_not_announced() -> None:
    n, clock, sent = make()
    for _ in range(3):
        n.observe(STARTING, problems_of(STARTING))
        clock.now += 1
    n.flush()
    assert sent == []
