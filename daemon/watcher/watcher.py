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
  this process holds; the watcher then polls the inbox, logs one warning saying how to
  raise the limit, and goes back to native watching by itself once it can;
- the inbox deleted, moved away or replaced is noticed within a second (a ``stat`` of the
  inbox each second; watchdog also reports the deletion of the watched folder itself):
  the watcher stops the dead observer, re-creates the inbox when it owns it (it is not a
  mount point and its parent folder still exists; a missing parent means a disconnected
  drive or share, and nothing is created there), watches the new folder, rescans, and
  logs one warning;
- an observer that dies for any other reason is restarted.

``active_mode`` always says what is true now: ``native``, ``polling``, ``polling (inotify
watch limit reached)``, ``none (inbox missing)``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
import sys
import threading
from collections.abc import Callable, Iterable
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
from . import inotify
from .ignore import IgnoreRules
from .settle import FileState, Look, SettleTracker
from .writers import UNKNOWN, WriterCheck, Writers, platform_check

log = logging.getLogger("docinbox.watcher")

ReadyCallback = Callable[[list[Path]], None]
_Key = tuple[int, int]  # (st_dev, st_ino)

#: How often the inbox folder itself is checked (one stat): a deleted or replaced inbox
#: is noticed within this long even when watchdog says nothing (moved to the trash).
HEALTH_SECONDS = 1.0
#: After falling back to polling for a limit, how often native watching is tried again
#: (at once when the limit's sysctl changes).
NATIVE_RETRY_SECONDS = 600.0
#: How long a handed-over file is remembered: written again within this long, it is a
#: writer that reopens the file (a page at a time), not a new document.
REMEMBER_SECONDS = 60.0

