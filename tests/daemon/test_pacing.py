"""The pacer alone, on an injected clock, against a simulated service (no sleeps, no
network): a token bucket like the mock's (mockserver/core/limits.py) answering 429 with
a whole-second Retry-After, and a scheduler that starts steps as the pacer allows."""

from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from daemon.errors import RateLimited
from daemon.services.pacing import MAX_WAIT, Pacer, Quota, Ticket, rate_hints


class Bucket:
    """The service's limiter: *rate* tokens a second, *burst* deep (0: no limit)."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, 0.0

    def take(self, now: float) -> float:
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


@dataclass
class Sim:
    """Steps of one request each (a synchronous upload), *demand* of them at t=0."""

    server: Bucket
    demand: int
    latency: float = 0.005
    rtt: float = 0.003  # a 429 comes back at once
    concurrency: int = 32
    state: dict[str, Any] | None = None
    now: float = 0.0
    events: list[tuple[float, int, str, Any]] = field(default_factory=list)
    busy: int = 0
    done: int = 0
    sent: int = 0
    refused: int = 0
    max_busy: int = 0

    def __post_init__(self) -> None:
        self.seq = itertools.count()
        self.pacer = Pacer(
            "svc",
            lanes={"api": None},
            route=lambda _m, _u: "api",
            concurrency=self.concurrency,
            steps={"submit": "api"},
            clock=lambda: self.now,
        )
        if self.state:
            self.pacer.restore(self.state)
        self.pacer.on_room = lambda: self.at(self.now, "plan")

    def at(self, when: float, kind: str, payload: Any = None) -> None:
        heapq.heappush(self.events, (when, next(self.seq), kind, payload))

    def run(self, limit: float = 600.0) -> float:
        self.at(0.0, "plan")
        while self.events and self.done < self.demand:
            self.now, _, kind, payload = heapq.heappop(self.events)
            assert self.now < limit, "the simulation ran away"
            getattr(self, "on_" + kind)(payload)
        return self.now

    def on_plan(self, _: Any) -> None:
        room = self.pacer.room("submit", self.busy)
        while room > 0 and self.demand - self.done - self.busy > 0:
            self.busy += 1
            self.max_busy = max(self.max_busy, self.busy)
            self.pacer.promise("submit")
            self.at(self.now + 0.001, "ask")  # the step commits its intent first
            room -= 1
        wake = self.pacer.wake_at()
        if wake is not None and wake > self.now:
            self.at(wake, "plan")

    def on_ask(self, _: Any) -> None:
        self.pacer.enter("api")
        self.on_turn(None)

    def on_turn(self, _: Any) -> None:
        try:
            epoch, when = self.pacer.turn("api")
        except RateLimited:
            self.pacer.cancel("api")
            self.busy -= 1  # the step gives its slot back; the job waits in line
            self.at(self.now, "plan")
            return
        self.at(when, "go", epoch)

    def on_go(self, epoch: int) -> None:
        if self.pacer.lanes["api"].epoch != epoch:
            self.on_turn(None)
            return
        ticket = self.pacer.leave("api")
        self.sent += 1
        wait = self.server.take(self.now)
        if wait:
            self.at(self.now + self.rtt, "answer", (ticket, 429, max(1, math.ceil(wait))))
        else:
            self.at(self.now + self.latency, "answer", (ticket, 200, None))

    def on_answer(self, payload: tuple[Ticket, int, int | None]) -> None:
        ticket, status, retry = payload
        self.pacer.answered(ticket, status, retry_after=retry)
        if status == 429:
            self.refused += 1
            self.on_ask(None)  # http.send asks the lane again: the document never knows
            return
        self.busy -= 1
        self.done += 1
        self.at(self.now, "plan")


def ideal(n: int, rate: float = 10, burst: float = 20, latency: float = 0.0) -> float:
    return (n - burst) / rate + latency


def test_a_first_contact_learns_the_rate_with_a_few_429s_and_drains_near_the_ideal() -> None:
    sim = Sim(Bucket(10, 20), demand=200)
    seconds = sim.run()
    assert sim.refused <= 4, sim.refused
    assert sim.sent / 200 <= 1.02
    assert seconds <= 1.05 * ideal(200), seconds
    lane = sim.pacer.lanes["api"]
    assert lane.rate is not None and 9.0 <= lane.rate <= 10.5
    assert 8 <= lane.burst <= 20


def test_a_restart_starts_from_what_was_learned_and_meets_no_429() -> None:
    first = Sim(Bucket(10, 20), demand=200)
    first.run()
    again = Sim(Bucket(10, 20), demand=200, state=first.pacer.state())
    seconds = again.run()
    assert again.refused == 0
    assert seconds <= 1.05 * ideal(200), seconds


def test_with_two_seconds_of_latency_concurrency_grows_to_what_the_rate_allows() -> None:
    sim = Sim(Bucket(10, 20), demand=200, latency=2.0)
    seconds = sim.run()
    assert seconds <= 1.1 * ideal(200, latency=2.0), seconds
    assert sim.refused <= 4
    assert sim.max_busy >= 20  # rate × latency requests under way


def test_the_configured_concurrency_is_a_ceiling() -> None:
    sim = Sim(Bucket(0, 0), demand=100, latency=1.0, concurrency=5)
    sim.run()
    assert sim.max_busy == 5
    assert sim.pacer.window.limit <= 5


def test_no_limit_no_429_and_the_probe_gets_out_of_the_way() -> None:
    sim = Sim(Bucket(0, 0), demand=2000, latency=0.02)
    seconds = sim.run()
    assert sim.refused == 0
    assert sim.pacer.lanes["api"].rate is None  # nothing to learn: no limit met
    # 32 under way at 20 ms: 1,600/s; the probe doubles from 64/s every half second while
    # it is what holds requests back: 4.6 doublings, about 2 s of ramp
    lane = sim.pacer.lanes["api"]
    assert lane.probe >= 1600
    assert seconds <= 2000 / 1600 + 3.0, seconds


@pytest.mark.parametrize(("rate", "burst", "n"), [(1.0, 5, 100), (0.5, 3, 100), (1 / 6, 5, 60)])
def test_slow_services_are_learned_too(rate: float, burst: float, n: int) -> None:
    sim = Sim(Bucket(rate, burst), demand=n)
    seconds = sim.run(limit=10_000)
    assert seconds <= 1.05 * ideal(n, rate, burst), seconds
    assert sim.refused <= 0.2 * n


def test_latency_that_doubles_shrinks_the_window() -> None:
    pacer = Pacer("svc", lanes={"api": None}, route=lambda *_: "api", concurrency=32,
                  clock=lambda: 0.0)  # fmt: skip
    window = pacer.window
    for i in range(50):
        window.observe(0.1, 32, i * 0.2)
    grown = window.limit
    for i in range(50, 60):
        window.observe(1.0, 32, i * 1.5)
    assert window.limit < grown * 0.6


def test_a_hold_longer_than_max_wait_gives_the_slot_back() -> None:
    now = [0.0]
    pacer = Pacer("svc", lanes={"api": None}, route=lambda *_: "api", concurrency=4,
                  steps={"submit": "api"}, clock=lambda: now[0])  # fmt: skip
    pacer.enter("api")
    ticket = pacer.leave("api")
    pacer.answered(ticket, 429, retry_after=MAX_WAIT + 30)
    assert pacer.room("submit", 0) == 0
    assert pacer.wake_at() == pytest.approx(MAX_WAIT + 30 - 0.5)
    pacer.enter("api")
    with pytest.raises(RateLimited) as caught:
        pacer.turn("api")
    pacer.cancel("api")
    assert caught.value.retry_after == pytest.approx(MAX_WAIT + 30)
    now[0] = MAX_WAIT + 31
    assert pacer.room("submit", 0) > 0


def test_waiters_after_a_429_are_spaced_not_released_as_a_herd() -> None:
    now = [0.0]
    pacer = Pacer("svc", lanes={"api": None}, route=lambda *_: "api", concurrency=32,
                  clock=lambda: now[0])  # fmt: skip
    lane = pacer.lanes["api"]
    lane.rate = 10.0
    pacer.enter("api")
    pacer.answered(pacer.leave("api"), 429, retry_after=2)
    times = []
    for _ in range(5):
        pacer.enter("api")
        times.append(pacer.turn("api")[1])
    assert times[0] >= 2.0
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 0.099 for g in gaps), gaps


def test_a_documented_quota_is_a_sliding_window() -> None:
    now = [0.0]
    pacer = Pacer("svc", lanes={"submit": Quota(3, 60.0)}, route=lambda *_: "submit",
                  concurrency=8, clock=lambda: now[0])  # fmt: skip
    lane = pacer.lanes["submit"]
    lane.rate = 1000.0
    lane.burst = 1000.0
    lane.tokens = 1000.0
    sends = [lane.reserve(0.0) for _ in range(4)]
    assert sends[:3] == [0.0, 0.0, 0.0]
    assert sends[3] == pytest.approx(60.0)
    assert pacer.view(1000.0)["lanes"]["submit"]["used"] == 4


def test_the_configured_rate_is_a_ceiling_on_what_is_learned() -> None:
    now = [0.0]
    pacer = Pacer("svc", lanes={"api": None}, route=lambda *_: "api", concurrency=8,
                  ceiling_rate=2.0, clock=lambda: now[0])  # fmt: skip
    lane = pacer.lanes["api"]
    assert lane.pace() == 2.0
    lane.restore({"rate": 50.0})
    assert lane.rate == 2.0


def test_rate_limit_headers_hold_the_lane_before_any_429() -> None:
    headers = httpx.Headers({"RateLimit-Remaining": "0", "RateLimit-Reset": "7"})
    assert rate_hints(headers, 0.0) == (0, 7.0)
    headers = httpx.Headers({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "1700000030"})
    assert rate_hints(headers, 1_700_000_000.0) == (3, 30.0)
    assert rate_hints(httpx.Headers({"x-ratelimit-reset": "nan"}), 0.0) == (None, None)
    now = [0.0]
    pacer = Pacer("svc", lanes={"api": None}, route=lambda *_: "api", concurrency=8,
                  clock=lambda: now[0])  # fmt: skip
    pacer.enter("api")
    pacer.answered(pacer.leave("api"), 200, remaining=0, reset=5.0)
    assert pacer.lanes["api"].next_time(0.0) == pytest.approx(5.0)
