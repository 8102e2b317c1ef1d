"""The mock's shared machinery: clock, journal, task ledger, fault rules, limits, context.

Every service module (nanonets, mineru, oss, docparse) gets one :class:`MockContext`
and builds its routes from it, so that time, faults, quotas and the admin API
behave the same across the three services.
"""

from __future__ import annotations

import contextlib
import math
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# --------------------------------------------------------------------------- clock


class MockClock:
    """The mock's notion of time: real time scaled by *speed*, plus manual advances.

    ``now() = start + (real elapsed × speed) + advanced``. Every duration in the
    mock (queueing, per-page processing, URL validity, daily quotas) is measured
    on it so tests can jump forward with ``/__admin/clock/advance`` instead of
    sleeping, and benchmarks can run the services faster than real time.
    """

    def __init__(self, speed: float = 1.0, *, real: Callable[[], float] = time.time) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._real = real
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._real_start = real()
        self._start = self._real_start
        self._advanced = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Mock Unix time in seconds."""
        with self._lock:
            return self._start + (self._real() - self._real_start) * self._speed + self._advanced

    def advance(self, seconds: float) -> float:
        """Jump forward (never backward: time-based state must stay monotonic)."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("the mock clock only moves forward")
        with self._lock:
            self._advanced += float(seconds)
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Change the rate without a jump: time so far is kept."""
        if speed <= 0:
            raise ValueError("speed must be positive")
        with self._lock:
            real_now = self._real()
            self._start += (real_now - self._real_start) * self._speed
            self._real_start = real_now
            self._speed = float(speed)

    def reset(self) -> None:
        """Back to real time now, nothing advanced."""
        with self._lock:
            self._real_start = self._real()
            self._start = self._real_start
            self._advanced = 0.0

    def real_seconds(self, mock_seconds: float) -> float:
        """How long *mock_seconds* take in real time at the current speed."""
        return mock_seconds / self._speed


# --------------------------------------------------------------------------- journal

_SECRET_HEADERS = {"authorization", "proxy-authorization", "token", "x-api-key"}


def mask_header(name: str, value: str) -> str:
    """Hide a credential but keep its scheme, so tests can tell Basic from Bearer."""
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme, sep, _rest = value.partition(" ")
    if sep and scheme.isalpha():
        return f"{scheme} ****"
    return "****"


class Journal:
    """Every request in arrival order, bounded (oldest dropped first).

    An entry is a dict: ``seq, method, path, query, headers, status, at, fault``.
    ``at`` is real Unix time (benchmarks compare it with their own clocks);
    ``status`` is filled in when the response starts (``None`` when the mock
    reset or hung up without answering).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._seq = 0
        self.dropped = 0

    def add(
        self,
        method: str,
        path: str,
        query: str,
        headers: Iterable[tuple[str, str]],
        *,
        at: float | None = None,
    ) -> dict[str, Any]:
        masked = {name.lower(): mask_header(name, value) for name, value in headers}
        with self._lock:
            self._seq += 1
            entry: dict[str, Any] = {
                "seq": self._seq,
                "method": method,
                "path": path,
                "query": query,
                "headers": masked,
                "status": None,
                "at": time.time() if at is None else at,
                "fault": None,
            }
            if len(self._entries) == self._entries.maxlen:
                self.dropped += 1
            self._entries.append(entry)
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.dropped = 0

    def __len__(self) -> int:
        return len(self._entries)


# --------------------------------------------------------------------------- ledger


