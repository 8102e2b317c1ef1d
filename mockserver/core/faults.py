"""Fault rules: which requests get a fault instead of the service's answer (``/__admin/faults``).

What each kind of fault then sends is :mod:`mockserver.core.faultreplies`.
"""

from __future__ import annotations

import random
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

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
        unknown = set(data) - _RULE_KEYS
        if unknown:
            raise FaultError(f"unknown keys: {', '.join(sorted(unknown))}")
        fault = _check_kind(data)
        status = data.get("status")
        seconds = data.get("seconds")
        _check_values(fault, data)
        times, every, probability = data.get("times"), data.get("every"), data.get("probability")
        method = data.get("method")
        return cls(
            fault=fault,
            path=data.get("path", ".*"),
            method=method.upper() if method else None,
            status=status,
            retry_after=data.get("retry_after"),
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


_RULE_KEYS = {
    "fault", "path", "method", "status", "retry_after", "seconds",
    "times", "every", "probability", "seed",
}  # fmt: skip


def _check_kind(data: dict[str, Any]) -> str:
    """The rule's fault kind; ``status`` alone implies a status fault."""
    fault = data.get("fault")
    if fault is None:
        if data.get("status") is None:
            raise FaultError("give 'fault' (or 'status' for a status fault)")
        fault = "status"
    if fault not in FAULT_KINDS:
        raise FaultError(f"fault must be one of {', '.join(FAULT_KINDS)}")
    return str(fault)


def _check_values(fault: str, data: dict[str, Any]) -> None:
    """Refuse values of the wrong type or range, in the order the SPEC lists the keys."""
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
    _check_schedule(data)
    method = data.get("method")
    if method is not None and not isinstance(method, str):
        raise FaultError("'method' must be a string")
    if not isinstance(data.get("path", ".*"), str):
        raise FaultError("'path' must be a string (a regex)")


def _check_schedule(data: dict[str, Any]) -> None:
    """At most one of ``times``, ``every``, ``probability``, each in range."""
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
