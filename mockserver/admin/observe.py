"""Looking at the mock: health, the journal, the tasks it accepted."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .common import bad, context


async def health(request: Request) -> Response:
    """Liveness: the mock answers and which services it mounts."""
    return JSONResponse({"ok": True, "services": context(request).services})


async def requests(request: Request) -> Response:
    """The journal: every request in arrival order."""
    ctx = context(request)
    entries = ctx.journal.entries()
    since = request.query_params.get("since")
    if since is not None:
        try:
            after = int(since)
        except ValueError:
            return bad("since must be an integer")
        entries = [e for e in entries if e["seq"] > after]
    pattern = request.query_params.get("path")
    if pattern is not None:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            return bad(f"path is not a valid regex: {exc}")
        entries = [e for e in entries if regex.fullmatch(e["path"])]
    return JSONResponse({"requests": entries, "dropped": ctx.journal.dropped})


async def tasks(request: Request) -> Response:
    """Every document the mock accepted, one entry per submission."""
    ctx = context(request)
    service = request.query_params.get("service")
    ctx.refresh()
    return JSONResponse({"tasks": ctx.ledger.entries(service)})
