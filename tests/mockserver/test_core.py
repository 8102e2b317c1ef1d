"""Unit tests of the shared machinery: clock, journal, ledger, fault rules, limits, context."""

from __future__ import annotations

import pytest

from mockserver.core.clock import MockClock
from mockserver.core.context import MockContext
from mockserver.core.faults import FaultError, FaultRule, Faults
from mockserver.core.journal import Journal, mask_header
from mockserver.core.ledger import Ledger
from mockserver.core.limits import QuotaCounter, RateLimiter


class FakeTime:
    """An injectable real clock the test moves by hand."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def test_clock_scales_real_time_and_adds_advances() -> None:
    real = FakeTime()
    clock = MockClock(speed=10, real=real)
    start = clock.now()
    real.t += 2
    assert clock.now() == pytest.approx(start + 20)
    clock.advance(5)
    assert clock.now() == pytest.approx(start + 25)


def test_clock_refuses_to_go_back_and_keeps_time_on_speed_change() -> None:
    real = FakeTime()
    clock = MockClock(real=real)
    with pytest.raises(ValueError):
        clock.advance(-1)
    real.t += 3
    before = clock.now()
    clock.set_speed(100)
    assert clock.now() == pytest.approx(before)
    real.t += 1
    assert clock.now() == pytest.approx(before + 100)
    assert clock.real_seconds(50) == pytest.approx(0.5)


def test_mask_header_keeps_only_the_scheme() -> None:
    assert mask_header("Authorization", "Basic bW9jazo=") == "Basic ****"
    assert mask_header("authorization", "Bearer abc") == "Bearer ****"
    assert mask_header("authorization", "rawtoken") == "****"
    assert mask_header("content-type", "text/plain") == "text/plain"


def test_journal_is_ordered_masked_and_bounded() -> None:
    journal = Journal(maxlen=2)
    for n in range(3):
        journal.add("GET", f"/p{n}", "a=1", [("Authorization", "Bearer secret")], at=float(n))
    entries = journal.entries()
    assert [e["path"] for e in entries] == ["/p1", "/p2"]
    assert [e["seq"] for e in entries] == [2, 3]
    assert entries[0]["headers"]["authorization"] == "Bearer ****"
    assert "secret" not in repr(entries)
    assert journal.dropped == 1


def test_ledger_add_and_set_state() -> None:
    ledger = Ledger()
    ledger.add("nanonets", "f1", "a.pdf", "ab" * 32, "processing", pages=2)
    assert ledger.set_state("nanonets", "f1", "done")
    assert not ledger.set_state("nanonets", "nope", "done")
    assert ledger.entries() == [
        {"service": "nanonets", "id": "f1", "name": "a.pdf", "sha256": "ab" * 32,
         "state": "done", "pages": 2}
    ]  # fmt: skip
    assert ledger.entries("mineru") == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"fault": "nope"},
        {"fault": "status"},
        {"fault": "delay"},
        {"fault": "reset", "times": 0},
        {"fault": "reset", "times": 1, "every": 2},
        {"fault": "reset", "probability": 2},
        {"fault": "reset", "path": "("},
        {"fault": "reset", "bogus": 1},
    ],
)
def test_fault_rule_validation(body: dict) -> None:
    with pytest.raises(FaultError):
        FaultRule.from_json(body)


def test_status_alone_implies_a_status_fault() -> None:
    rule = FaultRule.from_json({"status": 429, "retry_after": 2})
    assert rule.fault == "status"
    assert rule.retry_after == 2


def test_fault_path_is_matched_against_the_whole_path_and_method() -> None:
    rule = FaultRule.from_json(
        {"fault": "reset", "path": "/api/v2/.*/LabelFile/", "method": "post"}
    )
    assert rule.matches("POST", "/api/v2/OCR/Model/x/LabelFile/")
    assert not rule.matches("GET", "/api/v2/OCR/Model/x/LabelFile/")
    assert not rule.matches("POST", "/api/v2/OCR/Model/x/LabelFile/extra")


def test_times_every_and_probability() -> None:
    faults = Faults()
    faults.add({"fault": "reset", "path": "/a", "times": 2})
    faults.add({"fault": "html502", "path": "/b", "every": 3})
    picks_a = [faults.pick("GET", "/a") is not None for _ in range(4)]
    picks_b = [faults.pick("GET", "/b") is not None for _ in range(6)]
    assert picks_a == [True, True, False, False]
    assert picks_b == [False, False, True, False, False, True]

    def run(seed: int) -> list[bool]:
        f = Faults()
        f.add({"fault": "reset", "probability": 0.5, "seed": seed})
        return [f.pick("GET", "/x") is not None for _ in range(50)]

    assert run(7) == run(7)
    assert 5 < sum(run(7)) < 45


def test_first_firing_rule_wins_and_rules_can_be_removed() -> None:
    faults = Faults()
    first = faults.add({"fault": "reset", "path": "/a", "every": 2})
    faults.add({"fault": "html502", "path": "/a"})
    assert faults.pick("GET", "/a").fault == "html502"  # first did not fire (1st of every 2)
    assert faults.pick("GET", "/a").fault == "reset"
    assert faults.remove(first.id)
    assert not faults.remove(first.id)
    assert [r.fault for r in faults.rules()] == ["html502"]


def test_rate_limiter_is_a_token_bucket_on_the_mock_clock() -> None:
    real = FakeTime()
    clock = MockClock(real=real)
    limiter = RateLimiter(rate=2, burst=2, clock=clock)
    assert limiter.take("k") == 0
    assert limiter.take("k") == 0
    wait = limiter.take("k")
    assert wait == pytest.approx(0.5)
    assert limiter.take("other") == 0  # per key
    clock.advance(0.5)
    assert limiter.take("k") == 0
    limiter.rate = 0
    assert all(limiter.take("k") == 0 for _ in range(10))  # 0 disables


def test_quota_resets_with_its_window() -> None:
    real = FakeTime(86400 * 100 + 10)
    clock = MockClock(real=real)
    quota = QuotaCounter(limit=2, period=86400, clock=clock)
    assert quota.consume("k") and quota.consume("k")
    assert not quota.consume("k")
    assert quota.remaining("k") == 0
    assert quota.resets_at() == 86400 * 101
    clock.advance(86400)
    assert quota.consume("k")
    quota.limit = None
    assert quota.remaining("k") is None


def test_context_settings_reset_and_hooks(tmp_path) -> None:
    ctx = MockContext(data_dir=tmp_path / "data")
    live = ctx.declare_settings("svc", {"quota": 5})
    calls: list[str] = []
    ctx.on_reset(lambda: calls.append("reset"))
    ctx.on_config(lambda: calls.append("config"))
    ctx.configure({"svc": {"quota": 1}})
    assert live["quota"] == 1
    with pytest.raises(KeyError):
        ctx.configure({"svc": {"nope": 1}})
    with pytest.raises(KeyError):
        ctx.configure({"other": {}})
    (ctx.new_dir("x-") / "f").write_text("data")
    ctx.journal.add("GET", "/", "", [])
    ctx.faults.add({"fault": "reset"})
    ctx.clock.advance(100)
    ctx.reset(speed=3)
    assert live["quota"] == 5
    assert list(ctx.data_dir.iterdir()) == []
    assert len(ctx.journal) == 0 and ctx.faults.rules() == []
    assert ctx.speed == 3
    assert calls == ["config", "reset", "config"]
