"""The job store: the queue, the state machine and its history.

``api.Store`` is the interface the daemon uses; ``sqlite.SQLiteStore`` implements it.
"""

from .api import Store
from .job import Job
from .sqlite import SQLiteStore, open_store
from .states import ACTIVE, TERMINAL, State

__all__ = ["ACTIVE", "TERMINAL", "Job", "SQLiteStore", "State", "Store", "open_store"]
