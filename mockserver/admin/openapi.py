"""``GET /__admin/openapi.json``: an OpenAPI 3.1 document built from the app's routes."""

from __future__ import annotations

import inspect
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route


async def openapi(request: Request) -> Response:
    """This document."""
    return JSONResponse(openapi_document(request.app.routes, str(request.base_url)))


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
