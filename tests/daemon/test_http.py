"""The HTTP boundary: pacing and Retry-After, with an injected clock (no sleeps);
which proxy each URL goes through; whom TLS trusts."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import json
import math
import random
import ssl
import string
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import redact
from daemon.errors import (
    AnswerTooLarge,
    ConfigError,
    MalformedResponse,
    RateLimited,
    ServerError,
)
from daemon.services import http, netstream
from daemon.services.http import (
    GRACE,
    MAX_ANSWER_BYTES,
    MAX_ERROR_BYTES,
    MAX_RESENDS,
    MAX_RETRY_AFTER,
    MIN_RATE,
    deadline_for,
    describe_body,
    json_body,
    make_client,
    network_transport,
    proxies,
    retry_after,
    send,
)
from daemon.services.pacing import Pacer


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def paced_client(
    handler: Callable[[httpx.Request], httpx.Response], t: FakeTime, **pacer: Any
) -> tuple[httpx.AsyncClient, Pacer]:
    pace = Pacer(
        "svc",
        lanes={"api": None},
        route=lambda _m, _u: "api",
        concurrency=pacer.pop("concurrency", 8),
        clock=t.clock,
        sleep=t.sleep,
        **pacer,
    )
    client = make_client(
        "http://svc", timeout=5, transport=httpx.MockTransport(handler), max_connections=4,
        pacer=pace,
    )  # fmt: skip
    return client, pace


def test_every_request_through_a_paced_client_waits_its_turn() -> None:
    t = FakeTime()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={})

    async def go() -> None:
        client, _ = paced_client(handler, t, ceiling_rate=4.0)
        async with client:
            for i in range(5):
                await send(client, "GET", f"/r{i}", service="svc")

    asyncio.run(go())
    assert len(seen) == 5
    assert t.slept == [0.25, 0.25, 0.25, 0.25]  # the configured rate is the ceiling


def test_a_429_is_sent_again_at_its_turn_and_never_reaches_the_caller() -> None:
    t = FakeTime()
    answers = iter([httpx.Response(429, headers={"Retry-After": "3"}), httpx.Response(200)])
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return next(answers)

    async def go() -> httpx.Response:
        client, _ = paced_client(handler, t)
        async with client:
            return await send(client, "POST", "/upload", service="svc", content=b"doc")

    response = asyncio.run(go())
    assert response.status_code == 200
    assert bodies == [b"doc", b"doc"]
    assert sum(t.slept) >= 3.0  # the service's Retry-After, honoured


def test_429s_in_a_row_reach_the_caller_as_rate_limited() -> None:
    t = FakeTime()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers={"Retry-After": "1"})

    async def go() -> None:
        client, _ = paced_client(handler, t)
        async with client:
            await send(client, "GET", "/x", service="svc")

    with pytest.raises(RateLimited):
        asyncio.run(go())
    assert len(calls) == MAX_RESENDS + 1


def test_a_streamed_body_is_never_sent_twice() -> None:
    t = FakeTime()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429)

    async def body() -> AsyncIterator[bytes]:
        yield b"part"

    async def go() -> None:
        client, _ = paced_client(handler, t)
        async with client:
            await send(client, "PUT", "/x", service="svc", content=body())

    with pytest.raises(RateLimited):
        asyncio.run(go())
    assert len(calls) == 1


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    when = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after(httpx.Response(503, headers={"Retry-After": when}), now=1_000_000) == 60
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


def _after(value: str, now: float = 1_000_000.0) -> float | None:
    return retry_after(httpx.Response(429, headers={"Retry-After": value}), now=now)


def test_retry_after_is_bounded_and_tolerates_garbage() -> None:
    assert _after("99999999999") == MAX_RETRY_AFTER  # parked 3,000 years before
    assert _after("9" * 400) == MAX_RETRY_AFTER
    assert _after(" 7.5 ") == 7.5
    assert _after("0") == 0.0
    for garbage in (
        "-5",
        "+5",
        "nan",
        "inf",
        "-inf",
        "1e9",
        "1_000",
        "0x10",
        "5 s",
        "",
        " ",
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "Mon, 32 Foo 2025 25:61:61 GMT",
    ):
        assert _after(garbage) is None, garbage
    assert _after("Fri, 31 Dec 9999 23:59:59 GMT") == MAX_RETRY_AFTER
    assert _after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0  # in the past: now
    # an HTTP-date is GMT even when it says "-0000" (a naive date to Python)
    assert _after(email.utils.formatdate(1_000_090)) == 90.0  # formatdate writes "-0000"


def test_retry_after_fuzz_never_raises_and_stays_in_bounds() -> None:
    rng = random.Random(20240612)
    alphabet = string.printable + "٣é€\x00\u2028"
    pieces = ["GMT", "Mon,", "Dec", "-", "+", ".", "e", "99999", "1970", ":", " ", "nan"]
    for _ in range(20000):
        kind = rng.randrange(4)
        if kind == 0:
            value = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        elif kind == 1:
            value = "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 8)))
        elif kind == 2:
            value = str(rng.choice([-1, 1]) * rng.random() * 10 ** rng.randrange(0, 30))
        else:
            stamp = rng.uniform(-1e10, 1e12)
            try:
                value = email.utils.formatdate(stamp, usegmt=True)
            except (OverflowError, OSError, ValueError):
                continue
        # raw bytes, as a server sends them (httpx decodes them for .get)
        header = httpx.Headers([(b"Retry-After", value.encode("utf-8"))])
        seconds = retry_after(httpx.Response(503, headers=header), now=1_700_000_000.0)
        assert seconds is None or (0.0 <= seconds <= MAX_RETRY_AFTER), (value, seconds)
        assert seconds is None or math.isfinite(seconds)


# --- answers: bounded in size, decoded, scrubbed ----------------------------------------------


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return make_client(
        "http://svc", timeout=5, transport=httpx.MockTransport(handler), max_connections=1
    )


async def _send(
    handler: Callable[[httpx.Request], httpx.Response], **kwargs: Any
) -> httpx.Response:
    async with _client(handler) as client:
        return await send(client, "GET", "/x", service="svc", **kwargs)


class CountingStream(httpx.AsyncByteStream):
    """A body of *total* bytes in 64 KiB pieces, counting what the client took."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.taken = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.taken < self.total:
            piece = min(65536, self.total - self.taken)
            self.taken += piece
            yield b" " * piece


