"""docinbox's httpx transport: httpcore's connection pool on asyncio's own streams, built
from public API only, proxies included.

Why not httpx's ``AsyncHTTPTransport``: its pool goes through anyio, whose per-call
checkpoints, cancel scopes and socket-attribute lookups (each connection's "is it still
alive?" check builds a dict of them) cost a measurable share of the daemon's CPU on the
one-small-request-per-document path (bench/README.md), and httpx offers no public way
to give its pool another network backend.  So :class:`Transport` is a public
``httpx.AsyncBaseTransport`` around a public ``httpcore.AsyncConnectionPool`` with
``network_backend=AsyncioBackend()`` and, when a proxy is used, ``proxy=httpcore.Proxy``
(httpcore ≥ 1.0.7): plain HTTP is forwarded through the proxy, HTTPS tunnelled with
CONNECT, SOCKS5 spoken when the proxy URL says so (socksio).  What httpx's own transport
does around the pool (request/response conversion, httpcore → httpx exceptions) is done
here the same way, through the public classes of both libraries.

:class:`AsyncioBackend` needs Python 3.11 (``asyncio.timeout``,
``StreamWriter.start_tls``); before that the pool keeps httpcore's default backend.
Which proxy serves which URL is decided in :mod:`daemon.services.http`
(:class:`ProxyRouter` only applies that decision per request).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import select
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
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

    def __init__(
        self, timeout: float | None, on_timeout: type[Exception], on_error: type[Exception]
    ) -> None:
        self._timeout, self._on_timeout, self._on_error = timeout, on_timeout, on_error

    async def __aenter__(self) -> None:
        # AsyncioBackend is used on 3.11+ only (see transport()); 3.10's asyncio lacks this.
        self._cm = asyncio.timeout(self._timeout)  # type: ignore[attr-defined,unused-ignore]
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

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """TLS on this stream; through a proxy's CONNECT tunnel it is the tunnel's stream."""
        try:
            async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
                await self._writer.start_tls(  # type: ignore[attr-defined,unused-ignore]
                    ssl_context, server_hostname=server_hostname
                )  # 3.11+, like the whole backend
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
    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
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

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        async with _Mapped(timeout, httpcore.ConnectTimeout, httpcore.ConnectError):
            reader, writer = await asyncio.open_unix_connection(path)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- httpcore → httpx, as httpx's own transport does (httpx/_transports/default.py) -----

#: most specific first: the first match wins
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:  # httpcore's response stream (aiter + aclose)
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        with _httpx_errors():
            await self._stream.aclose()


def _core_url(url: httpx.URL) -> httpcore.URL:
    return httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )


def core_proxy(url: str, ssl_context: ssl.SSLContext) -> httpcore.Proxy:
    """An ``http(s)://`` or ``socks5(h)://`` proxy URL (credentials in it become the
    proxy's Basic auth) as httpcore takes it; ``httpx.Proxy`` parses and checks it."""
    proxy = httpx.Proxy(url)
    return httpcore.Proxy(
        url=_core_url(proxy.url),
        auth=proxy.raw_auth,
        headers=proxy.headers.raw,
        # TLS to an https:// proxy trusts the same store as TLS to the services.
        ssl_context=ssl_context if proxy.url.scheme == "https" else None,
    )


