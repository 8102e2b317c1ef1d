"""Step 4 (asynchronous services): ask about submitted documents until they are done.

One request per remote batch where the service has batches (MinerU's
``extract-results/batch``), else one per document.  A done document's raw output is
stored by the service before the answer arrives here; the job then moves to
``received`` (outcomes.py).  A verified callback makes its jobs due at once
(:func:`wake`); polling stays the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from ..errors import DocinboxError, InternalError
from ..services import Service
from ..store import Job, State
from .outcomes import Outcomes
from .runtime import Runtime
from .submit import checkpoint

log = logging.getLogger("docinbox")


async def poll(rt: Runtime, outcomes: Outcomes, service: Service, jobs: Sequence[Job]) -> None:
    docs = [rt.document(j) for j in jobs]
    try:
        answers = await service.poll(docs, checkpoint(rt))
    except DocinboxError as exc:
        answers = {j.id: exc for j in jobs}
    except Exception as exc:  # a bug: recorded on the documents, never hidden
        log.exception("%s: unexpected error while polling", service.name)
        error = InternalError(f"internal error while asking {service.name}: "
                              f"{type(exc).__name__}: {exc}")
        answers = {j.id: error for j in jobs}
    for job in jobs:
        answer = answers.get(job.id) or InternalError(f"{service.name} said nothing about "
                                                      f"{job.rel_path}")
        await outcomes.apply(job.id, State.SUBMITTED, answer)


def wake(rt: Runtime, service: str, ids: Iterable[str]) -> int:
    """A verified callback: the jobs it names are polled now instead of at their next
    interval.  Returns how many."""
    wanted = set(ids)
    now = rt.clock.now()
    woke = 0
    for job in rt.store.in_state(State.SUBMITTED):
        if job.service != service or job.not_before <= now:
            continue
        if wanted & {str(v) for v in job.remote.values() if isinstance(v, str | int)}:
            rt.store.update(job.id, State.SUBMITTED, not_before=now)
            woke += 1
    log.debug("callback from %s for %s: %d job(s) to poll now", service, sorted(wanted), woke)
    rt.signals.schedule.set()
    return woke
