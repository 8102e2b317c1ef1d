"""The ledger: every document the mock accepted, with its state (``/__admin/tasks``)."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


class Ledger:
    """Every document the mock accepted, one entry per submission (``/__admin/tasks``).

    Entries: ``service, id, name, sha256, state`` plus whatever extra keys a
    service passes (``pages``, ``created_at`` ...).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._index: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(
        self, service: str, id: str, name: str, sha256: str, state: str, **extra: Any
    ) -> dict[str, Any]:
        entry = {"service": service, "id": id, "name": name, "sha256": sha256, "state": state}
        entry.update(extra)
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                old = self._entries[0]
                self._index.pop((old["service"], old["id"]), None)
            self._entries.append(entry)
            self._index[(service, id)] = entry
        return entry

    def set_state(self, service: str, id: str, state: str, **extra: Any) -> bool:
        """Update a task's state; False when the mock does not know it."""
        with self._lock:
            entry = self._index.get((service, id))
            if entry is None:
                return False
            entry["state"] = state
            entry.update(extra)
            return True

    def get(self, service: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._index.get((service, id))
            return dict(entry) if entry else None

    def entries(self, service: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if service is None or e["service"] == service]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._index.clear()
