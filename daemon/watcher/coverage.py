"""Linux, native watching: does every folder of the inbox have its inotify watch?

watchdog skips a folder it cannot watch without a word (the per-user watch limit reached),
and files dropped there would be seen only by the next rescan.  So after each walk the
watcher compares the folders it found with the watches this process holds
(``inotify.py``), and this module decides what a folder without a watch means: one on its
way (look again at the next tick), one watchdog missed (restart the observer, once), or a
folder inotify refuses (poll the inbox).  Owns the folders under suspicion and the
restart count.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from . import inotify
from .walk import Folders, Key, folder_key

log = logging.getLogger("docinbox.watcher")

RESTART: Literal["restart"] = "restart"


class Coverage:
    """The verdict on unwatched folders, and what it remembers between two looks."""

    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        #: Unwatched folders inotify would accept: a watch on its way, or one missed.
        self._suspects: set[Path] = set()
        self._restarts = 0

    def check(self, folders: Iterable[tuple[Path, Key]]) -> OSError | Literal["restart"] | None:
        """What to do about *folders* (just walked) without their watch: nothing (None),
        restart the observer (``RESTART``), or poll instead, for the OSError returned."""
        gaps = self.gaps(folders)
        if not gaps:
            self._restarts = 0
            return None
        error = inotify.probe(gaps[0])
        if error is None:
            # The kernel would take a watch now: a folder created as we looked (its watch
            # is on its way), or one watchdog missed.  Look again at the next tick; still
            # missing then, restart the observer; still missing after that, poll.
            fresh = [p for p in gaps if p not in self._suspects]
            self._suspects.update(gaps)
            if fresh:
                return None
            self._suspects.clear()
            if self._restarts < 1:
                self._restarts += 1
                log.info(
                    "%d folders of %s were not watched; restarting the watcher",
                    len(gaps),
                    self.inbox,
                )
                return RESTART
            return OSError(errno.EIO, f"{len(gaps)} folders could not be watched")
        if error.errno in (errno.ENOENT, errno.EACCES, errno.ENOTDIR):
            return None  # gone since, or unreadable (the scan says so): polling would not help
        return error

    def gaps(self, folders: Iterable[tuple[Path, Key]]) -> list[Path]:
        """The folders, still there and still the same, that have no inotify watch."""
        watched = inotify.watched()
        if watched is None:
            return []
        return [
            path
            for path, key in folders
            # still there, still the same folder?
            if key not in watched and folder_key(path, follow=path == self.inbox) == key
        ]

    def suspects(self) -> Folders:
        """The folders under suspicion that are still folders, to check again."""
        return [
            (p, k)
            for p in self._suspects
            if (k := folder_key(p, follow=p == self.inbox)) is not None
        ]

    def forget_suspects(self) -> None:
        """The observer is gone: its watches with it."""
        self._suspects.clear()

    def reset(self) -> None:
        """Polling now: nothing to check until native watching is back."""
        self._suspects.clear()
        self._restarts = 0
