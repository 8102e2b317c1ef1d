"""The StatusNotifierItem backend on a real session bus: a StatusNotifierWatcher (the small
one in sni_host.py, as a panel provides it) sees the item, a host reads its icon, tooltip
and menu over D-Bus and clicks; libdbusmenu's own dumper reads the same menu."""

from __future__ import annotations

import asyncio
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.control import StatusSnapshot
from daemon.tray import backend
from daemon.tray.app import TrayApp
from daemon.tray.state import derive
from daemon.tray.testing import FakeControl
from tests.tray.sni_host import (
    HostView,
    find,
    labels,
    start_session_bus,
    start_watcher,
)
from tests.tray.tray_xhelpers import stop, wait_for

DUMPER = Path("/usr/libexec/dbusmenu-dumper")


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    proc, address = start_session_bus()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)
    monkeypatch.setenv("DISPLAY", ":0")  # a desktop session; SNI itself needs no X
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    monkeypatch.delenv("DOCINBOX_TRAY", raising=False)
    try:
        yield {"DBUS_SESSION_BUS_ADDRESS": address}
    finally:
        stop(proc)  # type: ignore[arg-type]


@pytest.fixture
def watcher(bus: dict[str, str]) -> Iterator[subprocess.Popen[str]]:
    proc = start_watcher(bus)
    try:
        yield proc
    finally:
        stop(proc)  # type: ignore[arg-type]


class Tray:
    """A TrayApp on a FakeControl, its icon loop on a thread of its own."""

    def __init__(self, root: Path) -> None:
        self.opened: list[Path] = []
        self.control = FakeControl(root, StatusSnapshot(counts={"done": 2, "failed": 1}))
        self.app = TrayApp(self.control, opener=self.opened.append)
        self.thread = threading.Thread(target=self.app.run, args=(self.control.run_daemon,))
        self.thread.start()
        assert self.app.ready.wait(20), "the icon did not come up"

    def close(self) -> int:
        self.control.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
        return 0


@pytest.fixture
def tray(watcher: subprocess.Popen[str], tmp_path: Path) -> Iterator[Tray]:
    t = Tray(tmp_path)
    try:
        yield t
    finally:
        t.close()


def host(coro: Any) -> Any:
    async def run() -> Any:
        view = await HostView.connect()
        try:
            return await coro(view)
        finally:
            view.bus.disconnect()

    return asyncio.run(run())


def registered(view: HostView) -> Any:
    async def first() -> str | None:
        for _ in range(200):
            items = await view.items()
            if items:
                return items[0]
            await asyncio.sleep(0.05)
        return None

    return first()


def test_a_panel_reads_the_icon_and_the_menu_and_clicks(tray: Tray) -> None:
    assert tray.app.backend_name == "sni"
    state = derive(tray.control.snapshot(), now=0, log_available=False)

    async def look(view: HostView) -> dict[str, Any]:
        service = await registered(view)
        assert service is not None, "the item never registered with the watcher"
        seen = {
            "tooltip": await view.item(service, "ToolTip"),
            "sizes": [(w, h, len(px)) for w, h, px in await view.item(service, "IconPixmap")],
            "layout": await view.layout(service),
        }
        pause = find(seen["layout"]["root"], "Pause", "For 1 hour")
        await view.click(service, pause["id"])
        await view.activate(service)  # a left click on the icon: Open inbox
        seen["service"] = service
        return seen

    seen = host(look)
    assert list(seen["tooltip"]) == ["", [], "docinbox", state.tooltip]
    assert (32, 32, 32 * 32 * 4) in seen["sizes"]
    model = [("---" if e.separator else e.text) for e in state.menu]
    assert labels(seen["layout"]["root"]) == model  # the same menu as every backend
    assert find(seen["layout"]["root"], "Retry failed (1)")["enabled"] is True
    assert tray.control.wait_for_call("pause") == ("pause", 3600)
    wait_for(lambda: tray.opened == [tray.control.inbox], 10, "Open inbox")

    async def after(view: HostView) -> list[str]:
        for _ in range(100):
            now = labels((await view.layout(seen["service"]))["root"])
            if "Resume" in now:
                return now
            await asyncio.sleep(0.05)
        return now

    assert "Resume" in host(after)  # the menu follows the state


def test_libdbusmenu_reads_the_menu(tray: Tray, bus: dict[str, str]) -> None:
    """libdbusmenu (what Unity, the GNOME extension and XFCE's plugin link) as the client."""
    service = host(registered)
    out = subprocess.run(
        [str(DUMPER), f"--dbus-name={service}", "--dbus-object=/MenuBar"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    # GVariant text: the labels in menu order, submenus inline
    texts = re.findall(r"\"label\": '([^']*)'", out)
    assert texts == [
        "1 document failed",
        "Open inbox",
        "Open outbox",
        "Pause",
        "For 30 minutes",
        "For 1 hour",
        "Until resumed",
        "Retry failed (1)",
        "Quit",
    ]
    assert out.count("'separator'") == 3
    assert re.search(r'"enabled": false,\s*"label": \'1 document failed\'', out)


def test_a_restarted_panel_shows_the_icon_again(
    tray: Tray, watcher: subprocess.Popen[str], bus: dict[str, str]
) -> None:
    service = host(registered)
    stop(watcher)  # type: ignore[arg-type]
    again = start_watcher(bus)
    try:
        assert host(registered) == service
    finally:
        stop(again)  # type: ignore[arg-type]


def test_without_a_watcher_the_backend_is_not_offered(bus: dict[str, str]) -> None:
    with pytest.raises(backend.TrayUnavailable, match=r"sni: .*no StatusNotifierWatcher"):
        backend.load("sni")


def test_a_watcher_without_a_host_is_not_enough(bus: dict[str, str]) -> None:
    proc = start_watcher(bus, host=False)
    try:
        with pytest.raises(backend.TrayUnavailable, match="no host"):
            backend.load("sni")
    finally:
        stop(proc)  # type: ignore[arg-type]