class Ledger:
    """Every document the mock accepted, one entry per submission (``/__admin/tasks``).

    Entries: ``service, id, name, sha256, state`` plus whatever extra keys a
    service passes (``pages``, ``created_at`` ...).
    """

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._index: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(
        self, service: str, id: str, name: str, sha256: str, state: str, **extra: Any
    ) -> dict[str, Any]:
        entry = {"service": service, "id": id, "name": name, "sha256": sha256, "state": state}
        entry.update(extra)
        with self._lock:
            if len(self._entries) == self._entries.maxlen:
                old = self._entries[0]
                self._index.pop((old["service"], old["id"]), None)
            self._entries.append(entry)
            self._index[(service, id)] = entry
        return entry

    def set_state(self, service: str, id: str, state: str, **extra: Any) -> bool:
        """Update a task's state; False when the mock does not know it."""
        with self._lock:
            entry = self._index.get((service, id))
            if entry is None:
                return False
            entry["state"] = state
            entry.update(extra)
            return True

    def get(self, service: str, id: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._index.get((service, id))
            return dict(entry) if entry else None

    def entries(self, service: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries if service is None or e["service"] == service]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._index.clear()


# --------------------------------------------------------------------------- faults

FAULT_KINDS = (
    "status",
    "reset",
    "delay",
    "hang",
    "dribble",
    "malformed",
    "html502",
    "truncate",
    "expire",
)


class FaultError(ValueError):
    """A fault rule the admin API must refuse (400 with this message)."""


@dataclass
class FaultRule:
    """One rule of the SPEC's format; see :meth:`Faults.add`."""

    fault: str
    path: str = ".*"
    method: str | None = None
    status: int | None = None
    retry_after: float | str | None = None
    seconds: float | None = None
    times: int | None = None
    every: int | None = None
    probability: float | None = None
    seed: int | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    matched: int = 0
    fired: int = 0
    _regex: re.Pattern[str] = field(init=False, repr=False)
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        try:
            self._regex = re.compile(self.path)
        except re.error as exc:
            raise FaultError(f"path is not a valid regex: {exc}") from exc
        self._rng = random.Random(self.seed)

    @classmethod
    def from_json(cls, data: Any) -> FaultRule:
        """Validate an admin request body into a rule (raises :class:`FaultError`)."""
        if not isinstance(data, dict):
            raise FaultError("a fault rule is a JSON object")
        known = {
            "fault", "path", "method", "status", "retry_after", "seconds",
            "times", "every", "probability", "seed",
        }  # fmt: skip
        unknown = set(data) - known
        if unknown:
            raise FaultError(f"unknown keys: {', '.join(sorted(unknown))}")
        fault = data.get("fault")
        if fault is None:
            if data.get("status") is None:
                raise FaultError("give 'fault' (or 'status' for a status fault)")
            fault = "status"
        if fault not in FAULT_KINDS:
            raise FaultError(f"fault must be one of {', '.join(FAULT_KINDS)}")
        status = data.get("status")
        if fault == "status":
            if not isinstance(status, int) or not 100 <= status <= 599:
                raise FaultError("a status fault needs an integer 'status' (100-599)")
        elif status is not None and not isinstance(status, int):
            raise FaultError("'status' must be an integer")
        retry_after = data.get("retry_after")
        if retry_after is not None and not isinstance(retry_after, int | float | str):
            raise FaultError("'retry_after' is seconds or an HTTP-date string")
        seconds = data.get("seconds")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds < 0):
            raise FaultError("'seconds' must be a non-negative number")
        if fault == "delay" and seconds is None:
            raise FaultError("a delay fault needs 'seconds'")
        times, every, probability = data.get("times"), data.get("every"), data.get("probability")
        if sum(x is not None for x in (times, every, probability)) > 1:
            raise FaultError("give at most one of 'times', 'every', 'probability'")
        for name, value in (("times", times), ("every", every)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise FaultError(f"'{name}' must be a positive integer")
        if probability is not None and (
            not isinstance(probability, int | float) or not 0 <= probability <= 1
        ):
            raise FaultError("'probability' must be between 0 and 1")
        method = data.get("method")
        if method is not None and not isinstance(method, str):
            raise FaultError("'method' must be a string")
        path = data.get("path", ".*")
        if not isinstance(path, str):
            raise FaultError("'path' must be a string (a regex)")
        return cls(
            fault=fault,
            path=path,
            method=method.upper() if method else None,
            status=status,
            retry_after=retry_after,
            seconds=float(seconds) if seconds is not None else None,
            times=times,
            every=every,
            probability=float(probability) if probability is not None else None,
            seed=data.get("seed"),
        )

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self._regex.fullmatch(path) is not None

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def decide(self) -> bool:
        """Count a matching request and say whether the fault fires for it."""
        if self.exhausted():
            return False
        self.matched += 1
        if self.every is not None:
            fire = self.matched % self.every == 0
        elif self.probability is not None:
            fire = self._rng.random() < self.probability
        else:
            fire = True
        if fire:
            self.fired += 1
        return fire

    def to_json(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "fault": self.fault,
            "path": self.path,
            "method": self.method,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "times": self.times,
            "every": self.every,
            "probability": self.probability,
            "seed": self.seed,
            "matched": self.matched,
            "fired": self.fired,
        }
        return {k: v for k, v in out.items() if v is not None or k in ("matched", "fired")}


class Faults:
    """The active fault rules; the first rule that matches a request *and fires* wins.

    Rule fields (SPEC): ``method`` (any when absent), ``path`` (regex against the
    whole path), ``fault`` (status | reset | delay | hang | dribble | malformed |
    html502 | truncate | expire; ``status`` alone implies a status fault),
    ``status`` + ``retry_after`` (seconds or an HTTP-date string), ``seconds``
    (delay/hang/dribble), and at most one of ``times`` (the next N matching
    requests), ``every`` (every Nth) or ``probability`` + ``seed``.
    A rule spent by ``times`` stays listed (with ``fired``) but no longer applies.
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule | dict[str, Any]) -> FaultRule:
        if not isinstance(rule, FaultRule):
            rule = FaultRule.from_json(rule)
        with self._lock:
            self._rules.append(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            before = len(self._rules)
            self._rules = [r for r in self._rules if r.id != rule_id]
            return len(self._rules) != before

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules)

    def pick(self, method: str, path: str) -> FaultRule | None:
        """The rule that fires for this request, if any (counts the match)."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path) and rule.decide():
                    return rule
        return None


# --------------------------------------------------------------------------- limits


class RateLimiter:
    """A token bucket per key on the mock clock: *rate* tokens/second, *burst* deep.

    :meth:`take` answers 0.0 when the request may go ahead, else the (mock)
    seconds until a token is free — what a service puts in ``Retry-After``.
    ``rate`` and ``burst`` may be changed at any time (admin config).
    """

    def __init__(self, rate: float, burst: float, clock: MockClock) -> None:
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last)
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        if self.rate <= 0:  # 0 disables limiting
            return 0.0
        now = self.clock.now()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate)
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / self.rate

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