def test_an_answer_over_its_cap_is_refused_while_it_streams() -> None:
    body = CountingStream(64 * 1024 * 1024)
    with pytest.raises(AnswerTooLarge, match="exceeded 1 MB") as info:
        asyncio.run(_send(lambda r: httpx.Response(200, stream=body), max_bytes=1024 * 1024))
    assert info.value.retryable and info.value.code == "answer_too_large"
    assert body.taken <= 1024 * 1024 + 65536  # not one piece more than it needed


def test_a_declared_length_over_the_cap_is_refused_unread() -> None:
    body = CountingStream(10 * 1024 * 1024)
    headers = {"Content-Length": str(body.total)}
    with pytest.raises(AnswerTooLarge):
        asyncio.run(
            _send(
                lambda r: httpx.Response(200, headers=headers, stream=body), max_bytes=1024 * 1024
            )
        )
    assert body.taken == 0


def test_a_caller_may_allow_more_and_the_default_is_32_mib() -> None:
    assert MAX_ANSWER_BYTES == 32 * 1024 * 1024
    response = asyncio.run(
        _send(lambda r: httpx.Response(200, stream=CountingStream(3_000_000)), max_bytes=4_000_000)
    )
    assert len(response.content) == 3_000_000


def test_a_huge_error_page_is_cut_not_refused() -> None:
    body = CountingStream(50 * 1024 * 1024)
    with pytest.raises(ServerError, match="HTTP 500"):
        asyncio.run(_send(lambda r: httpx.Response(500, stream=body)))
    assert body.taken <= MAX_ERROR_BYTES + 65536


