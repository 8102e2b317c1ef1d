"""pystray's xorg backend, driven without its cross-thread calls.  The only module that
touches pystray's xorg internals; it goes when the StatusNotifierItem backend replaces
xorg.

pystray's public setters (``icon``, ``title``, ``visible``) and ``stop()`` on the xorg
backend write to the loop's X connection from the calling thread, flush it, and wait,
with no timeout, for the loop to answer.  python-xlib's threaded connection does not
survive that reliably (issue 11):

- with the public setters and ``stop()``, the xorg test of ``tests/tray/test_x11.py``
  failed 3 runs out of 3: the tray froze mid-update (its update thread waiting forever,
  so docinbox could not even stop), or the icon stayed on screen after Quit;
- with only ``visible = True`` public (once, at start-up), 2 of 51 quick restarts of
  ``docinbox run`` went wrong: once the icon never docked, once the loop hung in
  ``get_selection_owner`` (pystray's ``_show``) waiting for a reply while our setup thread
  waited for the loop, so SIGTERM could not end docinbox.

pystray offers no public alternative, so this module uses, and only for the xorg
backend:

- ``_window``, ``_display``: the icon's X window and the loop's connection, to select
  ButtonPress (pystray handles clicks but never asks for them) and, as a last resort, to
  wake a loop that missed its own end;
- ``_icon``, ``_icon_data``, ``_title``: the image and title the loop draws, and
  ``_icon_valid``, ``_visible``: what pystray's ``visible = True`` would have set;
- pystray's own ``_PYSTRAY_<METHOD>`` client messages, posted from a separate connection,
  so all I/O on the loop's connection stays on the loop's thread, and nobody waits;
- ``_queue``: the outcomes of those posted calls, read only to log failures;
- ``_running``: cleared once the loop ended, else ``Icon.__del__`` destroys the window
  again through a dead loop.

The menu and the default action use pystray's public API, as every other backend does
for everything.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import Any

from PIL import Image

log = logging.getLogger("docinbox.tray")

#: How long the loop gets to end by itself after a posted stop (see :meth:`XorgIcon.stop`).
STOP_GRACE = 3.0


def has_system_tray() -> bool:
    """Whether a system tray runs on ``$DISPLAY``: the owner of the ``_NET_SYSTEM_TRAY_S<n>``
    selection (freedesktop.org System Tray Protocol).  Without one, pystray's xorg icon
    cannot dock and logs an ERROR with a traceback; asked here through our own
    connection, with python-xlib's public API."""
    from Xlib import X
    from Xlib import display as xdisplay

    d = xdisplay.Display()
    try:
        owner = d.get_selection_owner(d.intern_atom(f"_NET_SYSTEM_TRAY_S{d.get_default_screen()}"))
        return owner not in (X.NONE, None)
    finally:
        d.close()


def display_alive() -> bool:
    """Whether ``$DISPLAY`` still accepts connections (it is gone when the desktop session
    ended or the X server stopped)."""
    from Xlib import display as xdisplay

    try:
        xdisplay.Display().close()
    except Exception:
        return False
    return True


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class XorgIcon:
    """Updates and stops one pystray xorg ``Icon`` by posting to its loop; never blocks
    on the loop."""

    def __init__(self, icon: Any) -> None:
        self.icon = icon
        self._lock = threading.Lock()
        self._conn: Any = None  # our own X connection, for posting only

    def enable_clicks(self) -> None:
        """pystray's xorg icon handles ButtonPress but never selects it, so a click did
        nothing; select it, so a click runs the default action (Open inbox)."""
        try:
            from Xlib import X

            self.icon._window.change_attributes(
                event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask
            )
            self.icon._display.flush()
        except Exception as exc:
            log.debug("tray: cannot enable clicks on the xorg icon: %s", _one_line(exc))

    def show(self) -> None:
        """``icon.visible = True``, posted: ``_show`` docks, and the Expose that follows
        docking draws the image (pystray's ``_update_icon`` would dock a second time)."""
        self._post("_show")
        self.icon._icon_valid = self.icon._visible = True

    def set_image(self, image: Image.Image) -> None:
        """A synthetic Expose redraws without pystray re-docking the icon."""
        self.icon._icon = image
        self.icon._icon_data = None
        self._post("expose")

    def set_title(self, title: str) -> None:
        self.icon._title = title
        self._post("_update_title")

    def stop(self, ended: threading.Event) -> None:
        """Post pystray's own stop; if the loop has not ended after :data:`STOP_GRACE`
        seconds (it can miss its own DestroyNotify when another thread flushed the shared
        connection, seen under load), shut its socket down, which wakes it."""
        self._post("_stop")
        if ended.wait(STOP_GRACE):
            return
        log.debug("tray: the xorg loop did not end; closing its connection")
        try:
            # pystray would log the closed connection as an error with a traceback, and
            # Icon.__del__ would close it again: both are expected here.
            logging.getLogger("pystray._base").setLevel(logging.CRITICAL)
            self.icon._display.close = lambda: None
            self.icon._display.display.socket.shutdown(socket.SHUT_RDWR)
        except Exception as exc:
            log.debug("tray: %s", _one_line(exc))

    def loop_ended(self) -> None:
        self.icon._running = False  # else Icon.__del__ destroys the window again
        if not display_alive():
            # The display is gone: Icon.__del__ closing its connection would print a
            # traceback at exit ("Exception ignored in ... __del__").
            with contextlib.suppress(Exception):
                self.icon._display.close = lambda: None
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # the display may be gone already
                    self._conn.close()
                self._conn = None

    def _post(self, method: str) -> None:
        """Have the loop run its *method* (``_show``, ``_update_title``, ``_stop``, or
        ``expose``: redraw) on its own thread, without waiting for it."""
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib.protocol import event

        with self._lock:
            self._drain_results()
            if self._conn is None:
                # the display pystray connected to: $DISPLAY, as Xlib.display.Display() reads
                self._conn = xdisplay.Display()
            conn = self._conn
            window = conn.create_resource_object("window", self.icon._window.id)
            if method == "expose":
                g = window.get_geometry()
                window.send_event(
                    event.Expose(window=window, x=0, y=0, width=g.width, height=g.height, count=0),
                    event_mask=X.NoEventMask,
                )
            else:
                window.send_event(
                    event.ClientMessage(
                        window=window,
                        client_type=conn.intern_atom(f"_PYSTRAY_{method.upper()}"),
                        data=(32, (X.CurrentTime, 0, 0, 0, 0)),
                    ),
                    event_mask=X.NoEventMask,
                )
            conn.flush()

    def _drain_results(self) -> None:
        """The loop leaves each posted call's outcome in a queue nobody waits on: log it."""
        results = getattr(self.icon, "_queue", None)
        while results is not None and not results.empty():
            outcome = results.get_nowait()
            if outcome is not True:
                log.debug("tray: xorg call failed: %s", outcome[1])
