"""docinbox's transport (httpcore's pool on asyncio streams, public API only): real
sockets on loopback, plain and TLS, through HTTP and SOCKS5 proxies, and the failures
docinbox maps to its errors (refused, timed out, a kept-alive connection the server
closed, a certificate that is not trusted, a proxy that says no)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import sys
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpcore
import httpx
import pytest

from daemon.errors import AnswerTooLarge, AnswerTooSlow, NetworkError
from daemon.services import http, netstream
from tests.acceptance.test_network import ForwardProxy

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11),
    reason="the asyncio backend needs Python 3.11; httpcore's default backend is used before",
)


def sync(fn: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop (no pytest-asyncio here); its fixtures
    are seen through ``__wrapped__``."""

    @functools.wraps(fn)
    def test(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))  # type: ignore[arg-type]

    return test


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=2, max_keepalive_connections=2)


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


def _answer(body: bytes, *, close: bool = False) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + (b"\r\nConnection: close" if close else b"")
        + b"\r\n\r\n"
        + body
    )


async def echo_path(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers every request on the connection with its request line, as JSON."""
    try:
        while True:
            head = await _read_request(reader)
            line = head.split(b"\r\n", 1)[0].decode()
            writer.write(_answer(b'{"line": "%s"}' % line.encode()))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


@asynccontextmanager
async def server(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[int]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ssl_context)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def client(
    url: str, timeout: float = 5.0, verify: ssl.SSLContext | None = None, proxy: str | None = None
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=url,
        timeout=timeout,
        transport=netstream.transport(LIMITS, verify=verify, proxy=proxy),
    )


class RecordingBackend(netstream.AsyncioBackend):
    """The asyncio backend, keeping every stream it opened (to look at, never to steer)."""

    def __init__(self) -> None:
        self.streams: list[httpcore.AsyncNetworkStream] = []

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        stream = await super().connect_tcp(*args, **kwargs)
        self.streams.append(stream)
        return stream


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context for "localhost", client context trusting its CA) from trustme."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    return server_ctx, client_ctx


def test_the_services_clients_use_the_asyncio_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[tuple[str, int]] = []
    connect = netstream.AsyncioBackend.connect_tcp

    async def counting(
        self: netstream.AsyncioBackend, host: str, port: int, *args: Any, **kwargs: Any
    ) -> httpcore.AsyncNetworkStream:
        opened.append((host, port))
        return await connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(netstream.AsyncioBackend, "connect_tcp", counting)

    async def go() -> None:
        async with server(echo_path) as port:
            c = http.make_client(
                f"http://127.0.0.1:{port}", timeout=5, transport=None, max_connections=2
            )
            async with c:
                assert (await c.get("/a")).json() == {"line": "GET /a HTTP/1.1"}
                assert (await c.get("/b")).status_code == 200
            assert opened == [("127.0.0.1", port)]  # one connection, kept alive

    asyncio.run(go())


@sync
async def test_keep_alive_and_a_connection_the_server_closed() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await _read_request(reader)  # one answer per connection, then the server hangs up
        writer.write(_answer(b'{"n": %d}' % connections))
        await writer.drain()
        writer.close()

    backend = RecordingBackend()
    transport = netstream.Transport(LIMITS, netstream.ssl_context(), backend=backend)
    async with (
        server(handler) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", transport=transport) as c,
    ):
        first = await c.post("/a", content=b"x" * 100_000)
        assert first.json() == {"n": 1}
        # until the server's close has reached the kept-alive connection (a deadline)
        for _ in range(500):
            if backend.streams[0].get_extra_info("is_readable"):
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the server's close never reached the client")
        second = await c.get("/b")  # not sent down the dead connection
        assert second.json() == {"n": 2} and connections == 2
        assert len(backend.streams) == 2


@sync
async def test_tls_with_a_trusted_and_an_untrusted_certificate(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls
    async with server(echo_path, server_ctx) as port:
        async with client(f"https://localhost:{port}", verify=client_ctx) as c:
            assert (await c.get("/")).json() == {"line": "GET / HTTP/1.1"}
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


# --- proxies -------------------------------------------------------------------------------


@sync
async def test_plain_http_is_forwarded_through_the_proxy() -> None:
    with ForwardProxy() as proxy:
        async with (
            server(echo_path) as port,
            client(f"http://127.0.0.1:{port}", proxy=proxy.url) as c,
        ):
            answer = await c.post("/api/v2/x?q=1", content=b"body")
            assert answer.json() == {"line": "POST /api/v2/x?q=1 HTTP/1.1"}
        assert proxy.log == [("POST", f"http://127.0.0.1:{port}/api/v2/x?q=1")]


@sync
async def test_https_is_tunnelled_with_connect(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls
    with ForwardProxy() as proxy:
        async with (
            server(echo_path, server_ctx) as port,
            client(f"https://localhost:{port}", verify=client_ctx, proxy=proxy.url) as c,
        ):
            assert (await c.get("/one")).json() == {"line": "GET /one HTTP/1.1"}
            assert (await c.get("/two")).status_code == 200  # the same tunnel, kept alive
        assert proxy.log == [("CONNECT", f"localhost:{port}")]


@sync
async def test_proxy_credentials_from_the_url() -> None:
    with ForwardProxy(auth="ana:s3cret") as proxy:
        async with server(echo_path) as port:
            url = f"http://127.0.0.1:{port}"
            async with client(url, proxy=proxy.url.replace("//", "//ana:s3cret@")) as c:
                assert (await c.get("/")).status_code == 200
            async with client(url, proxy=proxy.url) as c:  # none: the proxy's 407 comes back
                assert (await c.get("/")).status_code == 407
        assert proxy.refused == [("GET", f"{url}/")] and len(proxy.log) == 1


@sync
async def test_a_refused_connect_is_a_network_error_naming_the_proxy(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """The proxy says 407 to CONNECT: no TLS to the service; a retryable NetworkError whose
    message says it happened at the proxy, and which proxy (its password hidden)."""
    with ForwardProxy(auth="ana:right") as proxy:
        proxy_url = proxy.url.replace("//", "//ana:wrong@")
        transport = http.network_transport(LIMITS, http.proxies(proxy_url, environ={}))
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(NetworkError) as caught:
                await http.send(c, "GET", "https://docinbox.test/", service="test")
    assert "407" in caught.value.message
    assert "through the proxy http://ana:***@127.0.0.1" in caught.value.message
    assert "wrong" not in caught.value.message
    assert proxy.refused == [("CONNECT", "docinbox.test:443")]


@sync
async def test_socks5_proxy() -> None:
    targets: list[tuple[str, int]] = []

    async def socks5(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 1928, no authentication, CONNECT only: just what a client needs."""
        try:
            _, n = await reader.readexactly(2)
            await reader.readexactly(n)
            writer.write(b"\x05\x00")
            _, _, _, kind = await reader.readexactly(4)
            if kind == 1:
                host = socket.inet_ntoa(await reader.readexactly(4))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            port = int.from_bytes(await reader.readexactly(2), "big")
            targets.append((host, port))
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
            await asyncio.gather(
                ForwardProxy._pipe(reader, up_writer), ForwardProxy._pipe(up_reader, writer)
            )
            up_writer.close()
        finally:
            writer.close()

    async with (
        server(echo_path) as port,
        server(socks5) as socks_port,
        client(f"http://localhost:{port}", proxy=f"socks5://127.0.0.1:{socks_port}") as c,
    ):
        assert (await c.get("/s")).json() == {"line": "GET /s HTTP/1.1"}
    assert targets == [("localhost", port)]


def test_one_ssl_context_per_process() -> None:
    assert netstream.ssl_context() is netstream.ssl_context()
    a, b = netstream.transport(LIMITS), netstream.transport(LIMITS, proxy="http://p:1")
    assert a.ssl_context is b.ssl_context is netstream.ssl_context()


# --- hostile answers: a deadline for the whole exchange, a cap on its size ----------------------

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


def service_client(port: int, timeout: float) -> httpx.AsyncClient:
    """What a service uses (``http.make_client``), with ONE connection: a request left
    hanging would keep the next from ever starting."""
    return http.make_client(
        f"http://127.0.0.1:{port}", timeout=timeout, transport=None, max_connections=1
    )


async def _until_hung_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Write one byte at a time (every 0.1 s, well inside any per-read timeout) until the
    client hangs up."""
    try:
        while not reader.at_eof():
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.1)
    except ConnectionError:
        pass


@sync
async def test_a_trickling_answer_is_cut_at_its_deadline_and_the_slot_freed() -> None:
    hung_up = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await _read_request(reader)
                if head.startswith(b"GET /fast "):
                    writer.write(_answer(b'{"ok": true}'))
                    await writer.drain()
                    continue
                writer.write(HEAD + b"Content-Length: 100000\r\n\r\n")
                await _until_hung_up(reader, writer)
                hung_up.set()
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with server(handler) as port, service_client(port, timeout=0.5) as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(AnswerTooSlow, match=r"did not complete within 1\.5 s") as info:
            # on a per-read timeout alone this would take 100,000 × 0.1 s
            await asyncio.wait_for(http.send(c, "GET", "/slow", service="svc"), 10)
        assert 1.4 < loop.time() - start < 5
        assert info.value.retryable and info.value.code == "too_slow"
        await asyncio.wait_for(hung_up.wait(), 5)  # the connection was closed, not parked
        # the one connection is free again: the next request goes through at once
        response = await asyncio.wait_for(http.send(c, "GET", "/fast", service="svc"), 5)
        assert response.json() == {"ok": True}


@sync
async def test_headers_and_then_silence_do_not_hold_the_slot() -> None:
    hung_up = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(HEAD + b"Content-Length: 10\r\n\r\n")
        await writer.drain()
        with contextlib.suppress(ConnectionError):
            await reader.read()  # nothing more, until the client hangs up
        hung_up.set()
        writer.close()

    async with server(handler) as port, service_client(port, timeout=0.5) as c:
        with pytest.raises(NetworkError):
            await asyncio.wait_for(http.send(c, "GET", "/", service="svc"), 10)
        await asyncio.wait_for(hung_up.wait(), 5)


@sync
async def test_the_deadline_grows_with_the_upload() -> None:
    """An upload buys time at the minimum rate: the same slow answer that cuts a GET
    completes after a 128 KiB POST (4 s more at 32 KiB/s)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await _read_request(reader)
                writer.write(HEAD + b"Content-Length: 30\r\n\r\n")
                for _ in range(30):  # 3 s for the body, a byte every 0.1 s
                    writer.write(b" ")
                    await writer.drain()
                    await asyncio.sleep(0.1)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async with server(handler) as port, service_client(port, timeout=1.0) as c:
        with pytest.raises(AnswerTooSlow, match=r"within 2\.0 s"):
            await asyncio.wait_for(http.send(c, "GET", "/", service="svc"), 10)
        response = await asyncio.wait_for(
            http.send(c, "POST", "/", service="svc", content=b"x" * 128 * 1024), 10
        )
        assert response.content == b" " * 30


@sync
async def test_a_huge_answer_is_refused_while_it_streams() -> None:
    """A server that would send 48 MiB: the client stops at its 1 MiB cap and hangs up;
    what the server got out before noticing is the cap plus the sockets' buffers."""
    total = 48 * 1024 * 1024
    sent = 0
    done = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await _read_request(reader)
        writer.write(HEAD + b"Connection: close\r\n\r\n")  # no length: until the close
        piece = b"[" + b"1," * 32767 + b"1"
        try:
            while sent < total:
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
        except ConnectionError:
            pass
        finally:
            done.set()
            writer.close()

    tracemalloc.start()
    try:
        async with server(handler) as port, service_client(port, timeout=5) as c:
            with pytest.raises(AnswerTooLarge, match="exceeded 1 MB"):
                await http.send(c, "GET", "/", service="svc", max_bytes=1024 * 1024)
            peak = tracemalloc.get_traced_memory()[1]
            await asyncio.wait_for(done.wait(), 10)
    finally:
        tracemalloc.stop()
    assert sent < total / 2  # the client hung up early (~5 MiB on loopback)
    assert peak < 8 * 1024 * 1024  # what the client held never grew past a few MiB
