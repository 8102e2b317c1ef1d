"""Fault rules over HTTP: list, add, clear, delete one (rules: :mod:`mockserver.core.faults`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.faults import FaultError, FaultRule
from .common import bad, context, json_body


async def faults_list(request: Request) -> Response:
    """The active fault rules with their counters."""
    return JSONResponse({"faults": [r.to_json() for r in context(request).faults.rules()]})


async def faults_add(request: Request) -> Response:
    """Add a fault rule (SPEC format)."""
    try:
        rule = context(request).faults.add(FaultRule.from_json(await json_body(request)))
    except (FaultError, ValueError) as exc:
        return bad(str(exc))
    return JSONResponse(rule.to_json(), status_code=201)


async def faults_clear(request: Request) -> Response:
    """Remove every fault rule."""
    context(request).faults.clear()
    return JSONResponse({"faults": []})


async def fault_delete(request: Request) -> Response:
    """Remove one fault rule by id."""
    if not context(request).faults.remove(request.path_params["rule_id"]):
        return JSONResponse({"error": "no such fault rule"}, status_code=404)
    return JSONResponse({"deleted": request.path_params["rule_id"]})
