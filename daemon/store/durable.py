"""Commits made durable together, off the event loop (group commit).

The store commits with SQLite's ``synchronous=NORMAL``: a commit is written to the WAL
but not fsynced, so it survives a crash of docinbox but not, on its own, a power cut
(https://www.sqlite.org/pragma.html#pragma_synchronous).  Durability is asked for where
it matters — before a side effect that must not happen twice or be forgotten (a request
to a service, a result written, an original moved out of the inbox) — with
:meth:`Durability.wait`: one fsync of the WAL in a worker thread covers every commit made
before it started, so the documents that wait at the same moment share it, and the
event loop never waits on the disk.  A periodic :meth:`Durability.flush` bounds what
the rest (a user's retry, a dismissed row) could lose to a power cut to about a second.

Under ``synchronous=FULL`` SQLite fsyncs the WAL at every commit, on the committing
thread: the loop stood still 2-3 times a document (bench: throughput 52 against 56-60
documents/s with NORMAL; the code before the redesign committed from worker threads).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..errors import StoreError

log = logging.getLogger("docinbox")

#: How long a commit that nothing waited for may stay in the page cache only.
FLUSH_SECONDS = 1.0


class Durability:
    """Waits for the store's commits to reach the disk; *sync* (blocking) fsyncs them
    and *changes* counts the rows changed so far (both from the store)."""

    def __init__(self, sync: Callable[[], None], changes: Callable[[], int]) -> None:
        self._sync = sync
        self._changes = changes
        self._synced = changes()
        self._running: asyncio.Task[None] | None = None
        self._next: asyncio.Task[None] | None = None

    @property
    def dirty(self) -> bool:
        """Rows changed since the last fsync began."""
        return self._changes() != self._synced

    async def wait(self) -> None:
        """Return once every commit made before this call is durable."""
        if not self.dirty:  # the last fsync began after the last change: it covers it
            if self._running is not None:
                await asyncio.shield(self._running)
            return
        if self._next is None:
            self._next = asyncio.ensure_future(self._after(self._running))
        await asyncio.shield(self._next)

    async def flush(self) -> None:
        """(A long-lived task) commits nothing waited for, made durable within
        :data:`FLUSH_SECONDS`."""
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            if self.dirty:
                try:
                    await self.wait()
                except StoreError as exc:  # the next step that needs it says so too
                    log.error("%s", exc)

    async def _after(self, running: asyncio.Task[None] | None) -> None:
        """The next fsync: it must begin after the one running now (which may have begun
        before the caller's commit); callers that come meanwhile share it."""
        if running is not None:
            await asyncio.wait([running])
        self._next = None
        self._synced = self._changes()
        self._running = task = asyncio.ensure_future(asyncio.to_thread(self._sync))
        try:
            await task
        except BaseException:
            self._synced = -1  # not durable: the next wait tries again
            raise
        finally:
            if self._running is task:
                self._running = None
