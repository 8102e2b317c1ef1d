"""The daemon: from a ready file in the inbox to a result in the outbox.

One asyncio loop owns the work; blocking steps (hashing, sniffing, writing the
outbox, moving originals) run in worker threads, in batches where they can: every
thread hop costs context switches and a fight for the interpreter lock.  The job
store is the queue: the scheduler reads due jobs from SQLite, so a restart (or
``docinbox retry`` from another process) needs no extra signalling.  Every remote
side effect is bracketed by persisted states — ``submitting`` before the request,
``submitted`` or ``received`` after — and the original is archived only once its
result is durable.

Flow of a job (see docs/architecture.md)::

    watcher ─► _admit (hash; store.add_many, a batch per transaction) ─► queued
    scheduler ─► _inspect (type, pages from the bytes; route) ─► queued for a service
    scheduler ─► _process / _process_batch: submitting, service.submit ─► received | submitted
    scheduler ─► _poll (one request per remote batch) ─► received
    scheduler ─► _finish (a batch at a time): normalize, outbox, archive ─► done
    any error ─► _on_error: retry later | pause the service | _fail ─► failed

The scheduler asks the store, per service, for as many due jobs as it has free slots;
wider looks (inspection, polls, results to finish, pause and service health) happen
when this process flags a change or every HOUSEKEEPING seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import random
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from . import embedded, router, sniff
from . import services as service_registry
from .clock import Clock, SystemClock
from .config import Settings
from .control import FOREVER, DocumentSummary, ServiceHealth, StatusSnapshot
from .errors import (
    DocinboxError,
    DocumentError,
    DocumentVanished,
    GatewayError,
    HostError,
    NetworkError,
    QuotaExceeded,
    ServiceError,
    StaleTransition,
    TransientError,
    UnsupportedDocument,
)
from .fileserver import FileServer
from .lock import DaemonLock
from .outbox import OutboxWriter, archive_original, fail_original
from .outbox.writer import TMP_PREFIX, Folder
from .retry import RetryPolicy
from .services.base import Accepted, Received, Service, SourceDocument
from .store import ACTIVE, TERMINAL, Job, State, Store, open_store
from .watcher import IgnoreRules, InboxWatcher

log = logging.getLogger("docinbox")

HASH_CHUNK = 1 << 20
IDLE_WAKE = 1.0  # seconds: the scheduler looks at the store at least this often
HOUSEKEEPING = 0.2  # seconds between the scheduler's wider looks at the store
INSPECT_BATCH = 64  # documents inspected per batch: the first submissions wait for one batch
FINISH_BATCH = 64  # received results written out (and committed done) together at most
QUOTA_PROBE = 3600.0  # seconds before a service paused for quota is tried again
#: An unreachable service is looked at again after 2 s, then 4, 8, 16 and every 30 s: a
#: replugged cable or a restarted parser is noticed within half a minute.
PROBE_FIRST, PROBE_CAP = 2.0, 30.0
PAUSE_KEY = "paused_until"
FILES_SECRET_KEY = "fileserver_secret"
CALLBACK_SEED_KEY = "callback_seed"
HEALTH_PREFIX = "service:"


class Engine:
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
        self.clock = clock or SystemClock()
        self.retry = RetryPolicy(settings.retry, rng or random.Random())
        self._transport = transport
        self._services_given = services
        self._start_mock = settings.mock.embedded if start_mock is None else start_mock
        self.folders = settings.folders
        self.writer = OutboxWriter(self.folders.outbox, fsync=fsync)
        self.ignore = IgnoreRules(settings.watcher.ignore)
        self.services: dict[str, Service] = {}
        self.store: Store | None = None
        self.watcher: InboxWatcher | None = None
        self.mock: Any = None
        self.files: FileServer | None = None
        #: Jobs this run queued or worked on: ``--once`` exits 1 if any of them failed.
        self.touched: set[int] = set()
        self.control = EngineControl(self)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._busy: dict[str, int] = {}
        self._offered = 0
        self._offered_lock = threading.Lock()
        self._due_since: dict[int, float] = {}
        self._host_failures: dict[int, int] = {}
        # Outages (see _documents_fault): when each service last answered, when each job
        # last found its service unreachable, and the services being probed now.
        self._answered_at: dict[str, float] = {}
        self._unreachable_at: dict[int, float] = {}
        self._probing: set[str] = set()
        self._spawned = 0  # tasks started so far (the scheduler compares before/after)
        self._inspecting = False  # one inspection batch at a time
        self._finishing = False  # one batch of results being written at a time
        self._finish_due = True  # results may be waiting to be written (look in the store)
        # What housekeeping last found (see _start_due); refreshed when stale or flagged.
        self._housekeeping_due = True
        self._last_housekeeping = 0.0
        self._paused: float | None = None
        self._blocked_now: dict[str, dict[str, Any]] = {}
        self._poll_due: float | None = None
        self._lock: DaemonLock | None = None
        self._once = False
        self._activity: str | None = None
        self._subscribers: list[Callable[[], None]] = []
        self._notify_pending = False

    # --- life cycle ---------------------------------------------------------------------

    def run(self, *, once: bool = False) -> int:
        """Run in the foreground until stopped (or, with *once*, until nothing is pending)."""
        return asyncio.run(self.run_async(once=once))

    def stop(self) -> None:
        """Ask for a clean stop, from any thread or a signal handler."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop.set)

    async def run_async(self, *, once: bool = False) -> int:
        self._once = once
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        if self._stop_requested.is_set():
            self._stop.set()
        try:
            await self._start()
            await self._main_loop()
        finally:
            await self._shutdown()
        return self.exit_code()

    def exit_code(self) -> int:
        """A plain stop is a success (systemd must not mark the unit failed); only --once
        reports whether the documents it saw failed."""
        if not self._once:
            return 0
        if self.store is None:
            return 1
        failed = {j.id for j in self.store.jobs(states=(State.FAILED,))}
        return 1 if failed & self.touched else 0

    async def _start(self) -> None:
        f = self.folders
        for folder in (f.inbox, f.outbox, f.failed, f.archive, f.state.parent):
            if folder is not None:
                folder.mkdir(parents=True, exist_ok=True)
        self.lock()
        self.store = open_store(f.state, clock=self.clock)
        if self._start_mock:
            self.mock, self.settings = await asyncio.to_thread(embedded.start_mock, self.settings)
            log.info("embedded mock listening at %s", self.mock.url)
        if "docparse" in service_registry.needed(self.settings) or \
                self.settings.callbacks.public_url:
            self.files = await asyncio.to_thread(self._start_file_server)
        if self._services_given is not None:
            self.services = dict(self._services_given)
        else:
            self.services = service_registry.build(self.settings, transport=self._transport,
                                                   files=self.files)
        self._enable_callbacks()
        self._recover()
        w = self.settings.watcher
        self.watcher = InboxWatcher(
            f.inbox, self.offer, ignore=self.ignore, mode=w.mode,
            quiet_seconds=w.quiet_seconds, settle_seconds=w.settle_seconds,
            rescan_seconds=w.rescan_seconds, clock=self.clock,
        )
        await asyncio.to_thread(self.watcher.start)
        log.info("watching %s (%s mode); results go to %s", f.inbox, self.watcher.active_mode,
                 f.outbox)

    def _persisted_secret(self, key: str, make: Callable[[], str]) -> str:
        value = self._store.meta(key)
        if value is None:  # persisted: URLs and seeds handed out before a restart stay valid
            value = make()
            self._store.set_meta(key, value)
        return str(value)

    def _start_file_server(self) -> FileServer:
        """The daemon's HTTP server: documents in flight for the self-hosted parser at
        signed, expiring URLs, and the services' result callbacks."""
        docparse = self.settings.services.get("docparse")
        if docparse is not None and "docparse" in service_registry.needed(self.settings):
            listen, public = docparse.files_listen, docparse.files_url
        else:
            listen, public = self.settings.callbacks.listen, self.settings.callbacks.public_url
        secret = self._persisted_secret(FILES_SECRET_KEY, lambda: secrets.token_hex(32))
        files = FileServer(listen, public, bytes.fromhex(secret), self._in_flight_path,
                           clock=self.clock, on_callback=self._callback_threadsafe)
        files.start()
        log.info("docinbox's HTTP server (documents for the parser, callbacks) at %s",
                 files.url)
        return files

    def _enable_callbacks(self) -> None:
        """Ask the services to push results where a public address is configured."""
        public = self.settings.callbacks.public_url
        if not public or self.files is None:
            return
        seed = self._persisted_secret(CALLBACK_SEED_KEY, lambda: secrets.token_hex(16))
        for name, service in self.services.items():
            uid = service.settings.uid
            if not hasattr(service, "callback_url"):
                continue
            if not uid:
                log.warning("%s: callbacks need the account's uid ([services.%s] uid); "
                            "polling only", name, name)
                continue
            service.callback_url = f"{public}/callbacks/{name}"  # type: ignore[attr-defined]
            service.seed = seed  # type: ignore[attr-defined]
            self.files.callback_keys[name] = (uid, seed)

    def _callback_threadsafe(self, service: str, data: dict[str, Any]) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_callback, service, data)

    def _on_callback(self, service: str, data: Mapping[str, Any]) -> None:
        """A verified callback: poll that job now instead of at its next interval."""
        ids = {str(data.get(k)) for k in ("data_id", "dataId", "task_id", "taskId", "batch_id")
               if data.get(k)}
        now = self.clock.now()
        woke = 0
        for job in self._store.in_state(State.SUBMITTED):
            if job.service != service or job.not_before <= now:
                continue
            if ids & {str(v) for v in job.remote.values() if isinstance(v, (str, int))}:
                self._store.update(job.id, State.SUBMITTED, not_before=now)
                woke += 1
        log.debug("callback from %s for %s: %d job(s) to poll now", service, sorted(ids), woke)
        self._kick(housekeeping=True)

    def _in_flight_path(self, job_id: int) -> Path | None:
        """The file server's only way to a file: jobs sent and not yet finished (any thread)."""
        try:
            job = self._store.get(job_id)
        except KeyError:
            return None
        if job.state not in (State.SUBMITTING, State.SUBMITTED) or not job.location:
            return None
        return Path(job.location)

    def lock(self) -> DaemonLock:
        """The lock on this daemon's folders and database.  The CLI takes it before the
        first log line or tray icon, so a refused second daemon leaves no trace in the
        running one's log; otherwise the start takes it."""
        if self._lock is None:
            f = self.folders
            lock = DaemonLock(f.state, [f.inbox, f.outbox], config=self.settings.config_path)
            lock.acquire()
            self._lock = lock
        return self._lock

    async def _shutdown(self) -> None:
        if self.watcher is not None:
            await asyncio.to_thread(self.watcher.stop)
        tasks = list(self._inflight.values())
        if tasks:
            # Let requests under way finish briefly; a cancelled one stays `submitting`
            # and recovery decides on the next start.
            _done, pending = await asyncio.wait(tasks, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for service in self.services.values():
            with contextlib.suppress(Exception):
                await service.aclose()
        if self.files is not None:
            await asyncio.to_thread(self.files.stop)
            self.files = None
        if self.mock is not None:
            await asyncio.to_thread(self.mock.stop)
            self.mock = None
        await asyncio.to_thread(self.writer.close)
        if self.store is not None:
            log.info("stopped")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- recovery -----------------------------------------------------------------------

    def _recover(self) -> None:
        """Settle what a crash or kill left half-done."""
        store = self._store
        for tmp in self.folders.outbox.glob(f"{TMP_PREFIX}*"):
            job_id = tmp.name[len(TMP_PREFIX):]
            if job_id.isdigit():  # a service's output moved in before the crash goes back
                with contextlib.suppress(OSError):
                    self.writer.recover_raw(tmp, self._workdir(int(job_id)) / "raw")
            shutil.rmtree(tmp, ignore_errors=True)
        for job in store.in_state(State.SUBMITTING):
            service = self.services.get(job.service or "")
            doc = self._document(job)
            if service is None or service.resubmit_after_crash(doc):
                store.transition(job.id, State.SUBMITTING, State.QUEUED,
                                 note="recovered: the request may not have reached the service")
                log.info("%s: resubmitting after an interrupted request", job.rel_path)
        # Routes may have changed since these were queued: decide again for the unsent ones.
        store.clear_routes()
        # A pause for credentials lasts until the user acts; a restart is such an act.
        for name, health in store.meta_prefixed(HEALTH_PREFIX).items():
            if health.get("until") is None:
                store.delete_meta(HEALTH_PREFIX + name)

    # --- intake: the watcher hands over ready files -------------------------------------

    def offer(self, paths: list[Path]) -> None:
        """Called by the watcher (its thread) with files that are completely written."""
        if not paths:
            return
        with self._offered_lock:
            self._offered += len(paths)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._schedule_admit, paths)

    def _schedule_admit(self, paths: list[Path]) -> None:
        task = asyncio.ensure_future(self._admit_async(paths))
        task.add_done_callback(_log_task_error)

    async def _admit_async(self, paths: list[Path]) -> None:
        try:
            for start in range(0, len(paths), 256):
                await asyncio.to_thread(self._admit, paths[start:start + 256])
                self._kick(housekeeping=True)
        finally:
            with self._offered_lock:
                self._offered -= len(paths)
            self._kick(housekeeping=True)

    def _admit(self, paths: list[Path]) -> None:
        """Hash each ready file and queue it, in one transaction (a worker thread).

        Type and pages are learnt later (_inspect): queueing stays cheap, so thousands of
        files found at start-up are safe in the store within seconds."""
        store = self._store
        inbox = self.folders.inbox
        candidates: list[tuple[Path, str, os.stat_result]] = []
        for path in paths:
            try:
                rel = path.relative_to(inbox).as_posix()
                if self.ignore.ignored(rel):
                    continue
                candidates.append((path, rel, path.lstat()))
            except (ValueError, FileNotFoundError):
                continue
        known = store.active_signatures(rel for _, rel, _ in candidates)
        rows: list[dict[str, Any]] = []
        errors: list[DocinboxError | None] = []
        for path, rel, st in candidates:
            if (rel, st.st_size, st.st_mtime_ns) in known:
                continue  # already queued or in flight
            error: DocinboxError | None = None
            if stat.S_ISLNK(st.st_mode):
                target = path.resolve()
                if not target.is_relative_to(inbox.resolve()) or not target.is_file():
                    error = UnsupportedDocument(
                        f"{rel} is a symbolic link to {target}, outside the inbox or not a file",
                        hint="Drop the document itself, not a link to it.")
            elif not stat.S_ISREG(st.st_mode):
                continue
            digest = "0" * 64
            if error is None:
                try:
                    digest = _sha256(path)
                    after = path.stat()
                    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                        continue  # still changing: the watcher will offer it again
                except FileNotFoundError:
                    continue
                except PermissionError as exc:
                    error = DocumentError(f"{rel} cannot be read: {exc.strerror}",
                                          hint="Give docinbox read permission on the file.")
            rows.append({"rel_path": rel, "location": str(path), "sha256": digest,
                         "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                         "kind": "" if error else None})
            errors.append(error)
        for job_id, error in zip(store.add_many(rows), errors, strict=True):
            if job_id is None:
                continue
            self.touched.add(job_id)
            if error is not None:
                self._fail(store.get(job_id), error)
        self._notify_threadsafe()

    async def _inspect(self, jobs: list[Job]) -> None:
        await asyncio.to_thread(self._inspect_sync, jobs)

    def _inspect_sync(self, jobs: list[Job]) -> None:
        """Type (from the content), page count and route of newly queued documents,
        recorded for the whole batch in one transaction."""
        inspected = []
        for job in jobs:
            try:
                info = sniff.inspect(Path(job.location))
                decision = self._decide(dataclasses.replace(job, kind=info.kind,
                                                            pages=info.pages))
            except FileNotFoundError:
                self._fail(job, DocumentVanished(f"{job.rel_path} was removed before it was "
                                                 "sent"))
                continue
            except PermissionError as exc:
                self._fail(job, DocumentError(f"{job.rel_path} cannot be read: {exc.strerror}",
                                              hint="Give docinbox read permission on the file."))
                continue
            except DocumentError as exc:
                self._fail(job, exc)
                continue
            inspected.append((job.id, info.kind, info.pages, decision.service,
                              decision.options))
            log.info("%s: queued for %s (%s%s)", job.rel_path, decision.service, info.kind,
                     f", {info.pages} page{'s' if info.pages != 1 else ''}" if info.pages else "")
        if inspected:
            self._store.set_inspected(inspected)

    # --- the scheduler ------------------------------------------------------------------

    async def _main_loop(self) -> None:
        assert self._wake is not None and self._stop is not None
        while not self._stop.is_set():
            self._wake.clear()
            started = self._start_due()
            if self._once and self._idle():
                break
            timeout = self._next_wake(started)
            waiters = [asyncio.ensure_future(self._wake.wait()),
                       asyncio.ensure_future(self._stop.wait())]
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()

    def _kick(self, housekeeping: bool = False) -> None:
        if housekeeping:
            self._housekeeping_due = True
        if self._wake is not None:
            self._wake.set()

    def _idle(self) -> bool:
        if self._inflight or self._offered or (self.watcher and self.watcher.pending_count()):
            return False
        counts = self._store.counts()
        return not any(counts.get(str(s), 0) for s in ACTIVE)

    def _next_wake(self, started: int) -> float:
        """Until the next job is due.  Due work that could not start (no free slot, a paused
        service) waits for a kick — a task ending, a drop, a user action — never a spin."""
        if started:
            return 0.0
        due = self._store.next_due(State.QUEUED, State.SUBMITTED, State.RECEIVED)
        if due is None or due <= self.clock.now():
            return IDLE_WAKE
        return min(IDLE_WAKE, due - self.clock.now())

    def paused_until(self) -> float | None:
        until = self._store.meta(PAUSE_KEY)
        if until is None:
            return None
        until = float(until)
        if until != FOREVER and until <= self.clock.now():
            return None
        return until

    def _blocked(self) -> dict[str, dict[str, Any]]:
        """Services not to send to: paused until a time or a user action, or unreachable
        (until a probe finds them back, whatever the time)."""
        now = self.clock.now()
        health = self._store.meta_prefixed(HEALTH_PREFIX)
        return {n: h for n, h in health.items()
                if h.get("until") is None or float(h["until"]) > now
                or h.get("condition") == "retrying"}

    def _start_due(self) -> int:
        """Start every due step there is room for; returns how many tasks were started.

        Submissions are looked at on every pass; the rest (inspection, routing, polls,
        results to finish, pause and service health) only when this process changed them
        or every HOUSEKEEPING seconds — `docinbox retry` from another process included."""
        now = self.clock.now()
        before = self._spawned
        mono = self.clock.monotonic()
        if self._housekeeping_due or mono - self._last_housekeeping >= HOUSEKEEPING:
            self._housekeeping_due = False
            self._last_housekeeping = mono
            self._housekeeping(now)
        self._start_finishing(now)
        if self._paused is None or self._once:
            free = {name: s.settings.concurrency - self._busy.get(name, 0)
                    for name, s in self.services.items()}
            self._start_polls(now, self._blocked_now, free)
            self._start_submissions(now, self._blocked_now, free)
        return self._spawned - before

    def _housekeeping(self, now: float) -> None:
        store = self._store
        self._paused = self.paused_until()
        self._blocked_now = self._blocked()
        self._finish_due = True  # results due again after a host error, or recovered
        self._route_unrouted()
        # Intake first: inspecting (pypdf) competes for the interpreter with hashing, and a
        # file is only safe once it is queued.  Intake kicks housekeeping when it is done.
        if not self._inspecting and not self._offered:
            fresh = [j for j in store.uninspected(INSPECT_BATCH) if j.id not in self._inflight]
            if fresh:
                self._inspecting = True
                self._spawn([j.id for j in fresh], self._inspect_then_release(fresh), None)
        self._poll_due = store.next_due(State.SUBMITTED)
        self._start_probes(now)

    def _start_finishing(self, now: float) -> None:
        """Write received results out, one batch at a time and outside the services' slots
        (a slot is for talking to the service).  What arrives while a batch is written forms
        the next one, so under load a batch's folders share one fsync and its jobs one
        commit; alone, a result is written at once."""
        if self._finishing or not self._finish_due:
            return
        self._finish_due = False
        jobs = [j for j in self._store.in_state(State.RECEIVED, due_before=now,
                                                limit=FINISH_BATCH)
                if j.id not in self._inflight]
        if jobs:
            self._finishing = True
            self._spawn([j.id for j in jobs], self._finish(jobs), None)

    def _start_polls(self, now: float, blocked: Mapping[str, Any], free: dict[str, int]) -> None:
        """One poll task per remote batch (or per document where the API has no batches)."""
        if self._poll_due is None or self._poll_due > now:
            return
        self._poll_due = None  # the next housekeeping pass looks again
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in self._store.in_state(State.SUBMITTED, limit=5000):
            service = self.services.get(job.service or "")
            if service is None or job.id in self._inflight:
                continue
            key = service.poll_key(job.remote) or f"job:{job.id}"
            groups.setdefault((service.name, key), []).append(job)
        for (name, _key), jobs in groups.items():
            if name in blocked or free.get(name, 0) <= 0:
                continue
            if min(j.not_before for j in jobs) > now:
                continue
            free[name] -= 1
            self._spawn([j.id for j in jobs], self._poll(self.services[name], jobs), name)

    def _start_submissions(self, now: float, blocked: Mapping[str, Any],
                           free: dict[str, int]) -> None:
        """Start what the free slots allow, asking the store per service for just that many
        jobs (a backlog of thousands costs one small query per pass, not a scan)."""
        mono = self.clock.monotonic()
        for name, service in self.services.items():
            if name in blocked or free.get(name, 0) <= 0:
                continue
            want = free[name] * max(1, service.batch_limit)
            jobs = self._store.due_for(name, now, want, exclude=self._inflight)
            if service.batch_limit <= 1:
                for job in jobs:
                    self._spawn([job.id], self._process(job), name)
                continue
            batches: dict[str, list[Job]] = {}
            for job in jobs:
                key = service.batch_key(self._document(job))
                if key is None:
                    if free[name] > 0:
                        free[name] -= 1
                        self._spawn([job.id], self._process(job), name)
                    continue
                self._due_since.setdefault(job.id, mono)
                batches.setdefault(key, []).append(job)
            for chunk in (c for jobs in batches.values()
                          for c in _chunks(jobs, service.batch_limit)):
                oldest = min(self._due_since[j.id] for j in chunk)
                full = len(chunk) >= service.batch_limit
                if not full and mono - oldest < service.batch_window and not self._stopping():
                    self._batch_timer(service.batch_window - (mono - oldest))
                    continue
                if free[name] <= 0:
                    break
                free[name] -= 1
                for j in chunk:
                    self._due_since.pop(j.id, None)
                self._spawn([j.id for j in chunk], self._process_batch(service, chunk), name)

    def _batch_timer(self, seconds: float) -> None:
        """Wake the scheduler when a partial batch's window closes."""
        if self._loop is not None:
            self._loop.call_later(max(0.0, seconds) + 0.01, self._kick)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _route_unrouted(self) -> None:
        """Inspected jobs without a service: put back by `retry` after a routing failure, or
        left by a start-up that re-routed them under changed routes."""
        routes = []
        for job in self._store.unrouted(512):
            if job.id in self._inflight:
                continue
            try:
                decision = self._decide(job)
            except DocumentError as exc:
                self._spawn([job.id], self._fail_async(job, exc), None)
                continue
            routes.append((job.id, decision.service, decision.options))
        if routes:
            self._store.set_routes(routes)

    async def _inspect_then_release(self, jobs: list[Job]) -> None:
        try:
            await self._inspect(jobs)
        finally:
            self._inspecting = False
            self._housekeeping_due = True  # inspected jobs are routed; more may wait

    def _decide(self, job: Job) -> router.Decision:
        info = sniff.DocumentInfo(job.kind or "", job.pages)

        def accepts(name: str, kind: str) -> bool:
            service = self.services.get(name)
            return service is not None and service.accepts(kind)

        def limits(name: str) -> tuple[int | None, int | None]:
            service = self.services[name]
            return service.max_bytes, service.max_pages

        return router.route(self.settings.routes, job.rel_path, job.size, info, accepts, limits)

    def _spawn(self, job_ids: list[int], coro: Any, service: str | None) -> None:
        self.touched.update(job_ids)
        self._spawned += 1
        if service is not None:
            self._busy[service] = self._busy.get(service, 0) + 1

        async def runner() -> None:
            try:
                await coro
            finally:
                for job_id in job_ids:
                    self._inflight.pop(job_id, None)
                if service is not None:
                    self._busy[service] -= 1
                self._kick()
                self._notify()

        task = asyncio.ensure_future(runner())
        task.add_done_callback(_log_task_error)
        for job_id in job_ids:
            self._inflight[job_id] = task

    # --- one job's steps ----------------------------------------------------------------

    def _workdir(self, job_id: int) -> Path:
        return self.folders.state.parent / "work" / str(job_id)

    def _document(self, job: Job, options: Mapping[str, Any] | None = None) -> SourceDocument:
        url = None
        if job.kind == "link":
            with contextlib.suppress(OSError, DocumentError):
                url = sniff.read_link(Path(job.location))
        return SourceDocument(
            job_id=job.id, path=Path(job.location), name=job.name, kind=job.kind or "",
            pages=job.pages, size=job.size, sha256=job.sha256,
            options=job.options if options is None else options, url=url, remote=job.remote,
        )

    def _checkpoint(self, job_id: int, remote: Mapping[str, Any]) -> None:
        """Persist a service's ids for a job before its next side effect."""
        job = self._store.get(job_id)
        self._store.update(job_id, job.state, remote={**job.remote, **remote})

    def _check_unchanged(self, job: Job) -> None:
        try:
            st = Path(job.location).stat()
        except FileNotFoundError as exc:
            raise DocumentVanished(f"{job.rel_path} was removed before it was sent") from exc
        if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns):
            raise DocumentVanished(f"{job.rel_path} changed after it was queued")

    def _twin(self, job: Job, service: str) -> Job | None:
        """With ``duplicates = "reuse"``: an earlier job with the same content, for the same
        service, whose result folder still exists."""
        if self.settings.daemon.duplicates != "reuse":
            return None
        for other in self._store.by_content(job.sha256, State.DONE):
            if other.service == service and other.result_dir and \
                    (self.folders.outbox / other.result_dir / "raw").is_dir():
                return other
        return None

    async def _reuse(self, job: Job, twin: Job) -> None:
        """Give *job* the result of *twin* (same bytes) without asking the service again."""
        raw = self._workdir(job.id) / "raw"
        await asyncio.to_thread(shutil.rmtree, raw, True)
        await asyncio.to_thread(shutil.copytree, self.folders.outbox / twin.result_dir / "raw",
                                raw)
        job = self._begin(job)
        self._receive(job, State.SUBMITTING, remote={**twin.remote, "same_as_job": twin.id},
                      note=f"same content as job {twin.id}: result reused")
        log.info("%s: same content as %s; its result is reused", job.rel_path, twin.rel_path)

    async def _process(self, job: Job) -> None:
        service = self.services[job.service or ""]
        try:
            self._check_unchanged(job)  # one stat: not worth a thread hop
            twin = self._twin(job, service.name)
            if twin is not None:
                await self._reuse(job, twin)
                return
            job = self._begin(job)
            self._activity = f"sending {job.name}"
            self._notify()
            outcome = await service.submit(self._document(job), self._workdir(job.id))
            await self._apply(job.id, State.SUBMITTING, outcome)
        except asyncio.CancelledError:
            raise
        except DocinboxError as exc:
            await self._on_error(job.id, exc)
        except Exception as exc:  # a bug: record it on the document instead of hiding it
            log.exception("%s: unexpected error", job.rel_path)
            await self._on_error(job.id, _internal(exc))

    def _begin(self, job: Job) -> Job:
        """The intent, persisted before the request: `submitting`, attempt n."""
        return self._store.transition(
            job.id, State.QUEUED, State.SUBMITTING, attempts=job.attempts + 1,
            note=f"attempt {job.attempts + 1} to {job.service}")

    async def _process_batch(self, service: Service, jobs: list[Job]) -> None:
        """Several documents in one submission (MinerU's file-urls/batch)."""
        started: list[Job] = []
        for job in jobs:
            try:
                self._check_unchanged(job)
                twin = self._twin(job, service.name)
                if twin is not None:
                    await self._reuse(job, twin)
                    continue
                started.append(self._begin(job))
            except DocinboxError as exc:
                await self._on_error(job.id, exc)
        if not started:
            return
        self._activity = f"sending {len(started)} documents to {service.name}"
        self._notify()
        docs = [self._document(j) for j in started]
        workdirs = {j.id: self._workdir(j.id) for j in started}
        try:
            outcomes = await service.submit_batch(docs, workdirs, self._checkpoint)
        except asyncio.CancelledError:
            raise
        except DocinboxError as exc:  # the batch request itself failed
            outcomes = {j.id: exc for j in started}
        except Exception as exc:
            log.exception("%s: unexpected error submitting a batch", service.name)
            outcomes = {j.id: _internal(exc) for j in started}
        await self._apply_all(outcomes, State.SUBMITTING)

    async def _poll(self, service: Service, jobs: list[Job]) -> None:
        docs = [self._document(j) for j in jobs]
        workdirs = {j.id: self._workdir(j.id) for j in jobs}
        try:
            outcomes = await service.poll_batch(docs, workdirs, self._checkpoint)
        except asyncio.CancelledError:
            raise
        except DocinboxError as exc:
            outcomes = {j.id: exc for j in jobs}
        except Exception as exc:
            log.exception("%s: unexpected error while polling", service.name)
            outcomes = {j.id: _internal(exc) for j in jobs}
        await self._apply_all(outcomes, State.SUBMITTED)

    async def _apply_all(self, outcomes: Mapping[int, Any], expect: State) -> None:
        for job_id, outcome in outcomes.items():
            try:
                if isinstance(outcome, DocinboxError):
                    await self._on_error(job_id, outcome)
                else:
                    await self._apply(job_id, expect, outcome)
            except StaleTransition as exc:
                log.warning("job %s: %s", job_id, exc)

    async def _apply(self, job_id: int, expect: State, outcome: Any) -> None:
        """Persist what a service said: received (then finalize) or accepted (poll later)."""
        job = self._store.get(job_id)
        self._answered_at[job.service or ""] = self.clock.now()
        self._unreachable_at.pop(job_id, None)
        remote = {**job.remote, **outcome.remote}
        if isinstance(outcome, Received):
            self._receive(job, expect, remote=remote)
        elif isinstance(outcome, Accepted):
            self._housekeeping_due = True  # a poll is now pending
            self._store.transition(job_id, expect, State.SUBMITTED, remote=remote,
                                   not_before=self.clock.now() + outcome.poll_after)
        else:
            raise TypeError(f"unexpected outcome {outcome!r}")

    def _receive(self, job: Job, expect: State, *, remote: Mapping[str, Any],
                 note: str | None = None) -> None:
        """The result is in the workdir: record it, with its outbox folder name reserved in
        the same write (the intent before writing it), and hand it to the writer."""
        name = self.writer.free_name(Path(job.name).stem, self._reserved_in_store(job.id))
        self._store.transition(job.id, expect, State.RECEIVED, remote=dict(remote), error=None,
                               message=None, not_before=0.0, result_dir=name, note=note)
        self._finish_due = True
        self._kick()

    async def _finish(self, jobs: list[Job]) -> None:
        """Received results → outbox folders → originals archived → all done in one commit.
        Workdirs go last: a crash before the commit finds each result already written
        (``written``) and only archives it."""
        try:
            self._activity = (f"writing {jobs[0].name}" if len(jobs) == 1
                              else f"writing {len(jobs)} results")
            self._notify()
            try:
                outcomes = await asyncio.to_thread(self._write_results, jobs)
            except Exception as exc:  # a bug: record it on the documents, never spin
                log.exception("unexpected error while writing results")
                outcomes = [_internal(exc)] * len(jobs)
            moves: list[tuple[int, State, State, Mapping[str, Any]]] = []
            for job, outcome in zip(jobs, outcomes, strict=True):
                if isinstance(outcome, FileExistsError):
                    # the reserved name was taken meanwhile (or never reserved): take the next
                    name = self.writer.free_name(Path(job.name).stem,
                                                 self._reserved_in_store(job.id))
                    self._store.update(job.id, State.RECEIVED, result_dir=name)  # intent first
                    self._finish_due = True
                elif isinstance(outcome, DocinboxError):
                    await self._on_error(job.id, outcome)
                else:
                    name, archived = outcome
                    moves.append((job.id, State.RECEIVED, State.DONE, {
                        "result_dir": name, "location": str(archived) if archived else "",
                        "error": None, "message": None}))
            finished: list[Job] = []
            for moved in self._store.transition_many(moves):
                if isinstance(moved, StaleTransition):
                    log.warning("%s", moved)
                    continue
                finished.append(moved)
                self._host_failures.pop(moved.id, None)
                log.info("%s: done → %s", moved.rel_path,
                         self.folders.outbox / (moved.result_dir or ""))
            await asyncio.to_thread(self._remove_workdirs, [j.id for j in finished])
        finally:
            self._finishing = False
            self._finish_due = True  # more may have arrived meanwhile

    def _write_results(self, jobs: list[Job]) -> list[tuple[str, Path | None] | BaseException]:
        """(Worker thread) the batch's folders together (OutboxWriter.write_many), then the
        originals: an original leaves the inbox only once its result is durable."""
        names: list[str | BaseException] = []
        folders: list[tuple[int, Folder]] = []
        for i, job in enumerate(jobs):
            prepared = self._guarded(self._prepare_result, job)
            if isinstance(prepared, Folder):
                folders.append((i, prepared))
            names.append(prepared.name if isinstance(prepared, Folder) else prepared)
        try:
            written: list[Path | OSError] = self.writer.write_many([f for _, f in folders])
        except OSError as exc:  # the outbox itself cannot be written (read-only, missing)
            written = [exc] * len(folders)
        for (i, _folder), outcome in zip(folders, written, strict=True):
            if isinstance(outcome, OSError):
                names[i] = self._as_error(jobs[i], outcome)
        out: list[tuple[str, Path | None] | BaseException] = []
        for job, name in zip(jobs, names, strict=True):
            if isinstance(name, BaseException):
                out.append(name)
                continue
            archived = self._guarded(self._archive, job)
            out.append(archived if isinstance(archived, BaseException) else (name, archived))
        return out

    def _guarded(self, step: Callable[[Job], Any], job: Job) -> Any:
        """A step's result, or its error as a value (one job's trouble is not the batch's)."""
        try:
            return step(job)
        except Exception as exc:
            return self._as_error(job, exc)

    def _as_error(self, job: Job, exc: Exception) -> BaseException:
        if isinstance(exc, FileExistsError | DocinboxError):
            return exc  # FileExistsError: the scheduler picks another name
        if isinstance(exc, OSError):
            return HostError(f"cannot write the result of {job.rel_path}: {exc}")
        log.error("%s: unexpected error while writing the result", job.rel_path,
                  exc_info=exc)  # a bug: record it on the document instead of hiding it
        return _internal(exc)

    def _prepare_result(self, job: Job) -> Folder | str:
        """The job's outbox folder to write under its reserved name — or that name, when a
        run before a crash wrote it already (FileExistsError: pick another name)."""
        name = job.result_dir
        if not name:
            raise FileExistsError(errno.ENOENT, "no outbox name reserved", job.rel_path)
        if (self.folders.outbox / name).exists():
            if self.writer.written(name, job.sha256):
                return name  # only the archiving was left
            raise FileExistsError(errno.EEXIST, "outbox folder exists", name)
        service = self.services[job.service or ""]
        raw = self._workdir(job.id) / "raw"
        normalized = service.normalize(raw, self._document(job))
        result = {
            "source": {"name": job.name, "path": job.rel_path, "sha256": job.sha256,
                       "bytes": job.size, "pages": job.pages, "type": job.kind},
            "service": job.service,
            "remote": dict(normalized.remote),
            "fields": list(normalized.fields),
            "tables": list(normalized.tables),
            "markdown": "document.md",
        }
        return Folder(name, job.id, result, normalized.markdown, raw)

    def _remove_workdirs(self, job_ids: list[int]) -> None:
        for job_id in job_ids:
            shutil.rmtree(self._workdir(job_id), ignore_errors=True)

    def _reserved_in_store(self, job_id: int) -> set[str]:
        return self._store.reserved_names(exclude=job_id)

    def _archive(self, job: Job) -> Path | None:
        location = Path(job.location)
        try:
            st = location.lstat()
        except FileNotFoundError:
            log.warning("%s: the original disappeared before it could be archived", job.rel_path)
            return None
        if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns) and not location.is_symlink():
            # Replaced while in flight: the file there now is another document (the watcher
            # queues it on its own); this job's result stands for the content it was sent.
            log.warning("%s: replaced while it was processed; the new file is left in place",
                        job.rel_path)
            return None
        archived = archive_original(location, job.rel_path, self.folders.archive)
        if location.is_relative_to(self.folders.failed):  # a retried failure succeeded
            location.with_name(location.name + ".error.json").unlink(missing_ok=True)
        return archived

    # --- errors -------------------------------------------------------------------------

    async def _on_error(self, job_id: int, err: DocinboxError) -> None:
        store = self._store
        job = store.get(job_id)
        now = self.clock.now()
        if job.state in TERMINAL:
            return
        if err.scope == "service" and not self._once and not self._documents_fault(job, err):
            self._block_service(job.service or err.service or "", err)
            back = State.QUEUED if job.state is State.SUBMITTING else job.state
            if isinstance(err, ServiceError) and err.resubmit and job.state is State.SUBMITTED:
                back = State.QUEUED  # the remote task is used up: submit again
            # The attempt was the service's to lose, not the document's: give it back.
            attempts = job.attempts - 1 if job.state is State.SUBMITTING else job.attempts
            store.transition(job.id, job.state, back, error=err.code, message=err.message,
                             attempts=max(0, attempts), note=f"service paused: {err.code}")
            return
        retry_after = getattr(err, "retry_after", None)
        if isinstance(err, HostError):
            # A full or read-only disk is ours to fix, not the document's fault: keep the
            # result and the original where they are and try again, however long it takes.
            self._host_failures[job.id] = n = self._host_failures.get(job.id, 0) + 1
            wait = self.retry.delay(n)
            log.error("%s: %s; trying again in %.0f s. %s", job.rel_path, err.message, wait,
                      err.hint)
            store.transition(job.id, job.state, job.state, not_before=now + wait,
                             error=err.code, message=err.message, note="host error")
            return
        if err.retryable and not self.retry.gives_up(job.attempts, job.first_error_at, now):
            wait = self.retry.delay(max(1, job.attempts), retry_after)
            back = State.QUEUED if job.state is State.SUBMITTING else job.state
            if getattr(err, "resubmit", False) and job.state is State.SUBMITTED:
                back = State.QUEUED  # the remote task is used up: submit again
            log.warning("%s: %s; retrying in %.1f s", job.rel_path, err.message, wait)
            store.transition(job.id, job.state, back, not_before=now + wait, error=err.code,
                             message=err.message, first_error_at=job.first_error_at or now,
                             note=f"retry: {err.code}")
            return
        await self._fail_async(job, err)

    def _documents_fault(self, job: Job, err: DocinboxError) -> bool:
        """A service-wide transient error (cannot connect, gateway down) is the document's
        only when the service answered since this document last met one: then the service
        is up and this document is what keeps failing (e.g. an upload that always times
        out), so it spends its own retry budget instead of pausing everyone, forever."""
        if not (err.retryable and isinstance(err, TransientError)):
            return False
        previous = self._unreachable_at.get(job.id)
        self._unreachable_at[job.id] = self.clock.now()
        answered = self._answered_at.get(job.service or "")
        return previous is not None and answered is not None and answered > previous

    def _block_service(self, name: str, err: DocinboxError) -> None:
        now = self.clock.now()
        if err.retryable and isinstance(err, TransientError):
            # Unreachable: keep its documents waiting and probe it with backoff (probes
            # only lengthen the wait; the documents that met the outage don't).
            health = self._store.meta(HEALTH_PREFIX + name)
            if isinstance(health, dict) and health.get("condition") == "retrying":
                return
            wait = self._probe_delay(1)
            self._store.set_meta(HEALTH_PREFIX + name, {
                "condition": "retrying", "error": err.code, "reason": _reason(err),
                "hint": err.hint, "until": now + wait, "probes": 0})
            self._housekeeping_due = True
            log.warning("%s cannot be reached (%s); its documents wait, and docinbox tries "
                        "again in %.0f s", name, _reason(err), wait)
            return
        retry_after = getattr(err, "retry_after", None)
        if retry_after is None and isinstance(err, QuotaExceeded):
            retry_after = QUOTA_PROBE  # the renewal time is unknown: look again later
        until = now + retry_after if retry_after else None
        self._store.set_meta(HEALTH_PREFIX + name, {
            "condition": "paused", "error": err.code, "reason": err.message,
            "hint": err.hint, "until": until})
        self._housekeeping_due = True
        log.error("%s paused: %s. %s", name, err.message, err.hint)

    def _probe_delay(self, probes: int) -> float:
        """Seconds until the next look at an unreachable service: 2, 4, 8, ... 30."""
        return min(PROBE_CAP, PROBE_FIRST * 2 ** max(0, probes - 1))

    def _start_probes(self, now: float) -> None:
        for name, health in self._blocked_now.items():
            if health.get("condition") != "retrying" or name in self._probing:
                continue
            if float(health.get("until") or 0) > now or name not in self.services:
                continue
            self._probing.add(name)
            self._spawn([], self._probe(name, int(health.get("probes") or 0) + 1), None)

    async def _probe(self, name: str, probes: int) -> None:
        """One cheap request: any answer at all means the service is back."""
        service = self.services[name]
        try:
            await service.probe()
        except (NetworkError, GatewayError) as exc:
            wait = self._probe_delay(probes + 1)
            self._store.set_meta(HEALTH_PREFIX + name, {
                "condition": "retrying", "error": exc.code, "reason": _reason(exc),
                "hint": exc.hint, "until": self.clock.now() + wait, "probes": probes})
            log.info("%s still cannot be reached (%s); next try in %.0f s", name,
                     _reason(exc), wait)
        except Exception as exc:  # it answered, if not happily: reachable
            log.debug("%s probe: %s", name, exc)
            self._resume_service(name)
        else:
            self._resume_service(name)
        finally:
            self._probing.discard(name)
            self._kick(housekeeping=True)

    def _resume_service(self, name: str) -> None:
        self._answered_at[name] = self.clock.now()
        self._store.delete_meta(HEALTH_PREFIX + name)
        log.info("%s answers again; its documents go on", name)

    async def _fail_async(self, job: Job, err: DocinboxError) -> None:
        await asyncio.to_thread(self._fail, job, err)

    def _fail(self, job: Job, err: DocinboxError) -> None:
        """Original → failed/ with its .error.json; the job → failed (any thread)."""
        current = self._store.get(job.id)
        if current.state in TERMINAL:
            return
        error = {"error": err.code, "message": err.message,
                 "service": current.service or err.service, "attempts": current.attempts,
                 "hint": err.hint, "document": current.rel_path}
        # A file that changed under us is no longer the one this job knew: leave it.
        location = None if isinstance(err, DocumentVanished) else Path(current.location)
        try:
            moved = fail_original(location, current.rel_path, self.folders.failed, error)
        except OSError as exc:
            log.error("%s: cannot move it to %s: %s", current.rel_path, self.folders.failed, exc)
            moved = Path(current.location)
        try:
            self._store.transition(current.id, current.state, State.FAILED,
                                   location=str(moved), error=err.code, message=err.message,
                                   note=err.code)
        except StaleTransition:
            return
        shutil.rmtree(self._workdir(job.id), ignore_errors=True)
        log.error("%s: failed (%s): %s", current.rel_path, err.code, err.message)
        self._notify_threadsafe()

    # --- front ends ---------------------------------------------------------------------

    @property
    def _store(self) -> Store:
        if self.store is None:
            raise RuntimeError("the engine is not started")
        return self.store

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers \
            else None

    def _notify(self) -> None:
        """Tell subscribers, at most ten times a second."""
        if not self._subscribers or self._notify_pending or self._loop is None:
            return
        self._notify_pending = True

        def fire() -> None:
            self._notify_pending = False
            for callback in list(self._subscribers):
                try:
                    callback()
                except Exception:
                    log.exception("a status subscriber failed")

        self._loop.call_later(0.1, fire)

    def _notify_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._notify)
                loop.call_soon_threadsafe(self._kick, True)


