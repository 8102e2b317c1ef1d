"""Notifications: coalesced, on changes only, once per problem — driven by a fake clock;
one notification center per daemon, fed by the snapshots it publishes; the desktop's
service absent is one INFO line.  (A real notification daemon receiving them:
tests/acceptance/test_desktop.py.)"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from daemon.control import DocumentSummary, ServiceHealth, StatusSnapshot
from daemon.notify import Notice, NotificationCenter, Notifier
from daemon.notify.desktop import DesktopSender, session_bus_address
from daemon.notify.problems import problems_of
from daemon.tray.testing import FakeControl


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Notifier, Clock, list[tuple[str, str]]]:
    clock = Clock()
    sent: list[tuple[str, str]] = []
    n = Notifier(lambda x: sent.append((x.title, x.message)), clock=clock, quiet=5, window=60)
    return n, clock, sent


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
    assert sent[-1] == ("docinbox: quota used up", "mineru: quota exhausted")
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


# --- what a notification's action opens ---------------------------------------------------


def notices(tmp_path: Path) -> tuple[Notifier, Clock, list[Notice]]:
    clock = Clock()
    sent: list[Notice] = []
    n = Notifier(sent.append, clock=clock, outbox=tmp_path / "out", log_path=tmp_path / "log")
    return n, clock, sent


def test_one_document_opens_its_result_many_open_the_outbox(tmp_path: Path) -> None:
    n, clock, sent = notices(tmp_path)
    n.observe(snap())
    done = DocumentSummary(7, "invoice.pdf", "done", result_dir=tmp_path / "out/invoice")
    n.observe(snap(done=1, recent=(done,)))
    assert n.next_due() == 5.0
    clock.now += 5
    n.tick()
    assert sent[-1] == Notice("docinbox", "invoice.pdf processed", "done", tmp_path / "out/invoice")
    more = tuple(
        DocumentSummary(i, f"{i}.pdf", "done", result_dir=tmp_path / f"out/{i}") for i in (8, 9)
    )
    n.observe(snap(done=3, recent=more))
    n.flush()
    assert (sent[-1].message, sent[-1].target) == ("2 documents processed", tmp_path / "out")
    assert n.next_due() is None


def test_a_failure_opens_its_error_file_and_a_quota_the_log(tmp_path: Path) -> None:
    n, _clock, sent = notices(tmp_path)
    n.observe(snap())
    error = tmp_path / "failed/scan.tiff.error.json"
    bad = DocumentSummary(9, "scan.tiff", "failed", error="unsupported", error_file=error)
    n.observe(snap(failed=1, recent=(bad,)))
    n.flush()
    assert (sent[-1].kind, sent[-1].target) == ("failed", error)
    quota = ServiceHealth("mineru", "paused", reason="quota exhausted", error="quota")
    key = ServiceHealth("nanonets", "paused", reason="invalid API key", error="credentials")
    broken = snap(failed=1, services=(quota, key))
    n.observe(broken, problems_of(broken))
    assert [(x.kind, x.target) for x in sent[-2:]] == [
        ("budget", tmp_path / "log"),
        ("paused", tmp_path / "log"),
    ]


# --- the center: one per daemon, tray or no tray --------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.notices: list[Notice] = []
        self.arrived = threading.Event()

    async def send(self, notice: Notice) -> None:
        self.notices.append(notice)
        self.arrived.set()


def test_the_center_announces_what_the_daemon_publishes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="docinbox.notify")
    control = FakeControl(tmp_path, StatusSnapshot(starting=True))
    recorder = Recorder()
    center = NotificationCenter(control, sender=lambda: recorder, quiet=0.05)
    center.start()
    try:
        control.set_snapshot(snap(done=2))  # the store opened: earlier runs' documents
        doc = DocumentSummary(3, "recibo.pdf", "done", result_dir=tmp_path / "outbox/recibo")
        control.set_snapshot(snap(done=3, recent=(doc,)))
        assert recorder.arrived.wait(10)
    finally:
        center.stop()
    assert recorder.notices == [
        Notice("docinbox", "recibo.pdf processed", "done", tmp_path / "outbox/recibo")
    ]
    assert "docinbox: recibo.pdf processed" in [r.getMessage() for r in caplog.records]
    assert control.subscribers == 0


def test_documents_finished_just_before_a_stop_are_still_announced(tmp_path: Path) -> None:
    control = FakeControl(tmp_path, snap())
    recorder = Recorder()
    center = NotificationCenter(control, sender=lambda: recorder, quiet=60)
    center.start()
    control.set_snapshot(snap())
    control.set_snapshot(snap(done=2))
    center.stop()  # the quiet spell has not passed: the stop sends it
    assert [x.message for x in recorder.notices] == ["2 documents processed"]


def test_no_session_bus_is_one_info_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    import asyncio
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the session bus is Linux's")
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # no bus socket in it
    assert session_bus_address() is None
    caplog.set_level(logging.DEBUG)
    sender = DesktopSender()

    async def two() -> None:
        await sender.send(Notice("docinbox", "a.pdf processed"))
        await sender.send(Notice("docinbox", "b.pdf processed"))

    asyncio.run(two())
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("docinbox")]
    assert lines == [
        (
            logging.INFO,
            "desktop notifications unavailable (no session bus); they go to the log only",
        )
    ]


def test_the_systemd_user_bus_counts_as_the_session_bus(tmp_path: Path) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "bus"))
        env = {"XDG_RUNTIME_DIR": str(tmp_path)}
        assert session_bus_address(env) == f"unix:path={tmp_path / 'bus'}"
    assert session_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == "unix:path=/x"
