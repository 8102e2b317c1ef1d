"""The inbox watcher: which files are complete and ready to queue.

Where each part lives (the public face is ``InboxWatcher``; its module tells the story):

- ``watcher.py``    ``InboxWatcher``: start/stop, scans, the timer thread, the order of things
- ``shared.py``     what watchdog's thread and the timer thread share, under one condition
- ``events.py``     watchdog's events → the settle tracker (on watchdog's thread)
- ``walk.py``       walking the inbox (ignore rules, unreadable folders), folder identities
- ``settle.py``     when a file is complete: the pure rules, no threads, no I/O
- ``writers.py``    is any process holding a file open for writing? (per platform)
- ``handover.py``   looking at due files and handing the ready ones to ``on_ready``
- ``observers.py``  the observer: native, polling, injected; the fallback and the way back
- ``coverage.py``   Linux: does every folder have its inotify watch? (restart or poll)
- ``inotify.py``    Linux: the watches this process holds, the limits, a probe
- ``health.py``     the inbox folder itself: deleted, moved away, replaced, back
- ``ignore.py``     names that are not documents (partial downloads, system files)
"""

from .ignore import IgnoreRules
from .settle import FileState, Look, SettleTracker
from .watcher import InboxWatcher
from .writers import Writers

__all__ = ["FileState", "IgnoreRules", "InboxWatcher", "Look", "SettleTracker", "Writers"]