def test_a_compressed_answer_is_counted_and_handed_over_decoded() -> None:
    payload = json.dumps({"result": ["x" * 1000] * 100}).encode()
    packed = gzip.compress(payload)
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = asyncio.run(_send(lambda r: httpx.Response(200, headers=headers, content=packed)))
    assert response.json()["result"][0] == "x" * 1000
    assert "content-encoding" not in response.headers
    assert response.headers["content-length"] == str(len(payload))
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))  # 8 KB on the wire
    with pytest.raises(AnswerTooLarge):
        asyncio.run(
            _send(
                lambda r: httpx.Response(200, headers=headers, content=bomb), max_bytes=1024 * 1024
            )
        )


def test_json_nested_beyond_any_parser_is_a_malformed_answer() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    response = asyncio.run(_send(lambda r: httpx.Response(200, content=deep)))
    with pytest.raises(MalformedResponse, match="not JSON"):
        json_body(response, service="svc")


def test_describe_body_scrubs_before_it_cuts() -> None:
    key = "sk-live-0123456789abcdef"
    text = "x" * 110 + key + " and more"  # the cut at 120 falls inside the key
    with redact.only([key]):
        described = describe_body(httpx.Response(400, content=text.encode()))
    assert key[:6] not in described
    assert described == repr("x" * 110 + "****" + " and m")


def test_the_deadline_counts_the_upload_at_the_minimum_rate() -> None:
    client = make_client(
        "http://svc",
        timeout=120,
        transport=httpx.MockTransport(lambda r: httpx.Response(200)),
        max_connections=1,
    )
    big = client.build_request("PUT", "/u", headers={"Content-Length": str(200 * 1024**2)})
    small = client.build_request("GET", "/x")
    probe = client.build_request("GET", "/", timeout=10)
    assert deadline_for(big).allowed > 6000  # 200 MB at 32 KiB/s: not cut at 120 s
    assert deadline_for(small).allowed == 120 + GRACE
    assert deadline_for(probe).allowed == 10 + GRACE
    assert MIN_RATE == 32 * 1024


# --- proxies: which URL goes through which proxy ---------------------------------------------

P = "http://proxy.corp:3128"


def test_proxy_variables_in_either_case_lowercase_first() -> None:
    rules = proxies(environ={"HTTPS_PROXY": P, "HTTP_PROXY": "http://other:8080"})
    assert rules.choose("https", "api.example.com", None) == P
    assert rules.choose("http", "api.example.com", None) == "http://other:8080"
    assert rules.origin == {P: "HTTPS_PROXY", "http://other:8080": "HTTP_PROXY"}
    # both cases set and different: the lowercase one wins (curl, urllib)
    both = proxies(environ={"HTTPS_PROXY": "http://upper:1", "https_proxy": P})
    assert both.choose("https", "api.example.com", None) == P
    # an empty lowercase one unsets the uppercase one
    assert proxies(environ={"HTTPS_PROXY": P, "https_proxy": ""}).by_scheme == {}


def test_all_proxy_and_a_bare_host_port() -> None:
    rules = proxies(environ={"ALL_PROXY": "proxy.corp:3128", "http_proxy": "http://h:1"})
    assert rules.choose("https", "mineru.net", None) == P  # http:// added, as curl does
    assert rules.choose("http", "mineru.net", None) == "http://h:1"  # the specific one wins
    socks = proxies(environ={"all_proxy": "socks5h://127.0.0.1:1080"})
    assert socks.choose("https", "mineru.net", None) == "socks5h://127.0.0.1:1080"


