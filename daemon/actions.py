"""What a user can ask of docinbox — pause, resume, retry — done the same way from the
tray (through the running daemon's :class:`DaemonControl`), from a shell (``docinbox
retry`` in another process) and from the review desk.

Each action is a write to the store; a running daemon notices another process's writes
within a quarter of a second (SQLite's ``data_version``) and its own at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import health
from .clock import Clock
from .control import FOREVER, StatusSnapshot
from .status import PAUSE_KEY
from .store import Job, Store

log = logging.getLogger("docinbox")


def pause(store: Store, clock: Clock, seconds: float | None = None) -> float:
    """Start no new work until *seconds* from now (None: until resumed); returns until."""
    until = FOREVER if seconds is None else clock.now() + seconds
    store.set_meta(PAUSE_KEY, until)
    return until


def resume(store: Store) -> None:
    store.delete_meta(PAUSE_KEY)


def retry(store: Store, ids: list[int] | None = None) -> list[Job]:
    """Failed documents back in line, and every paused service unpaused (the user acted)."""
    health.clear(store)
    return store.retry(ids)


class DaemonControl:
    """The :class:`Control` of a running daemon, safe from any thread: snapshots are
    published values; actions run on the daemon's event loop (a few milliseconds)."""

    def __init__(
        self, inbox: Path, outbox: Path, log_path: Path | None, stop: Callable[[], None]
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.log_path = log_path
        self._stop = stop
        self._snapshot = StatusSnapshot(starting=True)
        self._subscribers: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: Any = None

    def attach(self, loop: asyncio.AbstractEventLoop, runtime: Any) -> None:
        """The daemon started: actions now reach *runtime* (a pipeline Runtime)."""
        self._loop, self._runtime = loop, runtime

    def snapshot(self) -> StatusSnapshot:
        return self._snapshot

    def publish(self, snapshot: StatusSnapshot) -> None:
        self._snapshot = snapshot
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("a status subscriber failed")

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def pause(self, seconds: float | None = None) -> None:
        self._call(lambda rt: pause(rt.store, rt.clock, seconds))

    def resume(self) -> None:
        self._call(lambda rt: resume(rt.store))

    def retry_failed(self) -> int:
        return len(self._call(lambda rt: retry(rt.store)) or [])

    def stop(self) -> None:
        self._stop()

    def _call(self, action: Callable[[Any], Any]) -> Any:
        loop, rt = self._loop, self._runtime
        if loop is None or loop.is_closed() or rt is None:
            return None

        async def run() -> Any:
            result = action(rt)
            rt.signals.all()
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)
