"""Step 3: documents go to their service — the intent persisted before the request.

Each job moves ``queued → submitting`` (attempt n) in one commit *before* anything is
sent; the service's answer then moves it on (outcomes.py): ``received`` for a
synchronous answer, ``submitted`` for one to poll.  A crash in between leaves
``submitting``, and recovery decides (resubmit, or resume from checkpointed ids).

Before that: the file must still be the one that was queued (one ``stat``), and with
``duplicates = "reuse"`` a document whose content already has a result for the same
service gets that result without asking the service again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import (
    DocinboxError,
    DocumentChanging,
    DocumentVanished,
    StaleTransition,
)
from ..services import Service
from ..store import Job, State
from .outcomes import Outcomes
from .runtime import Runtime

log = logging.getLogger("docinbox")


async def submit(rt: Runtime, outcomes: Outcomes, service: Service, jobs: Sequence[Job]) -> None:
    # No await until the intent is committed: the jobs planned are the jobs begun.
    ready: list[Job] = []
    problems: list[tuple[Job, DocinboxError]] = []
    for job in jobs:
        try:
            check_unchanged(job)  # one stat: not worth a thread hop
        except DocinboxError as exc:
            if job.attempts == 0 and isinstance(exc, DocumentChanging) and not job.is_part:
                # Never sent, and a newer version is in the inbox: it is that version's
                # job now (the watcher offers it; admission refreshes this job).
                rt.store.update(
                    job.id, State.QUEUED, kind=None, service=None, not_before=rt.clock.now() + 1.0
                )
                rt.signals.inspect.set()
                continue
            problems.append((job, exc))
            continue
        twin = _twin(rt, job, service.name)
        if twin is not None:
            _reuse(rt, outcomes, job, twin)
            continue
        ready.append(job)
    started = begin(rt, ready) if ready else []
    for job, problem in problems:
        await outcomes.error(job.id, problem)
    if not started:
        return
    rt.activity = (
        f"sending {started[0].name}"
        if len(started) == 1
        else f"sending {len(started)} documents to {service.name}"
    )
    rt.changed()
    docs = [rt.document(j) for j in started]
    await rt.durable.wait()  # the intent on disk before the request
    sending = service.submit(docs, checkpoint(rt))
    await outcomes.answers(service.name, started, State.SUBMITTING, sending, doing="sending to")


def begin(rt: Runtime, jobs: Sequence[Job]) -> list[Job]:
    """The intent, persisted before the request: ``submitting``, attempt n — one commit."""
    moves = [(j.id, State.QUEUED, State.SUBMITTING, {"attempts": j.attempts + 1}) for j in jobs]
    started = []
    for job, moved in zip(
        jobs, rt.store.transition_many(moves, note=f"attempt to {jobs[0].service}"), strict=True
    ):
        if isinstance(moved, StaleTransition):
            log.warning("%s: %s", job.rel_path, moved)
            continue
        started.append(moved)
    return started


def checkpoint(rt: Runtime):  # type: ignore[no-untyped-def]
    """Persist a service's ids for a job before its next side effect."""

    def save(job_id: int, remote: Mapping[str, Any]) -> None:
        rt.store.checkpoint(job_id, remote)
        rt.store.sync()  # on disk before the service's next request (rare: batch steps)

    return save


def check_unchanged(job: Job) -> None:
    try:
        st = os.stat(job.location)
    except FileNotFoundError as exc:
        raise DocumentVanished(f"{job.rel_path} was removed before it was sent") from exc
    if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
        raise DocumentChanging(f"{job.rel_path} changed after it was queued")


def _twin(rt: Runtime, job: Job, service: str) -> Job | None:
    """With ``duplicates = "reuse"``: an earlier job with the same content, for the same
    service, whose result folder still has the service's raw output."""
    if rt.settings.daemon.duplicates != "reuse" or job.is_part:
        return None  # (a part's content may be its whole document's: never its twin)
    for other in rt.store.by_content(job.sha256, State.DONE):
        if (
            other.service == service
            and other.result_dir
            and (rt.folders.outbox / other.result_dir / "raw").is_dir()
        ):
            return other
    return None


def _reuse(rt: Runtime, outcomes: Outcomes, job: Job, twin: Job) -> None:
    """*job* takes *twin*'s result (same bytes): the finish step builds its folder from
    twin's, without asking the service again."""
    started = begin(rt, [job])
    if not started:
        return
    outcomes.received(
        started[0],
        State.SUBMITTING,
        remote={**twin.remote, "same_as_job": twin.id},
        note=f"same content as job {twin.id}: result reused",
        from_service=False,
    )
    log.info("%s: same content as %s; its result is reused", job.rel_path, twin.rel_path)
