"""The tray as a user meets it: ``docinbox run`` with no flags, on a desktop with a tray.

A real X server (Xvfb) with a real tray host (trayer, a plain XEMBED tray); the test looks
at the screen through its own X connection as a user would: the panel's pixels, the
icon's window, its title (the tooltip: WM_NAME).  Screenshots go to artifacts/tray/.
Also: no display at all (a server, SSH), and a display with no tray on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from tests.acceptance.conftest import Daemon, Workspace, receipt
from tests.tray.tray_xhelpers import (
    ARTIFACTS,
    PANEL,
    XProbe,
    mean_difference,
    start_tray_host,
    start_xvfb,
    stop,
    wait_for,
)

pytestmark = pytest.mark.x11

#: A notification as the tray logs it (INFO, "<title>: <message>"), finished documents only.
ANNOUNCEMENT = re.compile(
    r"docinbox\.notify: (docinbox(: a document failed|: some documents failed)?): (.*)$"
)
#: Pixels that differ this much (mean over the channels, 0-255) are another picture.
CHANGED = 12.0
SAME = 4.0


@pytest.fixture(scope="module")
def desktop() -> Iterator[str]:
    """A display with a system tray on it, as a desktop session has."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    xvfb, name = start_xvfb(ARTIFACTS / "acceptance-xvfb.log")
    try:
        trayer = start_tray_host(name, ARTIFACTS / "acceptance-trayer.log")
        try:
            yield name
        finally:
            stop(trayer)
    finally:
        stop(xvfb)


@pytest.fixture
def screen(desktop: str) -> Iterator[XProbe]:
    probe = XProbe(desktop)
    try:
        yield probe
    finally:
        probe.close()


def panel(screen: XProbe, name: str) -> Image.Image:
    return screen.screenshot(ARTIFACTS / f"acceptance-{name}.png", PANEL)


def tray_icon(screen: XProbe) -> Any:
    """docinbox's window docked in the tray host (any backend: found by its title)."""

    def found() -> Any:
        for w in screen.windows():
            if screen.title(w).startswith("docinbox") and screen.docked(w):
                return w
        return None

    return wait_for(found, 30, "docinbox's icon docked in the tray", probe=screen)


def announcements(daemon: Daemon) -> list[str]:
    return [
        f"{m.group(1)}: {m.group(3)}"
        for line in daemon.output().splitlines()
        if (m := ANNOUNCEMENT.search(line))
    ]


def test_the_icon_docks_follows_a_document_and_a_restart_announces_nothing_old(
    workspace: Workspace, desktop: str, screen: XProbe
) -> None:
    empty = panel(screen, "panel-empty")
    daemon = workspace.start(env={"DISPLAY": desktop})
    daemon.wait_ready()

    # the icon docks: the panel changes, and a docked window shows docinbox's state
    icon = tray_icon(screen)
    wait_for(
        lambda: mean_difference(panel(screen, "panel-idle"), empty) > 1.0,
        20,
        "the panel to show the icon",
        probe=screen,
    )
    wait_for(
        lambda: screen.title(icon).startswith("docinbox: idle"),
        20,
        "the idle tooltip",
        probe=screen,
    )
    idle = screen.image(icon)

    # a document: the icon turns busy, then idle again
    workspace.drop("recibo.pdf", receipt())
    busy_titles: list[str] = []

    def busy() -> bool:
        title = screen.title(icon)
        if not title.startswith("docinbox: idle"):
            busy_titles.append(title)
        return bool(busy_titles) and mean_difference(screen.image(icon), idle) > CHANGED

    wait_for(busy, 30, "the icon to turn busy", probe=screen)
    panel(screen, "panel-busy")
    # the work as it goes ("1 in progress - sending recibo.pdf"), or, for a document done
    # before the icon looked, what was just done
    assert all(
        re.search(r"queued|in progress", t) or t == "docinbox: recibo.pdf processed"
        for t in busy_titles
    ), busy_titles
    wait_for(
        lambda: (
            screen.title(icon).startswith("docinbox: idle")
            and "1 done" in screen.title(icon)
            and mean_difference(screen.image(icon), idle) < SAME
        ),
        60,
        "the icon idle again, with 1 done",
        probe=screen,
    )
    panel(screen, "panel-done")
    assert (workspace.outbox / "recibo" / "result.json").exists()
    wait_for(lambda: announcements(daemon), 30, "the receipt's announcement", probe=screen)
    assert announcements(daemon) == ["docinbox: recibo.pdf processed"]

    assert daemon.stop() == 0
    wait_for(
        lambda: not any(screen.title(w).startswith("docinbox") for w in screen.windows()),
        20,
        "the icon gone after SIGTERM",
        probe=screen,
    )
    assert daemon.problems() == []
    assert "needs attention" not in daemon.output()

    # a restart: the receipt is not news any more; a new document is
    again = workspace.start(env={"DISPLAY": desktop})
    again.wait_ready()
    icon = tray_icon(screen)
    wait_for(
        lambda: screen.title(icon).startswith("docinbox: idle") and "1 done" in screen.title(icon),
        20,
        "the restarted icon idle, with 1 done",
        probe=screen,
    )
    workspace.drop("factura.pdf", receipt("12.50"))
    wait_for(lambda: announcements(again), 60, "an announcement after the restart", probe=screen)
    assert announcements(again) == ["docinbox: factura.pdf processed"]
    assert again.stop() == 0
    assert again.problems() == []
    assert "needs attention" not in again.output()


def test_without_a_display_docinbox_runs_without_a_tray_and_without_a_warning(
    workspace: Workspace,
) -> None:
    """A server, an SSH session, systemd without a desktop: no tray is expected."""
    daemon = workspace.start()  # the workspace's environment has no DISPLAY
    daemon.wait_ready()
    daemon.wait_for_line(r"INFO +docinbox\.tray: no display \(.*\): docinbox runs without a tray")
    workspace.drop("recibo.pdf", receipt())
    daemon.wait_for_line(r"recibo\.pdf: done", 60)
    assert daemon.stop() == 0
    assert daemon.problems() == []


def test_a_desktop_without_a_system_tray_gets_one_warning(workspace: Workspace) -> None:
    """A display but no tray on it (none running, or not yet): one line says why."""
    xvfb, name = start_xvfb(ARTIFACTS / "acceptance-xvfb-no-tray.log")
    try:
        daemon = workspace.start(env={"DISPLAY": name})
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())
        daemon.wait_for_line(r"recibo\.pdf: done", 60)
        assert daemon.stop() == 0
    finally:
        stop(xvfb)
    assert [re.sub(r"^\S+ \S+ ", "", p) for p in daemon.problems()] == [
        f"WARNING docinbox.tray: no tray icon (no system tray on display {name}); "
        "docinbox runs without it"
    ]
