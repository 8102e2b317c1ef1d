"""The daemon's file server: serves a document only at a valid, unexpired, signed URL for a
job still in flight; refuses everything else without detail; verifies callbacks."""

from __future__ import annotations

import hashlib
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.fileserver import FileServer
from daemon.services.mineru import verify_callback

SECRET = b"0123456789abcdef-test-secret"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[FileServer, FakeClock, dict[int, Path], list]]:
    doc = tmp_path / "secret-folder" / "recibo.pdf"
    doc.parent.mkdir()
    doc.write_bytes(b"%PDF-1.4 demo body")
    jobs: dict[int, Path] = {1: doc}
    calls: list = []
    clock = FakeClock()
    server = FileServer("127.0.0.1:0", None, SECRET, jobs.get, clock=clock,
                        on_callback=lambda s, d: calls.append((s, d)),
                        callback_keys={"mineru": ("uid-1", "seed_1")})
    server.start()
    try:
        yield server, clock, jobs, calls
    finally:
        server.stop()


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


def test_valid_url_streams_the_file_with_type_and_name(env) -> None:  # type: ignore[no-untyped-def]
    server, _clock, _jobs, _ = env
    url = server.url_for(1, "recibo fiscal.pdf", ttl=60)
    assert url.startswith(f"http://127.0.0.1:{server.port}/files/1/")
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.content == b"%PDF-1.4 demo body"
    assert r.headers["content-type"] == "application/pdf"
    assert "recibo%20fiscal.pdf" in r.headers["content-disposition"] or \
        "recibo fiscal.pdf" in r.headers["content-disposition"]


def test_public_url_is_used_in_signed_urls(tmp_path: Path) -> None:
    server = FileServer("127.0.0.1:0", "http://192.168.1.10:8766/", SECRET, lambda j: None)
    assert server.url_for(3, "a.pdf", ttl=5).startswith("http://192.168.1.10:8766/files/3/")


def test_bad_signature_is_403(env) -> None:  # type: ignore[no-untyped-def]
    server, *_ = env
    url = server.url_for(1, "recibo.pdf", ttl=60)
    parts = url.split("/")
    parts[-2] = ("0" if parts[-2][0] != "0" else "1") + parts[-2][1:]
    assert httpx.get("/".join(parts)).status_code == 403
    assert httpx.get(url).status_code == 200


def test_signature_covers_job_and_name(env) -> None:  # type: ignore[no-untyped-def]
    server, _clock, jobs, _ = env
    jobs[2] = jobs[1]
    url = server.url_for(1, "recibo.pdf", ttl=60)
    assert httpx.get(url.replace("/files/1/", "/files/2/")).status_code == 403
    assert httpx.get(url.replace("recibo.pdf", "other.pdf")).status_code == 403


def test_expired_url_is_403(env) -> None:  # type: ignore[no-untyped-def]
    server, clock, *_ = env
    url = server.url_for(1, "recibo.pdf", ttl=30)
    clock.advance(29)
    assert httpx.get(url).status_code == 200
    clock.advance(2)
    assert httpx.get(url).status_code == 403


def test_finished_or_unknown_job_is_404(env) -> None:  # type: ignore[no-untyped-def]
    server, _clock, jobs, _ = env
    url = server.url_for(1, "recibo.pdf", ttl=60)
    del jobs[1]  # the job left flight: the engine's lookup says None
    r = httpx.get(url)
    assert r.status_code == 404 and r.text == "Not Found"
    assert httpx.get(server.url_for(99, "x.pdf", ttl=60)).status_code == 404


@pytest.mark.parametrize("path", [
    "/files/1/../../etc/passwd",
    "/files/..%2F..%2Fetc%2Fpasswd",
    "/files/1/9999999999/abc/..%2F..%2F..%2Fetc%2Fpasswd",
    "/files/%2e%2e/%2e%2e/etc/passwd",
    "/files/1/9999999999/abc/recibo.pdf/../../x",
    "/../etc/passwd",
    "/etc/passwd",
])
def test_path_traversal_attempts_are_refused(env, path: str) -> None:  # type: ignore[no-untyped-def]
    server, *_ = env
    assert _raw_get(server, path) in (403, 404)


def test_traversal_in_a_signed_name_never_reaches_the_disk(env) -> None:  # type: ignore[no-untyped-def]
    """Even a validly signed name is only a label: the bytes come from lookup()."""
    server, *_ = env
    url = server.url_for(1, "../../../etc/passwd", ttl=60)
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.content == b"%PDF-1.4 demo body"
    assert "/" not in r.headers["content-disposition"].split("filename", 1)[1]


def _callback(server: FileServer, service: str, payload: object) -> httpx.Response:
    return httpx.post(f"{server.url}/callbacks/{service}", json=payload)


def test_callback_with_good_checksum_is_handed_over(env) -> None:  # type: ignore[no-untyped-def]
    server, _clock, _jobs, calls = env
    content = json.dumps({"task_id": "t-1", "state": "done"})
    checksum = hashlib.sha256(("uid-1" + "seed_1" + content).encode()).hexdigest()
    r = _callback(server, "mineru", {"checksum": checksum, "content": content})
    assert r.status_code == 200
    assert calls == [("mineru", {"task_id": "t-1", "state": "done"})]


@pytest.mark.parametrize("payload", [
    {"checksum": "0" * 64, "content": "{\"task_id\": \"t-1\"}"},
    {"checksum": "ünïcode", "content": "{}"},
    {"content": "{}"},
    ["not", "an", "object"],
])
def test_bad_callbacks_are_403_and_not_handed_over(env, payload: object) -> None:  # type: ignore[no-untyped-def]
    server, _clock, _jobs, calls = env
    assert _callback(server, "mineru", payload).status_code == 403
    assert calls == []


def test_callback_for_a_service_without_keys_is_404(env) -> None:  # type: ignore[no-untyped-def]
    server, _clock, _jobs, calls = env
    content = "{}"
    checksum = hashlib.sha256(("uid-1" + "seed_1" + content).encode()).hexdigest()
    assert _callback(server, "docparse", {"checksum": checksum, "content": content}
                     ).status_code == 404
    assert calls == []


def test_verify_callback_matches_the_seed_rule() -> None:
    content = '{"a":1}'
    good = hashlib.sha256(b"u" + b"s" + content.encode()).hexdigest()
    assert verify_callback("u", "s", good, content)
    assert verify_callback("u", "s", good.upper(), content)
    assert not verify_callback("u", "s", good, content + " ")
    assert not verify_callback("u", "other", good, content)


def test_stop_closes_the_port(tmp_path: Path) -> None:
    server = FileServer("127.0.0.1:0", None, SECRET, lambda j: None).start()
    port = server.port
    assert httpx.get(f"http://127.0.0.1:{port}/nothing").status_code == 404
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/nothing", timeout=2)
    assert urlsplit(server.url).port == port
