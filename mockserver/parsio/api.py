"""Parsio's endpoints over one :class:`~mockserver.parsio.service.Parsio` state, and the
JSON shapes they answer with (the package docstring says which source each follows)."""

from __future__ import annotations

import datetime
import json
import math
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..defaults import PARSIO_MAILBOX_ID
from .parser import parse
from .service import (
    MAILBOX_CREATED,
    PENDING,
    SERVICE,
    DocRecord,
    Parsio,
    iso,
    nest_error,
    object_id,
    utc_day,
)

#: ``meta[orderId]=123`` form fields (how a multipart body carries "a JSON object").
_BRACKET = re.compile(r"meta\[([^\]]+)\]")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_PER_PAGE = 500
DEFAULT_PER_PAGE = 10  # mongoose-paginate-v2's default limit
TABLE_FIELD_ID = "65a1b2c3d4e5f60718293a4b"

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
}


def mailbox_view() -> dict[str, Any]:
    created = iso(MAILBOX_CREATED)
    return {
        "_id": PARSIO_MAILBOX_ID,
        "name": "docinbox demo (recibos)",
        "email_prefix": PARSIO_MAILBOX_ID,
        "process_attachments": True,
        "collect_emails": False,
        "alert_email_h": 24,
        "createdAt": created,
        "updatedAt": created,
    }


