"""From an upload or a URL to a registered file: stored, read, predicted, timed.

Processing time runs on the mock clock: an async file is ready after
``async_queue_seconds + pages × async_seconds_per_page``; a sync one after
``sync_seconds_per_page`` for every page (0 by default: the answer comes at once) plus
``sync_seconds_per_extra_page`` for each page beyond :data:`SYNC_FREE_PAGES`.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.datastructures import UploadFile

from ..documents import pdftext
from .model import predict_page, px
from .records import FileRecord, PageRecord, parse_pages, safe_name, sha256_of
from .service import SERVICE, Nanonets

#: Sync is "optimized for files of 3 pages or fewer": longer ones take extra time.
SYNC_FREE_PAGES = 3


@dataclass(frozen=True)
class Submission:
    """What one prediction request asked for, shared by each of its files."""

    key: str
    model_id: str
    metadata: str
    pages_spec: str | None
    is_async: bool


def ingest(svc: Nanonets, sub: Submission, name: str, path: Path) -> FileRecord:
    """Read a stored upload and register it; raises DocumentError / ValueError."""
    doc = pdftext.extract(path)
    selected = (
        parse_pages(sub.pages_spec, doc.page_count)
        if sub.pages_spec
        else list(range(doc.page_count))
    )
    digest = sha256_of(path)
    pages = [_page_record(doc.pages[n], n, digest) for n in selected]
    now = svc.ctx.clock.now()
    rid = str(uuid.uuid4())
    ready = now + _processing_seconds(svc.settings, len(pages), sub.is_async)
    rec = FileRecord(
        id=rid,
        model_id=sub.model_id,
        api_key=sub.key,
        name=name,
        path=path,
        sha256=digest,
        metadata=sub.metadata,
        created_at=now,
        ready_at=ready,
        is_async=sub.is_async,
        pages=pages,
    )
    with svc.lock:
        svc.files[rid] = rec
        for i, p in enumerate(pages):
            svc.pages[p.id] = (rid, i)
    svc.ctx.ledger.add(
        SERVICE,
        rid,
        name,
        digest,
        "processing" if ready > now else "done",
        pages=len(pages),
        mode="async" if sub.is_async else "sync",
    )
    return rec


def _page_record(page: pdftext.Page, number: int, digest: str) -> PageRecord:
    predicted = predict_page(page, digest)
    return PageRecord(
        id=str(uuid.uuid4()),
        number=number,
        size={"width": px(page.width), "height": px(page.height)},
        predicted=predicted,
        moderated=json.loads(json.dumps(predicted)),
    )


def _processing_seconds(settings: dict[str, Any], pages: int, is_async: bool) -> float:
    if is_async:
        return float(settings["async_queue_seconds"]) + pages * float(
            settings["async_seconds_per_page"]
        )
    extra = max(0, pages - SYNC_FREE_PAGES)
    return pages * float(settings["sync_seconds_per_page"]) + extra * float(
        settings["sync_seconds_per_extra_page"]
    )


def store_upload(svc: Nanonets, upload: UploadFile) -> Path:
    """Copy an upload to the data dir in chunks (never whole in memory)."""
    folder = svc.dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_name(upload.filename or "file")
    with path.open("wb") as out:
        upload.file.seek(0)
        shutil.copyfileobj(upload.file, out, 1024 * 1024)
    return path


async def fetch_url(svc: Nanonets, url: str) -> Path:
    """Download *url* to the data dir, streamed; raises ValueError when it cannot."""
    if not re.match(r"^https?://", url):
        raise ValueError(url)
    folder = svc.dir / uuid.uuid4().hex
    folder.mkdir(parents=True)
    name = safe_name(url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "file")
    path = folder / name
    timeout = float(svc.settings["url_fetch_timeout"])
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
