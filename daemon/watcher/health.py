"""Is the inbox still the folder being watched?

The inbox deleted, moved away or replaced is noticed within ``HEALTH_SECONDS`` (one
``stat`` of the inbox at each tick, since watchdog says nothing when a folder is moved to
the trash; it does report the deletion of the watched folder itself, which wakes the
timer thread at once).  A missing inbox is given ``max(settle, HEALTH_SECONDS)`` for
whoever deleted it to create it again; then docinbox creates it again itself when it owns
it (it was not a mount point and its parent folder still exists: a missing parent means a
disconnected drive or share, and nothing is created there).  Owns the identity of the
folder watched, how long the inbox has been missing, and the one warning (or note) that
says what happened; the watcher does the detaching and attaching.
"""

from __future__ import annotations

import enum
import logging
from pathlib import Path

from .walk import Key, folder_key

log = logging.getLogger("docinbox.watcher")

#: How often the inbox folder itself is checked (one stat): a deleted or replaced inbox
#: is noticed within this long even when watchdog says nothing (moved to the trash).
HEALTH_SECONDS = 1.0
#: ``active_mode`` while there is no inbox to watch.
MISSING = "none (inbox missing)"


class Status(enum.Enum):
    SAME = "the folder watched"  # check that its observer still runs
    LOST = "just found missing"  # stop watching it, forget what was pending
    WAITING = "still missing"  # for someone to create it again, or for the drive
    CHANGED = "another folder"  # there now (perhaps created by docinbox): watch it


class InboxHealth:
    """The verdict on the inbox folder at each tick, and the words for it."""

    def __init__(self, inbox: Path, *, settle: float) -> None:
        self.inbox = inbox
        self.grace = max(settle, HEALTH_SECONDS)
        #: The folder watched; None when none is (missing, or an attach failed).
        self.identity: Key | None = None
        self.owned = True  # docinbox may create the inbox again (not a mount point)
        self._lost_since: float | None = None
        self._lost_warned = False
        self._created = False  # by this tick's check

    def check(self, now: float) -> Status:
        self._created = False
        identity = folder_key(self.inbox, follow=True)
        if identity is not None and identity == self.identity:
            return Status.SAME
        if identity is None:
            if self._lost_since is None:
                self._lost_since = now
                return Status.LOST
            if now - self._lost_since < self.grace:
                return Status.WAITING  # give whoever deleted it the chance to create it again
            if not self._create_again():
                return Status.WAITING
        return Status.CHANGED

    def attached(self, mode: str, *, deleted: bool) -> None:
        """Watching the folder there now (after ``CHANGED``), in *mode*: say what happened.
        *deleted*: watchdog reported the old folder deleted."""
        created, warned = self._created, self._lost_warned
        lost = self._lost_since is not None or deleted
        self._lost_since, self._lost_warned = None, False
        if created:
            log.warning(
                "the inbox %s was deleted; docinbox created it again and watches it (%s mode)",
                self.inbox,
                mode,
            )
        elif warned:
            log.info("the inbox %s is back; watching it (%s mode)", self.inbox, mode)
        elif lost:
            log.warning(
                "the inbox %s was deleted and created again; watching the new folder (%s mode)",
                self.inbox,
                mode,
            )
        else:
            log.warning(
                "the inbox %s was replaced by another folder (the old one deleted or "
                "moved away, or a drive mounted or unmounted there); watching the new one "
                "(%s mode)",
                self.inbox,
                mode,
            )

    def _create_again(self) -> bool:
        """Create the missing inbox when docinbox owns it; True when it did."""
        parent_there = self.inbox.parent.is_dir()
        if not (self.owned and parent_there):
            if not parent_there:
                why = f", and so is {self.inbox.parent} (a disconnected drive or share?)"
            else:
                why = " (it was a mount point: docinbox does not create it)"
            self._warn_once(
                "the inbox %s is gone%s; docinbox watches it again as soon as it is back",
                self.inbox,
                why,
            )
            return False
        try:
            self.inbox.mkdir()
        except FileExistsError:
            return False  # someone is creating it: watch it at the next tick
        except OSError as exc:
            self._warn_once("the inbox %s is gone and cannot be created again: %s", self.inbox, exc)
            return False
        self._created = True
        return True

    def _warn_once(self, message: str, *args: object) -> None:
        if not self._lost_warned:
            self._lost_warned = True
            log.warning(message, *args)
