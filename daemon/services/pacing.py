"""Each service's pace: as fast as the service allows, with no wasted request.

Every request a service makes goes through its :class:`Pacer` (``http.send`` asks it),
in one of the service's *lanes* — one per limit the service enforces (MinerU counts
submissions and result queries apart; Nanonets has one).  A lane learns its rate:

- **unknown** (a first contact): requests go at a probing rate that doubles every half
  second while the service accepts them, as TCP's slow start does (and no more of them
  on the wire than that rate needs, so that answers delayed by a busy daemon do not let
  a crowd out before a 429 arrives);
- **the first 429** quarters that rate (and it grows by half every half second while
  nothing more is refused).  The service's bucket is empty at that moment; at the next
  429 it is empty again, so the requests it accepted in between, over the time between
  (taken between the midpoints of each 429's send and answer), are its sustainable
  rate — docinbox then paces just under it, and lets a service that rested spend the
  burst it measured;
- **then** additive increase (2 % every 10 s spent at the pace without a 429) and a
  multiplicative decrease at each 429 (to the rate it measures, or by half when it
  measures nothing), as TCP does.

A 429's ``Retry-After`` holds the lane that long (a 429 without one: a second), and
``RateLimit-Remaining: 0`` with ``RateLimit-Reset`` (or the ``X-RateLimit-`` pair) holds
it before any 429.  Sends are reserved in order, one interval apart, so waiters are
never released as a herd.  Requests already on their way when a 429 arrives
("echoes") teach nothing new (one sent before a 429 that was counted as accepted in its
measurement is taken back).  A documented limit (MinerU's 300 submissions a minute)
is kept as a sliding window: never more than that in any such period.

Concurrency follows latency (:class:`Window`): more steps at once while the service's
answers take as long as they did, fewer when they take twice as long.  The configured
``concurrency`` and ``rate_per_second`` are ceilings, never exceeded.  What a pacer has
learned (:meth:`Pacer.state`) is kept in the store by the scheduler, so a restart
starts where it left off.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import RateLimited

log = logging.getLogger("docinbox")

#: A lane whose rate is unknown starts here (requests/s) and doubles every
#: PROBE_DOUBLING seconds while the service accepts what it is sent at that pace; after
#: a first 429 and until a measurement, its guess grows by half as often.
PROBE_START, PROBE_DOUBLING, PROBE_MAX = 64.0, 0.5, 1e6
#: Paced just under the measured rate; its burst just under the measured burst.
MARGIN = 0.99
#: Multiplicative decrease at a 429 that measures nothing (TCP's halving); additive
#: increase per period.
DECREASE, INCREASE, INCREASE_EVERY = 0.5, 0.02, 10.0
#: No learned rate goes below a request a minute.
MIN_RATE = 1 / 60
#: A measurement needs this many accepted requests over at least this long.
MIN_SAMPLES, MIN_SPAN = 2, 0.2
#: A 429 without Retry-After holds the lane this long.
DEFAULT_HOLD = 1.0
#: A request waits in its lane at most this long; beyond, the step gives its slot back
#: (RateLimited: the job waits in line, its budget untouched).
MAX_WAIT = 30.0
#: The scheduler starts steps for the requests a lane may send within this much time.
LOOKAHEAD = 0.5
#: Times closer than this are the same time (room and wake-ups must agree).
EPSILON = 1e-6
#: A step the scheduler started counts as waiting for its lane this long at most.
PROMISE_TTL = 2.0


@dataclass(frozen=True)
class Quota:
    """A documented request limit: at most *count* in any *period* seconds."""

    count: int
    period: float


@dataclass
class Ticket:
    """One request's place in its lane: when it went (and as which of the lane's sends),
    under which schedule."""

    lane: str
    epoch: int
    at: float
    seq: int = 0


class Lane:
    """One limit of a service: its learned rate, its mirror of the service's bucket, its
    hold, and the documented quota if there is one.  Times are monotonic seconds."""

    def __init__(self, name: str, now: float, *, ceiling: float | None, quota: Quota | None):
        self.name = name
        self.ceiling = ceiling
        self.quota = quota
        self.rate: float | None = None  # learned; None: probing
        self.burst = 1.0
        self.rested = 1.0  # what a rested service takes at once (the first contact's head)
        self.probe, self._probe_at, self._probe_seq = PROBE_START, now, 0
        self.tokens, self._stamp, self._next = 0.0, now, now
        self.hold_until = 0.0
        self.epoch = 0
        self.refusals = 0  # 429s answered, echoes included (for status)
        self.seq = 0  # requests sent so far
        self.out = 0  # requests on the wire now
        #: The last 429 that counted: its request's send time and number, when it
        #: arrived; and its echoes (sent before it arrived) refused since: those sent
        #: after it (they count against the next measurement) and those sent before.
        self._mark: tuple[float, int] | None = None
        self._known_at = -math.inf
        self._echoes = 0
        self._echoes_before = 0
        self._held = DEFAULT_HOLD  # how long the last counted 429 held the lane
        self._last: tuple[int, float] | None = None  # the last measurement: accepted, span
        self._first: tuple[float, int] | None = None  # the first accepted send: time, number
        self._first_burst: int | None = None  # sent before the very first 429
        self._first_burst_at = now
        self._calm_since = now
        self._bound = False
        self.measured = False
        self._window: deque[float] = deque()  # send times within the quota's period
        self.changed = False

    # --- pacing ----------------------------------------------------------------------------

    def pace(self) -> float | None:
        """Requests per second now: learned (or probing), under the ceiling."""
        rate = self.probe if self.rate is None else self.rate
        return min(rate, self.ceiling) if self.ceiling else rate

    def next_time(self, now: float) -> float:
        """When a request reserved now could go (nothing is reserved)."""
        t = max(now, self.hold_until)
        rate = self.pace()
        if self.rate is None:
            t = max(t, self._next)
        elif rate:
            tokens = min(self.burst, self.tokens + (t - self._stamp) * rate)
            if tokens < 1.0:
                t += (1.0 - tokens) / rate
        return max(t, self._quota_time(t))

    def reserve(self, now: float) -> float:
        """Reserve the next send time (FIFO: each reservation after the one before)."""
        t = self.next_time(now)
        rate = self.pace()
        if t > max(now, self.hold_until) + 1e-9:
            self._bound = True
        if self.rate is None:
            self._next = t + (1.0 / rate if rate else 0.0)
        elif rate:
            tokens = min(self.burst, self.tokens + (t - self._stamp) * rate)
            self.tokens, self._stamp = max(0.0, tokens - 1.0), t
        if self.quota is not None:
            self._window.append(t)
        return t

    def _quota_time(self, t: float) -> float:
        quota = self.quota
        if quota is None:
            return t
        while self._window and self._window[0] <= t - quota.period:
            self._window.popleft()
        if len(self._window) < quota.count:
            return t
        return self._window[-quota.count] + quota.period

    def recent(self, now: float) -> int:
        """Requests within the quota's period up to *now* (reserved ones included)."""
        if self.quota is None:
            return 0
        return sum(1 for t in self._window if now - self.quota.period < t)

    # --- what the service answered -----------------------------------------------------------

    def sent(self, at: float) -> int:
        """A request goes now: its number among the lane's sends."""
        self.seq += 1
        if self._first is None:
            self._first = (at, self.seq)
            self._probe_at, self._probe_seq = at, self.seq
        return self.seq

    def accepted(self, now: float) -> None:
        """An answer that is not a 429: the service counted it (probe up, or increase)."""
        if self.rate is None:
            # Up only once the probing pace was reached: a pace nobody reaches tells
            # nothing about the service.
            span = now - self._probe_at
            if span >= PROBE_DOUBLING and self.seq - self._probe_seq >= 0.9 * self.probe * span:
                self.probe = min(PROBE_MAX, self.probe * 2)
                self._probe_at, self._probe_seq = now, self.seq
            return
        every, factor = INCREASE_EVERY, 1 + INCREASE
        if not self.measured:  # a first contact's guess: look for the next 429 soon
            every, factor = PROBE_DOUBLING, 1.5
        if self._bound and now - self._calm_since >= every:
            self.rate = min(self.ceiling or math.inf, self.rate * factor)
            self._calm_since, self._bound, self.changed = now, False, True

    def refused(self, now: float, ticket: Ticket, retry_after: float | None) -> None:
        """A 429 for *ticket*'s request: hold, and learn from it unless it is an echo of
        the last one (sent before that one's answer arrived)."""
        self.refusals += 1
        held = DEFAULT_HOLD if retry_after is None else retry_after
        self.hold(now, held)
        self.tokens, self._stamp, self._next = 0.0, now, now
        self.epoch += 1
        if ticket.at < self._known_at:
            if self._mark is not None and ticket.seq < self._mark[1]:
                self._echoes_before += 1
                self._recount()
            else:
                self._echoes += 1
            return
        self._learn(ticket, now)
        self._held = held
        self._mark, self._known_at, self._echoes = (ticket.at, ticket.seq), now, 0
        self._calm_since, self._bound, self.changed = self.hold_until, False, True

    def _learn(self, ticket: Ticket, now: float) -> None:
        """The rate (and burst) a counted 429 teaches: see the module's docstring.  When
        the service found its bucket empty lies between the request's send and its
        answer's arrival (a service that queues requests, a daemon busy elsewhere): the
        time between two 429s is taken between those midpoints."""
        if self._mark is None:
            self._first_contact(ticket)
            return
        (sent, seq), known = self._mark, self._known_at
        span = (ticket.at + now) / 2 - (sent + known) / 2
        accepted = ticket.seq - seq - 1 - self._echoes
        if self.burst > 1 and accepted < self.burst:
            # Refused while spending the burst: the burst was too much, not the rate.
            self.burst = max(1.0, math.floor(accepted * 0.9))
            return
        measured = None
        if span >= MIN_SPAN and accepted >= MIN_SAMPLES:
            # The bucket held 0 to 1 token at each end: the count errs by up to one
            # request either way; on the low side, so that the pace stays under it.
            measured = accepted / span
            self._last = (accepted, span)
        if measured is None:
            self.rate = (self.rate or self.probe) * DECREASE
        else:
            self.rate = min(self.rate or math.inf, measured) * MARGIN
            if not self.measured:
                self._first_burst_is(measured)
            self.measured = True
        self.rate = max(MIN_RATE, min(self.rate, self.ceiling or math.inf))
        log.debug("pace %s: a 429 measures %s: %.2f requests/s", self.name, measured, self.rate)

    def _recount(self) -> None:
        """An echo sent before the last counted 429: it was counted as accepted in that
        429's measurement, and was not — the rate measured is that much lower."""
        if self._last is None or self.rate is None or not self.measured:
            return
        accepted, span = self._last
        self._last = (accepted - 1, span)
        if accepted - 1 >= MIN_SAMPLES:
            self.rate = max(MIN_RATE, min(self.rate, (accepted - 1) / span * MARGIN))

    def _first_contact(self, ticket: Ticket) -> None:
        """The first 429: the service's bucket is empty now.  A probe quarters its pace
        (the next 429 measures the rate); a rate already known stays until it is measured."""
        first = self._first[1] if self._first else ticket.seq
        self._first_burst, self._first_burst_at = max(0, ticket.seq - first), ticket.at
        self._echoes_before = 0
        if self.rate is None:  # a quarter: the next 429 comes later, measures better
            self.rate = max(MIN_RATE, min(self.probe / 4, self.ceiling or math.inf))
        log.debug("pace %s: a first 429: %.2f requests/s", self.name, self.rate)

    def _first_burst_is(self, measured: float) -> None:
        """What was accepted before the first 429 (its echoes sent earlier were refused
        too), less what the rate refilled meanwhile: the service's burst — never more
        than the rate refills during a hold (a hold that fills the service's bucket to
        the brim makes the measurement a lower bound, and this an upper one)."""
        if not self._first or not self._first_burst:
            return
        head = (
            self._first_burst
            - self._echoes_before
            - measured * (self._first_burst_at - self._first[0])
        )
        self.burst = max(1.0, math.floor(min(head * 0.9, measured * self._held)))
        self.rested = max(1.0, math.floor(head * 0.9))

    def hold(self, now: float, seconds: float) -> None:
        """Nothing goes before now + *seconds* (a Retry-After, a rate-limit reset)."""
        until = now + max(0.0, seconds)
        if until > self.hold_until:
            self.hold_until = until
            self.epoch += 1

    # --- kept between runs -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"rate": self.rate, "burst": self.burst, "rested": self.rested, "probe": self.probe}

    def restore(self, state: Mapping[str, Any]) -> None:
        rate, burst, probe = state.get("rate"), state.get("burst"), state.get("probe")
        if isinstance(rate, int | float) and rate > 0:
            self.rate = max(MIN_RATE, float(rate))
            self.measured = True
            if self.ceiling:
                self.rate = min(self.rate, self.ceiling)
        if isinstance(burst, int | float) and burst >= 1:
            self.burst = float(burst)
        rested = state.get("rested")
        if isinstance(rested, int | float) and rested > self.burst:
            self.rested = self.burst = float(rested)  # a 429 while spending it lowers it
        self.tokens = self.burst  # a service that rested has its whole burst again
        if isinstance(probe, int | float) and probe > PROBE_START:
            self.probe = min(PROBE_MAX, float(probe))


