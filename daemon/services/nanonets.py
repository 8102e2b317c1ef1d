"""Nanonets OCR API v2: model-based field and table extraction.

Synchronous ``LabelFile`` for short documents (the seed: ≤ 3 pages), ``?async=true``
plus polling for longer ones, ``LabelUrls`` for links.  Basic auth with the API key as
user and an empty password.  The raw JSON (the sync answer, or the final poll) is stored
untouched as ``raw/response.json``; fields and tables are normalized from it.

Polling, per the evidence (the fidelity notes, §1–§2):

* The documented path is ``GET /api/v2/Inferences/Model/{model_id}/InferenceRequestFiles/
  GetPredictions/{request_file_id}`` (docs.nanonets.com/reference/
  ocrmodelgetpredictionfilebyfileid; the vendor OpenAPI operation
  ``OcrPredict_getFilePredictionByFileId``; several public clients).  The seed's
  ``/api/v2/OCR/Model/{model_id}/getFile/{id}/`` appears in no public source: it is
  only the fallback when the documented path answers 404, and the path that worked is
  remembered per document.  A 404 from both is the *file* unknown (deleted, or not yet
  visible right after the upload), never the service's model: it never pauses Nanonets.
* The answer is ``{moderated_images_count, unmoderated_images_count, moderated_images[],
  unmoderated_images[], signed_urls}``; each page record carries ``status`` (``success``
  in a real capture, ``Success`` in the docs; ``pending`` or ``failure`` otherwise, the
  async docs say — a failure means three retries failed).  The prediction is complete
  once every listed page's status is success; a page that failed fails the document.
  Boxes in ``predicted_boxes``/``moderated_boxes`` carry ``page``; ``prediction[]`` items
  of a LabelFile answer carry ``page_no``.
* The async LabelFile acknowledgement nests ``result`` twice in the docs
  (nanonets.readme.io ocrmodellabelfileasyncbymodelidpost) and once in the seed: the
  ``request_file_id`` is looked for at either level.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import redact
from ..errors import (
    CredentialsError,
    DocinboxError,
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
    Budget,
    Checkpoint,
    Correction,
    Normalized,
    Outcome,
    Received,
    Service,
    ServiceContext,
    SourceDocument,
    check_policy,
    each,
    same_host,
)
from .libs import httpx
from .rawfiles import open_document, read_document, save_raw

RAW_NAME = "response.json"
#: Files up to this size are uploaded from one in-memory buffer; larger ones stream.
SMALL_UPLOAD = 4 * 1024 * 1024
#: A long document's whole prediction (hundreds of pages of boxes) may be large.
PREDICTION_MAX_BYTES = 256 * 1024 * 1024
#: Polling an asynchronous prediction: first look after this long, then back off to the cap.
POLL_FIRST, POLL_CAP = 5.0, 60.0
#: A file that both polling paths call unknown this soon after its upload may just not
#: be visible yet; later it is gone (deleted on the dashboard, another model).
NOT_FOUND_GRACE = 300.0
#: The documented polling path first, the seed's as the fallback.
POLL_PATHS = {
    "documented": "/api/v2/Inferences/Model/{model}/InferenceRequestFiles/GetPredictions/{file}",
    "seed": "/api/v2/OCR/Model/{model}/getFile/{file}/",
}


@dataclass(frozen=True)
class NanonetsSettings(ServiceSettings):
    model_id: str = field(
        default="", metadata=key(required=True, help="the model's UUID from the dashboard")
    )
    #: Documents up to this many pages use the synchronous LabelFile (the seed: ≤ 3).
    sync_max_pages: int = field(default=3, metadata=key(minimum=1))
    #: Prediction calls the plan allows per month (billing is monthly: legal.nanonets.com/
    #: how-we-bill); no public figure for the free plan, so 0: counted, not enforced — a
    #: 402 says when they are used up.
    calls_per_month: int = field(
        default=0, metadata=key(minimum=0, help="prediction calls the plan allows a month")
    )
    #: When a budget runs out: "wait" (for renewal), "next_route", "low_priority".
    when_exhausted: str = field(default="wait", metadata=key())


class Nanonets(Service):
    name = "nanonets"
    spec = ServiceSpec(
        settings=NanonetsSettings,
        credential_key="api_key",
        credential_env="NANONETS_API_KEY",
        base_url="https://app.nanonets.com",
        # A ceiling: the pacer finds how many requests the service takes at once.
        concurrency=32,
        route_options={"model_id": str, "async": bool},
        mock={"credential": "NANONETS_API_KEY", "model_id": "NANONETS_MODEL_ID"},
    )
    kinds = frozenset({"pdf", "png", "jpg", "tiff", "gif", "bmp", "webp", "link"})
    reviews = True
    settings: NanonetsSettings

    def __init__(self, settings: NanonetsSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        check_policy(settings.when_exhausted, "services.nanonets")
        # docs.nanonets.com/docs/rate-limit: one limit per model over the prediction calls
        # (a 429 "within the last 1 minute"); polling shares the account's limiter in the
        # mock, so every request to the API host goes in one lane.
        self.pacer = self.make_pacer(
            {"api": None}, same_host(settings.base_url, "api"), {"submit": "api", "poll": "api"}
        )
        self.client = self.make_client()
        self.auth = httpx.BasicAuth(settings.credential.value or "", "")

    def budgets(self) -> tuple[Budget, ...]:
        return (
            Budget(
                "calls", "calls", self.settings.calls_per_month, "month", label="prediction calls"
            ),
        )

    def usage(self, kind: str, pages: int | None) -> Mapping[str, float]:
        return {"calls": 1}  # the mock counts one per prediction request, as its 402 does

    def spent(self, err: DocinboxError) -> str | None:
        return "calls" if isinstance(err, QuotaExceeded) else None

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
        asynchronous = self._asynchronous(doc)
        response = await self._send(doc, model, {"async": "true"} if asynchronous else None)
        body = _answer(response, self.settings.model_id)
        if asynchronous:
            remote = self._remote(flatten(body.get("result") or []), model)
            if not remote["request_file_id"]:
                raise MalformedResponse(
                    "nanonets: the async answer has no request_file_id", service=self.name
                )
            return Accepted(
                remote={
                    **remote,
                    "poll_interval": POLL_FIRST,
                    "submitted_at": self.clock.now(),
                },
                poll_after=POLL_FIRST,
            )
        results = sync_results(body, doc.name)
        await save_raw(doc, RAW_NAME, response.content)
        return Received(remote=self._remote(results, model))

    async def _send(
        self, doc: SourceDocument, model: str, params: dict[str, str] | None
    ) -> httpx.Response:
        """The prediction request: a link as LabelUrls, a small file as one buffer (one
        write instead of a dozen for the parts), a larger one streamed."""
        metadata = json.dumps({"docinbox_job": doc.job_id, "sha256": doc.sha256})
        endpoint = f"/api/v2/OCR/Model/{model}/Label{'Urls' if doc.url is not None else 'File'}/"

        async def post(**body: Any) -> httpx.Response:
            return await http.send(
                self.client,
                "POST",
                endpoint,
                service=self.name,
                auth=self.auth,
                params=params,
                **body,
            )

        mime = MIME.get(doc.kind, "application/pdf")
        if doc.url is not None:
            return await post(json={"urls": [doc.url], "request_metadata": metadata})
        if doc.size <= SMALL_UPLOAD:
            fields = {"request_metadata": metadata}
            payload, ctype = http.multipart(fields, "file", doc.name, read_document(doc), mime)
            return await post(content=payload, headers={"Content-Type": ctype})
        with open_document(doc) as fh:  # streamed: httpx reads the file in chunks
            return await post(
                files={"file": (doc.name, fh, mime)}, data={"request_metadata": metadata}
            )

    async def _poll_one(self, doc: SourceDocument) -> Outcome:
        model = str(doc.remote.get("model_id") or self._model(doc))
        file_id = doc.remote["request_file_id"]
        preferred = str(doc.remote.get("poll_path") or "documented")
        order = [preferred, *(k for k in POLL_PATHS if k != preferred)]
        for which in order:
            if which not in POLL_PATHS:
                continue
            response = await http.send(
                self.client,
                "GET",
                POLL_PATHS[which].format(model=model, file=file_id),
                service=self.name,
                auth=self.auth,
                max_bytes=PREDICTION_MAX_BYTES,
            )
            if response.status_code == 404:
                continue  # this path does not know the file: try the other one
            body = _answer(response, self.settings.model_id)
            return await self._prediction(doc, body, response.content, file_id, model, which)
        return self._file_not_found(doc, file_id)

    async def _prediction(
        self,
        doc: SourceDocument,
        body: dict[str, Any],
        raw: bytes,
        file_id: str,
        model: str,
        path: str,
    ) -> Outcome:
        """A polling answer: stored once every listed page succeeded, else wait (or fail)."""
        pages = listed_pages(body)
        states = [str(p.get("status") or "").strip().lower() for p in pages]
        failed = [p for p, st in zip(pages, states, strict=True) if st in ("failure", "failed")]
        if failed:
            raise RemoteRejected(
                f"nanonets could not process {doc.name}: page {failed[0].get('page', '?')} "
                "ended with status failure (Nanonets retries a page three times)",
                service=self.name,
                hint="Check the document on the Nanonets dashboard; drop a clearer copy into "
                "the inbox to try again.",
            )
        if not pages or any(st != "success" for st in states):
            interval = min(POLL_CAP, float(doc.remote.get("poll_interval", POLL_FIRST)) * 1.5)
            return Accepted(
                remote={"poll_interval": interval, "poll_path": path}, poll_after=interval
            )
        await save_raw(doc, RAW_NAME, raw)
        return Received(remote={"request_file_id": file_id, "model_id": model})

    def _file_not_found(self, doc: SourceDocument, file_id: str) -> Outcome:
        """Both polling paths answered 404: not visible yet, or gone — this document's
        problem either way, never the service's (no pause)."""
        since = doc.remote.get("submitted_at")
        if isinstance(since, int | float) and self.clock.now() - since < NOT_FOUND_GRACE:
            interval = min(POLL_CAP, float(doc.remote.get("poll_interval", POLL_FIRST)) * 1.5)
            return Accepted(remote={"poll_interval": interval}, poll_after=interval)
        raise RemoteRejected(
            f"nanonets no longer knows file {file_id} of {doc.name} (HTTP 404 on "
            "GetPredictions and getFile)",
            service=self.name,
            status=404,
            hint="The file was deleted on the Nanonets dashboard, or the model id changed; "
            "drop the document into the inbox again to send it anew.",
        )

    async def review(
        self,
        remote: Mapping[str, Any],
        corrections: Sequence[Correction],
        done: Mapping[str, Any],
        progress: Callable[[Mapping[str, Any]], None],
    ) -> None:
        """The review desk's approval: the corrected values (seed 000's ``UpdateFile``,
        ``{"fields": [{"label", "ocr_text"}]}``), then ``ApproveFile`` — the seed's paths,
        which the mock serves (mockserver/nanonets/review.py); each call once."""
        model = str(remote.get("model_id") or self.settings.model_id)
        file_id = remote.get("request_file_id")
        if not file_id:
            raise RemoteRejected(
                "nanonets: this result has no request_file_id to review", service=self.name
            )
        base = f"/api/v2/OCR/Model/{model}"
        if corrections and not done.get("updated"):
            body = {"fields": [{"label": c["label"], "ocr_text": c["text"]} for c in corrections]}
            response = await http.send(
                self.client,
                "PATCH",
                f"{base}/UpdateFile/{file_id}/",
                service=self.name,
                auth=self.auth,
                json=body,
            )
            self._check_review(response, file_id)
            progress({"updated": True})
        if not done.get("approved"):
            response = await http.send(
                self.client,
                "POST",
                f"{base}/ApproveFile/{file_id}/",
                service=self.name,
                auth=self.auth,
            )
            self._check_review(response, file_id)
            progress({"approved": True})

    def _check_review(self, response: httpx.Response, file_id: str) -> None:
        """A 404 here is the file (deleted on the dashboard), never the model."""
        if response.status_code == 404:
            raise RemoteRejected(
                f"nanonets no longer knows file {file_id} (HTTP 404)",
                service=self.name,
                status=404,
                hint="The file was deleted on the Nanonets dashboard; the correction stays "
                "in docinbox's result only.",
            )
        _answer(response, self.settings.model_id)

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


