"""docinbox behind a proxy, as a company network runs it: a real forward proxy (started
here, on loopback) between the installed daemon and a standalone ``docinbox-mock``.

The mock listens on this machine's non-loopback address: docinbox always reaches the
loopback directly (a proxy's loopback is not ours; daemon/services/http.py), so a
mock on 127.0.0.1 could not show whether the proxy is used.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    BIN,
    MockAdmin,
    Workspace,
    receipt,
    wait_for,
)

MOCK_KEYS = {
    "NANONETS_API_KEY": "mock-nanonets-key",
    "MINERU_API_KEY": "mock-mineru-token",
    "DOCPARSE_API_KEY": "mock-docparse-token",
}


# --- a forward proxy ---------------------------------------------------------------------


class ForwardProxy:
    """A forward proxy in a thread of its own.

    ``POST http://host:port/path`` (absolute form) is forwarded, one request per client
    connection (it answers ``Connection: close``, so every request shows in ``log``);
    ``CONNECT host:port`` is tunnelled.  ``log`` holds ``(method, target)`` of every
    request it served, in order.  With *auth* (``user:password``) it answers 407 to
    requests without that ``Proxy-Authorization``."""

    def __init__(self, host: str = "127.0.0.1", *, auth: str | None = None) -> None:
        self.log: list[tuple[str, str]] = []
        self.refused: list[tuple[str, str]] = []
        self._auth = (b"Basic " + base64.b64encode(auth.encode())) if auth else None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(host,), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the test proxy did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self, host: str) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, host, 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            busy = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in busy:
                task.cancel()
            await asyncio.gather(*busy, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> ForwardProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError, RuntimeError, NotImplementedError):
            writer.write_eof()  # (a TLS stream cannot half-close: it is closed after)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ", 2)
            headers = [h for h in rest.split(b"\r\n") if h]
            if self._auth is not None and b"proxy-authorization: " + self._auth.lower() not in [
                h.lower() for h in headers
            ]:
                self.refused.append((method, target))
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b"Proxy-Authenticate: Basic\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n"
                )
                return
            self.log.append((method, target))
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, upstream = await asyncio.open_connection(host.strip("[]"), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await asyncio.gather(self._pipe(reader, upstream), self._pipe(up_reader, writer))
                return
            url = urllib.parse.urlsplit(target)
            up_reader, upstream = await asyncio.open_connection(url.hostname, url.port or 80)
            hop = (b"connection:", b"proxy-connection:", b"keep-alive:", b"proxy-authorization:")
            kept = [h for h in headers if not h.lower().startswith(hop)]
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            upstream.write(
                f"{method} {path} {version}\r\n".encode("latin-1")
                + b"".join(h + b"\r\n" for h in kept)
                + b"Connection: close\r\n\r\n"
            )
            body = asyncio.ensure_future(self._pipe(reader, upstream))
            answer = await up_reader.readuntil(b"\r\n\r\n")
            status, _, answer_rest = answer.partition(b"\r\n")
            answer_headers = [
                h
                for h in answer_rest.split(b"\r\n")
                if h and not h.lower().startswith(b"connection:")
            ]
            writer.write(
                status
                + b"\r\n"
                + b"".join(h + b"\r\n" for h in answer_headers)
                + b"Connection: close\r\n\r\n"
            )
            await self._pipe(up_reader, writer)
            body.cancel()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            with contextlib.suppress(OSError):
                writer.write(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
        finally:
            for w in (upstream, writer):
                if w is not None:
                    w.close()


# --- the machine's address and a standalone mock ------------------------------------------


def outward_address() -> str:
    """An address of this machine that is not the loopback (the route to a documentation
    address, RFC 5737: a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            address = s.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127.") or address == "0.0.0.0":
        pytest.fail(
            "this machine has no non-loopback IPv4 address; the proxy tests need "
            "one (docinbox never proxies the loopback)"
        )
    return address


@contextlib.contextmanager
def standalone_mock(host: str, workspace: Workspace) -> Iterator[MockAdmin]:
    """``docinbox-mock --host HOST --port 0``, as a user starts it; its own environment
    has no proxy variables (so its journal is what reached it, not what it sent)."""
    out = workspace.root / "mock.out"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            [str(BIN / "docinbox-mock"), "--host", host, "--port", "0"],
            cwd=workspace.root,
            env=workspace.env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def listening() -> str | None:
            if proc.poll() is not None:
                pytest.fail(f"docinbox-mock exited: {out.read_text()}")
            found = re.search(r"docinbox-mock listening on (http://\S+)", out.read_text())
            return found.group(1) if found else None

        url = wait_for(listening, 30, "docinbox-mock to listen")
        yield MockAdmin(url)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def use_mock(workspace: Workspace, url: str) -> None:
    """The shipped config against a mock started by hand: ``[mock] embedded = false`` and
    every service's base_url pointed at it."""
    workspace.set_key("mock", "embedded", "false")
    for service in ("nanonets", "mineru", "docparse"):
        workspace.set_key(f"services.{service}", "base_url", f'"{url}"')


def journal(mock: MockAdmin) -> list[tuple[str, str]]:
    """The mock's journal as absolute URLs (what a forward proxy sees)."""
    return [
        (r["method"], f"{mock.url}{r['path']}" + (f"?{r['query']}" if r["query"] else ""))
        for r in mock.requests()
    ]


def wait_done(workspace: Workspace, stem: str, timeout: float = 60) -> dict[str, object]:
    return wait_for(
        lambda: (workspace.outbox / stem / "result.json").exists() and workspace.result(stem),
        timeout,
        f"outbox/{stem}/result.json",
    )


# --- the tests -----------------------------------------------------------------------------


@pytest.fixture
def address() -> str:
    return outward_address()


def test_every_request_goes_through_the_proxy_from_the_environment(
    workspace: Workspace, address: str
) -> None:
    from mockserver.samples import multipage_pdf

    with ForwardProxy() as proxy, standalone_mock(address, workspace) as mock:
        use_mock(workspace, mock.url)
        daemon = workspace.start(
            "--no-tray", env={**MOCK_KEYS, "HTTP_PROXY": proxy.url, "HTTPS_PROXY": proxy.url}
        )
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())  # nanonets: one LabelFile
        workspace.drop("informe.pdf", multipage_pdf(5))  # mineru: batch, upload, polls, zip

        fields = {f["label"]: f["text"] for f in wait_done(workspace, "recibo")["fields"]}
        assert fields == {"fecha": "23/12/2025", "total": "45.99"}
        wait_done(workspace, "informe")
        status = workspace.docinbox("status", "--json", env=MOCK_KEYS)
        assert json.loads(status.stdout)["counts"] == {"done": 2}

        seen = journal(mock)
        assert any("/LabelFile/" in target for _, target in seen)
        assert any(method == "PUT" for method, _ in seen)  # the presigned upload
        assert sorted(seen) == sorted(proxy.log)  # nothing went around it, nothing else
        # the log says which way each service goes
        daemon.wait_for_line(
            re.escape(f"{mock.url}: through the proxy {proxy.url} from HTTP_PROXY")
        )
        assert daemon.stop() == 0
        assert daemon.problems() == []


