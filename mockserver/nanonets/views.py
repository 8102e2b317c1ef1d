"""The JSON shapes Nanonets answers with: prediction results and the per-page views."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request

from .records import FileRecord, PageRecord
from .service import ORIGINAL_URL_SECONDS, Nanonets


def result_entries(rec: FileRecord, *, done: bool) -> list[dict[str, Any]]:
    """``result[]`` of a prediction: one entry per page, or one async acknowledgement."""
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


def page_view(svc: Nanonets, request: Request, rec: FileRecord, page: PageRecord) -> dict[str, Any]:
    """One processed page as ``getFile`` lists it."""
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
        "url": svc.signed_url(request, rec, ORIGINAL_URL_SECONDS),
        "request_metadata": rec.metadata,
        "size": page.size,
        "predicted_boxes": json.loads(json.dumps(page.predicted)),
        "moderated_boxes": json.loads(json.dumps(page.moderated)),
    }


def inference_view(
    svc: Nanonets,
    request: Request,
    items: list[tuple[FileRecord, PageRecord]],
    signed: dict[str, Any],
) -> dict[str, Any]:
    """``getFile``'s body: both counts 0 while processing, pages split by review state."""
    moderated = [page_view(svc, request, r, p) for r, p in items if r.approved]
    unmoderated = [page_view(svc, request, r, p) for r, p in items if not r.approved]
    return {
        "moderated_images_count": len(moderated),
        "unmoderated_images_count": len(unmoderated),
        "moderated_images": moderated,
        "unmoderated_images": unmoderated,
        "signed_urls": signed,
    }