def test_http_proxy_is_ignored_under_cgi() -> None:
    """httpoxy (CVE-2016-1000110): a client's ``Proxy:`` header becomes HTTP_PROXY."""
    assert proxies(environ={"HTTP_PROXY": P, "REQUEST_METHOD": "GET"}).by_scheme == {}
    assert proxies(environ={"http_proxy": P, "REQUEST_METHOD": "GET"}).by_scheme == {"http": P}


def test_no_proxy_as_curl_reads_it() -> None:
    rules = proxies(
        environ={
            "HTTPS_PROXY": P,
            "HTTP_PROXY": P,
            "NO_PROXY": " localhost, 127.0.0.1,.corp, example.org ,10.0.0.0/8,::5,"
            "[fd00::1],parser.lan:8088",
        }
    )
    direct = [
        ("https", "corp", None),
        ("https", "a.b.corp", None),
        ("https", "example.org", None),
        ("https", "api.example.org", None),
        ("http", "10.20.30.40", None),
        ("http", "::5", None),
        ("http", "fd00::1", None),
        ("http", "parser.lan", 8088),
        ("https", "API.EXAMPLE.ORG.", None),
    ]
    proxied = [
        ("https", "notcorp", None),
        ("https", "example.org.evil", None),
        ("https", "myexample.org", None),
        ("http", "11.0.0.1", None),
        ("http", "parser.lan", 80),
        ("http", "parser.lan", None),
    ]
    assert [rules.choose(*o) for o in direct] == [None] * len(direct)
    assert [rules.choose(*o) for o in proxied] == [P] * len(proxied)
    assert (
        proxies(environ={"HTTPS_PROXY": P, "no_proxy": "*"}).choose("https", "mineru.net", None)
        is None
    )


def test_the_loopback_is_always_direct() -> None:
    rules = proxies(environ={"HTTP_PROXY": P, "NO_PROXY": ""})
    for host in (
        "localhost",
        "LOCALHOST.",
        "api.localhost",
        "127.0.0.1",
        "127.8.9.10",
        "::1",
        "::ffff:127.0.0.1",
    ):
        assert rules.choose("http", host, 8765) is None, host
    assert rules.choose("http", "192.0.2.7", 8765) == P


def test_the_config_proxy_wins_and_no_proxy_still_applies() -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "parser.lan"}
    rules = proxies("http://configured:3128", environ=env)
    assert rules.choose("https", "mineru.net", None) == "http://configured:3128"
    assert rules.choose("http", "mineru.net", None) == "http://configured:3128"
    assert rules.choose("http", "parser.lan", None) is None
    assert rules.origin == {"http://configured:3128": "[network] proxy"}
    assert proxies("direct", environ=env).choose("https", "mineru.net", None) is None
    assert proxies("", environ=env).choose("https", "mineru.net", None) == "http://env:1"


def test_a_proxy_variable_docinbox_cannot_use_names_itself() -> None:
    with pytest.raises(ConfigError, match=r"all_proxy: 'socks4://u:\*\*\*@h:1080'"):
        proxies(environ={"all_proxy": "socks4://u:pw@h:1080"})
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        proxies(environ={"HTTPS_PROXY": "http://h:port"})


def test_network_transport_routes_by_those_rules() -> None:
    limits = httpx.Limits(max_connections=1)
    assert isinstance(network_transport(limits, proxies(environ={})), netstream.Transport)
    rules = proxies(environ={"HTTPS_PROXY": P, "NO_PROXY": ".lan"})
    router = network_transport(limits, rules)
    assert isinstance(router, netstream.ProxyRouter)
    assert router.route(httpx.URL("https://mineru.net/api/v4/x")) == P
    assert router.route(httpx.URL("https://parser.lan/")) is None
    assert router.route(httpx.URL("http://mineru.net/")) is None  # no HTTP_PROXY
    assert router.route(httpx.URL("https://127.0.0.1:8765/")) is None
    # what the log says for each service
    assert rules.proxy_and_reason("https", "mineru.net", None) == (
        P,
        f"through the proxy {P} from HTTPS_PROXY",
    )
    assert rules.proxy_and_reason("https", "parser.lan", None)[1] == "NO_PROXY names it"
    assert rules.proxy_and_reason("http", "mineru.net", None)[1] == "no proxy is set for http://"
    assert rules.proxy_and_reason("https", "localhost", 1)[1] == "the loopback is never proxied"
    secret = proxies(environ={"HTTPS_PROXY": "http://ana:pw@proxy.corp:3128"})
    assert (
        secret.proxy_and_reason("https", "mineru.net", None)[1]
        == "through the proxy http://ana:***@proxy.corp:3128 from HTTPS_PROXY"
    )


