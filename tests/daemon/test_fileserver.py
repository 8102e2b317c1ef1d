"""The daemon's file server: serves a document only at a valid, unexpired, signed URL for a
job still in flight; refuses everything else without detail; hands callbacks to the
service's verifier.  It runs on the event loop that starts it: here a loop in a thread of
its own, so the tests can use blocking clients (and a raw socket for exact paths)."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.config import Secret
from daemon.errors import ConfigError
from daemon.servers.files import FileServer
from daemon.services.base import Callbacks, ServiceContext
from daemon.services.mineru import Mineru, MineruSettings, verify_callback
from tests.helpers import LoopThread

SECRET = b"0123456789abcdef-test-secret"
UID, SEED = "uid-1", "seed_1"


def _signed(content: str, uid: str = UID, seed: str = SEED) -> dict[str, str]:
    """A push as MinerU signs it (seed 002): checksum = sha256(uid + seed + content)."""
    checksum = hashlib.sha256((uid + seed + content).encode()).hexdigest()
    return {"checksum": checksum, "content": content}


@dataclass
class Env:
    server: FileServer
    clock: FakeClock
    jobs: dict[int, Path]
    calls: list[tuple[str, set[str]]] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    doc = tmp_path / "secret-folder" / "recibo.pdf"
    doc.parent.mkdir()
    doc.write_bytes(b"%PDF-1.4 demo body")
    mineru = Mineru(
        MineruSettings(
            name="mineru",
            base_url="http://127.0.0.1:9",
            credential=Secret("token", "inline"),
            uid=UID,
        ),
        ServiceContext(callbacks=Callbacks("http://127.0.0.1:9/callbacks", SEED)),
    )
    jobs: dict[int, Path] = {1: doc}
    calls: list[tuple[str, set[str]]] = []
    fetched: list[int] = []
    clock = FakeClock()
    server = FileServer(
        "127.0.0.1:0",
        None,
        SECRET,
        jobs.get,
        clock=clock,
        on_callback=lambda s, ids: calls.append((s, ids)),
        verifiers={"mineru": mineru.callback_ids},
        on_fetch=fetched.append,
    )
    e = Env(server, clock, jobs, calls, fetched)
    with LoopThread() as loop:
        loop.run(server.start())
        try:
            yield e
        finally:
            loop.run(server.stop())
            loop.run(mineru.aclose())


def _raw_get(server: FileServer, path: str) -> int:
    """A request with the path exactly as written (httpx would normalize the dots)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_valid_url_streams_the_file_with_type_and_name(env: Env) -> None:
    server = env.server
    url = server.url_for(1, "recibo fiscal.pdf", ttl=60)
    assert url.startswith(f"http://127.0.0.1:{server.port}/files/1/")
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.content == b"%PDF-1.4 demo body"
    assert r.headers["content-type"] == "application/pdf"
    assert (
        "recibo%20fiscal.pdf" in r.headers["content-disposition"]
        or "recibo fiscal.pdf" in r.headers["content-disposition"]
    )


def test_public_url_is_used_in_signed_urls(tmp_path: Path) -> None:
    server = FileServer("127.0.0.1:0", "http://192.168.1.10:8766/", SECRET, lambda j: None)
    assert server.url_for(3, "a.pdf", ttl=5).startswith("http://192.168.1.10:8766/files/3/")


def test_bad_signature_is_403(env: Env) -> None:
    url = env.server.url_for(1, "recibo.pdf", ttl=60)
    parts = url.split("/")
    parts[-2] = ("0" if parts[-2][0] != "0" else "1") + parts[-2][1:]
    assert httpx.get("/".join(parts)).status_code == 403
    assert httpx.get(url).status_code == 200


def test_signature_covers_job_and_name(env: Env) -> None:
    env.jobs[2] = env.jobs[1]
    url = env.server.url_for(1, "recibo.pdf", ttl=60)
    assert httpx.get(url.replace("/files/1/", "/files/2/")).status_code == 403
    assert httpx.get(url.replace("recibo.pdf", "other.pdf")).status_code == 403


def test_expired_url_is_403(env: Env) -> None:
    url = env.server.url_for(1, "recibo.pdf", ttl=30)
    env.clock.advance(29)
    assert httpx.get(url).status_code == 200
    env.clock.advance(2)
    assert httpx.get(url).status_code == 403


def test_finished_or_unknown_job_is_404(env: Env) -> None:
    server = env.server
    url = server.url_for(1, "recibo.pdf", ttl=60)
    del env.jobs[1]  # the job left flight: the engine's lookup says None
    r = httpx.get(url)
    assert r.status_code == 404 and r.text == "Not Found"
    assert httpx.get(server.url_for(99, "x.pdf", ttl=60)).status_code == 404


