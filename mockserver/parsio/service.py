"""The Parsio mock's state in one mock context: documents, credits, and what every endpoint
checks first (the key, the rate, the mailbox).

A document's status follows the mock clock: ``new`` for ``queue_seconds``, ``parsing``
until ``parse_seconds + pages × seconds_per_page`` have passed, then ``parsed`` (or
``fail`` when the parser could not read the file).  Credits (``credits_per_page`` a page)
are taken when parsing starts; without enough, the document waits with status ``quota``
and starts, oldest first, once the period renews or the credits are raised.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..core.context import MockContext
from ..core.faultreplies import iso_utc
from ..core.limits import QuotaCounter, RateLimiter
from ..defaults import PARSIO_API_KEY, PARSIO_MAILBOX_ID
from .parser import Parsed

SERVICE = "parsio"
MB = 1024 * 1024
PENDING = ("new", "parsing")

SETTINGS: dict[str, Any] = {
    "api_keys": [PARSIO_API_KEY],
    # Starter plan's credits a month (api-evangelist plans; unverified); null: unlimited.
    "monthly_credits": 1000,
    "credits_period_seconds": 30 * 86400,
    "credits_per_page": 1,
    "queue_seconds": 0.5,
    "parse_seconds": 2.0,
    "seconds_per_page": 1.0,
    "sync_timeout_seconds": 60.0,
    "sync_max_bytes": 20 * MB,
    "max_bytes": 50 * MB,
    "zip_max_files": 100,
    # Parsio publishes no rate limit: off unless a test asks for one.
    "rate_per_second": 0.0,
    "rate_burst": 10.0,
}

MAILBOX_CREATED = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def nest_error(
    status: int, message: str | list[str], headers: dict[str, str] | None = None
) -> Response:
    """An error in NestJS's default shape (Parsio's backend is NestJS: its n8n node says
    so); the exact bodies are undocumented."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    reason = {400: "Bad Request", 404: "Not Found", 413: "Payload Too Large"}.get(status)
    if reason:
        body["error"] = reason
    return JSONResponse(body, status_code=status, headers=headers)


def object_id(now: float) -> str:
    """A MongoDB ObjectId's shape: 4 bytes of time, 8 random."""
    return f"{int(now) & 0xFFFFFFFF:08x}{secrets.token_hex(8)}"


@dataclass
class DocRecord:
    id: str
    key: str
    mailbox_id: str
    name: str
    content_type: str
    path: Path
    parsed: Parsed
    meta: Any  # as sent; None when no meta was sent
    mode: str  # "sync" | "async"
    created_at: float
    credits: int
    started_at: float | None = None  # None: waiting for credits (status quota)
    ready_at: float = 0.0
    ledger_state: str = ""

    def status(self, now: float, queue: float) -> str:
        if self.started_at is None:
            return "quota"
        if now < self.started_at + queue:
            return "new"
        if now < self.ready_at:
            return "parsing"
        return "parsed" if self.parsed.data is not None else "fail"

    def data(self) -> dict[str, Any]:
        """The parsed JSON as Parsio hands it out: the fields, and ``__meta__`` if sent."""
        out = dict(self.parsed.data or {})
        if self.meta is not None:
            out["__meta__"] = self.meta
        return out