class Api:
    """The routes' handlers."""

    def __init__(self, svc: Parsio) -> None:
        self.svc = svc

    # ------------------------------------------------------------------ mailboxes

    async def list_mailboxes(self, request: Request) -> Response:
        """The account's mailboxes: a bare array (as Pipedream's client reads it)."""
        _key, denied = self.svc.guard(request)
        return denied or JSONResponse([mailbox_view()])

    async def get_mailbox(self, request: Request) -> Response:
        """One mailbox."""
        _key, denied = self.svc.guard(request)
        return denied or JSONResponse(mailbox_view())

    async def table_fields(self, request: Request) -> Response:
        """The mailbox's table fields (their ids name tables in ``table.parsed`` webhooks)."""
        _key, denied = self.svc.guard(request)
        return denied or JSONResponse([{"_id": TABLE_FIELD_ID, "name": "lineas_detalle"}])

    # ------------------------------------------------------------------ uploads

    async def upload_sync(self, request: Request) -> Response:
        """One file; the parsed document if parsing ends within ``sync_timeout_seconds``,
        else ``{doc_id, parsing_in_progress: true, status: "parsing"}``."""
        return await self._upload(request, sync=True)

    async def upload(self, request: Request) -> Response:
        """One file (a ZIP: each of its files), parsed in the background."""
        return await self._upload(request, sync=False)

    async def _upload(self, request: Request, *, sync: bool) -> Response:
        key, denied = self.svc.guard(request)
        if denied:
            return denied
        assert key is not None
        try:
            form = await request.form(max_files=1, max_fields=100)
        except HTTPException as exc:  # several files, a broken body
            return nest_error(400, str(exc.detail))
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.size:
                return nest_error(400, "File is required")
            limit = int(self.svc.settings["sync_max_bytes" if sync else "max_bytes"])
            if upload.size > limit:
                return nest_error(413, "File too large")
            meta = _meta(form)
            head = await upload.read(4)
            await upload.seek(0)
            is_zip = head == b"PK\x03\x04"
            if is_zip and sync:
                return nest_error(400, "ZIP archives are only accepted by /upload")
            stored = await anyio.to_thread.run_sync(self._store, upload, is_zip)
        finally:
            await form.close()
        if isinstance(stored, Response):
            return stored
        mode = "sync" if sync else "async"
        records = [
            await anyio.to_thread.run_sync(self._register, key, name, path, meta, mode)
            for name, path in stored
        ]
        if not sync:
            views = [self.doc_view(r) for r in records]
            return JSONResponse(views if is_zip else views[0], status_code=201)
        (rec,) = records
        if rec.started_at is not None:
            limit_at = rec.created_at + float(self.svc.settings["sync_timeout_seconds"])
            await self.svc.wait_until(min(rec.ready_at, limit_at))
        self.svc.settle()
        if self.svc.status(rec) in PENDING:
            return JSONResponse(
                {"doc_id": rec.id, "parsing_in_progress": True, "status": "parsing"},
                status_code=201,
            )
        return JSONResponse(self.doc_view(rec), status_code=201)

    def _store(self, upload: UploadFile, is_zip: bool) -> list[tuple[str, Path]] | Response:
        """The upload on disk (a ZIP's files one by one); never whole in memory."""
        folder = self.svc.dir / object_id(0)
        folder.mkdir(parents=True)
        name = _safe_name(upload.filename or "file")
        path = folder / name
        upload.file.seek(0)
        with path.open("wb") as out:
            shutil.copyfileobj(upload.file, out, 1024 * 1024)
        if not is_zip:
            return [(name, path)]
        return self._unzip(path, folder)

    def _unzip(self, path: Path, folder: Path) -> list[tuple[str, Path]] | Response:
        limit = int(self.svc.settings["max_bytes"])
        most = int(self.svc.settings["zip_max_files"])
        out: list[tuple[str, Path]] = []
        try:
            with zipfile.ZipFile(path) as archive:
                members = [
                    m
                    for m in archive.infolist()
                    if not m.is_dir() and not m.filename.startswith("__MACOSX/")
                ]
                if not members:
                    return nest_error(400, "The ZIP archive holds no files")
                if len(members) > most:
                    return nest_error(400, f"A ZIP archive may hold at most {most} files")
                copied = 0  # the whole archive's content counts against the limit
                for n, member in enumerate(members):
                    name = _safe_name(member.filename)
                    target = folder / f"{n:03d}" / name
                    target.parent.mkdir()
                    with archive.open(member) as src, target.open("wb") as dst:
                        while chunk := src.read(1024 * 1024):
                            copied += len(chunk)
                            if copied > limit:
                                return nest_error(413, "File too large")
                            dst.write(chunk)
                    out.append((name, target))
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
            return nest_error(400, f"The ZIP archive cannot be read: {exc}")
        return out

    def _register(self, key: str, name: str, path: Path, meta: Any, mode: str) -> DocRecord:
        parsed = parse(path)
        now = self.svc.ctx.clock.now()
        per_page = int(self.svc.settings["credits_per_page"])
        rec = DocRecord(
            id=object_id(now),
            key=key,
            mailbox_id=PARSIO_MAILBOX_ID,
            name=name,
            content_type=CONTENT_TYPES.get(parsed.kind or "", "application/octet-stream"),
            path=path,
            parsed=parsed,
            meta=meta,
            mode=mode,
            created_at=now,
            # "A credit is consumed the first time a document is parsed": none for a file
            # the parser cannot read.
            credits=parsed.pages * per_page if parsed.data is not None else 0,
        )
        return self.svc.add(rec)

    # ------------------------------------------------------------------ documents

    def doc_view(self, rec: DocRecord) -> dict[str, Any]:
        """``GET /docs/{id}``: both id spellings and the Document schema's fields; ``json``
        once parsed."""
        status = self.svc.status(rec)
        done = status in ("parsed", "fail")
        view: dict[str, Any] = {
            "_id": rec.id,
            "doc_id": rec.id,
            "mailbox_id": rec.mailbox_id,
            "name": rec.name,
            "filename": rec.name,
            "content_type": rec.content_type,
            "type": "file",
            "status": status,
            "parsing_in_progress": status in PENDING,
            "credits": rec.credits if status == "parsed" else 0,
            "createdAt": iso(rec.created_at),
            "processedAt": iso(rec.ready_at) if done else None,
        }
        if status == "parsed":
            view["json"] = rec.data()
        return view

    @staticmethod
    def item_view(rec: DocRecord, status: str) -> dict[str, Any]:
        """One row of ``GET /mailboxes/{id}/docs`` (MindCloud's list item)."""
        return {
            "_id": rec.id,
            "name": rec.name,
            "status": status,
            "type": "file",
            "mailboxId": rec.mailbox_id,
            "createdAt": iso(rec.created_at),
            "receivedAt": iso(rec.created_at),
        }

    async def get_doc(self, request: Request) -> Response:
        """One document."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        rec = self.svc.get(request.path_params["doc_id"])
        if rec is None:
            return nest_error(404, "Document not found")
        return JSONResponse(self.doc_view(rec))

    async def list_docs(self, request: Request) -> Response:
        """The mailbox's documents, newest first: ``q`` (in the name), ``status``,
        ``from``/``to`` (YYYY-MM-DD, UTC), ``page``/``per_page``."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        query = _Query.read(request)
        if isinstance(query, Response):
            return query
        statuses = {
            s.strip().lower()
            for value in request.query_params.getlist("status")
            for s in value.split(",")
            if s.strip()
        }
        q = request.query_params.get("q", "").strip().casefold()
        rows = []
        for rec in self.svc.listing(request.path_params["mailbox_id"]):
            status = self.svc.status(rec)
            if statuses and status not in statuses:
                continue
            if q and q not in rec.name.casefold():
                continue
            if query.within(rec.created_at):
                rows.append(self.item_view(rec, status))
        return JSONResponse(query.page_of(rows))

    async def list_parsed(self, request: Request) -> Response:
        """The mailbox's parsed data, newest first: each document's JSON plus
        ``received_at_datetime``, and ``docIds`` beside ``docs``."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        query = _Query.read(request)
        if isinstance(query, Response):
            return query
        found = [
            rec
            for rec in self.svc.listing(request.path_params["mailbox_id"])
            if self.svc.status(rec) == "parsed" and query.within(rec.created_at)
        ]
        envelope = query.page_of(
            [{**rec.data(), "received_at_datetime": iso(rec.created_at)} for rec in found]
        )
        first = (query.page - 1) * query.limit
        envelope["docIds"] = [rec.id for rec in found[first : first + query.limit]]
        return JSONResponse(envelope)


class _Query:
    """``page``, ``per_page`` (or ``limit``), ``from``, ``to`` of a listing."""

    def __init__(self, page: int, limit: int, start: str | None, end: str | None) -> None:
        self.page, self.limit, self.start, self.end = page, limit, start, end

    @classmethod
    def read(cls, request: Request) -> _Query | Response:
        params = request.query_params
        numbers: dict[str, int] = {}
        for name, default in (("page", 1), ("per_page", DEFAULT_PER_PAGE)):
            raw = params.get(name) or (params.get("limit") if name == "per_page" else None)
            try:
                numbers[name] = int(raw) if raw is not None else default
            except ValueError:
                numbers[name] = 0
            if numbers[name] < 1:
                return nest_error(400, [f"{name} must be a positive integer"])
        days: dict[str, str | None] = {}
        for name in ("from", "to"):
            value = params.get(name)
            if value:
                try:
                    if not _DAY.fullmatch(value):
                        raise ValueError(value)
                    datetime.date.fromisoformat(value)
                except ValueError:
                    return nest_error(400, [f"{name} must be a date in the format YYYY-MM-DD"])
            days[name] = value or None
        return cls(
            numbers["page"], min(numbers["per_page"], MAX_PER_PAGE), days["from"], days["to"]
        )

    def within(self, ts: float) -> bool:
        day = utc_day(ts)
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    def page_of(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """A mongoose-paginate-v2 envelope (MindCloud's list shape; burocrate reads
        ``limit``, ``page`` and ``docs``)."""
        total = len(rows)
        pages = max(1, math.ceil(total / self.limit))
        first = (self.page - 1) * self.limit
        return {
            "docs": rows[first : first + self.limit],
            "totalDocs": total,
            "limit": self.limit,
            "page": self.page,
            "totalPages": pages,
            "pagingCounter": first + 1,
            "hasPrevPage": self.page > 1,
            "hasNextPage": self.page < pages,
            "prevPage": self.page - 1 if self.page > 1 else None,
            "nextPage": self.page + 1 if self.page < pages else None,
        }


def _meta(form: FormData) -> Any:
    """``meta`` as sent: a JSON-encoded string is decoded ("meta can be provided either as
    a JSON object or as a JSON-encoded string"); other text is kept as it is; bracketed
    fields (``meta[orderId]``) make an object."""
    raw = form.get("meta")
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    fields = {
        m.group(1): value
        for name, value in form.multi_items()
        if isinstance(value, str) and (m := _BRACKET.fullmatch(name))
    }
    return fields or None


def _safe_name(name: str) -> str:
    """The file name as Parsio shows it: its last path segment."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = re.sub(r"[\x00-\x1f/]", "_", name)[:200]
    return name if name.strip(".") else "file"


__all__ = ["SERVICE", "Api"]
