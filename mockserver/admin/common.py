"""What every admin handler needs: the mock's context, the body, a 400 answer."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from ..core.context import MockContext


def context(request: Request) -> MockContext:
    """The context of the app serving *request* (``create_app`` puts it on ``app.state``)."""
    ctx: MockContext = request.app.state.mock
    return ctx


async def json_body(request: Request) -> Any:
    """The request's JSON; an empty body counts as ``{}``."""
    raw = await request.body()
    if not raw.strip():
        return {}
    return json.loads(raw)


def bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)
