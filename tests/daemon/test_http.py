"""The HTTP boundary: rate limiting and Retry-After, with an injected clock (no sleeps)."""

from __future__ import annotations

import asyncio
import email.utils

import httpx

from daemon.services.http import RateLimiter, make_client, retry_after


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    t = FakeTime()
    limiter = RateLimiter(rate=4, burst=2, clock=t.clock, sleep=t.sleep)

    async def go() -> None:
        for _ in range(5):
            await limiter.acquire()

    asyncio.run(go())
    assert t.slept == [0.25, 0.25, 0.25]  # two free, then one every 1/rate seconds
    t.now += 10  # idle time refills the bucket, but only up to the burst
    t.slept.clear()
    asyncio.run(go())
    assert t.slept == [0.25, 0.25, 0.25]


def test_client_hook_applies_the_limit_to_every_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={})

    async def go() -> float:
        client = make_client("http://svc", timeout=5, transport=httpx.MockTransport(handler),
                             max_connections=4, rate_per_second=5)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with client:
            await asyncio.gather(*(client.get(f"/r{i}") for i in range(6)))
        return loop.time() - start

    elapsed = asyncio.run(go())
    assert len(seen) == 6
    # a burst of one second's worth (5) goes at once, the sixth waits 1/5 s: a lower bound,
    # which a slow machine can only exceed
    assert elapsed >= 0.19


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    when = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after(httpx.Response(503, headers={"Retry-After": when}), now=1_000_000) == 60
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None
