"""An ASGI app served as a task on the daemon's loop (daemon/servers/serve.py)."""

from __future__ import annotations

import asyncio

import httpx

from daemon.servers.serve import serve


async def _hello(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"hello"})  # type: ignore[operator]


def test_an_idle_server_ticks_once_a_second_and_stops_as_soon_as_asked() -> None:
    """uvicorn's own loop wakes ten times a second to look for a stop: with three servers
    that was most of an idle daemon's wake-ups.  Served once a second (the Date header's
    resolution), and a stop is not held up until the next tick."""

    async def scenario() -> tuple[list[int], float]:
        served = await serve(_hello, "127.0.0.1", 0, name="test")
        server = served._server
        ticks: list[int] = []
        tick = server.on_tick

        async def counting(counter: int) -> bool:
            ticks.append(counter)
            return await tick(counter)

        server.on_tick = counting  # type: ignore[method-assign]
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"http://127.0.0.1:{served.port}/")
        assert answer.text == "hello" and "date" in answer.headers
        await asyncio.sleep(0.35)  # an idle moment (what is measured): uvicorn's ticks 3 times
        assert len(ticks) <= 1
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await served.stop()
        return ticks, loop.time() - asked

    ticks, took = asyncio.run(scenario())
    assert ticks and ticks[-1] % 10 == 0  # the Date header's count goes on in tens
    assert took < 0.9  # at once, not at the next second's tick