def test_only_a_served_download_is_reported_as_fetched(env: Env) -> None:
    """on_fetch tells the daemon the parser has the document: a GET that got the file, not
    a HEAD, a refusal or a job out of flight."""
    server = env.server
    url = server.url_for(1, "recibo.pdf", ttl=60)
    assert httpx.head(url).status_code == 200
    assert httpx.get(url.replace("/files/1/", "/files/2/")).status_code == 403
    assert httpx.get(server.url_for(99, "x.pdf", ttl=60)).status_code == 404
    assert env.fetched == []
    assert httpx.get(url).status_code == 200
    assert env.fetched == [1]


@pytest.mark.parametrize(
    "path",
    [
        "/files/1/../../etc/passwd",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/1/9999999999/abc/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/1/9999999999/abc/recibo.pdf/../../x",
        "/../etc/passwd",
        "/etc/passwd",
    ],
)
def test_path_traversal_attempts_are_refused(env: Env, path: str) -> None:
    assert _raw_get(env.server, path) in (403, 404)
    assert env.fetched == []


def test_traversal_in_a_signed_name_never_reaches_the_disk(env: Env) -> None:
    """Even a validly signed name is only a label: the bytes come from lookup()."""
    url = env.server.url_for(1, "../../../etc/passwd", ttl=60)
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.content == b"%PDF-1.4 demo body"
    assert "/" not in r.headers["content-disposition"].split("filename", 1)[1]


def _callback(server: FileServer, service: str, payload: object) -> httpx.Response:
    return httpx.post(f"{server.url}/callbacks/{service}", json=payload)


def test_callback_with_good_checksum_is_handed_over(env: Env) -> None:
    content = json.dumps({"task_id": "t-1", "state": "done"})
    r = _callback(env.server, "mineru", _signed(content))
    assert r.status_code == 200
    assert env.calls == [("mineru", {"task_id": "t-1"})]  # the ids the verified content names


@pytest.mark.parametrize(
    "payload",
    [
        {"checksum": "0" * 64, "content": '{"task_id": "t-1"}'},
        {"checksum": "ünïcode", "content": "{}"},
        {"content": "{}"},
        ["not", "an", "object"],
        _signed('{"task_id": "t-1"}', seed="other-seed"),
        _signed('{"task_id": "t-1"}', uid="uid-2"),
        _signed("not json"),
        _signed('["t-1"]'),
    ],
)
def test_bad_callbacks_are_403_and_not_handed_over(env: Env, payload: object) -> None:
    assert _callback(env.server, "mineru", payload).status_code == 403
    assert env.calls == []


def test_callback_that_is_not_json_is_403(env: Env) -> None:
    r = httpx.post(f"{env.server.url}/callbacks/mineru", content=b"checksum=1&content=2")
    assert r.status_code == 403
    assert env.calls == []


def test_callback_for_a_service_without_a_verifier_is_404(env: Env) -> None:
    payload = _signed("{}")
    assert _callback(env.server, "docparse", payload).status_code == 404
    assert env.calls == []


def test_verify_callback_matches_the_seed_rule() -> None:
    content = '{"a":1}'
    good = hashlib.sha256(b"u" + b"s" + content.encode()).hexdigest()
    assert verify_callback("u", "s", good, content)
    assert verify_callback("u", "s", good.upper(), content)
    assert not verify_callback("u", "s", good, content + " ")
    assert not verify_callback("u", "other", good, content)


def test_serves_on_the_loop_that_starts_it_and_stop_closes_the_port() -> None:
    """start() returns once connections work, handlers run on the caller's loop (they read
    the daemon's store directly), and stop() frees the port (safe twice)."""

    async def go() -> None:
        loops: list[asyncio.AbstractEventLoop] = []

        def lookup(job_id: int) -> Path | None:
            loops.append(asyncio.get_running_loop())
            return None

        server = FileServer("127.0.0.1:0", None, SECRET, lookup)
        assert await server.start() is server
        port = server.port
        assert port != 0
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"http://127.0.0.1:{port}/nothing")).status_code == 404
            assert (await client.get(server.url_for(1, "a.pdf", ttl=60))).status_code == 404
        assert loops == [asyncio.get_running_loop()]
        with pytest.raises(RuntimeError):
            await server.start()
        await server.stop()
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(f"http://127.0.0.1:{port}/nothing", timeout=2)
        await server.stop()
        assert urlsplit(server.url).port == port

    asyncio.run(go())


def test_a_port_in_use_is_a_config_error() -> None:
    async def go() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            server = FileServer(f"127.0.0.1:{port}", None, SECRET, lambda j: None)
            with pytest.raises(ConfigError, match=str(port)):
                await server.start()

    asyncio.run(go())


def test_deeply_nested_callback_body_is_403(env: Env) -> None:
    """Hostile, unauthenticated input: JSON nested past the parser's recursion limit."""
    r = httpx.post(f"{env.server.url}/callbacks/mineru", content=b"[" * 100_000)
    assert r.status_code == 403
    assert env.calls == []
