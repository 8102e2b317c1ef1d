"""The daemon's public interface, for the tray and anything else that steers it.

The tray (and tests) see the daemon only through :class:`Control`, so they never
reach into the engine's internals and can be driven by a fake.  Snapshots are
immutable values: cheap to compare, safe to hand across threads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

#: A user pause with no end ("until resumed").
FOREVER = math.inf

ServiceCondition = Literal["ok", "retrying", "paused"]


@dataclass(frozen=True)
class Progress:
    """Where a service is with a document it accepted (MinerU's task state): ``pending``
    (in the service's queue — it tells no position), ``running`` (with pages done of
    how many, when it says), ``converting``."""

    state: str
    pages_done: int | None = None
    pages: int | None = None
    since: float | None = None  # when docinbox handed it over (Unix seconds)


@dataclass(frozen=True)
class DocumentSummary:
    id: int
    name: str  # the file's name as dropped (relative to the inbox)
    state: str  # a job state, see daemon.store.states
    service: str | None = None
    error: str | None = None  # stable error code when failed
    message: str | None = None  # what the user should know (failed or retrying)
    result_dir: Path | None = None  # outbox folder once done
    updated_at: float = 0.0
    error_file: Path | None = None  # failed/<name>.error.json once failed
    progress: Progress | None = None  # submitted: how far the service is with it
    #: A document split into parts (over its service's limits): how many, how many are
    #: received, its pages and how many of them are parsed, and that as words
    #: ("part 2 of 5, 140 of 600 pages": ``parts_text``).  None/0 for a document sent whole.
    parts: int | None = None
    parts_received: int = 0
    parts_failed: int = 0
    pages: int | None = None
    pages_done: int = 0
    parts_text: str | None = None


@dataclass(frozen=True)
class BudgetUse:
    """One allowance of a service's account, as docinbox counts it (daemon/budgets.py)."""

    name: str  # files, priority_pages, calls, pages
    label: str  # "files a day", "page balance"
    unit: str  # files, pages, calls
    used: float
    limit: int | None = None  # None: not known (a setting says it)
    renews_at: float | None = None  # when the count starts again (None: a balance)
    spent_until: float | None = None  # the service said it is used up, until then
    soft: bool = False  # past it the service goes on at a lower priority
    policy: str = "wait"  # when_exhausted: wait | next_route | low_priority

    @property
    def out(self) -> bool:
        return self.spent_until is not None or (
            self.limit is not None and self.renews_at is not None and self.used >= self.limit
        )


@dataclass(frozen=True)
class LaneUse:
    """A request limit the service documents (MinerU's submissions a minute)."""

    name: str  # submit, query
    used: int
    limit: int
    per: float  # seconds


@dataclass(frozen=True)
class Pace:
    """What the pacer learned of a service (daemon/services/pacing.py)."""

    rate: float | None = None  # requests/s it sustains (None: no limit met yet)
    held_until: float | None = None  # a 429's Retry-After holds it until then (Unix)
    concurrency: int = 0  # steps at once now (the configured concurrency is the ceiling)
    in_flight: int = 0
    refusals: int = 0  # 429s met since the daemon started
    lanes: tuple[LaneUse, ...] = ()


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    condition: ServiceCondition = "ok"
    reason: str | None = None  # e.g. "quota exhausted (402)", "invalid API key"
    error: str | None = None  # stable error code
    until: float | None = None  # when a pause ends on its own (Unix seconds)
    budgets: tuple[BudgetUse, ...] = ()  # use against limit, and when it renews
    pace: Pace | None = None


@dataclass(frozen=True)
class StatusSnapshot:
    counts: dict[str, int] = field(default_factory=dict)  # job state -> n
    active: tuple[DocumentSummary, ...] = ()  # in flight, oldest first
    recent: tuple[DocumentSummary, ...] = ()  # last finished, newest first
    services: tuple[ServiceHealth, ...] = ()
    paused_until: float | None = None  # user pause; FOREVER = until resumed; None = running
    activity: str | None = None  # e.g. "uploading invoice.pdf"
    problem: str | None = None  # configuration or start-up problem, if any
    #: The daemon has not opened its state yet: counts are unknown (not zero), nothing
    #: can be paused or retried yet.  A normal moment, not a problem.
    starting: bool = False

    @property
    def failed(self) -> int:
        return self.counts.get("failed", 0)

    @property
    def pending(self) -> int:
        """Documents not yet in a terminal state."""
        return sum(n for state, n in self.counts.items() if state not in ("done", "failed"))


class Control(Protocol):
    """What a front end may do with a running daemon."""

    inbox: Path
    outbox: Path
    log_path: Path | None

    def snapshot(self) -> StatusSnapshot: ...

    def pause(self, seconds: float | None = None) -> None:
        """Stop starting new work; None pauses until :meth:`resume`."""

    def resume(self) -> None: ...

    def retry_failed(self) -> int:
        """Put every failed document back in line; returns how many."""

    def stop(self) -> None:
        """Ask the daemon to stop cleanly (returns at once)."""

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call *callback* (from any thread) when the snapshot may have changed.

        Returns a function that unsubscribes.
        """
