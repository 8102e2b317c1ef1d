"""The mock as one Starlette app: every service under one base URL, plus ``/__admin/``.

Each service module exposes ``routes(ctx) -> list[BaseRoute]``. Nanonets is
always mounted; ``mineru``, ``oss`` and ``docparse`` are mounted when their
module exists and has ``routes`` (so the app works while they are being built).
"""

from __future__ import annotations

import importlib
import logging

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from .admin import admin_routes
from .core.context import MockContext
from .core.faultreplies import TRANSPORT_KEY
from .core.middleware import journal_and_faults, transport_of

log = logging.getLogger("mockserver")

#: Service modules in mount order (first match wins on equal paths).
SERVICE_MODULES = ("nanonets", "mineru", "oss", "docparse")


class MockApp(Starlette):
    """Starlette with the journal/fault layer outside everything else.

    It must be outermost to see the server's own ``send`` (and through it the
    socket, for ``reset``) and to journal even requests Starlette rejects.
    """

    mock: MockContext

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = transport_of(send)
            if transport is not None:
                scope[TRANSPORT_KEY] = transport
            if not scope["path"].startswith("/__admin/"):
                await journal_and_faults(self.mock, scope, receive, send, super().__call__)
                return
        await super().__call__(scope, receive, send)


def _service_routes(ctx: MockContext) -> tuple[list[BaseRoute], list[str]]:
    routes: list[BaseRoute] = []
    mounted: list[str] = []
    for name in SERVICE_MODULES:
        qualified = f"{__package__}.{name}"
        try:
            module = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name == qualified:
                log.debug("service %s not present; not mounted", name)
                continue
            raise
        factory = getattr(module, "routes", None)
        if factory is None:
            continue
        routes.extend(factory(ctx))
        mounted.append(name)
    return routes, mounted


def create_app(ctx: MockContext | None = None, *, speed: float = 1.0) -> Starlette:
    """A fresh mock app; ``app.state.mock`` (and ``app.mock``) is its context."""
    if ctx is None:
        ctx = MockContext(speed=speed)
    routes, mounted = _service_routes(ctx)
    ctx.services = mounted
    app = MockApp(routes=[*admin_routes(ctx), *routes])
    app.mock = ctx
    app.state.mock = ctx
    return app
