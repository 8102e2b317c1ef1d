"""Nanonets OCR API v2 (seed 000): model-based field and table extraction.

Synchronous ``LabelFile`` for short documents (the seed: ≤ 3 pages), ``?async=true``
plus ``getFile`` polling for longer ones (the seed: "procesa en ~5 min"), ``LabelUrls``
for links.  Basic auth with the API key as user and an empty password.  The raw JSON
(the sync answer, or the final ``getFile``) is stored untouched as ``raw/response.json``;
fields and tables are normalized from it.

``getFile`` answers 200 while processing too: the prediction is complete once it lists
pages (``moderated_images_count + unmoderated_images_count > 0``), the test Nanonets'
own polling examples use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .. import redact
from ..errors import (
    CredentialsError,
    MalformedResponse,
    ModelNotFound,
    QuotaExceeded,
    RemoteRejected,
)
from ..outbox.markdown import render_extraction
from ..settings import ServiceSettings, ServiceSpec, key
from ..sniff import MIME
from . import http
from .base import (
    Accepted,
    BatchOutcome,
    Checkpoint,
    Normalized,
    Outcome,
    Received,
    Service,
    ServiceContext,
    SourceDocument,
    each,
)
from .rawfiles import open_document, read_document, store_raw

RAW_NAME = "response.json"
#: Files up to this size are uploaded from one in-memory buffer; larger ones stream.
SMALL_UPLOAD = 4 * 1024 * 1024
#: A long document's whole prediction (hundreds of pages of boxes) may be large.
PREDICTION_MAX_BYTES = 256 * 1024 * 1024
#: Polling an asynchronous prediction: first look after this long, then back off to the cap.
POLL_FIRST, POLL_CAP = 5.0, 60.0


@dataclass(frozen=True)
class NanonetsSettings(ServiceSettings):
    model_id: str = field(
        default="", metadata=key(required=True, help="the model's UUID from the dashboard")
    )
    #: Documents up to this many pages use the synchronous LabelFile (the seed: ≤ 3).
    sync_max_pages: int = field(default=3, metadata=key(minimum=1))


class Nanonets(Service):
    name = "nanonets"
    spec = ServiceSpec(
        settings=NanonetsSettings,
        credential_key="api_key",
        credential_env="NANONETS_API_KEY",
        base_url="https://app.nanonets.com",
        concurrency=8,
        route_options={"model_id": str, "async": bool},
        mock={"credential": "NANONETS_API_KEY", "model_id": "NANONETS_MODEL_ID"},
    )
    kinds = frozenset({"pdf", "png", "jpg", "tiff", "gif", "bmp", "webp", "link"})
    settings: NanonetsSettings

    def __init__(self, settings: NanonetsSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        self.client = http.make_client(
            settings.base_url,
            timeout=settings.timeout,
            transport=ctx.transport,
            proxy=settings.proxy,
            max_connections=settings.concurrency,
            rate_per_second=settings.rate_per_second,
        )
        self.auth = httpx.BasicAuth(settings.credential.value or "", "")

    def _model(self, doc: SourceDocument) -> str:
        return str(doc.options.get("model_id") or self.settings.model_id)

    def _asynchronous(self, doc: SourceDocument) -> bool:
        if "async" in doc.options:
            return bool(doc.options["async"])
        return doc.pages is not None and doc.pages > self.settings.sync_max_pages

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        return await each(docs, self._submit_one)

    def can_refetch(self, remote: Mapping[str, Any]) -> bool:
        # A synchronous prediction has a request_file_id too: getFile returns it again.
        return bool(remote.get("request_file_id"))

    async def poll(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        return await each(docs, self._poll_one)

    async def _submit_one(self, doc: SourceDocument) -> Outcome:
        model = self._model(doc)
        metadata = json.dumps({"docinbox_job": doc.job_id, "sha256": doc.sha256})
        params = {"async": "true"} if self._asynchronous(doc) else None
        if doc.url is not None:
            response = await http.send(
                self.client,
                "POST",
                f"/api/v2/OCR/Model/{model}/LabelUrls/",
                service=self.name,
                auth=self.auth,
                params=params,
                json={"urls": [doc.url], "request_metadata": metadata},
            )
        elif doc.size <= SMALL_UPLOAD:
            # A small file goes as one buffer: one write instead of a dozen for the parts.
            payload, ctype = http.multipart(
                {"request_metadata": metadata},
                "file",
                doc.name,
                read_document(doc),
                MIME.get(doc.kind, "application/pdf"),
            )
            response = await http.send(
                self.client,
                "POST",
                f"/api/v2/OCR/Model/{model}/LabelFile/",
                service=self.name,
                auth=self.auth,
                params=params,
                content=payload,
                headers={"Content-Type": ctype},
            )
        else:
            with open_document(doc) as fh:  # streamed: httpx reads the file in chunks
                response = await http.send(
                    self.client,
                    "POST",
                    f"/api/v2/OCR/Model/{model}/LabelFile/",
                    service=self.name,
                    auth=self.auth,
                    params=params,
                    files={"file": (doc.name, fh, MIME.get(doc.kind, "application/pdf"))},
                    data={"request_metadata": metadata},
                )
        body = self._check(response)
        if params is not None:
            remote = self._remote(body.get("result") or [], model)
            if not remote["request_file_id"]:
                raise MalformedResponse(
                    "nanonets: the async answer has no request_file_id", service=self.name
                )
            return Accepted(remote={**remote, "poll_interval": POLL_FIRST}, poll_after=POLL_FIRST)
        results = body.get("result")
        if not isinstance(results, list) or not results:
            raise MalformedResponse(
                f"nanonets: the answer has no result list ({redact.clip(repr(body), 120)})",
                service=self.name,
            )
        failed = [
            r
            for r in results
            if isinstance(r, dict) and str(r.get("message", "Success")).lower() != "success"
        ]
        if failed:
            raise RemoteRejected(
                f"nanonets could not process {doc.name}: {failed[0].get('message')}",
                service=self.name,
            )
        store_raw(doc, RAW_NAME, response.content)
        return Received(remote=self._remote(results, model))

    async def _poll_one(self, doc: SourceDocument) -> Outcome:
        model = str(doc.remote.get("model_id") or self._model(doc))
        file_id = doc.remote["request_file_id"]
        response = await http.send(
            self.client,
            "GET",
            f"/api/v2/OCR/Model/{model}/getFile/{file_id}/",
            service=self.name,
            auth=self.auth,
            max_bytes=PREDICTION_MAX_BYTES,
        )
        body = self._check(response)
        pages = int(body.get("moderated_images_count") or 0) + int(
            body.get("unmoderated_images_count") or 0
        )
        if pages == 0:
            interval = min(POLL_CAP, float(doc.remote.get("poll_interval", POLL_FIRST)) * 1.5)
            return Accepted(remote={"poll_interval": interval}, poll_after=interval)
        store_raw(doc, RAW_NAME, response.content)
        return Received(remote={"request_file_id": file_id, "model_id": model})

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        if status in (401, 403):
            raise CredentialsError(
                f"nanonets rejected the API key (HTTP {status} {http.describe_body(response)})",
                service=self.name,
                status=status,
            )
        if status == 402:
            raise QuotaExceeded(
                "nanonets: the plan's free calls are used up (HTTP 402)",
                service=self.name,
                status=402,
            )
        if status == 404:
            raise ModelNotFound(
                f"nanonets: model {self.settings.model_id!r} not found (HTTP 404)",
                service=self.name,
                status=404,
            )
        if status >= 400:
            raise RemoteRejected(
                f"nanonets refused the document: HTTP {status} {http.describe_body(response)}",
                service=self.name,
                status=status,
            )
        body = http.json_body(response, service=self.name)
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"nanonets: expected a JSON object, got {redact.clip(repr(body), 80)}",
                service=self.name,
            )
        return body

    @staticmethod
    def _remote(results: list[Any], model: str) -> dict[str, Any]:
        ids = [r.get("request_file_id") for r in results if isinstance(r, dict)]
        return {"request_file_id": next((i for i in ids if i), None), "model_id": model}

    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        body = json.loads((raw_dir / RAW_NAME).read_bytes())
        results = body.get("result") or pages_as_results(body)
        fields, tables = parse_predictions(results)
        return Normalized(
            remote=self._remote(results, self._model(doc)),
            fields=fields,
            tables=tables,
            markdown=render_extraction(doc.name, fields, tables),
        )


def pages_as_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``getFile`` answer in the shape of a prediction's ``result[]`` (reviewed boxes win)."""
    pages = [
        p
        for p in (body.get("moderated_images") or []) + (body.get("unmoderated_images") or [])
        if isinstance(p, dict)
    ]
    pages.sort(key=lambda p: p.get("page", 0))
    return [
        {
            "page": p.get("page", 0),
            "request_file_id": p.get("request_file_id"),
            "prediction": p.get("moderated_boxes") or p.get("predicted_boxes") or [],
        }
        for p in pages
    ]


