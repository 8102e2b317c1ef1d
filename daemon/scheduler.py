"""What to start now: per-service slots, batch windows and due times.

The scheduler does no I/O of its own beyond reading the store: it answers "which
submissions and polls may start now" (:meth:`Scheduler.plan`) and "when to look again"
(:meth:`Scheduler.next_wake`); the lifecycle runs what it plans.  Each service has
``concurrency`` slots; a submission or a poll holds one slot while it talks to the
service.  Documents that may share a submission (MinerU: same batch options, up to 200)
wait up to the service's ``batch_window`` for company, unless the batch is full or the
daemon is stopping.

Each service's pacer (daemon/services/pacing.py) has the last word on how many steps
start: its window (``concurrency`` is only the ceiling) and what its lanes let go within
a moment; a lane that holds steps back wakes the scheduler when it lets them go.  What
the pacers learned is kept in the store's meta table (``pacer:<name>``), restored here,
so a restart starts where it left off.  A service whose budget ran out takes no new
documents until it renews (daemon/budgets.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from dataclasses import dataclass
from typing import Literal

from . import budgets
from .clock import Clock
from .services import Service
from .store import Job, State, Store

#: Submitted jobs looked at per planning pass (their polls are grouped by remote batch).
POLL_SCAN = 5000
#: What a pacer learned and shows is written at most this often (and when it changed).
PACER_PREFIX, SAVE_EVERY = "pacer:", 2.0


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
        #: Documents in submissions under way, per service: they count against its
        #: budgets' room before the service has accepted (and docinbox counted) them.
        self.sending: dict[str, int] = {name: 0 for name in services}
        #: When each job waiting for batch company was first seen due (monotonic).
        self._due_since: dict[int, float] = {}
        self._window_ends: float | None = None
        self.budgets = budgets.shared(store, services, clock)
        #: Set when a budget sent a service's queued documents back to be routed again.
        self.rerouted = False
        self._saved: dict[str, tuple[float, bool]] = {}
        for name, service in services.items():
            state = store.meta(PACER_PREFIX + name)
            if service.pacer is not None and isinstance(state, dict):
                service.pacer.restore(state)

    def free(self, name: str, kind: str = "submit", planned: int = 0) -> int:
        """Steps of *kind* that may start for *name*, *planned* more being started."""
        service = self.services[name]
        busy = self.busy.get(name, 0) + planned
        free = service.settings.concurrency - busy
        if service.pacer is not None:
            free = min(free, service.pacer.room(kind, busy))
        return free

    def started(self, work: Work) -> None:
        self.busy[work.service] = self.busy.get(work.service, 0) + 1
        if work.kind == "submit":
            self.sending[work.service] = self.sending.get(work.service, 0) + len(work.jobs)
        pacer = self.services[work.service].pacer
        if pacer is not None:
            pacer.promise(work.kind)

    def finished(self, work: Work) -> None:
        self.busy[work.service] -= 1
        if work.kind == "submit":
            self.sending[work.service] -= len(work.jobs)

    def plan(self, *, blocked: Set[str], inflight: Set[int], stopping: bool) -> list[Work]:
        """Every poll and submission there is a free slot for, polls first (they finish
        documents already paid for)."""
        now = self.clock.now()
        self._window_ends = None
        names = [name for name in self.services if name not in blocked]
        free = {name: self.free(name, "poll") for name in names}
        work = list(self._polls(now, free, inflight))
        polls = {name: sum(1 for w in work if w.service == name) for name in names}
        free = {
            name: self.free(name, "submit", polls[name])
            for name in names
            if self.budgets.closed(name) is None
        }
        work += self._submissions(now, free, inflight, stopping)
        for name in self.budgets.newly_closed():
            self.rerouted = bool(self.store.clear_routes(name)) or self.rerouted
        self.budgets.flush(force=not any(self.busy.values()))  # idle: the last counts now
        self.save_pacing(now, starting={w.service for w in work})
        return work

    def save_pacing(
        self, now: float, *, force: bool = False, starting: Set[str] = frozenset()
    ) -> None:
        """What each pacer learned (and shows) into the store: when it changed, and while
        the service is busy, at most every SAVE_EVERY seconds; once more when it is idle."""
        mono = self.clock.monotonic()
        for name, service in self.services.items():
            pacer = service.pacer
            if pacer is None:
                continue
            busy = self.busy.get(name, 0) > 0 or pacer.in_flight > 0 or name in starting
            at, was_busy = self._saved.get(name, (-SAVE_EVERY, False))
            idle_now = was_busy and not busy  # the last view: nothing under way
            due = force or idle_now or ((pacer.changed or busy) and mono - at >= SAVE_EVERY)
            if not due:
                continue
            pacer.changed = False
            self._saved[name] = (mono, busy)
            self.store.set_meta(
                PACER_PREFIX + name, {**pacer.state(), "view": pacer.view(now), "at": now}
            )

    def next_wake(self) -> float | None:
        """Seconds until something may become startable without a signal: a job that is
        not due yet, or the end of a batch window.  Work that is due but has no free slot
        waits for a signal (a step ending, a drop, a user action) — never a spin."""
        now, mono = self.clock.now(), self.clock.monotonic()
        due = self.store.next_due(State.QUEUED, State.SUBMITTED, after=now)
        waits = [max(0.0, due - now)] if due is not None else []
        if self._window_ends is not None:
            waits.append(max(0.0, self._window_ends - mono))
        for name, service in self.services.items():
            pacer = service.pacer
            lets_go = pacer.wake_at() if pacer is not None else None
            if pacer is not None and lets_go is not None:
                waits.append(max(0.0, lets_go - pacer.clock()))
            renews = self.budgets.closed(name)
            if renews is not None:
                waits.append(max(0.0, renews - now))
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
            wanted = slots * max(1, service.batch_limit)
            room = self.budgets.room(name)
            if room is not None:
                wanted = min(wanted, max(0, room - self.sending.get(name, 0)))
            jobs = self.store.due_for(name, now, wanted, exclude=inflight) if wanted else []
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
