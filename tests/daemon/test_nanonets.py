"""The Nanonets client against httpx.MockTransport (no sockets) and the mock app (ASGI)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.config import Secret
from daemon.errors import (
    CredentialsError,
    MalformedResponse,
    ModelNotFound,
    NetworkError,
    QuotaExceeded,
    RateLimited,
    RemoteRejected,
    ServerError,
)
from daemon.services.base import Accepted, Received, ServiceContext, SourceDocument, alone
from daemon.services.nanonets import Nanonets, NanonetsSettings, pages_as_results, parse_predictions
from mockserver import defaults
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import PacerTime

SEED_RESPONSE = {
    "message": "Success",
    "result": [
        {
            "message": "Success",
            "input": "recibo.pdf",
            "page": 0,
            "request_file_id": "file_789",
            "processing_type": "",
            "prediction": [
                {
                    "id": "abc123",
                    "label": "fecha",
                    "xmin": 100,
                    "ymin": 200,
                    "xmax": 250,
                    "ymax": 230,
                    "score": 0.95,
                    "ocr_text": "23/12/2025",
                    "type": "field",
                    "status": "correctly_predicted",
                    "page_no": 0,
                    "label_id": "label_001",
                },
                {
                    "label": "lineas_detalle",
                    "type": "table",
                    "score": 0.89,
                    "xmin": 50,
                    "xmax": 500,
                    "ymin": 500,
                    "ymax": 700,
                    "cells": [
                        {"row": 1, "col": 2, "label": "cantidad", "text": "50L", "score": 0.88},
                        {
                            "row": 1,
                            "col": 1,
                            "label": "descripcion",
                            "text": "Gasoil",
                            "score": 0.91,
                        },
                        {
                            "row": 2,
                            "col": 1,
                            "label": "descripcion",
                            "text": "AdBlue",
                            "score": 0.9,
                        },
                    ],
                },
            ],
        }
    ],
    "signed_urls": {"original": "https://x", "original_with_long_expiry": "https://y"},
}


def _settings(url: str = "https://app.nanonets.com", key: str = "k-1") -> NanonetsSettings:
    return NanonetsSettings(
        name="nanonets", base_url=url, credential=Secret(key, "inline"), model_id="m-1", timeout=5
    )


def _doc(tmp_path: Path, data: bytes | None = None, workdir: str = "work") -> SourceDocument:
    path = tmp_path / "recibo.pdf"
    path.write_bytes(receipt_pdf() if data is None else data)
    return SourceDocument(
        job_id=7,
        path=path,
        name="recibo.pdf",
        kind="pdf",
        pages=1,
        size=path.stat().st_size,
        sha256="ab" * 32,
        workdir=tmp_path / workdir,
    )


def _submit(handler, tmp_path: Path):  # type: ignore[no-untyped-def]
    t = PacerTime()  # a 429's Retry-After passes at once
    ctx = ServiceContext(
        transport=httpx.MockTransport(handler), monotonic=t.monotonic, sleep=t.sleep
    )
    service = Nanonets(_settings(), ctx)

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await alone(service.submit, _doc(tmp_path))
        finally:
            await service.aclose()

    return asyncio.run(go())


def test_request_is_basic_auth_multipart_as_in_the_seed(tmp_path: Path) -> None:
    seen: dict = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen["url"] = str(request.url)
        seen["auth"] = request.headers["authorization"]
        seen["ctype"] = request.headers["content-type"]
        seen["body"] = request.read()
        return httpx.Response(200, json=SEED_RESPONSE)

    outcome = _submit(handler, tmp_path)
    assert seen["url"] == "https://app.nanonets.com/api/v2/OCR/Model/m-1/LabelFile/"
    assert seen["auth"] == "Basic " + base64.b64encode(b"k-1:").decode()
    assert seen["ctype"].startswith("multipart/form-data")
    assert b'name="file"; filename="recibo.pdf"' in seen["body"]
    assert receipt_pdf() in seen["body"]
    assert isinstance(outcome, Received)
    assert outcome.remote["request_file_id"] == "file_789"
    # the raw answer is stored untouched
    assert json.loads((tmp_path / "work/raw/response.json").read_bytes()) == SEED_RESPONSE


def test_predictions_normalize_to_fields_and_tables() -> None:
    fields, tables = parse_predictions(SEED_RESPONSE["result"])
    assert fields == [
        {
            "label": "fecha",
            "text": "23/12/2025",
            "score": 0.95,
            "page": 0,
            "box": [100, 200, 250, 230],
        }
    ]
    [table] = tables
    assert table["columns"] == ["descripcion", "cantidad"]  # ordered by the 1-based col
    assert table["rows"] == [["Gasoil", "50L"], ["AdBlue", ""]]


@pytest.mark.parametrize(
    ("status", "body", "headers", "error"),
    [
        (401, {"message": "Unauthorized"}, {}, CredentialsError),
        (402, {"message": "limit"}, {}, QuotaExceeded),
        (404, {"message": "Model not found"}, {}, ModelNotFound),
        (400, {"message": "file missing"}, {}, RemoteRejected),
        (429, {"message": "slow down"}, {"Retry-After": "7"}, RateLimited),
        (502, "<html><body>Bad Gateway</body></html>", {"content-type": "text/html"}, ServerError),
    ],
)
def test_status_codes_become_errors(tmp_path: Path, status, body, headers, error) -> None:  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers)

    with pytest.raises(error) as info:
        _submit(handler, tmp_path)
    if error is RateLimited:  # only after it was sent again at each of its next turns
        assert info.value.retry_after == 7.0
    assert info.value.retryable == error.retryable


def test_malformed_and_network_errors_are_retryable(tmp_path: Path) -> None:
    with pytest.raises(MalformedResponse) as info:
        _submit(lambda r: httpx.Response(200, text='{"message": "Succ'), tmp_path)
    assert info.value.retryable

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset by peer")

    with pytest.raises(NetworkError) as info2:
        _submit(reset, tmp_path)
    assert info2.value.retryable


def test_against_the_mock_app_in_process(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=create_app())
    settings = _settings("http://mock", defaults.NANONETS_API_KEY)
    settings = NanonetsSettings(**{**settings.__dict__, "model_id": defaults.NANONETS_MODEL_ID})
    service = Nanonets(settings, ServiceContext(transport=transport))
    doc = _doc(tmp_path, workdir="w")

    async def go() -> Received:
        try:
            return await alone(service.submit, doc)  # type: ignore[return-value]
        finally:
            await service.aclose()

    outcome = asyncio.run(go())
    normalized = service.normalize(tmp_path / "w" / "raw", doc)
    assert outcome.remote["request_file_id"]
    assert {f["label"]: f["text"] for f in normalized.fields} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    assert normalized.tables[0]["rows"] == [["Gasoil", "50L"]]
    assert "| Gasoil | 50L |" in normalized.markdown


def test_wrong_key_against_the_mock_is_a_credentials_error(tmp_path: Path) -> None:
    transport = httpx.ASGITransport(app=create_app())
    settings = NanonetsSettings(
        name="nanonets",
        base_url="http://mock",
        credential=Secret("wrong-key", "inline"),
        model_id=defaults.NANONETS_MODEL_ID,
    )
    service = Nanonets(settings, ServiceContext(transport=transport))

    async def go() -> None:
        try:
            await alone(service.submit, _doc(tmp_path, workdir="w"))
        finally:
            await service.aclose()

    with pytest.raises(CredentialsError):
        asyncio.run(go())


def test_small_and_large_uploads_carry_the_same_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-buffer body for small files parses like httpx's streamed one."""
    import daemon.services.nanonets as module

    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.headers["content-type"], request.read()))
        return httpx.Response(200, json=SEED_RESPONSE)

    _submit(handler, tmp_path)  # small: one buffer
    monkeypatch.setattr(module, "SMALL_UPLOAD", 0)
    _submit(handler, tmp_path)  # "large": streamed by httpx
    import email.parser

    for ctype, body in bodies:
        msg = email.parser.BytesParser().parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
        )
        parts = {p.get_param("name", header="content-disposition"): p for p in msg.get_payload()}
        assert parts["file"].get_filename() == "recibo.pdf"
        assert parts["file"].get_payload(decode=True) == receipt_pdf()
        assert parts["file"].get_content_type() == "application/pdf"
        assert json.loads(parts["request_metadata"].get_payload())["docinbox_job"] == 7


