"""Step 4 (asynchronous services): ask about submitted documents until they are done.

One request per remote batch where the service has batches (MinerU's
``extract-results/batch``), else one per document.  A done document's raw output is
stored by the service before the answer arrives here; the job then moves to
``received`` (outcomes.py).  A verified callback makes its jobs due at once
(:func:`wake`); polling stays the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from ..services import Service
from ..store import Job, State
from .outcomes import Outcomes
from .runtime import Runtime
from .submit import checkpoint

log = logging.getLogger("docinbox")


async def poll(rt: Runtime, outcomes: Outcomes, service: Service, jobs: Sequence[Job]) -> None:
    docs = [rt.document(j) for j in jobs]
    asking = service.poll(docs, checkpoint(rt))
    await outcomes.answers(service.name, jobs, State.SUBMITTED, asking, doing="asking")


def wake(rt: Runtime, service: str, ids: Mapping[str, str]) -> int:
    """A verified callback: the jobs it names are polled now instead of at their next
    interval, and ids they lacked (a task whose submission answer a crash lost) are
    recorded.  Returns how many jobs it named."""
    wanted = set(ids.values())
    now = rt.clock.now()
    woke = 0
    jobs = [j for j in rt.store.in_state(State.SUBMITTED) if j.service == service]
    named = [
        j for j in jobs if wanted & {str(v) for v in j.remote.values() if isinstance(v, str | int)}
    ]
    if not named and ids.get("task_id"):
        # A task nobody here knows: maybe one whose submission answer a crash lost.  The
        # jobs that lost theirs take it as a candidate; the service proves which is which.
        for job in jobs:
            if job.remote.get("awaiting_answer") and not job.remote.get("task_id"):
                candidates = list(job.remote.get("candidates") or [])
                if ids["task_id"] not in candidates:
                    rt.store.checkpoint(job.id, {"candidates": [*candidates, ids["task_id"]]})
                rt.store.update(job.id, State.SUBMITTED, not_before=now)
                woke += 1
    for job in named:
        missing = {
            k: v for k, v in ids.items() if k in ("task_id", "batch_id") and not job.remote.get(k)
        }
        if missing:
            rt.store.checkpoint(job.id, missing)
        if job.not_before > now:
            rt.store.update(job.id, State.SUBMITTED, not_before=now)
        woke += 1
    log.debug("callback from %s for %s: %d job(s) to poll now", service, sorted(wanted), woke)
    rt.signals.schedule.set()
    return woke
