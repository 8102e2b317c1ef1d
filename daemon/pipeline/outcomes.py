"""The one place where what happened to a job becomes its next state.

A service's answer: :meth:`Outcomes.received` (the raw answer is stored: write it out
next) or :meth:`Outcomes.accepted` (poll later); a submission the service accepted counts
against its budgets (daemon.budgets).  An error, whatever step met it
(:meth:`Outcomes.error`):

- a 429 the pacer could not wait out inline (RateLimited): the service's state, never
  the document's — back in line, its attempt given back, nothing recorded as an error;
- a quota used up: that allowance is spent until it renews; with ``when_exhausted =
  "next_route"`` the document (and the service's queued ones) take the next route;
- scope "service" (credentials, quota, the service unreachable): pause that service
  (daemon.health); the job waits without spending its retry budget;
- a host error (a full or read-only disk): the job waits and tries again, however long
  it takes — it is not the document's fault;
- retryable and within the ``[retry]`` budget: back in line after a backoff (full
  jitter, ``Retry-After`` honoured up to a ceiling);
- anything else: the document fails (:meth:`Outcomes.fail`): the original to
  ``failed/`` beside its ``.error.json``, the job to ``failed``.

A part of a split document is a job like any other on the way; where it ends
(received, failed, or a page range the service refuses) is pipeline/parts.py's.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import budgets
from ..docfile import display_name
from ..errors import (
    DocinboxError,
    DocumentVanished,
    HostError,
    InternalError,
    QuotaExceeded,
    RateLimited,
    RawOutputLost,
    ServiceError,
    StaleTransition,
)
from ..outbox import fail_original
from ..outbox.merge import PartOutputLost
from ..services import Accepted, BatchOutcome, Received
from ..store import TERMINAL, Job, State
from . import parts
from .runtime import Runtime

log = logging.getLogger("docinbox")

#: However long a service asks to wait (``Retry-After``), a document is looked at again
#: within this: a header saying 3,000 years must not park it for good.
RETRY_AFTER_CEILING = 6 * 3600.0


class Outcomes:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._host_failures: dict[int, int] = {}
        self.budgets = budgets.shared(rt.store, rt.services, rt.clock)

    # --- a service answered ---------------------------------------------------------------

    async def answers(
        self,
        service: str,
        jobs: Sequence[Job],
        expect: State,
        asking: Awaitable[BatchOutcome],
        *,
        doing: str,
    ) -> None:
        """Apply what *asking* (one request about *jobs*, in state *expect*) brought: an
        error of the whole request is each job's; anything else it raises is a bug,
        recorded on the jobs, never hidden; a job the answer leaves out, an internal error."""
        try:
            answers = await asking
        except DocinboxError as exc:
            answers = {j.id: exc for j in jobs}
        except Exception as exc:
            log.exception("unexpected error while %s %s", doing, service)
            error = InternalError(
                f"internal error while {doing} {service}: {type(exc).__name__}: {exc}"
            )
            answers = {j.id: error for j in jobs}
        for job in jobs:
            answer = answers.get(job.id) or InternalError(
                f"{service} said nothing about {job.rel_path}"
            )
            await self.apply(job.id, expect, answer)

    async def apply(
        self, job_id: int, expect: State, outcome: Received | Accepted | DocinboxError
    ) -> None:
        try:
            if isinstance(outcome, DocinboxError):
                await self.error(job_id, outcome)
                return
            job = self.rt.store.get(job_id)
            if isinstance(outcome, Received):
                self.received(job, expect, remote={**job.remote, **outcome.remote})
            else:
                self.accepted(job, expect, outcome)
        except StaleTransition as exc:
            log.warning("job %s: %s", job_id, exc)

    def received(
        self,
        job: Job,
        expect: State,
        *,
        remote: Mapping[str, Any],
        note: str | None = None,
        from_service: bool = True,
    ) -> None:
        """The raw answer is stored (or an earlier result will be reused): write it out."""
        if from_service:
            self.rt.health.answered(job.service or "", job.id)
            if expect is State.SUBMITTING:
                self.budgets.spend(job.service or "", job.kind, job.page_count or None)
        self.rt.store.transition(
            job.id,
            expect,
            State.RECEIVED,
            remote=dict(remote),
            error=None,
            message=None,
            not_before=0.0,
            note=note,
        )
        if job.parent_id is not None:
            parts.settle(self.rt, job.parent_id)
        self.rt.signals.finish.set()
        self.rt.changed()

    def accepted(self, job: Job, expect: State, outcome: Accepted) -> None:
        self.rt.health.answered(job.service or "", job.id)
        if expect is State.SUBMITTING:
            self.budgets.spend(job.service or "", job.kind, job.page_count or None)
        self.rt.store.transition(
            job.id,
            expect,
            State.SUBMITTED,
            remote={**job.remote, **outcome.remote},
            not_before=self.rt.clock.now() + outcome.poll_after,
        )
        self.rt.signals.schedule.set()

    # --- something went wrong -------------------------------------------------------------

    async def error(self, job_id: int, err: DocinboxError) -> None:
        rt = self.rt
        job = rt.store.get(job_id)
        if job.state in TERMINAL:
            return
        if parts.refused_range(rt, job, err):
            instead = await parts.as_file(rt, job, err)
            if instead is None:
                rt.changed()
                return
            err = instead
        if isinstance(err, PartOutputLost):
            await self._part_output_lost(job, err)
            return
        if isinstance(err, RateLimited):
            self._rate_limited(job, err)
        elif isinstance(err, QuotaExceeded) and self._spent(job, err):
            pass  # it takes the next route
        elif err.scope == "service" and not rt.once and not rt.health.documents_fault(job, err):
            self._pause_service(job, err)
        elif isinstance(err, HostError):
            self._wait_for_the_disk(job, err)
        elif err.retryable and not rt.retry.gives_up(
            job.attempts, job.first_error_at, rt.clock.now()
        ):
            self._retry_later(job, err)
        else:
            await self.fail(job, err)
            return
        rt.changed()

    async def _part_output_lost(self, job: Job, err: PartOutputLost) -> None:
        """Merging a split document met a part whose stored answer cannot be read: the
        document waits (``split``) while that part is fetched (or sent) again."""
        try:
            self.rt.store.transition(
                job.id, State.RECEIVED, State.SPLIT, note=f"part {err.part_id}: {err.code}"
            )
        except StaleTransition:
            return
        await self.error(err.part_id, err.for_part())

    @staticmethod
    def _back(job: Job, err: DocinboxError) -> State:
        """Where a job that will be tried again waits: its step to do again."""
        if isinstance(err, ServiceError) and err.resubmit and job.state is State.SUBMITTED:
            return State.QUEUED  # the remote task is used up: submit again
        if isinstance(err, RawOutputLost) and job.state is State.RECEIVED:
            return State.QUEUED if err.resubmit else State.SUBMITTED  # fetch it again
        return State.QUEUED if job.state is State.SUBMITTING else job.state

    def _pause_service(self, job: Job, err: DocinboxError) -> None:
        rt = self.rt
        name = job.service or err.service or ""
        service = rt.services.get(name)
        origin = service.settings.credential.origin if service is not None else None
        rt.health.pause(name, err, credential=origin)
        rt.signals.health.set()
        # The attempt was the service's to lose, not the document's: give it back.
        attempts = job.attempts - 1 if job.state is State.SUBMITTING else job.attempts
        rt.store.transition(
            job.id,
            job.state,
            self._back(job, err),
            error=err.code,
            message=err.message,
            attempts=max(0, attempts),
            note=f"service paused: {err.code}",
        )

    def _rate_limited(self, job: Job, err: RateLimited) -> None:
        """The service asked for a wait longer than a step holds its slot for: the job
        waits in line (its attempt given back, nothing recorded as its error); the pacer
        holds the service's lane, so nothing is sent before the wait is over."""
        rt = self.rt
        wait = min(err.retry_after or 1.0, RETRY_AFTER_CEILING)
        log.info("%s: %s; it waits its turn (%.0f s)", job.rel_path, err.message, wait)
        rt.store.transition(
            job.id,
            job.state,
            self._back(job, err),
            not_before=rt.clock.now() + wait,
            attempts=max(0, job.attempts - 1 if job.state is State.SUBMITTING else job.attempts),
            note="rate limited: waits its turn",
        )
        rt.signals.schedule.set()

    def _spent(self, job: Job, err: QuotaExceeded) -> bool:
        """A quota used up: that allowance is spent until it renews.  True when the job
        takes the next route instead of waiting (``when_exhausted = "next_route"``)."""
        rt = self.rt
        name = job.service or err.service or ""
        service = rt.services.get(name)
        if self.budgets.said_spent(name, err) is None or service is None:
            return False
        unsent = job.state is State.SUBMITTING or (job.state is State.SUBMITTED and err.resubmit)
        if service.when_exhausted != "next_route" or rt.once or not unsent:
            return False
        attempts = job.attempts - 1 if job.state is State.SUBMITTING else job.attempts
        rt.store.transition(
            job.id,
            job.state,
            State.QUEUED,
            service=None,
            remote={},
            attempts=max(0, attempts),
            note=f"{name}'s {err.code} allowance is used up: next route",
        )
        rt.store.clear_routes(name)
        rt.signals.inspect.set()
        return True

    def _wait_for_the_disk(self, job: Job, err: HostError) -> None:
        """A full or read-only disk is ours to fix, not the document's fault: keep the
        result and the original where they are and try again, however long it takes."""
        rt = self.rt
        self._host_failures[job.id] = n = self._host_failures.get(job.id, 0) + 1
        wait = rt.retry.delay(n)
        log.error("%s: %s; trying again in %.0f s. %s", job.rel_path, err.message, wait, err.hint)
        stay = job.state if job.state is not State.SUBMITTING else State.QUEUED
        rt.store.transition(
            job.id,
            job.state,
            stay,
            not_before=rt.clock.now() + wait,
            error=err.code,
            message=err.message,
            note="host error",
        )

    def _retry_later(self, job: Job, err: DocinboxError) -> None:
        rt = self.rt
        now = rt.clock.now()
        asked = err.retry_after if isinstance(err, ServiceError) else None
        if asked is not None:
            asked = min(asked, RETRY_AFTER_CEILING)
        wait = rt.retry.delay(max(1, job.attempts), asked)
        log.warning("%s: %s; retrying in %.1f s", job.rel_path, err.message, wait)
        rt.store.transition(
            job.id,
            job.state,
            self._back(job, err),
            not_before=now + wait,
            error=err.code,
            message=err.message,
            first_error_at=job.first_error_at or now,
            note=f"retry: {err.code}",
        )
        rt.signals.schedule.set()

    def succeeded(self, job_id: int) -> None:
        self._host_failures.pop(job_id, None)

    async def fail(self, job: Job, err: DocinboxError) -> None:
        """The document cannot be processed: recorded (``failing``) before its original
        moves to ``failed/`` beside its ``.error.json``, then ``failed``."""
        rt = self.rt
        current = rt.store.get(job.id)
        if current.state in TERMINAL:
            return
        if current.is_part:
            parts.part_failed(rt, current, err)
            return
        if current.state is not State.FAILING:
            try:
                current = rt.store.transition(
                    current.id,
                    current.state,
                    State.FAILING,
                    error=err.code,
                    message=err.message,
                    hint=err.hint,
                    not_before=0.0,
                    note=err.code,
                )
            except StaleTransition:
                return
            log.error("%s: failed (%s): %s", current.rel_path, err.code, err.message)
        await self.move_failed(current)

    async def move_failed(self, job: Job) -> None:
        """A ``failing`` job's original → ``failed/`` with its error file; a disk that
        says no leaves everything where it is and the move is tried again later."""
        rt = self.rt
        if job.is_part:  # a part moves nothing: its document does
            parts.part_failed(rt, job, None)
            return
        error = {
            "error": job.error,
            "message": job.message,
            "service": job.service,
            "attempts": job.attempts,
            "hint": job.hint or "",
            "document": display_name(job.rel_path),
        }
        # A file that changed under us is no longer the one this job knew: leave it.
        location = None if job.error == DocumentVanished.code else Path(job.location)
        try:
            await rt.durable.wait()  # "failing" on disk before the original moves
            moved = await asyncio.to_thread(
                fail_original, location, job.rel_path, rt.folders.failed, error
            )
        except HostError as exc:
            self._host_failures[job.id] = n = self._host_failures.get(job.id, 0) + 1
            wait = rt.retry.delay(n)
            log.error(
                "%s: %s; trying again in %.0f s. %s", job.rel_path, exc.message, wait, exc.hint
            )
            rt.store.update(job.id, State.FAILING, not_before=rt.clock.now() + wait)
            rt.signals.finish.set()
            rt.changed()
            return
        try:
            rt.store.transition(job.id, State.FAILING, State.FAILED, location=str(moved))
        except StaleTransition:
            return
        self._host_failures.pop(job.id, None)
        if not job.parts:  # a split document's parts and answers wait for a retry
            await asyncio.to_thread(shutil.rmtree, rt.workdir(job.id), True)
        rt.changed()
