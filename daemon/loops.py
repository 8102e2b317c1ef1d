"""The daemon's long-lived tasks: one per kind of work, each waiting on its own signal
(pipeline/runtime.Signals), in the order a document meets them:

    intake      the watcher's ready files → admit (pipeline/admit.py)        → queued
    inspector   type, pages, route (pipeline/inspect.py)      → queued for a service
    scheduler   submissions and polls within each service's slots (daemon/scheduler.py)
                → submit (pipeline/submit.py) / poll (pipeline/poll.py)
    finisher    received answers → outbox (pipeline/finish.py)                → done
                failed documents' originals → failed/                        → failed
    prober      unreachable services, looked at again (daemon/health.py)
    external    another process changed the store (``docinbox retry``): look again
    publisher   the status the tray shows

Steps that talk to a service (submissions, polls, probes) run as tasks of their own,
so a slow service never holds up the loops; the daemon waits for them at a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from .control import FOREVER, StatusSnapshot
from .errors import DocinboxError
from .pipeline.admit import admit_paths
from .pipeline.finish import finish_received, move_failing
from .pipeline.inspect import inspect_pending
from .pipeline.outcomes import Outcomes
from .pipeline.poll import poll
from .pipeline.runtime import Runtime
from .pipeline.submit import submit
from .scheduler import Scheduler, Work
from .status import build_snapshot, paused_until
from .store import ACTIVE, State
from .watcher import InboxWatcher

log = logging.getLogger("docinbox")

#: How often the store is asked whether another process changed it (``docinbox retry``,
#: ``docinbox pause``): one cheap pragma.
EXTERNAL_CHECK = 0.25
#: Status published to the tray at most this often.
PUBLISH_INTERVAL = 0.25

TaskDone = Callable[["asyncio.Task[None]"], None]


class Loops:
    def __init__(
        self,
        rt: Runtime,
        outcomes: Outcomes,
        scheduler: Scheduler,
        *,
        publish: Callable[[StatusSnapshot], None],
        stopping: asyncio.Event,
        on_done: TaskDone,
    ) -> None:
        self.rt = rt
        self.outcomes = outcomes
        self.scheduler = scheduler
        self.publish = publish
        self.stopping = stopping
        self.on_done = on_done
        self.queue: asyncio.Queue[list[Path]] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        #: Steps under way (submissions, polls, probes): a stop waits for them briefly.
        self.work: set[asyncio.Task[None]] = set()
        self.watcher: InboxWatcher | None = None
        self._admitting = False
        self._probing: set[str] = set()
        self._inspect_timer: asyncio.TimerHandle | None = None
        for service in rt.services.values():  # a pacer that lets more go wakes the scheduler
            if service.pacer is not None:
                service.pacer.on_room = rt.signals.schedule.set

    def bodies(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [
            self.intake,
            self.inspector,
            self.scheduling,
            self.finisher,
            self.prober,
            self.external,
            self.publisher,
            self.rt.durable.flush,
        ]

    def offer(self, paths: list[Path]) -> None:
        """The watcher's ready files, from its thread."""
        if not paths or self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self.loop.call_soon_threadsafe(self.queue.put_nowait, list(paths))

    # --- the loops --------------------------------------------------------------------------

    async def intake(self) -> None:
        while True:
            paths = await self.queue.get()
            self._admitting = True
            try:
                while not self.queue.empty():
                    paths += self.queue.get_nowait()
                await admit_paths(self.rt, self.outcomes, paths)
            finally:
                self._admitting = self.queue.qsize() > 0
            self.rt.signals.inspect.set()

    async def inspector(self) -> None:
        rt = self.rt
        while True:
            await rt.signals.inspect.wait()
            rt.signals.inspect.clear()
            # Intake first: inspecting competes with hashing for the interpreter, and a
            # file is only safe once it is queued.  Intake signals when it is done.
            while not self._admitting and self.queue.empty():
                if not await inspect_pending(rt, self.outcomes):
                    break
            # Documents held back (still being written) are looked at again when due.
            now = rt.clock.now()
            due = rt.store.next_due(State.QUEUED, after=now)
            if self._inspect_timer is not None:
                self._inspect_timer.cancel()
            self._inspect_timer = (
                None if due is None else self.loop.call_later(due - now, rt.signals.inspect.set)
            )

    async def scheduling(self) -> None:
        try:
            await self._scheduling()
        finally:  # what the budgets counted and the pacers learned is kept
            self.scheduler.budgets.flush(force=True)
            self.scheduler.save_pacing(self.rt.clock.now(), force=True)

    async def _scheduling(self) -> None:
        rt = self.rt
        while True:
            rt.signals.schedule.clear()
            now = rt.clock.now()
            pause = paused_until(rt.store, now)
            blocked = rt.health.blocked()
            if pause is None or rt.once:
                for work in self.scheduler.plan(
                    blocked=set(blocked), inflight=rt.inflight, stopping=self.stopping.is_set()
                ):
                    self._start(work)
            if self.scheduler.rerouted:  # a budget ran out: its documents take the next route
                self.scheduler.rerouted = False
                rt.signals.inspect.set()
            waits = [self.scheduler.next_wake()]
            if pause is not None and pause != FOREVER:
                waits.append(pause - now)
            waits += [
                float(h["until"]) - now
                for h in blocked.values()
                if h.get("until") is not None and h.get("condition") != "retrying"
            ]
            await wait(rt.signals.schedule, soonest(waits))

    async def finisher(self) -> None:
        rt = self.rt
        while True:
            rt.signals.finish.clear()
            while await finish_received(rt, self.outcomes):
                rt.signals.schedule.set()
            await move_failing(rt, self.outcomes)
            now = rt.clock.now()
            due = rt.store.next_due(State.RECEIVED, State.FAILING, after=now)
            await wait(rt.signals.finish, None if due is None else due - now)

    async def prober(self) -> None:
        rt = self.rt
        while True:
            rt.signals.health.clear()
            for name, probes in rt.health.due_probes().items():
                if name in rt.services and name not in self._probing:
                    self._probing.add(name)
                    self._spawn(self._probe(name, probes + 1), f"probe:{name}")
            due = rt.health.next_probe()
            await wait(rt.signals.health, None if due is None else due - rt.clock.now())

    async def external(self) -> None:
        """Another process changed the store (``docinbox retry``): look at everything."""
        seen = self.rt.store.data_version()
        while True:
            await asyncio.sleep(EXTERNAL_CHECK)
            version = self.rt.store.data_version()
            if version != seen:
                seen = version
                self.rt.signals.all()

    async def publisher(self) -> None:
        """The status the tray shows, rebuilt when something changed, four times a second
        at most (at ten, a burst spent 13 % of the daemon's time on it: bench profile);
        subscribers are told (they only set a flag of their own)."""
        rt = self.rt
        while True:
            await rt.signals.changed.wait()
            rt.signals.changed.clear()
            self.publish(
                build_snapshot(
                    rt.store, rt.clock.now(), activity=rt.activity, outbox=rt.folders.outbox
                )
            )
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def until_idle(self) -> None:
        """``--once``: stop when nothing is pending anywhere."""
        while not self.idle():
            await asyncio.sleep(0.05)
        self.stopping.set()

    def idle(self) -> bool:
        rt = self.rt
        if self.work or self._admitting or not self.queue.empty() or rt.inflight:
            return False
        if self.watcher is not None and self.watcher.pending_count():
            return False
        counts = rt.store.counts()
        return not any(counts.get(str(s), 0) for s in ACTIVE)

    # --- steps that talk to a service ---------------------------------------------------

    def _start(self, work: Work) -> None:
        self.rt.inflight.update(work.job_ids)
        self.rt.touched.update(work.job_ids)
        self.scheduler.started(work)
        self._spawn(self._do(work), f"{work.kind}:{work.service}")

    async def _do(self, work: Work) -> None:
        rt = self.rt
        service = rt.services[work.service]
        try:
            if work.kind == "submit":
                await submit(rt, self.outcomes, service, work.jobs)
            else:
                await poll(rt, self.outcomes, service, work.jobs)
        finally:
            rt.inflight.difference_update(work.job_ids)
            self.scheduler.finished(work)
            rt.signals.schedule.set()
            rt.changed()

    async def _probe(self, name: str, probes: int) -> None:
        """One cheap request: any answer at all means the service is back."""
        rt = self.rt
        try:
            await rt.services[name].probe()
        except DocinboxError as exc:
            if exc.scope == "service" and exc.retryable:
                rt.health.still_unreachable(name, probes, exc)
            else:  # it answered, if not happily: reachable
                log.debug("%s probe: %s", name, exc)
                rt.health.resumed(name)
        else:
            rt.health.resumed(name)
        finally:
            self._probing.discard(name)
            rt.signals.health.set()
            rt.signals.schedule.set()
            rt.changed()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self.work.add(task)
        task.add_done_callback(self.work.discard)
        task.add_done_callback(self.on_done)


async def wait(event: asyncio.Event, timeout: float | None) -> None:
    """Until *event* is set, or *timeout* seconds (None: no timeout) pass."""
    if timeout is None:
        await event.wait()
        return
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), max(0.0, timeout))


def soonest(waits: list[float | None]) -> float | None:
    present = [w for w in waits if w is not None]
    return min(present) if present else None
