"""The HTTP boundary: rate limiting and Retry-After, with an injected clock (no sleeps);
which proxy each URL goes through; whom TLS trusts."""

from __future__ import annotations

import asyncio
import email.utils
import ssl
from pathlib import Path

import httpx
import pytest

from daemon.errors import ConfigError
from daemon.services import netstream
from daemon.services.http import (
    RateLimiter,
    make_client,
    network_transport,
    proxies,
    retry_after,
)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_token_bucket_spaces_requests_after_the_burst() -> None:
    t = FakeTime()
    limiter = RateLimiter(rate=4, burst=2, clock=t.clock, sleep=t.sleep)

    async def go() -> None:
        for _ in range(5):
            await limiter.acquire()

    asyncio.run(go())
    assert t.slept == [0.25, 0.25, 0.25]  # two free, then one every 1/rate seconds
    t.now += 10  # idle time refills the bucket, but only up to the burst
    t.slept.clear()
    asyncio.run(go())
    assert t.slept == [0.25, 0.25, 0.25]


def test_client_hook_applies_the_limit_to_every_request() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={})

    async def go() -> float:
        client = make_client(
            "http://svc",
            timeout=5,
            transport=httpx.MockTransport(handler),
            max_connections=4,
            rate_per_second=5,
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with client:
            await asyncio.gather(*(client.get(f"/r{i}") for i in range(6)))
        return loop.time() - start

    elapsed = asyncio.run(go())
    assert len(seen) == 6
    # a burst of one second's worth (5) goes at once, the sixth waits 1/5 s: a lower bound,
    # which a slow machine can only exceed
    assert elapsed >= 0.19


def test_retry_after_seconds_and_http_date() -> None:
    assert retry_after(httpx.Response(429, headers={"Retry-After": "7"})) == 7.0
    when = email.utils.formatdate(1_000_060, usegmt=True)
    assert retry_after(httpx.Response(503, headers={"Retry-After": when}), now=1_000_000) == 60
    assert retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert retry_after(httpx.Response(429)) is None


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
