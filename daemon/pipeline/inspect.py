"""Step 2: what a queued document really is, and which service takes it.

The type comes from the bytes, never the name, and the page count from the document
(:class:`daemon.sniff.Inspector`: pypdf in a helper process with a time and memory
ceiling, so no file can hold inspection or the daemon up); the route is the first
``[[routes]]`` entry that matches and whose service takes that type within its limits
(:mod:`daemon.router`); a service whose budget ran out with ``when_exhausted =
"next_route"`` is passed over while another route takes the document
(:mod:`daemon.budgets`).  A PDF over its service's limits goes in parts
(pipeline/split.py).  A whole batch is recorded in one transaction.  Anything wrong
with one document fails that document only, with its error file; a docinbox bug met
on one document is recorded on that document as ``internal``.  A document that reads
as cut short while it was written moments ago gets time instead (a scanner adding
pages).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .. import budgets, router, sniff
from ..errors import (
    CorruptDocument,
    DocinboxError,
    DocumentError,
    EmptyDocument,
    InternalError,
    Stopping,
)
from ..store import Job, State
from .outcomes import Outcomes
from .runtime import Runtime
from .split import split_document

log = logging.getLogger("docinbox")

#: Documents inspected per batch: the first submissions wait for one batch.
BATCH = 64
#: A document that reads as incomplete but was modified within this many watcher settle
#: windows is given time (the shipped 2 s window: 10 s, longer than a scanner's pause
#: between two pages)...
STILL_WRITING_WINDOWS = 5.0
#: ... and looked at again after this long (or as soon as it changes).
HOLD_SECONDS = 2.0


def decide(rt: Runtime, job: Job) -> router.Decision:
    """The route for an inspected job (raises a DocumentError when none takes it); a
    service whose budget sends its documents elsewhere only when no other route takes it."""
    info = sniff.DocumentInfo(job.kind or "", job.pages)
    avoid = budgets.shared(rt.store, rt.services, rt.clock).avoided()

    def limits(name: str) -> tuple[int | None, int | None]:
        service = rt.services[name]
        return service.max_bytes, service.max_pages

    def taking(skip: set[str]) -> router.Decision:
        def accepts(name: str, kind: str) -> bool:
            service = rt.services.get(name)
            return service is not None and name not in skip and service.accepts(kind)

        return router.route(
            rt.settings.routes,
            job.rel_path,
            job.size,
            info,
            accepts,
            limits,
            splittable=sniff.SPLITTABLE,
        )

    if avoid:
        try:
            return taking(avoid)
        except DocumentError:
            pass  # no other route takes it: it waits for its service's budget
    return taking(set())


async def inspect_pending(rt: Runtime, outcomes: Outcomes) -> bool:
    """Inspect (or re-route) one batch; False when there was nothing to do."""
    now = rt.clock.now()
    fresh = [j for j in rt.store.uninspected(BATCH, due_before=now) if j.id not in rt.inflight]
    unrouted = [j for j in rt.store.unrouted(512) if j.id not in rt.inflight]
    if not fresh and not unrouted:
        return False
    rt.inflight.update(j.id for j in fresh)
    try:
        infos = await asyncio.to_thread(lambda: [_sniff(rt, j) for j in fresh])
    finally:
        rt.inflight.difference_update(j.id for j in fresh)
    failures: list[tuple[Job, DocinboxError]] = []
    splits: list[Split] = []
    inspected = _record(rt, zip(fresh, infos, strict=True), now, failures, splits)
    routed: list[tuple[int, str, dict[str, Any]]] = []
    for job in unrouted:
        try:
            decision = decide(rt, job)
        except DocumentError as exc:
            failures.append((job, exc))
            continue
        if decision.split:
            splits.append((job, job.kind or "", job.pages or 0, decision))
            continue
        routed.append((job.id, decision.service, decision.options))
    if inspected:
        rt.store.set_inspected(inspected)
    if routed:
        rt.store.set_routes(routed)
    for job, error in failures:
        await outcomes.fail(job, error)
    for job, kind, pages, decision in splits:
        await split_document(rt, outcomes, job, kind, pages, decision)
    rt.signals.schedule.set()
    rt.changed()
    return True


Inspected = tuple[int, str, str, "int | None", str, dict[str, Any]]
#: A document to send in parts: (job, kind, pages, the route that takes it).
Split = tuple[Job, str, int, router.Decision]


def _record(
    rt: Runtime,
    results: Iterable[tuple[Job, sniff.DocumentInfo | DocinboxError]],
    now: float,
    failures: list[tuple[Job, DocinboxError]],
    splits: list[Split],
) -> list[Inspected]:
    """What to store for each inspected job; failures go into *failures*, documents to
    send in parts into *splits*; a document still being written is held back."""
    inspected: list[Inspected] = []
    for job, info in results:
        if isinstance(info, Stopping):
            continue  # shutting down: inspected at the next start
        if isinstance(info, DocinboxError):
            if not _still_being_written(rt, job, info, now):
                failures.append((job, info))
                continue
            rt.store.update(job.id, State.QUEUED, not_before=now + min(HOLD_SECONDS, _window(rt)))
            log.info(
                "%s: not complete yet (%s); it was written moments ago, so docinbox "
                "waits for the rest",
                job.rel_path,
                info.message,
            )
            continue
        if _changed_since_queued(job):
            # What was read is a newer version than the job's: its refresh (admission,
            # when the watcher offers it) is inspected instead.
            rt.store.update(job.id, State.QUEUED, not_before=now + min(HOLD_SECONDS, _window(rt)))
            continue
        try:
            decision = decide(rt, dataclasses.replace(job, kind=info.kind, pages=info.pages))
        except DocumentError as exc:
            failures.append((job, exc))
            continue
        if decision.split:
            splits.append((job, info.kind, info.pages or 0, decision))
            continue
        inspected.append(
            (job.id, job.sha256, info.kind, info.pages, decision.service, decision.options)
        )
        pages = f", {info.pages} page{'s' if info.pages != 1 else ''}" if info.pages else ""
        log.info("%s: queued for %s (%s%s)", job.rel_path, decision.service, info.kind, pages)
    return inspected


def _still_being_written(rt: Runtime, job: Job, error: DocinboxError, now: float) -> bool:
    """A document that reads as cut short or empty while it was written moments ago is
    most likely still being written (a scanner that reopens its file for each page):
    it gets time instead of failing.  When it changes, admission refreshes this job."""
    if not isinstance(error, CorruptDocument | EmptyDocument):
        return False
    return now - job.mtime_ns / 1e9 < _window(rt)


def _changed_since_queued(job: Job) -> bool:
    try:
        st = os.stat(job.location)
    except OSError:
        return False  # gone: the submission step says so
    return (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns)


def _window(rt: Runtime) -> float:
    return STILL_WRITING_WINDOWS * max(rt.settings.watcher.settle_seconds, 0.2)


def _sniff(rt: Runtime, job: Job) -> sniff.DocumentInfo | DocinboxError:
    """One document's type and pages, or the error that is this document's alone."""
    try:
        return rt.inspector.inspect(Path(job.location))
    except DocinboxError as exc:  # DocumentErrors, and Stopping at shutdown
        return exc
    except Exception as exc:  # a bug (or a library's): this document's, not the batch's
        log.error("%s: unexpected error while inspecting it", job.rel_path, exc_info=exc)
        return InternalError(
            f"internal error while inspecting {job.rel_path}: {type(exc).__name__}: {exc}"
        )
