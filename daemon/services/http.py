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
import datetime
import email.utils
import ipaddress
import json
import logging
import math
import os
import re
import secrets
import sys
import time
import urllib.request
import weakref
from collections.abc import AsyncIterable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import redact
from ..errors import (
    AnswerTooLarge,
    AnswerTooSlow,
    GatewayError,
    MalformedResponse,
    NetworkError,
    RateLimited,
    ServerError,
)
from .libs import httpx
from .pacing import Pacer, rate_hints
from .proxies import check_proxy, redact_url

USER_AGENT = "docinbox/0.1 (+hot-folder document parser)"
log = logging.getLogger("docinbox")


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
            system_bypass = urllib.request.proxy_bypass
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
    from . import netstream  # httpcore, imported when the first client is made

    direct = netstream.transport(limits)
    if not rules.by_scheme:
        return direct
    proxied: dict[str, httpx.AsyncBaseTransport] = {
        url: netstream.transport(limits, proxy=url) for url in set(rules.by_scheme.values())
    }
    labels = {url: f"{redact_url(url)} from {rules.origin[url]}" for url in proxied}
    return netstream.ProxyRouter(direct, proxied, rules.choose, labels)


def make_client(
    base_url: str,
    *,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None,
    max_connections: int,
    pacer: Pacer | None = None,
    proxy: str = "",
) -> httpx.AsyncClient:
    """The client one service uses.  An injected *transport* (tests) wins over everything;
    else :func:`network_transport` with *proxy* (``ServiceSettings.proxy``).  Every
    request :func:`send` makes through it waits for its turn in *pacer* (see
    :mod:`~daemon.services.pacing`)."""
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
    client = httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)),
        transport=transport,
        limits=limits,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,  # proxies are decided above; nothing else from the environment
    )
    if pacer is not None:
        _PACERS[client] = pacer
    return client


#: Each service's client → its pacer (a client closes with its service; so does this).
_PACERS: weakref.WeakKeyDictionary[httpx.AsyncClient, Pacer] = weakref.WeakKeyDictionary()


def pacer_of(client: httpx.AsyncClient) -> Pacer | None:
    return _PACERS.get(client)


# --- one exchange, bounded in size and time ---------------------------------------------

#: What an answer read through :func:`send` may weigh unless its caller says otherwise:
#: every JSON answer docinbox reads is far smaller; a 3 GB body must not grow the daemon.
MAX_ANSWER_BYTES = 32 * 1024 * 1024
#: An error answer (4xx, 5xx) is read this far at most: only its first words are shown.
MAX_ERROR_BYTES = 64 * 1024
#: The slowest transfer a deadline allows for (bytes per second, 256 kbit/s): an exchange
#: gets the service's ``timeout``, plus a second per MIN_RATE bytes it moves.  A 200 MB
#: upload on such a line gets 1.8 h; a body trickling a byte every 2 s is cut after the
#: timeout.
MIN_RATE = 32 * 1024
#: A deadline's slack over the timeout: a server that sends nothing at all meets httpx's
#: own read timeout first (a plain "timed out"); the deadline catches what that cannot.
GRACE = 1.0
#: The longest wait a ``Retry-After`` is taken for: a daily quota's reset, no more.
MAX_RETRY_AFTER = 24 * 3600.0
MIB = 1024 * 1024
#: A request refused with 429 is sent again at its next turn, this many times at most.
MAX_RESENDS = 4

if sys.version_info >= (3, 11):
    _timeout_at = asyncio.timeout_at
else:  # pragma: no cover - exercised through FallbackTimeout's own test

    def _timeout_at(when: float | None) -> FallbackTimeout:
        return FallbackTimeout(when)


