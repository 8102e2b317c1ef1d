"""Seed 002's (MinerU v4) example requests and response shapes, against the mock and,
with ``MINERU_API_KEY`` in the environment, against https://mineru.net (``-m real``).

Shapes are checked field by field for both targets; values that only the mock can
promise (error codes of our choosing, timing on the mock clock) only for the mock.
Against the real service the document is the seed's own demo URL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from mockserver.defaults import MINERU_TOKEN
from mockserver.loopback import FileServer
from mockserver.samples import multipage_pdf

from .conftest import TaskTarget, real_or_mock

REAL_URL = os.environ.get("MINERU_BASE_URL", "https://mineru.net")
DEMO_URL = "https://cdn-mineru.openxlab.org.cn/demo/example.pdf"
STATES = {"waiting-file", "pending", "running", "converting", "done", "failed"}
ENVELOPE = {"code", "data", "msg", "trace_id"}


@dataclass
class Target(TaskTarget):
    pdf: bytes = field(default_factory=lambda: multipage_pdf(2))

    def document_url(self) -> str:
        if self.files is None:
            return DEMO_URL
        return self.files.add("/demo/example.pdf", self.pdf)


@pytest.fixture(params=real_or_mock("MINERU_API_KEY"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mock":
        server = request.getfixturevalue("mock_server")
        with FileServer() as files:
            yield Target("mock", server.url, MINERU_TOKEN, server.ctx, files)
    else:
        yield Target("real", REAL_URL, os.environ["MINERU_API_KEY"], None)


def check_envelope(body: dict[str, Any]) -> None:
    assert set(body) == ENVELOPE
    assert isinstance(body["code"], int)
    assert isinstance(body["msg"], str) and isinstance(body["trace_id"], str)


def check_task_data(data: dict[str, Any], task_id: str) -> None:
    assert data["task_id"] == task_id
    assert data["state"] in STATES
    assert isinstance(data["err_msg"], str)
    if data["state"] == "running":
        progress = data["extract_progress"]
        assert isinstance(progress["extracted_pages"], int)
        assert isinstance(progress["total_pages"], int)
        time.strptime(progress["start_time"], "%Y-%m-%d %H:%M:%S")
    if data["state"] == "done":
        assert data["full_zip_url"].startswith("http")


def test_create_task_and_poll(target: Target) -> None:
    with target.client() as client:
        r = client.post(
            "/api/v4/extract/task",
            json={"url": target.document_url(), "is_ocr": True, "enable_formula": False},
        )
        assert r.status_code == 200
        body = r.json()
        check_envelope(body)
        assert body["code"] == 0 and body["msg"] == "ok"
        assert set(body["data"]) == {"task_id"}
        task_id = body["data"]["task_id"]
        first = client.get(f"/api/v4/extract/task/{task_id}").json()
        check_envelope(first)
        check_task_data(first["data"], task_id)
        data = target.wait(
            client,
            f"/api/v4/extract/task/{task_id}",
            lambda d: check_task_data(d, task_id) or d["state"] in ("done", "failed"),
        )
        assert data["state"] == "done" and data["err_msg"] == ""
        archive = httpx.get(data["full_zip_url"], timeout=120)  # no credentials
        assert archive.status_code == 200 and archive.content[:2] == b"PK"


def test_upload_batch(target: Target) -> None:
    with target.client() as client:
        r = client.post(
            "/api/v4/file-urls/batch",
            json={
                "enable_formula": True,
                "language": "ch",
                "enable_table": True,
                "files": [{"name": "demo.pdf", "is_ocr": True, "data_id": "abcd"}],
            },
        )
        body = r.json()
        check_envelope(body)
        assert body["code"] == 0
        batch_id = body["data"]["batch_id"]
        [url] = body["data"]["file_urls"]
        assert "OSSAccessKeyId=" in url and "Signature=" in url and "Expires=" in url
        entry = client.get(f"/api/v4/extract-results/batch/{batch_id}").json()
        assert entry["data"]["extract_result"][0]["state"] == "waiting-file"
        put = httpx.put(url, content=target.pdf, timeout=120)  # no Content-Type, as seed says
        assert put.status_code == 200 and put.headers["etag"].startswith('"')

        def finished(data: dict[str, Any]) -> bool:
            assert data["batch_id"] == batch_id
            [item] = data["extract_result"]
            assert item["file_name"] == "demo.pdf" and item["data_id"] == "abcd"
            assert item["state"] in STATES and isinstance(item["err_msg"], str)
            return item["state"] in ("done", "failed")

        data = target.wait(client, f"/api/v4/extract-results/batch/{batch_id}", finished)
        assert data["extract_result"][0]["full_zip_url"].startswith("http")


def test_put_with_content_type_is_rejected(target: Target) -> None:
    with target.client() as client:
        body = client.post("/api/v4/file-urls/batch", json={"files": [{"name": "a.pdf"}]}).json()
        [url] = body["data"]["file_urls"]
        r = httpx.put(url, content=target.pdf, headers={"Content-Type": "application/pdf"})
        assert r.status_code == 403
        assert "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_url_batch(target: Target) -> None:
    with target.client() as client:
        body = client.post(
            "/api/v4/extract/task/batch",
            json={
                "enable_formula": True,
                "language": "ch",
                "enable_table": True,
                "files": [{"url": target.document_url(), "is_ocr": True, "data_id": "abcd"}],
            },
        ).json()
        check_envelope(body)
        assert body["code"] == 0 and set(body["data"]) == {"batch_id"}


def test_bad_token_is_401_a0202(target: Target) -> None:
    with target.client("not-a-token") as client:
        r = client.post("/api/v4/extract/task", json={"url": target.document_url()})
        assert r.status_code == 401
        assert r.json()["msgCode"] == "A0202"


def test_unknown_task(target: Target) -> None:
    with target.client() as client:
        body = client.get("/api/v4/extract/task/00000000-0000-0000-0000-000000000000").json()
        assert body["code"] != 0 and isinstance(body["msg"], str)
        if target.ctx is not None:
            assert body["code"] == -60012
