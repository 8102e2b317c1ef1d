"""Nanonets OCR API v2 mock (seed 000): prediction, retrieval, training, file management.

Base paths are the real ones (``/api/v2/OCR/Model/{model_id}/<Action>/`` with the
trailing slash). Authentication is HTTP Basic with the API key as the user name
(``curl -u "$KEY:"``); the mock accepts :data:`~mockserver.defaults.NANONETS_API_KEY`.

Demo model :data:`~mockserver.defaults.NANONETS_MODEL_ID`: fields ``fecha`` (a date
after "Fecha") and ``total`` (an amount after "Total"); table ``lineas_detalle``
(columns ``descripcion``, ``cantidad``: ``<description> <quantity>`` lines after a
line reading ``lineas_detalle``). Everything is derived from the PDF text layer
(:mod:`mockserver.pdftext`); images carry no text, so they get no predictions.

Prediction — ``POST .../LabelFile/`` (multipart: ``file`` — repeatable —,
``request_metadata``, ``pages_to_process`` e.g. ``"1,2"`` or ``"2-4"``, 1-based)
and ``POST .../LabelUrls/`` (JSON ``{"urls": [...]}`` or form field ``urls``;
``request_metadata`` too). The mock downloads each URL itself.

**Sync** (no ``async`` or ``?async=false``): 200 with one ``result[]`` entry **per
processed page** of each file::

    {"message": "Success",
     "result": [{"message": "Success", "input": "recibo.pdf", "page": 0,
                 "request_file_id": "<uuid>", "id": "<page uuid>",
                 "prediction": [<field>, ..., <table>, ...],
                 "processing_type": "", "request_metadata": "<as sent>",
                 "size": {"width": 1275, "height": 1650}, "rotation": 0}],
     "signed_urls": {"original": URL, "original_with_long_expiry": URL}}

``<field>`` = ``{id, label, xmin, ymin, xmax, ymax, score, ocr_text, type: "field",
status: "correctly_predicted", page_no, label_id}`` (ints for the box, pixels of the
page rendered at 150 dpi, origin top-left). ``<table>`` = ``{id, label, type: "table",
score, xmin, ymin, xmax, ymax, page_no, label_id, status, cells: [{id, row, col, label,
text, score, xmin, ymin, xmax, ymax}]}``, ``row``/``col`` **1-based**.
``signed_urls`` is flat as in the seed for a request with one file; a request with
several ``file`` parts (or URLs) gets ``{"<request_file_id>": {"original", ...}}``
(the seed is silent; one flat pair could not name its file). The URLs are the mock's
own (``/api/v2/OCR/files/{request_file_id}/{name}?expires=&sig=``), valid 1 h / 7 days
on the mock clock; expired or tampered → 403 XML ``AccessDenied``.

Sync on a long document: the real service does not refuse it — the docs call sync
"optimized for files of 3 pages or fewer" and async "for large files (... more than
20 pages)" because processing takes minutes. The mock therefore processes it, but the
response is delayed by ``sync_seconds_per_extra_page`` (mock) seconds per page beyond 3;
if that exceeds ``sync_timeout_seconds`` the client gets what a front proxy sends when
the backend takes too long, a **504** HTML page, while the file is still processed and
later readable with ``getFile`` (the upload was accepted and billed).

**Async** (``?async=true``): 200 at once, one ``result[]`` entry per file, with
``"prediction": []``, ``"processing_type": "async"`` and ``"page": 0`` (pages are not
known before processing). Processing then takes ``async_queue_seconds +
pages × async_seconds_per_page`` on the mock clock (defaults 5 + 2/page; tests use
``POST /__admin/clock/advance``).

**getFile** — ``GET .../getFile/{request_file_id}/`` — always 200 for a known file
(404 ``{"message": "File not found"}`` for an unknown or deleted one)::

    {"moderated_images_count": M, "unmoderated_images_count": U,
     "moderated_images": [<page>...], "unmoderated_images": [<page>...],
     "signed_urls": {"original": URL, "original_with_long_expiry": URL}}

**Still processing ⇔ ``moderated_images_count == 0 and unmoderated_images_count == 0``**
(both lists empty); **done ⇔ their sum > 0** — the same test the Nanonets poll
workflow uses. A done file lists one ``<page>`` per processed page, in page order, in
``unmoderated_images`` (or ``moderated_images`` once approved)::

    {"id": "<page id>", "model_id": ..., "request_file_id": ..., "day_since_epoch": N,
     "hour_of_day": H, "is_moderated": false, "original_file_name": "recibo.pdf",
     "page": 0, "url": URL, "request_metadata": "...", "size": {...},
     "predicted_boxes": [<field>|<table> as above],
     "moderated_boxes": [same, with edits from UpdateFile]}

``moderated_boxes`` starts as a copy of ``predicted_boxes``; ``UpdateFile`` edits it
(and marks edited boxes ``"status": "moderated"``), so later reads show the edit.

Retrieval: ``ImageLevelInferences/{page_id}/`` (same shape, that one page),
``getModelImages/?start_day_interval=D&current_batch_day=B`` (pages from files whose
day lies in ``[today-B-D, today-B]``; values above 10 000 are read as days since the
epoch, as the API reference describes them). Training: ``UploadFile/``,
``UploadUrls/``, ``Train/``. Files: ``ApproveFile/{id}/`` (POST), ``DeleteFile/{id}/``
(DELETE), ``UpdateFile/{id}/`` (PATCH ``{"fields": [{"label", "ocr_text"[, "page_no"]
[, "id"]}]}``), ``ExportFile/{id}/`` (POST). Models: ``GET /api/v2/OCR/Model/`` and
``GET /api/v2/OCR/Model/{model_id}/``.

Errors (JSON ``{"message": "..."}``, texts from Nanonets' API reference):
400 file missing / not a PDF or image / bad ``pages_to_process`` / bad URLs;
401 missing or wrong credentials (no header, a Bearer header, the key as the password
with an empty user, an unknown key — only the user name is read; the password is
ignored) with ``WWW-Authenticate: Basic realm="api"``; 402 free calls exhausted
(``free_quota`` prediction calls per ``quota_period_seconds`` per key);
404 unknown model; 429 over ``rate_per_second``/``rate_burst`` per key, with
``Retry-After`` (whole seconds). Checks run in that order: auth, rate, model, quota,
input.

Settings (``POST /__admin/config {"nanonets": {...}}``): ``rate_per_second`` (10,
0 disables), ``rate_burst`` (20), ``free_quota`` (10000, null: unlimited),
``quota_period_seconds`` (30 days), ``async_queue_seconds`` (5),
``async_seconds_per_page`` (2), ``sync_seconds_per_extra_page`` (2),
``sync_timeout_seconds`` (60), ``url_fetch_timeout`` (20, real seconds),
``api_keys`` (list of accepted keys).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .core.context import MockContext
from .core.limits import QuotaCounter, RateLimiter
from .defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from .documents import pdftext

SERVICE = "nanonets"
DPI_SCALE = 150 / 72  # page pixels per PDF point: pages "rendered" at 150 dpi
ORIGINAL_URL_SECONDS = 3600
LONG_URL_SECONDS = 7 * 86400
SYNC_FREE_PAGES = 3

SETTINGS: dict[str, Any] = {
    "api_keys": [NANONETS_API_KEY],
    "rate_per_second": 10.0,
    "rate_burst": 20.0,
    "free_quota": 10_000,
    "quota_period_seconds": 30 * 86400,
    "async_queue_seconds": 5.0,
    "async_seconds_per_page": 2.0,
    "sync_seconds_per_extra_page": 2.0,
    "sync_timeout_seconds": 60.0,
    "url_fetch_timeout": 20.0,
}

MSG_FILE_MISSING = "File missing. Check if you have included a file in the request"
MSG_BAD_FILE = "Incorrect image. Check if file you included is a valid PNG or JPEG"
MSG_BAD_URLS = "Check if file urls are missing or path entered is valid"
MSG_UNAUTHORIZED = "The API key was missing or invalid"
MSG_QUOTA = (
    "Exhausted Free API Calls. You have exhausted your free API calls please change your plan"
)
MSG_NO_MODEL = "Model does not exists. Check if the model id exists"
MSG_RATE = "Too Many Requests. You have hit the rate limit for requests"
MSG_NO_FILE = "File not found"

GATEWAY_TIMEOUT_HTML = (
    "<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n"
    "<center><h1>504 Gateway Time-out</h1></center>\r\n</body>\r\n</html>\r\n"
)


# --------------------------------------------------------------------------- the demo model


@dataclass(frozen=True)
class Label:
    name: str
    id: str
    kind: str  # "field" | "table"
    columns: tuple[str, ...] = ()


DEMO_LABELS = (
    Label("fecha", "label_001", "field"),
    Label("total", "label_002", "field"),
    Label("lineas_detalle", "label_003", "table", ("descripcion", "cantidad")),
)

_DATE = re.compile(
    r"\bfecha\b\s*[:\-]?\s*(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2})", re.IGNORECASE
)
_AMOUNT = re.compile(r"\btotal\b\s*[:\-]?\s*[€$]?\s*(-?\d[\d.,]*\d|\d)", re.IGNORECASE)
_ROW = re.compile(r"^(.*\S)\s+(\S+)$")


def _uid(*parts: str) -> str:
    """A stable uuid-shaped id from *parts* (same bytes, same ids)."""
    return str(uuid.UUID(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]))


def _px(value: float) -> int:
    return round(value * DPI_SCALE)


def _value_box(line: pdftext.Line, match: re.Match[str]) -> tuple[int, int, int, int]:
    """The box of the matched value within its line (width shared out per character)."""
    n = max(1, len(line.text))
    per = (line.x1 - line.x0) / n
    x0 = line.x0 + per * match.start(1)
    x1 = line.x0 + per * match.end(1)
    return _px(x0), _px(line.top), _px(x1), _px(line.bottom)


def predict_page(page: pdftext.Page, seed: str) -> list[dict[str, Any]]:
    """The demo model's prediction for one page, deterministic in its text and *seed*."""
    out: list[dict[str, Any]] = []
    lines = page.lines
    for label, regex, score in (("fecha", _DATE, 0.95), ("total", _AMOUNT, 0.92)):
        for line in lines:
            match = regex.search(line.text)
            if match is None:
                continue
            xmin, ymin, xmax, ymax = _value_box(line, match)
            meta = next(lbl for lbl in DEMO_LABELS if lbl.name == label)
            out.append(
                {
                    "id": _uid(seed, str(page.number), label),
                    "label": label,
                    "xmin": xmin,
                    "ymin": ymin,
                    "xmax": xmax,
                    "ymax": ymax,
                    "score": score,
                    "ocr_text": match.group(1),
                    "type": "field",
                    "status": "correctly_predicted",
                    "page_no": page.number,
                    "label_id": meta.id,
                }
            )
            break
    table = _table(page, seed)
    if table is not None:
        out.append(table)
    return out