_LINUX = sys.platform.startswith("linux")


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
        writers: WriterCheck | None = None,
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
        if writers is None:
            writers, how = platform_check()
            log.debug("open-for-writing check: %s", how)
        self._writers = writers
        self._tracker = SettleTracker(
            quiet=quiet_seconds,
            settle=settle_seconds,
            close_events=False,
            patience=rescan_seconds if rescan_seconds > 0 else math.inf,
            remember=REMEMBER_SECONDS,
        )
        self._cond = threading.Condition()
        self._look_lock = threading.Lock()  # one look at a time (start's scan, the thread)
        self._stopping = False
        self._urgent = False
        self._wake_at = -math.inf
        self._thread: threading.Thread | None = None
        self._observer: BaseObserver | None = None
        #: What the observer watches: the inbox with symbolic links resolved (inotify
        #: would watch a link to a folder as the link itself).
        self._root = inbox
        self._identity: _Key | None = None
        self._owned = True  # docinbox may create the inbox again (not a mount point)
        self._next_rescan = math.inf
        self._lost_since: float | None = None
        self._lost_warned = False
        self._inbox_deleted = False  # watchdog reported the inbox folder itself deleted
        self._degraded: str | None = None  # why polling replaced native watching
        self._limits_seen: tuple[int | None, ...] = ()
        self._next_native_retry = math.inf
        self._arrived: set[Path] = set()  # folders created or moved in: walk, check watches
        self._suspects: set[Path] = set()  # unwatched folders inotify would accept: recheck
        self._restarts_for_gaps = 0
        self._unreadable: set[Path] = set()
        self._writer_check_failed = False
        self.active_mode = "none"

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
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        observer, self._observer = self._observer, None
        _stop(observer)

    # --- what the rest of docinbox sees -----------------------------------------------------

    def pending_count(self) -> int:
        """Files seen and not handed over yet (being written, or settling)."""
        with self._cond:
            return self._tracker.pending()

    def is_pending(self, path: Path) -> bool:
        """The watcher still considers *path* unfinished (a writer holds it open, or it
        changed within the quiet/settle window): an engine finding it truncated should
        wait for the watcher to hand it over again rather than fail it."""
        with self._cond:
            return self._tracker.is_pending(path)

    def last_change(self, path: Path) -> float | None:
        """``clock.monotonic()`` time of the last write the watcher saw to *path*, while it
        is pending and for a minute after it was handed over; None when unknown."""
        with self._cond:
            return self._tracker.last_change(path, self.clock.monotonic())

    def scan(self, *, initial: bool = False) -> None:
        """Walk the inbox: files not modified within the settle window and open for writing
        by no process are handed over at once; the others are tracked until they are."""
        files, folders = self._walk(self.inbox)
        now_wall, now = self.clock.now(), self.clock.monotonic()
        with self._cond:
            for path, st in files:
                self._tracker.found(path, FileState.of(st), now_wall - st.st_mtime, now)
        self._check_coverage(folders)
        self._settle_due(fresh=dict(files))
        if not initial:
            log.debug("rescan: %d files, %d pending", len(files), self.pending_count())

    # --- watching the inbox folder ----------------------------------------------------------

    def _attach(self, *, initial: bool = False) -> None:
        """Watch the inbox folder as it is now (raises OSError when it cannot)."""
        st = os.stat(self.inbox)
        self._root = self.inbox.resolve()
        self._owned = not os.path.ismount(self.inbox)
        observer, mode, close_events = self._start_observer(initial=initial)
        with self._cond:
            if self._stopping:
                mode = "none"
            self._identity = (st.st_dev, st.st_ino)
            self._observer = observer
            self.active_mode = mode
            self._tracker.close_events = close_events
        if self._stopping:
            self._observer = None
            _stop(observer)

    def _start_observer(self, *, initial: bool) -> tuple[BaseObserver, str, bool]:
        """An observer started on the inbox: (observer, mode, whether it reports closes)."""
        if self._observer_factory is not None:
            observer = self._observer_factory()
            self._schedule(observer)
            polling = isinstance(observer, PollingObserver)
            return observer, "polling" if polling else "native", _reports_closes(observer)
        if self.mode != "polling":
            native: BaseObserver | None = None
            try:
                native = _native_observer()
                self._schedule(native)
            except OSError as exc:  # inotify limits, a file system inotify cannot watch
                _stop(native)
                if self.mode == "native" and initial:
                    raise OSError(f"cannot watch {self.inbox} natively: {exc}") from exc
                return self._polling_observer(), self._degrade(exc), False
            self._degraded = None
            return native, "native", _reports_closes(native)
        return self._polling_observer(), "polling", False

    def _schedule(self, observer: BaseObserver) -> None:
        observer.schedule(
            _Handler(self), str(self._root), recursive=True, event_filter=list(_EVENTS)
        )
        observer.start()

    def _polling_observer(self) -> BaseObserver:
        observer = PollingObserver(timeout=self._poll_interval())
        self._schedule(observer)
        return observer

    def _poll_interval(self) -> float:
        return max(0.5, self.settle / 2)

    def _watching_natively(self) -> bool:
        return _LINUX and self.active_mode == "native" and self._tracker.close_events

    def _degrade(self, exc: OSError) -> str:
        """Native watching failed: say so once, with what to do; poll meanwhile.  Returns
        the mode to report."""
        reason, advice = _explain(exc)
        if self._degraded != reason:
            log.warning(
                "cannot watch %s natively: %s. Polling it instead: new files are seen within "
                "about %.1f s, at more CPU on a large inbox. %s",
                self.inbox,
                reason,
                self._poll_interval() + self.settle,
                advice,
            )
        self._degraded = reason
        self._limits_seen = inotify.limits_signature() if _LINUX else ()
        self._next_native_retry = self.clock.monotonic() + NATIVE_RETRY_SECONDS
        return f"polling ({reason})"

    def _fall_back(self, exc: OSError) -> None:
        """From native watching with holes in it to polling the whole inbox."""
        polling = self._polling_observer()
        mode = self._degrade(exc)
        with self._cond:
            old, self._observer = self._observer, polling
            self.active_mode = mode
            self._tracker.close_events = False
        _stop(old)
        self._restarts_for_gaps = 0
        self._suspects.clear()
        self.scan(initial=True)  # files dropped into unwatched folders meanwhile

    def _maybe_restore_native(self, now: float) -> None:
        """Polling because of a limit: try native watching again when the limit changed, or
        every NATIVE_RETRY_SECONDS (other programs may have released watches)."""
        if self._degraded is None or self._observer_factory is not None or not _LINUX:
            return
        limits = inotify.limits_signature()
        if now < self._next_native_retry and limits == self._limits_seen:
            return
        self._limits_seen = limits
        self._next_native_retry = now + NATIVE_RETRY_SECONDS
        trial = None
        try:
            trial = _native_observer()
            self._schedule(trial)
        except OSError as exc:
            _stop(trial)
            log.debug("native watching still unavailable: %s", exc)
            return
        _files, folders = self._walk(self.inbox, files=False)
        gaps = self._gaps(folders)
        if gaps:
            _stop(trial)
            log.debug("native watching still unavailable: %d folders unwatched", len(gaps))
            return
        with self._cond:
            old, self._observer = self._observer, trial
            self.active_mode = "native"
            self._tracker.close_events = _reports_closes(trial)
        _stop(old)
        log.info("%s no longer: watching %s natively again", self._degraded, self.inbox)
        self._degraded = None
        self.scan(initial=True)

    def _check_coverage(self, folders: Iterable[tuple[Path, _Key]]) -> None:
        """Every folder of the inbox must have its inotify watch (native mode, Linux)."""
        if not self._watching_natively():
            return
        gaps = self._gaps(folders)
        if not gaps:
            self._restarts_for_gaps = 0
            return
        error = inotify.probe(gaps[0])
        if error is None:
            # The kernel would take a watch now: a folder created as we looked (its watch
            # is on its way), or one watchdog missed.  Look again at the next tick; still
            # missing then, restart the observer; still missing after that, poll.
            fresh = [p for p in gaps if p not in self._suspects]
            self._suspects.update(gaps)
            if fresh:
                return
            self._suspects.clear()
            if self._restarts_for_gaps < 1:
                self._restarts_for_gaps += 1
                log.info(
                    "%d folders of %s were not watched; restarting the watcher",
                    len(gaps),
                    self.inbox,
                )
                self._reattach()
                return
            error = OSError(errno.EIO, f"{len(gaps)} folders could not be watched")
        elif error.errno in (errno.ENOENT, errno.EACCES, errno.ENOTDIR):
            return  # gone since, or unreadable (the scan says so): polling would not help
        self._fall_back(error)

    def _gaps(self, folders: Iterable[tuple[Path, _Key]]) -> list[Path]:
        watched = inotify.watched()
        if watched is None:
            return []
        missing: list[Path] = []
        for path, key in folders:
            if key in watched:
                continue
            try:  # still there, still the same folder?
                st = os.stat(path) if path == self.inbox else os.lstat(path)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) == key:
                missing.append(path)
        return missing

    def _check_inbox(self, now: float) -> None:
        """Is the inbox still the folder we watch?  If not, watch what is there now."""
        try:
            st = os.stat(self.inbox)
            identity: _Key | None = (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None
        except OSError:
            identity = None
        if identity is not None and identity == self._identity:
            observer = self._observer
            if observer is not None and not _alive(observer):
                log.warning("the file watcher on %s stopped unexpectedly; restarted it", self.inbox)
                self._reattach()
            return
        created = False
        if identity is None:
            if self._lost_since is None:
                self._lost_since = now
                self._detach("none (inbox missing)")
            if now - self._lost_since < max(self.settle, HEALTH_SECONDS):
                return  # give whoever deleted it the chance to create it again
            parent_there = self.inbox.parent.is_dir()
            if not (self._owned and parent_there):
                if not self._lost_warned:
                    self._lost_warned = True
                    if not parent_there:
                        why = f", and so is {self.inbox.parent} (a disconnected drive or share?)"
                    else:
                        why = " (it was a mount point: docinbox does not create it)"
                    log.warning(
                        "the inbox %s is gone%s; docinbox watches it again as soon as it is back",
                        self.inbox,
                        why,
                    )
                return
            try:
                self.inbox.mkdir()
                created = True
            except FileExistsError:
                return  # someone is creating it: watch it at the next tick
            except OSError as exc:
                if not self._lost_warned:
                    self._lost_warned = True
                    log.warning(
                        "the inbox %s is gone and cannot be created again: %s", self.inbox, exc
                    )
                return
        lost, warned = self._lost_since is not None or self._inbox_deleted, self._lost_warned
        self._detach("none (inbox missing)")
        try:
            self._attach()
        except OSError as exc:
            log.warning("cannot watch %s: %s; trying again", self.inbox, exc)
            return
        self._lost_since, self._lost_warned, self._inbox_deleted = None, False, False
        if created:
            log.warning(
                "the inbox %s was deleted; docinbox created it again and watches it (%s mode)",
                self.inbox,
                self.active_mode,
            )
        elif warned:
            log.info("the inbox %s is back; watching it (%s mode)", self.inbox, self.active_mode)
        elif lost:
            log.warning(
                "the inbox %s was deleted and created again; watching the new folder (%s mode)",
                self.inbox,
                self.active_mode,
            )
        else:
            log.warning(
                "the inbox %s was replaced by another folder (the old one deleted or "
                "moved away, or a drive mounted or unmounted there); watching the new one "
                "(%s mode)",
                self.inbox,
                self.active_mode,
            )
        self.scan(initial=True)

    def _detach(self, mode: str, *, forget: bool = True) -> None:
        """Stop watching; *forget* what was pending when the folder itself is gone."""
        with self._cond:
            observer, self._observer = self._observer, None
            self._identity = None
            self.active_mode = mode
            if forget:
                self._tracker.clear()
                self._arrived.clear()
        self._suspects.clear()
        _stop(observer)

    def _reattach(self) -> None:
        """The same inbox, a new observer (the old one died, or missed folders)."""
        self._detach(self.active_mode, forget=False)
        try:
            self._attach()
        except OSError as exc:
            log.warning("cannot watch %s: %s; trying again", self.inbox, exc)
            return
        self.scan(initial=True)

    # --- the timer thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._stopping and not self._urgent:
                    now = self.clock.monotonic()
                    next_check = self._tracker.next_check()
                    wake = min(
                        math.inf if next_check is None else next_check,
                        self._next_rescan,
                        now + HEALTH_SECONDS,
                    )
                    if wake > now:
                        self._wake_at = wake
                        self._cond.wait(min(wake - now, HEALTH_SECONDS))
                        self._wake_at = -math.inf
                if self._stopping:
                    return
                self._urgent = False
            try:
                self._tick()
            except Exception:  # the watcher must outlive any odd file or event
                log.exception("the inbox watcher hit an unexpected error; it carries on")

    def _tick(self) -> None:
        now = self.clock.monotonic()
        self._check_inbox(now)
        if self._observer is None:
            return  # the inbox is missing
        self._check_arrivals()
        self._maybe_restore_native(now)
        self._settle_due()
        if self.clock.monotonic() >= self._next_rescan:
            self._next_rescan = self.clock.monotonic() + self.rescan_every
            self.scan()

    def _check_arrivals(self) -> None:
        """Folders created or moved in: their files may have no events of their own, and
        each needs its watch."""
        with self._cond:
            arrived, self._arrived = self._arrived, set()
        suspects = [
            (p, k) for p in self._suspects if (k := _key(p, follow=p == self.inbox)) is not None
        ]
        if not arrived and not suspects:
            return
        now_wall, now = self.clock.now(), self.clock.monotonic()
        folders: list[tuple[Path, _Key]] = list(suspects)
        for folder in arrived:
            files, subfolders = self._walk(folder)
            folders += subfolders
            with self._cond:
                for path, st in files:
                    self._tracker.found(path, FileState.of(st), now_wall - st.st_mtime, now)
        self._check_coverage(folders)

    def _settle_due(self, fresh: dict[Path, os.stat_result] | None = None) -> None:
        """Look at the files whose wait is over; hand over those that are ready.  *fresh*:
        stats a walk took a moment ago (not taken again: 10,000 files at start-up)."""
        with self._look_lock:
            with self._cond:
                due = self._tracker.due(self.clock.monotonic())
                check = {p for p in due if self._tracker.wants_writers(p)}
            if not due:
                return
            stats: dict[Path, os.stat_result | None] = {}
            for path in due:
                st = fresh.get(path) if fresh else None
                if st is None:
                    try:
                        st = os.lstat(path)
                    except OSError:
                        stats[path] = None
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        st = None
                stats[path] = st
            candidates = {p: st for p in check if (st := stats[p]) is not None}
            writers = self._writers_of(candidates) if candidates else UNKNOWN
            looks = {
                p: Look(
                    FileState.of(st) if st is not None else None,
                    writers.writing(p) if p in check else None,
                )
                for p, st in stats.items()
            }
            with self._cond:
                ready = self._tracker.looked(self.clock.monotonic(), looks)
            if ready:
                self.on_ready(ready)

    def _writers_of(self, candidates: dict[Path, os.stat_result]) -> Writers:
        try:
            return self._writers(candidates)
        except Exception:
            if not self._writer_check_failed:
                self._writer_check_failed = True
                log.exception(
                    "cannot tell which files are open for writing; "
                    "relying on size and mtime settling"
                )
            return UNKNOWN

    # --- the inbox on disk ----------------------------------------------------------------------

    def _walk(
        self, top: Path, *, files: bool = True
    ) -> tuple[list[tuple[Path, os.stat_result]], list[tuple[Path, _Key]]]:
        """Files (with their lstat) and folders (with their identity) under *top*, minus
        the ignored ones; *top* itself is among the folders."""
        found: list[tuple[Path, os.stat_result]] = []
        folders: list[tuple[Path, _Key]] = []
        key = _key(top, follow=top == self.inbox)
        if key is None:
            return found, folders
        folders.append((top, key))
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                with os.scandir(folder) as it:
                    entries = list(it)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if folder not in self._unreadable:
                    self._unreadable.add(folder)
                    log.warning("cannot read %s: %s", folder, exc)
                continue
            for entry in entries:
                # the folders above passed the ignore rules already: only this name counts
                if self.ignore.ignored_name(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        path = folder / entry.name
                        st = entry.stat(follow_symlinks=False)
                        folders.append((path, (st.st_dev, st.st_ino)))
                        stack.append(path)
                    elif files:
                        # Every entry that is not a folder: a FIFO or a device named like a
                        # document reaches admission, which refuses it with an error file.
                        found.append((folder / entry.name, entry.stat(follow_symlinks=False)))
                except OSError:
                    continue
        return found, folders
        folders.append((top, key))
        stack = [top]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except FileNotFoundError:
                continue
            except OSError as exc:
                if folder not in self._unreadable:
                    self._unreadable.add(folder)
                    log.warning("cannot read %s: %s", folder, exc)
                continue
            for entry in entries:
                path = Path(entry.path)
                if self.ignore.ignored(path.relative_to(self.inbox).as_posix()):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        folders.append((path, (st.st_dev, st.st_ino)))
                        stack.append(path)
                    elif files and (entry.is_file(follow_symlinks=False) or entry.is_symlink()):
                        found.append((path, entry.stat(follow_symlinks=False)))
                except OSError:
                    continue
        return found, folders

    # --- events (watchdog's thread) ---------------------------------------------------------------

    def _on_event(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent):  # close-after-write (inotify)
            self._file_event(event.src_path, self._tracker.closed)
        elif isinstance(event, FileMovedEvent):
            # With full events an unmatched move has an empty side: "" → moved in from
            # outside the inbox, "" ← moved out of it.
            self._gone(event.src_path, folder=False)
            self._file_event(event.dest_path, self._tracker.arrived)
        elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
            self._file_event(event.src_path, self._tracker.written)
        elif isinstance(event, FileDeletedEvent):
            self._gone(event.src_path, folder=False)
        elif isinstance(event, DirMovedEvent):
            self._gone(event.src_path, folder=True)
            self._folder_arrived(event.dest_path)
        elif isinstance(event, DirCreatedEvent):
            self._folder_arrived(event.src_path)
        elif isinstance(event, DirDeletedEvent):
            path = self._in_inbox(event.src_path)
            if path == self.inbox:  # the inbox itself: the health check takes over
                with self._cond:
                    self._inbox_deleted = True
                    self._urgent = True
                    self._cond.notify()
            else:
                self._gone(event.src_path, folder=True)

    def _in_inbox(self, raw: bytes | str) -> Path | None:
        if not raw:
            return None
        path = Path(os.fsdecode(raw))
        if self._root != self.inbox:
            try:
                path = self.inbox / path.relative_to(self._root)
            except ValueError:
                return None
        return path

    def _file_event(
        self, raw: bytes | str, observe: Callable[[Path, FileState, float], None]
    ) -> None:
        path = self._in_inbox(raw)
        if path is None:
            return
        try:
            rel = path.relative_to(self.inbox).as_posix()
        except ValueError:
            return
        if rel == "." or self.ignore.ignored(rel):
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._gone(raw, folder=False)
            return
        if stat.S_ISDIR(st.st_mode):
            return
        with self._cond:
            observe(path, FileState.of(st), self.clock.monotonic())
            nxt = self._tracker.next_check()
            if nxt is not None and nxt < self._wake_at:
                self._cond.notify()

    def _gone(self, raw: bytes | str, *, folder: bool) -> None:
        path = self._in_inbox(raw)
        if path is not None:
            with self._cond:
                self._tracker.gone(path, folder=folder)

    def _folder_arrived(self, raw: bytes | str) -> None:
        path = self._in_inbox(raw)
        if path is None or path == self.inbox:
            return
        try:
            if self.ignore.ignored(path.relative_to(self.inbox).as_posix()):
                return
        except ValueError:
            return
        with self._cond:
            self._arrived.add(path)
            self._urgent = True
            self._cond.notify()


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


def _alive(observer: BaseObserver) -> bool:
    """The observer thread and its emitters (one dies when its watched folder is deleted)."""
    is_alive = getattr(observer, "is_alive", None)
    if is_alive is not None and not is_alive():
        return False
    return all(emitter.is_alive() for emitter in getattr(observer, "emitters", ()))


def _stop(observer: BaseObserver | None) -> None:
    if observer is None:
        return
    with contextlib.suppress(Exception):  # stopping a half-started observer
        observer.stop()
        if getattr(observer, "is_alive", lambda: False)():
            observer.join(timeout=5)


def _key(path: Path, *, follow: bool = False) -> _Key | None:
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


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


#: The events the handler acts on.  On Linux the filter is also the inotify mask, so the
#: opens and plain closes of docinbox's own reads (hashing, inspecting, uploading each
#: document) are never generated, instead of crossing watchdog's threads to be dropped.
_EVENTS = (
    FileClosedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self.w._on_event(event)
        except Exception:  # an odd event must not kill the observer thread
            log.exception("error handling %r", event)
