"""run_with_tray without a usable display, and TrayApp's update logic on the dummy backend."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from daemon.control import DocumentSummary, ServiceHealth, StatusSnapshot
from daemon.tray import backend
from daemon.tray.app import BUSY_AT_LEAST, TrayApp, latin1_title, run_with_tray
from daemon.tray.icons import render
from daemon.tray.state import Kind
from daemon.tray.testing import FakeControl


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def run_headless(control: FakeControl, **kw: object) -> tuple[int, threading.Thread]:
    ran_on: list[threading.Thread] = []

    def run_daemon() -> int:
        ran_on.append(threading.current_thread())
        return 3

    code = run_with_tray(control, run_daemon, **kw)  # type: ignore[arg-type]
    return code, ran_on[0]


@pytest.mark.parametrize(
    ("env", "backend_name", "reason"),
    [
        ({"DISPLAY": ":4999"}, "xorg", "xorg: "),  # a display nobody serves
        ({"DISPLAY": ":4999"}, None, "xorg: "),  # the default chain, all failing
        ({"DISPLAY": ":0"}, "no-such-backend", "unknown backend"),
    ],
)
def test_a_display_without_a_tray_gives_one_warning_and_runs_the_daemon_here(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    env: dict[str, str | None],
    backend_name: str | None,
    reason: str,
) -> None:
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    caplog.set_level(logging.INFO)
    code, thread = run_headless(FakeControl(tmp_path), backend=backend_name)
    assert code == 3
    assert thread is threading.main_thread()
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("no tray icon (")
    assert reason in warnings[0]
    assert "\n" not in warnings[0]
    assert "Traceback" not in capfd.readouterr().err


def test_no_tray_forced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    code, thread = run_headless(FakeControl(tmp_path), backend="none")
    assert (code, thread) == (3, threading.main_thread())
    assert warnings_of(caplog) == []


def test_xlib_errors_are_not_import_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reason for catching everything: pystray's xorg backend raises Xlib errors."""
    monkeypatch.setenv("DISPLAY", ":4999")
    with pytest.raises(backend.TrayUnavailable, match=r"xorg: (DisplayConnectionError|Connection)"):
        backend.load("xorg")


def test_backend_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    monkeypatch.delenv("DOCINBOX_TRAY", raising=False)
    assert backend.candidates(platform="linux") == ("sni", "appindicator", "gtk", "xorg")
    assert backend.candidates(platform="darwin") == ("darwin",)
    assert backend.candidates(platform="win32") == ("win32",)
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    assert backend.candidates(platform="linux") == ("xorg",)
    assert backend.candidates("gtk", platform="linux") == ("gtk",)
    monkeypatch.setenv("DOCINBOX_TRAY", "sni")
    assert backend.candidates(platform="linux") == ("sni",)


def test_a_tray_that_dies_while_running_leaves_the_daemon_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """pystray's dummy backend loads but cannot run: the daemon goes on, Control stops it."""
    control = FakeControl(tmp_path, exit_code=0)
    app = TrayApp(control, backend="dummy")
    threading.Thread(target=lambda: (app.icon_ended.wait(10), control.stop()), daemon=True).start()
    caplog.set_level(logging.INFO)
    assert app.run(control.run_daemon) == 0
    assert control.calls == [("stop",)]
    assert any("the icon stopped" in w for w in warnings_of(caplog))
    assert control.subscribers == 0  # unsubscribed on the way out
    assert not any(t.name.startswith("docinbox") for t in threading.enumerate())


class RecordingIcon:
    """Stands in for a pystray icon: records what the tray sets."""

    HAS_NOTIFICATION = True

    def __init__(self) -> None:
        self.icon = None
        self.title = ""
        self.menu = None
        self.notes: list[tuple[str, str | None]] = []

    def notify(self, message: str, title: str | None = None) -> None:
        self.notes.append((message, title))


def test_refresh_updates_icon_tooltip_and_menu_and_never_notifies(tmp_path: Path) -> None:
    """Notifications are daemon.notify's (tests/daemon/test_notify.py), tray or no tray."""
    control = FakeControl(tmp_path, StatusSnapshot(counts={"queued": 2}))
    clock = [0.0]
    app = TrayApp(control, backend="dummy", clock=lambda: clock[0])
    icon = app.icon = RecordingIcon()  # type: ignore[assignment]
    state = app.refresh()
    assert state.kind is Kind.WORKING
    assert icon.icon is None  # unchanged since construction: nothing pushed
    control.set_snapshot(StatusSnapshot(counts={"done": 2}))
    app.refresh()
    assert icon.icon is render(Kind.WORKING, None)  # held a moment after the work
    clock[0] += BUSY_AT_LEAST
    app.refresh()
    assert icon.icon is render(Kind.IDLE, None)
    assert icon.title == "docinbox: idle – 2 done"
    assert icon.menu is not None
    clock[0] += 10
    app.refresh()
    held = ServiceHealth("mineru", "paused", reason="quota exhausted", error="quota")
    control.set_snapshot(StatusSnapshot(counts={"done": 2}, services=(held,)))
    app.refresh()
    assert icon.icon is render(Kind.ERROR, "!")
    assert icon.notes == []