class EngineControl:
    """The :class:`daemon.control.Control` of a running engine (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.inbox = engine.folders.inbox
        self.outbox = engine.folders.outbox
        self.log_path = engine.settings.log.file

    def snapshot(self) -> StatusSnapshot:
        engine = self._engine
        if engine.store is None:
            return StatusSnapshot(problem="starting")
        return build_snapshot(engine.store, engine.clock.now(), activity=engine._activity,
                              outbox=engine.folders.outbox)

    def pause(self, seconds: float | None = None) -> None:
        engine = self._engine
        until = FOREVER if seconds is None else engine.clock.now() + seconds
        engine._store.set_meta(PAUSE_KEY, until)
        engine._notify_threadsafe()

    def resume(self) -> None:
        self._engine._store.delete_meta(PAUSE_KEY)
        self._engine._notify_threadsafe()

    def retry_failed(self) -> int:
        n = len(retry(self._engine._store))
        self._engine._notify_threadsafe()
        return n

    def stop(self) -> None:
        self._engine.stop()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        return self._engine.subscribe(callback)


def paused_for_settings(store: Store) -> dict[str, str]:
    """Services paused for something only the user can fix (a key, a model id): name →
    why.  A retry alone does not help them while the daemon runs on the old settings."""
    return {name: str(h.get("reason") or h.get("error"))
            for name, h in store.meta_prefixed(HEALTH_PREFIX).items()
            if h.get("condition") == "paused" and h.get("until") is None}


def retry(store: Store, ids: list[int] | None = None) -> list[Job]:
    """Failed documents back in line, and every paused service unpaused (the user acted)."""
    for name in store.meta_prefixed(HEALTH_PREFIX):
        store.delete_meta(HEALTH_PREFIX + name)
    return store.retry(ids)


def summary(job: Job, outbox: Path | None = None) -> DocumentSummary:
    failed = job.state is State.FAILED and job.location
    return DocumentSummary(
        id=job.id, name=job.rel_path, state=str(job.state), service=job.service,
        error=job.error, message=job.message,
        result_dir=(outbox / job.result_dir) if outbox and job.result_dir
        and job.state is State.DONE else None,
        updated_at=job.updated_at,
        error_file=Path(job.location + ".error.json") if failed else None)


def build_snapshot(store: Store, now: float, *, activity: str | None = None,
                   outbox: Path | None = None) -> StatusSnapshot:
    """What ``docinbox status`` and the tray show; works from any process."""
    counts = store.counts()
    active = tuple(summary(j, outbox) for j in store.jobs(states=ACTIVE, limit=50))
    recent = tuple(summary(j, outbox)
                   for j in store.jobs(states=TERMINAL, newest_first=True, limit=8))
    services = []
    for name, h in sorted(store.meta_prefixed(HEALTH_PREFIX).items()):
        until = h.get("until")
        if until is not None and float(until) <= now:
            continue
        services.append(ServiceHealth(name=name, condition=h.get("condition", "paused"),
                                      reason=h.get("reason"), error=h.get("error"),
                                      until=until))
    retrying = {j.service for j in store.jobs(states=(State.QUEUED,), limit=200)
                if j.error and j.service}
    for name in sorted(retrying - {s.name for s in services}):
        services.append(ServiceHealth(name=name, condition="retrying"))
    paused = store.meta(PAUSE_KEY)
    if paused is not None and float(paused) != FOREVER and float(paused) <= now:
        paused = None
    return StatusSnapshot(counts=counts, active=active, recent=recent,
                          services=tuple(services),
                          paused_until=None if paused is None else float(paused),
                          activity=activity)


def _chunks(items: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _reason(err: DocinboxError) -> str:
    """The message without the service's name in front (the status line names it)."""
    prefix = f"{err.service}: "
    return err.message[len(prefix):] if err.service and err.message.startswith(prefix) \
        else err.message


def _internal(exc: Exception) -> DocinboxError:
    err = DocinboxError(f"internal error: {type(exc).__name__}: {exc}",
                        hint="This is a docinbox bug; please report it with the log.")
    err.code = "internal"  # type: ignore[misc]
    return err


def _log_task_error(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task failed", exc_info=task.exception())
