"""httpcore's network layer on asyncio's own streams.

httpx's default network backend goes through anyio.  docinbox only ever runs on asyncio,
and anyio's per-call checkpoints, cancel scopes and socket-attribute lookups (each
connection's "is it still alive?" check builds a dict of them) cost about a tenth of the
daemon's CPU per document on the one-small-request-per-document path (bench/README.md).
This backend does the same job with asyncio streams: same timeouts, same httpcore
exceptions, TLS through ``StreamWriter.start_tls``.

It needs Python 3.11 (``asyncio.timeout``, ``StreamWriter.start_tls``); on older
Pythons :func:`transport` falls back to httpx's default.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
import sys
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

#: what httpcore asks get_extra_info for → the asyncio transport's name for it
_EXTRA = {"ssl_object": "ssl_object", "client_addr": "sockname", "server_addr": "peername"}


def _readable(sock: Any) -> bool:
    """A kept-alive connection with something to read (data, or the EOF of a server that
    closed it) must not be reused: httpcore's own check, without its anyio detour."""
    if sock is None or sock.fileno() < 0:
        return True
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([sock.fileno()], [], [], 0)[0])


class _Mapped:
    """``asyncio.timeout(timeout)`` whose failures leave as httpcore's exceptions (httpx
    turns those into its own, and ``http.send`` into docinbox's NetworkError)."""

    __slots__ = ("_cm", "_on_error", "_on_timeout", "_timeout")

    def __init__(self, timeout: float | None, on_timeout: type[Exception],
                 on_error: type[Exception]) -> None:
        self._timeout, self._on_timeout, self._on_error = timeout, on_timeout, on_error

    async def __aenter__(self) -> None:
        self._cm = asyncio.timeout(self._timeout)
        await self._cm.__aenter__()

    async def __aexit__(self, typ: Any, exc: Any, tb: Any) -> None:
        try:
            await self._cm.__aexit__(typ, exc, tb)  # our deadline passed: TimeoutError
        except TimeoutError as expired:
            raise self._on_timeout("timed out") from expired
        if isinstance(exc, TimeoutError):
            raise self._on_timeout(str(exc) or "timed out") from exc
        if isinstance(exc, OSError):  # ssl.SSLError (a certificate refused) included
            raise self._on_error(str(exc)) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._sock = writer.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        async with _Mapped(timeout, httpcore.ReadTimeout, httpcore.ReadError):
            return await self._reader.read(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        async with _Mapped(timeout, httpcore.WriteTimeout, httpcore.WriteError):
            self._writer.write(buffer)
            await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        try:
            async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except (httpcore.ConnectTimeout, httpcore.ConnectError):
            self._writer.close()
            raise
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._sock)
        if info == "socket":
            return self._sock
        return self._writer.get_extra_info(_EXTRA[info]) if info in _EXTRA else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None
                          ) -> httpcore.AsyncNetworkStream:
        local = (local_address, 0) if local_address else None
        async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_connection(host, port, local_addr=local)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():
                sock.setsockopt(*option)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None
                                  ) -> httpcore.AsyncNetworkStream:
        async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_unix_connection(path)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def transport(limits: httpx.Limits, *, verify: ssl.SSLContext | bool = True
              ) -> httpx.AsyncHTTPTransport:
    """httpx's transport with its connection pool on :class:`AsyncioBackend` (Python 3.11+).

    httpx does not take a network backend, its pool does: the pool httpx built is swapped
    for the same pool on this backend (tests/daemon/test_netstream.py checks it is used)."""
    ssl_context = httpx.create_ssl_context(verify=verify)  # loading the CAs once, not twice
    t = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    if sys.version_info >= (3, 11):
        t._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )
    return t
