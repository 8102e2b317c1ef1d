"""Choosing and loading the tray's backend: docinbox's own StatusNotifierItem backend
(daemon.tray.sni) where the session has a StatusNotifierWatcher with a host, else a
pystray backend, without letting pystray decide at import time.

``import pystray`` picks a backend as a side effect and, on Linux, its xorg backend
opens the display while being imported: with no display that raises Xlib errors
(not ImportError), and a broken GTK stack raises GLib errors.  So the package is
imported with the harmless ``dummy`` backend, and the real backend module is
loaded here, inside a ``try`` that catches everything.  These are pystray's private
modules ``pystray._<name>``, the ones pystray itself imports for each ``PYSTRAY_BACKEND``
value: pystray deletes its own chooser after import, so there is no public way to try
the next backend when one fails.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from types import ModuleType
from typing import Any

#: Backends tried in order when none is named on Linux: the StatusNotifierItem over
#: D-Bus first (full menu, no PyGObject), then pystray's own order.
LINUX_ORDER = ("sni", "appindicator", "gtk", "xorg")
KNOWN = ("sni", "appindicator", "gtk", "xorg", "darwin", "win32", "dummy")
#: Names a backend for the tray: one of KNOWN (pystray's own ``$PYSTRAY_BACKEND`` too).
ENV = "DOCINBOX_TRAY"

_lock = threading.Lock()


class TrayUnavailable(Exception):
    """No backend could be loaded; the message says why, in one line."""


class NoDisplay(TrayUnavailable):
    """No graphical session at all (a server, SSH, systemd without a desktop): expected
    there, so not worth a warning."""


def import_pystray() -> ModuleType:
    """Import the ``pystray`` package without it loading a real backend."""
    with _lock:
        if "pystray" in sys.modules:
            return sys.modules["pystray"]
        saved = os.environ.get("PYSTRAY_BACKEND")
        os.environ["PYSTRAY_BACKEND"] = "dummy"
        try:
            return importlib.import_module("pystray")
        finally:
            if saved is None:
                del os.environ["PYSTRAY_BACKEND"]
            else:
                os.environ["PYSTRAY_BACKEND"] = saved


def candidates(name: str | None = None, platform: str | None = None) -> tuple[str, ...]:
    """Backends to try: *name*, else ``$DOCINBOX_TRAY`` or ``$PYSTRAY_BACKEND``, else the
    platform's own."""
    name = name or os.environ.get(ENV) or os.environ.get("PYSTRAY_BACKEND") or None
    if name:
        return (name,)
    platform = platform or sys.platform
    if platform == "darwin":
        return ("darwin",)
    if platform == "win32":
        return ("win32",)
    return LINUX_ORDER


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:200]


def load(name: str | None = None) -> ModuleType:
    """Return the first backend module that loads, or raise :class:`TrayUnavailable`."""
    names = candidates(name)
    if (
        sys.platform.startswith("linux")
        and names != ("dummy",)
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    ):
        raise NoDisplay("no display (DISPLAY and WAYLAND_DISPLAY are not set)")
    try:
        import_pystray()
    except Exception as exc:
        raise TrayUnavailable(f"pystray cannot be imported ({_one_line(exc)})") from exc
    errors: list[str] = []
    for n in names:
        if n not in KNOWN:
            errors.append(f"{n}: unknown backend")
            continue
        try:
            return _import(n)
        except Exception as exc:  # ImportError, Xlib.error.*, GLib.Error, ValueError...
            errors.append(f"{n}: {_one_line(exc)}")
    raise TrayUnavailable("; ".join(errors))


def _import(name: str) -> ModuleType:
    if name == "sni":
        from daemon.tray import sni

        sni.watcher_ready()
        return sni
    return importlib.import_module(f"pystray._{name}")


def backend_name(module: ModuleType) -> str:
    """``sni``, ``xorg``, ``appindicator``...: the name a module was loaded by."""
    return module.__name__.rsplit(".", 1)[-1].lstrip("_")


def menu_classes() -> tuple[Any, Any]:
    """pystray's public ``Menu`` and ``MenuItem`` (the same for every backend)."""
    pystray = import_pystray()
    return pystray.Menu, pystray.MenuItem
