"""Seed 001's (docparse v1) example requests and response shapes, against the mock and,
with ``DOCPARSE_API_KEY`` + ``DOCPARSE_BASE_URL`` in the environment, against that
server (``-m real``). Its document is ``DOCPARSE_SAMPLE_URL`` (default: MinerU's demo PDF),
which the server must be able to fetch.

The two envelopes are the point: single-task endpoints answer
``{code, message, data, timestamp}`` with camelCase data, batch endpoints
``{code, msg, trace_id, data}`` with snake_case data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mockserver.defaults import DOCPARSE_TOKEN
from mockserver.loopback import FileServer
from mockserver.samples import multipage_pdf

from .conftest import TaskTarget, real_or_mock

SAMPLE_URL = os.environ.get(
    "DOCPARSE_SAMPLE_URL", "https://cdn-mineru.openxlab.org.cn/demo/example.pdf"
)
STATES = {"pending", "running", "converting", "done", "failed"}
SINGLE = {"code", "message", "data", "timestamp"}
BATCH = {"code", "msg", "trace_id", "data"}


class Target(TaskTarget):
    def document_url(self) -> str:
        if self.files is None:
            return SAMPLE_URL
        return self.files.add("/files/document.pdf?expires=1&sig=abc", multipage_pdf(2))


@pytest.fixture(params=real_or_mock("DOCPARSE_API_KEY", "DOCPARSE_BASE_URL"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mock":
        server = request.getfixturevalue("mock_server")
        with FileServer() as files:
            yield Target("mock", server.url, DOCPARSE_TOKEN, server.ctx, files)
    else:
        base = os.environ["DOCPARSE_BASE_URL"].rstrip("/")
        yield Target("real", base, os.environ["DOCPARSE_API_KEY"], None)


def check_single(body: dict[str, Any]) -> None:
    assert set(body) == SINGLE
    assert isinstance(body["code"], int) and isinstance(body["message"], str)
    assert isinstance(body["timestamp"], int)


def check_batch(body: dict[str, Any]) -> None:
    assert set(body) == BATCH
    assert isinstance(body["code"], int) and isinstance(body["msg"], str)
    assert isinstance(body["trace_id"], str)


def test_single_task(target: Target) -> None:
    with target.client() as client:
        body = client.post(
            "/api/v1/extract/task",
            json={
                "url": target.document_url(),
                "isOcr": True,
                "enableFormula": True,
                "enableTable": True,
                "language": "ch",
            },
        ).json()
        check_single(body)
        assert body["code"] == 0
        task_id = body["data"]["taskId"]

        def finished(data: dict[str, Any]) -> bool:
            assert data["taskId"] == task_id and data["state"] in STATES
            assert isinstance(data["errMsg"], str)
            assert "task_id" not in data and "err_msg" not in data
            return data["state"] in ("done", "failed")

        first = client.get(f"/api/v1/extract/task/{task_id}").json()
        check_single(first)
        data = target.wait(client, f"/api/v1/extract/task/{task_id}", finished)
        assert data["state"] == "done"
        assert data["fullZipUrl"].startswith("http") and data["markdownUrl"].startswith("http")
        assert httpx.get(data["markdownUrl"], timeout=120).status_code == 200


def test_batch(target: Target) -> None:
    with target.client() as client:
        body = client.post(
            "/api/v1/extract/task/batch",
            json={
                "files": [{"url": target.document_url(), "data_id": "abcd"}],
                "model_version": "vlm",
            },
        ).json()
        check_batch(body)
        assert body["code"] == 0
        batch_id = body["data"]["batch_id"]
        result = client.get(f"/api/v1/extract-results/batch/{batch_id}").json()
        check_batch(result)
        assert result["data"]["batch_id"] == batch_id
        [item] = result["data"]["extract_result"]
        assert item["data_id"] == "abcd" and item["state"] in STATES
        assert isinstance(item["file_name"], str) and isinstance(item["err_msg"], str)


def test_bad_token(target: Target) -> None:
    with target.client("not-a-token") as client:
        body = client.post("/api/v1/extract/task", json={"url": target.document_url()}).json()
        check_single(body)
        assert body["code"] == -20002


def test_unknown_task(target: Target) -> None:
    with target.client() as client:
        body = client.get("/api/v1/extract/task/00000000-0000-0000-0000-000000000000").json()
        check_single(body)
        assert body["code"] != 0
        if target.ctx is not None:
            assert body["code"] == -60012
