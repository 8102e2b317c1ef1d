"""The mock as one Starlette app: every service under one base URL, plus ``/__admin/``.

Each service is a package of :mod:`mockserver` whose ``routes(ctx)`` returns its routes;
:data:`SERVICES` lists them, in mount order. Adding a service is one package and one
line there.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from . import admin, docparse, mineru, nanonets, oss, parsio
from .core.context import MockContext
from .core.faultreplies import TRANSPORT_KEY
from .core.middleware import journal_and_faults, transport_of

#: The services, in mount order (first match wins on equal paths): name → routes(ctx).
SERVICES: tuple[tuple[str, Callable[[MockContext], list[BaseRoute]]], ...] = (
    ("nanonets", nanonets.routes),
    ("mineru", mineru.routes),
    ("oss", oss.routes),
    ("docparse", docparse.routes),
    ("parsio", parsio.routes),
)


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


def create_app(ctx: MockContext | None = None, *, speed: float = 1.0) -> Starlette:
    """A fresh mock app; ``app.state.mock`` (and ``app.mock``) is its context."""
    if ctx is None:
        ctx = MockContext(speed=speed)
    routes: list[BaseRoute] = []
    for _name, service_routes in SERVICES:
        routes.extend(service_routes(ctx))
    ctx.services = [name for name, _routes in SERVICES]
    app = MockApp(routes=[*admin.routes(), *routes])
    app.mock = ctx
    app.state.mock = ctx
    return app
