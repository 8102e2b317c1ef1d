"""The mock's own admin API under ``/__admin/`` (SPEC "Admin API").

Admin requests are neither journaled nor subject to faults, so polling the
journal does not change it and a fault rule cannot lock the tests out.

- ``GET  /__admin/health`` → ``{"ok": true, "services": [...]}``
- ``GET  /__admin/requests`` → ``{"requests": [entry, ...], "dropped": n}``, arrival order;
  entry = ``{seq, method, path, query, headers, status, at, fault}`` (``query`` is the raw
  query string; Authorization shows only its scheme: ``Basic ****``).
  ``?path=REGEX`` keeps entries whose path fully matches; ``?since=SEQ`` those after SEQ.
- ``GET  /__admin/tasks`` → ``{"tasks": [{service, id, name, sha256, state, ...}]}``,
  ``?service=nanonets`` filters.
- ``GET  /__admin/faults`` → ``{"faults": [rule, ...]}`` (with ``matched``/``fired`` counters)
- ``POST /__admin/faults`` rule → 201 ``rule`` (with its ``id``); 400 ``{"error": ...}`` if invalid
- ``DELETE /__admin/faults`` → clears all; ``DELETE /__admin/faults/{id}`` → one
- ``GET  /__admin/clock`` → ``{"now": mock_unix_seconds, "speed": s}``
- ``POST /__admin/clock/advance`` ``{"seconds": N}`` → ``{"now": ...}``
- ``POST /__admin/clock/speed`` ``{"speed": S}`` → ``{"now": ..., "speed": S}``
- ``GET  /__admin/config`` → ``{service: {setting: value}}``
- ``POST /__admin/config`` ``{service: {setting: value}}`` → the new settings (400 on an
  unknown service or key). Settings return to defaults on reset.
- ``POST /__admin/reset`` (optional body ``{"speed": S, "config": {...}}``) → a fresh mock.
- ``GET  /__admin/openapi.json`` → an OpenAPI 3.1 document of every route.
"""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from .core.context import MockContext
from .core.faults import FaultError, FaultRule


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    return json.loads(raw)


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def admin_routes(ctx: MockContext) -> list[BaseRoute]:
    """The ``/__admin/*`` routes for *ctx*."""

    async def health(request: Request) -> Response:
        """Liveness: the mock answers and which services it mounts."""
        return JSONResponse({"ok": True, "services": ctx.services})

    async def requests(request: Request) -> Response:
        """The journal: every request in arrival order."""
        entries = ctx.journal.entries()
        since = request.query_params.get("since")
        if since is not None:
            try:
                after = int(since)
            except ValueError:
                return _bad("since must be an integer")
            entries = [e for e in entries if e["seq"] > after]
        pattern = request.query_params.get("path")
        if pattern is not None:
            try:
                regex = re.compile(pattern)
            except re.error as exc:
                return _bad(f"path is not a valid regex: {exc}")
            entries = [e for e in entries if regex.fullmatch(e["path"])]
        return JSONResponse({"requests": entries, "dropped": ctx.journal.dropped})

    async def tasks(request: Request) -> Response:
        """Every document the mock accepted, one entry per submission."""
        service = request.query_params.get("service")
        ctx.refresh()
        return JSONResponse({"tasks": ctx.ledger.entries(service)})

    async def faults_list(request: Request) -> Response:
        """The active fault rules with their counters."""
        return JSONResponse({"faults": [r.to_json() for r in ctx.faults.rules()]})

    async def faults_add(request: Request) -> Response:
        """Add a fault rule (SPEC format)."""
        try:
            rule = ctx.faults.add(FaultRule.from_json(await _json_body(request)))
        except (FaultError, ValueError) as exc:
            return _bad(str(exc))
        return JSONResponse(rule.to_json(), status_code=201)

    async def faults_clear(request: Request) -> Response:
        """Remove every fault rule."""
        ctx.faults.clear()
        return JSONResponse({"faults": []})

    async def fault_delete(request: Request) -> Response:
        """Remove one fault rule by id."""
        if not ctx.faults.remove(request.path_params["rule_id"]):
            return JSONResponse({"error": "no such fault rule"}, status_code=404)
        return JSONResponse({"deleted": request.path_params["rule_id"]})

    async def clock(request: Request) -> Response:
        """The mock's time and speed."""
        return JSONResponse({"now": ctx.clock.now(), "speed": ctx.clock.speed})

    async def clock_advance(request: Request) -> Response:
        """Move the mock's time forward by ``seconds``."""
        try:
            body = await _json_body(request)
            now = ctx.clock.advance(float(body["seconds"]))
        except (KeyError, TypeError, ValueError) as exc:
            return _bad(f"give {{'seconds': N}} with N >= 0 ({exc})")
        return JSONResponse({"now": now, "speed": ctx.clock.speed})

    async def clock_speed(request: Request) -> Response:
        """Change how fast mock time runs relative to real time."""
        try:
            body = await _json_body(request)
            ctx.clock.set_speed(float(body["speed"]))
        except (KeyError, TypeError, ValueError) as exc:
            return _bad(f"give {{'speed': S}} with S > 0 ({exc})")
        return JSONResponse({"now": ctx.clock.now(), "speed": ctx.clock.speed})

    async def config_get(request: Request) -> Response:
        """Every service's tunable settings (quotas, rates, processing times)."""
        return JSONResponse(ctx.settings)

    async def config_set(request: Request) -> Response:
        """Change settings: ``{service: {setting: value}}``."""
        try:
            body = await _json_body(request)
            if not isinstance(body, dict):
                raise KeyError("the body is an object {service: {setting: value}}")
            return JSONResponse(ctx.configure(body))
        except (KeyError, ValueError) as exc:
            return _bad(str(exc).strip("'\""))

    async def reset(request: Request) -> Response:
        """Back to a fresh mock (optionally with a new speed and settings)."""
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _bad(str(exc))
        speed = body.get("speed") if isinstance(body, dict) else None
        try:
            ctx.reset(speed=float(speed) if speed is not None else None)
            if isinstance(body, dict) and body.get("config"):
                ctx.configure(body["config"])
        except (KeyError, ValueError) as exc:
            return _bad(str(exc).strip("'\""))
        return JSONResponse({"ok": True, "now": ctx.clock.now(), "speed": ctx.clock.speed})

    async def openapi(request: Request) -> Response:
        """This document."""
        return JSONResponse(openapi_document(request.app.routes, str(request.base_url)))

    return [
        Route("/__admin/health", health, methods=["GET"]),
        Route("/__admin/requests", requests, methods=["GET"]),
        Route("/__admin/tasks", tasks, methods=["GET"]),
        Route("/__admin/faults", faults_list, methods=["GET"]),
        Route("/__admin/faults", faults_add, methods=["POST"]),
        Route("/__admin/faults", faults_clear, methods=["DELETE"]),
        Route("/__admin/faults/{rule_id}", fault_delete, methods=["DELETE"]),
        Route("/__admin/clock", clock, methods=["GET"]),
        Route("/__admin/clock/advance", clock_advance, methods=["POST"]),
        Route("/__admin/clock/speed", clock_speed, methods=["POST"]),
        Route("/__admin/config", config_get, methods=["GET"]),
        Route("/__admin/config", config_set, methods=["POST"]),
        Route("/__admin/reset", reset, methods=["POST"]),
        Route("/__admin/openapi.json", openapi, methods=["GET"]),
    ]