def test_a_batch_answers_per_document_each_in_its_own_work_folder(tmp_path: Path) -> None:
    """Nanonets has no batch API: one request per document, and one document's error is
    its own outcome, never its neighbour's."""

    def handler(request: httpx.Request) -> httpx.Response:
        if b"refused.pdf" in request.read():
            return httpx.Response(400, json={"message": "file missing"})
        return httpx.Response(200, json=SEED_RESPONSE)

    good = _doc(tmp_path, workdir="w7")
    bad_path = tmp_path / "refused.pdf"
    bad_path.write_bytes(receipt_pdf())
    bad = SourceDocument(
        job_id=8,
        path=bad_path,
        name="refused.pdf",
        kind="pdf",
        pages=1,
        size=bad_path.stat().st_size,
        sha256="cd" * 32,
        workdir=tmp_path / "w8",
    )
    service = Nanonets(_settings(), ServiceContext(transport=httpx.MockTransport(handler)))

    async def go():  # type: ignore[no-untyped-def]
        try:
            return await service.submit([good, bad], lambda _job, _remote: None)
        finally:
            await service.aclose()

    out = asyncio.run(go())
    assert set(out) == {7, 8}
    assert isinstance(out[7], Received) and out[7].remote["request_file_id"] == "file_789"
    assert isinstance(out[8], RemoteRejected) and not out[8].retryable
    assert json.loads((tmp_path / "w7/raw/response.json").read_bytes()) == SEED_RESPONSE
    assert not (tmp_path / "w8/raw").exists()


