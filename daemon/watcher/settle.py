"""When is a file in the inbox completely written?  A pure tracker: no threads, no I/O.

The watcher feeds it what it sees, each time with the current (monotonic) time:

====================  ======================================================================
``written``           a write or a creation event: someone is writing
``closed``            a close-after-write (inotify): done, unless written again soon
``arrived``           a rename into the inbox: the writer's own "finished" signal
``found``             a file found by a scan (start-up, rescan, a folder moved in), with
                      its age (now minus its mtime)
``gone``              deleted or moved out (a folder: everything under it)
====================  ======================================================================

and asks which files are due for a look now (``due``) and when to ask again
(``next_check``).  A look is the watcher's job: a stat, and for most files whether any
process has it open for writing.  The answers go back through ``looked``, which says which
files are ready.  Nothing here reads a clock, so tests drive it without sleeping.

The rules, checked at each look:

- the file must still be there, with the size, mtime and inode last seen (otherwise it
  changed without an event: it waits a whole settle window again);
- a file some process holds open for writing is never ready, whatever its mtime (a
  scanner adding a page every few seconds); it is looked at again every settle window;
- a rename into the inbox is ready at once (no writer check: the writer said it is done,
  and the check costs a scan of every process's open files);
- a close-after-write is ready after ``quiet`` seconds with no further write;
- a file that was already handed over and is written again (a writer that reopens the
  file for each page) is simply handed over again once it settles, and from then on waits
  ``settle`` rather than ``quiet`` after each close, so its next pages collapse into fewer
  hand-overs; the engine handles a changed file;
- otherwise (no close event: polling, other platforms, scans) a file is ready once nothing
  changed for ``settle`` seconds and no process has it open for writing;
- with close events, a file written to but not closed waits for its close when nobody can
  say whether it is still open (another user's process, which ``/proc`` hides); only after
  ``patience`` seconds without a change is it taken (a lost close event).
"""

from __future__ import annotations

import heapq
import itertools
import math
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileState:
    """What must not change while a file settles."""

    size: int
    mtime_ns: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileState:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


@dataclass(frozen=True)
class Look:
    """What the watcher found when it looked at a due file."""

    state: FileState | None  #: None: the file is gone
    writing: bool | None = None  #: held open for writing; None: nobody can tell


@dataclass
class _Entry:
    state: FileState
    changed: float  # when it last changed (monotonic)
    deadline: float  # when to look at it next (math.inf: only an event brings it back)
    closed: bool = False  # a close-after-write or a rename-in came after the last write
    wrote: bool = False  # a write event was seen (with close events: wait for the close)
    check_writers: bool = True  # the look must ask whether it is open for writing
    reopened: bool = False  # handed over before, and written again since
    version: int = 0  # bumped by every observation: a look begun before one is stale
    slot: int | None = None  # the heap item that stands for this entry
    slot_at: float = math.inf


@dataclass(frozen=True)
class _Report:
    state: FileState
    changed: float
    at: float


