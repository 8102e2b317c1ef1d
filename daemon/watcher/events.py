"""watchdog's events, turned into observations for the settle tracker (on watchdog's thread).

Owns the event filter and the translation of paths under the watched (resolved) folder
back to paths under the inbox.  Files go straight to the tracker; folders created or
moved in, and the inbox folder itself deleted, are flagged for the timer thread, which
walks them or re-attaches.  An event costs at most one ``stat`` here: watchdog's thread
must keep up with the events.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
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

from .settle import FileState
from .shared import Shared

log = logging.getLogger("docinbox.watcher")

#: The events the handler acts on.  On Linux the filter is also the inotify mask, so the
#: opens and plain closes of docinbox's own reads (hashing, inspecting, uploading each
#: document) are never generated, instead of crossing watchdog's threads to be dropped.
EVENTS = (
    FileClosedEvent,
    FileMovedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    DirCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    DirDeletedEvent,
)


class EventHandler(FileSystemEventHandler):
    """One per observer; it touches nothing but ``Shared``."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.tracker = shared.tracker
        self.inbox = shared.inbox

    def on_any_event(self, event: FileSystemEvent) -> None:
        try:
            self._dispatch(event)
        except Exception:  # an odd event must not kill the observer thread
            log.exception("error handling %r", event)

    def _dispatch(self, event: FileSystemEvent) -> None:
        if isinstance(event, FileClosedEvent):  # close-after-write (inotify)
            self._file_event(event.src_path, self.tracker.closed)
        elif isinstance(event, FileMovedEvent):
            # With full events an unmatched move has an empty side: "" → moved in from
            # outside the inbox, "" ← moved out of it.
            self._gone(event.src_path, folder=False)
            self._file_event(event.dest_path, self.tracker.arrived)
        elif isinstance(event, (FileCreatedEvent, FileModifiedEvent)):
            self._file_event(event.src_path, self.tracker.written)
        elif isinstance(event, FileDeletedEvent):
            self._gone(event.src_path, folder=False)
        elif isinstance(event, DirMovedEvent):
            self._gone(event.src_path, folder=True)
            self._folder_arrived(event.dest_path)
        elif isinstance(event, DirCreatedEvent):
            self._folder_arrived(event.src_path)
        elif isinstance(event, DirDeletedEvent):
            if self._in_inbox(event.src_path) == self.inbox:
                self._inbox_deleted()  # the inbox itself: the health check takes over
            else:
                self._gone(event.src_path, folder=True)

    def _in_inbox(self, raw: bytes | str) -> Path | None:
        if not raw:
            return None
        path = Path(os.fsdecode(raw))
        root = self.shared.root
        if root != self.inbox:
            try:
                path = self.inbox / path.relative_to(root)
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
        if rel == "." or self.shared.ignore.ignored(rel):
            return
        try:
            st = os.lstat(path)
        except OSError:
            self._gone(raw, folder=False)
            return
        if stat.S_ISDIR(st.st_mode):
            return
        shared = self.shared
        with shared.cond:
            observe(path, FileState.of(st), shared.clock.monotonic())
            nxt = self.tracker.next_check()
            if nxt is not None and nxt < shared.wake_at:
                shared.cond.notify()

    def _gone(self, raw: bytes | str, *, folder: bool) -> None:
        path = self._in_inbox(raw)
        if path is not None:
            with self.shared.cond:
                self.tracker.gone(path, folder=folder)

    def _folder_arrived(self, raw: bytes | str) -> None:
        path = self._in_inbox(raw)
        if path is None or path == self.inbox:
            return
        try:
            if self.shared.ignore.ignored(path.relative_to(self.inbox).as_posix()):
                return
        except ValueError:
            return
        with self.shared.cond:
            self.shared.arrived.add(path)
            self.shared.urgent = True
            self.shared.cond.notify()

    def _inbox_deleted(self) -> None:
        with self.shared.cond:
            self.shared.inbox_deleted = True
            self.shared.urgent = True
            self.shared.cond.notify()
