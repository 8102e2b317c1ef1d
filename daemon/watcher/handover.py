"""Looking at the files whose wait is over, and handing the ready ones over.

A look is one ``stat`` of each due file (or the one a walk took a moment ago) and, for
the files the tracker asks about, one open-for-writing check for the whole batch
(``writers.py``); the tracker says which files are ready, and they go to ``on_ready`` in
one call.  Owns the check (the platform's unless one is injected) and the one error it
logs when that check fails.  One look at a time: start-up's scan runs on the caller's
thread, everything else on the timer thread.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from .settle import FileState, Look
from .shared import Shared
from .writers import UNKNOWN, WriterCheck, Writers, platform_check

log = logging.getLogger("docinbox.watcher")

ReadyCallback = Callable[[list[Path]], None]


class Handover:
    """From due files to ``on_ready``."""

    def __init__(
        self, shared: Shared, on_ready: ReadyCallback, writers: WriterCheck | None
    ) -> None:
        self.shared = shared
        self.on_ready = on_ready
        if writers is None:
            writers, how = platform_check()
            log.debug("open-for-writing check: %s", how)
        self._writers = writers
        self._lock = threading.Lock()  # one look at a time (start's scan, the thread)
        self._writer_check_failed = False

    def settle_due(self, fresh: dict[Path, os.stat_result] | None = None) -> None:
        """Look at the files whose wait is over; hand over those that are ready.  *fresh*:
        stats a walk took a moment ago (not taken again: 10,000 files at start-up)."""
        shared, tracker = self.shared, self.shared.tracker
        with self._lock:
            with shared.cond:
                due = tracker.due(shared.clock.monotonic())
                check = {p for p in due if tracker.wants_writers(p)}
            if not due:
                return
            stats = _stats(due, fresh or {})
            candidates = {p: st for p in check if (st := stats[p]) is not None}
            writers = self._writers_of(candidates) if candidates else UNKNOWN
            looks = {
                p: Look(
                    FileState.of(st) if st is not None else None,
                    writers.writing(p) if p in check else None,
                )
                for p, st in stats.items()
            }
            with shared.cond:
                ready = tracker.looked(shared.clock.monotonic(), looks)
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


def _stats(due: list[Path], fresh: dict[Path, os.stat_result]) -> dict[Path, os.stat_result | None]:
    """Each due file's lstat (a fresh one when the walk took it); None: gone, or a folder
    now."""
    stats: dict[Path, os.stat_result | None] = {}
    for path in due:
        st = fresh.get(path)
        if st is None:
            try:
                st = os.lstat(path)
            except OSError:
                stats[path] = None
                continue
            if stat.S_ISDIR(st.st_mode):
                st = None
        stats[path] = st
    return stats
