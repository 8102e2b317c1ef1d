"""The daemon's own small HTTP server: documents for docparse, and result callbacks.

docparse (seed 001) only takes URLs, so each document in flight is served at a signed,
expiring URL ``{public_url}/files/{job_id}/{expires}/{signature}/{name}`` with
``signature = HMAC-SHA256(secret, "job_id\\nexpires\\nname")``.  A request is served only
when the signature is right, it has not expired (injected clock) and ``lookup(job_id)``
still returns a file — the engine's lookup answers None once the job left flight.  The
path served always comes from ``lookup``; nothing from the URL touches the file system.
Every refusal is a bare 403/404 with no detail.

Callbacks (seed 002): ``POST /callbacks/{service}`` with ``{"checksum", "content"}``;
checked as ``sha256(uid + seed + content)`` against that service's (uid, seed) and handed
to ``on_callback(service, json.loads(content))``.

Starlette + uvicorn in a background thread (the stack the mock already uses, so no new
dependency): streaming responses and a clean shutdown come for free, unlike the stdlib
``http.server``, whose threads and half-closed sockets would need hand-holding.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .clock import Clock, SystemClock
from .errors import ConfigError
from .sniff import EXTENSION, MIME

log = logging.getLogger("docinbox.fileserver")

MAX_CALLBACK_BYTES = 4 * 1024 * 1024
START_TIMEOUT = 10.0
#: Suffix → sniffed kind (the signed name carries the kind's extension).
_KIND_OF_SUFFIX = {**{f".{k}": k for k in MIME}, **{v: k for k, v in EXTENSION.items()},
                   ".jpeg": "jpg", ".tiff": "tiff"}

LookupFn = Callable[[int], "Path | None"]
CallbackFn = Callable[[str, Any], None]


def _forbidden() -> Response:
    return PlainTextResponse("Forbidden", status_code=403)


def _not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` / ``[v6]:port`` / ``:port`` → (host, port)."""
    text = listen.strip()
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"files_listen: expected host:port, got {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


class _Server(uvicorn.Server):
    """uvicorn that tells when it listens and leaves signal handling to the daemon."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class FileServer:
    """Signed document URLs for docparse, and the callback endpoint."""

    def __init__(self, listen: str, public_url: str | None, secret: bytes, lookup: LookupFn,
                 *, clock: Clock | None = None, on_callback: CallbackFn | None = None,
                 callback_keys: Mapping[str, tuple[str, str]] | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("the file server's secret must be at least 16 bytes")
        self.host, self._asked_port = parse_listen(listen)
        self._public_url = (public_url or "").rstrip("/")
        self._secret = secret
        self.lookup = lookup
        self.clock: Clock = clock or SystemClock()
        self.on_callback = on_callback
        #: service name → (uid, seed) its callbacks are signed with.
        self.callback_keys: dict[str, tuple[str, str]] = dict(callback_keys or {})
        self.port = self._asked_port
        self.app = Starlette(routes=[
            Route("/files/{rest:path}", self._serve_file, methods=["GET", "HEAD"]),
            Route("/callbacks/{service}", self._callback, methods=["POST"]),
        ])
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    # ------------------------------------------------------------------ URLs

    @property
    def url(self) -> str:
        """Where the parser reaches this server (``public_url``, else the listen address)."""
        if self._public_url:
            return self._public_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _sign(self, job_id: int, expires: int, name: str) -> str:
        message = f"{job_id}\n{expires}\n{name}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url_for(self, job_id: int, name: str, *, ttl: float) -> str:
        """A URL that serves job *job_id*'s file for *ttl* seconds, under *name*."""
        expires = int(self.clock.now() + ttl)
        signature = self._sign(job_id, expires, name)
        return f"{self.url}/files/{job_id}/{expires}/{signature}/{quote(name, safe='')}"

    # ------------------------------------------------------------------ handlers

    async def _serve_file(self, request: Request) -> Response:
        # The raw path, split by us: decoded slashes or dots cannot shift the segments.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        segments = raw.decode("latin-1").split("?", 1)[0].split("/")
        if len(segments) != 6 or segments[:2] != ["", "files"]:
            return _not_found()
        job_text, expires_text, signature, quoted = segments[2:]
        if not (job_text.isdigit() and expires_text.isdigit() and len(job_text) < 19
                and len(expires_text) < 19):
            return _not_found()
        try:
            name = unquote(quoted, errors="strict")
        except UnicodeDecodeError:
            return _not_found()
        job_id, expires = int(job_text), int(expires_text)
        expected = self._sign(job_id, expires, name).encode()
        if not hmac.compare_digest(expected, signature.lower().encode("utf-8", "replace")):
            return _forbidden()
        if self.clock.now() > expires:
            return _forbidden()
        try:
            path = self.lookup(job_id)
        except Exception:  # the lookup is the engine's; never leak its trouble
            log.exception("file server lookup of job %s failed", job_id)
            return _not_found()
        if path is None or not Path(path).is_file():
            return _not_found()
        kind = _KIND_OF_SUFFIX.get(PurePosixPath(name).suffix.lower())
        media_type = MIME.get(kind or "", "application/octet-stream")
        safe_name = PurePosixPath(name.replace("\\", "/")).name or "document"
        return FileResponse(Path(path), media_type=media_type, filename=safe_name,
                            content_disposition_type="attachment")

    async def _callback(self, request: Request) -> Response:
        service = request.path_params["service"]
        keys = self.callback_keys.get(service)
        if keys is None:
            return _not_found()
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CALLBACK_BYTES:
                return _forbidden()
        try:
            payload = json.loads(body)
            checksum, content = payload["checksum"], payload["content"]
            if not isinstance(checksum, str) or not isinstance(content, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return _forbidden()
        from .services.mineru import verify_callback

        if not verify_callback(keys[0], keys[1], checksum, content):
            return _forbidden()
        try:
            data = json.loads(content)
        except ValueError:
            return _forbidden()
        if self.on_callback is not None:
            self.on_callback(service, data)  # must only enqueue: the service waits for us
        return JSONResponse({"ok": True})

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = START_TIMEOUT) -> FileServer:
        """Listen (port 0: a free one, see :attr:`port`); returns once connections work."""
        if self._thread is not None:
            raise RuntimeError("the file server is already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._asked_port))
            sock.listen(128)
            sock.set_inheritable(True)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"files_listen: cannot listen on {self.host}:"
                              f"{self._asked_port}: {exc}") from exc
        self._socket = sock
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", access_log=False,
                                lifespan="off", timeout_graceful_shutdown=2)
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"fileserver:{self.port}", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(timeout):
            self.stop()
            raise RuntimeError("the file server did not start")
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (safe to call twice)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
