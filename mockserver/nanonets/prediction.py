"""Prediction and retrieval: ``LabelFile``, ``LabelUrls``, ``GetPredictions`` (and the
seed's ``getFile``), ``ImageLevelInferences`` (documented and seed paths), the model's
page listing (``ImageLevelInferences?…`` and the seed's ``getModelImages``) and the
``signed_urls`` originals."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import anyio
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response

from ..documents import pdftext
from .ingest import Submission, fetch_url, ingest, store_upload
from .records import FileRecord, display_name
from .replies import (
    GATEWAY_TIMEOUT_HTML,
    MSG_BAD_FILE,
    MSG_BAD_URLS,
    MSG_FILE_MISSING,
    MSG_NO_FILE,
    MSG_QUOTA,
    error,
    s3_error,
)
from .service import Nanonets
from .views import inference_view, page_result, result_entries


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


class Prediction:
    """The prediction and retrieval endpoints over one :class:`Nanonets` state."""

    def __init__(self, svc: Nanonets) -> None:
        self.svc = svc

    async def label_file(self, request: Request) -> Response:
        """Predict on uploaded file(s): sync, or ``?async=true``."""
        key, denied = self.svc.guard(request)
        if denied:
            return denied
        assert key is not None
        form = await request.form(max_files=100, max_fields=100)
        try:
            uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
            if not uploads:
                return error(400, MSG_FILE_MISSING)
            paths = [(u.filename or "file", store_upload(self.svc, u)) for u in uploads]
        finally:
            await form.close()
        metadata = _text(form.get("request_metadata"))
        pages_spec = _text(form.get("pages_to_process")) or None
        return await self._predict(request, key, paths, metadata, pages_spec)

    async def label_urls(self, request: Request) -> Response:
        """Predict on documents at public URLs: sync, or ``?async=true``."""
        key, denied = self.svc.guard(request)
        if denied:
            return denied
        assert key is not None
        asked = await _url_request(request)
        if isinstance(asked, Response):
            return asked
        urls, metadata, pages_spec = asked
        if not urls:
            return error(400, MSG_BAD_URLS)
        paths: list[tuple[str, Path]] = []
        for url in urls:
            try:
                paths.append((url, await fetch_url(self.svc, url)))
            except ValueError:
                continue
        if not paths:
            return error(400, MSG_BAD_URLS)
        # docs.nanonets.com ocrmodellabelurlsasyncbymodelidpost-1: a *flat* result list.
        response = await self._predict(request, key, paths, metadata, pages_spec, nested=False)
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
        *,
        nested: bool = True,
    ) -> Response:
        is_async = request.query_params.get("async", "").lower() in ("true", "1", "yes")
        sub = Submission(key, request.path_params["model_id"], metadata, pages_spec, is_async)
        remaining = self.svc.quota.remaining(key)
        if remaining is not None and remaining < 1:
            return error(402, MSG_QUOTA)
        records: list[FileRecord] = []
        for name, path in paths:
            try:
                records.append(
                    await anyio.to_thread.run_sync(ingest, self.svc, sub, display_name(name), path)
                )
            except pdftext.DocumentError as exc:
                return error(400, MSG_FILE_MISSING if exc.code == "empty" else MSG_BAD_FILE)
            except ValueError:
                return error(400, "Invalid pages_to_process")
        self.svc.quota.consume(key)  # a refused upload is not billed
        return await self._answer(request, records, is_async, nested)

    async def _answer(
        self, request: Request, records: list[FileRecord], is_async: bool, nested: bool
    ) -> Response:
        """Sync: wait out processing (504 past ``sync_timeout_seconds``); async: at once."""
        if not is_async:
            deadline = max(r.ready_at for r in records)
            limit = records[0].created_at + float(self.svc.settings["sync_timeout_seconds"])
            if deadline > limit:
                await self.svc.wait_until(limit)
                return HTMLResponse(GATEWAY_TIMEOUT_HTML, status_code=504)
            await self.svc.wait_until(deadline)
        result: list[dict[str, Any]] = []
        for rec in records:
            result.extend(result_entries(self.svc, rec, done=not is_async, nested=nested))
        signed: dict[str, Any] = {}
        if self.svc.settings.get("signed_urls") != "flat":
            for rec in records:  # keyed by storage path: several files simply add keys
                signed.update(self.svc.signed_urls(request, rec))
        elif len(records) == 1:
            signed = self.svc.signed_urls(request, records[0])
        else:  # one flat pair could not say which file it belongs to
            signed = {rec.id: self.svc.signed_urls(request, rec) for rec in records}
        return JSONResponse({"message": "Success", "result": result, "signed_urls": signed})

    def serves(self, path: str) -> bool:
        """Whether this polling path is served (``poll_paths``: documented | seed | both)."""
        chosen = str(self.svc.settings.get("poll_paths") or "both")
        return chosen in ("both", path)

    async def get_predictions(self, request: Request) -> Response:
        """``GET /api/v2/Inferences/Model/{model_id}/InferenceRequestFiles/GetPredictions/
        {request_file_id}``: the documented way to a file's prediction."""
        if not self.serves("documented"):
            return not_found()
        return self._file_view(request)

    async def get_file(self, request: Request) -> Response:
        """The seed's ``getFile/{id}/``: the same answer (no public source has this path)."""
        if not self.serves("seed"):
            return not_found()
        return self._file_view(request)

    def _file_view(self, request: Request) -> Response:
        rec = self.svc.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        items = [(rec, p) for p in rec.pages]
        view = inference_view(self.svc, request, items, {})
        listed = [p["id"] for p in view["moderated_images"] + view["unmoderated_images"]]
        pages = [p for p in rec.pages if p.id in listed]
        view["signed_urls"] = self.svc.signed_urls(request, rec, pages)
        return JSONResponse(view)

    def _page(self, request: Request) -> tuple[FileRecord, int] | Response:
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        with self.svc.lock:
            where = self.svc.pages.get(request.path_params["page_id"])
        rec = self.svc.record(where[0], request.path_params["model_id"]) if where else None
        if rec is None or where is None:
            return error(404, MSG_NO_FILE)
        return rec, where[1]

    async def page(self, request: Request) -> Response:
        """``GET /api/v2/Inferences/Model/{model_id}/ImageLevelInferences/{page_id}``."""
        found = self._page(request)
        if isinstance(found, Response):
            return found
        rec, index = found
        return JSONResponse(page_result(self.svc, request, rec, rec.pages[index]))

    async def image_level(self, request: Request) -> Response:
        """The seed's ``/OCR/Model/{id}/ImageLevelInferences/{page_id}/`` (no public source):
        one page in getFile's shape."""
        found = self._page(request)
        if isinstance(found, Response):
            return found
        rec, index = found
        page = rec.pages[index]
        items = [(rec, page)] if self.svc.is_ready(rec) else []
        signed = self.svc.signed_urls(request, rec, [page])
        return JSONResponse(inference_view(self.svc, request, items, signed))

    async def list_pages(self, request: Request) -> Response:
        """``GET /api/v2/Inferences/Model/{id}/ImageLevelInferences?start_day_interval=
        &current_batch_day=``: both are days since the epoch (a real C# fixture, the
        vendor OpenAPI), the window ``[start, end]``."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        try:
            start = int(request.query_params.get("start_day_interval", "0"))
            end = int(request.query_params.get("current_batch_day", "0"))
        except ValueError:
            return error(400, "start_day_interval and current_batch_day must be integers")
        return self._listing(request, start, end)

    def _listing(self, request: Request, start: int, end: int) -> Response:
        with self.svc.lock:
            records = [r for r in self.svc.files.values() if not r.deleted]
        items = [
            (r, p)
            for r in sorted(records, key=lambda r: r.created_at)
            if r.model_id == request.path_params["model_id"]
            and start <= int(r.created_at // 86400) <= end
            and self.svc.is_ready(r)
            for p in r.pages
        ]
        signed: dict[str, Any] = {}
        for rec in {r.id: r for r, _p in items}.values():
            signed.update(self.svc.signed_urls(request, rec, [p for r, p in items if r is rec]))
        return JSONResponse(inference_view(self.svc, request, items, signed))

    async def model_images(self, request: Request) -> Response:
        """The seed's ``getModelImages/``: values up to 10 000 read as days back (the seed
        says so), larger ones as days since the epoch (what the real listing takes)."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        try:
            interval = int(request.query_params.get("start_day_interval", "0"))
            batch = int(request.query_params.get("current_batch_day", "0"))
        except ValueError:
            return error(400, "start_day_interval and current_batch_day must be integers")
        today = int(self.svc.ctx.clock.now() // 86400)
        end = batch if batch > 10_000 else today - batch
        start = interval if interval > 10_000 else end - interval
        return self._listing(request, start, end)

    async def original(self, request: Request) -> Response:
        """The uploaded original behind a ``signed_urls`` link (expires on the mock clock)."""
        rid = request.path_params["file_id"]
        with self.svc.lock:
            rec = self.svc.files.get(rid)
        try:
            expires = int(request.query_params.get("expires", ""))
        except ValueError:
            expires = -1
        sig = self.svc.signature(rid, expires)
        if (
            rec is None
            or rec.deleted
            or not hmac.compare_digest(sig, request.query_params.get("sig", ""))
        ):
            return s3_error(403, "AccessDenied", "Access Denied")
        if expires < self.svc.ctx.clock.now():
            return s3_error(403, "AccessDenied", "Request has expired")
        return FileResponse(rec.path, filename=rec.name)


def not_found() -> Response:
    """A path this Nanonets does not serve (``poll_paths``): the framework's plain 404."""
    return JSONResponse({"detail": "Not found."}, status_code=404)


async def _url_request(request: Request) -> tuple[list[str], str, str | None] | Response:
    """``LabelUrls``' URLs, ``request_metadata`` and ``pages_to_process``: JSON or a form."""
    urls: list[str] = []
    metadata = ""
    pages_spec = None
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            return error(400, MSG_BAD_URLS)
        if isinstance(body, dict):
            raw = body.get("urls")
            urls = [raw] if isinstance(raw, str) else [u for u in raw or [] if isinstance(u, str)]
            metadata = _text(body.get("request_metadata"))
            pages_spec = _text(body.get("pages_to_process")) or None
    else:
        form = await request.form()
        urls = [u for u in form.getlist("urls") if isinstance(u, str)]
        metadata = _text(form.get("request_metadata"))
        pages_spec = _text(form.get("pages_to_process")) or None
    return urls, metadata, pages_spec
