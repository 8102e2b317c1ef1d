"""A fake :class:`~daemon.control.Control` for the tray's tests and demos.

It records every call, lets a test swap the snapshot (which fires the subscribers,
as the real daemon does), and offers a ``run_daemon`` that blocks until stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from daemon.control import FOREVER, StatusSnapshot


class FakeControl:
    def __init__(
        self,
        root: Path,
        snapshot: StatusSnapshot | None = None,
        *,
        exit_code: int = 0,
        log_path: Path | None = None,
    ) -> None:
        self.inbox = root / "inbox"
        self.outbox = root / "outbox"
        self.log_path = log_path
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.exit_code = exit_code
        self.calls: list[tuple[object, ...]] = []
        self.stopped = threading.Event()
        self.started = threading.Event()
        self._snap = snapshot or StatusSnapshot()
        self._subs: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    # --- Control -------------------------------------------------------------------------
    def snapshot(self) -> StatusSnapshot:
        with self._lock:
            return self._snap

    def pause(self, seconds: float | None = None) -> None:
        self._record("pause", seconds)
        until = FOREVER if seconds is None else 1e12
        self.set_snapshot(replace(self.snapshot(), paused_until=until))

    def resume(self) -> None:
        self._record("resume")
        self.set_snapshot(replace(self.snapshot(), paused_until=None))

    def retry_failed(self) -> int:
        snap = self.snapshot()
        n = snap.failed
        self._record("retry_failed")
        counts = dict(snap.counts)
        counts["queued"] = counts.get("queued", 0) + counts.pop("failed", 0)
        self.set_snapshot(replace(snap, counts=counts))
        return n

    def stop(self) -> None:
        self._record("stop")
        self.stopped.set()

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    # --- test helpers -------------------------------------------------------------------
    def set_snapshot(self, snap: StatusSnapshot) -> None:
        with self._lock:
            self._snap = snap
            subs = list(self._subs)
        for cb in subs:
            cb()

    def _record(self, *call: object) -> None:
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    def wait_for_call(self, name: str, timeout: float = 10.0) -> tuple[object, ...]:
        """Block until a call named *name* was recorded (condition wait, no polling)."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: any(c[0] == name for c in self.calls), timeout=timeout
            )
            if not ok:
                raise TimeoutError(f"no {name!r} call within {timeout}s; calls: {self.calls}")
            return next(c for c in self.calls if c[0] == name)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def run_daemon(self) -> int:
        """Stands in for the daemon's main loop: runs until :meth:`stop`."""
        self.started.set()
        self.stopped.wait()
        return self.exit_code
