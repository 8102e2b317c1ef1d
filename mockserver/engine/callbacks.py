"""Callbacks (seed 002), delivered by one background thread per service.

The thread starts with the first task and also keeps ``/__admin/tasks`` in step with
the computed states. A callback is a POST of ``{"checksum": sha256(uid + seed +
content), "content": <the task-query data as a JSON string>}``, pushed again up to
:data:`CALLBACK_RETRIES` more times until a 200 arrives; the retries wait
``callback_retry_seconds`` of mock time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING

import httpx

from .tasks import TERMINAL, Task

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("mockserver.engine")

#: seed 002: a failed callback is pushed again at most 5 times.
CALLBACK_RETRIES = 5


class Callbacks:
    """The ticker thread of one :class:`~mockserver.engine.engine.Engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def halt(self) -> None:
        """Stop the thread and wait for it (the engine is being reset)."""
        self._stop.set()
        self._wake.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(5)

    def rearm(self) -> None:
        """After :meth:`halt`, under the engine's lock: the next task starts a new thread."""
        self._ticker = None
        self._stop = threading.Event()

    def ensure_running(self) -> None:
        with self.engine.lock:
            if self._ticker is not None and self._ticker.is_alive():
                self._wake.set()
                return
            stop = self._stop
            self._ticker = threading.Thread(
                target=self._loop,
                args=(stop,),
                name=f"{self.engine.service}-ticker",
                daemon=True,
            )
            self._ticker.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.engine.ctx.closing.is_set():
            try:
                self.tick()
            except Exception:  # keep ticking: one bad callback must not stop the rest
                log.exception("%s ticker", self.engine.service)
            self._wake.wait(0.05)
            self._wake.clear()

    def tick(self, now: float | None = None) -> None:
        """Refresh ledger states and deliver due callbacks."""
        engine = self.engine
        now = engine.now() if now is None else now
        due: list[Task] = []
        with engine.lock:
            for task in list(engine.tasks.values()):
                if task.ready_at is None:
                    continue
                snap = engine.snapshot(task, now)
                engine.sync_ledger(task, snap.state)
                if (
                    snap.state in TERMINAL
                    and task.options.callback
                    and not task.callback_done
                    and not task.callback_inflight
                    and (task.callback_next is None or now >= task.callback_next)
                ):
                    task.callback_inflight = True
                    due.append(task)
        for task in due:
            self._deliver(task, now)

    def payload(self, task: Task) -> dict[str, str]:
        """``{"checksum": sha256(uid + seed + content), "content": json}`` (seed 002)."""
        data = self.engine.callback_content(task)
        content = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        checksum = hashlib.sha256(
            (self.engine.uid + (task.options.seed or "") + content).encode()
        ).hexdigest()
        return {"checksum": checksum, "content": content}

    def _deliver(self, task: Task, now: float) -> None:
        settings = self.engine.settings
        ok = False
        try:
            payload = self.payload(task)
            timeout = float(settings.get("callback_timeout") or 10)
            with httpx.Client(timeout=timeout, trust_env=False) as client:  # no proxies
                response = client.post(str(task.options.callback), json=payload)
            ok = response.status_code == 200
        except Exception:  # any failure counts as a failed push, like a non-200
            log.debug("callback to %s failed", task.options.callback, exc_info=True)
        with self.engine.lock:
            task.callback_inflight = False
            task.callback_attempts += 1
            if ok or task.callback_attempts > CALLBACK_RETRIES:
                task.callback_done = True
                task.callback_next = None
                return
            delays = list(settings.get("callback_retry_seconds") or [5])
            delay = float(delays[min(task.callback_attempts - 1, len(delays) - 1)])
            task.callback_next = now + delay
