"""The job store (SQLite): the queue, the state machine and its history."""

from .jobs import Job, Store, open_store
from .states import ACTIVE, TERMINAL, State

__all__ = ["ACTIVE", "TERMINAL", "Job", "State", "Store", "open_store"]