# ---------------------------------------------------------------------- real-world fidelity
# (issue 15: what Nanonets does beyond seed 000; sources in mockserver/nanonets/__init__.py)

GET_PREDICTIONS = "/InferenceRequestFiles/GetPredictions/"


class Mock:
    """The mock app in-process, a Nanonets client on it, and a fake clock for docinbox."""

    def __init__(self, **config: object) -> None:
        self.ctx = MockContext()
        app = create_app(self.ctx)
        if config:
            self.ctx.configure({"nanonets": dict(config)})
        self.clock = FakeClock(self.ctx.clock.now())
        settings = NanonetsSettings(
            name="nanonets",
            base_url="http://mock",
            credential=Secret(defaults.NANONETS_API_KEY, "inline"),
            model_id=defaults.NANONETS_MODEL_ID,
            timeout=5,
        )
        self.service = Nanonets(
            settings, ServiceContext(transport=httpx.ASGITransport(app=app), clock=self.clock)
        )

    def paths(self, method: str = "GET") -> list[str]:
        return [e["path"] for e in self.ctx.journal.entries() if e["method"] == method]

    def polls(self) -> list[str]:
        """Which polling path each GET took: "documented" or "seed"."""
        return ["documented" if GET_PREDICTIONS in p else "seed" for p in self.paths()]

    def submit(self, doc: SourceDocument) -> object:
        return asyncio.run(alone(self.service.submit, doc))

    def poll(self, doc: SourceDocument) -> object:
        return asyncio.run(self.service.poll([doc], lambda _j, _r: None))[doc.job_id]

    def close(self) -> None:
        asyncio.run(self.service.aclose())
        self.ctx.close()


def long_doc(tmp_path: Path, pages: int = 5) -> SourceDocument:
    path = tmp_path / "largo.pdf"
    path.write_bytes(multipage_pdf(pages))
    return SourceDocument(
        job_id=9,
        path=path,
        name="largo.pdf",
        kind="pdf",
        pages=pages,
        size=path.stat().st_size,
        sha256="ef" * 32,
        workdir=tmp_path / "w9",
    )


def advanced(doc: SourceDocument, outcome: object) -> SourceDocument:
    assert isinstance(outcome, Accepted), outcome
    return SourceDocument(**{**doc.__dict__, "remote": {**doc.remote, **outcome.remote}})


def until_received(mock: Mock, doc: SourceDocument, step: float = 10.0) -> tuple[object, list]:
    """Poll, moving both clocks, until the answer is no longer "wait"."""
    seen = []
    for _ in range(20):
        mock.ctx.clock.advance(step)
        mock.clock.advance(step)
        out = mock.poll(doc)
        seen.append(out)
        if not isinstance(out, Accepted):
            return out, seen
        doc = advanced(doc, out)
    raise AssertionError("never finished")


@pytest.mark.parametrize("ack", ["nested", "flat"])
def test_async_polls_the_documented_get_predictions(tmp_path: Path, ack: str) -> None:
    """docs.nanonets.com ocrmodelgetpredictionfilebyfileid; the ack nested as the docs show
    (today's code found no request_file_id in it) or flat as the seed does."""
    mock = Mock(async_ack=ack)
    try:
        doc = long_doc(tmp_path)
        accepted = mock.submit(doc)
        doc = advanced(doc, accepted)
        out, _ = until_received(mock, doc)
        assert isinstance(out, Received), out
        gets = mock.paths()
        assert gets and all(GET_PREDICTIONS in p for p in gets)  # never the seed's getFile
        result = mock.service.normalize(doc.raw, doc)
        assert {f["label"] for f in result.fields} == set()  # multipage_pdf: no receipt
        assert json.loads((doc.raw / "response.json").read_bytes())["unmoderated_images_count"] == 5
    finally:
        mock.close()


