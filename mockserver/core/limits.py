"""Rate limits and quotas on the mock clock, as the services enforce them per key."""

from __future__ import annotations

import threading

from .clock import MockClock


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