class Parsio:
    """The service's state: one account, the demo mailbox, its documents and credits."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.settings = ctx.declare_settings(SERVICE, SETTINGS)
        self.limiter = RateLimiter(0, 0, ctx.clock)
        self.credits = QuotaCounter(None, 1, ctx.clock)
        self.docs: dict[str, DocRecord] = {}
        self.lock = threading.Lock()
        self.dir = ctx.new_dir("parsio-")
        self._configure()
        ctx.on_config(self._configure)
        ctx.on_reset(self._reset)
        ctx.on_refresh(self.settle)

    # ------------------------------------------------------------------ context hooks

    def _configure(self) -> None:
        s = self.settings
        self.limiter.rate = float(s["rate_per_second"] or 0)
        self.limiter.burst = float(s["rate_burst"] or 1)
        self.credits.limit = s["monthly_credits"]
        self.credits.period = float(s["credits_period_seconds"])
        self.settle()  # raised credits start the documents that waited for them

    def _reset(self) -> None:
        with self.lock:
            self.docs.clear()
        self.limiter.clear()
        self.credits.clear()
        self.dir = self.ctx.new_dir("parsio-")

    # ------------------------------------------------------------------ documents

    def add(self, rec: DocRecord) -> DocRecord:
        """Register an accepted upload: parsing starts now if credits allow (and nobody
        waits for credits before it), else it waits with status ``quota``."""
        with self.lock:
            self.docs[rec.id] = rec
        self.settle()
        status = self.status(rec)
        self.ctx.ledger.add(
            SERVICE,
            rec.id,
            rec.name,
            rec.parsed.sha256,
            status,
            mailbox=rec.mailbox_id,
            mode=rec.mode,
            pages=rec.parsed.pages,
        )
        rec.ledger_state = status
        return rec

    def settle(self) -> None:
        """Start documents waiting for credits (oldest first, while credits last) and bring
        the ledger's states up to date."""
        now = self.ctx.clock.now()
        with self.lock:
            records = sorted(self.docs.values(), key=lambda r: r.created_at)
            for rec in records:
                if rec.started_at is not None:
                    continue
                if rec.credits and not self.credits.consume(rec.key, rec.credits):
                    break  # first come, first served: later ones wait behind it
                self._start(rec, now)
        for rec in records:
            state = self.status(rec)
            if state != rec.ledger_state:
                rec.ledger_state = state
                self.ctx.ledger.set_state(SERVICE, rec.id, state)

    def _start(self, rec: DocRecord, now: float) -> None:
        s = self.settings
        rec.started_at = now
        rec.ready_at = (
            now
            + float(s["queue_seconds"])
            + float(s["parse_seconds"])
            + rec.parsed.pages * float(s["seconds_per_page"])
        )

    def status(self, rec: DocRecord) -> str:
        return rec.status(self.ctx.clock.now(), float(self.settings["queue_seconds"]))

    def get(self, doc_id: str) -> DocRecord | None:
        self.settle()
        with self.lock:
            return self.docs.get(doc_id)

    def listing(self, mailbox_id: str) -> list[DocRecord]:
        """The mailbox's documents, newest first."""
        self.settle()
        with self.lock:
            found = [r for r in self.docs.values() if r.mailbox_id == mailbox_id]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    async def wait_until(self, mock_deadline: float) -> None:
        """Sleep until the mock clock reaches *mock_deadline* (advances shorten it)."""
        clock = self.ctx.clock
        while True:
            left = mock_deadline - clock.now()
            if left <= 0 or self.ctx.closing.is_set():
                return
            await anyio.sleep(min(0.05, clock.real_seconds(left)))

    # ------------------------------------------------------------------ checks

    def api_key(self, request: Request) -> str | None:
        sent = request.headers.get("x-api-key", "")
        for key in self.settings["api_keys"]:
            if sent and hmac.compare_digest(sent.encode(), str(key).encode()):
                return str(key)
        return None

    def guard(self, request: Request) -> tuple[str | None, Response | None]:
        """The key (401 without a valid one), the rate (429), the path's mailbox (404)."""
        key = self.api_key(request)
        if key is None:
            return None, nest_error(401, "Unauthorized")
        wait = self.limiter.take(key)
        if wait > 0:
            retry = str(max(1, int(-(-wait // 1))))
            return None, nest_error(
                429, "ThrottlerException: Too Many Requests", {"Retry-After": retry}
            )
        mailbox = request.path_params.get("mailbox_id")
        if mailbox is not None and mailbox != PARSIO_MAILBOX_ID:
            return None, nest_error(404, "Mailbox not found")
        return key, None


def iso(ts: float | None) -> str | None:
    return None if ts is None else iso_utc(ts)


def utc_day(ts: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts))
