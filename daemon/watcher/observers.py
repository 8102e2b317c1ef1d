"""Which watchdog observer watches the inbox, and switching it.

Owns the running observer and the mode it gives (the watcher's ``active_mode``): native
(inotify on Linux, with close-after-write events; FSEvents, kqueue, Windows elsewhere),
polling, or an observer injected by a test.  When native watching fails (the inotify
limits, a file system inotify cannot watch) it polls instead and logs one warning saying
how to raise the limit; while polling for that reason it tries native watching again
when a limit's sysctl changes, and every ``NATIVE_RETRY_SECONDS``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import sys
from collections.abc import Callable
from pathlib import Path

from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from . import inotify
from .events import EVENTS, EventHandler
from .shared import Shared

log = logging.getLogger("docinbox.watcher")

#: After falling back to polling for a limit, how often native watching is tried again
#: (at once when the limit's sysctl changes).
NATIVE_RETRY_SECONDS = 600.0

LINUX = sys.platform.startswith("linux")


class Observers:
    """The observer on the inbox: started, swapped, stopped.  Used from one thread at a
    time (``start`` before the timer thread runs, then the timer thread); the swap
    itself holds the shared condition, so ``mode`` and the tracker's ``close_events``
    change together."""

    def __init__(
        self,
        shared: Shared,
        *,
        mode: str,
        settle: float,
        factory: Callable[[], BaseObserver] | None,
    ) -> None:
        self.shared = shared
        self.wanted = mode  # auto, native or polling: the configuration's
        self.settle = settle
        self.factory = factory
        self.observer: BaseObserver | None = None
        self.mode = "none"
        self._degraded: str | None = None  # why polling replaced native watching
        self._limits_seen: tuple[int | None, ...] = ()
        self._next_native_retry = math.inf

    def attach(self, *, initial: bool) -> None:
        """An observer on the shared root, in place of none (raises OSError when it
        cannot; with mode "native" at start-up, when native watching fails)."""
        observer, mode, close_events = self._start(initial=initial)
        with self.shared.cond:
            stopping = self.shared.stopping
            self._swap(observer, "none" if stopping else mode, close_events)
        if stopping:
            stop(self.detach("none"))

    def detach(self, mode: str) -> BaseObserver | None:
        """No observer; *mode* says why.  Returns the observer for the caller to stop
        (outside the condition: its thread may be waiting for it)."""
        return self._swap(None, mode, self.shared.tracker.close_events)

    def close(self) -> None:
        """Stop the observer for good (``mode`` stays what it was)."""
        observer, self.observer = self.observer, None
        stop(observer)

    def alive(self) -> bool:
        """The observer thread and its emitters (one dies when its watched folder is
        deleted); True when there is no observer to die."""
        observer = self.observer
        if observer is None:
            return True
        is_alive = getattr(observer, "is_alive", None)
        if is_alive is not None and not is_alive():
            return False
        return all(emitter.is_alive() for emitter in getattr(observer, "emitters", ()))

    def watching_natively(self) -> bool:
        """inotify watches every folder (so its watches can be counted)."""
        return LINUX and self.mode == "native" and self.shared.tracker.close_events

    def fall_back(self, exc: OSError) -> None:
        """From native watching with holes in it to polling the whole inbox."""
        polling = self._polling()
        stop(self._swap(polling, self._degrade(exc), False))

    def try_native(self, now: float, unwatched: Callable[[], list[Path]]) -> bool:
        """Polling because of a limit: try native watching again when the limit changed, or
        every NATIVE_RETRY_SECONDS (other programs may have released watches).  The trial
        observer is kept only when *unwatched* then finds no folder without its watch.
        True: watching natively again."""
        if self._degraded is None or self.factory is not None or not LINUX:
            return False
        limits = inotify.limits_signature()
        if now < self._next_native_retry and limits == self._limits_seen:
            return False
        self._limits_seen = limits
        self._next_native_retry = now + NATIVE_RETRY_SECONDS
        trial = None
        try:
            trial = _native_observer()
            self._schedule(trial)
        except OSError as exc:
            stop(trial)
            log.debug("native watching still unavailable: %s", exc)
            return False
        gaps = unwatched()
        if gaps:
            stop(trial)
            log.debug("native watching still unavailable: %d folders unwatched", len(gaps))
            return False
        stop(self._swap(trial, "native", _reports_closes(trial)))
        log.info("%s no longer: watching %s natively again", self._degraded, self.shared.inbox)
        self._degraded = None
        return True

    def _swap(
        self, observer: BaseObserver | None, mode: str, close_events: bool
    ) -> BaseObserver | None:
        """Put *observer* in place; returns the one it replaced (for the caller to stop)."""
        with self.shared.cond:
            old, self.observer = self.observer, observer
            self.mode = mode
            self.shared.tracker.close_events = close_events
        return old

    def _start(self, *, initial: bool) -> tuple[BaseObserver, str, bool]:
        """An observer started on the inbox: (observer, mode, whether it reports closes)."""
        if self.factory is not None:
            observer = self.factory()
            self._schedule(observer)
            polling = isinstance(observer, PollingObserver)
            return observer, "polling" if polling else "native", _reports_closes(observer)
        if self.wanted == "polling":
            return self._polling(), "polling", False
        native: BaseObserver | None = None
        try:
            native = _native_observer()
            self._schedule(native)
        except OSError as exc:  # inotify limits, a file system inotify cannot watch
            stop(native)
            if self.wanted == "native" and initial:
                raise OSError(f"cannot watch {self.shared.inbox} natively: {exc}") from exc
            return self._polling(), self._degrade(exc), False
        self._degraded = None
        return native, "native", _reports_closes(native)

    def _schedule(self, observer: BaseObserver) -> None:
        handler = EventHandler(self.shared)
        observer.schedule(handler, str(self.shared.root), recursive=True, event_filter=list(EVENTS))
        observer.start()

    def _polling(self) -> BaseObserver:
        observer = PollingObserver(timeout=self._poll_interval())
        self._schedule(observer)
        return observer

    def _poll_interval(self) -> float:
        return max(0.5, self.settle / 2)

    def _degrade(self, exc: OSError) -> str:
        """Native watching failed: say so once, with what to do; poll meanwhile.  Returns
        the mode to report."""
        reason, advice = _explain(exc)
        if self._degraded != reason:
            log.warning(
                "cannot watch %s natively: %s. Polling it instead: new files are seen within "
                "about %.1f s, at more CPU on a large inbox. %s",
                self.shared.inbox,
                reason,
                self._poll_interval() + self.settle,
                advice,
            )
        self._degraded = reason
        self._limits_seen = inotify.limits_signature() if LINUX else ()
        self._next_native_retry = self.shared.clock.monotonic() + NATIVE_RETRY_SECONDS
        return f"polling ({reason})"


def stop(observer: BaseObserver | None) -> None:
    if observer is None:
        return
    with contextlib.suppress(Exception):  # stopping a half-started observer
        observer.stop()
        if getattr(observer, "is_alive", lambda: False)():
            observer.join(timeout=5)


def _native_observer() -> BaseObserver:
    """The platform's observer; on Linux with full events, so a file renamed into the inbox
    from elsewhere arrives as a move (complete at once), not as a creation (which would
    wait for a close that never comes, then for the settle window)."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:  # not Linux
        from watchdog.observers import Observer

        return Observer()
    return InotifyObserver(generate_full_events=True)


