"""Budgets (daemon/budgets.py), the scheduler's pacing and budget gates, and what status
says of them: a real store in a temp folder, a fake clock, stand-in services that only
declare their allowances and their pacer (no network)."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from daemon import budgets
from daemon.clock import FakeClock
from daemon.config import Secret, ServiceSettings
from daemon.control import BudgetUse, Pace, Progress, ServiceHealth
from daemon.errors import DocinboxError, QuotaExceeded
from daemon.scheduler import PACER_PREFIX, Scheduler
from daemon.services.base import (
    BatchOutcome,
    Budget,
    Checkpoint,
    Normalized,
    Service,
    ServiceContext,
    SourceDocument,
)
from daemon.status import budget_text, build_snapshot, progress_text, service_lines
from daemon.store import SQLiteStore, State, open_store

#: 2026-11-21 15:00 UTC = 23:00 in Beijing: its day ends in an hour.
NOW = datetime.datetime(2026, 11, 21, 15, 0, tzinfo=datetime.timezone.utc).timestamp()


class Counted(Service):
    """A service with a daily file allowance and a soft page allowance, and a pacer."""

    name: ClassVar[str] = "counted"
    kinds = frozenset({"pdf"})
    policy = "wait"
    files = 3

    def __init__(self, settings: ServiceSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        self.pacer = self.make_pacer({"api": None}, lambda *_: "api", {"submit": "api"})

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        raise AssertionError("the scheduler never calls a service")

    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        raise AssertionError

    def budgets(self) -> tuple[Budget, ...]:
        return (
            Budget("files", "files", self.files, "day+8", label="files a day"),
            Budget("pages", "pages", 10, "day+8", soft=True, label="priority pages"),
        )

    def usage(self, kind: str, pages: int | None) -> Mapping[str, float]:
        return {"files": 1, "pages": pages or 1}

    def spent(self, err: DocinboxError) -> str | None:
        return "files" if isinstance(err, QuotaExceeded) else None

    @property
    def when_exhausted(self) -> Any:
        return self.policy


def counted(concurrency: int = 8, **changes: Any) -> Counted:
    settings = ServiceSettings(
        name="counted", base_url="http://x", credential=Secret("k", "inline"),
        concurrency=concurrency,
    )  # fmt: skip
    service = Counted(settings, ServiceContext(monotonic=lambda: 0.0))
    for key, value in changes.items():
        setattr(service, key, value)
    return service


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=NOW)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> SQLiteStore:
    return open_store(tmp_path / "db.sqlite", clock=clock)


def queue(store: SQLiteStore, n: int, pages: int = 1) -> list[int]:
    ids = store.add_many(
        [
            {"rel_path": f"d{i}.pdf", "location": "/x", "sha256": f"s{i}", "size": 1, "mtime_ns": i}
            for i in range(n)
        ]
    )
    store.set_inspected([(i, f"s{n}", "pdf", pages, "counted", {}) for n, i in enumerate(ids) if i])
    return [i for i in ids if i]


def test_periods_renew_at_midnight_in_beijing_and_on_the_first_of_the_month() -> None:
    day, renews = budgets.period_of("day+8", NOW)
    assert day == "2026-11-21"
    assert renews == NOW + 3600  # 00:00 UTC+8 is 16:00 UTC
    month, first = budgets.period_of("month", NOW)
    assert month == "2026-11"
    assert first == datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc).timestamp()
    assert budgets.period_of("balance", NOW) == ("balance", None)


def test_counts_are_kept_and_a_new_day_starts_again(store: SQLiteStore, clock: FakeClock) -> None:
    services = {"counted": counted()}
    count = budgets.Budgets(store, services, clock)
    count.spend("counted", "pdf", 4)
    count.spend("counted", "pdf", 2)
    count.flush(force=True)
    rows = {r["name"]: r for r in budgets.rows(store, clock.now())}
    assert (rows["files"]["used"], rows["files"]["limit"]) == (2, 3)
    assert rows["pages"]["used"] == 6 and rows["pages"]["soft"]
    # another daemon (a restart) reads the same counts
    assert budgets.Budgets(store, services, clock).room("counted") == 1
    clock.advance(3600)  # midnight in Beijing
    assert budgets.rows(store, clock.now())[0]["used"] == 0
    again = budgets.Budgets(store, services, clock)
    again.spend("counted", "pdf", 1)
    again.flush(force=True)
    assert {r["name"]: r["used"] for r in budgets.rows(store, clock.now())} == {
        "files": 1,
        "pages": 1,
    }


def test_a_used_up_allowance_closes_the_service_until_it_renews(
    store: SQLiteStore, clock: FakeClock
) -> None:
    service = counted()
    sched = Scheduler({"counted": service}, store, clock)
    queue(store, 5)
    started = sched.plan(blocked=set(), inflight=set(), stopping=False)
    # only what the day's allowance has room for: 3 files, one document per submission
    assert [len(w.jobs) for w in started] == [1, 1, 1]
    for work in started:
        sched.started(work)
    inflight = {j for w in started for j in w.job_ids}
    assert sched.plan(blocked=set(), inflight=inflight, stopping=False) == []  # being sent
    for work in started:
        sched.budgets.spend("counted", "pdf", 1)
        sched.finished(work)
        store.transition(work.job_ids[0], State.QUEUED, State.SUBMITTING)
    assert sched.budgets.closed("counted") == NOW + 3600
    assert sched.plan(blocked=set(), inflight=set(), stopping=False) == []
    assert sched.next_wake() == pytest.approx(3600)
    snap = build_snapshot(store, clock.now())
    [health] = snap.services
    assert health.condition == "paused" and health.until == NOW + 3600
    assert "waits until it renews" in (health.reason or "")
    clock.advance(3600)
    assert sched.budgets.closed("counted") is None
    assert len(sched.plan(blocked=set(), inflight=set(), stopping=False)) == 2  # the rest


def test_a_soft_allowance_is_passed_over_at_low_priority(
    store: SQLiteStore, clock: FakeClock
) -> None:
    count = budgets.Budgets(store, {"counted": counted(policy="low_priority")}, clock)
    count.spend("counted", "pdf", 10)  # the 10 priority pages
    assert count.closed("counted") is None
    strict = budgets.Budgets(store, {"counted": counted(policy="wait")}, clock)
    strict.spend("counted", "pdf", 10)
    assert strict.closed("counted") == NOW + 3600


def test_the_service_saying_used_up_wins_and_retry_forgets_it(
    store: SQLiteStore, clock: FakeClock
) -> None:
    from daemon import health

    count = budgets.Budgets(store, {"counted": counted(policy="next_route")}, clock)
    err = QuotaExceeded("counted: daily limit", service="counted", retry_after=600)
    assert count.said_spent("counted", err) == "files"
    assert count.closed("counted") == NOW + 600
    assert count.avoided() == {"counted"}
    assert count.newly_closed() == {"counted"}
    health.clear(store)  # docinbox retry
    assert count.closed("counted") is None


def test_the_pacer_has_the_last_word_on_slots_and_its_learning_is_kept(
    store: SQLiteStore, clock: FakeClock
) -> None:
    service = counted(concurrency=32)
    assert service.pacer is not None
    lane = service.pacer.lanes["api"]
    lane.rate, lane.measured = 2.0, True
    sched = Scheduler({"counted": service}, store, clock)
    queue(store, 10)
    # 2 a second: what goes within half a second, not the 32 the ceiling allows
    assert 1 <= sched.free("counted") <= 2
    sched.save_pacing(clock.now(), force=True)
    saved = store.meta(PACER_PREFIX + "counted")
    assert saved["lanes"]["api"]["rate"] == 2.0
    fresh = counted(concurrency=32)
    Scheduler({"counted": fresh}, store, clock)  # a restart
    assert fresh.pacer is not None and fresh.pacer.lanes["api"].rate == 2.0
    pace = build_snapshot(store, clock.now()).services[0].pace
    assert pace is not None and pace.rate == 2.0


def test_status_says_pace_budgets_and_progress_in_words() -> None:
    use = BudgetUse("files", "files a day", "files", 120, 10_000, renews_at=NOW + 3600)
    assert budget_text(use).startswith("files a day: 120 of 10,000 files, renews ")
    unknown = BudgetUse("calls", "prediction calls", "calls", 7)
    assert budget_text(unknown) == "prediction calls: 7 calls (no limit set)"
    one = dataclasses.replace(unknown, used=1)
    assert budget_text(one) == "prediction calls: 1 call (no limit set)"
    lines = service_lines(
        ServiceHealth("nanonets", pace=Pace(rate=9.8, refusals=3, concurrency=8), budgets=(use,))
    )
    assert "9.8 requests/s, the most it sustains (3 answered 429)" in lines[1]
    assert progress_text(Progress("running", 12, 36)) == "running, 12 of 36 pages"
    assert progress_text(Progress("pending")) == "waiting in the service's queue"


def test_progress_reaches_the_snapshot(store: SQLiteStore, clock: FakeClock) -> None:
    (job_id,) = queue(store, 1, pages=36)
    store.transition(job_id, State.QUEUED, State.SUBMITTING)
    remote = {"service_state": {"state": "running", "pages_done": 12, "pages": 36}}
    store.transition(job_id, State.SUBMITTING, State.SUBMITTED, remote=remote)
    [doc] = build_snapshot(store, clock.now()).active
    assert doc.progress == Progress("running", 12, 36)
