"""The tray icon as a StatusNotifierItem with a DBusMenu, over D-Bus in pure Python
(dbus-fast): the full menu from a plain ``pip install`` on Linux, no PyGObject.

Used when the session bus has a StatusNotifierWatcher with a host registered on it:
KDE Plasma, GNOME with the "AppIndicator and KStatusNotifierItem Support" extension,
XFCE's status tray plugin, Cinnamon, MATE, LXQt, waybar, snixembed...
(:func:`watcher_ready`).  Elsewhere (a plain X11 tray, macOS, Windows) pystray's
backends stay (daemon.tray.backend).

:class:`Icon` has the part of pystray's ``Icon`` interface the tray uses (``icon``,
``title``, ``menu``, ``visible``, ``run(setup)``, ``stop()``), so daemon.tray.app drives
it as it drives pystray's.  Its D-Bus connection and event loop run on the thread that
calls :meth:`Icon.run` (the main thread); the setters may be called from any thread.
When the watcher goes away and comes back (a panel restarted) the item registers again.
"""

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from daemon.tray.sni.item import MENU_PATH, PATH, StatusNotifierItem, pixmaps
from daemon.tray.sni.menu import DBusMenu

log = logging.getLogger("docinbox.tray")

WATCHER = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
#: How long the check for a watcher may take before the tray falls back to pystray.
CHECK_TIMEOUT = 3.0
_DBUS = {"destination": "org.freedesktop.DBus", "path": "/org/freedesktop/DBus"}
_counter = iter(range(1, 1 << 30))


class Unavailable(Exception):
    """No StatusNotifierWatcher with a host here; the message says why, in one line."""


async def _call(bus: Any, **message: Any) -> Any:
    from dbus_fast import Message, MessageType

    reply = await bus.call(Message(**message))
    if reply.message_type == MessageType.ERROR:
        raise Unavailable(f"{reply.error_name}: {' '.join(map(str, reply.body))}")
    return reply.body


async def _has_host(bus: Any) -> bool:
    body = await _call(
        bus,
        destination=WATCHER,
        path=WATCHER_PATH,
        interface="org.freedesktop.DBus.Properties",
        member="Get",
        signature="ss",
        body=[WATCHER, "IsStatusNotifierHostRegistered"],
    )
    return bool(body[0].value)


async def _check() -> None:
    from dbus_fast.aio import MessageBus

    bus = await MessageBus().connect()
    try:
        owner = await _call(
            bus, **_DBUS, interface="org.freedesktop.DBus", member="NameHasOwner",
            signature="s", body=[WATCHER],
        )  # fmt: skip
        if not owner[0]:
            raise Unavailable("no StatusNotifierWatcher on the session bus")
        if not await _has_host(bus):
            raise Unavailable("the StatusNotifierWatcher has no host to show icons")
    finally:
        bus.disconnect()


def watcher_ready() -> None:
    """Raise :class:`Unavailable` unless the session bus has a StatusNotifierWatcher with a
    host registered (asked on a thread of its own, within :data:`CHECK_TIMEOUT`)."""
    from daemon.notify.desktop import ensure_session_bus_env

    if ensure_session_bus_env() is None:
        raise Unavailable("no session bus")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(asyncio.run, asyncio.wait_for(_check(), CHECK_TIMEOUT))
        try:
            future.result()
        except Unavailable:
            raise
        except Exception as exc:
            text = " ".join(str(exc).split()) or type(exc).__name__
            raise Unavailable(f"session bus: {text}") from exc