def _reports_closes(observer: object) -> bool:
    """Only inotify reports close-after-write (FSEvents, kqueue, Windows do not)."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except ImportError:
        return False
    return isinstance(observer, InotifyObserver)


def _explain(exc: OSError) -> tuple[str, str]:
    """A short reason for ``active_mode``, and what the user can do about it."""
    if exc.errno == errno.ENOSPC:
        now = inotify.limit(errno.ENOSPC)
        return "inotify watch limit reached", (
            f"To watch natively, raise the limit (fs.inotify.max_user_watches, now {now}): "
            "`sudo sysctl fs.inotify.max_user_watches=524288`, and keep it with that setting "
            "in /etc/sysctl.d/90-docinbox.conf. docinbox switches back by itself."
        )
    if exc.errno == errno.EMFILE:
        now = inotify.limit(errno.EMFILE)
        return "inotify instance limit reached", (
            f"To watch natively, raise the limit (fs.inotify.max_user_instances, now {now}): "
            "`sudo sysctl fs.inotify.max_user_instances=1024`, and keep it with that setting "
            "in /etc/sysctl.d/90-docinbox.conf. docinbox switches back by itself."
        )
    return f"native watching failed: {exc.strerror or exc}", (
        'Set [watcher] mode = "polling" to say this is expected (a network share).'
    )