def test_no_proxy_sends_those_hosts_direct(workspace: Workspace, address: str) -> None:
    with ForwardProxy() as proxy, standalone_mock(address, workspace) as mock:
        use_mock(workspace, mock.url)
        daemon = workspace.start(
            "--no-tray",
            env={
                **MOCK_KEYS,
                "http_proxy": proxy.url,
                "https_proxy": proxy.url,
                "no_proxy": f"example.org,{address}",
            },
        )
        daemon.wait_ready()
        daemon.wait_for_line(re.escape(f"{mock.url}: direct (NO_PROXY names it)"))
        workspace.drop("recibo.pdf", receipt())
        wait_done(workspace, "recibo")
        assert journal(mock) and proxy.log == []
        assert daemon.stop() == 0


def test_a_proxy_that_is_down_pauses_the_service_and_says_which_proxy(
    workspace: Workspace, address: str
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once closed
    with standalone_mock(address, workspace) as mock:
        use_mock(workspace, mock.url)
        daemon = workspace.start("--no-tray", env={**MOCK_KEYS, "HTTP_PROXY": dead})
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())
        # An unreachable proxy is an outage: the service waits (nothing spent, nothing
        # failed) and the log says which proxy.
        line = daemon.wait_for_line(r"nanonets cannot be reached .*", 30).group(0)
        assert f"through the proxy {dead} from HTTP_PROXY" in line
        assert "its documents wait" in line
        assert mock.requests() == []  # nothing went around the proxy
        assert not (workspace.failed / "recibo.pdf").exists()  # kept for the next try
        assert daemon.stop() == 0


def test_the_config_proxy_wins_over_the_environment(workspace: Workspace, address: str) -> None:
    with (
        ForwardProxy() as configured,
        ForwardProxy() as environment,
        standalone_mock(address, workspace) as mock,
    ):
        use_mock(workspace, mock.url)
        workspace.set_key("network", "proxy", f'"{configured.url}"')
        daemon = workspace.start(
            "--no-tray",
            env={**MOCK_KEYS, "HTTP_PROXY": environment.url, "HTTPS_PROXY": environment.url},
        )
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())
        wait_done(workspace, "recibo")
        assert sorted(journal(mock)) == sorted(configured.log)
        assert environment.log == []
        assert daemon.stop() == 0


def test_https_is_tunnelled_with_connect_and_trusts_the_system_store(
    workspace: Workspace, address: str, tmp_path: Path
) -> None:
    """A TLS-only front of the mock whose CA is in "the system's store" (SSL_CERT_FILE, as
    OpenSSL reads it on Linux): docinbox reaches it through the proxy's CONNECT tunnel."""
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    ca_file = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(address).configure_cert(server_ctx)

    with (
        ForwardProxy() as proxy,
        standalone_mock(address, workspace) as mock,
        tls_front(address, mock.url, server_ctx) as https_url,
    ):
        use_mock(workspace, https_url)
        daemon = workspace.start(
            "--no-tray", env={**MOCK_KEYS, "HTTPS_PROXY": proxy.url, "SSL_CERT_FILE": str(ca_file)}
        )
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())
        fields = {f["label"]: f["text"] for f in wait_done(workspace, "recibo")["fields"]}
        assert fields["total"] == "45.99"
        host_port = https_url.removeprefix("https://")
        assert proxy.log and all(entry == ("CONNECT", host_port) for entry in proxy.log)
        assert any("/LabelFile/" in r["path"] for r in mock.requests())
        assert daemon.stop() == 0
        assert daemon.problems() == []


@contextlib.contextmanager
def tls_front(host: str, backend_url: str, context: ssl.SSLContext) -> Iterator[str]:
    """TLS on *host*, each connection piped to the plain-HTTP *backend_url*."""
    backend = urllib.parse.urlsplit(backend_url)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict[str, object] = {}

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(backend.hostname, backend.port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            ForwardProxy._pipe(reader, up_writer), ForwardProxy._pipe(up_reader, writer)
        )
        up_writer.close()
        writer.close()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = loop.run_until_complete(asyncio.start_server(serve, host, 0, ssl=context))
        box["server"], box["port"] = server, server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"https://{host}:{box['port']}"
    finally:
        loop.call_soon_threadsafe(box["server"].close)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
