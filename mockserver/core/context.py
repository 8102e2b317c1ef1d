"""The context: one mock's clock, journal, ledger, faults, settings and files, shared by
every service and the admin API."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .clock import MockClock
from .faults import Faults
from .journal import Journal
from .ledger import Ledger


class MockContext:
    """One mock's state: what every service and the admin API share.

    Services keep their own state in closures/objects created in ``routes(ctx)``
    and register a hook with :meth:`on_reset` so ``POST /__admin/reset`` gives a
    fresh mock. Service settings (quotas, rates, processing times) live in
    :attr:`settings` as ``{service: {key: value}}``; a service declares its
    defaults with :meth:`declare_settings` and reads them per request, so
    ``POST /__admin/config`` changes behaviour at once.
    """

    def __init__(
        self,
        *,
        speed: float = 1.0,
        data_dir: Path | None = None,
        real: Callable[[], float] = time.time,
        journal_size: int = 10_000,
        ledger_size: int = 10_000,
    ) -> None:
        self.clock = MockClock(speed, real=real)
        self.journal = Journal(journal_size)
        self.ledger = Ledger(ledger_size)
        self.faults = Faults()
        self._own_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="docinbox-mock-")) if data_dir is None else data_dir
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._initial_speed = float(speed)
        self._reset_hooks: list[Callable[[], None]] = []
        self._config_hooks: list[Callable[[], None]] = []
        self._refresh_hooks: list[Callable[[], None]] = []
        self._defaults: dict[str, dict[str, Any]] = {}
        self.settings: dict[str, dict[str, Any]] = {}
        #: Each service's state object, by service name (for tests and tools).
        self.state: dict[str, Any] = {}
        #: Names of the mounted service modules (filled by ``create_app``).
        self.services: list[str] = []
        #: Set when the server is stopping, so hung requests let go.
        self.closing = threading.Event()
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self.clock.speed

    def on_reset(self, hook: Callable[[], None]) -> None:
        """Call *hook* on every reset (after journal, ledger, faults, clock are fresh)."""
        self._reset_hooks.append(hook)

    def on_config(self, hook: Callable[[], None]) -> None:
        """Call *hook* after settings change (admin config or reset)."""
        self._config_hooks.append(hook)

    def on_refresh(self, hook: Callable[[], None]) -> None:
        """Call *hook* before ``/__admin/tasks`` is read, so lazily-timed states are current."""
        self._refresh_hooks.append(hook)

    def refresh(self) -> None:
        """Bring time-driven task states up to date (see :meth:`on_refresh`)."""
        for hook in self._refresh_hooks:
            hook()

    def declare_settings(self, service: str, defaults: dict[str, Any]) -> dict[str, Any]:
        """Register a service's tunable settings; returns the live dict to read from."""
        self._defaults[service] = dict(defaults)
        live = self.settings.setdefault(service, {})
        for key, value in defaults.items():
            live.setdefault(key, value)
        return live

    def configure(self, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Apply ``{service: {key: value}}``; unknown services/keys raise KeyError."""
        for service, values in changes.items():
            if service not in self.settings:
                raise KeyError(f"unknown service {service!r}")
            if not isinstance(values, dict):
                raise KeyError(f"settings of {service!r} must be an object")
            for key in values:
                if key not in self._defaults.get(service, {}):
                    raise KeyError(f"unknown setting {service}.{key}")
        for service, values in changes.items():
            self.settings[service].update(values)
        for hook in self._config_hooks:
            hook()
        return self.settings

    def new_dir(self, prefix: str) -> Path:
        """A fresh directory under :attr:`data_dir` (uploads, results)."""
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.data_dir))

    def reset(self, *, speed: float | None = None) -> None:
        """Forget everything: journal, tasks, faults, files, settings, clock; then hooks."""
        with self._lock:
            self.journal.clear()
            self.ledger.clear()
            self.faults.clear()
            self.clock.reset()
            self.clock.set_speed(speed if speed is not None else self._initial_speed)
            for child in list(self.data_dir.iterdir()) if self.data_dir.exists() else []:
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        child.unlink()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            for service, defaults in self._defaults.items():
                live = self.settings.setdefault(service, {})
                live.clear()
                live.update(defaults)
            for hook in self._reset_hooks:
                hook()
            for hook in self._config_hooks:
                hook()

    def close(self) -> None:
        """Remove the data directory if the context made it."""
        self.closing.set()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