class Transport(httpx.AsyncBaseTransport):
    """One connection pool: direct, or through one proxy."""

    def __init__(
        self,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext,
        *,
        proxy: str | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.proxy = proxy
        self.ssl_context = ssl_context
        if backend is None and sys.version_info >= (3, 11):
            backend = AsyncioBackend()
        self.pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            proxy=core_proxy(proxy, ssl_context) if proxy else None,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core = httpcore.Request(
            method=request.method,
            url=_core_url(request.url),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self.pool.handle_async_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.pool.aclose()


class ProxyRouter(httpx.AsyncBaseTransport):
    """Sends each request down the transport *choose* names for its URL (a proxy's, or
    ``None`` for direct).  The choice is remembered per scheme, host and port: a service
    talks to a handful of origins, so the NO_PROXY rules run once per origin.  A failure
    through a proxy says so (*labels*: proxy URL → how a message names it)."""

    def __init__(
        self,
        direct: httpx.AsyncBaseTransport,
        proxied: dict[str, httpx.AsyncBaseTransport],
        choose: Callable[[str, str, int | None], str | None],
        labels: dict[str, str] | None = None,
    ) -> None:
        self.direct = direct
        self.proxied = proxied
        self._choose = choose
        self._labels = labels or {}
        self._routes: dict[tuple[str, str, int | None], str | None] = {}

    def route(self, url: httpx.URL) -> str | None:
        """The proxy URL this request goes through, or None."""
        key = (url.scheme, url.host, url.port)
        try:
            return self._routes[key]
        except KeyError:
            proxy = self._choose(*key)
            if len(self._routes) < 1024:  # hostile redirects cannot grow it without end
                self._routes[key] = proxy
            return proxy

    def label(self, proxy: str) -> str:
        return self._labels.get(proxy, proxy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.route(request.url)
        if proxy is None:
            return await self.direct.handle_async_request(request)
        try:
            return await self.proxied[proxy].handle_async_request(request)
        except httpx.TransportError as exc:
            raise type(exc)(
                f"{exc or type(exc).__name__} (through the proxy {self.label(proxy)})"
            ) from exc

    async def aclose(self) -> None:
        for transport in (self.direct, *self.proxied.values()):
            await transport.aclose()


# --- whom TLS trusts ----------------------------------------------------------------------

#: Where Linux distributions keep their CA bundle, for when OpenSSL's compiled-in default
#: paths find none (the list of certifi-system-store, which truststore also uses).
CA_FILES = (
    "/etc/ssl/cert.pem",  # Alpine, Arch, Fedora, BSD
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  # Fedora 44+, RHEL 11+
    "/etc/pki/tls/cert.pem",  # older Fedora, RHEL, CentOS
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/ssl/ca-bundle.pem",  # SUSE
)


def _has_hashed_certs(capath: str | None) -> bool:
    try:
        return bool(capath) and any(
            len(name) == 10 and name[8] == "." for name in os.listdir(capath)
        )  # 1a2b3c4d.0
    except OSError:
        return False


def trust_store(
    platform: str = sys.platform,
    *,
    verify_paths: ssl.DefaultVerifyPaths | None = None,
    ca_files: Iterable[str] = CA_FILES,
) -> tuple[ssl.SSLContext, str]:
    """A client SSL context that trusts what the operating system trusts, and what it is.

    A company's TLS-inspecting proxy signs with a CA its IT installed into the system's
    store, which certifi's bundle (httpx's default) does not have.

    - Windows and macOS: ``truststore`` verifies through the OS itself (the Keychain,
      CryptoAPI): the only way to see those stores.
    - Linux and other OpenSSL systems: the system's store *is* OpenSSL's default paths
      (``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), loaded once here.  truststore would
      load the same files, but again for every connection (its ``_configure_context``
      calls ``set_default_verify_paths()`` per ``wrap_bio``): 35 ms of CPU per new TLS
      connection on this project's machine, growing on OpenSSL 3.0-3.3
      (github.com/sethmlarson/truststore/issues/212).
    - No store found (a minimal container without ca-certificates), or truststore cannot
      start: certifi's bundle, so HTTPS to the public services still works.
    """
    if platform in ("win32", "darwin"):
        try:
            import truststore

            return truststore.SSLContext(
                ssl.PROTOCOL_TLS_CLIENT
            ), "the operating system's certificate store (truststore)"
        except (ImportError, OSError, NotImplementedError, ssl.SSLError):
            pass  # an old OS truststore does not support: certifi below
    else:
        paths = verify_paths or ssl.get_default_verify_paths()
        if paths.cafile or _has_hashed_certs(paths.capath):
            # what set_default_verify_paths() would load, once
            context = ssl.create_default_context(cafile=paths.cafile, capath=paths.capath)
            return context, f"the system's certificates ({paths.cafile or paths.capath})"
        for cafile in ca_files:
            if os.path.isfile(cafile):
                return ssl.create_default_context(
                    cafile=cafile
                ), f"the system's certificates ({cafile})"
    import certifi

    return ssl.create_default_context(
        cafile=certifi.where()
    ), f"certifi's certificates ({certifi.where()})"


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """The process's one client SSL context (loading a CA store costs 30-40 ms)."""
    return trust_store()[0]


def transport(
    limits: httpx.Limits, *, verify: ssl.SSLContext | None = None, proxy: str | None = None
) -> Transport:
    """One pool on :class:`AsyncioBackend`; *verify* defaults to :func:`ssl_context`."""
    return Transport(limits, verify or ssl_context(), proxy=proxy)
