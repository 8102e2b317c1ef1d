"""Presigned uploads as Aliyun OSS does them: V1 query signature, XML errors, streaming."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mockserver import defaults, samples
from mockserver.oss import signing

H = {"Authorization": f"Bearer {defaults.MINERU_TOKEN}"}
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.anyio


async def presigned(client: httpx.AsyncClient, name: str = "a.pdf") -> tuple[str, str]:
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": name}]})
    data = r.json()["data"]
    return data["batch_id"], data["file_urls"][0]


def test_signature_is_hmac_sha1_over_the_v1_string() -> None:
    url = signing.presign("http://h:1", "mineru", "api-upload/x/y.pdf", 1700000000)
    query = parse_qs(urlsplit(url).query)
    expected = base64.b64encode(
        hmac.new(
            signing.ACCESS_KEY_SECRET.encode(),
            b"PUT\n\n\n1700000000\n/mineru/api-upload/x/y.pdf",
            hashlib.sha1,
        ).digest()
    ).decode()
    assert query["Signature"] == [expected]
    assert query["OSSAccessKeyId"] == [signing.ACCESS_KEY_ID]
    assert query["Expires"] == ["1700000000"]
    assert urlsplit(url).path == "/__oss/mineru/api-upload/x/y.pdf"


def test_oss_headers_are_canonicalised_into_the_string() -> None:
    s = signing.string_to_sign(
        "PUT", "md5", "text/plain", "9", "/b/k", {"X-OSS-Meta-B": "2 ", "x-oss-meta-a": "1"}
    )
    assert s == "PUT\nmd5\ntext/plain\n9\nx-oss-meta-a:1\nx-oss-meta-b:2\n/b/k"


async def test_good_put_returns_etag_and_stores_bytes(mock: Any) -> None:
    client, _ctx = mock
    _batch, url = await presigned(client)
    body = samples.receipt_pdf()
    r = await client.put(url, content=body)
    assert r.status_code == 200 and r.content == b""
    assert r.headers["etag"] == '"' + hashlib.md5(body).hexdigest().upper() + '"'
    assert r.headers["x-oss-request-id"]
    [task] = (await client.get("/__admin/tasks")).json()["tasks"]
    assert task["sha256"] == hashlib.sha256(body).hexdigest()


async def test_content_type_breaks_the_signature(mock: Any) -> None:
    client, _ = mock
    _batch, url = await presigned(client)
    r = await client.put(url, content=b"%PDF-1.4", headers={"Content-Type": "application/pdf"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/xml")
    assert "<Code>SignatureDoesNotMatch</Code>" in r.text
    assert "<StringToSign>PUT\n\napplication/pdf\n" in r.text
    assert (await client.get("/__admin/tasks")).json()["tasks"] == []


async def test_tampered_signature_and_unknown_key(mock: Any) -> None:
    client, _ = mock
    _batch, url = await presigned(client)
    r = await client.put(url.replace("Signature=", "Signature=AA"), content=b"x")
    assert r.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in r.text
    r = await client.put(url.replace(signing.ACCESS_KEY_ID, "LTAIother"), content=b"x")
    assert r.status_code == 403 and "<Code>InvalidAccessKeyId</Code>" in r.text
    r = await client.put(url.split("?")[0], content=b"x")
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text


async def test_expired_url_is_access_denied(mock: Any) -> None:
    client, ctx = mock
    _batch, url = await presigned(client)
    ctx.clock.advance(24 * 3600 - 60)
    assert (await client.put(url, content=samples.multipage_pdf(1))).status_code == 200
    ctx.clock.advance(120)
    r = await client.put(url, content=samples.multipage_pdf(1))
    assert r.status_code == 403
    assert "<Code>AccessDenied</Code>" in r.text
    assert "<Message>Request has expired.</Message>" in r.text
    assert "<EC>0002-00000069</EC>" in r.text


async def test_reput_replaces_the_file(mock: Any) -> None:
    client, ctx = mock
    batch_id, url = await presigned(client)
    first, second = samples.multipage_pdf(1), samples.receipt_pdf()
    await client.put(url, content=first)
    await client.put(url, content=second)
    [task] = (await client.get("/__admin/tasks")).json()["tasks"]
    assert task["sha256"] == hashlib.sha256(second).hexdigest()
    ctx.clock.advance(30)
    r = await client.get(f"/api/v4/extract-results/batch/{batch_id}", headers=H)
    zip_url = r.json()["data"]["extract_result"][0]["full_zip_url"]
    import io
    import zipfile

    zf = zipfile.ZipFile(io.BytesIO((await client.get(zip_url)).content))
    assert "Total: 45.99" in zf.read("full.md").decode()


# ----------------------------------------------------------------------- streaming

SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    from mockserver.server import MockServer
    server = MockServer("127.0.0.1", 0).start()
    print(server.url, flush=True)
    sys.stdin.read()  # until the test closes our stdin
    server.close()
    """
)


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture
def mock_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    try:
        assert url.startswith("http://"), url
        yield proc, url
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.integration
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
def test_large_upload_streams_to_disk(mock_process: tuple[subprocess.Popen[str], str]) -> None:
    """A 190 MB PUT must not grow the mock's peak memory by anything like 190 MB."""
    proc, base = mock_process
    size = 190 * 1024 * 1024
    chunk = b"\0" * (1 << 20)
    with httpx.Client(base_url=base, timeout=120) as client:
        r = client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "a.pdf"}]})
        url = r.json()["data"]["file_urls"][0]
        before = _rss_peak_kib(proc.pid)

        def body() -> Iterator[bytes]:
            for _ in range(size // len(chunk)):
                yield chunk

        r = client.put(url, content=body())
        assert r.status_code == 200
        expected = hashlib.md5()
        for part in body():
            expected.update(part)
        assert r.headers["etag"] == f'"{expected.hexdigest().upper()}"'
        growth_mib = (_rss_peak_kib(proc.pid) - before) / 1024
        assert growth_mib < 64, f"peak RSS grew by {growth_mib:.0f} MiB for a 190 MiB upload"
        tasks = client.get("/__admin/tasks").json()["tasks"]
        assert tasks[0]["sha256"] == hashlib.sha256(b"\0" * size).hexdigest()