class FallbackTimeout:
    """``asyncio.timeout_at`` for Python 3.10: cancel the task at *when* (reschedulable)
    and turn that cancellation into TimeoutError, as ``async_timeout`` does."""

    def __init__(self, when: float | None) -> None:
        self._when = when
        self._handle: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._expired = False

    async def __aenter__(self) -> FallbackTimeout:
        self._task = asyncio.current_task()
        self.reschedule(self._when)
        return self

    async def __aexit__(self, typ: Any, exc: Any, tb: Any) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired and typ is asyncio.CancelledError:
            raise TimeoutError from exc

    def reschedule(self, when: float | None) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = when
        if when is not None and self._task is not None and not self._expired:
            self._handle = asyncio.get_running_loop().call_at(when, self._fire)

    def _fire(self) -> None:
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    def expired(self) -> bool:
        return self._expired


class Deadline:
    """How long one whole exchange may take: *seconds* (and :data:`GRACE`) once it is on
    the wire, plus a second per :data:`MIN_RATE` bytes it moves (the *upload* at once,
    the answer as it arrives: :meth:`moved`).  httpx's timeouts are per read, so a body
    that trickles in a byte at a time never trips them; this does, and frees the
    service's slot.

    The clock restarts when the request's headers go out (:meth:`trace`, httpcore's
    ``trace`` extension): waiting for a pooled connection or the rate limiter is bounded
    by httpx's own pool timeout and is not the exchange's.  *seconds* None: no deadline.
    """

    def __init__(self, seconds: float | None, *, upload: int = 0, rate: float = MIN_RATE) -> None:
        self.seconds = seconds
        self.rate = rate
        self.allowed = 0.0 if seconds is None else seconds + GRACE + upload / rate
        self._start = 0.0
        self._timer: Any = None

    async def __aenter__(self) -> Deadline:
        self._start = asyncio.get_running_loop().time()
        self._timer = _timeout_at(self._when())
        await self._timer.__aenter__()
        return self

    async def __aexit__(self, typ: Any, exc: Any, tb: Any) -> bool | None:
        return await self._timer.__aexit__(typ, exc, tb)  # type: ignore[no-any-return,unused-ignore]

    def _when(self) -> float | None:
        return None if self.seconds is None else self._start + self.allowed

    def expired(self) -> bool:
        """Did this deadline fire (rather than anything else time out)?"""
        return self._timer is not None and bool(self._timer.expired())

    def moved(self, count: int) -> None:
        """*count* more bytes arrived: the deadline moves on by their time at MIN_RATE."""
        if self.seconds is not None and count:
            self.allowed += count / self.rate
            self._timer.reschedule(self._when())

    def restart(self) -> None:
        """The request goes on the wire now: the whole allowance starts here."""
        if self.seconds is not None and not self.expired():
            self._start = asyncio.get_running_loop().time()
            self._timer.reschedule(self._when())

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        """httpcore's ``trace`` extension: restart when the request headers go out."""
        if event.endswith("send_request_headers.started"):
            self.restart()


def deadline_for(request: httpx.Request) -> Deadline:
    """The :class:`Deadline` of *request*: its read timeout (the service's ``timeout``, or
    the call's own), plus its body's size at MIN_RATE."""
    timeout = request.extensions.get("timeout") or {}
    seconds = timeout.get("read") if isinstance(timeout, Mapping) else None
    length = request.headers.get("content-length", "")
    upload = int(length) if length.isdigit() else 0
    return Deadline(None if seconds is None else float(seconds), upload=upload)


def describe_url(url: httpx.URL | str) -> str:
    """*url* for a message: no query (a presigned URL's signature), no user info."""
    try:
        return str(httpx.URL(url).copy_with(query=None, fragment=None, userinfo=b""))
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(an invalid URL)"


async def read_capped(
    response: httpx.Response,
    limit: int,
    *,
    deadline: Deadline | None = None,
    strict: bool = True,
    service: str | None = None,
    what: str = "the answer",
) -> bytes:
    """At most *limit* bytes of *response*'s body (decoded), read as they arrive.

    *strict*: more than *limit* is :class:`AnswerTooLarge`, raised as soon as the count
    passes it (a Content-Length above it: before reading anything); otherwise the body
    is cut at *limit* (an error page, of which only the first words are shown).  The
    caller closes the response."""
    declared = response.headers.get("content-length", "")
    encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
    if strict and declared.isdigit() and not encoded and int(declared) > limit:
        raise _too_large(service, what, limit)
    chunks: list[bytes] = []
    received = 0
    # Decoded bytes are counted: a gzip bomb meets the cap as it inflates (one chunk of
    # the wire, at most 64 KiB, inflates to at most ~66 MB: deflate's limit is 1032:1).
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > limit:
            if strict:
                raise _too_large(service, what, limit)
            chunks.append(chunk[: len(chunk) - (received - limit)])
            break
        chunks.append(chunk)
        if deadline is not None:
            deadline.moved(len(chunk))
    return b"".join(chunks)


