"""The seed's (000) Nanonets requests and response shapes, against the mock — and the real API.

Every test runs against the mock. With ``NANONETS_API_KEY`` (and ``NANONETS_MODEL_ID``)
in the environment it also runs against https://app.nanonets.com (``-m real`` selects
only those), so the mock's shapes can be checked against the truth. Field *values* are
only asserted for the mock's demo model; against a real model only the shapes are.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mockserver.core import MockContext
from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from mockserver.samples import multipage_pdf, receipt_pdf

from .conftest import real_or_mock

REAL_URL = os.environ.get("NANONETS_BASE_URL", "https://app.nanonets.com")
FIELD_KEYS = {"id", "label", "xmin", "ymin", "xmax", "ymax", "score", "ocr_text", "type",
              "status", "page_no", "label_id"}  # fmt: skip
TABLE_KEYS = {"label", "type", "score", "xmin", "xmax", "ymin", "ymax", "cells"}
CELL_KEYS = {"row", "col", "label", "text", "score"}
ENTRY_KEYS = {"message", "input", "prediction", "page", "request_file_id", "processing_type"}


@dataclass
class Target:
    name: str
    base_url: str
    key: str
    model_id: str
    ctx: MockContext | None  # None: the real service

    @property
    def model(self) -> str:
        return f"{self.base_url}/api/v2/OCR/Model/{self.model_id}"

    @property
    def inferences(self) -> str:
        """The documented retrieval prefix (docs.nanonets.com)."""
        return f"{self.base_url}/api/v2/Inferences/Model/{self.model_id}"

    def client(self) -> httpx.Client:
        return httpx.Client(auth=(self.key, ""), timeout=300)


@pytest.fixture(params=real_or_mock("NANONETS_API_KEY", "NANONETS_MODEL_ID"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mock":
        server = request.getfixturevalue("mock_server")
        yield Target("mock", server.url, NANONETS_API_KEY, NANONETS_MODEL_ID, server.ctx)
    else:
        yield Target(
            "real", REAL_URL, os.environ["NANONETS_API_KEY"], os.environ["NANONETS_MODEL_ID"], None
        )


def check_prediction(box: dict, page_key: str = "page_no") -> None:
    """A predicted box: LabelFile's ``prediction[]`` items carry ``page_no``, the boxes of
    page records ``page`` (real captures, /work/notes/fidelity.md §2)."""
    if box["type"] == "field":
        assert set(box) >= FIELD_KEYS - {"page_no"} | {page_key}
        assert isinstance(box["ocr_text"], str)
        assert isinstance(box[page_key], int)
    else:
        assert box["type"] == "table"
        assert set(box) >= TABLE_KEYS
        for cell in box["cells"]:
            assert set(cell) >= CELL_KEYS
            assert cell["row"] >= 1 and cell["col"] >= 1  # the seed's cells are 1-based
    for k in ("xmin", "ymin", "xmax", "ymax"):
        assert isinstance(box[k], int | float)
    assert 0 <= box["score"] <= 1


def check_success(body: dict) -> None:
    assert body["message"] == "Success"
    assert isinstance(body["result"], list) and body["result"]
    assert isinstance(body["signed_urls"], dict)
    for entry in body["result"]:
        assert set(entry) >= ENTRY_KEYS
        assert entry["message"] == "Success"
        for box in entry["prediction"]:
            check_prediction(box)


def test_sync_label_file(target: Target) -> None:
    with target.client() as c:
        response = c.post(
            target.model + "/LabelFile/",
            files={"file": ("recibo.pdf", receipt_pdf(), "application/pdf")},
            data={"request_metadata": '{"conductor_id": "123"}'},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    check_success(body)
    entry = body["result"][0]
    assert entry["input"] == "recibo.pdf" and entry["page"] == 0
    # real captures: signed_urls keyed by storage path (the seed shows a flat pair)
    assert entry["filepath"] in body["signed_urls"] and entry["file_url"] in body["signed_urls"]
    assert "original_with_long_expiry" in body["signed_urls"][entry["filepath"]]
    assert entry["processing_type"] in ("sync", "")  # real "sync"; docs and seed ""
    if target.ctx is not None:
        values = {p["label"]: p.get("ocr_text") for p in entry["prediction"]}
        assert values["fecha"] == "23/12/2025" and values["total"] == "45.99"
        table = next(p for p in entry["prediction"] if p["type"] == "table")
        assert [c["text"] for c in table["cells"]] == ["Gasoil", "50L"]


def test_async_label_file_then_get_predictions(target: Target) -> None:
    with target.client() as c:
        response = c.post(
            target.model + "/LabelFile/?async=true",
            files={"file": ("documento_largo.pdf", multipage_pdf(4), "application/pdf")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["message"] == "Success"
        # the docs nest result twice for LabelFile (the seed: once); either way the pages
        pages = [p for e in body["result"] for p in (e.get("result") or [e])]
        for page in pages:
            assert set(page) >= ENTRY_KEYS and page["prediction"] == []
            assert page["processing_type"] == "async"
        rid = pages[0]["request_file_id"]
        url = f"{target.inferences}/InferenceRequestFiles/GetPredictions/{rid}"
        if target.ctx is not None:
            target.ctx.clock.advance(3600)
        deadline = time.monotonic() + (600 if target.ctx is None else 5)
        while True:
            result = c.get(url)
            assert result.status_code == 200, result.text
            done = result.json()
            listed = done["moderated_images"] + done["unmoderated_images"]
            if listed and all(p["status"].lower() == "success" for p in listed):
                break
            assert time.monotonic() < deadline, "GetPredictions never finished"
            time.sleep(5)  # only against the real service: its processing takes minutes
    assert {"signed_urls", "moderated_images", "unmoderated_images"} <= set(done)
    for page in listed:
        assert page["request_file_id"] == rid
        for box in page["predicted_boxes"]:
            check_prediction(box, page_key="page")
    if target.ctx is not None:
        assert len(listed) == 4


def test_wrong_key_is_401(target: Target) -> None:
    url = f"{target.inferences}/InferenceRequestFiles/GetPredictions/{uuid.uuid4()}"
    response = httpx.get(url, auth=("not-a-key", ""))
    assert response.status_code == 401


def test_unknown_model_is_404(target: Target) -> None:
    response = httpx.post(
        f"{target.base_url}/api/v2/OCR/Model/{uuid.uuid4()}/LabelFile/",
        auth=(target.key, ""),
        files={"file": ("recibo.pdf", receipt_pdf(), "application/pdf")},
        timeout=120,
    )
    assert response.status_code == 404


def test_missing_file_is_400(target: Target) -> None:
    with target.client() as c:
        response = c.post(target.model + "/LabelFile/", data={"request_metadata": "{}"})
    assert response.status_code == 400


def test_model_images_listing(target: Target) -> None:
    with target.client() as c:
        response = c.get(
            target.model + "/getModelImages/",
            params={"start_day_interval": 30, "current_batch_day": 0},
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["moderated_images_count"], int)
    assert isinstance(body["unmoderated_images_count"], int)
