"""One retry policy for every transient error: exponential backoff with full jitter,
``Retry-After`` honoured, and caps on attempts and on total time."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .settings import RetrySettings


@dataclass
class RetryPolicy:
    settings: RetrySettings
    rng: random.Random

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number *attempt* + 1 (attempt counts from 1)."""
        s = self.settings
        ceiling = min(s.cap_seconds, s.base_seconds * (2 ** max(0, attempt - 1)))
        wait = self.rng.uniform(0, ceiling)  # full jitter: spreads a herd of retries
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def gives_up(self, attempt: int, first_error_at: float | None, now: float) -> bool:
        s = self.settings
        if attempt >= s.max_attempts:
            return True
        return first_error_at is not None and now - first_error_at >= s.max_seconds
