"""HTTP at the boundary: httpx's errors and status codes become docinbox errors here,
once, for every service."""

from __future__ import annotations

import asyncio
import email.utils
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..errors import GatewayError, MalformedResponse, NetworkError, RateLimited, ServerError
from . import netstream

USER_AGENT = "docinbox/0.1 (+hot-folder document parser)"


class RateLimiter:
    """A token bucket: at most *rate* requests a second to one service, bursts of *burst*.

    Attached to a client as a request hook, so every request a service makes waits its
    turn; the clock and sleep are injectable for tests."""

    def __init__(self, rate: float, burst: float | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                await self.sleep(wait)
                self._tokens = 0.0
                self._last = self.clock()
            else:
                self._tokens -= 1.0

    async def hook(self, request: httpx.Request) -> None:
        await self.acquire()


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes,
              content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body in one buffer (what httpx would stream in pieces)."""
    boundary = secrets.token_hex(16)
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ") \
        .replace("\n", " ")
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
                 f'filename="{quoted}"\r\nContent-Type: {content_type}\r\n\r\n'.encode())
    parts += [data, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def make_client(base_url: str, *, timeout: float, transport: httpx.AsyncBaseTransport | None,
                max_connections: int, rate_per_second: float = 0.0) -> httpx.AsyncClient:
    hooks = {"request": [RateLimiter(rate_per_second).hook]} if rate_per_second > 0 else {}
    limits = httpx.Limits(max_connections=max_connections,
                          max_keepalive_connections=max_connections)
    return httpx.AsyncClient(
        event_hooks=hooks,
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        transport=transport or netstream.transport(limits),
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
    )


async def send(client: httpx.AsyncClient, method: str, url: str, *, service: str,
               **kwargs: Any) -> httpx.Response:
    """One request; transport failures become NetworkError, 429 RateLimited, 5xx ServerError.

    The body is read in full: every response docinbox reads this way is small JSON.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise NetworkError(f"{service}: {method} {url} timed out ({type(exc).__name__})",
                           service=service) from exc
    except httpx.TransportError as exc:
        raise NetworkError(f"{service}: {method} {url} failed: {exc or type(exc).__name__}",
                           service=service) from exc
    if response.status_code == 429:
        raise RateLimited(f"{service}: rate limited (HTTP 429)", service=service, status=429,
                          retry_after=retry_after(response))
    if response.status_code in (502, 503, 504):
        raise GatewayError(f"{service}: HTTP {response.status_code} {describe_body(response)}",
                           service=service, status=response.status_code,
                           retry_after=retry_after(response))
    if response.status_code >= 500:
        raise ServerError(f"{service}: HTTP {response.status_code} {describe_body(response)}",
                          service=service, status=response.status_code,
                          retry_after=retry_after(response))
    return response


def json_body(response: httpx.Response, *, service: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        # An HTML error page from a proxy, or a body cut short: worth another try.
        raise MalformedResponse(
            f"{service}: HTTP {response.status_code} with a body that is not JSON "
            f"({describe_body(response)})", service=service, status=response.status_code,
        ) from exc


def describe_body(response: httpx.Response, limit: int = 120) -> str:
    ctype = response.headers.get("content-type", "")
    text = response.text.strip().replace("\n", " ")
    if "html" in ctype or text.lower().startswith(("<!doctype", "<html")):
        return "(an HTML error page)"
    return repr(text[:limit]) if text else "(empty body)"


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