class Window:
    """How many steps may be under way: grows by one per answer while the window is
    full and answers take as long as the quickest recent ones (doubling per round trip),
    shrinks by a fifth, at most once per round trip, when they take twice as long."""

    INITIAL = 16
    #: Latency "holds" within twice the base, or the base plus this: a loaded loopback
    #: or LAN answers in tens of milliseconds whatever the concurrency.
    FLOOR = 0.25

    def __init__(self, ceiling: int, now: float) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(min(self.ceiling, self.INITIAL))
        self.base: float | None = None
        self.smoothed: float | None = None
        self._cut_at = -math.inf
        self._now = now

    def observe(self, latency: float, in_flight: int, now: float) -> bool:
        """One answer after *latency* seconds with *in_flight* requests out; True when the
        limit changed."""
        latency = max(0.0, latency)
        if self.base is None or latency < self.base:
            self.base = latency
        else:
            self.base += (latency - self.base) * 0.002  # forget an old minimum slowly
        self.smoothed = (
            latency if self.smoothed is None else self.smoothed + (latency - self.smoothed) * 0.2
        )
        before = self.limit
        holds = self.smoothed <= max(2 * self.base, self.base + self.FLOOR)
        if not holds and now - self._cut_at > self.smoothed:
            self.limit = max(1.0, self.limit * 0.8)
            self._cut_at = now
        elif holds and in_flight >= 0.75 * self.limit:
            self.limit = min(float(self.ceiling), self.limit + 1.0)
        return int(self.limit) != int(before)

    def state(self) -> dict[str, Any]:
        return {"limit": self.limit, "base": self.base}

    def restore(self, state: Mapping[str, Any]) -> None:
        limit = state.get("limit")
        if isinstance(limit, int | float) and limit >= 1:
            self.limit = min(float(self.ceiling), float(limit))


