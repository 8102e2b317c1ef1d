"""The Nanonets mock's state in one mock context, and what every endpoint checks first.

Settings (``POST /__admin/config {"nanonets": {...}}``) are listed in
:data:`SETTINGS`; the package docstring says what each does.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import hmac
import threading
import uuid
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response

from ..core.context import MockContext
from ..core.limits import QuotaCounter, RateLimiter
from ..defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from .records import FileRecord, PageRecord, TrainingImage, safe_name
from .replies import MSG_NO_FILE, MSG_NO_MODEL, MSG_RATE, MSG_UNAUTHORIZED, error

SERVICE = "nanonets"
#: docs.nanonets.com: "original expiry urls are valid for 4 hrs and original with long
#: expiry urls are valid for 180 days" (a real 2024 capture agrees to the second).
ORIGINAL_URL_SECONDS = 4 * 3600
LONG_URL_SECONDS = 180 * 86400
#: The RawPredictions key of a real capture: a 7-day S3 presigned URL (X-Amz-Expires=604800).
RAW_URL_SECONDS = 7 * 86400
#: The variants of a ``signed_urls`` entry (real captures, three of them).
URL_VARIANTS = (
    "original",
    "original_compressed",
    "thumbnail",
    "acw_rotate_90",
    "acw_rotate_180",
    "acw_rotate_270",
    "original_with_long_expiry",
)

SETTINGS: dict[str, Any] = {
    "api_keys": [NANONETS_API_KEY],
    "rate_per_second": 10.0,
    "rate_burst": 20.0,
    "free_quota": 10_000,
    "quota_period_seconds": 30 * 86400,
    "async_queue_seconds": 5.0,
    "async_seconds_per_page": 2.0,
    # Real synchronous calls take seconds per page; 0 keeps the mock instant unless a
    # benchmark or test asks for latency (concurrency is measured against it).
    "sync_seconds_per_page": 0.0,
    "sync_seconds_per_extra_page": 2.0,
    "sync_timeout_seconds": 60.0,
    "url_fetch_timeout": 20.0,
    # Where sources disagree (see the package docstring), one value per source:
    "poll_paths": "both",  # "documented" (GetPredictions) | "seed" (getFile) | "both"
    "async_ack": "nested",  # "nested" (the docs) | "flat" (the seed)
    "pending_view": "pending",  # "pending" (records with status pending) | "empty" (seed)
    "status_spelling": "success",  # "success" (real capture) | "Success" (docs example)
    "signed_urls": "by_path",  # "by_path" (real captures) | "flat" (the seed)
    "sync_processing_type": "sync",  # "sync" (real capture) | "" (seed, docs)
    "fail_files": [],  # globs on the file name: those files end with status "failure"
}


class Nanonets:
    """The service's state: files, pages, training images, limits; one per context."""

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

    # ------------------------------------------------------------------ context hooks

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

    # ------------------------------------------------------------------ checks

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
            return None, error(401, MSG_UNAUTHORIZED, {"WWW-Authenticate": 'Basic realm="api"'})
        wait = self.limiter.take(key)
        if wait > 0:
            retry = max(1, int(-(-wait // 1)))
            return None, error(429, MSG_RATE, {"Retry-After": str(retry)})
        if model and request.path_params.get("model_id") != NANONETS_MODEL_ID:
            return None, error(404, MSG_NO_MODEL)
        return key, None

    def record(self, rid: str, model_id: str) -> FileRecord | None:
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
        rec = self.record(request.path_params["file_id"], request.path_params["model_id"])
        if rec is None:
            return error(404, MSG_NO_FILE)
        return rec

    # ------------------------------------------------------------------ time and links

    def is_ready(self, rec: FileRecord) -> bool:
        """Processing is over (mock clock); moves the ledger entry to ``done``."""
        ready = rec.ready_at <= self.ctx.clock.now()
        if ready:
            entry = self.ctx.ledger.get(SERVICE, rec.id)
            if entry and entry["state"] == "processing":
                self.ctx.ledger.set_state(SERVICE, rec.id, "done")
        return ready

    async def wait_until(self, mock_deadline: float) -> None:
        """Sleep until the mock clock reaches *mock_deadline* (advances shorten it)."""
        clock = self.ctx.clock
        while True:
            left = mock_deadline - clock.now()
            if left <= 0 or self.ctx.closing.is_set():
                return
            await anyio.sleep(min(0.05, clock.real_seconds(left)))

    def signature(self, rid: str, expires: int) -> str:
        return hmac.new(self.secret, f"{rid}:{expires}".encode(), "sha256").hexdigest()[:32]

    def signed_url(self, request: Request, rec: FileRecord, seconds: float) -> str:
        expires = int(self.ctx.clock.now() + seconds)
        sig = self.signature(rec.id, expires)
        base = str(request.base_url).rstrip("/")
        name = quote(safe_name(rec.name))
        return f"{base}/api/v2/OCR/files/{rec.id}/{name}?expires={expires}&sig={sig}"

    def signed_urls(
        self, request: Request, rec: FileRecord, pages: list[PageRecord] | None = None
    ) -> dict[str, Any]:
        """``signed_urls``: by storage path (real captures) — each page's PredictionImages
        path with its seven variants, the file's RawPredictions path with ``original``
        only (the others ""); or the seed's flat pair (``signed_urls: "flat"``).

        The mock renders no page images: every variant serves the original document (the
        query parameters imgix would read, ``or``/``w``, are carried but ignored)."""
        if self.settings.get("signed_urls") == "flat":
            return {
                "original": self.signed_url(request, rec, ORIGINAL_URL_SECONDS),
                "original_with_long_expiry": self.signed_url(request, rec, LONG_URL_SECONDS),
            }
        out: dict[str, Any] = {}
        extra = {"thumbnail": "&w=240", "acw_rotate_90": "&or=270", "acw_rotate_180": "&or=180",
                 "acw_rotate_270": "&or=90"}  # fmt: skip
        for page in rec.pages if pages is None else pages:
            short = self.signed_url(request, rec, ORIGINAL_URL_SECONDS)
            out[image_path(rec, page)] = {
                name: (
                    self.signed_url(request, rec, LONG_URL_SECONDS)
                    if name == "original_with_long_expiry"
                    else short + extra.get(name, "")
                )
                for name in URL_VARIANTS
            }
        raw = dict.fromkeys(URL_VARIANTS, "")
        raw["original"] = self.signed_url(request, rec, RAW_URL_SECONDS)
        out[raw_path(rec)] = raw
        return out

    # ------------------------------------------------------------------ page states

    def page_status(self, rec: FileRecord) -> str:
        """A processed page's ``status``: pending while processing, then ``success`` (or
        the docs' ``Success``), or ``failure`` for a file ``fail_files`` names."""
        if not self.is_ready(rec):
            return "pending"
        globs = self.settings.get("fail_files") or []
        if any(fnmatch.fnmatch(rec.name, str(g)) for g in globs):
            return "failure"
        return "Success" if self.settings.get("status_spelling") == "Success" else "success"


def image_path(rec: FileRecord, page: PageRecord) -> str:
    """A page's storage path (``url``, ``filepath``): ``uploadedfiles/<model>/
    PredictionImages/<uuid>.jpeg`` in real captures."""
    return f"uploadedfiles/{rec.model_id}/PredictionImages/{page.id}.jpeg"


def raw_path(rec: FileRecord) -> str:
    """The file's storage path (``file_url``): ``uploadedfiles/<model>/RawPredictions/
    <request_file_id>[.ext]`` in real captures."""
    suffix = "." + rec.name.rsplit(".", 1)[-1].lower() if "." in rec.name else ""
    return f"uploadedfiles/{rec.model_id}/RawPredictions/{rec.id}{suffix}"
