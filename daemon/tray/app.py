"""Running docinbox with a tray icon: the icon on the main thread, the daemon beside it.

macOS requires the icon's event loop on the main thread, so it gets it everywhere
(one code path); the daemon runs in a worker thread.  The icon only *reads* the
daemon through :class:`~daemon.control.Control` snapshots and *steers* it through
Control calls, so the daemon thread is never blocked by drawing: ``subscribe``
callbacks just set an event that a tray-side thread acts on.

Stop paths, all ending in ``control.stop()`` and the daemon returning its exit code:
Quit in the menu, SIGTERM, Ctrl-C (SIGINT).  The icon goes away when the daemon
thread ends.  If the tray cannot start (no system tray on the display, a dead display,
a backend that will not load) docinbox logs one warning line and runs without it; with
no display at all (a server, SSH, systemd without a desktop) that is expected, and one
INFO line says so.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any

from daemon.control import Control, StatusSnapshot
from daemon.tray import backend as backends
from daemon.tray.icons import render
from daemon.tray.menu import Actions, Opener, build_menu, dashboard_of, default_opener
from daemon.tray.state import TrayState, derive
from daemon.tray.xorg import XorgIcon, display_alive, has_system_tray

log = logging.getLogger("docinbox.tray")

#: Seconds between refreshes when no subscribe() callback arrives (pause countdowns...).
REFRESH_SECONDS = 2.0
#: ... and while the daemon is starting (it does not call back when its state is open).
STARTUP_REFRESH_SECONDS = 0.1
#: The icon stays "working" at least this long after it saw work, or saw documents finish
#: between two looks: a receipt takes ~0.1 s, less than the daemon's change callbacks
#: take to arrive, and would otherwise never show on the icon.
BUSY_AT_LEAST = 1.5
_GLIB_BACKENDS = ("appindicator", "gtk")


_ASCII_FALLBACK = str.maketrans({"–": "-", "—": "-", "…": "...", "✓": "+", "✗": "x"})


def latin1_title(text: str) -> str:
    """The xorg backend sets WM_NAME as Latin-1: spell typographic characters plainly."""
    return text.translate(_ASCII_FALLBACK).encode("latin-1", "replace").decode("latin-1")


def _load_backend(name: str | None) -> tuple[ModuleType, str]:
    """The first backend that loads, and its name; xorg is refused up front when no
    system tray runs on the display, where its icon could not dock."""
    module = backends.load(name)
    loaded = backends.backend_name(module)
    if loaded == "xorg" and not has_system_tray():
        raise backends.TrayUnavailable(f"no system tray on display {os.environ.get('DISPLAY', '')}")
    return module, loaded


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class TrayApp:
    """One tray icon bound to one :class:`Control`.

    Creating it loads the backend and the icon; failures raise (the caller decides
    to run headless).  :meth:`run` blocks on the calling (main) thread.
    """

    def __init__(
        self,
        control: Control,
        *,
        backend: str | None = None,
        opener: Opener = default_opener,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.control = control
        self._clock = clock
        self._wall = wall_clock
        self._finished: int | None = None  # done + failed at the last look (started daemon)
        self._busy_until = -math.inf
        self.refresh_seconds = refresh_seconds
        module, self.backend_name = _load_backend(backend)
        self._title: Callable[[str], str] = (
            latin1_title if self.backend_name == "xorg" else (lambda text: text)
        )
        self.ready = threading.Event()  # the icon is shown
        self.daemon_done = threading.Event()  # run_daemon returned
        self.icon_ended = threading.Event()  # the icon's loop returned (or failed)
        self._wake = threading.Event()
        self._ui_lock = threading.Lock()
        self._closed = False  # no more updates to the icon
        self._icon_stop_requested = False
        self._stopping = False  # Quit or a signal asked the daemon to stop
        self._signals_seen = 0
        self.actions = Actions(
            control, opener=opener, on_quit=self._mark_stopping, on_change=self.wake
        )
        self.state = self._look()
        self.icon: Any = module.Icon(
            "docinbox",
            icon=render(self.state.kind, self.state.badge),
            title=self._title(self.state.tooltip),
            menu=build_menu(self.state.menu, self.actions.perform),
        )
        self._updater: threading.Thread | None = None
        self._icon_up = False  # the icon's loop ran our setup: it has something to stop
        # pystray's xorg backend cannot be updated from another thread through its public
        # API (see daemon/tray/xorg.py); every other backend is.
        self._xorg = XorgIcon(self.icon) if self.backend_name == "xorg" else None
        if self._xorg is not None:
            self._xorg.enable_clicks()

    # --- state -----------------------------------------------------------------------------

    def _snapshot(self) -> StatusSnapshot:
        try:
            return self.control.snapshot()
        except Exception as exc:  # a front end must not take the daemon down
            log.debug("tray: snapshot failed: %s", exc)
            return StatusSnapshot(problem=f"status unavailable: {_one_line(exc)}")

    def _look(self) -> TrayState:
        """The state to show now; also notes whether the daemon is still starting (the
        update loop looks more often then) and holds the working state after work."""
        snap = self._snapshot()
        self._daemon_starting = snap.starting
        self._track_work(snap)
        return self._derive(snap)

    def _derive(self, snap: StatusSnapshot) -> TrayState:
        return derive(
            snap,
            now=self._wall(),
            stopping=self._stopping,
            log_available=self.control.log_path is not None,
            busy=self._clock() < self._busy_until,
            dashboard=dashboard_of(self.control) is not None,
        )

    def _track_work(self, snap: StatusSnapshot) -> None:
        """Hold the working state :data:`BUSY_AT_LEAST` after work in flight or documents
        that finished since the last look (not those of earlier runs: the first look at a
        started daemon is the baseline)."""
        if snap.starting:
            return
        finished = snap.counts.get("done", 0) + snap.counts.get("failed", 0)
        if snap.pending or (self._finished is not None and finished > self._finished):
            self._busy_until = self._clock() + BUSY_AT_LEAST
        self._finished = finished

    def wake(self) -> None:
        """Ask for a refresh soon; safe from any thread, never blocks (subscribe callback)."""
        self._wake.set()

    def refresh(self) -> TrayState:
        """Re-read the snapshot; update icon/tooltip/menu if they changed.  (Notifications
        are not the tray's: daemon.notify sends them, tray or no tray.)"""
        new = self._look()
        with self._ui_lock:
            if self._closed:
                return new
            old, self.state = self.state, new
            if (old.kind, old.badge) != (new.kind, new.badge):
                if self._xorg is not None:
                    self._xorg.set_image(render(new.kind, new.badge))
                else:
                    self.icon.icon = render(new.kind, new.badge)
            if old.tooltip != new.tooltip:
                if self._xorg is not None:
                    self._xorg.set_title(self._title(new.tooltip))
                else:
                    self.icon.title = self._title(new.tooltip)
            if old.menu != new.menu:
                self.icon.menu = build_menu(new.menu, self.actions.perform)
        return new

    def _update_loop(self) -> None:
        while not self._closed:
            # The daemon does not signal that its state is open: look often until it is.
            wait = self.refresh_seconds
            if self._daemon_starting:
                wait = min(wait, STARTUP_REFRESH_SECONDS)
            busy_left = self._busy_until - self._clock()
            if busy_left > 0:  # look again when the working state may end
                wait = min(wait, busy_left + 0.05)
            self._wake.wait(wait)
            self._wake.clear()
            if self._closed:
                break
            try:
                self.refresh()
            except Exception as exc:
                log.warning("tray: refresh failed: %s", _one_line(exc))

    # --- lifecycle -------------------------------------------------------------------------

    def _mark_stopping(self) -> None:
        # No immediate refresh: the icon is about to go; the periodic refresh shows
        # "stopping…" if the daemon takes a while (and an update racing the stop is
        # what made pystray's xorg loop miss its end).
        self._stopping = True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals_seen += 1
        log.info("tray: %s received, stopping", signal.Signals(signum).name)
        self._mark_stopping()
        self.control.stop()

    def _install_signals(self) -> Callable[[], None]:
        """SIGINT/SIGTERM → control.stop(); returns a function restoring the old handlers."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        for s in saved:
            signal.signal(s, self._on_signal)

        def restore() -> None:
            for s, handler in saved.items():
                signal.signal(s, handler)

        return restore

    def _reassert_signals(self) -> bool:
        """pystray's GTK backends reset SIGINT to SIG_DFL (instant death); undo that."""
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, self._on_signal)
        self.ready.set()
        return False  # GLib: do not repeat

    def _setup(self, icon: Any) -> None:
        """Runs in pystray's setup thread once the icon loop is up (or, released by
        :meth:`_release_setup_thread`, after a loop that failed before it was up)."""
        with self._ui_lock:
            if self.icon_ended.is_set():
                return
            self._icon_up = True
            closed = self._closed
            if not closed and self._xorg is not None:
                self._xorg.show()
            elif not closed:
                icon.visible = True
        if closed:  # the daemon ended before the loop was up: end the loop too
            self._stop_icon()
            return
        self._wake.set()  # the first refresh at once
        self._updater = threading.Thread(
            target=self._update_loop, name="docinbox-tray-refresh", daemon=True
        )
        self._updater.start()
        if self.backend_name in _GLIB_BACKENDS:
            from gi.repository import GLib  # present: the backend loaded

            GLib.idle_add(self._reassert_signals)  # sets ready once our handlers are back
        else:
            self.ready.set()
        if self.daemon_done.is_set():
            self._stop_icon()

    def _release_setup_thread(self) -> None:
        """A loop that failed before it was ready leaves pystray's (non-daemon) setup thread
        waiting forever, which would keep the process alive at exit: let it go.  pystray has
        no public way to, hence its private queue (dummy backend, or a loop that fails
        early on GTK/Windows)."""
        if not self._icon_up:
            queue = getattr(self.icon, "_Icon__queue", None)
            if queue is not None:
                queue.put(True)

    def _stop_icon(self) -> None:
        with self._ui_lock:
            self._closed = True
            self._wake.set()
            if self._icon_stop_requested or self.icon_ended.is_set() or not self._icon_up:
                return  # not up yet: _setup ends the loop when it sees _closed
            self._icon_stop_requested = True
        try:
            if self._xorg is not None:
                self._xorg.stop(self.icon_ended)
            else:
                self.icon.stop()
        except Exception as exc:
            log.debug("tray: stopping the icon: %s", _one_line(exc))

    def _log_icon_gone(self) -> None:
        """The icon's loop ended by itself: the display closed (the session ended) is a
        normal event; anything else is worth a warning."""
        if self.backend_name == "xorg" and not display_alive():
            log.info(
                "tray: the display %s closed (the desktop session ended?); docinbox "
                "runs on without a tray icon",
                os.environ.get("DISPLAY", ""),
            )
        else:
            log.warning("tray: the icon stopped; docinbox runs on without it")

    def run(self, run_daemon: Callable[[], int]) -> int:
        """Run *run_daemon* in a thread and the icon here; return the daemon's exit code."""
        result: list[int] = []
        failure: list[BaseException] = []

        def daemon_main() -> None:
            try:
                result.append(run_daemon())
            except BaseException as exc:
                failure.append(exc)
            finally:
                self.daemon_done.set()
                self._stop_icon()

        unsubscribe = self.control.subscribe(self.wake)
        restore_signals = self._install_signals()
        worker = threading.Thread(target=daemon_main, name="docinbox-daemon")
        worker.start()
        try:
            try:
                self.icon.run(setup=self._setup)
            except Exception as exc:
                if not self.daemon_done.is_set():
                    log.warning(
                        "tray: the icon stopped (%s); docinbox runs on without it", _one_line(exc)
                    )
            else:
                if not self.daemon_done.is_set():
                    self._log_icon_gone()
            with self._ui_lock:
                self._closed = True
                self._wake.set()
            self.icon_ended.set()
            try:
                if self._xorg is not None:
                    self._xorg.loop_ended()
                self._release_setup_thread()
            except Exception as exc:  # the icon's trouble never ends the daemon
                log.debug("tray: after the icon: %s", _one_line(exc))
            worker.join()  # interruptible: signal handlers still run on this thread
        finally:
            restore_signals()
            try:
                unsubscribe()
            except Exception as exc:
                log.debug("tray: unsubscribe: %s", exc)
        if failure:
            raise failure[0]
        return result[0]


def run_with_tray(
    control: Control,
    run_daemon: Callable[[], int],
    *,
    backend: str | None = None,
    opener: Opener | None = None,
    on_start: Callable[[TrayApp], None] | None = None,
) -> int:
    """Run the daemon with a tray icon if one can be shown; return the daemon's exit code.

    *backend*: a pystray backend name (``appindicator``, ``gtk``, ``xorg``, ``darwin``,
    ``win32``), ``None`` for ``$PYSTRAY_BACKEND`` or the platform's default, or ``"none"``
    for no tray at all (``--no-tray``).  Any failure to create the icon gives one
    warning line (one INFO line when there is no display at all) and the daemon runs
    on the calling thread, without a tray.
    *opener* and *on_start* are for tests.
    """
    if backend == "none":
        return run_daemon()
    try:
        app = TrayApp(control, backend=backend, opener=opener or default_opener)
    except backends.NoDisplay as exc:
        log.info("%s: docinbox runs without a tray icon", exc)
        return run_daemon()
    except Exception as exc:
        log.warning("no tray icon (%s); docinbox runs without it", _one_line(exc))
        return run_daemon()
    if on_start is not None:
        on_start(app)
    return app.run(run_daemon)