def _answer(response: httpx.Response, model_id: str) -> dict[str, Any]:
    """An answer's JSON object, its error status as docinbox's error: a 404 here is the
    model (a review's 404 is the file, see ``_check_review``), a 402 the plan's calls."""
    status = response.status_code
    if status in (401, 403):
        raise CredentialsError(
            f"nanonets rejected the API key (HTTP {status} {http.describe_body(response)})",
            service="nanonets",
            status=status,
        )
    if status == 402:
        raise QuotaExceeded(
            "nanonets: the plan's free calls are used up (HTTP 402)",
            service="nanonets",
            status=402,
        )
    if status == 404:
        raise ModelNotFound(
            f"nanonets: model {model_id!r} not found (HTTP 404)",
            service="nanonets",
            status=404,
        )
    if status >= 400:
        raise RemoteRejected(
            f"nanonets refused the document: HTTP {status} {http.describe_body(response)}",
            service="nanonets",
            status=status,
        )
    body = http.json_body(response, service="nanonets")
    if not isinstance(body, dict):
        raise MalformedResponse(
            f"nanonets: expected a JSON object, got {redact.clip(repr(body), 80)}",
            service="nanonets",
        )
    return body


def sync_results(body: dict[str, Any], name: str) -> list[Any]:
    """A synchronous prediction's results; a page Nanonets could not process fails the
    document (its ``message`` says why)."""
    results = body.get("result")
    if not isinstance(results, list) or not results:
        raise MalformedResponse(
            f"nanonets: the answer has no result list ({redact.clip(repr(body), 120)})",
            service="nanonets",
        )
    failed = [
        r
        for r in results
        if isinstance(r, dict) and str(r.get("message", "Success")).lower() != "success"
    ]
    if failed:
        raise RemoteRejected(
            f"nanonets could not process {name}: {failed[0].get('message')}",
            service="nanonets",
        )
    return results


def flatten(results: list[Any]) -> list[Any]:
    """A ``result[]`` with the documented async acknowledgement's inner ``result`` lists
    (``{"result": [{"message", "result": [<page>...]}]}``) spliced in."""
    out: list[Any] = []
    for r in results:
        inner = r.get("result") if isinstance(r, dict) else None
        out.extend(flatten(inner) if isinstance(inner, list) else [r])
    return out


def listed_pages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The page records of a GetPredictions / getFile answer."""
    lists = [body.get("moderated_images"), body.get("unmoderated_images")]
    return [p for lst in lists if isinstance(lst, list) for p in lst if isinstance(p, dict)]


def pages_as_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A GetPredictions answer in the shape of a prediction's ``result[]`` (reviewed boxes
    win)."""
    pages = listed_pages(body)
    pages.sort(key=lambda p: p.get("page", 0) if isinstance(p.get("page"), int) else 0)
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
            # prediction[] items carry page_no; predicted/moderated boxes carry page.
            page = int(p.get("page_no", p.get("page", page_default)) or 0)
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