def _too_large(service: str | None, what: str, limit: int) -> AnswerTooLarge:
    size = f"{limit / MIB:g} MB" if limit >= MIB else f"{limit} bytes"
    return AnswerTooLarge(f"{service}: {what} exceeded {size}", service=service)


def too_slow(service: str | None, what: str, deadline: Deadline) -> AnswerTooSlow:
    allowed = deadline.allowed
    within = f"{allowed:.0f}" if allowed >= 10 else f"{allowed:.1f}"
    return AnswerTooSlow(f"{service}: {what} did not complete within {within} s", service=service)


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    service: str,
    max_bytes: int = MAX_ANSWER_BYTES,
    **kwargs: Any,
) -> httpx.Response:
    """One request; transport failures become NetworkError, 429 RateLimited, 5xx ServerError.

    The request waits for its turn in the service's pacer first; a 429 teaches the pacer
    and the request is sent again at its next turn — a 429 is the service's state, never
    the document's.  Only a wait longer than the pacer's MAX_WAIT, :data:`MAX_RESENDS`
    429s in a row, or a body that cannot be sent twice reach the caller, as RateLimited
    (the step gives its slot back; the document waits in line, its budget untouched).

    The answer is read whole, but never more than *max_bytes* of it (AnswerTooLarge, read
    no further; error answers are cut at :data:`MAX_ERROR_BYTES`), and the whole exchange
    within its :class:`Deadline` (AnswerTooSlow).  The response returned holds the body
    (decoded: it has no Content-Encoding any more).
    """
    pacer = _PACERS.get(client)
    lane = pacer.lane_for(method, url) if pacer is not None else None
    if pacer is None or lane is None:
        return _checked(await exchange(client, method, url, service, max_bytes, kwargs), service)
    for attempt in range(MAX_RESENDS + 1):
        response = await _paced(pacer, lane, client, method, url, service, max_bytes, kwargs)
        if response.status_code != 429 or not _replayable(kwargs) or attempt == MAX_RESENDS:
            break
    return _checked(response, service)


async def _paced(
    pacer: Pacer,
    lane: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    service: str,
    max_bytes: int,
    kwargs: Mapping[str, Any],
) -> httpx.Response:
    """One exchange at its turn in *lane*; what it met is the pacer's to learn from."""
    ticket = await pacer.acquire(lane)
    try:
        response = await exchange(client, method, url, service, max_bytes, kwargs)
    except BaseException:
        pacer.answered(ticket, None)
        raise
    remaining, reset = rate_hints(response.headers, time.time())
    pacer.answered(
        ticket,
        response.status_code,
        retry_after=retry_after(response),
        remaining=remaining,
        reset=reset,
    )
    return response


def _replayable(kwargs: Mapping[str, Any]) -> bool:
    """Can this request's body be sent again?  Bytes and forms can (httpx renders a file
    field again from its start); an async generator cannot."""
    content = kwargs.get("content")
    return not isinstance(content, AsyncIterable | Iterator)


