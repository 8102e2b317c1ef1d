"""Noticing documents in the inbox the moment they are completely written.

Two threads, one tracker.  watchdog's observer reports events (on Linux, inotify: writes,
close-after-write, renames; elsewhere, or on network shares, a polling observer); the
watcher's own timer thread scans the inbox at start-up and every ``rescan_seconds`` (a
safety net against lost events), looks at the files whose wait is over, and keeps the
watching itself healthy.  Both only feed ``settle.SettleTracker``, which holds every rule
about when a file is complete; before a file is handed over the timer thread checks that
no process holds it open for writing (``writers.py``), in every path: events, polling,
start-up scan and rescans.  Ready files go to ``on_ready`` in batches, from the timer
thread (from the caller's thread for the scan inside ``start``).

Watching can break while docinbox runs, and never silently:

- a folder inotify cannot watch (the per-user watch limit reached: watchdog skips such a
  folder without a word) is noticed by comparing the inbox's folders with the watches
  this process holds (``coverage.py``); the watcher then polls the inbox, logs one
  warning saying how to raise the limit, and goes back to native watching by itself once
  it can (``observers.py``);
- the inbox deleted, moved away or replaced is noticed within a second (``health.py``):
  the watcher stops the dead observer, re-creates the inbox when it owns it, watches the
  new folder, calls ``on_attached``, rescans, and logs one warning;
- an observer that dies for any other reason is restarted.

``active_mode`` always says what is true now: ``native``, ``polling``, ``polling (inotify
watch limit reached)``, ``none (inbox missing)``.

This module owns the public face (``InboxWatcher``), the timer thread, and the order in
which the parts act; the package's ``__init__`` lists the parts.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from watchdog.observers.api import BaseObserver

from ..clock import Clock, SystemClock
from .coverage import RESTART, Coverage
from .handover import Handover, ReadyCallback
from .health import HEALTH_SECONDS, MISSING, InboxHealth, Status
from .ignore import IgnoreRules
from .observers import Observers, stop
from .settle import SettleTracker
from .shared import Shared
from .walk import Key, Walker
from .writers import WriterCheck

log = logging.getLogger("docinbox.watcher")

AttachedCallback = Callable[[Path], None]

#: How long a handed-over file is remembered: written again within this long, it is a
#: writer that reopens the file (a page at a time), not a new document.
REMEMBER_SECONDS = 60.0


class InboxWatcher:
    """The inbox, watched: each file goes to ``on_ready`` once it is completely written.

    *on_attached*, when given, is called with the inbox's path, on the watcher's thread,
    each time the watcher attaches to the inbox folder again after ``start``: the inbox
    was deleted and created again (by the user or by docinbox), replaced by another
    folder, or is back after it went missing (a drive plugged in again).  It runs after
    the new folder is watched and before it is scanned, so whatever it re-establishes
    (the daemon's folder lock) is in place before a file of the new folder is handed over.
    The folder may be the very one watched before (moved away and back): compare its
    identity before acting.  Not called for observer changes on the same folder (a
    restart, polling to native and back).  An exception it raises is logged, and the
    watcher carries on.
    """

    def __init__(
        self,
        inbox: Path,
        on_ready: ReadyCallback,
        *,
        ignore: IgnoreRules | None = None,
        mode: str = "auto",
        quiet_seconds: float = 0.2,
        settle_seconds: float = 2.0,
        rescan_seconds: float = 60.0,
        clock: Clock | None = None,
        observer_factory: Callable[[], BaseObserver] | None = None,
        writers: WriterCheck | None = None,
        on_attached: AttachedCallback | None = None,
    ) -> None:
        self.inbox = inbox
        self.on_ready = on_ready
        self.ignore = ignore or IgnoreRules()
        self.mode = mode
        self.quiet = quiet_seconds
        self.settle = settle_seconds
        self.rescan_every = rescan_seconds
        self.clock = clock or SystemClock()
        self.on_attached = on_attached
        tracker = SettleTracker(
            quiet=quiet_seconds,
            settle=settle_seconds,
            close_events=False,
            patience=rescan_seconds if rescan_seconds > 0 else math.inf,
            remember=REMEMBER_SECONDS,
        )
        self._shared = shared = Shared(inbox, self.ignore, self.clock, tracker)
        self._walker = Walker(inbox, self.ignore)
        self._handover = Handover(shared, on_ready, writers)
        self._observers = Observers(
            shared, mode=mode, settle=settle_seconds, factory=observer_factory
        )
        self._coverage = Coverage(inbox)
        self._health = InboxHealth(inbox, settle=settle_seconds)
        self._thread: threading.Thread | None = None
        self._next_rescan = math.inf

    @property
    def active_mode(self) -> str:
        return self._observers.mode

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start watching, then scan what is already there (ready files are emitted now)."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._attach(initial=True)
        self.scan(initial=True)
        self._next_rescan = (
            self.clock.monotonic() + self.rescan_every if self.rescan_every > 0 else math.inf
        )
        self._thread = threading.Thread(target=self._run, name="docinbox-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._shared.cond:
            self._shared.stopping = True
            self._shared.cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._observers.close()

    # --- what the rest of docinbox sees -----------------------------------------------------

    def pending_count(self) -> int:
        """Files seen and not handed over yet (being written, or settling)."""
        with self._shared.cond:
            return self._shared.tracker.pending()

    def is_pending(self, path: Path) -> bool:
        """The watcher still considers *path* unfinished (a writer holds it open, or it
        changed within the quiet/settle window): an engine finding it truncated should
        wait for the watcher to hand it over again rather than fail it."""
        with self._shared.cond:
            return self._shared.tracker.is_pending(path)

    def last_change(self, path: Path) -> float | None:
        """``clock.monotonic()`` time of the last write the watcher saw to *path*, while it
        is pending and for a minute after it was handed over; None when unknown."""
        with self._shared.cond:
            return self._shared.tracker.last_change(path, self.clock.monotonic())

    def scan(self, *, initial: bool = False) -> None:
        """Walk the inbox: files not modified within the settle window and open for writing
        by no process are handed over at once; the others are tracked until they are."""
        files, folders = self._walker.walk(self.inbox)
        self._shared.found(files)
        self._check_coverage(folders)
        self._handover.settle_due(fresh=dict(files))
        if not initial:
            log.debug("rescan: %d files, %d pending", len(files), self.pending_count())

    # --- attaching to the inbox folder ------------------------------------------------------

    def _attach(self, *, initial: bool = False) -> None:
        """Watch the inbox folder as it is now (raises OSError when it cannot)."""
        st = os.stat(self.inbox)
        self._shared.root = self.inbox.resolve()
        self._health.owned = not os.path.ismount(self.inbox)
        self._observers.attach(initial=initial)
        self._health.identity = (st.st_dev, st.st_ino)

    def _try_attach(self) -> bool:
        try:
            self._attach()
        except OSError as exc:
            log.warning("cannot watch %s: %s; trying again", self.inbox, exc)
            return False
        return True

    def _detach(self, mode: str, *, forget: bool = True) -> None:
        """Stop watching; *forget* what was pending when the folder itself is gone."""
        shared = self._shared
        with shared.cond:
            observer = self._observers.detach(mode)
            self._health.identity = None
            if forget:
                shared.tracker.clear()
                shared.arrived.clear()
        self._coverage.forget_suspects()
        stop(observer)

    def _reattach(self) -> None:
        """The same inbox, a new observer (the old one died, or missed folders)."""
        self._detach(self.active_mode, forget=False)
        if self._try_attach():
            self.scan(initial=True)

    def _check_inbox(self, now: float) -> None:
        """Is the inbox still the folder we watch?  If not, watch what is there now."""
        status = self._health.check(now)
        if status is Status.SAME:
            if not self._observers.alive():
                log.warning("the file watcher on %s stopped unexpectedly; restarted it", self.inbox)
                self._reattach()
        elif status is Status.LOST:
            self._detach(MISSING)
        elif status is Status.CHANGED:
            self._watch_again()

    def _watch_again(self) -> None:
        """Another folder is the inbox now (or the old one is back): watch it, say so, let
        the daemon catch up (``on_attached``), then scan it."""
        deleted = self._shared.inbox_deleted
        self._detach(MISSING)
        if not self._try_attach():
            return
        self._shared.inbox_deleted = False
        self._health.attached(self.active_mode, deleted=deleted)
        if self.on_attached is not None:
            try:
                self.on_attached(self.inbox)
            except Exception:
                log.exception("error after watching %s again; the watching goes on", self.inbox)
        self.scan(initial=True)

    # --- watching every folder (Linux) ------------------------------------------------------

    def _check_coverage(self, folders: Iterable[tuple[Path, Key]]) -> None:
        """Every folder of the inbox must have its inotify watch (native mode, Linux)."""
        if not self._observers.watching_natively():
            return
        verdict = self._coverage.check(folders)
        if isinstance(verdict, OSError):
            self._fall_back(verdict)
        elif verdict == RESTART:
            self._reattach()

    def _fall_back(self, exc: OSError) -> None:
        """From native watching with holes in it to polling the whole inbox."""
        self._observers.fall_back(exc)
        self._coverage.reset()
        self.scan(initial=True)  # files dropped into unwatched folders meanwhile

    def _unwatched(self) -> list[Path]:
        """The inbox's folders that have no inotify watch now."""
        _files, folders = self._walker.walk(self.inbox, files=False)
        return self._coverage.gaps(folders)

    def _check_arrivals(self) -> None:
        """Folders created or moved in: their files may have no events of their own, and
        each needs its watch."""
        with self._shared.cond:
            arrived, self._shared.arrived = self._shared.arrived, set()
        folders = self._coverage.suspects()
        if not arrived and not folders:
            return
        for folder in arrived:
            files, subfolders = self._walker.walk(folder)
            folders += subfolders
            self._shared.found(files)
        self._check_coverage(folders)

    # --- the timer thread -------------------------------------------------------------------

    def _run(self) -> None:
        shared = self._shared
        while True:
            with shared.cond:
                if not shared.stopping and not shared.urgent:
                    self._wait()
                if shared.stopping:
                    return
                shared.urgent = False
            try:
                self._tick()
            except Exception:  # the watcher must outlive any odd file or event
                log.exception("the inbox watcher hit an unexpected error; it carries on")

    def _wait(self) -> None:
        """Until the next file is due, the next rescan or the next health check, or an
        event wakes us (holding the condition)."""
        shared = self._shared
        now = self.clock.monotonic()
        next_check = shared.tracker.next_check()
        wake = min(
            math.inf if next_check is None else next_check,
            self._next_rescan,
            now + HEALTH_SECONDS,
        )
        if wake > now:
            shared.wake_at = wake
            shared.cond.wait(min(wake - now, HEALTH_SECONDS))
            shared.wake_at = -math.inf

    def _tick(self) -> None:
        now = self.clock.monotonic()
        self._check_inbox(now)
        if self._observers.observer is None:
            return  # the inbox is missing
        self._check_arrivals()
        if self._observers.try_native(now, self._unwatched):
            self.scan(initial=True)
        self._handover.settle_due()
        if self.clock.monotonic() >= self._next_rescan:
            self._next_rescan = self.clock.monotonic() + self.rescan_every
            self.scan()
