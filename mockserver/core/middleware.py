"""The layer below every service: journal each request, then serve it or fault it.

It runs as the outermost ASGI layer (see :class:`mockserver.app.MockApp`) so that it
sees the server's own ``send`` — the only way to reach the socket and really reset a
TCP connection under uvicorn: uvicorn's ``send`` is a bound method of its
``RequestResponseCycle``, whose ``transport`` :func:`transport_of` takes.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import MockContext
from .faultreplies import apply_fault


def transport_of(send: Send) -> Any | None:
    """uvicorn's asyncio transport behind *send*, when there is one."""
    cycle = getattr(send, "__self__", None)
    return getattr(cycle, "transport", None)


async def journal_and_faults(
    ctx: MockContext, scope: Scope, receive: Receive, send: Send, inner: ASGIApp
) -> None:
    """Record the request, then serve it — through a fault rule if one fires."""
    method: str = scope["method"]
    path: str = scope["path"]
    raw_headers = scope.get("headers", [])
    entry = ctx.journal.add(
        method,
        path,
        scope.get("query_string", b"").decode("latin-1"),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw_headers],
    )

    async def recording_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            entry["status"] = message["status"]
        await send(message)

    rule = ctx.faults.pick(method, path)
    if rule is None:
        await inner(scope, receive, recording_send)
        return
    entry["fault"] = rule.fault
    await apply_fault(ctx, rule, scope, receive, recording_send, inner)
