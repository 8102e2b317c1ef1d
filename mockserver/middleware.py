"""Journal every request and apply fault rules, below every service.

This runs as the outermost ASGI layer (see :class:`mockserver.app.MockApp`) so
that it sees the server's own ``send`` — the only way to reach the socket and
really reset a TCP connection under uvicorn: uvicorn's ``send`` is a bound
method of its ``RequestResponseCycle``, whose ``transport`` we take. Setting
``SO_LINGER`` to ``(on, 0)`` and aborting the transport makes the kernel send a
RST instead of a FIN, which the client sees as ``ECONNRESET``.

When the app runs in-process (httpx ``ASGITransport``, Starlette ``TestClient``)
there is no socket: ``reset``, ``hang`` and ``truncate`` then raise
:class:`InjectedDisconnect`, which those transports hand to the client as an
exception — the nearest thing to a broken connection.

Fault ``seconds`` are real seconds (they exercise client timeouts, which are
real), unlike service durations, which run on the mock clock.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import struct
from http import HTTPStatus
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .core import FaultRule, MockContext, iso_utc, oss_expired_xml

TRANSPORT_KEY = "docinbox.transport"
HANG_DEFAULT_SECONDS = None  # forever: until the client goes away or the server stops
DRIBBLE_DEFAULT_SECONDS = 2.0


class InjectedDisconnect(ConnectionResetError):
    """Raised in-process where a real server would drop the connection."""


def transport_of(send: Send) -> Any | None:
    """uvicorn's asyncio transport behind *send*, when there is one."""
    cycle = getattr(send, "__self__", None)
    return getattr(cycle, "transport", None)


def _retry_after_value(value: float | str) -> str:
    if isinstance(value, str):
        return value
    if float(value).is_integer():
        return str(int(value))
    return str(value)


async def _drain_until_disconnect(receive: Receive, timeout: float = 2.0) -> None:
    """Wait until the server has noticed the closed connection (so it logs nothing)."""
    with anyio.move_on_after(timeout):
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return


async def drop_connection(scope: Scope, receive: Receive, *, rst: bool) -> None:
    """Close the client's connection without (the rest of) a response.

    ``rst=True`` resets it (RST, ``ECONNRESET`` on the client), otherwise a
    plain close (FIN: the client sees the response end early / EOF).
    """
    transport = scope.get(TRANSPORT_KEY)
    if transport is None:
        raise InjectedDisconnect("mock fault: connection dropped")
    if rst:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()
    await _drain_until_disconnect(receive)


async def _send_simple(
    send: Send, status: int, body: bytes, content_type: str, extra: list[tuple[str, str]]
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ] + [(k.encode(), v.encode()) for k, v in extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class _Captured:
    """A whole response of the inner app, held so a fault can mangle it."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = bytearray()

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def headers_with_length(self) -> list[tuple[bytes, bytes]]:
        assert self.start is not None
        headers = [
            (k, v)
            for k, v in self.start.get("headers", [])
            if k.lower() not in (b"content-length", b"transfer-encoding")
        ]
        headers.append((b"content-length", str(len(self.body)).encode()))
        return headers


HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


async def apply_fault(
    ctx: MockContext,
    rule: FaultRule,
    scope: Scope,
    receive: Receive,
    send: Send,
    inner: ASGIApp,
) -> None:
    """Answer a request the way *rule* says instead of (or around) the service."""
    kind = rule.fault
    if kind == "status":
        status = int(rule.status or 500)
        extra = []
        if rule.retry_after is not None:
            extra.append(("retry-after", _retry_after_value(rule.retry_after)))
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = json.dumps({"message": phrase}).encode()
        await _send_simple(send, status, body, "application/json", extra)
    elif kind == "html502":
        await _send_simple(send, 502, HTML_502, "text/html", [("server", "nginx")])
    elif kind == "malformed":
        # A 200 whose JSON is cut off: the service "answered", the body is garbage.
        body = b'{"message": "Success", "result": [{"message": "Succ'
        await _send_simple(send, rule.status or 200, body, "application/json", [])
    elif kind == "expire":
        now = ctx.clock.now()
        body = oss_expired_xml(expires=iso_utc(now - 60), server_time=iso_utc(now))
        await _send_simple(
            send,
            403,
            body,
            "application/xml",
            [("server", "AliyunOSS"), ("x-oss-request-id", email.utils.make_msgid()[1:25])],
        )
    elif kind == "reset":
        await drop_connection(scope, receive, rst=True)
    elif kind == "delay":
        await anyio.sleep(rule.seconds or 0.0)
        await inner(scope, receive, send)
    elif kind == "hang":
        await _hang(ctx, rule, scope, receive)
    elif kind == "dribble":
        captured = _Captured()
        await inner(scope, receive, captured.send)
        await _dribble(captured, send, rule.seconds or DRIBBLE_DEFAULT_SECONDS)
    elif kind == "truncate":
        captured = _Captured()
        await inner(scope, receive, captured.send)
        assert captured.start is not None
        await send({**captured.start, "headers": captured.headers_with_length()})
        half = bytes(captured.body[: len(captured.body) // 2])
        await send({"type": "http.response.body", "body": half, "more_body": True})
        await drop_connection(scope, receive, rst=False)
    else:  # pragma: no cover - FaultRule validates kinds
        raise AssertionError(kind)


async def _hang(ctx: MockContext, rule: FaultRule, scope: Scope, receive: Receive) -> None:
    """Say nothing for ``seconds`` (default: until the client leaves), then hang up."""
    deadline = None if rule.seconds is None else anyio.current_time() + rule.seconds
    transport = scope.get(TRANSPORT_KEY)
    gone = anyio.Event()

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        while not gone.is_set() and not ctx.closing.is_set():
            step = 0.05
            if deadline is not None:
                left = deadline - anyio.current_time()
                if left <= 0:
                    break
                step = min(step, left)
            with anyio.move_on_after(step):
                await gone.wait()
        tg.cancel_scope.cancel()
    if gone.is_set():
        return
    if transport is None:
        raise InjectedDisconnect("mock fault: hung up without answering")
    transport.close()
    await _drain_until_disconnect(receive)


async def _dribble(captured: _Captured, send: Send, seconds: float) -> None:
    """Send the real response, its body spread thinly over *seconds*."""
    assert captured.start is not None
    await send({**captured.start, "headers": captured.headers_with_length()})
    body = bytes(captured.body)
    chunks = max(1, min(len(body), 20))
    size = -(-len(body) // chunks) if body else 0
    pause = seconds / chunks
    for i in range(chunks):
        await anyio.sleep(pause)
        piece = body[i * size : (i + 1) * size]
        await send({"type": "http.response.body", "body": piece, "more_body": i < chunks - 1})


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
