"""The journal: every request the services saw, in arrival order (``/__admin/requests``)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

_SECRET_HEADERS = {"authorization", "proxy-authorization", "token", "x-api-key"}


def mask_header(name: str, value: str) -> str:
    """Hide a credential but keep its scheme, so tests can tell Basic from Bearer."""
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme, sep, _rest = value.partition(" ")
    if sep and scheme.isalpha():
        return f"{scheme} ****"
    return "****"


class Journal:
    """Every request in arrival order, bounded (oldest dropped first).

    An entry is a dict: ``seq, method, path, query, headers, status, at, fault``.
    ``at`` is real Unix time (benchmarks compare it with their own clocks);
    ``status`` is filled in when the response starts (``None`` when the mock
    reset or hung up without answering).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0
        self.dropped = 0

    def add(
        self,
        method: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        *,
        at: float | None = None,
    ) -> dict[str, Any]:
        masked = {name.lower(): mask_header(name, value) for name, value in headers}
        with self._lock:
            self._seq += 1
            entry: dict[str, Any] = {
                "seq": self._seq,
                "method": method,
                "path": path,
                "query": query,
                "headers": masked,
                "status": None,
                "at": time.time() if at is None else at,
                "fault": None,
            }
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)
