"""The tray menu: pystray objects built from the pure menu model, actions sent to Control.

Actions go only through the daemon's public :class:`~daemon.control.Control`, and
files and folders open through an injectable *opener*, so tests can check what
would be opened without launching a file manager.
"""

from __future__ import annotations

import functools
import logging
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from daemon.control import Control
from daemon.notify.opener import Opener, default_opener
from daemon.tray.backend import menu_classes
from daemon.tray.state import MenuEntry

log = logging.getLogger("docinbox.tray")

__all__ = ["Actions", "Opener", "build_menu", "dashboard_of", "default_opener", "find_item"]


@runtime_checkable
class ServesDashboard(Protocol):
    """A control whose daemon serves the review desk (:class:`daemon.actions.DaemonControl`)."""

    def dashboard_url(self) -> str | None: ...


def dashboard_of(control: Control) -> str | None:
    """The review desk's address (token included), or None while none is served."""
    return control.dashboard_url() if isinstance(control, ServesDashboard) else None


class Actions:
    """Carries out menu actions; never raises into the tray's event loop."""

    def __init__(
        self,
        control: Control,
        *,
        opener: Opener = default_opener,
        on_quit: Callable[[], None] | None = None,
        on_change: Callable[[], None] | None = None,
        browser: Callable[[str], Any] = webbrowser.open,
    ) -> None:
        self.control = control
        self.opener = opener
        self.browser = browser
        self.on_quit = on_quit
        self.on_change = on_change

    def perform(self, action: Sequence[Any]) -> None:
        name = action[0]
        try:
            if name == "open_inbox":
                self._open(self.control.inbox)
            elif name == "open_outbox":
                self._open(self.control.outbox)
            elif name == "open_dashboard":
                url = dashboard_of(self.control)
                if url is None:
                    log.info("tray: the review desk is not served ([dashboard] listen)")
                else:
                    self.browser(url)
            elif name == "open_path":
                self._open(Path(action[1]))
            elif name == "open_log":
                if self.control.log_path is not None:
                    self._open(self.control.log_path)
            elif name == "pause":
                self.control.pause(action[1])
            elif name == "resume":
                self.control.resume()
            elif name == "retry_failed":
                n = self.control.retry_failed()
                log.info("tray: %d failed document(s) put back in line", n)
            elif name == "quit":
                if self.on_quit is not None:
                    self.on_quit()
                self.control.stop()
            else:
                log.warning("tray: unknown menu action %r", name)
        except Exception as exc:
            log.warning("tray: %s failed: %s", name, exc)
        finally:
            if self.on_change is not None:
                self.on_change()

    def _open(self, path: Path) -> None:
        self.opener(path)


def _invoke(
    perform: Callable[[Sequence[Any]], None], action: Sequence[Any], _icon: Any, _item: Any
) -> None:
    perform(action)


def build_menu(model: Sequence[MenuEntry], perform: Callable[[Sequence[Any]], None]) -> Any:
    """A pystray ``Menu`` for *model*; each item calls ``perform(entry.action)``."""
    menu_cls, item_cls = menu_classes()

    def item(entry: MenuEntry) -> Any:
        if entry.separator:
            return menu_cls.SEPARATOR
        if entry.children:
            return item_cls(
                entry.text, menu_cls(*(item(c) for c in entry.children)), enabled=entry.enabled
            )
        action = entry.action
        # functools.partial: pystray inspects a function's argument count, not a partial's
        callback = None if action is None else functools.partial(_invoke, perform, action)
        return item_cls(
            entry.text,
            callback,
            enabled=entry.enabled and action is not None,
            default=entry.default,
        )

    return menu_cls(*(item(e) for e in model))


def find_item(menu: Any, *path: str) -> Any:
    """The visible item whose text starts with each of *path* in turn (for tests and
    scripting the xorg backend, which shows no menu)."""
    items = list(menu)
    found = None
    for prefix in path:
        found = next((i for i in items if i.text.startswith(prefix)), None)
        if found is None:
            raise KeyError(f"no menu item {prefix!r} in {[i.text for i in items]}")
        items = list(found.submenu) if found.submenu is not None else []
    return found
