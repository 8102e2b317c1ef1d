"""Noticing documents in the inbox the moment they are completely written.

Three sources feed one tracker of *pending* files:

- watchdog events: on Linux (inotify) a close-after-write is the signal, plus a short
  quiet period with no further writes; a rename into the inbox is complete at once
  (writers that rename a finished temp file are the well-behaved majority);
- a scan at start-up (files dropped while docinbox was stopped);
- a periodic rescan as a safety net against missed events (overflowing queues,
  network shares).

Without a close event (polling mode, network shares, other platforms, links made
without writing) a file is taken once its size and mtime stay unchanged over the
settle window.  Ready files are handed to ``on_ready`` in batches, from the
watcher's own thread.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from ..clock import Clock, SystemClock
from .ignore import IgnoreRules

log = logging.getLogger("docinbox.watcher")

ReadyCallback = Callable[[list[Path]], None]


@dataclass
class _Pending:
    size: int
    mtime_ns: int
    last_event: float      # monotonic
    complete_signal: bool  # a close-after-write or a rename-in was seen
    quiet: float           # how long after the last event before taking it
    writing: bool = False  # native mode: written to and not closed since; wait for the close


class InboxWatcher:
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
    ) -> None:
        self.inbox = inbox
        self.on_ready = on_ready
        self.ignore = ignore or IgnoreRules()
        self.mode = mode
        self.quiet = quiet_seconds
        self.settle = settle_seconds
        self.rescan_every = rescan_seconds
        self.clock = clock or SystemClock()
        self._observer_factory = observer_factory
        self._pending: dict[Path, _Pending] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        self.active_mode = "none"  # native | polling, once started
        self._next_rescan = 0.0

    # --- life cycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start watching, then scan what is already there (ready files are emitted now)."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._observer = self._start_observer()
        self.scan(initial=True)
        self._next_rescan = self.clock.monotonic() + self.rescan_every
        self._thread = threading.Thread(target=self._run, name="docinbox-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _start_observer(self) -> BaseObserver:
        handler = _Handler(self)
        if self._observer_factory is not None:
            factories = [("custom", self._observer_factory)]
        elif self.mode == "polling":
            factories = [("polling", lambda: PollingObserver(timeout=max(0.5, self.settle / 2)))]
        else:
            factories = [("native", _native_observer)]
            if self.mode == "auto":
                factories.append(
                    ("polling", lambda: PollingObserver(timeout=max(0.5, self.settle / 2))))
        last_error: Exception | None = None
        for name, factory in factories:
            observer = factory()
            try:
                observer.schedule(handler, str(self.inbox), recursive=True,
                                  event_filter=list(_EVENTS))
                observer.start()
            except OSError as exc:  # inotify watch/instance limits, unsupported file systems
                last_error = exc
                log.warning("the %s file watcher could not start (%s); %s", name, exc,
                            "falling back to polling" if name == "native" else "giving up")
                continue
            self.active_mode = "polling" if name == "polling" else "native"
            if name == "custom":
                self.active_mode = "polling" if isinstance(observer, PollingObserver) else "native"
            return observer
        raise OSError(f"cannot watch {self.inbox}: {last_error}")

    # --- what the rest of docinbox sees -----------------------------------------------------

    def pending_count(self) -> int:
        with self._cond:
            return len(self._pending)

    def scan(self, *, initial: bool = False) -> None:
        """Walk the inbox; files not modified within the settle window are ready at once."""
        now_wall = self.clock.now()
        ready: list[Path] = []
        for path, st in self._walk():
            age = now_wall - st.st_mtime
            with self._cond:
                known = self._pending.get(path)
                if known is not None:
                    continue
                if age >= self.settle:
                    ready.append(path)
                else:
                    self._track(path, st, complete=False, quiet=self.settle)
        if ready:
            self.on_ready(ready)
        if not initial:
            log.debug("rescan: %d ready, %d pending", len(ready), self.pending_count())

    def _walk(self):  # type: ignore[no-untyped-def]
        stack = [self.inbox]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError as exc:
                log.warning("cannot read %s: %s", folder, exc)
                continue
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(self.inbox).as_posix()
                if self.ignore.ignored(rel):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(path)
                    elif entry.is_file(follow_symlinks=False) or entry.is_symlink():
                        yield path, entry.stat(follow_symlinks=False)
                except OSError:
                    continue

    # --- events ---------------------------------------------------------------------------

    def _event(self, path: Path, *, complete: bool, quiet: float,
               writing: bool = False) -> None:
        try:
            rel = path.relative_to(self.inbox).as_posix()
        except ValueError:
            return
        if self.ignore.ignored(rel):
            return
        try:
            st = path.lstat()
        except OSError:
            self._forget(path)
            return
        if not (path.is_file() or path.is_symlink()):
            return
        with self._cond:
            self._track(path, st, complete=complete, quiet=quiet,
                        writing=writing and self.active_mode == "native")
            self._cond.notify_all()

    def _track(self, path: Path, st: os.stat_result, *, complete: bool, quiet: float,
               writing: bool = False) -> None:
        now = self.clock.monotonic()
        known = self._pending.get(path)
        if known is None:
            self._pending[path] = _Pending(st.st_size, st.st_mtime_ns, now, complete, quiet,
                                           writing)
            return
        if writing:
            known.writing = True
        if complete:
            known.complete_signal = True
            known.writing = False
            known.quiet = quiet
        elif (st.st_size, st.st_mtime_ns) != (known.size, known.mtime_ns):
            known.complete_signal = False  # written again after the close: wait once more
            known.quiet = self.settle if self.active_mode == "polling" else known.quiet
        known.size, known.mtime_ns, known.last_event = st.st_size, st.st_mtime_ns, now

    def _forget(self, path: Path) -> None:
        with self._cond:
            self._pending.pop(path, None)
            for p in [p for p in self._pending if p.is_relative_to(path)]:
                del self._pending[p]

    def _dir_arrived(self, path: Path) -> None:
        """A folder created or moved in: its files may never get their own events."""
        for file, st in self._walk_under(path):
            with self._cond:
                self._track(file, st, complete=False, quiet=self.settle)
        with self._cond:
            self._cond.notify_all()

    def _walk_under(self, folder: Path):  # type: ignore[no-untyped-def]
        for root, dirs, files in os.walk(folder):
            for name in files:
                p = Path(root, name)
                rel = p.relative_to(self.inbox).as_posix()
                if self.ignore.ignored(rel):
                    continue
                try:
                    yield p, p.lstat()
                except OSError:
                    continue
            dirs[:] = [d for d in dirs
                       if not self.ignore.ignored(Path(root, d).relative_to(self.inbox).as_posix())]

    # --- the settling thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                timeout = self._next_deadline() - self.clock.monotonic()
                if timeout > 0:
                    self._cond.wait(timeout=min(timeout, 1.0))
                if self._stopping:
                    return
            self._emit_ready()
            if self.rescan_every > 0 and self.clock.monotonic() >= self._next_rescan:
                self._next_rescan = self.clock.monotonic() + self.rescan_every
                try:
                    self.scan()
                except Exception:  # the safety net must never take the watcher down
                    log.exception("inbox rescan failed")

    def _next_deadline(self) -> float:
        deadlines = [p.last_event + self._wait_for(p) for p in self._pending.values()
                     if not p.writing]
        if self.rescan_every > 0:
            deadlines.append(self._next_rescan)
        return min(deadlines, default=self.clock.monotonic() + 1.0)

    def _wait_for(self, p: _Pending) -> float:
        if p.writing:
            # Someone has it open for writing (a scanner adding pages): only its close says
            # it is finished, however long the pauses between writes.
            return math.inf
        return p.quiet if p.complete_signal else max(p.quiet, self.settle)

    def _emit_ready(self) -> None:
        now = self.clock.monotonic()
        ready: list[Path] = []
        with self._cond:
            for path, p in list(self._pending.items()):
                if now - p.last_event < self._wait_for(p):
                    continue
                try:
                    st = path.lstat()
                except OSError:
                    del self._pending[path]
                    continue
                if (st.st_size, st.st_mtime_ns) != (p.size, p.mtime_ns):
                    # changed without an event we saw: start the window again
                    p.size, p.mtime_ns, p.last_event = st.st_size, st.st_mtime_ns, now
                    p.complete_signal = False
                    continue
                del self._pending[path]
                ready.append(path)
        if ready:
            self.on_ready(ready)


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


#: The events the handler acts on.  On Linux the filter is also the inotify mask, so the
#: opens and plain closes of docinbox's own reads (hashing, inspecting, uploading each
#: document) are never generated, instead of crossing watchdog's threads to be dropped.
_EVENTS = (FileClosedEvent, FileMovedEvent, DirMovedEvent, FileCreatedEvent, DirCreatedEvent,
           FileModifiedEvent, FileDeletedEvent, DirDeletedEvent)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        w = self.w
        try:
            if isinstance(event, FileClosedEvent):  # close-after-write (inotify)
                w._event(Path(os.fsdecode(event.src_path)), complete=True, quiet=w.quiet)
            elif isinstance(event, FileMovedEvent):
                # With full events an unmatched move has an empty side: "" → moved in
                # from outside the inbox, "" ← moved out of it.
                if event.src_path:
                    w._forget(Path(os.fsdecode(event.src_path)))
                if event.dest_path:
                    w._event(Path(os.fsdecode(event.dest_path)), complete=True, quiet=0.0)
            elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
                w._event(Path(os.fsdecode(event.src_path)), complete=False,
                         quiet=w.settle if w.active_mode == "polling" else w.quiet,
                         writing=isinstance(event, FileModifiedEvent))
            elif isinstance(event, FileDeletedEvent):
                w._forget(Path(os.fsdecode(event.src_path)))
            elif isinstance(event, DirMovedEvent):
                if event.src_path:
                    w._forget(Path(os.fsdecode(event.src_path)))
                if event.dest_path:
                    w._dir_arrived(Path(os.fsdecode(event.dest_path)))
            elif isinstance(event, DirCreatedEvent):
                w._dir_arrived(Path(os.fsdecode(event.src_path)))
        except Exception:  # an odd event must not kill the observer thread
            log.exception("error handling %r", event)
