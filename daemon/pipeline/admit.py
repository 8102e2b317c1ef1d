"""Step 1: a ready file becomes a queued job.

Hashing runs in a worker thread (:func:`daemon.admission.admit`, pure: it never raises
for a bad file); the store is written on the loop, one transaction per batch, so
thousands of files found at start-up are safe in the store within seconds.  Type and
pages are learnt later (inspect.py): queueing stays cheap.  A file already queued with
the same size and mtime is skipped before it is hashed again.  A file that can never
be processed (a link out of the inbox, a FIFO, unreadable) fails at once, with its
error file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..admission import Admitted, Refused, admit
from ..errors import DocinboxError
from .outcomes import Outcomes
from .runtime import Runtime

log = logging.getLogger("docinbox")

#: Paths admitted per transaction.
BATCH = 256


async def admit_paths(rt: Runtime, outcomes: Outcomes, paths: Sequence[Path]) -> None:
    for start in range(0, len(paths), BATCH):
        await _admit_batch(rt, outcomes, paths[start : start + BATCH])


async def _admit_batch(rt: Runtime, outcomes: Outcomes, paths: Sequence[Path]) -> None:
    inbox = rt.folders.inbox
    signatures = await asyncio.to_thread(_signatures, paths, inbox)
    known = rt.store.active_signatures(rel for rel, _ in signatures.values())
    fresh = [p for p, (rel, sig) in signatures.items() if (rel, *sig) not in known]
    results = await asyncio.to_thread(lambda: [admit(p, inbox, rt.ignore) for p in fresh])
    rows: list[dict[str, Any]] = []
    refused: list[DocinboxError | None] = []
    for result in results:
        if isinstance(result, Admitted):
            rows.append(
                {
                    "rel_path": result.rel_path,
                    "location": str(result.location),
                    "sha256": result.sha256,
                    "size": result.size,
                    "mtime_ns": result.mtime_ns,
                    "kind": None,
                }
            )
            refused.append(None)
        elif isinstance(result, Refused):
            rows.append(
                {
                    "rel_path": result.rel_path,
                    "location": str(result.location),
                    "sha256": "0" * 64,
                    "size": result.size,
                    "mtime_ns": result.mtime_ns,
                    "kind": "",
                }
            )
            refused.append(result.error)
    if not rows:
        return
    for job_id, error in zip(rt.store.add_many(rows), refused, strict=True):
        if job_id is None:
            continue
        rt.touched.add(job_id)
        if error is not None:
            await outcomes.fail(rt.store.get(job_id), error)
    rt.signals.inspect.set()
    rt.changed()


def _signatures(paths: Sequence[Path], inbox: Path) -> dict[Path, tuple[str, tuple[int, int]]]:
    """(relative path, (size, mtime)) of each path still there, for the skip-known check."""
    out: dict[Path, tuple[str, tuple[int, int]]] = {}
    for path in paths:
        try:
            rel = path.relative_to(inbox).as_posix()
            st = os.lstat(path)
        except (ValueError, OSError):
            continue
        out[path] = (rel, (st.st_size, st.st_mtime_ns))
    return out
