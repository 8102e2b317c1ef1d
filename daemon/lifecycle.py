"""The daemon's life: start, run, stop.

Start, in order: the folders' lock, the store, the embedded mock (when configured), the
daemon's HTTP server (when a service fetches documents or pushes results), the
services, recovery of what a crash left (daemon.recovery), the long-lived tasks
(daemon.loops), the review desk (daemon.desk.server: approvals, and the dashboard
unless ``--once``), the watcher; the notifications (daemon.notify) when asked for, and
the stop and reload requests of other processes (daemon.actions.Requests; a reload is
daemon.reload).  Stop: the watcher stops, the loops end, steps under way get a few
seconds (a cancelled request stays ``submitting`` and recovery decides), the servers and
services close.

The event loop owns the store and every piece of state; threads run only blocking
work that touches no state (hashing, writing folders, moving files), plus the watcher's
and the tray's own.  The tray reaches the daemon through :class:`DaemonControl` only.
A state database that fails while running stops the daemon with that error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import threading
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import httpx

from . import embedded, reload, sniff
from . import services as registry
from .actions import DaemonControl, Reload, Requests
from .clock import Clock, SystemClock
from .desk import server as desk
from .errors import AlreadyRunning, StoreError
from .health import Health
from .lock import DaemonLock
from .loops import Loops
from .outbox import OutboxWriter
from .pipeline.outcomes import Outcomes
from .pipeline.poll import wake
from .pipeline.runtime import Runtime
from .recovery import recover
from .retry import RetryPolicy
from .scheduler import Scheduler
from .servers import daemonhttp
from .servers.files import FileServer
from .services import Service, ServiceContext
from .settings import Folders, Settings
from .status import build_snapshot
from .store import State, Store, open_store
from .watcher import IgnoreRules, InboxWatcher

log = logging.getLogger("docinbox")

#: A stop gives steps under way this long to finish.
STOP_GRACE = 5.0
#: How long the start waits for the inspection helper before it says "watching": a
#: document dropped then does not wait for it (bench pickup: the first drops waited
#: ~0.6 s), and a helper slow to start does not hold the daemon back for long.
WARM_WAIT = 5.0


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
        notify: bool = False,
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
        self._tasks: set[asyncio.Task[None]] = set()
        self._fatal: StoreError | None = None
        self.store: Store | None = None
        self.rt: Runtime | None = None
        self.loops: Loops | None = None
        self.mock: Any = None
        self.files: FileServer | None = None
        self.watcher: InboxWatcher | None = None
        self.desk: desk.DeskServer | None = None
        self.inspector: sniff.Inspector | None = None
        self._notify = notify
        self.notifications: Any = None
        #: ``docinbox run -v/-q``: wins over the configuration's log level, also at a reload.
        self.level_override: str | None = None
        folders = settings.folders
        self.control = DaemonControl(folders.inbox, folders.outbox, settings.log.file, self.stop)

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

    def reload(self) -> None:
        """Read the configuration again (SIGHUP), from any thread or a signal handler."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(lambda: self._spawn(self._reload_quietly(), "reload"))

    async def run_async(self, *, once: bool = False) -> int:
        self._once = once
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_requested.is_set():
            self._stopping.set()
        if self._notify:  # subscribed before the first snapshot: its baseline
            from .notify import NotificationCenter

            icon = self.settings.folders.state.parent / "docinbox-icon.png"
            self.notifications = NotificationCenter(self.control, icon=icon)
            self.notifications.start()
        try:
            await self._start()
            await self._stopping.wait()
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
        _make_folders(f)
        self.lock()
        # The inspection helper (a Python process of its own, ~0.3 s to start) boots while
        # the rest starts; --once with an empty inbox does not start it (close would wait
        # for it: the exit of a run with nothing to do).
        self.inspector = inspector = sniff.Inspector()
        warming = None
        if not self._once or _has_entries(f.inbox):
            warming = self._spawn(asyncio.to_thread(inspector.warm), "warm")
        self.store = store = open_store(f.state, clock=self.clock)
        if self._start_mock:
            self.mock, self.settings = await asyncio.to_thread(embedded.start_mock, self.settings)
            log.info("embedded mock listening at %s", self.mock.url)
        services = await self._services(store)
        self.rt = rt = Runtime(
            settings=self.settings,
            store=store,
            services=services,
            clock=self.clock,
            writer=OutboxWriter(f.outbox, fsync=self._fsync),
            health=Health(store, self.clock),
            retry=RetryPolicy(self.settings.retry, self._rng),
            ignore=IgnoreRules(self.settings.watcher.ignore),
            inspector=inspector,
            once=self._once,
        )
        recover(rt)
        assert self._stopping is not None and self._loop is not None
        self.loops = loops = Loops(
            rt,
            Outcomes(rt),
            Scheduler(services, store, self.clock),
            publish=self.control.publish,
            stopping=self._stopping,
            on_done=self._task_ended,
        )
        self.control.attach(self._loop, rt)
        requests = _take_requests(store, self.control, stop=self.stop, reload=self._reload)
        for body in [*loops.bodies(), requests.watch]:
            self._spawn(body(), body.__name__)
        if not self._once:
            self.desk = await desk.start(rt, self.control, self._spawn)
        rt.signals.all()
        self.watcher = loops.watcher = self._watcher(rt, loops)
        await asyncio.to_thread(self.watcher.start)
        if warming is not None and not self._once:  # "watching" means ready
            await asyncio.wait({warming}, timeout=WARM_WAIT)
        if self._once:  # only now: the start-up scan has told what is pending
            self._spawn(loops.until_idle(), "once")
        log.info(
            "watching %s (%s mode); results go to %s", f.inbox, self.watcher.active_mode, f.outbox
        )

    async def _services(self, store: Store) -> dict[str, Service]:
        """The services, with the daemon's HTTP server started first when they need it."""
        callbacks = daemonhttp.callbacks_for(self.settings, store)
        if daemonhttp.needed(self.settings, callbacks):
            self.files = await daemonhttp.start(self.settings, store, self.clock, self._wake)
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
        return services

    async def _reload_quietly(self) -> None:
        await self._reload()  # the log says what it did

    async def _reload(self) -> dict[str, Any]:
        if self.rt is None or self.loops is None:
            return reload.Outcome(error="docinbox is still starting").as_json()
        ctx = ServiceContext(
            transport=self._transport,
            clock=self.clock,
            files=self.files,
            callbacks=daemonhttp.callbacks_for(self.settings, self.rt.store),
        )
        running = reload.Running(
            self.rt,
            ctx,
            self.loops.work,
            files=self.files,
            mock_url=self.mock.url if self.mock is not None else None,
            rebuild=self._given_services is None,
            level_override=self.level_override,
        )
        outcome = await reload.apply(running)
        self.settings = self.rt.settings
        return outcome.as_json()

    def _wake(self, service: str, ids: Mapping[str, str]) -> None:
        if self.rt is not None:
            wake(self.rt, service, ids)

    def _watcher(self, rt: Runtime, loops: Loops) -> InboxWatcher:
        w = self.settings.watcher
        return InboxWatcher(
            self.settings.folders.inbox,
            loops.offer,
            ignore=rt.ignore,
            mode=w.mode,
            quiet_seconds=w.quiet_seconds,
            settle_seconds=w.settle_seconds,
            rescan_seconds=w.rescan_seconds,
            clock=self.clock,
            on_attached=self._inbox_again,
        )

    def _inbox_again(self, inbox: Path) -> None:
        """(The watcher's thread) the inbox was made again: lock the new folder before its
        files are handed over, or stop if another daemon took it meanwhile."""
        if self._lock is None:
            return
        try:
            self._lock.reattach(inbox)
        except AlreadyRunning as exc:
            log.critical("%s; this daemon stops. %s", exc.message, exc.hint)
            self.stop()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
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

    # --- stop -----------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self.inspector is not None:
            self.inspector.close()  # an inspection under way ends now, not in 30 s
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        if self.desk is not None:  # its event streams end now, not after a grace period
            await self.desk.stop()
            self.desk = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        work = set(self.loops.work) if self.loops is not None else set()
        if work:
            # Let requests under way finish briefly; a cancelled one stays `submitting`
            # and recovery decides on the next start.
            _done, pending = await asyncio.wait(work, timeout=STOP_GRACE)
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
        if self.notifications is not None:
            await asyncio.to_thread(self.notifications.stop)
            self.notifications = None
        if self.store is not None:
            log.info("stopped")


def _make_folders(f: Folders) -> None:
    """The configured folders made if missing, so that a fresh configuration runs with no
    set-up step (there is no archive folder when originals are deleted)."""
    for folder in (f.inbox, f.outbox, f.failed, f.archive, f.state.parent):
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)


def _has_entries(folder: Path) -> bool:
    """Whether *folder* holds anything at all (one directory entry read, not a walk)."""
    try:
        with os.scandir(folder) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def _take_requests(
    store: Store, control: DaemonControl, *, stop: Callable[[], None], reload: Reload
) -> Requests:
    """This process's taker of stop and reload requests: those left for a process that
    has stopped are dropped, and it looks again whenever the daemon publishes a status."""
    requests = Requests(store, os.getpid(), stop=stop, reload=reload)
    requests.forget_stale()
    control.subscribe(requests.wake)
    return requests
