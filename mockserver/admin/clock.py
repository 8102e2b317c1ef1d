"""The mock clock over HTTP: read it, move it forward, change its speed."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .common import bad, context, json_body


async def clock(request: Request) -> Response:
    """The mock's time and speed."""
    ctx = context(request)
    return JSONResponse({"now": ctx.clock.now(), "speed": ctx.clock.speed})


async def clock_advance(request: Request) -> Response:
    """Move the mock's time forward by ``seconds``."""
    ctx = context(request)
    try:
        body = await json_body(request)
        now = ctx.clock.advance(float(body["seconds"]))
    except (KeyError, TypeError, ValueError) as exc:
        return bad(f"give {{'seconds': N}} with N >= 0 ({exc})")
    return JSONResponse({"now": now, "speed": ctx.clock.speed})


async def clock_speed(request: Request) -> Response:
    """Change how fast mock time runs relative to real time."""
    ctx = context(request)
    try:
        body = await json_body(request)
        ctx.clock.set_speed(float(body["speed"]))
    except (KeyError, TypeError, ValueError) as exc:
        return bad(f"give {{'speed': S}} with S > 0 ({exc})")
    return JSONResponse({"now": ctx.clock.now(), "speed": ctx.clock.speed})
