"""Start-up recovery: settle what a crash, a kill or a power cut left half-done.

Every step persisted its intent before its side effect (see daemon.pipeline), so the
state of each job says what may have happened:

- an outbox folder still in its temporary name: the service's output that was moved in
  goes back to the job's work folder; the half-written folder goes;
- ``submitting``: the request may or may not have reached the service.  Services whose
  ids were checkpointed resume from them; one that provably has the document (it
  fetched it) is waited for; a synchronous API cannot be asked, so the document is
  sent again;
- ``submitted``: polled again, never resubmitted; ``received``: written out (or found
  already written) by the finish step;
- unsent queued jobs are routed again (the routes may have changed) — not the parts of
  a split document: they keep its service;
- a split document whose parts all settled before a crash moved it on (every part
  received: merged next; one failed: its original goes to ``failed/``);
- pauses only the user can end (bad credentials) end: a restart is such an act;
- a wait no service can mean (``Retry-After`` of 3,000 years) is cut to the ceiling.
"""

from __future__ import annotations

import logging

from . import health
from .pipeline import parts
from .pipeline.outcomes import RETRY_AFTER_CEILING
from .pipeline.runtime import Runtime
from .store import State

log = logging.getLogger("docinbox")


def recover(rt: Runtime) -> None:
    store = rt.store
    for problem in rt.writer.recover(lambda job_id: rt.workdir(job_id) / "raw"):
        log.error(
            "%s; the unfinished folder stays for the next start. %s", problem.message, problem.hint
        )
    for job in store.in_state(State.SUBMITTING):
        service = rt.services.get(job.service or "")
        if service is None or service.resubmit_after_crash(rt.document(job)):
            store.transition(
                job.id,
                State.SUBMITTING,
                State.QUEUED,
                note="recovered: the request may not have reached the service",
            )
            log.info("%s: resubmitting after an interrupted request", job.rel_path)
        else:
            store.transition(
                job.id,
                State.SUBMITTING,
                State.SUBMITTED,
                not_before=0.0,
                remote={**job.remote, "awaiting_answer": True},
                note="recovered: the service has it; waiting for its answer",
            )
            log.info("%s: the service already has it; waiting for its answer", job.rel_path)
    for document in store.in_state(State.SPLIT):
        parts.settle(rt, document.id)
    store.clear_routes()
    health.clear(store, only_user_fixable=True)
    cut = store.cap_waits(rt.clock.now() + RETRY_AFTER_CEILING)
    if cut:
        log.info(
            "%d document(s) had a wait longer than %.0f h; it is cut to that",
            cut,
            RETRY_AFTER_CEILING / 3600,
        )