def parse_predictions(results: list[Any]) -> tuple[list[dict], list[dict]]:
    """Nanonets' per-page predictions → the SPEC's ``fields`` and ``tables``."""
    fields: list[dict] = []
    tables: list[dict] = []
    for page_result in results:
        if not isinstance(page_result, dict):
            continue
        page_default = page_result.get("page", 0)
        for p in page_result.get("prediction") or []:
            if not isinstance(p, dict):
                continue
            page = int(p.get("page_no", page_default) or 0)
            if p.get("type") == "table" or "cells" in p:
                tables.append(_table(p, page))
                continue
            fields.append(
                {
                    "label": p.get("label"),
                    "text": p.get("ocr_text", ""),
                    "score": p.get("score"),
                    "page": page,
                    "box": _box(p),
                }
            )
    return fields, tables


def _box(p: dict[str, Any]) -> list[Any] | None:
    box = [p.get(k) for k in ("xmin", "ymin", "xmax", "ymax")]
    return box if all(v is not None for v in box) else None


def _table(p: dict[str, Any], page: int) -> dict[str, Any]:
    cells = [c for c in p.get("cells") or [] if isinstance(c, dict)]
    columns: dict[int, str] = {}
    rows: dict[int, dict[int, str]] = {}
    for c in cells:
        col, row = int(c.get("col", 1)), int(c.get("row", 1))  # 1-based in the API
        columns.setdefault(col, str(c.get("label") or f"col{col}"))
        rows.setdefault(row, {})[col] = str(c.get("text", ""))
    order = sorted(columns)
    return {
        "label": p.get("label"),
        "page": page,
        "columns": [columns[c] for c in order],
        "rows": [[rows[r].get(c, "") for c in order] for r in sorted(rows)],
        "score": p.get("score"),
        "box": _box(p),
    }
