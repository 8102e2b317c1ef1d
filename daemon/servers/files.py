"""The daemon's own small HTTP server: documents for a parser that fetches them, and
result callbacks.

docparse (seed 001) only takes URLs, so each document in flight is served at a signed,
expiring URL ``{public_url}/files/{job_id}/{expires}/{signature}/{name}`` with
``signature = HMAC-SHA256(secret, "job_id\\nexpires\\nname")``.  A request is served only
when the signature is right, it has not expired (injected clock) and ``lookup(job_id)``
still returns a file — the daemon's lookup answers None once the job left flight.  The
path served always comes from ``lookup``; nothing from the URL touches the file system.
Every refusal is a bare 403/404 with no detail.  Each fetch is reported (``on_fetch``):
after a crash the daemon knows the parser already has the document.

Callbacks: ``POST /callbacks/{service}``; the body (capped) goes to that service's
``callback_ids``, which verifies it; a genuine one hands the remote ids it names to
``on_callback(service, ids)``.

Starlette served by uvicorn as a task on the daemon's own event loop (see serve.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..clock import Clock, SystemClock
from ..errors import ConfigError
from ..sniff import EXTENSION, MIME
from .serve import Served, serve

log = logging.getLogger("docinbox.fileserver")

MAX_CALLBACK_BYTES = 4 * 1024 * 1024
#: Suffix → sniffed kind (the signed name carries the kind's extension).
_KIND_OF_SUFFIX = {
    **{f".{k}": k for k in MIME},
    **{v: k for k, v in EXTENSION.items()},
    ".jpeg": "jpg",
    ".tiff": "tiff",
}

LookupFn = Callable[[int], "Path | None"]
CallbackFn = Callable[[str, Mapping[str, str]], None]
VerifyFn = Callable[[Mapping[str, Any]], "Mapping[str, str] | None"]
FetchFn = Callable[[int], None]


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


class FileServer:
    """Signed document URLs for docparse, and the callback endpoint."""

    def __init__(
        self,
        listen: str,
        public_url: str | None,
        secret: bytes,
        lookup: LookupFn,
        *,
        clock: Clock | None = None,
        on_callback: CallbackFn | None = None,
        verifiers: Mapping[str, VerifyFn] | None = None,
        on_fetch: FetchFn | None = None,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("the file server's secret must be at least 16 bytes")
        self.host, self._asked_port = parse_listen(listen)
        self._public_url = (public_url or "").rstrip("/")
        self._secret = secret
        self.lookup = lookup
        self.clock: Clock = clock or SystemClock()
        self.on_callback = on_callback
        self.on_fetch = on_fetch
        #: service name → its callback verifier (``Service.callback_ids``).
        self.verifiers: dict[str, VerifyFn] = dict(verifiers or {})
        self.port = self._asked_port
        self.app = Starlette(
            routes=[
                Route("/files/{rest:path}", self._serve_file, methods=["GET", "HEAD"]),
                Route("/callbacks/{service}", self._callback, methods=["POST"]),
            ]
        )
        self._server: Served | None = None

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
        if not (
            job_text.isdigit()
            and expires_text.isdigit()
            and len(job_text) < 19
            and len(expires_text) < 19
        ):
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
        if self.on_fetch is not None and request.method == "GET":
            self.on_fetch(job_id)
        kind = _KIND_OF_SUFFIX.get(PurePosixPath(name).suffix.lower())
        media_type = MIME.get(kind or "", "application/octet-stream")
        safe_name = PurePosixPath(name.replace("\\", "/")).name or "document"
        return FileResponse(
            Path(path),
            media_type=media_type,
            filename=safe_name,
            content_disposition_type="attachment",
        )

    async def _callback(self, request: Request) -> Response:
        verify = self.verifiers.get(request.path_params["service"])
        if verify is None:
            return _not_found()
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_CALLBACK_BYTES:
                return _forbidden()
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # a body nested too deep is as bad as garbage
            return _forbidden()
        ids = verify(payload) if isinstance(payload, dict) else None
        if ids is None:
            return _forbidden()
        if self.on_callback is not None:
            self.on_callback(request.path_params["service"], ids)
        return JSONResponse({"ok": True})

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> FileServer:
        """Listen (port 0: a free one, see :attr:`port`); returns once connections work."""
        if self._server is not None:
            raise RuntimeError("the file server is already started")
        try:
            self._server = await serve(self.app, self.host, self._asked_port, name="files")
        except OSError as exc:
            raise ConfigError(
                f"files_listen: cannot listen on {self.host}:{self._asked_port}: {exc}"
            ) from exc
        self.port = self._server.port
        return self

    async def stop(self) -> None:
        """Stop serving (safe to call twice)."""
        if self._server is not None:
            await self._server.stop()
            self._server = None
