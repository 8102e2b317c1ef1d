"""The mock's clock: every duration in the mock is measured on it."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable


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