_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def _iter_routes(routes: list[BaseRoute], prefix: str = "") -> list[tuple[str, Route]]:
    out: list[tuple[str, Route]] = []
    for route in routes:
        if isinstance(route, Route):
            out.append((prefix + route.path, route))
        elif isinstance(route, Mount):
            out.extend(_iter_routes(list(route.routes), prefix + route.path))
    return out


def _tag(route: Route) -> str:
    """The package an endpoint belongs to: ``mockserver.<tag>[.module]``."""
    module = getattr(route.endpoint, "__module__", "") or ""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def openapi_document(routes: list[BaseRoute], server_url: str = "/") -> dict[str, Any]:
    """An OpenAPI 3.1 document built from the routes' paths, methods and docstrings.

    A service can say more about an operation by setting ``endpoint.openapi``
    to a dict (merged into the operation object), e.g. ``requestBody``.
    """
    paths: dict[str, dict[str, Any]] = {}
    for path, route in _iter_routes(routes):
        template = _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(path)
        ]
        doc = inspect.getdoc(route.endpoint) or route.name or ""
        summary, _, description = doc.partition("\n")
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            operation: dict[str, Any] = {
                "operationId": f"{_tag(route)}_{route.name}_{method.lower()}",
                "tags": [_tag(route)],
                "summary": summary.strip(),
                "responses": {"default": {"description": "see the service's documentation"}},
            }
            if description.strip():
                operation["description"] = description.strip()
            if params:
                operation["parameters"] = params
            extra = getattr(route.endpoint, "openapi", None)
            if isinstance(extra, dict):
                operation.update(extra)
            paths.setdefault(template, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "docinbox mock (Nanonets v2, MinerU v4, Aliyun OSS, docparse v1)",
            "version": "1",
        },
        "servers": [{"url": server_url.rstrip("/") or "/"}],
        "paths": dict(sorted(paths.items())),
    }
