"""What the watcher's two threads share, under one condition.

watchdog's thread (``events.py``) feeds the settle tracker and raises the flags below; the
watcher's timer thread (``watcher.py``) waits on the condition, wakes early when a flag
asks it to, and acts.  Nothing else crosses between the threads.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..clock import Clock
from .ignore import IgnoreRules
from .settle import FileState, SettleTracker
from .walk import Files


@dataclass(eq=False)
class Shared:
    """The state both threads touch; read or change it holding ``cond``."""

    inbox: Path
    ignore: IgnoreRules
    clock: Clock
    tracker: SettleTracker
    #: Guards the tracker and every field below; the timer thread waits on it.  Its lock
    #: is reentrant: a holder may call what takes it again.
    cond: threading.Condition = field(default_factory=threading.Condition)
    #: What the observer watches: the inbox with symbolic links resolved (inotify would
    #: watch a link to a folder as the link itself).  Events come with this prefix.
    root: Path = field(init=False)
    stopping: bool = False
    urgent: bool = False  # something to do now: the timer thread skips its wait
    #: When the waiting timer thread wakes up by itself (-inf: it is not waiting); an
    #: event whose file is due earlier wakes it.
    wake_at: float = -math.inf
    #: Folders created or moved in: walk them (their files may have no events of their
    #: own) and check their watches.
    arrived: set[Path] = field(default_factory=set)
    inbox_deleted: bool = False  # watchdog reported the inbox folder itself deleted

    def __post_init__(self) -> None:
        self.root = self.inbox

    def found(self, files: Files) -> None:
        """Files a walk found, for the tracker (ages from their mtimes)."""
        now_wall, now = self.clock.now(), self.clock.monotonic()
        with self.cond:
            for path, st in files:
                self.tracker.found(path, FileState.of(st), now_wall - st.st_mtime, now)
