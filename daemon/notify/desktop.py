"""Notifications through the desktop's own service, with desktop-notifier: the
freedesktop.org notification service over D-Bus on Linux (whatever shows them: GNOME
Shell, Plasma, dunst, mako, xfce4-notifyd...), the Notification Center on macOS, WinRT
toasts on Windows.  An action opens what the notification is about where the service
supports actions (desktop-notifier's ``on_clicked`` and a button).

A desktop without a notification service is normal (a server, SSH, a bare window
manager): one INFO line says notifications go to the log only.  desktop-notifier
reports a failed notification as a WARNING with a traceback on every notification;
those records are taken here (a logging filter on its logger, its documented way of
reporting) and said once, in one INFO line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol

from daemon.notify.coalesce import Notice
from daemon.notify.opener import Opener, default_opener

log = logging.getLogger("docinbox.notify")

#: desktop-notifier's loggers that report failures as warnings (its own module names).
_LIBRARY_LOGGERS = ("desktop_notifier.backends.base", "desktop_notifier.main")
#: A notification service that does not answer within this long is taken as absent.
SEND_TIMEOUT = 10.0
_BUTTON = {"done": "Open", "failed": "Show error", "paused": "Open log", "budget": "Open log"}


class Sender(Protocol):
    async def send(self, notice: Notice) -> None: ...


def session_bus_address(environ: dict[str, str] | None = None) -> str | None:
    """The session bus as libdbus and sd-bus find it: ``$DBUS_SESSION_BUS_ADDRESS``, else
    ``$XDG_RUNTIME_DIR/bus`` (systemd's user bus) when that socket exists."""
    env = os.environ if environ is None else environ
    if env.get("DBUS_SESSION_BUS_ADDRESS"):
        return env["DBUS_SESSION_BUS_ADDRESS"]
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime, "bus").is_socket():
        return f"unix:path={Path(runtime, 'bus')}"
    return None


def ensure_session_bus_env() -> str | None:
    """dbus-fast reads only ``$DBUS_SESSION_BUS_ADDRESS``: set it in this process from
    the systemd user bus when that is the only sign of a session bus."""
    address = session_bus_address()
    if address and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        os.environ["DBUS_SESSION_BUS_ADDRESS"] = address
    return address


class _Failures(logging.Filter):
    """Takes desktop-notifier's warnings (a failed notification, an unusable backend)."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        exc = record.exc_info[1] if record.exc_info else None
        text = f"{type(exc).__name__}: {exc}" if exc is not None else record.getMessage()
        self.reasons.append(" ".join(text.split())[:200])
        return False


class DesktopSender:
    """Sends each :class:`Notice` through desktop-notifier, on the caller's event loop
    (which must keep running: it receives the clicks)."""

    def __init__(
        self, *, opener: Opener = default_opener, icon: Path | None = None, app: str = "docinbox"
    ) -> None:
        self.opener = opener
        self._icon = icon
        self._app = app
        self._notifier: Any = None
        self._failures = _Failures()
        self._said_unavailable = False
        self.sent = 0

    def _unavailable(self, reason: str) -> None:
        if not self._said_unavailable:
            self._said_unavailable = True
            log.info("desktop notifications unavailable (%s); they go to the log only", reason)

    def _ready(self) -> Any:
        if self._notifier is not None:
            return self._notifier
        if sys.platform.startswith("linux") and ensure_session_bus_env() is None:
            self._unavailable("no session bus")
            return None
        for name in _LIBRARY_LOGGERS:
            logging.getLogger(name).addFilter(self._failures)
        try:
            from desktop_notifier import DesktopNotifier, Icon

            icon = Icon(path=self._icon) if self._icon is not None else None
            self._notifier = DesktopNotifier(app_name=self._app, app_icon=icon)
        except Exception as exc:  # a platform backend that does not load
            self._unavailable(f"{type(exc).__name__}: {exc}")
            return None
        if self._failures.reasons:  # e.g. macOS outside an app bundle
            self._unavailable(self._failures.reasons.pop())
        return self._notifier

    async def send(self, notice: Notice) -> None:
        notifier = self._ready()
        if notifier is None:
            return
        from desktop_notifier import Button

        target = notice.target
        action = None if target is None else (lambda: self._open(target))
        buttons = () if action is None else (Button(_BUTTON.get(notice.kind, "Open"), action),)
        before = len(self._failures.reasons)
        try:
            await asyncio.wait_for(
                notifier.send(notice.title, notice.message, on_clicked=action, buttons=buttons),
                SEND_TIMEOUT,
            )
        except (TimeoutError, asyncio.TimeoutError):
            self._unavailable(f"the notification service did not answer in {SEND_TIMEOUT:.0f} s")
            return
        if len(self._failures.reasons) > before:
            self._unavailable(self._failures.reasons[-1])
        else:
            self.sent += 1
            self._said_unavailable = False  # it works (again): a later loss is news

    def _open(self, target: Path) -> None:
        try:
            self.opener(target)
        except Exception as exc:
            log.warning("cannot open %s: %s", target, exc)
