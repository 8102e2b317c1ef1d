"""A small StatusNotifierWatcher and host for the tests, on a real session bus.

The watcher is what a panel (Plasma, the GNOME extension, XFCE...) provides:
``org.kde.StatusNotifierWatcher`` at ``/StatusNotifierWatcher`` with
RegisterStatusNotifierItem / RegisterStatusNotifierHost, the registered items and
hosts, and their signals (freedesktop.org StatusNotifierItem specification).  The
host half reads an item the way a panel does: its properties, and its DBusMenu
(``GetLayout``, ``Event``).  Run it in its own process::

    python -m tests.tray.sni_host      # prints "watcher ready" once it owns the name
"""

import asyncio
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, PropertyAccess, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal

WATCHER = "org.kde.StatusNotifierWatcher"
Str = Annotated[str, DBusSignature("s")]
Strs = Annotated[list[str], DBusSignature("as")]
Bool = Annotated[bool, DBusSignature("b")]
Int = Annotated[int, DBusSignature("i")]


class Watcher(ServiceInterface):
    def __init__(self) -> None:
        super().__init__(WATCHER)
        self.items: list[str] = []
        self.hosts: list[str] = []

    @dbus_method()
    def RegisterStatusNotifierItem(self, service: Str) -> None:
        if service not in self.items:
            self.items.append(service)
        self.StatusNotifierItemRegistered(service)

    @dbus_method()
    def RegisterStatusNotifierHost(self, service: Str) -> None:
        self.hosts.append(service)
        self.StatusNotifierHostRegistered()

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> Strs:
        return self.items

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> Bool:
        return bool(self.hosts)

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> Int:
        return 0

    @dbus_signal()
    def StatusNotifierItemRegistered(self, service: Str) -> Str:
        return service

    @dbus_signal()
    def StatusNotifierHostRegistered(self) -> None:
        return None


async def serve(*, host: bool = True) -> None:
    bus = await MessageBus(bus_type=BusType.SESSION).connect()
    watcher = Watcher()
    bus.export("/StatusNotifierWatcher", watcher)
    await bus.request_name(WATCHER)
    if host:  # a panel registers itself as the host that shows the items
        watcher.hosts.append("org.kde.StatusNotifierHost-tests")
    print("watcher ready", flush=True)
    await bus.wait_for_disconnect()


class HostView:
    """What a panel sees of the item(s) registered on the watcher (a client of the bus)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    @classmethod
    async def connect(cls, address: str | None = None) -> "HostView":
        """On the session bus of this process, or at *address*."""
        bus = MessageBus(bus_address=address) if address else MessageBus(bus_type=BusType.SESSION)
        return cls(await bus.connect())

    async def call(self, **message: Any) -> list[Any]:
        reply = await self.bus.call(Message(**message))
        assert reply is not None
        if reply.message_type == MessageType.ERROR:
            raise RuntimeError(f"{reply.error_name}: {reply.body}")
        return list(reply.body)

    async def get(self, dest: str, path: str, iface: str, name: str) -> Any:
        [value] = await self.call(
            destination=dest, path=path, interface="org.freedesktop.DBus.Properties",
            member="Get", signature="ss", body=[iface, name],
        )  # fmt: skip
        return value.value

    async def items(self) -> list[str]:
        return list(
            await self.get(
                WATCHER, "/StatusNotifierWatcher", WATCHER, "RegisteredStatusNotifierItems"
            )
        )

    async def item(self, service: str, name: str) -> Any:
        return await self.get(service, "/StatusNotifierItem", "org.kde.StatusNotifierItem", name)

    async def layout(self, service: str) -> dict[str, Any]:
        menu = await self.item(service, "Menu")
        revision, root = await self.call(
            destination=service, path=menu, interface="com.canonical.dbusmenu",
            member="GetLayout", signature="iias", body=[0, -1, []],
        )  # fmt: skip
        return {"revision": revision, "root": _node(root)}

    async def click(self, service: str, ident: int) -> None:
        menu = await self.item(service, "Menu")
        await self.call(
            destination=service, path=menu, interface="com.canonical.dbusmenu",
            member="Event", signature="isvu", body=[ident, "clicked", Variant("s", ""), 0],
        )  # fmt: skip

    async def activate(self, service: str) -> None:
        await self.call(
            destination=service, path="/StatusNotifierItem",
            interface="org.kde.StatusNotifierItem", member="Activate", signature="ii",
            body=[0, 0],
        )  # fmt: skip


def _node(raw: list[Any]) -> dict[str, Any]:
    ident, props, children = raw
    return {
        "id": ident,
        **{k: v.value for k, v in props.items()},
        "children": [_node(c.value) for c in children],
    }


def find(node: dict[str, Any], *labels: str) -> dict[str, Any]:
    """The item whose label starts with each of *labels* in turn."""
    for text in labels:
        node = next(
            (c for c in node["children"] if str(c.get("label", "")).startswith(text)),
            {},
        )
        assert node, f"no menu item {text!r}"
    return node


def labels(node: dict[str, Any]) -> list[str]:
    return [
        "---" if c.get("type") == "separator" else str(c.get("label")) for c in node["children"]
    ]


# --- processes: a session bus, and this watcher on it -------------------------------------

REPO = Path(__file__).resolve().parents[2]


def start_session_bus() -> tuple[subprocess.Popen[str], str]:
    """A private session bus (dbus-daemon), as a desktop login starts; its address."""
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    address = proc.stdout.readline().strip()
    if not address:
        proc.kill()
        raise AssertionError("dbus-daemon did not start (scripts/apt-packages.txt: dbus-daemon)")
    return proc, address


def start_watcher(env: Mapping[str, str], *, host: bool = True) -> subprocess.Popen[str]:
    """This module's watcher in its own process, once it owns its name."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.tray.sni_host", *([] if host else ["--no-host"])],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "watcher ready":
        proc.kill()
        raise AssertionError("the test StatusNotifierWatcher did not start")
    return proc


if __name__ == "__main__":
    asyncio.run(serve(host="--no-host" not in sys.argv))
