"""The services' settings over HTTP, and the reset to a fresh mock."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .common import bad, context, json_body


async def config_get(request: Request) -> Response:
    """Every service's tunable settings (quotas, rates, processing times)."""
    return JSONResponse(context(request).settings)


async def config_set(request: Request) -> Response:
    """Change settings: ``{service: {setting: value}}``."""
    try:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise KeyError("the body is an object {service: {setting: value}}")
        return JSONResponse(context(request).configure(body))
    except (KeyError, ValueError) as exc:
        return bad(str(exc).strip("'\""))


async def reset(request: Request) -> Response:
    """Back to a fresh mock (optionally with a new speed and settings)."""
    ctx = context(request)
    try:
        body = await json_body(request)
    except ValueError as exc:
        return bad(str(exc))
    speed = body.get("speed") if isinstance(body, dict) else None
    try:
        ctx.reset(speed=float(speed) if speed is not None else None)
        if isinstance(body, dict) and body.get("config"):
            ctx.configure(body["config"])
    except (KeyError, ValueError) as exc:
        return bad(str(exc).strip("'\""))
    return JSONResponse({"ok": True, "now": ctx.clock.now(), "speed": ctx.clock.speed})
