"""The asyncio network backend under httpx: real sockets on loopback, plain and TLS, and
the failures docinbox maps to its errors (refused, timed out, a kept-alive connection the
server closed, a certificate that is not trusted)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from daemon.errors import NetworkError
from daemon.services import http, netstream

pytestmark = pytest.mark.skipif(sys.version_info < (3, 11),
                                reason="the asyncio backend needs Python 3.11; httpx's "
                                       "default is used before")

def sync(fn: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """Run an async test on a fresh event loop (no pytest-asyncio here)."""
    def test() -> None:
        asyncio.run(fn())  # type: ignore[arg-type]
    test.__name__ = fn.__name__
    return test


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def _answer(body: bytes, *, close: bool = False) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + (b"\r\nConnection: close" if close else b"")
            + b"\r\n\r\n" + body)


@asynccontextmanager
async def server(handler: Handler, ssl_context: ssl.SSLContext | None = None
                 ) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def client(url: str, timeout: float = 5.0, verify: ssl.SSLContext | bool = True
           ) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    return httpx.AsyncClient(base_url=url, transport=netstream.transport(limits, verify=verify),
                             timeout=timeout)


def test_the_services_clients_use_it() -> None:
    c = http.make_client("http://127.0.0.1:9", timeout=5, transport=None, max_connections=2)
    assert isinstance(c._transport._pool._network_backend,  # type: ignore[attr-defined]
                      netstream.AsyncioBackend)


@sync
async def test_keep_alive_and_a_connection_the_server_closed() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)  # one answer per connection, then the server hangs up
        writer.write(_answer(b'{"n": %d}' % connections))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async with server(handler) as port, client(f"http://127.0.0.1:{port}") as c:
        first = await c.post("/a", content=b"x" * 100_000)
        assert first.json() == {"n": 1}
        # wait until the kept-alive connection has been closed by the server
        for _ in range(200):
            if connections and netstream._readable(
                    c._transport._pool.connections[0]._connection._network_stream  # type: ignore[attr-defined]
                    .get_extra_info("socket")):
                break
            await asyncio.sleep(0.01)
        second = await c.get("/b")  # not sent down the dead connection
        assert second.json() == {"n": 2} and connections == 2


@sync
async def test_tls_with_a_trusted_and_an_untrusted_certificate() -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            writer.write(_answer(b'{"tls": true}', close=True))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the untrusting client hangs up during the handshake
        finally:
            writer.close()

    async with server(handler, server_ctx) as port:
        async with client(f"https://localhost:{port}", verify=client_ctx) as c:
            assert (await c.get("/")).json() == {"tls": True}
        async with client(f"https://localhost:{port}") as c:  # the system's CAs only
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.get("/")


@sync
async def test_refused_and_timed_out_become_network_errors() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]  # nothing listens once this is closed
    async with client(f"http://127.0.0.1:{closed_port}") as c:
        with pytest.raises(NetworkError, match="failed"):
            await http.send(c, "GET", "/", service="test")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with server(silent) as port, client(f"http://127.0.0.1:{port}", timeout=0.2) as c:
        with pytest.raises(NetworkError, match="timed out"):
            await http.send(c, "GET", "/", service="test")
