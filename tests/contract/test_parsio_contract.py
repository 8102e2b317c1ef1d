"""Parsio's public API as docinbox uses it, against the mock and, with ``PARSIO_API_KEY`` and
``PARSIO_MAILBOX_ID`` in the environment, against https://api.parsio.io (``-m real``;
``PARSIO_BASE_URL`` overrides it).  Real runs upload the README's receipt and spend a
few credits.

Where Parsio's documentation is silent (the bodies of the upload answers, the listing's
envelope), these tests accept what docinbox's client accepts
(:func:`daemon.services.parsio.doc_id_of`) and check what it relies on: the ``meta``
sent comes back as ``__meta__``, and a document can be found again in the mailbox's
listing by its name and day.  Field *values* are only asserted for the mock's demo
mailbox; a real mailbox's parser has its own fields.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from daemon.services.parsio import doc_id_of, parsed_of
from mockserver.core import MockContext
from mockserver.defaults import PARSIO_API_KEY, PARSIO_MAILBOX_ID
from mockserver.samples import receipt_pdf

from .conftest import real_or_mock

REAL_URL = os.environ.get("PARSIO_BASE_URL", "https://api.parsio.io")
STATUSES = {"new", "parsing", "parsed", "fail", "skipped", "quota", "exception"}
RECEIPT = {
    "fecha": "23/12/2025",
    "total": "45.99",
    "lineas_detalle": [{"descripcion": "Gasoil", "cantidad": "50L"}],
}


@dataclass
class Target:
    name: str
    base_url: str
    key: str
    mailbox: str
    ctx: MockContext | None  # None: the real service

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"X-API-Key": key or self.key}, timeout=300
        )

    @property
    def mb(self) -> str:
        return f"/mailboxes/{self.mailbox}"

    def upload(self, client: httpx.Client, path: str, name: str, meta: dict) -> httpx.Response:
        return client.post(
            f"{self.mb}/{path}",
            files={"file": (name, receipt_pdf(), "application/pdf")},
            data={"meta": json.dumps(meta)},
        )

    def parsed(self, client: httpx.Client, doc_id: str) -> dict[str, Any]:
        """``GET /docs/{id}`` until it is no longer new or parsing; on the mock the clock
        moves instead of the test waiting."""
        deadline = time.monotonic() + (600 if self.ctx is None else 10)
        while True:
            response = client.get(f"/docs/{doc_id}")
            assert response.status_code == 200, response.text
            doc = response.json()
            assert doc["status"] in STATUSES, doc
            if doc["status"] not in ("new", "parsing"):
                return dict(doc)
            assert time.monotonic() < deadline, doc
            if self.ctx is not None:
                self.ctx.clock.advance(5)
            else:
                time.sleep(5)  # only against the real service: parsing takes its time


@pytest.fixture(params=real_or_mock("PARSIO_API_KEY", "PARSIO_MAILBOX_ID"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mock":
        server = request.getfixturevalue("mock_server")
        yield Target("mock", server.url, PARSIO_API_KEY, PARSIO_MAILBOX_ID, server.ctx)
    else:
        yield Target(
            "real",
            REAL_URL,
            os.environ["PARSIO_API_KEY"],
            os.environ["PARSIO_MAILBOX_ID"],
            None,
        )


def test_mailboxes(target: Target) -> None:
    with target.client() as c:
        listed = c.get("/mailboxes/")
        assert listed.status_code == 200, listed.text
        mailboxes = listed.json()
        assert isinstance(mailboxes, list)
        assert target.mailbox in {m["_id"] for m in mailboxes}
        assert all(isinstance(m.get("name"), str) for m in mailboxes)
        one = c.get(target.mb).json()
        assert one["_id"] == target.mailbox
        assert isinstance(c.get(f"{target.mb}/tableFields").json(), list)


def test_upload_sync_gives_the_parsed_json_with_meta(target: Target) -> None:
    meta = {"docinbox_job": 1, "upload": uuid.uuid4().hex[:16]}
    with target.client() as c:
        response = target.upload(c, "upload-sync", "recibo.pdf", meta)
        assert 200 <= response.status_code < 300, response.text
        body = response.json()
        doc_id = doc_id_of(body)
        assert doc_id, body
        if parsed_of(body) is None:  # the sync timeout passed: parsing goes on
            assert body.get("parsing_in_progress") is True or body.get("status") in (
                "new",
                "parsing",
                "quota",
            ), body
            body = target.parsed(c, doc_id)
    assert body["status"] == "parsed", body
    data = parsed_of(body)
    assert data is not None and data["__meta__"] == meta
    if target.ctx is not None:
        assert {k: v for k, v in data.items() if k != "__meta__"} == RECEIPT


def test_upload_then_find_it_again_by_name_day_and_meta(target: Target) -> None:
    """What recovery after a crash relies on: the listing's ``q`` and ``from`` find the
    document, and its ``__meta__`` says it is the one that was sent."""
    name = f"docinbox-{uuid.uuid4().hex[:8]}.pdf"
    meta = {"docinbox_job": 2, "upload": uuid.uuid4().hex[:16]}
    with target.client() as c:
        response = target.upload(c, "upload", name, meta)
        assert 200 <= response.status_code < 300, response.text
        doc_id = doc_id_of(response.json())
        assert doc_id, response.text
        since = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
        listed = c.get(f"{target.mb}/docs", params={"q": name, "from": since})
        assert listed.status_code == 200, listed.text
        envelope = listed.json()
        assert {"docs", "totalDocs", "page", "totalPages", "hasNextPage"} <= set(envelope)
        assert doc_id in {doc_id_of(d) for d in envelope["docs"]}
        doc = target.parsed(c, doc_id)
    assert doc["status"] == "parsed", doc
    data = parsed_of(doc)
    assert data is not None and data["__meta__"] == meta


def test_parsed_listing(target: Target) -> None:
    with target.client() as c:
        response = c.get(f"{target.mb}/parsed", params={"page": 1})
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["docs"], list) and isinstance(body["page"], int)


def test_wrong_key_is_401(target: Target) -> None:
    with target.client("not-a-key") as c:
        assert c.get("/mailboxes/").status_code == 401
        assert c.get(f"{target.mb}/docs").status_code == 401


def test_unknown_document_is_404(target: Target) -> None:
    with target.client() as c:
        assert c.get(f"/docs/{'0' * 24}").status_code == 404


def test_missing_file_is_400(target: Target) -> None:
    with target.client() as c:
        response = c.post(f"{target.mb}/upload-sync", data={"meta": "{}"})
    assert response.status_code == 400