class SettleTracker:
    """Pending files and their deadlines.  Not thread-safe: the watcher holds a lock."""

    def __init__(
        self,
        *,
        quiet: float,
        settle: float,
        close_events: bool,
        patience: float = math.inf,
        remember: float = 60.0,
    ) -> None:
        self.quiet = quiet
        self.settle = settle
        #: Whether close-after-write events exist (inotify); the watcher updates it when
        #: it falls back to polling or back to native watching.
        self.close_events = close_events
        self.patience = patience
        self.remember = remember
        self._entries: dict[Path, _Entry] = {}
        # (deadline, seq, path); an item whose seq is not its entry's slot is stale
        self._heap: list[tuple[float, int, Path]] = []
        self._seq = itertools.count()
        self._versions = itertools.count(1)
        self._looking: dict[Path, int] = {}
        self._reported: OrderedDict[Path, _Report] = OrderedDict()

    # --- observations -------------------------------------------------------------------

    def written(self, path: Path, state: FileState, now: float) -> None:
        e = self._touch(path, state, now, changed=True)
        e.closed, e.wrote, e.check_writers = False, True, True
        self._schedule(e, path, now + self.settle)

    def closed(self, path: Path, state: FileState, now: float) -> None:
        e = self._touch(path, state, now, changed=True)
        e.closed, e.check_writers = True, True
        self._schedule(e, path, now + (self.settle if e.reopened else self.quiet))

    def arrived(self, path: Path, state: FileState, now: float) -> None:
        e = self._touch(path, state, now, changed=True, replaced=True)
        e.closed, e.wrote, e.check_writers = True, False, False
        self._schedule(e, path, now)

    def found(self, path: Path, state: FileState, age: float, now: float) -> None:
        """A file a scan found; *age* is how long ago it was last modified."""
        e = self._entries.get(path)
        if e is not None:
            if e.state != state:
                self._changed(e, path, state, now)  # changed without an event we saw
            return
        e = self._touch(path, state, now, changed=True)
        e.changed = now - max(age, 0.0)  # an mtime in the future counts as now
        self._schedule(e, path, e.changed + self.settle)

    def gone(self, path: Path, *, folder: bool = False) -> None:
        """Deleted or moved out of the inbox; a *folder* takes everything under it along."""
        self._entries.pop(path, None)
        self._reported.pop(path, None)
        if folder:
            for p in [p for p in self._entries if p.is_relative_to(path)]:
                del self._entries[p]
            for p in [p for p in self._reported if p.is_relative_to(path)]:
                del self._reported[p]

    def clear(self) -> None:
        """Forget everything (the inbox itself went away)."""
        self._entries.clear()
        self._heap.clear()
        self._looking.clear()
        self._reported.clear()

    # --- questions ------------------------------------------------------------------------

    def due(self, now: float) -> list[Path]:
        """Files whose wait is over: look at each (``wants_writers`` says whether the look
        must include the open-for-writing check) and report through ``looked``."""
        self._expire(now)
        paths: list[Path] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _at, seq, path = heapq.heappop(heap)
            e = self._entries.get(path)
            if e is None or e.slot != seq:
                continue  # stale: the entry is gone or has an earlier item
            e.slot, e.slot_at = None, math.inf
            if e.deadline > now:  # moved later since this item was pushed
                self._schedule(e, path, e.deadline)
                continue
            self._looking[path] = e.version
            paths.append(path)
        return paths

    def wants_writers(self, path: Path) -> bool:
        e = self._entries.get(path)
        return e is not None and e.check_writers

    def looked(self, now: float, looks: Mapping[Path, Look]) -> list[Path]:
        """The results of looking at due files; returns those that are ready (and forgets
        them, remembering for a while that they were handed over)."""
        ready: list[Path] = []
        for path, look in looks.items():
            version = self._looking.pop(path, None)
            e = self._entries.get(path)
            if e is None or version != e.version:
                continue  # something happened while we looked: its new deadline stands
            if look.state is None:
                del self._entries[path]
                continue
            if look.state != e.state:  # changed without an event we saw: wait again
                self._changed(e, path, look.state, now)
                continue
            if look.writing:  # still open for writing: look again a settle window later
                e.closed = False
                self._schedule(e, path, now + self.settle)
                continue
            waiting_for_close = self.close_events and e.wrote and not e.closed
            if waiting_for_close and look.writing is None and now - e.changed < self.patience:
                self._schedule(e, path, e.changed + self.patience)
                continue
            del self._entries[path]
            self._reported[path] = _Report(e.state, e.changed, now)
            self._reported.move_to_end(path)
            ready.append(path)
        return ready

    def next_check(self) -> float | None:
        """When ``due`` may next return something (None: not until an observation)."""
        heap = self._heap
        while heap:
            _at, seq, path = heap[0]
            e = self._entries.get(path)
            if e is not None and e.slot == seq:
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def pending(self) -> int:
        return len(self._entries)

    def is_pending(self, path: Path) -> bool:
        """Seen, and not yet handed over (being written, or settling)."""
        return path in self._entries

    def last_change(self, path: Path, now: float) -> float | None:
        """When the file last changed, as far as the watcher saw: while it is pending, or
        for ``remember`` seconds after it was handed over; else None."""
        e = self._entries.get(path)
        if e is not None:
            return e.changed
        self._expire(now)
        report = self._reported.get(path)
        return report.changed if report is not None else None

    # --- internals ------------------------------------------------------------------------

    def _touch(
        self, path: Path, state: FileState, now: float, *, changed: bool, replaced: bool = False
    ) -> _Entry:
        e = self._entries.get(path)
        if e is None:
            report = self._reported.get(path)
            # Written again after it was handed over: a writer that reopens the file.
            reopened = (
                not replaced
                and report is not None
                and report.state != state
                and now - report.at <= self.remember
            )
            e = self._entries[path] = _Entry(state, now, math.inf, reopened=reopened)
        e.state = state
        if changed:
            e.changed = now
        if replaced:
            e.reopened = False
        e.version = next(self._versions)
        return e

    def _changed(self, e: _Entry, path: Path, state: FileState, now: float) -> None:
        self._touch(path, state, now, changed=True)
        e.closed, e.check_writers = False, True
        self._schedule(e, path, now + self.settle)

    def _schedule(self, e: _Entry, path: Path, when: float) -> None:
        e.deadline = when
        if when < e.slot_at:  # a later deadline keeps its earlier item (lazy rescheduling)
            e.slot = next(self._seq)
            e.slot_at = when
            if when < math.inf:
                heapq.heappush(self._heap, (when, e.slot, path))

    def _expire(self, now: float) -> None:
        reported = self._reported
        while reported:
            path, report = next(iter(reported.items()))
            if now - report.at <= self.remember:
                break
            del reported[path]
