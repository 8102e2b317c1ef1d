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

One handler per endpoint, found by area: :mod:`~mockserver.admin.observe` (health,
journal, tasks), :mod:`~mockserver.admin.faults`, :mod:`~mockserver.admin.clock`,
:mod:`~mockserver.admin.settings` (config, reset), :mod:`~mockserver.admin.openapi`.
Handlers reach the mock's :class:`~mockserver.core.context.MockContext` through the app
(:func:`~mockserver.admin.common.context`), so the route list is fixed.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from .clock import clock, clock_advance, clock_speed
from .faults import fault_delete, faults_add, faults_clear, faults_list
from .observe import health, requests, tasks
from .openapi import openapi
from .settings import config_get, config_set, reset


def routes() -> list[BaseRoute]:
    """The ``/__admin/*`` routes (admin requests are neither journaled nor faulted)."""
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