def test_subscription_only_sets_an_event(tmp_path: Path) -> None:
    control = FakeControl(tmp_path)
    app = TrayApp(control, backend="dummy")
    assert not app._wake.is_set()
    app.wake()
    assert app._wake.is_set()


def test_latin1_titles_for_xorg() -> None:
    assert latin1_title("3 queued – uploading ✓ façade…") == "3 queued - uploading + façade..."
    assert latin1_title("東京.pdf") == "??.pdf"


# --- start-up: the tray is created before the daemon has opened its state ---------------------

STARTING = StatusSnapshot(starting=True)  # what DaemonControl.snapshot() returns then


def test_start_up_shows_starting_then_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The daemon's real sequence: "starting", then the store with earlier runs' documents,
    then a new document."""
    caplog.set_level(logging.INFO, logger="docinbox.tray")
    control = FakeControl(tmp_path, STARTING)
    clock = [0.0]
    app = TrayApp(control, backend="dummy", clock=lambda: clock[0])
    assert app.state.kind is Kind.WORKING
    assert app.state.tooltip == "docinbox: starting…"
    icon = app.icon = RecordingIcon()  # type: ignore[assignment]
    earlier = DocumentSummary(3, "old.pdf", "failed", error="unreadable")
    control.set_snapshot(StatusSnapshot(counts={"done": 3, "failed": 1}, recent=(earlier,)))
    assert app.refresh().kind is Kind.ATTENTION
    clock[0] += 100
    app.refresh()
    assert icon.notes == []
    assert not any("processed" in r.getMessage() for r in caplog.records)
    new = DocumentSummary(4, "recibo.pdf", "done")
    control.set_snapshot(StatusSnapshot(counts={"done": 4, "failed": 1}, recent=(new, earlier)))
    assert app.refresh().tooltip == "docinbox: recibo.pdf processed (1 failed)"
    assert icon.notes == []
    assert warnings_of(caplog) == []


class FailingControl(FakeControl):
    def snapshot(self) -> StatusSnapshot:
        raise OSError("database is locked")


def test_a_status_that_cannot_be_read_shows_as_an_error(tmp_path: Path) -> None:
    app = TrayApp(FailingControl(tmp_path), backend="dummy")
    assert app.state.kind is Kind.ERROR
    icon = app.icon = RecordingIcon()  # type: ignore[assignment]
    assert app.refresh().tooltip == "docinbox: status unavailable: database is locked"
    assert icon.notes == []


def test_no_display_is_one_info_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A server, an SSH session, systemd without a desktop: no tray is expected there."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    caplog.set_level(logging.DEBUG)
    code, thread = run_headless(FakeControl(tmp_path))
    assert (code, thread) == (3, threading.main_thread())
    assert warnings_of(caplog) == []
    lines = [r for r in caplog.records if "tray" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (
            logging.INFO,
            "no display (DISPLAY and WAYLAND_DISPLAY are not set): "
            "docinbox runs without a tray icon",
        )
    ]


def test_a_document_done_between_two_looks_still_shows_as_work(tmp_path: Path) -> None:
    """A receipt takes ~0.1 s, less than the daemon's change callback takes to arrive: the
    tray only ever sees it done.  The icon shows work anyway, for BUSY_AT_LEAST."""
    control = FakeControl(tmp_path, StatusSnapshot(counts={"done": 3}))
    clock = [0.0]
    app = TrayApp(control, backend="dummy", clock=lambda: clock[0])
    assert app.state.kind is Kind.IDLE  # earlier runs' documents are no news
    app.icon = RecordingIcon()  # type: ignore[assignment]
    receipt = DocumentSummary(4, "recibo.pdf", "done")
    control.set_snapshot(StatusSnapshot(counts={"done": 4}, recent=(receipt,)))
    state = app.refresh()
    assert (state.kind, state.badge) == (Kind.WORKING, None)
    assert state.tooltip == "docinbox: recibo.pdf processed"
    clock[0] += BUSY_AT_LEAST - 0.1
    assert app.refresh().kind is Kind.WORKING
    clock[0] += 0.1
    state = app.refresh()
    assert state.kind is Kind.IDLE
    assert state.tooltip == "docinbox: idle – 4 done"


def test_the_real_engine_reads_as_starting_until_its_state_is_open(tmp_path: Path) -> None:
    """What the tray sees of docinbox's own engine before run() opened the store."""
    from daemon import config
    from daemon.lifecycle import Daemon
    from tests.helpers import write_config

    engine = Daemon(config.load(write_config(tmp_path)))
    snap = engine.control.snapshot()
    assert (snap.starting, snap.problem) == (True, None)
    state = TrayApp(engine.control, backend="dummy").state
    assert (state.kind, state.tooltip, state.problems) == (Kind.WORKING, "docinbox: starting…", ())
