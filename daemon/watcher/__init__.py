"""The inbox watcher: which files are complete and ready to queue."""

from .ignore import IgnoreRules
from .settle import FileState, Look, SettleTracker
from .watcher import InboxWatcher
from .writers import Writers

__all__ = ["FileState", "IgnoreRules", "InboxWatcher", "Look", "SettleTracker", "Writers"]