def test_pending_pages_are_not_a_finished_prediction(tmp_path: Path) -> None:
    """Page records listed with status "pending" while processing: today's code took any
    listed page for done and stored an empty prediction."""
    mock = Mock()
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        first = mock.poll(doc)
        assert isinstance(first, Accepted) and not (doc.raw / "response.json").exists()
        out, _ = until_received(mock, advanced(doc, first))
        assert isinstance(out, Received)
        body = json.loads((doc.raw / "response.json").read_bytes())
        assert {p["status"] for p in body["unmoderated_images"]} == {"success"}
    finally:
        mock.close()


def test_the_docs_success_spelling_is_finished_too(tmp_path: Path) -> None:
    mock = Mock(status_spelling="Success")
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        out, _ = until_received(mock, doc)
        assert isinstance(out, Received)
    finally:
        mock.close()


def test_a_failed_page_fails_the_document(tmp_path: Path) -> None:
    mock = Mock(fail_files=["largo*"])
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        out, _ = until_received(mock, doc)
        assert isinstance(out, RemoteRejected) and out.scope == "document"
        assert "failure" in out.message
    finally:
        mock.close()


def test_a_service_without_get_predictions_falls_back_to_get_file(tmp_path: Path) -> None:
    mock = Mock(poll_paths="seed")
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        first = mock.poll(doc)
        assert isinstance(first, Accepted) and first.remote["poll_path"] == "seed"
        assert mock.polls() == ["documented", "seed"]
        out, _ = until_received(mock, advanced(doc, first))
        assert isinstance(out, Received)
        later = mock.polls()[2:]
        assert later and set(later) == {"seed"}  # the working path remembered
    finally:
        mock.close()


def test_a_404_on_a_poll_never_pauses_the_service(tmp_path: Path) -> None:
    """Today a 404 on the poll was ModelNotFound, which pauses Nanonets for every document
    over 3 pages.  Now: wait a while (not visible yet), then fail this document only."""
    mock = Mock()
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        lost = SourceDocument(
            **{**doc.__dict__, "remote": {**doc.remote, "request_file_id": "unknown-file"}}
        )
        early = mock.poll(lost)
        assert isinstance(early, Accepted)
        assert mock.polls() == ["documented", "seed"]
        mock.clock.advance(600)
        late = mock.poll(lost)
        assert isinstance(late, RemoteRejected) and not isinstance(late, ModelNotFound)
        assert late.scope == "document" and late.status == 404 and not late.retryable
        assert "deleted" in late.hint
    finally:
        mock.close()


def test_a_poll_against_a_wrong_model_is_the_documents_problem(tmp_path: Path) -> None:
    mock = Mock()
    try:
        doc = advanced(long_doc(tmp_path), mock.submit(long_doc(tmp_path)))
        other = SourceDocument(
            **{**doc.__dict__, "remote": {**doc.remote, "model_id": "not-a-model"}}
        )
        mock.clock.advance(600)
        err = mock.poll(other)
        assert isinstance(err, RemoteRejected) and err.scope == "document"
    finally:
        mock.close()


def test_page_record_boxes_with_page_normalize() -> None:
    """GetPredictions page records: boxes carry ``page`` (real capture), not ``page_no``."""
    body = {
        "moderated_images_count": 0,
        "unmoderated_images_count": 2,
        "moderated_images": [],
        "unmoderated_images": [
            {
                "page": 1,
                "status": "success",
                "predicted_boxes": [
                    {
                        "label": "total",
                        "ocr_text": "9.99",
                        "type": "field",
                        "page": 1,
                        "score": 1,
                        "xmin": 1,
                        "ymin": 2,
                        "xmax": 3,
                        "ymax": 4,
                    }
                ],
            },
            {"page": 0, "status": "success", "predicted_boxes": [], "moderated_boxes": []},
        ],
        "signed_urls": {},
    }
    fields, _tables = parse_predictions(pages_as_results(body))
    assert fields == [
        {"label": "total", "text": "9.99", "score": 1, "page": 1, "box": [1, 2, 3, 4]}
    ]
