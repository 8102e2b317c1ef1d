"""The daemon's life: start, run, stop — and the tasks that move documents along.

Start, in order: the folders' lock, the store, the embedded mock (when configured), the
daemon's HTTP server (when a service fetches documents or pushes results), the
services, recovery of what a crash left (daemon.recovery), the watcher.  Then one
long-lived task per kind of work, each waiting on its own signal (see
pipeline/runtime.py):

    watcher ─► intake ─► admit (pipeline/admit.py)            → queued
    inspector ─► inspect and route (pipeline/inspect.py)     → queued for a service
    scheduler ─► submit (pipeline/submit.py) / poll (pipeline/poll.py), within slots
    finisher ─► write results (pipeline/finish.py)           → done
    prober ─► probe unreachable services (daemon/health.py)
    watch for other processes' changes (``docinbox retry``) and publish status

The event loop owns the store and every piece of state; threads run only blocking
work that touches no state (hashing, sniffing, writing folders, moving files), and the
watcher's and the tray's own.  The tray reaches the daemon through
:class:`DaemonControl` only.  Stop: the watcher stops, steps under way get a few
seconds to finish (a cancelled request stays ``submitting`` and recovery decides), the
servers and services close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import httpx

from . import embedded, sniff
from . import services as registry
from .clock import Clock, SystemClock
from .control import FOREVER, StatusSnapshot
from .errors import DocinboxError, StoreError
from .health import Health
from .lock import DaemonLock
from .outbox import OutboxWriter
from .pipeline.admit import admit_paths
from .pipeline.finish import finish_received, move_failing
from .pipeline.inspect import inspect_pending
from .pipeline.outcomes import Outcomes
from .pipeline.poll import poll, wake
from .pipeline.runtime import Runtime
from .pipeline.submit import submit
from .recovery import recover
from .retry import RetryPolicy
from .scheduler import Scheduler, Work
from .servers.files import FileServer
from .services import Callbacks, Service, ServiceContext
from .settings import Settings
from .status import PAUSE_KEY, build_snapshot, paused_until, retry
from .store import ACTIVE, State, Store, open_store
from .watcher import IgnoreRules, InboxWatcher

log = logging.getLogger("docinbox")

FILES_SECRET_KEY = "fileserver_secret"
CALLBACK_SEED_KEY = "callback_seed"
#: How often the store is asked whether another process changed it (``docinbox retry``,
#: ``docinbox pause``): one cheap pragma.
EXTERNAL_CHECK = 0.25
#: Status published to the tray at most this often.
PUBLISH_INTERVAL = 0.1
#: A stop gives steps under way this long to finish.
STOP_GRACE = 5.0


class Daemon:
    """One docinbox daemon on one configuration."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        services: Mapping[str, Service] | None = None,
        fsync: bool = True,
        start_mock: bool | None = None,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._transport = transport
        self._given_services = services
        self._rng = rng or random.Random()
        self._fsync = fsync
        self._start_mock = settings.mock.embedded if start_mock is None else start_mock
        self._lock: DaemonLock | None = None
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._once = False
        self.store: Store | None = None
        self.rt: Runtime | None = None
        self.mock: Any = None
        self.files: FileServer | None = None
        self.watcher: InboxWatcher | None = None
        self._queue: asyncio.Queue[list[Path]] | None = None
        self._admitting = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._work: set[asyncio.Task[None]] = set()
        self._probing: set[str] = set()
        self._fatal: StoreError | None = None
        self._inspect_timer: asyncio.TimerHandle | None = None
        self.control = DaemonControl(self)

    # --- the outside: lock, run, stop -----------------------------------------------------

    def lock(self) -> DaemonLock:
        """The lock on this daemon's folders and database.  The CLI takes it before the
        first log line or tray icon, so a refused second daemon leaves no trace in the
        running one's log; otherwise the start takes it."""
        if self._lock is None:
            f = self.settings.folders
            lock = DaemonLock(f.state, [f.inbox, f.outbox], config=self.settings.config_path)
            lock.acquire()
            self._lock = lock
        return self._lock

    def run(self, *, once: bool = False) -> int:
        """Run in the foreground until stopped (or, with *once*, until nothing is pending)."""
        return asyncio.run(self.run_async(once=once))

    def stop(self) -> None:
        """Ask for a clean stop, from any thread or a signal handler."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stopping.set)

    async def run_async(self, *, once: bool = False) -> int:
        self._once = once
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            self._stopping.set()
        try:
            await self._start()
            await self._run()
        finally:
            await self._shutdown()
        if self._fatal is not None:
            raise self._fatal
        return self.exit_code()

    def exit_code(self) -> int:
        """A plain stop is a success (systemd must not mark the unit failed); only --once
        reports whether the documents it saw failed."""
        if not self._once:
            return 0
        if self.store is None or self.rt is None:
            return 1
        failed = {j.id for j in self.store.jobs(states=(State.FAILED,))}
        return 1 if failed & self.rt.touched else 0

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- start ----------------------------------------------------------------------------

    async def _start(self) -> None:
        f = self.settings.folders
        for folder in (f.inbox, f.outbox, f.failed, f.archive, f.state.parent):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        self.lock()
        self.store = store = open_store(f.state, clock=self.clock)
        if self._start_mock:
            self.mock, self.settings = await asyncio.to_thread(embedded.start_mock, self.settings)
            log.info("embedded mock listening at %s", self.mock.url)
        callbacks = self._callbacks(store)
        if registry.fetches_documents(self.settings) or callbacks is not None:
            self.files = await self._start_file_server(store)
        ctx = ServiceContext(
            transport=self._transport, clock=self.clock, files=self.files, callbacks=callbacks
        )
        services = (
            dict(self._given_services)
            if self._given_services is not None
            else registry.build(self.settings, ctx)
        )
        if self.files is not None:
            self.files.verifiers.update({n: s.callback_ids for n, s in services.items()})
        self.rt = rt = Runtime(
            settings=self.settings,
            store=store,
            services=services,
            clock=self.clock,
            writer=OutboxWriter(f.outbox, fsync=self._fsync),
            health=Health(store, self.clock),
            retry=RetryPolicy(self.settings.retry, self._rng),
            ignore=IgnoreRules(self.settings.watcher.ignore),
            inspector=sniff.Inspector(),
            once=self._once,
        )
        self.outcomes = Outcomes(rt)
        self.scheduler = Scheduler(services, store, self.clock)
        recover(rt)
        self._queue = asyncio.Queue()
        w = self.settings.watcher
        self.watcher = InboxWatcher(
            f.inbox,
            self._offer,
            ignore=rt.ignore,
            mode=w.mode,
            quiet_seconds=w.quiet_seconds,
            settle_seconds=w.settle_seconds,
            rescan_seconds=w.rescan_seconds,
            clock=self.clock,
        )
        await asyncio.to_thread(self.watcher.start)
        log.info(
            "watching %s (%s mode); results go to %s", f.inbox, self.watcher.active_mode, f.outbox
        )

    def _persisted_secret(self, store: Store, key: str, make: Callable[[], str]) -> str:
        value = store.meta(key)
        if value is None:  # persisted: URLs and seeds handed out before a restart stay valid
            value = make()
            store.set_meta(key, value)
        return str(value)

    def _callbacks(self, store: Store) -> Callbacks | None:
        public = self.settings.callbacks.public_url
        if not public:
            return None
        seed = self._persisted_secret(store, CALLBACK_SEED_KEY, lambda: secrets.token_hex(16))
        return Callbacks(url=f"{public}/callbacks", seed=seed)

    async def _start_file_server(self, store: Store) -> FileServer:
        """Documents in flight for a parser that fetches them, at signed, expiring URLs,
        and the services' result callbacks."""
        listen, public = self.settings.callbacks.listen, self.settings.callbacks.public_url
        for name in registry.needed(self.settings):
            address = registry.REGISTRY[name].files_address(self.settings.services[name])
            if address is not None:
                listen, public = address
        secret = self._persisted_secret(store, FILES_SECRET_KEY, lambda: secrets.token_hex(32))
        files = FileServer(
            listen,
            public,
            bytes.fromhex(secret),
            self._in_flight_path,
            clock=self.clock,
            on_callback=self._on_callback,
            on_fetch=self._on_fetch,
        )
        await files.start()
        log.info("docinbox's HTTP server (documents for the parser, callbacks) at %s", files.url)
        return files

    def _in_flight_path(self, job_id: int) -> Path | None:
        """The file server's only way to a file: jobs sent and not yet finished."""
        if self.store is None:
            return None
        try:
            job = self.store.get(job_id)
        except KeyError:
            return None
        if job.state not in (State.SUBMITTING, State.SUBMITTED) or not job.location:
            return None
        return Path(job.location)

    def _on_fetch(self, job_id: int) -> None:
        """The parser fetched a document: after a crash it is known to have it."""
        if self.store is None:
            return
        with contextlib.suppress(KeyError):
            if "fetched_at" not in self.store.get(job_id).remote:
                self.store.checkpoint(job_id, {"fetched_at": self.clock.now()})

    def _on_callback(self, service: str, ids: Mapping[str, str]) -> None:
        if self.rt is not None:
            wake(self.rt, service, ids)

    def _offer(self, paths: list[Path]) -> None:
        """Called by the watcher, from its thread, with files that are completely written."""
        loop, queue = self._loop, self._queue
        if not paths or loop is None or queue is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(queue.put_nowait, list(paths))

    # --- run ------------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._stopping is not None and self.rt is not None
        for body in (
            self._intake,
            self._inspector,
            self._scheduler,
            self._finisher,
            self._prober,
            self._external,
            self._publisher,
        ):
            self._spawn(body(), self._tasks, body.__name__)
        self.rt.signals.all()
        if self._once:
            self._spawn(self._until_idle(), self._tasks, "once")
        await self._stopping.wait()

    def _spawn(
        self, coro: Coroutine[Any, Any, None], into: set[asyncio.Task[None]], name: str
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        into.add(task)
        task.add_done_callback(into.discard)
        task.add_done_callback(self._task_ended)
        return task

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """A task that failed is a bug, logged; a state database that fails (damaged,
        gone) stops the daemon with that error: nothing can be recorded any more."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        if isinstance(exc, StoreError):
            if self._fatal is None:
                self._fatal = exc
                log.critical("%s. %s", exc.message, exc.hint)
            if self._stopping is not None:
                self._stopping.set()
            return
        log.error("background task %s failed", task.get_name(), exc_info=exc)

    async def _intake(self) -> None:
        assert self._queue is not None and self.rt is not None
        while True:
            paths = await self._queue.get()
            self._admitting = True
            try:
                while not self._queue.empty():
                    paths += self._queue.get_nowait()
                await admit_paths(self.rt, self.outcomes, paths)
            finally:
                self._admitting = self._queue.qsize() > 0
            self.rt.signals.inspect.set()

    async def _inspector(self) -> None:
        rt = self.rt
        assert rt is not None and self._queue is not None
        while True:
            await rt.signals.inspect.wait()
            rt.signals.inspect.clear()
            # Intake first: inspecting (pypdf) competes with hashing for the interpreter,
            # and a file is only safe once it is queued.  Intake signals when it is done.
            while not self._admitting and self._queue.empty():
                if not await inspect_pending(rt, self.outcomes):
                    break
            # Documents held back (still being written) are looked at again when due.
            now = self.clock.now()
            due = rt.store.next_due(State.QUEUED, after=now)
            if self._inspect_timer is not None:
                self._inspect_timer.cancel()
            self._inspect_timer = (
                None
                if due is None
                else asyncio.get_running_loop().call_later(due - now, rt.signals.inspect.set)
            )

    async def _scheduler(self) -> None:
        rt, stopping = self.rt, self._stopping
        assert rt is not None and stopping is not None
        while True:
            rt.signals.schedule.clear()
            now = self.clock.now()
            pause = paused_until(rt.store, now)
            blocked = rt.health.blocked()
            if pause is None or self._once:
                for work in self.scheduler.plan(
                    blocked=set(blocked), inflight=rt.inflight, stopping=stopping.is_set()
                ):
                    self._start_work(work)
            waits = [self.scheduler.next_wake()]
            if pause is not None and pause != FOREVER:
                waits.append(pause - now)
            waits += [
                float(h["until"]) - now
                for h in blocked.values()
                if h.get("until") is not None and h.get("condition") != "retrying"
            ]
            await _wait(rt.signals.schedule, _soonest(waits))

    def _start_work(self, work: Work) -> None:
        assert self.rt is not None
        self.rt.inflight.update(work.job_ids)
        self.rt.touched.update(work.job_ids)
        self.scheduler.started(work)
        self._spawn(self._do(work), self._work, f"{work.kind}:{work.service}")

    async def _do(self, work: Work) -> None:
        rt = self.rt
        assert rt is not None
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

    async def _finisher(self) -> None:
        rt = self.rt
        assert rt is not None
        while True:
            rt.signals.finish.clear()
            while await finish_received(rt, self.outcomes):
                rt.signals.schedule.set()
            await move_failing(rt, self.outcomes)
            now = self.clock.now()
            due = rt.store.next_due(State.RECEIVED, State.FAILING, after=now)
            await _wait(rt.signals.finish, None if due is None else due - now)

    async def _prober(self) -> None:
        rt = self.rt
        assert rt is not None
        while True:
            rt.signals.health.clear()
            for name, probes in rt.health.due_probes().items():
                if name in rt.services and name not in self._probing:
                    self._probing.add(name)
                    self._spawn(self._probe(name, probes + 1), self._work, f"probe:{name}")
            due = rt.health.next_probe()
            await _wait(rt.signals.health, None if due is None else due - self.clock.now())

    async def _probe(self, name: str, probes: int) -> None:
        """One cheap request: any answer at all means the service is back."""
        rt = self.rt
        assert rt is not None
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

    async def _external(self) -> None:
        """Another process changed the store (``docinbox retry``): look at everything."""
        rt = self.rt
        assert rt is not None
        seen = rt.store.data_version()
        while True:
            await asyncio.sleep(EXTERNAL_CHECK)
            version = rt.store.data_version()
            if version != seen:
                seen = version
                rt.signals.all()

    async def _publisher(self) -> None:
        """The status the tray shows, rebuilt when something changed, ten times a second
        at most; subscribers are told (they only set a flag of their own)."""
        rt = self.rt
        assert rt is not None
        while True:
            await rt.signals.changed.wait()
            rt.signals.changed.clear()
            self.control.publish(
                build_snapshot(
                    rt.store,
                    self.clock.now(),
                    activity=rt.activity,
                    outbox=self.settings.folders.outbox,
                )
            )
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def _until_idle(self) -> None:
        """``--once``: stop when nothing is pending anywhere."""
        assert self._stopping is not None
        while not self._idle():
            await asyncio.sleep(0.05)
        self._stopping.set()

    def _idle(self) -> bool:
        rt, queue, watcher = self.rt, self._queue, self.watcher
        assert rt is not None and queue is not None
        if self._work or self._admitting or not queue.empty() or rt.inflight:
            return False
        if watcher is not None and watcher.pending_count():
            return False
        counts = rt.store.counts()
        return not any(counts.get(str(s), 0) for s in ACTIVE)

    # --- stop -----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self.rt is not None:
            self.rt.inspector.close()  # an inspection under way ends now, not in 30 s
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._work:
            # Let requests under way finish briefly; a cancelled one stays `submitting`
            # and recovery decides on the next start.
            _done, pending = await asyncio.wait(set(self._work), timeout=STOP_GRACE)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self.rt is not None:
            self.control.publish(
                build_snapshot(self.rt.store, self.clock.now(), outbox=self.settings.folders.outbox)
            )
            for service in self.rt.services.values():
                with contextlib.suppress(Exception):
                    await service.aclose()
            await asyncio.to_thread(self.rt.writer.close)
        if self.files is not None:
            await self.files.stop()
            self.files = None
        if self.mock is not None:
            await asyncio.to_thread(self.mock.stop)
            self.mock = None
        if self.store is not None:
            log.info("stopped")

    # --- for DaemonControl (on the loop) --------------------------------------------------

    def _pause(self, seconds: float | None) -> None:
        assert self.rt is not None
        until = FOREVER if seconds is None else self.clock.now() + seconds
        self.rt.store.set_meta(PAUSE_KEY, until)
        self.rt.signals.all()

    def _resume(self) -> None:
        assert self.rt is not None
        self.rt.store.delete_meta(PAUSE_KEY)
        self.rt.signals.all()

    def _retry_failed(self) -> int:
        assert self.rt is not None
        moved = retry(self.rt.store)
        self.rt.signals.all()
        return len(moved)


class DaemonControl:
    """The :class:`daemon.control.Control` of a running daemon, safe from any thread:
    snapshots are published values; actions run on the daemon's loop."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        folders = daemon.settings.folders
        self.inbox = folders.inbox
        self.outbox = folders.outbox
        self.log_path = daemon.settings.log.file
        self._snapshot = StatusSnapshot(starting=True)
        self._subscribers: list[Callable[[], None]] = []

    def snapshot(self) -> StatusSnapshot:
        return self._snapshot

    def publish(self, snapshot: StatusSnapshot) -> None:
        self._snapshot = snapshot
        for callback in list(self._subscribers):
            try:
                callback()
            except Exception:
                log.exception("a status subscriber failed")

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def pause(self, seconds: float | None = None) -> None:
        self._call(lambda: self._daemon._pause(seconds))

    def resume(self) -> None:
        self._call(self._daemon._resume)

    def retry_failed(self) -> int:
        return int(self._call(self._daemon._retry_failed) or 0)

    def stop(self) -> None:
        self._daemon.stop()

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run *action* on the daemon's loop and wait for it (a few milliseconds)."""
        loop = self._daemon._loop
        if loop is None or loop.is_closed() or self._daemon.rt is None:
            return None

        async def run() -> Any:
            return action()

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)


async def _wait(event: asyncio.Event, timeout: float | None) -> None:
    """Until *event* is set, or *timeout* seconds (None: no timeout) pass."""
    if timeout is None:
        await event.wait()
        return
    with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), max(0.0, timeout))


def _soonest(waits: list[float | None]) -> float | None:
    present = [w for w in waits if w is not None]
    return min(present) if present else None
