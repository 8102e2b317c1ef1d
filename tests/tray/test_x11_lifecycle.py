"""The icon's life cycle against the daemon's, on a real X server with a tray host."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import pytest

from daemon.tray.app import TrayApp, run_with_tray
from daemon.tray.testing import FakeControl
from tests.tray.tray_xhelpers import ARTIFACTS, XProbe, start_xvfb, stop, wait_for

pytestmark = pytest.mark.x11

ICON_CLASS = "docinboxSystemTrayIcon"  # pystray's xorg window class


def test_a_daemon_that_ends_before_the_icon_is_up_ends_the_icon_too(
    x11: XProbe, tmp_path: Path
) -> None:
    """E.g. a second ``docinbox run`` on the same folders fails at once: the icon's loop,
    not up yet when the daemon ended, must end as well, or docinbox never exits."""
    control = FakeControl(tmp_path)

    def late_setup(app: TrayApp) -> None:
        setup = app._setup

        def after_the_daemon(icon: object) -> None:
            assert app.daemon_done.wait(20)
            setup(icon)

        app._setup = after_the_daemon  # type: ignore[method-assign]

    result: list[int] = []
    runner = threading.Thread(
        target=lambda: result.append(
            run_with_tray(control, lambda: 4, backend="xorg", on_start=late_setup)
        ),
        daemon=True,
    )
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "run_with_tray did not return: the icon's loop runs on"
    assert result == [4]
    wait_for(lambda: x11.find(ICON_CLASS) is None, what="no icon left on screen")
    gc.collect()  # pystray's Icon.__del__ closes its X connection: while X still runs


def test_a_display_without_a_system_tray_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A desktop with no tray (or none yet): pystray's xorg icon would log an ERROR with a
    traceback and never show; docinbox says so in one warning and runs without it."""
    xvfb, name = start_xvfb(ARTIFACTS / "xvfb-no-tray.log")
    try:
        monkeypatch.setenv("DISPLAY", name)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        caplog.set_level(logging.DEBUG)
        ran_on: list[threading.Thread] = []

        def run_daemon() -> int:
            ran_on.append(threading.current_thread())
            return 3

        assert run_with_tray(FakeControl(tmp_path), run_daemon, backend="xorg") == 3
    finally:
        stop(xvfb)
    assert ran_on == [threading.main_thread()]
    problems = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING
    ]
    assert problems == [
        ("WARNING", f"no tray icon (no system tray on display {name}); docinbox runs without it")
    ]
