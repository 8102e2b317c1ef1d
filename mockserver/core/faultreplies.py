"""What each kind of fault sends instead of (or around) the service's answer.

Fault ``seconds`` are real seconds (they exercise client timeouts, which are real),
unlike service durations, which run on the mock clock.

Under uvicorn a fault can really break the connection: :func:`drop_connection` takes
the asyncio transport the server's ``send`` belongs to (see
:mod:`mockserver.core.middleware`); ``SO_LINGER (on, 0)`` plus ``abort()`` makes the
kernel send a RST instead of a FIN, which the client sees as ``ECONNRESET``. In-process
(httpx ``ASGITransport``, Starlette ``TestClient``) there is no socket: ``reset``,
``hang`` and ``truncate`` then raise :class:`InjectedDisconnect`, which those transports
hand to the client as an exception — the nearest thing to a broken connection.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import socket
import struct
import time
import uuid
from collections.abc import Awaitable, Callable
from http import HTTPStatus

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import MockContext
from .faults import FaultRule

#: Where :class:`mockserver.app.MockApp` puts uvicorn's transport in the ASGI scope.
TRANSPORT_KEY = "docinbox.transport"
HANG_DEFAULT_SECONDS = None  # forever: until the client goes away or the server stops
DRIBBLE_DEFAULT_SECONDS = 2.0

HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class InjectedDisconnect(ConnectionResetError):
    """Raised in-process where a real server would drop the connection."""


def oss_expired_xml(
    *,
    host: str = "mock-bucket.oss-cn-shanghai.aliyuncs.com",
    expires: str = "",
    server_time: str = "",
) -> bytes:
    """The body Aliyun OSS sends for an expired presigned URL (403 AccessDenied).

    The ``expire`` fault's answer; client tests reuse it as a sample of that error.
    """
    request_id = uuid.uuid4().hex[:24].upper()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error>\n"
        "  <Code>AccessDenied</Code>\n"
        "  <Message>Request has expired.</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n"
        f"  <HostId>{host}</HostId>\n"
        f"  <Expires>{expires}</Expires>\n"
        f"  <ServerTime>{server_time}</ServerTime>\n"
        "  <EC>0002-00000069</EC>\n"
        "</Error>\n"
    ).encode()


def iso_utc(ts: float) -> str:
    """``2025-12-23T10:00:00.000Z`` — the timestamp format OSS errors use."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


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


class _Request:
    """One faulted request: what a reply needs to answer it."""

    def __init__(
        self,
        ctx: MockContext,
        rule: FaultRule,
        scope: Scope,
        receive: Receive,
        send: Send,
        inner: ASGIApp,
    ) -> None:
        self.ctx, self.rule, self.inner = ctx, rule, inner
        self.scope, self.receive, self.send = scope, receive, send


async def _status(r: _Request) -> None:
    """A plain error status (``retry_after`` as ``Retry-After``) with a JSON body."""
    status = int(r.rule.status or 500)
    extra = []
    if r.rule.retry_after is not None:
        extra.append(("retry-after", _retry_after_value(r.rule.retry_after)))
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    body = json.dumps({"message": phrase}).encode()
    await _send_simple(r.send, status, body, "application/json", extra)


async def _html502(r: _Request) -> None:
    """nginx's 502 page: what a proxy in front of the service says when it is down."""
    await _send_simple(r.send, 502, HTML_502, "text/html", [("server", "nginx")])


async def _malformed(r: _Request) -> None:
    """A 200 whose JSON is cut off: the service "answered", the body is garbage."""
    body = b'{"message": "Success", "result": [{"message": "Succ'
    await _send_simple(r.send, r.rule.status or 200, body, "application/json", [])


async def _expire(r: _Request) -> None:
    """403 as OSS answers a presigned URL past its expiry."""
    now = r.ctx.clock.now()
    body = oss_expired_xml(expires=iso_utc(now - 60), server_time=iso_utc(now))
    headers = [("server", "AliyunOSS"), ("x-oss-request-id", email.utils.make_msgid()[1:25])]
    await _send_simple(r.send, 403, body, "application/xml", headers)


async def _reset(r: _Request) -> None:
    """Reset the connection before answering."""
    await drop_connection(r.scope, r.receive, rst=True)


async def _delay(r: _Request) -> None:
    """Wait ``seconds``, then let the service answer."""
    await anyio.sleep(r.rule.seconds or 0.0)
    await r.inner(r.scope, r.receive, r.send)


async def _hang(r: _Request) -> None:
    """Say nothing for ``seconds`` (default: until the client leaves), then hang up."""
    seconds = r.rule.seconds
    deadline = None if seconds is None else anyio.current_time() + seconds
    gone = anyio.Event()

    async def watch() -> None:
        while True:
            message = await r.receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        while not gone.is_set() and not r.ctx.closing.is_set():
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
    transport = r.scope.get(TRANSPORT_KEY)
    if transport is None:
        raise InjectedDisconnect("mock fault: hung up without answering")
    transport.close()
    await _drain_until_disconnect(r.receive)


async def _dribble(r: _Request) -> None:
    """Send the real response, its body spread thinly over ``seconds``."""
    captured = _Captured()
    await r.inner(r.scope, r.receive, captured.send)
    assert captured.start is not None
    await r.send({**captured.start, "headers": captured.headers_with_length()})
    body = bytes(captured.body)
    chunks = max(1, min(len(body), 20))
    size = -(-len(body) // chunks) if body else 0
    pause = (r.rule.seconds or DRIBBLE_DEFAULT_SECONDS) / chunks
    for i in range(chunks):
        await anyio.sleep(pause)
        piece = body[i * size : (i + 1) * size]
        await r.send({"type": "http.response.body", "body": piece, "more_body": i < chunks - 1})


async def _truncate(r: _Request) -> None:
    """Send the real response's headers and half its body, then close the connection."""
    captured = _Captured()
    await r.inner(r.scope, r.receive, captured.send)
    assert captured.start is not None
    await r.send({**captured.start, "headers": captured.headers_with_length()})
    half = bytes(captured.body[: len(captured.body) // 2])
    await r.send({"type": "http.response.body", "body": half, "more_body": True})
    await drop_connection(r.scope, r.receive, rst=False)


#: One reply per fault kind (:data:`mockserver.core.faults.FAULT_KINDS`).
REPLIES: dict[str, Callable[[_Request], Awaitable[None]]] = {
    "status": _status,
    "reset": _reset,
    "delay": _delay,
    "hang": _hang,
    "dribble": _dribble,
    "malformed": _malformed,
    "html502": _html502,
    "truncate": _truncate,
    "expire": _expire,
}


async def apply_fault(
    ctx: MockContext,
    rule: FaultRule,
    scope: Scope,
    receive: Receive,
    send: Send,
    inner: ASGIApp,
) -> None:
    """Answer a request the way *rule* says instead of (or around) the service."""
    await REPLIES[rule.fault](_Request(ctx, rule, scope, receive, send, inner))
