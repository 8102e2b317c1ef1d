"""Who may use the desk: every request is hostile until it shows the installation's token.

- **The token**: one per installation, in ``dashboard.token`` beside the state database,
  readable by its owner only (mode 0600), made on first use.  ``docinbox dashboard``
  opens ``/?token=TOKEN`` once; that request sets an HttpOnly, SameSite=Strict cookie
  and is redirected to ``/`` at once, so the token leaves the address bar and the
  history.  Scripts may send ``Authorization: Bearer TOKEN`` instead.
- **The Host header** must name the address the desk listens on: an IP address,
  ``localhost`` (when it listens on the loopback), or the name it was configured with,
  with its port.  A page on another site that points its own name at 127.0.0.1 (DNS
  rebinding) is refused before anything else is looked at.
- **State-changing requests** (anything but GET and HEAD) also carry ``X-CSRF-Token``,
  which only ``GET /api/session`` hands out (same-origin JavaScript can read it; another
  origin cannot), and an ``Origin``, when the browser sends one, of the desk itself.

Every refusal is a bare 401/403 that says which rule it was and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import os
import secrets
import stat
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import ConfigError

TOKEN_FILE = "dashboard.token"
#: How long the browser keeps the cookie (it is re-set by every ``?token=`` visit).
COOKIE_SECONDS = 30 * 86400
SAFE_METHODS = frozenset({"GET", "HEAD"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})

#: Sent with every answer: nothing is cached, framed, sniffed or leaked in a referrer,
#: and the page runs only its own script.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'",
}


def token_path(state_db: Path) -> Path:
    return state_db.parent / TOKEN_FILE


def installation_token(path: Path) -> str:
    """The token in *path*, made (mode 0600) when there is none yet."""
    for _ in range(3):
        try:
            text = path.read_text("ascii").strip()
        except FileNotFoundError:
            _make_token(path)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the dashboard token {path}: {exc}",
                hint="Delete the file; docinbox makes a new one (open the dashboard again).",
            ) from exc
        if len(text) < 32 or not all(c.isalnum() or c in "-_" for c in text):
            raise ConfigError(
                f"{path} does not hold a dashboard token",
                hint="Delete the file; docinbox makes a new one (open the dashboard again).",
            )
        _owner_only(path)
        return text
    raise ConfigError(f"cannot make the dashboard token {path}")


def _make_token(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it meanwhile: read that one
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)


def _owner_only(path: Path) -> None:
    """A token file others can read (copied, restored from a backup) is tightened."""
    with contextlib.suppress(OSError):
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            path.chmod(0o600)


def csrf_for(token: str) -> str:
    """The CSRF token: derived from the installation's, so it survives a restart and
    reveals nothing about it."""
    return hmac.new(token.encode(), b"docinbox desk csrf", hashlib.sha256).hexdigest()


def _split_host(value: str) -> tuple[str, int | None] | None:
    """``name:port`` / ``[v6]:port`` / ``name`` → (name, port); None when malformed."""
    try:
        parts = urlsplit(f"//{value}")
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None
    return parts.hostname.lower(), port


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def host_allowed(value: str, listen_host: str, port: int) -> bool:
    """Whether a ``Host`` header names this desk (see the module's docstring)."""
    split = _split_host(value.strip())
    if split is None:
        return False
    name, given = split
    if (given or 80) != port:
        return False
    listen = listen_host.strip("[]").lower()
    listen_ip = _ip(listen)
    loopback = (listen_ip is not None and listen_ip.is_loopback) or listen == "localhost"
    ip = _ip(name)
    if ip is not None:
        return listen in _WILDCARDS or ip == listen_ip or (loopback and ip.is_loopback)
    if name == "localhost":
        return loopback or listen in _WILDCARDS
    return name == listen


@dataclass(frozen=True)
class Keys:
    """What the guard checks requests against."""

    token: str
    csrf: str
    listen_host: str
    port: Callable[[], int]  # the bound port (known once it listens)

    @property
    def cookie(self) -> str:
        """One cookie per desk: two installations on one machine do not share cookies
        (cookies ignore ports), so each names its own by its port."""
        return f"docinbox_desk_{self.port()}"


class Guard:
    """ASGI middleware in front of everything the desk serves."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        send = _with_headers(send)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        keys = self.keys
        if not host_allowed(headers.get("host", ""), keys.listen_host, keys.port()):
            return PlainTextResponse("Forbidden: unexpected Host header", status_code=403)
        path: str = scope["path"]
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if path == "/" and "token" in query:
            return self._login(query["token"][0])
        if not self._authenticated(headers):
            if path.startswith("/api/"):
                return JSONResponse({"error": "unauthorized"}, status_code=401)
            return PlainTextResponse(
                "docinbox: open the address `docinbox dashboard` opens (it carries the key).",
                status_code=401,
            )
        if scope["method"] not in SAFE_METHODS:
            return self._check_change(headers)
        return None

    def _login(self, given: str) -> Response:
        if not hmac.compare_digest(given.encode(), self.keys.token.encode()):
            return PlainTextResponse("Forbidden: wrong key", status_code=403)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            self.keys.cookie,
            self.keys.token,
            max_age=COOKIE_SECONDS,
            path="/",
            httponly=True,
            samesite="strict",
        )
        return response

    def _authenticated(self, headers: Headers) -> bool:
        given = ""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        else:
            cookies: SimpleCookie = SimpleCookie()
            with contextlib.suppress(Exception):  # a malformed Cookie header is no key
                cookies.load(headers.get("cookie", ""))
            morsel = cookies.get(self.keys.cookie)
            given = morsel.value if morsel is not None else ""
        return bool(given) and hmac.compare_digest(given.encode(), self.keys.token.encode())

    def _check_change(self, headers: Headers) -> Response | None:
        csrf = headers.get("x-csrf-token", "")
        if not csrf or not hmac.compare_digest(csrf.encode(), self.keys.csrf.encode()):
            return JSONResponse({"error": "missing or wrong X-CSRF-Token"}, status_code=403)
        origin = headers.get("origin")
        if origin is not None:
            host = urlsplit(origin).netloc
            if host != headers.get("host", ""):
                return JSONResponse({"error": "cross-origin request"}, status_code=403)
        return None


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = list(message.get("headers", []))
            present = {k.lower() for k, _ in raw}
            for name, value in SECURITY_HEADERS.items():
                key = name.lower().encode("latin-1")
                if key not in present:
                    raw.append((key, value.encode("latin-1")))
            message = {**message, "headers": raw}
        await send(message)

    return sending
