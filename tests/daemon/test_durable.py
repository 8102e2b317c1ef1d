"""Group commit (daemon/store/durable.py): every commit made before a wait is fsynced
before the wait returns; waits at the same moment share one fsync; the event loop never
runs one itself."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from daemon.errors import StoreError
from daemon.store import State, open_store
from daemon.store.durable import Durability


class Disk:
    """A store's sync and change counter; each fsync waits until the test lets it go."""

    def __init__(self) -> None:
        self.changes = 0
        self.synced: list[int] = []  # the change count each fsync began at
        self.threads: list[str] = []
        self.gate = threading.Event()
        self.fail = False

    def sync(self) -> None:
        self.threads.append(threading.current_thread().name)
        seen = self.changes
        assert self.gate.wait(10)
        if self.fail:
            raise StoreError("the disk said no")
        self.synced.append(seen)


async def _until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.001)


def test_waits_at_the_same_moment_share_one_fsync_off_the_loop() -> None:
    async def main() -> None:
        disk = Disk()
        durable = Durability(disk.sync, lambda: disk.changes)
        await durable.wait()  # nothing committed: nothing to do
        assert disk.threads == []
        disk.changes = 3
        waits = [asyncio.ensure_future(durable.wait()) for _ in range(5)]
        await _until(lambda: disk.threads, "the fsync to begin")
        assert not any(w.done() for w in waits)  # not durable yet
        disk.gate.set()
        await asyncio.gather(*waits)
        assert disk.synced == [3] and disk.threads[0] != threading.current_thread().name
        await durable.wait()  # nothing new since
        assert disk.synced == [3]

    asyncio.run(main())


def test_a_commit_made_while_an_fsync_runs_waits_for_the_next_one() -> None:
    async def main() -> None:
        disk = Disk()
        durable = Durability(disk.sync, lambda: disk.changes)
        disk.changes = 1
        first = asyncio.ensure_future(durable.wait())
        await _until(lambda: disk.threads, "the first fsync to begin")
        disk.changes = 2  # committed after that fsync began: it may not be in it
        second = asyncio.ensure_future(durable.wait())
        third = asyncio.ensure_future(durable.wait())
        await asyncio.sleep(0.01)
        assert len(disk.threads) == 1  # the next one waits for the running one
        disk.gate.set()
        await asyncio.gather(first, second, third)
        assert disk.synced == [1, 2]  # one more fsync, shared by the two late waits

    asyncio.run(main())


def test_a_failed_fsync_is_said_and_the_next_wait_tries_again() -> None:
    async def main() -> None:
        disk = Disk()
        durable = Durability(disk.sync, lambda: disk.changes)
        disk.changes, disk.fail = 1, True
        disk.gate.set()
        with pytest.raises(StoreError, match="the disk said no"):
            await durable.wait()
        assert durable.dirty
        disk.fail = False
        await durable.wait()
        assert disk.synced == [1] and not durable.dirty

    asyncio.run(main())


def test_the_store_commits_without_fsync_and_its_sync_fsyncs_the_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "state.db")
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    before = store.changes()
    (job_id,) = store.add_many(
        [
            {
                "rel_path": "a.pdf",
                "location": str(tmp_path / "a.pdf"),
                "sha256": "x",
                "size": 1,
                "mtime_ns": 1,
            }
        ]
    )
    assert job_id is not None and store.changes() > before
    assert synced == []  # synchronous=NORMAL: the commit alone does not fsync
    store.sync()
    assert synced == [str(tmp_path / "state.db-wal")]
    store.transition(job_id, State.QUEUED, State.SUBMITTING)
    store.close()  # a reader may hold off SQLite's own checkpoint: close syncs first
    assert synced[1:2] == [str(tmp_path / "state.db-wal")]
    reader = open_store(tmp_path / "state.db", readonly=True)
    assert reader.get(job_id).state is State.SUBMITTING
    reader.close()
