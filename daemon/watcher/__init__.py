"""The inbox watcher: which files are complete and ready to queue."""

from .ignore import IgnoreRules
from .watcher import InboxWatcher

__all__ = ["IgnoreRules", "InboxWatcher"]
