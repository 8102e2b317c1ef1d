"""What to start now: per-service slots, batch windows and due times.

The scheduler does no I/O of its own beyond reading the store: it answers "which
submissions and polls may start now" (:meth:`Scheduler.plan`) and "when to look again"
(:meth:`Scheduler.next_wake`); the lifecycle runs what it plans.  Each service has
``concurrency`` slots; a submission or a poll holds one slot while it talks to the
service.  Documents that may share a submission (MinerU: same batch options, up to 200)
wait up to the service's ``batch_window`` for company, unless the batch is full or the
daemon is stopping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Literal

from .clock import Clock
from .services import Service
from .store import Job, State, Store

#: Submitted jobs looked at per planning pass (their polls are grouped by remote batch).
POLL_SCAN = 5000


@dataclass(frozen=True)
class Work:
    """A step to run: one submission or one poll, holding one of *service*'s slots."""

    kind: Literal["submit", "poll"]
    service: str
    jobs: tuple[Job, ...]

    @property
    def job_ids(self) -> list[int]:
        return [j.id for j in self.jobs]


class Scheduler:
    def __init__(self, services: Mapping[str, Service], store: Store, clock: Clock) -> None:
        self.services = services
        self.store = store
        self.clock = clock
        self.busy: dict[str, int] = {name: 0 for name in services}
        #: When each job waiting for batch company was first seen due (monotonic).
        self._due_since: dict[int, float] = {}
        self._window_ends: float | None = None

    def free(self, name: str) -> int:
        return self.services[name].settings.concurrency - self.busy.get(name, 0)

    def started(self, work: Work) -> None:
        self.busy[work.service] = self.busy.get(work.service, 0) + 1

    def finished(self, work: Work) -> None:
        self.busy[work.service] -= 1

    def plan(self, *, blocked: Set[str], inflight: Set[int], stopping: bool) -> list[Work]:
        """Every poll and submission there is a free slot for, polls first (they finish
        documents already paid for)."""
        now = self.clock.now()
        self._window_ends = None
        free = {name: self.free(name) for name in self.services if name not in blocked}
        work = list(self._polls(now, free, inflight))
        work += self._submissions(now, free, inflight, stopping)
        return work

    def next_wake(self) -> float | None:
        """Seconds until something may become startable without a signal: a job that is
        not due yet, or the end of a batch window.  Work that is due but has no free slot
        waits for a signal (a step ending, a drop, a user action) — never a spin."""
        now = self.clock.now()
        due = self.store.next_due(State.QUEUED, State.SUBMITTED, after=now)
        waits = [max(0.0, due - now)] if due is not None else []
        if self._window_ends is not None:
            waits.append(max(0.0, self._window_ends - self.clock.monotonic()))
        return min(waits) if waits else None

    def _polls(self, now: float, free: dict[str, int], inflight: Set[int]) -> Iterator[Work]:
        """One poll per remote batch (or per document where the API has no batches)."""
        due = self.store.next_due(State.SUBMITTED)
        if due is None or due > now:
            return
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in self.store.in_state(State.SUBMITTED, limit=POLL_SCAN):
            service = self.services.get(job.service or "")
            if service is None or job.id in inflight or job.service not in free:
                continue
            key = service.poll_key(job.remote) or f"job:{job.id}"
            groups.setdefault((service.name, key), []).append(job)
        for (name, _key), jobs in groups.items():
            if free[name] <= 0 or min(j.not_before for j in jobs) > now:
                continue
            free[name] -= 1
            yield Work("poll", name, tuple(jobs))

    def _submissions(
        self, now: float, free: dict[str, int], inflight: Set[int], stopping: bool
    ) -> list[Work]:
        """What the free slots allow, asking the store per service for just that many jobs
        (a backlog of thousands costs one small query per pass, not a scan)."""
        mono = self.clock.monotonic()
        out: list[Work] = []
        for name, slots in free.items():
            if slots <= 0:
                continue
            service = self.services[name]
            jobs = self.store.due_for(
                name, now, slots * max(1, service.batch_limit), exclude=inflight
            )
            batches: dict[str, list[Job]] = {}
            for job in jobs:
                key = service.batch_key(job.kind or "", job.options)
                if key is None or service.batch_limit <= 1:
                    if slots > 0:
                        slots -= 1
                        out.append(Work("submit", name, (job,)))
                    continue
                self._due_since.setdefault(job.id, mono)
                batches.setdefault(key, []).append(job)
            for chunk in (
                c for group in batches.values() for c in _chunks(group, service.batch_limit)
            ):
                oldest = min(self._due_since[j.id] for j in chunk)
                full = len(chunk) >= service.batch_limit
                if not full and mono - oldest < service.batch_window and not stopping:
                    ends = oldest + service.batch_window
                    self._window_ends = min(self._window_ends or ends, ends)
                    continue
                if slots <= 0:
                    break
                slots -= 1
                for job in chunk:
                    self._due_since.pop(job.id, None)
                out.append(Work("submit", name, tuple(chunk)))
        return out


def _chunks(items: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