def _table(page: pdftext.Page, seed: str) -> dict[str, Any] | None:
    lines = page.lines
    start = next((i for i, ln in enumerate(lines) if ln.text.strip().lower() == "lineas_detalle"),
                 None)  # fmt: skip
    if start is None:
        return None
    rows: list[pdftext.Line] = []
    for line in lines[start + 1 :]:
        text = line.text.strip()
        if not text or _AMOUNT.search(text) or _DATE.search(text) or not _ROW.match(text):
            break
        rows.append(line)
    header = lines[start]
    cells = []
    for r, line in enumerate(rows, start=1):
        match = _ROW.match(line.text.strip())
        assert match is not None
        desc, qty = match.group(1), match.group(2)
        split = line.x0 + (line.x1 - line.x0) * (len(desc) + 1) / max(1, len(line.text))
        for c, (col, text, x0, x1, score) in enumerate(
            (("descripcion", desc, line.x0, split, 0.91), ("cantidad", qty, split, line.x1, 0.88)),
            start=1,
        ):
            cells.append(
                {
                    "id": _uid(seed, str(page.number), "lineas_detalle", str(r), str(c)),
                    "row": r,
                    "col": c,
                    "label": col,
                    "text": text,
                    "score": score,
                    "xmin": _px(x0),
                    "ymin": _px(line.top),
                    "xmax": _px(x1),
                    "ymax": _px(line.bottom),
                }
            )
    last = rows[-1] if rows else header
    return {
        "id": _uid(seed, str(page.number), "lineas_detalle"),
        "label": "lineas_detalle",
        "type": "table",
        "score": 0.89,
        "xmin": _px(min([header.x0] + [ln.x0 for ln in rows])),
        "ymin": _px(header.top),
        "xmax": _px(max([header.x1] + [ln.x1 for ln in rows])),
        "ymax": _px(last.bottom),
        "page_no": page.number,
        "label_id": "label_003",
        "status": "correctly_predicted",
        "cells": cells,
    }


