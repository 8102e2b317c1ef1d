"""docparse v1 mock: camelCase single tasks, snake_case batches, its own token codes."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver import defaults, samples
from mockserver.loopback import CallbackReceiver, FileServer
from mockserver.server import MockServer

H = {"Authorization": f"Bearer {defaults.DOCPARSE_TOKEN}"}
H2 = {"Authorization": "Bearer mock-docparse-token-2"}

pytestmark = pytest.mark.anyio


@pytest.fixture
def files() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


def assert_single_envelope(body: dict[str, Any]) -> None:
    assert list(body) == ["code", "message", "data", "timestamp"]
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_600_000_000_000


def assert_batch_envelope(body: dict[str, Any]) -> None:
    assert set(body) == {"code", "msg", "trace_id", "data"}
    assert len(body["trace_id"]) == 32


async def test_single_task_camel_case_lifecycle(mock: Any, files: FileServer) -> None:
    client, ctx = mock
    url = files.add("/private/recibo.pdf?exp=1&sig=x", samples.receipt_pdf())
    r = await client.post(
        "/api/v1/extract/task",
        headers=H,
        json={
            "url": url,
            "isOcr": True,
            "enableFormula": True,
            "enableTable": True,
            "language": "ch",
            "dataId": "doc_123",
            "modelVersion": "pipeline",
        },
    )
    body = r.json()
    assert_single_envelope(body)
    assert body["code"] == 0 and body["message"] == "ok"
    task_id = body["data"]["taskId"]
    assert set(body["data"]) == {"taskId"}
    assert files.hits == ["/private/recibo.pdf?exp=1&sig=x"]

    ctx.clock.advance(3.2)
    body = (await client.get(f"/api/v1/extract/task/{task_id}", headers=H)).json()
    assert_single_envelope(body)
    assert body["data"] == {"taskId": task_id, "state": "running", "errMsg": ""}

    ctx.clock.advance(5)
    data = (await client.get(f"/api/v1/extract/task/{task_id}", headers=H)).json()["data"]
    assert list(data) == ["taskId", "state", "fullZipUrl", "markdownUrl", "errMsg"]
    assert data["state"] == "done"
    md = await client.get(data["markdownUrl"])
    assert md.status_code == 200 and md.text.startswith("# Estacion de Servicio Demo")
    zf = zipfile.ZipFile(io.BytesIO((await client.get(data["fullZipUrl"])).content))
    assert zf.read("full.md").decode() == md.text
    [task] = (await client.get("/__admin/tasks?service=docparse")).json()["tasks"]
    assert task["sha256"] == hashlib.sha256(samples.receipt_pdf()).hexdigest()
    assert task["name"] == "recibo.pdf" and task["state"] == "done"


async def test_failed_task_shape(mock: Any, files: FileServer) -> None:
    client, ctx = mock
    url = files.add("/broken.pdf", b"%PDF-1.4 nope")
    task_id = (await client.post("/api/v1/extract/task", headers=H, json={"url": url})).json()[
        "data"
    ]["taskId"]
    ctx.clock.advance(5)
    data = (await client.get(f"/api/v1/extract/task/{task_id}", headers=H)).json()["data"]
    assert data == {"taskId": task_id, "state": "failed", "errMsg": data["errMsg"]}
    assert data["errMsg"].startswith("文件读取失败")


async def test_token_errors(mock: Any) -> None:
    client, _ = mock
    cases = [
        ({}, -20002),
        ({"Authorization": "Bearer bad"}, -20002),
        ({"Authorization": "Bearer mock-docparse-token-expired"}, -20011),
        ({"Authorization": f"Bearer {defaults.MINERU_TOKEN}"}, -20002),
    ]
    for headers, code in cases:
        r = await client.post(
            "/api/v1/extract/task", headers=headers, json={"url": "http://x/a.pdf"}
        )
        assert r.status_code == 401
        assert_single_envelope(r.json())
        assert r.json()["code"] == code
        r = await client.get("/api/v1/extract-results/batch/x", headers=headers)
        assert r.status_code == 401
        assert_batch_envelope(r.json())
        assert r.json()["code"] == code


async def test_ownership_and_not_found(mock: Any, files: FileServer) -> None:
    client, _ = mock
    url = files.add("/a.pdf", samples.multipage_pdf(1))
    task_id = (await client.post("/api/v1/extract/task", headers=H, json={"url": url})).json()[
        "data"
    ]["taskId"]
    assert (await client.get(f"/api/v1/extract/task/{task_id}", headers=H2)).json()["code"] == (
        -60013
    )
    assert (await client.get("/api/v1/extract/task/nope", headers=H)).json()["code"] == -60012


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({}, -10002),
        ({"url": "ftp://x/a.pdf"}, -10002),
        ({"url": "http://x/a.pdf", "dataId": "bad id"}, -10002),
        ({"url": "http://x/a.pdf", "isOcr": "true"}, -500),
        ({"url": "http://x/a.pdf", "callback": "http://x/cb"}, -10002),
        ({"url": "http://x/a.pdf", "pageRanges": "x"}, -10002),
        ({"url": "http://x/a.pdf", "extraFormats": ["pdf"]}, -10002),
    ],
)
async def test_validation(mock: Any, payload: dict[str, Any], code: int) -> None:
    client, _ = mock
    body = (await client.post("/api/v1/extract/task", headers=H, json=payload)).json()
    assert_single_envelope(body)
    assert body["code"] == code and body["data"] is None


async def test_type_from_content_disposition(mock: Any, files: FileServer) -> None:
    client, _ = mock
    with_name = files.add(
        "/f/123?sig=1",
        samples.multipage_pdf(1),
        {"Content-Disposition": 'attachment; filename="informe.pdf"'},
    )
    without = files.add("/f/456?sig=1", samples.multipage_pdf(1))
    r = await client.post("/api/v1/extract/task", headers=H, json={"url": with_name})
    assert r.json()["code"] == 0
    r = await client.post("/api/v1/extract/task", headers=H, json={"url": without})
    assert r.json()["code"] == -60002


async def test_batch_snake_case(mock: Any, files: FileServer) -> None:
    client, ctx = mock
    a = files.add("/a.pdf", samples.multipage_pdf(3))
    b = files.add("/b.pdf", samples.multipage_pdf(1))
    r = await client.post(
        "/api/v1/extract/task/batch",
        headers=H,
        json={
            "files": [{"url": a, "data_id": "abcd", "page_ranges": "2,3"}, {"url": b}],
            "model_version": "vlm",
        },
    )
    body = r.json()
    assert_batch_envelope(body)
    assert body["code"] == 0 and body["msg"] == "ok"
    batch_id = body["data"]["batch_id"]
    ctx.clock.advance(3.5)
    body = (await client.get(f"/api/v1/extract-results/batch/{batch_id}", headers=H)).json()
    assert_batch_envelope(body)
    first, second = body["data"]["extract_result"]
    assert first["file_name"] == "a.pdf" and first["data_id"] == "abcd"
    assert first["state"] == "running" and first["extract_progress"]["total_pages"] == 2
    assert "data_id" not in second
    ctx.clock.advance(10)
    body = (await client.get(f"/api/v1/extract-results/batch/{batch_id}", headers=H)).json()
    assert [e["state"] for e in body["data"]["extract_result"]] == ["done", "done"]
    zip_url = body["data"]["extract_result"][0]["full_zip_url"]
    zf = zipfile.ZipFile(io.BytesIO((await client.get(zip_url)).content))
    name = next(n for n in zf.namelist() if n.endswith("_content_list.json"))
    content = json.loads(zf.read(name))
    assert [b["text"] for b in content if b.get("text_level")] == ["Page 2", "Page 3"]
    assert json.loads(zf.read("layout.json"))["_backend"] == "vlm"
    assert (await client.get(f"/api/v1/extract-results/batch/{batch_id}", headers=H2)).json()[
        "code"
    ] == -60013


@pytest.mark.integration
def test_end_to_end_on_a_real_socket_with_callback() -> None:
    """A real MockServer fetches a loopback URL and calls back with camelCase content."""
    with MockServer() as server, FileServer() as files, CallbackReceiver([500]) as receiver:
        url = files.add("/docs/r.pdf?token=abc", samples.receipt_pdf())
        with httpx.Client(base_url=server.url, headers=H, timeout=30) as client:
            body = client.post(
                "/api/v1/extract/task",
                json={"url": url, "callback": receiver.url, "seed": "xyz"},
            ).json()
            assert body["code"] == 0
            server.ctx.clock.advance(30)
            assert receiver.wait_for(lambda calls: len(calls) >= 1)
            server.ctx.clock.advance(5)
            assert receiver.wait_for(lambda calls: len(calls) >= 2)
            call = receiver.calls[1]["body"]
            content = json.loads(call["content"])
            assert content["taskId"] == body["data"]["taskId"] and content["state"] == "done"
            assert content["markdownUrl"].startswith(server.url)
            checksum = hashlib.sha256(
                (defaults.MOCK_UID + "xyz" + call["content"]).encode()
            ).hexdigest()
            assert call["checksum"] == checksum
            md = client.get(content["markdownUrl"], headers={})
            assert "Total: 45.99" in md.text
