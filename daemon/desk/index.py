"""The search index of results (the store's ``results`` and ``results_text``): kept
current as the finish step writes results (:func:`index_finished`), caught up at start
for results a crash left out (:func:`catch_up`), rebuilt from the outbox by
``docinbox search --rebuild`` (:func:`rebuild`).  The outbox is the truth; the index is
only ever a copy of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..review import indexed, read_result, result_folder
from ..store import Job, State, Store
from ..store.records import IndexedResult

log = logging.getLogger("docinbox")

#: Results read and indexed together.
CHUNK = 200


def read_indexed(outbox: Path, job: Job) -> IndexedResult | None:
    """(Worker thread) what the index holds of *job*'s result; None when its folder
    cannot be read (moved or deleted by the user: nothing to search)."""
    if not job.result_dir:
        return None
    try:
        result, markdown = read_result(result_folder(outbox, job.result_dir))
    except (OSError, ValueError):
        return None
    return indexed(job, result, markdown)


def _read_all(outbox: Path, jobs: Iterable[Job]) -> list[IndexedResult]:
    return [r for r in (read_indexed(outbox, j) for j in jobs) if r is not None]


async def index_finished(store: Store, outbox: Path, jobs: Sequence[Job]) -> None:
    """(On the loop) results the finish step just wrote, into the index.  Reading them
    back is the one cost (a worker thread); a result that cannot be read is skipped and
    caught up at the next start."""
    if jobs:
        store.index_results(await asyncio.to_thread(_read_all, outbox, jobs))


async def catch_up(store: Store, outbox: Path) -> int:
    """(On the loop, at start) done documents the index misses; returns how many."""
    count = 0
    seen: set[int] = set()
    while True:
        ids = [i for i in store.unindexed(CHUNK) if i not in seen]
        if not ids:
            return count
        seen.update(ids)
        jobs = [store.get(i) for i in ids]
        rows = await asyncio.to_thread(_read_all, outbox, jobs)
        store.index_results(rows)
        count += len(rows)


def rebuild(store: Store, outbox: Path) -> int:
    """Forget the index and read every done document's result again; returns how many
    were indexed (``docinbox search --rebuild``)."""
    jobs = [j for j in store.jobs(states=(State.DONE,)) if j.result_dir]
    rows = _read_all(outbox, jobs)
    store.clear_index()
    for start in range(0, len(rows), CHUNK):
        store.index_results(rows[start : start + CHUNK])
    return len(rows)