# --------------------------------------------------------------------------- state


@dataclass
class PageRecord:
    id: str
    number: int
    size: dict[str, int]
    predicted: list[dict[str, Any]]
    moderated: list[dict[str, Any]]


@dataclass
class FileRecord:
    id: str
    model_id: str
    api_key: str
    name: str
    path: Path
    sha256: str
    metadata: str
    created_at: float
    ready_at: float
    is_async: bool
    pages: list[PageRecord]
    approved: bool = False
    exported: bool = False
    deleted: bool = False
    sig: str = field(default="")


@dataclass
class TrainingImage:
    id: str
    name: str
    sha256: str
    source: str


def parse_pages(spec: str, total: int) -> list[int]:
    """``pages_to_process`` ("1,2", "2-4", "1:3") → 0-based page numbers; ValueError if bad."""
    chosen: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", part)
        if m is None:
            raise ValueError(part)
        a = int(m.group(1))
        b = int(m.group(2) or a)
        if a < 1 or b < a:
            raise ValueError(part)
        for n in range(a, b + 1):
            if n <= total and n - 1 not in chosen:
                chosen.append(n - 1)
    if not chosen:
        raise ValueError(spec)
    return sorted(chosen)


class Nanonets:
    """The service's state and handlers; one per :class:`MockContext`."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.settings = ctx.declare_settings(SERVICE, SETTINGS)
        self.limiter = RateLimiter(0, 0, ctx.clock)
        self.quota = QuotaCounter(None, 1, ctx.clock)
        self.files: dict[str, FileRecord] = {}
        self.pages: dict[str, tuple[str, int]] = {}  # page id -> (file id, index)
        self.training: list[TrainingImage] = []
        self.trained = 0
        self.lock = threading.Lock()
        self.secret = uuid.uuid4().hex.encode()
        self.dir = ctx.new_dir("nanonets-")
        self._configure()
        ctx.on_config(self._configure)
        ctx.on_reset(self._reset)
        ctx.on_refresh(self._refresh)

    # ------------------------------------------------------------------ plumbing

    def _configure(self) -> None:
        s = self.settings
        self.limiter.rate = float(s["rate_per_second"] or 0)
        self.limiter.burst = float(s["rate_burst"] or 1)
        self.quota.limit = s["free_quota"]
        self.quota.period = float(s["quota_period_seconds"])

    def _reset(self) -> None:
        with self.lock:
            self.files.clear()
            self.pages.clear()
            self.training.clear()
            self.trained = 0
        self.limiter.clear()
        self.quota.clear()
        self.dir = self.ctx.new_dir("nanonets-")

    def _refresh(self) -> None:
        now = self.ctx.clock.now()
        with self.lock:
            records = list(self.files.values())
        for rec in records:
            if not rec.deleted and rec.ready_at <= now:
                entry = self.ctx.ledger.get(SERVICE, rec.id)
                if entry and entry["state"] == "processing":
                    self.ctx.ledger.set_state(SERVICE, rec.id, "done")

    @staticmethod
    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"message": message}, status_code=status, headers=headers)

    def api_key(self, request: Request) -> str | None:
        """The key of a valid Basic header (user = key; password ignored), else None."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user = decoded.partition(":")[0]
        return user if user and user in self.settings["api_keys"] else None

    def guard(self, request: Request, *, model: bool = True) -> tuple[str | None, Response | None]:
        """Auth, rate limit and model checks common to every endpoint."""
        key = self.api_key(request)
        if key is None:
            return None, self.error(
                401, MSG_UNAUTHORIZED, {"WWW-Authenticate": 'Basic realm="api"'}
            )
        wait = self.limiter.take(key)
        if wait > 0:
            retry = max(1, int(-(-wait // 1)))
            return None, self.error(429, MSG_RATE, {"Retry-After": str(retry)})
        if model and request.path_params.get("model_id") != NANONETS_MODEL_ID:
            return None, self.error(404, MSG_NO_MODEL)
        return key, None

    def signed_url(self, request: Request, rec: FileRecord, seconds: float) -> str:
        expires = int(self.ctx.clock.now() + seconds)
        sig = hmac.new(self.secret, f"{rec.id}:{expires}".encode(), "sha256").hexdigest()[:32]
        base = str(request.base_url).rstrip("/")
        return f"{base}/api/v2/OCR/files/{rec.id}/{_url_name(rec.name)}?expires={expires}&sig={sig}"

    def signed_urls(self, request: Request, rec: FileRecord) -> dict[str, str]:
        return {
            "original": self.signed_url(request, rec, ORIGINAL_URL_SECONDS),
            "original_with_long_expiry": self.signed_url(request, rec, LONG_URL_SECONDS),
        }

    def record(self, request: Request, rid: str, model_id: str) -> FileRecord | None:
        with self.lock:
            rec = self.files.get(rid)
        if rec is None or rec.deleted or rec.model_id != model_id:
            return None
        return rec

    def guarded_record(self, request: Request) -> FileRecord | Response:
        """:meth:`guard`, then the path's ``file_id`` of its ``model_id`` (else a 404)."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        rec = self.record(request, request.path_params["file_id"], request.path_params["model_id"])
        if rec is None:
            return self.error(404, MSG_NO_FILE)
        return rec

    # ------------------------------------------------------------------ ingestion

    def ingest(
        self,
        key: str,
        model_id: str,
        name: str,
        path: Path,
        metadata: str,
        pages_spec: str | None,
        *,
        is_async: bool,
    ) -> FileRecord:
        """Read a stored upload and register it; raises DocumentError / ValueError."""
        doc = pdftext.extract(path)
        selected = (
            parse_pages(pages_spec, doc.page_count) if pages_spec else list(range(doc.page_count))
        )
        digest = _sha256(path)
        rid = str(uuid.uuid4())
        pages = []
        for n in selected:
            page = doc.pages[n]
            predicted = predict_page(page, digest)
            pages.append(
                PageRecord(
                    id=str(uuid.uuid4()),
                    number=n,
                    size={"width": _px(page.width), "height": _px(page.height)},
                    predicted=predicted,
                    moderated=json.loads(json.dumps(predicted)),
                )
            )
        now = self.ctx.clock.now()
        s = self.settings
        if is_async:
            ready = (
                now
                + float(s["async_queue_seconds"])
                + len(pages) * float(s["async_seconds_per_page"])
            )
        else:
            extra = max(0, len(pages) - SYNC_FREE_PAGES)
            ready = now + extra * float(s["sync_seconds_per_extra_page"])
        rec = FileRecord(
            id=rid,
            model_id=model_id,
            api_key=key,
            name=name,
            path=path,
            sha256=digest,
            metadata=metadata,
            created_at=now,
            ready_at=ready,
            is_async=is_async,
            pages=pages,
        )
        with self.lock:
            self.files[rid] = rec
            for i, p in enumerate(pages):
                self.pages[p.id] = (rid, i)
        self.ctx.ledger.add(
            SERVICE,
            rid,
            name,
            digest,
            "processing" if ready > now else "done",
            pages=len(pages),
            mode="async" if is_async else "sync",
        )
        return rec

    def store_upload(self, upload: UploadFile) -> Path:
        """Copy an upload to the data dir in chunks (never whole in memory)."""
        folder = self.dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        path = folder / _safe_name(upload.filename or "file")
        with path.open("wb") as out:
            upload.file.seek(0)
            shutil.copyfileobj(upload.file, out, 1024 * 1024)
        return path

    async def fetch_url(self, url: str) -> Path:
        """Download *url* to the data dir, streamed; raises ValueError when it cannot."""
        if not re.match(r"^https?://", url):
            raise ValueError(url)
        folder = self.dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        name = _safe_name(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "file")
        path = folder / name
        timeout = float(self.settings["url_fetch_timeout"])
        try:
            async with (
                httpx.AsyncClient(timeout=timeout, follow_redirects=True) as client,
                client.stream("GET", url) as resp,
            ):
                if resp.status_code != 200:
                    raise ValueError(f"{url}: HTTP {resp.status_code}")
                with path.open("wb") as out:
                    async for chunk in resp.aiter_bytes(1024 * 1024):
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise ValueError(f"{url}: {exc}") from exc
        return path

    # ------------------------------------------------------------------ views

    def result_entries(self, rec: FileRecord, *, done: bool) -> list[dict[str, Any]]:
        base = {
            "message": "Success",
            "input": rec.name,
            "request_file_id": rec.id,
            "request_metadata": rec.metadata,
            "rotation": 0,
        }
        if not done:  # async acknowledgement
            return [
                {
                    **base,
                    "page": 0,
                    "id": rec.pages[0].id if rec.pages else str(uuid.uuid4()),
                    "prediction": [],
                    "processing_type": "async",
                    "size": rec.pages[0].size if rec.pages else {},
                }
            ]
        return [
            {
                **base,
                "page": page.number,
                "id": page.id,
                "prediction": json.loads(json.dumps(page.predicted)),
                "processing_type": "",
                "size": page.size,
            }
            for page in rec.pages
        ]

    def page_view(self, request: Request, rec: FileRecord, page: PageRecord) -> dict[str, Any]:
        created = time.gmtime(rec.created_at)
        return {
            "id": page.id,
            "model_id": rec.model_id,
            "request_file_id": rec.id,
            "day_since_epoch": int(rec.created_at // 86400),
            "hour_of_day": created.tm_hour,
            "is_moderated": rec.approved,
            "original_file_name": rec.name,
            "page": page.number,
            "url": self.signed_url(request, rec, ORIGINAL_URL_SECONDS),
            "request_metadata": rec.metadata,
            "size": page.size,
            "predicted_boxes": json.loads(json.dumps(page.predicted)),
            "moderated_boxes": json.loads(json.dumps(page.moderated)),
        }

    def inference_view(
        self,
        request: Request,
        items: list[tuple[FileRecord, PageRecord]],
        signed: dict[str, Any],
    ) -> dict[str, Any]:
        moderated = [self.page_view(request, r, p) for r, p in items if r.approved]
        unmoderated = [self.page_view(request, r, p) for r, p in items if not r.approved]
        return {
            "moderated_images_count": len(moderated),
            "unmoderated_images_count": len(unmoderated),
            "moderated_images": moderated,
            "unmoderated_images": unmoderated,
            "signed_urls": signed,
        }

    def is_ready(self, rec: FileRecord) -> bool:
        ready = rec.ready_at <= self.ctx.clock.now()
        if ready:
            entry = self.ctx.ledger.get(SERVICE, rec.id)
            if entry and entry["state"] == "processing":
                self.ctx.ledger.set_state(SERVICE, rec.id, "done")
        return ready

    # ------------------------------------------------------------------ endpoints

    async def label_file(self, request: Request) -> Response:
        """Predict on uploaded file(s): sync, or ``?async=true``."""
        key, denied = self.guard(request)
        if denied:
            return denied
        assert key is not None
        form = await request.form(max_files=100, max_fields=100)
        try:
            uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
            if not uploads:
                return self.error(400, MSG_FILE_MISSING)
            paths = [(u.filename or "file", self.store_upload(u)) for u in uploads]
        finally:
            await form.close()
        return await self._predict(
            request, key, paths, _text(form.get("request_metadata")),
            _text(form.get("pages_to_process")) or None,
        )  # fmt: skip

    async def label_urls(self, request: Request) -> Response:
        """Predict on documents at public URLs: sync, or ``?async=true``."""
        key, denied = self.guard(request)
        if denied:
            return denied
        assert key is not None
        urls: list[str] = []
        metadata = ""
        pages_spec = None
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                body = await request.json()
            except ValueError:
                return self.error(400, MSG_BAD_URLS)
            if isinstance(body, dict):
                raw = body.get("urls")
                urls = (
                    [raw] if isinstance(raw, str) else [u for u in raw or [] if isinstance(u, str)]
                )
                metadata = _text(body.get("request_metadata"))
                pages_spec = _text(body.get("pages_to_process")) or None
        else:
            form = await request.form()
            urls = [u for u in form.getlist("urls") if isinstance(u, str)]
            metadata = _text(form.get("request_metadata"))
            pages_spec = _text(form.get("pages_to_process")) or None
        if not urls:
            return self.error(400, MSG_BAD_URLS)
        paths: list[tuple[str, Path]] = []
        for url in urls:
            try:
                paths.append((url, await self.fetch_url(url)))
            except ValueError:
                continue
        if not paths:
            return self.error(400, MSG_BAD_URLS)
        response = await self._predict(request, key, paths, metadata, pages_spec)
        if len(paths) < len(urls) and response.status_code == 200:
            response.status_code = 206  # docs: some of the URLs did not respond as expected
        return response

    async def _predict(
        self,
        request: Request,
        key: str,
        paths: list[tuple[str, Path]],
        metadata: str,
        pages_spec: str | None,
    ) -> Response:
        is_async = request.query_params.get("async", "").lower() in ("true", "1", "yes")
        model_id = request.path_params["model_id"]
        remaining = self.quota.remaining(key)
        if remaining is not None and remaining < 1:
            return self.error(402, MSG_QUOTA)
        records: list[FileRecord] = []
        for name, path in paths:
            try:
                records.append(
                    await anyio.to_thread.run_sync(
                        lambda n=name, p=path: self.ingest(
                            key, model_id, _display_name(n), p, metadata, pages_spec,
                            is_async=is_async,
                        )
                    )
                )  # fmt: skip
            except pdftext.DocumentError as exc:
                return self.error(400, MSG_FILE_MISSING if exc.code == "empty" else MSG_BAD_FILE)
            except ValueError:
                return self.error(400, "Invalid pages_to_process")
        self.quota.consume(key)  # a refused upload is not billed
        if not is_async:
            deadline = max(r.ready_at for r in records)
            limit = records[0].created_at + float(self.settings["sync_timeout_seconds"])
            if deadline > limit:
                await self._wait_until(limit)
                return HTMLResponse(GATEWAY_TIMEOUT_HTML, status_code=504)
            await self._wait_until(deadline)
        result: list[dict[str, Any]] = []
        for rec in records:
            result.extend(self.result_entries(rec, done=not is_async))
        # The seed's shape (flat) for the usual single file; keyed per file when a request
        # carries several, where one flat pair could not say which file it belongs to.
        signed: dict[str, Any] = (
            self.signed_urls(request, records[0])
            if len(records) == 1
            else {rec.id: self.signed_urls(request, rec) for rec in records}
        )
        return JSONResponse({"message": "Success", "result": result, "signed_urls": signed})

    async def _wait_until(self, mock_deadline: float) -> None:
        """Sleep until the mock clock reaches *mock_deadline* (advances shorten it)."""
        clock = self.ctx.clock
        while True:
            left = mock_deadline - clock.now()
            if left <= 0 or self.ctx.closing.is_set():
                return
            await anyio.sleep(min(0.05, clock.real_seconds(left)))

    async def get_file(self, request: Request) -> Response:
        """A file's prediction; both counts 0 while it is still processing."""
        rec = self.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        items = [(rec, p) for p in rec.pages] if self.is_ready(rec) else []
        return JSONResponse(self.inference_view(request, items, self.signed_urls(request, rec)))

    async def image_level(self, request: Request) -> Response:
        """One page's prediction by its page id."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        with self.lock:
            where = self.pages.get(request.path_params["page_id"])
        rec = self.record(request, where[0], request.path_params["model_id"]) if where else None
        if rec is None or where is None:
            return self.error(404, MSG_NO_FILE)
        page = rec.pages[where[1]]
        items = [(rec, page)] if self.is_ready(rec) else []
        return JSONResponse(self.inference_view(request, items, self.signed_urls(request, rec)))

    async def model_images(self, request: Request) -> Response:
        """Every processed page of the model within a window of days."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        try:
            interval = int(request.query_params.get("start_day_interval", "0"))
            batch = int(request.query_params.get("current_batch_day", "0"))
        except ValueError:
            return self.error(400, "start_day_interval and current_batch_day must be integers")
        today = int(self.ctx.clock.now() // 86400)
        end = batch if batch > 10_000 else today - batch
        start = interval if interval > 10_000 else end - interval
        with self.lock:
            records = [r for r in self.files.values() if not r.deleted]
        items = [
            (r, p)
            for r in sorted(records, key=lambda r: r.created_at)
            if r.model_id == request.path_params["model_id"]
            and start <= int(r.created_at // 86400) <= end
            and self.is_ready(r)
            for p in r.pages
        ]
        return JSONResponse(self.inference_view(request, items, {}))

    async def approve(self, request: Request) -> Response:
        """Mark a file reviewed: its pages move to ``moderated_images``."""
        return self._file_action(request, "approved")

    async def export(self, request: Request) -> Response:
        """Send a file to the model's export integrations (the mock just records it)."""
        return self._file_action(request, "exported")

    async def delete(self, request: Request) -> Response:
        """Delete a file: later reads answer 404."""
        return self._file_action(request, "deleted")

    def _file_action(self, request: Request, action: str) -> Response:
        rec = self.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        setattr(rec, action, True)
        if action == "deleted":
            self.ctx.ledger.set_state(SERVICE, rec.id, "deleted")
        else:
            self.ctx.ledger.set_state(SERVICE, rec.id, self.ctx.ledger.get(SERVICE, rec.id)
                                      ["state"], **{action: True})  # fmt: skip
        return JSONResponse({"message": "Success", "request_file_id": rec.id})

    async def update(self, request: Request) -> Response:
        """Edit field values of a file; later reads show the edit in ``moderated_boxes``."""
        rec = self.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, "Invalid JSON body")
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, list) or not fields:
            return self.error(400, 'fields is required: [{"label", "ocr_text"}]')
        known = {lbl.name: lbl for lbl in DEMO_LABELS if lbl.kind == "field"}
        for item in fields:
            if not isinstance(item, dict) or item.get("label") not in known:
                return self.error(
                    400, f"Unknown label: {item.get('label') if isinstance(item, dict) else item}"
                )
            if not isinstance(item.get("ocr_text"), str):
                return self.error(400, "ocr_text must be a string")
        for item in fields:
            self._apply_edit(rec, item, known[item["label"]])
        return JSONResponse({"message": "Success", "request_file_id": rec.id})

    def _apply_edit(self, rec: FileRecord, item: dict[str, Any], label: Label) -> None:
        page_no = item.get("page_no")
        targets = [p for p in rec.pages if page_no is None or p.number == page_no] or rec.pages[:1]
        edited = False
        for page in targets:
            for box in page.moderated:
                if box["label"] == label.name and (item.get("id") in (None, box.get("id"))):
                    box["ocr_text"] = item["ocr_text"]
                    box["status"] = "moderated"
                    edited = True
        if not edited and targets:  # a field the model missed: the reviewer adds it
            page = targets[0]
            page.moderated.append(
                {
                    "id": str(uuid.uuid4()),
                    "label": label.name,
                    "xmin": 0, "ymin": 0, "xmax": 0, "ymax": 0,
                    "score": 1.0,
                    "ocr_text": item["ocr_text"],
                    "type": "field",
                    "status": "moderated",
                    "page_no": page.number,
                    "label_id": label.id,
                }
            )  # fmt: skip

    async def upload_training_file(self, request: Request) -> Response:
        """Add training images from uploaded files."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        form = await request.form(max_files=100)
        try:
            uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
            if not uploads:
                return self.error(400, MSG_FILE_MISSING)
            added = []
            for upload in uploads:
                path = self.store_upload(upload)
                try:
                    pdftext.extract(path)
                except pdftext.DocumentError:
                    return self.error(400, MSG_BAD_FILE)
                added.append(self._add_training(upload.filename or "file", path, "file"))
        finally:
            await form.close()
        return JSONResponse({"message": "Success", "result": added})

    async def upload_training_urls(self, request: Request) -> Response:
        """Add training images from public URLs."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return self.error(400, MSG_BAD_URLS)
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls:
            return self.error(400, MSG_BAD_URLS)
        added = []
        for url in urls:
            try:
                path = await self.fetch_url(str(url))
                pdftext.extract(path)
            except (ValueError, pdftext.DocumentError):
                return self.error(400, MSG_BAD_URLS)
            added.append(self._add_training(str(url), path, "url"))
        return JSONResponse({"message": "Success", "result": added})

    def _add_training(self, name: str, path: Path, source: str) -> dict[str, Any]:
        image = TrainingImage(str(uuid.uuid4()), _display_name(name), _sha256(path), source)
        with self.lock:
            self.training.append(image)
        self.ctx.ledger.add(SERVICE, image.id, image.name, image.sha256, "training")
        return {"id": image.id, "file": image.name, "message": "Success"}

    async def train(self, request: Request) -> Response:
        """Start training on the uploaded images (the mock just counts the run)."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        with self.lock:
            if not self.training:
                return self.error(400, "No training images uploaded")
            self.trained += 1
            count = len(self.training)
        return JSONResponse(
            {"message": "Success", "model_id": NANONETS_MODEL_ID, "state": 1,
             "training_images": count}
        )  # fmt: skip

    async def list_models(self, request: Request) -> Response:
        """The account's models (the demo model only)."""
        _key, denied = self.guard(request, model=False)
        if denied:
            return denied
        return JSONResponse([self.model_view()])

    async def get_model(self, request: Request) -> Response:
        """One model's details: its fields and tables."""
        _key, denied = self.guard(request)
        if denied:
            return denied
        return JSONResponse(self.model_view())

    def model_view(self) -> dict[str, Any]:
        return {
            "model_id": NANONETS_MODEL_ID,
            "model_type": "ocr",
            "name": "docinbox demo (recibos)",
            "state": 5,
            "categories": [
                {"id": lbl.id, "name": lbl.name, "type": lbl.kind, "columns": list(lbl.columns)}
                if lbl.kind == "table"
                else {"id": lbl.id, "name": lbl.name, "type": lbl.kind}
                for lbl in DEMO_LABELS
            ],
        }

    async def original(self, request: Request) -> Response:
        """The uploaded original behind a ``signed_urls`` link (expires on the mock clock)."""
        rid = request.path_params["file_id"]
        with self.lock:
            rec = self.files.get(rid)
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            expires = -1
        sig = hmac.new(self.secret, f"{rid}:{expires}".encode(), "sha256").hexdigest()[:32]
        if (
            rec is None
            or rec.deleted
            or not hmac.compare_digest(sig, request.query_params.get("sig", ""))
        ):
            return _s3_error(403, "AccessDenied", "Access Denied")
        if expires < self.ctx.clock.now():
            return _s3_error(403, "AccessDenied", "Request has expired")
        return FileResponse(rec.path, filename=rec.name)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _safe_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    return re.sub(r"[^\w.\- ]", "_", name)[:200] or "file"


def _display_name(name: str) -> str:
    """What Nanonets reports as ``input``: the file name (the last URL segment for a URL)."""
    if re.match(r"^https?://", name):
        return name.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or name
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _url_name(name: str) -> str:
    from urllib.parse import quote

    return quote(_safe_name(name))


def routes(ctx: MockContext) -> list[BaseRoute]:
    """The Nanonets v2 routes on *ctx* (paths exactly as the seed, trailing slashes)."""
    svc = Nanonets(ctx)
    ctx.state[SERVICE] = svc  # tests and the daemon's embedded mode can reach the state
    m = "/api/v2/OCR/Model/{model_id}"
    return [
        Route("/api/v2/OCR/Model/", svc.list_models, methods=["GET"], name="list_models"),
        Route(m + "/", svc.get_model, methods=["GET"], name="get_model"),
        Route(m + "/LabelFile/", svc.label_file, methods=["POST"], name="label_file"),
        Route(m + "/LabelUrls/", svc.label_urls, methods=["POST"], name="label_urls"),
        Route(m + "/getFile/{file_id}/", svc.get_file, methods=["GET"], name="get_file"),
        Route(
            m + "/ImageLevelInferences/{page_id}/",
            svc.image_level,
            methods=["GET"],
            name="image_level_inferences",
        ),
        Route(m + "/getModelImages/", svc.model_images, methods=["GET"], name="model_images"),
        Route(m + "/UploadFile/", svc.upload_training_file, methods=["POST"], name="upload_file"),
        Route(m + "/UploadUrls/", svc.upload_training_urls, methods=["POST"], name="upload_urls"),
        Route(m + "/Train/", svc.train, methods=["POST"], name="train"),
        Route(m + "/ApproveFile/{file_id}/", svc.approve, methods=["POST"], name="approve_file"),
        Route(m + "/DeleteFile/{file_id}/", svc.delete, methods=["DELETE"], name="delete_file"),
        Route(m + "/UpdateFile/{file_id}/", svc.update, methods=["PATCH"], name="update_file"),
        Route(m + "/ExportFile/{file_id}/", svc.export, methods=["POST"], name="export_file"),
        Route(
            "/api/v2/OCR/files/{file_id}/{name}",
            svc.original,
            methods=["GET"],
            name="signed_original",
        ),
    ]
