"""HTTP at the boundary: httpx's errors and status codes become docinbox errors here,
once, for every service; and which proxy, if any, each request goes through.

Proxies (httpx reads none from the environment once it is given a transport, so the
rules live here): ``[network] proxy`` in the config wins; else ``HTTP_PROXY``,
``HTTPS_PROXY`` and ``ALL_PROXY`` in either case, lowercase first, as curl and
``urllib.request.getproxies`` read them; ``NO_PROXY`` as curl reads it; and the
loopback (``localhost``, 127.0.0.0/8, ::1) is always reached directly, as Go's
``net/http`` does: a proxy's loopback is not this machine's, and the embedded mock
lives there.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import os
import secrets
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import GatewayError, MalformedResponse, NetworkError, RateLimited, ServerError
from . import netstream
from .proxies import check_proxy, redact_url

USER_AGENT = "docinbox/0.1 (+hot-folder document parser)"
log = logging.getLogger("docinbox")


class RateLimiter:
    """A token bucket: at most *rate* requests a second to one service, bursts of *burst*.

    Attached to a client as a request hook, so every request a service makes waits its
    turn; the clock and sleep are injectable for tests."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
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


def multipart(
    fields: dict[str, str], file_field: str, filename: str, data: bytes, content_type: str
) -> tuple[bytes, str]:
    """A multipart/form-data body in one buffer (what httpx would stream in pieces)."""
    boundary = secrets.token_hex(16)
    quoted = (
        filename.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    )
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; '
        f'filename="{quoted}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
    )
    parts += [data, f"\r\n--{boundary}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# --- proxies ----------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@dataclass(frozen=True)
class NoProxyRule:
    """One ``NO_PROXY`` entry, as curl reads it (CURLOPT_NOPROXY): a name matches itself
    and every name under it (a leading dot changes nothing); an IP address matches
    itself, a CIDR block its addresses; ``name:port`` (as Go reads it) only that port."""

    host: str = ""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, entry: str) -> NoProxyRule | None:
        entry = entry.strip().lower()
        port = None
        if entry.startswith("[") and "]" in entry:  # [::1] or [::1]:8080
            entry, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, digits = entry.partition(":")
            if digits.isdigit():
                entry, port = name, int(digits)
        entry = entry.strip(".").removeprefix("*.")
        if not entry:
            return None
        try:
            return cls(network=ipaddress.ip_network(entry, strict=False), port=port)
        except ValueError:
            return cls(host=entry, port=port)

    def matches(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        return host == self.host or host.endswith("." + self.host)


@dataclass(frozen=True)
class Proxies:
    """Which proxy URL serves a request: per scheme, minus ``NO_PROXY`` and the loopback.

    ``origin`` names where the proxies came from (``HTTPS_PROXY``, ``[network] proxy``),
    for messages."""

    by_scheme: Mapping[str, str] = field(default_factory=dict)
    no_proxy: tuple[NoProxyRule, ...] = ()
    bypass_all: bool = False
    origin: Mapping[str, str] = field(default_factory=dict)  # proxy URL → where from
    system_bypass: Callable[[str], bool] | None = None  # Windows/macOS settings

    def choose(self, scheme: str, host: str, port: int | None) -> str | None:
        """The proxy URL for this origin, or None for a direct connection."""
        return self.proxy_and_reason(scheme, host, port)[0]

    def proxy_and_reason(self, scheme: str, host: str, port: int | None) -> tuple[str | None, str]:
        """(the proxy URL or None, why) — the why for the log line of each service."""
        proxy = self.by_scheme.get(scheme)
        if proxy is None:
            return None, f"no proxy is set for {scheme}://"
        if self.bypass_all:
            return None, "NO_PROXY=*"
        host = host.lower().rstrip(".")
        if _is_loopback(host):
            return None, "the loopback is never proxied"
        effective = port or _DEFAULT_PORTS.get(scheme, 0)
        if any(rule.matches(host, effective) for rule in self.no_proxy):
            return None, "NO_PROXY names it"
        if self.system_bypass is not None and self.system_bypass(host):
            return None, "the system's proxy settings bypass it"
        return proxy, f"through the proxy {redact_url(proxy)} from {self.origin[proxy]}"


def _environment(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``<scheme>_proxy`` variables → (value, variable name), as CPython's
    ``urllib.request.getproxies_environment`` reads them: any case first, then the
    lowercase ones win (an empty lowercase one unsets); ``HTTP_PROXY`` is ignored under
    CGI (``REQUEST_METHOD`` set: httpoxy, CVE-2016-1000110)."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[:-6]] = (value, name)
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy") and name == name.lower():
            if value:
                found[name[:-6]] = (value, name)
            else:
                found.pop(name[:-6], None)
    return found


def proxies(
    configured: str = "", environ: Mapping[str, str] | None = None, *, platform: str = sys.platform
) -> Proxies:
    """The proxy rules for one client.

    *configured* is ``[network] proxy``: a URL wins over the environment (``NO_PROXY``
    still applies), ``"direct"`` means none, ``""`` leaves it to the environment.  Without
    proxy variables, Windows and macOS fall back to the system's proxy settings, as
    httpx and urllib do (``urllib.request.getproxies``/``proxy_bypass``)."""
    real_environment = environ is None
    env = os.environ if environ is None else environ
    configured = check_proxy(configured, "[network] proxy")
    if configured == "direct":
        return Proxies()
    found = _environment(env)
    no_proxy = found.pop("no", ("", ""))[0]
    entries = [e for e in no_proxy.split(",") if e.strip()]
    bypass_all = any(e.strip() == "*" for e in entries)
    rules = tuple(r for r in map(NoProxyRule.parse, entries) if r is not None and r.host != "*")
    system_bypass = None
    if configured:
        by_scheme = {"http": configured, "https": configured}
        origin = {configured: "[network] proxy"}
    else:
        if (
            real_environment
            and platform in ("win32", "darwin")
            and not any(k in found for k in ("http", "https", "all"))
        ):
            found = {
                k: (v, "the system's proxy settings")
                for k, v in urllib.request.getproxies().items()
                if k != "no"
            }
            system_bypass = urllib.request.proxy_bypass  # type: ignore[attr-defined]
        by_scheme, origin = {}, {}
        for scheme in ("http", "https"):
            value, name = found.get(scheme) or found.get("all") or ("", "")
            if value:
                url = check_proxy(value, name)
                by_scheme[scheme] = url
                origin.setdefault(url, name)
    return Proxies(
        by_scheme=by_scheme,
        no_proxy=rules,
        bypass_all=bypass_all,
        origin=origin,
        system_bypass=system_bypass,
    )


def network_transport(limits: httpx.Limits, rules: Proxies) -> httpx.AsyncBaseTransport:
    """A direct pool, and one pool per proxy the rules name (none: just the direct one)."""
    direct = netstream.transport(limits)
    if not rules.by_scheme:
        return direct
    proxied = {url: netstream.transport(limits, proxy=url) for url in set(rules.by_scheme.values())}
    labels = {url: f"{redact_url(url)} from {rules.origin[url]}" for url in proxied}
    return netstream.ProxyRouter(direct, proxied, rules.choose, labels)


def make_client(
    base_url: str,
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
    max_connections: int,
    rate_per_second: float = 0.0,
    proxy: str = "",
) -> httpx.AsyncClient:
    """The client one service uses.  An injected *transport* (tests) wins over everything;
    else :func:`network_transport` with *proxy* (``ServiceSettings.proxy``)."""
    hooks = {"request": [RateLimiter(rate_per_second).hook]} if rate_per_second > 0 else {}
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if transport is None:
        rules = proxies(proxy)
        transport = network_transport(limits, rules)
        if rules.by_scheme:  # behind a proxy: say which way this service goes, once
            url = httpx.URL(base_url)
            via, why = rules.proxy_and_reason(url.scheme, url.host, url.port)
            log.info("%s: %s", base_url, why if via else f"direct ({why})")
    return httpx.AsyncClient(
        event_hooks=hooks,
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        transport=transport,
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,  # proxies are decided above; nothing else from the environment
    )


async def send(
    client: httpx.AsyncClient, method: str, url: str, *, service: str, **kwargs: Any
) -> httpx.Response:
    """One request; transport failures become NetworkError, 429 RateLimited, 5xx ServerError.

    The body is read in full: every response docinbox reads this way is small JSON.
    """
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise NetworkError(
            f"{service}: {method} {url} timed out ({type(exc).__name__})", service=service
        ) from exc
    except httpx.TransportError as exc:
        raise NetworkError(
            f"{service}: {method} {url} failed: {exc or type(exc).__name__}", service=service
        ) from exc
    if response.status_code == 429:
        raise RateLimited(
            f"{service}: rate limited (HTTP 429)",
            service=service,
            status=429,
            retry_after=retry_after(response),
        )
    if response.status_code in (502, 503, 504):
        raise GatewayError(
            f"{service}: HTTP {response.status_code} {describe_body(response)}",
            service=service,
            status=response.status_code,
            retry_after=retry_after(response),
        )
    if response.status_code >= 500:
        raise ServerError(
            f"{service}: HTTP {response.status_code} {describe_body(response)}",
            service=service,
            status=response.status_code,
            retry_after=retry_after(response),
        )
    return response


def json_body(response: httpx.Response, *, service: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        # An HTML error page from a proxy, or a body cut short: worth another try.
        raise MalformedResponse(
            f"{service}: HTTP {response.status_code} with a body that is not JSON "
            f"({describe_body(response)})",
            service=service,
            status=response.status_code,
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
