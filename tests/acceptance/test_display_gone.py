"""The desktop session ends under a running `docinbox run` (the X server stops): the tray
icon goes with one INFO line, the daemon goes on, and a later stop is clean — no
traceback, no "damaged database", exit 0."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Workspace, receipt, wait_for
from tests.tray.tray_xhelpers import ARTIFACTS, XProbe, start_tray_host, start_xvfb, stop

pytestmark = pytest.mark.x11


def test_the_display_closing_leaves_the_daemon_running(workspace: Workspace) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    xvfb, display = start_xvfb(ARTIFACTS / "gone-xvfb.log")
    trayer = start_tray_host(display, ARTIFACTS / "gone-trayer.log")
    try:
        daemon = workspace.start(env={"DISPLAY": display})
        daemon.wait_ready()
        probe = XProbe(display)
        try:  # the icon docked in the tray host: a desktop session as users have one
            icon = wait_for(lambda: probe.find("docinboxSystemTrayIcon"), 20, "the icon")
            wait_for(lambda: probe.docked(icon), 20, "the icon docked")
        finally:
            probe.close()
    finally:
        stop(trayer)
        stop(xvfb)
    daemon.wait_for_line(r"INFO .*the display \S* closed", 20)
    workspace.drop("recibo.pdf", receipt())  # it goes on without the display
    wait_for(lambda: (workspace.outbox / "recibo" / "result.json").exists(), 30, "the result")
    assert daemon.stop() == 0
    out = daemon.output()
    assert "Traceback" not in out and "Exception ignored" not in out, out
    assert daemon.problems() == [], out