async def exchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    service: str,
    max_bytes: int,
    options: Mapping[str, Any],
) -> httpx.Response:
    """One exchange, bounded in size and time (see :func:`send`); its status unchecked."""
    kwargs = dict(options)
    auth = kwargs.pop("auth", httpx.USE_CLIENT_DEFAULT)
    follow = kwargs.pop("follow_redirects", httpx.USE_CLIENT_DEFAULT)
    where = f"{method} {describe_url(url)}"
    try:
        request = client.build_request(method, url, **kwargs)
    except httpx.InvalidURL as exc:
        raise NetworkError(f"{service}: {where}: {exc}", service=service) from exc
    deadline = deadline_for(request)
    request.extensions = {**request.extensions, "trace": deadline.trace}
    try:
        async with deadline:
            streamed = await client.send(request, auth=auth, follow_redirects=follow, stream=True)
            try:
                failed = streamed.status_code >= 400
                limit = min(max_bytes, MAX_ERROR_BYTES) if failed else max_bytes
                body = await read_capped(
                    streamed,
                    limit,
                    deadline=deadline,
                    strict=not failed,
                    service=service,
                    what=f"the answer to {where}",
                )
            finally:
                await streamed.aclose()
    except TimeoutError as exc:
        if not deadline.expired():
            raise
        raise too_slow(service, f"the answer to {where}", deadline) from exc
    except httpx.TimeoutException as exc:
        raise NetworkError(
            f"{service}: {where} timed out ({type(exc).__name__})", service=service
        ) from exc
    except httpx.TransportError as exc:
        raise NetworkError(
            f"{service}: {where} failed: {exc or type(exc).__name__}", service=service
        ) from exc
    return _settled(streamed, body)


def _checked(response: httpx.Response, service: str) -> httpx.Response:
    """429 and 5xx as docinbox errors; every other answer is the service's to read."""
    status = response.status_code
    if status == 429:
        raise RateLimited(
            f"{service}: rate limited (HTTP 429)",
            service=service,
            status=429,
            retry_after=retry_after(response),
        )
    if status >= 500:
        kind = GatewayError if status in (502, 503, 504) else ServerError
        raise kind(
            f"{service}: HTTP {status} {describe_body(response)}",
            service=service,
            status=status,
            retry_after=retry_after(response),
        )
    return response


#: Headers that describe the body on the wire, not the decoded body a settled response holds.
_WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


def _settled(streamed: httpx.Response, body: bytes) -> httpx.Response:
    """A complete response with *body* (already decoded) in place of *streamed*'s stream."""
    headers = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _WIRE_HEADERS]
    extensions = {
        k: v for k, v in streamed.extensions.items() if k in ("http_version", "reason_phrase")
    }
    return httpx.Response(
        streamed.status_code,
        headers=headers,
        content=body,
        request=streamed.request,
        extensions=extensions,
    )


def json_body(response: httpx.Response, *, service: str) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        # An HTML error page from a proxy, a body cut short, nesting no parser takes:
        # worth another try.
        raise MalformedResponse(
            f"{service}: HTTP {response.status_code} with a body that is not JSON "
            f"({describe_body(response)})",
            service=service,
            status=response.status_code,
        ) from exc


#: describe_body looks at this much of a body: the secrets are scrubbed before it is cut.
_DESCRIBED = 16 * 1024


def describe_body(response: httpx.Response, limit: int = 120) -> str:
    """The body's first words for a message, scrubbed of secrets before it is cut (a cut
    through a secret would leave a piece no scrubber recognises)."""
    ctype = response.headers.get("content-type", "")
    head = response.content[:_DESCRIBED].decode(response.encoding or "utf-8", "replace")
    text = redact.scrub(head).strip().replace("\n", " ")
    if "html" in ctype or text.lower().startswith(("<!doctype", "<html")):
        return "(an HTML error page)"
    return repr(text[:limit]) if text else "(empty body)"


#: delta-seconds (RFC 9110 §10.2.3: digits; a fraction tolerated, nothing else).
_DELTA = re.compile(r"[0-9]+(?:\.[0-9]*)?")


def retry_after(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date, at most
    :data:`MAX_RETRY_AFTER`; None when it is absent or unreadable (a negative number,
    ``nan``, an exponent, a date no calendar has).  A date in the past is 0."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if _DELTA.fullmatch(value):
        return min(float(value), MAX_RETRY_AFTER)
    if len(value) > 64:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000": an HTTP-date is in GMT whatever it says
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    if math.isnan(seconds):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