class QuotaCounter:
    """Usage per key in fixed windows of *period* mock seconds (86400: per UTC day).

    ``limit`` None means unlimited. Windows are aligned on multiples of the
    period since the epoch, so a daily quota resets at 00:00 UTC as real
    services' "per day" quotas do.
    """

    def __init__(self, limit: int | None, period: float, clock: MockClock) -> None:
        self.limit = limit
        self.period = float(period)
        self.clock = clock
        self._used: dict[str, tuple[int, float]] = {}  # key -> (window index, used)
        self._lock = threading.Lock()

    def _window(self) -> int:
        return int(self.clock.now() // self.period)

    def used(self, key: str) -> float:
        with self._lock:
            window, used = self._used.get(key, (self._window(), 0.0))
            return used if window == self._window() else 0.0

    def remaining(self, key: str) -> float | None:
        if self.limit is None:
            return None
        return max(0.0, self.limit - self.used(key))

    def resets_at(self) -> float:
        """Mock Unix time when the current window ends."""
        return (self._window() + 1) * self.period

    def consume(self, key: str, amount: float = 1) -> bool:
        """Use *amount* if the quota allows it all; False (nothing used) otherwise."""
        with self._lock:
            current = self._window()
            window, used = self._used.get(key, (current, 0.0))
            if window != current:
                used = 0.0
            if self.limit is not None and used + amount > self.limit:
                self._used[key] = (current, used)
                return False
            self._used[key] = (current, used + amount)
            return True

    def clear(self) -> None:
        with self._lock:
            self._used.clear()


# --------------------------------------------------------------------------- context


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


# --------------------------------------------------------------------------- helpers


def oss_expired_xml(
    *,
    host: str = "mock-bucket.oss-cn-shanghai.aliyuncs.com",
    expires: str = "",
    server_time: str = "",
) -> bytes:
    """The body Aliyun OSS sends for an expired presigned URL (403 AccessDenied)."""
    request_id = uuid.uuid4().hex[:24].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error>\n"
        "  <Code>AccessDenied</Code>\n"
        "  <Message>Request has expired.</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"  <HostId>{host}</HostId>\n"
        f"  <Expires>{expires}</Expires>\n"
        f"  <ServerTime>{server_time}</ServerTime>\n"
        "  <EC>0002-00000069</EC>\n"
        "</Error>\n"
    ).encode()


def iso_utc(ts: float) -> str:
    """``2025-12-23T10:00:00.000Z`` — the timestamp format OSS errors use."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"