class Icon:
    """A pystray-like icon shown as a StatusNotifierItem."""

    HAS_MENU = True
    HAS_DEFAULT_ACTION = True
    HAS_NOTIFICATION = False  # notifications are daemon.notify's

    def __init__(
        self, name: str, icon: Image.Image | None = None, title: str = "", menu: Any = None
    ):
        from daemon.tray.backend import menu_classes

        self.name = name
        self._image = icon
        self._title = title
        self._menu = menu
        self._menu_cls = menu_classes()[0]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._actions = ThreadPoolExecutor(1, thread_name_prefix="docinbox-tray-action")
        self.item = StatusNotifierItem(ident=name, activate=self.__call__)
        self.dbus_menu = DBusMenu(perform=self._perform, separator=self._menu_cls.SEPARATOR)
        self.bus_name = f"org.kde.StatusNotifierItem-{os.getpid()}-{next(_counter)}"
        self.visible = False

    # --- what the tray sets (any thread) --------------------------------------------------

    @property
    def icon(self) -> Image.Image | None:
        return self._image

    @icon.setter
    def icon(self, image: Image.Image) -> None:
        self._image = image
        self._soon(self._show_icon)

    @property
    def title(self) -> str:
        return self._title

    @title.setter
    def title(self, text: str) -> None:
        self._title = text
        self._soon(self._show_title)

    @property
    def menu(self) -> Any:
        return self._menu

    @menu.setter
    def menu(self, menu: Any) -> None:
        self._menu = menu
        self._soon(lambda: self.dbus_menu.show(menu))

    def __call__(self) -> None:
        """The default action (a click on the icon): the menu's default item."""
        if self._menu is not None:
            self._actions.submit(self._menu, self)

    def _perform(self, item: Any) -> None:
        self._actions.submit(item, self)  # off the D-Bus loop: actions may wait on the daemon

    # --- its loop (the calling thread) ----------------------------------------------------

    def run(self, setup: Callable[["Icon"], None] | None = None) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(setup))
        finally:
            loop.close()
            self._actions.shutdown(wait=False)

    def stop(self) -> None:
        self._stop.set()
        self._soon(lambda: self._stopped.set() if self._stopped is not None else None)

    def _soon(self, callback: Callable[[], None]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback)

    async def _main(self, setup: Callable[["Icon"], None] | None) -> None:
        from dbus_fast.aio import MessageBus

        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        if self._stop.is_set():
            return
        bus = await MessageBus().connect()
        try:
            self._show_icon()
            self._show_title()
            self.dbus_menu.show(self._menu)
            bus.export(PATH, self.item)
            bus.export(MENU_PATH, self.dbus_menu)
            await bus.request_name(self.bus_name)
            await self._follow_watcher(bus)
            await self._register(bus)
            self.visible = True
            if setup is not None:
                threading.Thread(target=setup, args=(self,), name="docinbox-tray-setup").start()
            await self._stopped.wait()
        finally:
            bus.disconnect()

    async def _register(self, bus: Any) -> None:
        await _call(
            bus, destination=WATCHER, path=WATCHER_PATH, interface=WATCHER,
            member="RegisterStatusNotifierItem", signature="s", body=[self.bus_name],
        )  # fmt: skip

    async def _follow_watcher(self, bus: Any) -> None:
        """A watcher that appears (a restarted panel) gets the item again."""
        rule = (
            "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged',"
            f"arg0='{WATCHER}'"
        )
        await _call(
            bus, **_DBUS, interface="org.freedesktop.DBus", member="AddMatch",
            signature="s", body=[rule],
        )  # fmt: skip

        def handler(message: Any) -> None:
            new_owner = message.member == "NameOwnerChanged" and message.body[2]
            if new_owner and message.body[0] == WATCHER:
                task = asyncio.ensure_future(self._reregister(bus))
                task.add_done_callback(lambda t: t.exception())

        bus.add_message_handler(handler)

    async def _reregister(self, bus: Any) -> None:
        try:
            await self._register(bus)
            log.info("tray: the status notifier host came back; the icon is shown again")
        except Exception as exc:
            log.warning("tray: cannot show the icon on the new status notifier host: %s", exc)

    def _show_icon(self) -> None:
        self.item.pixmaps = pixmaps(self._image)
        self.item.NewIcon()

    def _show_title(self) -> None:
        self.item.tooltip = self._title
        self.item.NewToolTip()