def test_an_injected_transport_wins_over_every_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={})

    async def go() -> None:
        async with make_client(
            "https://mineru.net",
            timeout=5,
            max_connections=1,
            transport=httpx.MockTransport(handler),
            proxy="http://127.0.0.1:9",
        ) as c:
            assert (await c.get("/x")).status_code == 200

    asyncio.run(go())
    assert seen == ["https://mineru.net/x"]


# --- whom TLS trusts -------------------------------------------------------------------------


def test_windows_and_macos_use_the_os_store_through_truststore() -> None:
    import truststore

    for platform in ("win32", "darwin"):
        context, what = netstream.trust_store(platform)
        assert isinstance(context, truststore.SSLContext), platform
        assert "operating system" in what


def test_linux_loads_the_system_store_once(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca_file = tmp_path / "company-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    paths = ssl.DefaultVerifyPaths(str(ca_file), None, "SSL_CERT_FILE", "", "SSL_CERT_DIR", "")
    context, what = netstream.trust_store("linux", verify_paths=paths)
    assert type(context) is ssl.SSLContext
    assert context.cert_store_stats()["x509_ca"] == 1  # loaded now, not per connection
    assert str(ca_file) in what


def test_without_a_system_store_a_distro_bundle_then_certifi(tmp_path: Path) -> None:
    import certifi

    empty = tmp_path / "certs"
    empty.mkdir()
    nothing = ssl.DefaultVerifyPaths(None, str(empty), "", "", "", "")
    trustme = pytest.importorskip("trustme")
    bundle = tmp_path / "ca-bundle.pem"
    trustme.CA().cert_pem.write_to_path(str(bundle))
    context, what = netstream.trust_store(
        "linux", verify_paths=nothing, ca_files=[str(tmp_path / "absent.pem"), str(bundle)]
    )
    assert context.cert_store_stats()["x509_ca"] == 1 and str(bundle) in what
    context, what = netstream.trust_store("linux", verify_paths=nothing, ca_files=[])
    assert context.cert_store_stats()["x509_ca"] > 50 and certifi.where() in what


def test_truststore_failing_falls_back_to_certifi(monkeypatch: pytest.MonkeyPatch) -> None:
    import truststore

    def broken(*args: object) -> None:
        raise OSError("no OS store here")

    monkeypatch.setattr(truststore, "SSLContext", broken)
    context, what = netstream.trust_store("darwin")
    assert type(context) is ssl.SSLContext and "certifi" in what


def test_the_fallback_timer_for_python_3_10_cuts_and_reschedules() -> None:
    """``asyncio.timeout_at`` is 3.11+; before, a small stand-in does the same (tested
    here on any version, since it is plain asyncio)."""

    async def go() -> tuple[bool, bool, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        timer = http.FallbackTimeout(start + 0.05)
        with pytest.raises(TimeoutError):
            async with timer:
                timer.reschedule(loop.time() + 0.2)  # moved on, as a transfer moves it
                await asyncio.sleep(5)
        cut_after = loop.time() - start
        quiet = http.FallbackTimeout(loop.time() + 5)
        async with quiet:
            await asyncio.sleep(0.01)
        return timer.expired(), quiet.expired(), cut_after

    expired, quiet_expired, cut_after = asyncio.run(go())
    assert expired and not quiet_expired
    assert 0.15 < cut_after < 2