#: (method, URL) → the lane of a request, or None for one the service does not limit
#: (a presigned upload to storage, a result download from a CDN).
Router = Callable[[str, str], "str | None"]


class Pacer:
    """One service's lanes and window; every request of the service asks it first."""

    def __init__(
        self,
        service: str,
        *,
        lanes: Mapping[str, Quota | None],
        route: Router,
        concurrency: int,
        ceiling_rate: float = 0.0,
        steps: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        now = clock()
        self.service = service
        self.clock = clock
        self.sleep = sleep
        self.route = route
        ceiling = ceiling_rate if ceiling_rate > 0 else None
        self.lanes = {n: Lane(n, now, ceiling=ceiling, quota=q) for n, q in lanes.items()}
        self.window = Window(concurrency, now)
        #: The lane a scheduler step of each kind ("submit", "poll") sends its request in.
        self.steps = dict(steps or {})
        self.in_flight = 0
        self._answers = asyncio.Event()  # set at each answer: crowded lanes look again
        #: Called when a request leaves a lane whose waiting requests had used up the
        #: room the scheduler was given (the scheduler looks again: more may start).
        self.on_room: Callable[[], None] | None = None
        self._starved = False
        self._promised: dict[str, deque[float]] = {n: deque() for n in self.lanes}
        self._waiting: dict[str, int] = dict.fromkeys(self.lanes, 0)
        self.changed = False

    def lane_for(self, method: str, url: str) -> str | None:
        lane = self.route(method, url)
        return lane if lane in self.lanes else None

    async def acquire(self, name: str) -> Ticket:
        """Wait for this request's turn in lane *name*; RateLimited when that is further
        away than MAX_WAIT (the step gives its slot back, the document waits in line)."""
        self.enter(name)
        try:
            while True:
                while self.crowded(name):
                    self._answers.clear()
                    await self._answers.wait()
                epoch, at = self.turn(name)
                now = self.clock()
                if at > now:
                    await self.sleep(at - now)
                if self.lanes[name].epoch == epoch:
                    break  # no 429 or hold since this turn was given: it stands
        except BaseException:
            self.cancel(name)
            raise
        return self.leave(name)

    def crowded(self, name: str) -> bool:
        """While a lane's rate is being found, no more requests on the wire than its pace
        needs for the answers' usual latency (twice over, and at least 4): answers slower
        than usual (a busy service, a busy daemon) mean a 429 may already be on its way,
        and the requests sent meanwhile would be refused with it."""
        lane, latency = self.lanes[name], self.window.smoothed
        if lane.measured or latency is None:
            return False
        return lane.out >= max(4, math.ceil(2 * (lane.pace() or 0) * latency))

    def enter(self, name: str) -> None:
        """A request starts waiting in lane *name* (a promised step keeps its word)."""
        promised = self._promised[name]
        if promised:
            promised.popleft()
        self._waiting[name] += 1

    def turn(self, name: str) -> tuple[int, float]:
        """(the lane's schedule, the send time) reserved for a waiting request; after a
        429 or a hold changes the schedule, the request asks again."""
        lane, now = self.lanes[name], self.clock()
        wait = lane.next_time(now) - now
        if wait > MAX_WAIT:
            raise RateLimited(
                f"{self.service}: the service asks docinbox to wait {wait:.0f} s",
                service=self.service,
                status=429,
                retry_after=wait,
            )
        return lane.epoch, lane.reserve(now)

    def cancel(self, name: str) -> None:
        """The waiting request gave up (RateLimited, cancelled)."""
        self._waiting[name] -= 1

    def leave(self, name: str) -> Ticket:
        """The waiting request goes now."""
        self._waiting[name] -= 1
        if self._starved and self.on_room is not None:
            self._starved = False
            self.on_room()
        lane, sent = self.lanes[name], self.clock()
        self.in_flight += 1
        lane.out += 1
        return Ticket(name, lane.epoch, sent, lane.sent(sent))

    def answered(
        self,
        ticket: Ticket,
        status: int | None,
        *,
        retry_after: float | None = None,
        remaining: int | None = None,
        reset: float | None = None,
    ) -> None:
        """The outcome of *ticket*'s request: an HTTP status, or None (no answer)."""
        now = self.clock()
        self.in_flight = max(0, self.in_flight - 1)
        lane = self.lanes[ticket.lane]
        lane.out = max(0, lane.out - 1)
        self._answers.set()
        if status is None:
            return
        if status == 429:
            lane.refused(now, ticket, retry_after)
        else:
            lane.accepted(now)
            if self.window.observe(now - ticket.at, self.in_flight + 1, now):
                self.changed = True
            if remaining == 0 and reset is not None:
                lane.hold(now, reset)
        self.changed = self.changed or lane.changed
        lane.changed = False

    # --- the scheduler's side ---------------------------------------------------------------

    def promise(self, kind: str) -> None:
        """A step of *kind* was started: it will ask its lane shortly."""
        name = self.steps.get(kind)
        if name in self._promised:
            self._promised[name].append(self.clock())

    def room(self, kind: str, busy: int) -> int:
        """How many more steps of *kind* to start now, with *busy* steps under way: the
        window's room, and no more than the lane lets go within LOOKAHEAD."""
        room = int(self.window.limit) - busy
        name = self.steps.get(kind)
        if room <= 0 or name not in self.lanes:
            return max(0, room)
        lane, now = self.lanes[name], self.clock()
        if lane.hold_until > now:
            return 0
        promised = self._promised[name]
        while promised and promised[0] < now - PROMISE_TTL:
            promised.popleft()
        ahead = self._waiting[name] + len(promised)
        start = lane.next_time(now)
        if start > now + LOOKAHEAD + EPSILON:
            return 0
        ahead_time = max(0.0, now + LOOKAHEAD - start)
        allowed = 1 + math.floor(ahead_time * (lane.pace() or PROBE_MAX))
        if allowed - ahead < room:
            self._starved = True  # the next request that leaves makes room
        return max(0, min(room, allowed - ahead))

    def wake_at(self) -> float | None:
        """When a lane that holds steps back now lets them go (monotonic), if one does."""
        now = self.clock()
        times = [
            lane.next_time(now) - LOOKAHEAD
            for lane in self.lanes.values()
            if lane.next_time(now) > now + LOOKAHEAD + EPSILON
        ]
        return min(times) if times else None

    # --- kept in the store, shown by status ---------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "lanes": {n: lane.state() for n, lane in self.lanes.items()},
            "window": self.window.state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        lanes = state.get("lanes")
        for name, lane in self.lanes.items():
            if isinstance(lanes, Mapping) and isinstance(lanes.get(name), Mapping):
                lane.restore(lanes[name])
        if isinstance(state.get("window"), Mapping):
            self.window.restore(state["window"])

    def view(self, wall: float) -> dict[str, Any]:
        """What ``docinbox status`` shows: each lane's pace, hold (wall-clock), quota use."""
        now = self.clock()
        lanes = {}
        for name, lane in self.lanes.items():
            lanes[name] = {
                "rate": lane.rate,
                "held_until": wall + (lane.hold_until - now) if lane.hold_until > now else None,
                "refusals": lane.refusals,
                **(
                    {"used": lane.recent(now), "limit": lane.quota.count, "per": lane.quota.period}
                    if lane.quota
                    else {}
                ),
            }
        return {"lanes": lanes, "concurrency": int(self.window.limit), "in_flight": self.in_flight}


def rate_hints(headers: Mapping[str, str], wall: float) -> tuple[int | None, float | None]:
    """(remaining, seconds until reset) from ``RateLimit-Remaining``/``-Reset`` (the IETF
    draft's names) or the ``X-RateLimit-`` pair; a reset above 10⁹ is a Unix time."""
    remaining = reset = None
    for prefix in ("ratelimit-", "x-ratelimit-"):
        value = headers.get(prefix + "remaining")
        if value is not None and value.strip().isdigit():
            remaining = int(value.strip())
        value = headers.get(prefix + "reset")
        if value is not None:
            try:
                number = float(value.strip())
            except ValueError:
                continue
            if math.isfinite(number) and number >= 0:
                reset = min(24 * 3600.0, number - wall if number > 1e9 else number)
        if remaining is not None:
            break
    return remaining, None if reset is None else max(0.0, reset)
