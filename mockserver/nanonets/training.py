"""The model and its training: model list and details, ``UploadFile``, ``UploadUrls``,
``Train`` (the mock records training images and counts runs; predictions never change)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..defaults import NANONETS_MODEL_ID
from ..documents import pdftext
from .ingest import fetch_url, store_upload
from .model import model_view
from .records import TrainingImage, display_name, sha256_of
from .replies import MSG_BAD_FILE, MSG_BAD_URLS, MSG_FILE_MISSING, error
from .service import SERVICE, Nanonets


class Training:
    """The model and training endpoints over one :class:`Nanonets` state."""

    def __init__(self, svc: Nanonets) -> None:
        self.svc = svc

    async def upload_training_file(self, request: Request) -> Response:
        """Add training images from uploaded files."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        form = await request.form(max_files=100)
        try:
            uploads = [u for u in form.getlist("file") if isinstance(u, UploadFile)]
            if not uploads:
                return error(400, MSG_FILE_MISSING)
            added = []
            for upload in uploads:
                path = store_upload(self.svc, upload)
                try:
                    pdftext.extract(path)
                except pdftext.DocumentError:
                    return error(400, MSG_BAD_FILE)
                added.append(self._add(upload.filename or "file", path, "file"))
        finally:
            await form.close()
        return JSONResponse({"message": "Success", "result": added})

    async def upload_training_urls(self, request: Request) -> Response:
        """Add training images from public URLs."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return error(400, MSG_BAD_URLS)
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or not urls:
            return error(400, MSG_BAD_URLS)
        added = []
        for url in urls:
            try:
                path = await fetch_url(self.svc, str(url))
                pdftext.extract(path)
            except (ValueError, pdftext.DocumentError):
                return error(400, MSG_BAD_URLS)
            added.append(self._add(str(url), path, "url"))
        return JSONResponse({"message": "Success", "result": added})

    def _add(self, name: str, path: Path, source: str) -> dict[str, Any]:
        image = TrainingImage(str(uuid.uuid4()), display_name(name), sha256_of(path), source)
        with self.svc.lock:
            self.svc.training.append(image)
        self.svc.ctx.ledger.add(SERVICE, image.id, image.name, image.sha256, "training")
        return {"id": image.id, "file": image.name, "message": "Success"}

    async def train(self, request: Request) -> Response:
        """Start training on the uploaded images (the mock just counts the run)."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        with self.svc.lock:
            if not self.svc.training:
                return error(400, "No training images uploaded")
            self.svc.trained += 1
            count = len(self.svc.training)
        return JSONResponse(
            {
                "message": "Success",
                "model_id": NANONETS_MODEL_ID,
                "state": 1,
                "training_images": count,
            }
        )

    async def list_models(self, request: Request) -> Response:
        """The account's models (the demo model only)."""
        _key, denied = self.svc.guard(request, model=False)
        if denied:
            return denied
        return JSONResponse([model_view()])

    async def get_model(self, request: Request) -> Response:
        """One model's details: its fields and tables."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        return JSONResponse(model_view())
