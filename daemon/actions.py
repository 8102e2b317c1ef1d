"""What a user can ask of docinbox — pause, resume, retry, stop, reload — done the same way
from the tray (through the running daemon's :class:`DaemonControl`), from a shell
(``docinbox pause`` in another process) and from the review desk (which also
dismisses failed documents: :func:`dismiss`).

Each action is a write to the store; a running daemon notices another process's writes
within a quarter of a second (SQLite's ``data_version``) and its own at once.  Pause and
resume are state (the pause survives a restart); stop and reload are *requests* in the
``meta`` table, addressed to the running daemon's process id so that a request nobody
took never reaches a later daemon, and taken (deleted) by the daemon that acts on them
(:class:`Requests`).  Works the same on every platform: no signals, no sockets.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from . import health, lock
from .clock import Clock
from .control import FOREVER, StatusSnapshot
from .errors import DocinboxError
from .status import PAUSE_KEY
from .store import Job, Store

log = logging.getLogger("docinbox")


def pause(store: Store, clock: Clock, seconds: float | None = None) -> float:
    """Start no new work until *seconds* from now (None: until resumed); returns until."""
    until = FOREVER if seconds is None else clock.now() + seconds
    store.set_meta(PAUSE_KEY, until)
    return until


def resume(store: Store) -> None:
    store.delete_meta(PAUSE_KEY)


def retry(store: Store, ids: list[int] | None = None) -> list[Job]:
    """Failed documents back in line, and every paused service unpaused (the user acted)."""
    health.clear(store)
    return store.retry(ids)


def dismiss(store: Store, ids: list[int]) -> list[int]:
    """Failed documents out of the tray's count and ``docinbox status`` (the review
    desk's Dismiss); their files stay in ``failed/``, and a retry brings them back."""
    return store.dismiss(ids)


# --- requests to the running daemon -------------------------------------------------------

STOP_KEY = "request:stop"
RELOAD_KEY = "request:reload"
#: What the daemon did with the last reload request: ``{"id", "applied", "restart",
#: "error"}`` (``docinbox reload`` prints it).
RELOADED_KEY = "reload:result"
#: How often a command waits for the daemon's answer (stop: the lock released; reload:
#: its result), and for how long at most.
ANSWER_POLL = 0.05
STOP_PATIENCE = 60.0
RELOAD_PATIENCE = 30.0


def running(database: Path) -> lock.Holder:
    """The daemon that owns *database*, or a clear error when none runs."""
    holder = lock.running(database)
    if holder is None:
        raise DocinboxError(
            "no docinbox daemon is running on this configuration",
            hint="Start one with: docinbox run (or check -c / $DOCINBOX_CONFIG).",
        )
    return holder


def request_stop(store: Store, holder: lock.Holder) -> None:
    store.set_meta(STOP_KEY, {"pid": holder.pid, "at": time.time()})


def request_reload(store: Store, holder: lock.Holder) -> str:
    """Ask for a reload; returns the request's id, which its result carries."""
    ident = secrets.token_hex(6)
    store.set_meta(RELOAD_KEY, {"pid": holder.pid, "id": ident, "at": time.time()})
    return ident


def wait_until(condition: Callable[[], Any], patience: float) -> Any:
    """*condition*'s first truthy value within *patience* seconds, else None."""
    deadline = time.monotonic() + patience
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value or None
        time.sleep(ANSWER_POLL)


def reload_result(store: Store, ident: str) -> dict[str, Any] | None:
    result = store.meta(RELOADED_KEY)
    return result if isinstance(result, dict) and result.get("id") == ident else None


Reload = Callable[[], Awaitable[Mapping[str, Any]]]


class Requests:
    """Inside the daemon: takes the stop and reload requests addressed to this process.
    It looks whenever the daemon publishes a new status (:meth:`wake`, a
    :meth:`DaemonControl.subscribe` callback): the daemon does that after every change,
    another process's included (``loops.external``), so no polling of its own."""

    def __init__(self, store: Store, pid: int, *, stop: Callable[[], None], reload: Reload):
        self.store = store
        self.pid = pid
        self._stop = stop
        self._reload = reload
        self._look = asyncio.Event()
        self._look.set()  # once at start: a request made while the daemon was starting

    def wake(self) -> None:
        """The subscribe callback (on the daemon's loop): look again."""
        self._look.set()

    def forget_stale(self) -> None:
        """At start: requests for another process were never taken (it had stopped)."""
        for key in (STOP_KEY, RELOAD_KEY):
            request = self.store.meta(key)
            if request is not None and not self._mine(request):
                self.store.delete_meta(key)

    async def watch(self) -> None:
        while True:
            await self._look.wait()
            self._look.clear()
            await self.take()

    async def take(self) -> None:
        stop = self.store.meta(STOP_KEY)
        if stop is not None and self._mine(stop):
            self.store.delete_meta(STOP_KEY)
            log.info("stop requested (docinbox stop)")
            self._stop()
            return
        request = self.store.meta(RELOAD_KEY)
        if request is not None and self._mine(request):
            self.store.delete_meta(RELOAD_KEY)
            result = dict(await self._reload())
            self.store.set_meta(RELOADED_KEY, {**result, "id": request.get("id")})

    def _mine(self, request: Any) -> bool:
        return isinstance(request, dict) and request.get("pid") == self.pid


class DaemonControl:
    """The :class:`Control` of a running daemon, safe from any thread: snapshots are
    published values; actions run on the daemon's event loop (a few milliseconds)."""

    def __init__(
        self, inbox: Path, outbox: Path, log_path: Path | None, stop: Callable[[], None]
    ) -> None:
        self.inbox = inbox
        self.outbox = outbox
        self.log_path = log_path
        self._stop = stop
        self._snapshot = StatusSnapshot(starting=True)
        self._subscribers: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runtime: Any = None
        self._dashboard: str | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, runtime: Any) -> None:
        """The daemon started: actions now reach *runtime* (a pipeline Runtime)."""
        self._loop, self._runtime = loop, runtime

    def snapshot(self) -> StatusSnapshot:
        return self._snapshot

    def set_dashboard(self, url: str | None) -> None:
        """The review desk's address, token included (daemon/desk/server.py)."""
        self._dashboard = url

    def dashboard_url(self) -> str | None:
        """Where the tray's "Open dashboard" goes; None while no desk is served."""
        return self._dashboard

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
        self._call(lambda rt: pause(rt.store, rt.clock, seconds))

    def resume(self) -> None:
        self._call(lambda rt: resume(rt.store))

    def retry_failed(self) -> int:
        return len(self._call(lambda rt: retry(rt.store)) or [])

    def stop(self) -> None:
        self._stop()

    def _call(self, action: Callable[[Any], Any]) -> Any:
        loop, rt = self._loop, self._runtime
        if loop is None or loop.is_closed() or rt is None:
            return None

        async def run() -> Any:
            result = action(rt)
            rt.signals.all()
            return result

        return asyncio.run_coroutine_threadsafe(run(), loop).result(timeout=10)
