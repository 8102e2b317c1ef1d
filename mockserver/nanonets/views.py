"""The JSON shapes Nanonets answers with: prediction results and the per-page views.

Sources per shape are listed in the package docstring; in short: page records as the
docs' GetPredictions example and a real 2022 capture (``status``, ``url``, ``file_url``,
``original_file_name``, boxes with ``page``), LabelFile answers as real 2023/2024
captures (``filepath``, ``file_url``, ``processing_type: "sync"``, items with
``page_no``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from starlette.requests import Request

from .records import FileRecord, PageRecord
from .service import Nanonets, image_path, raw_path


def _copy(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(boxes))  # type: ignore[no-any-return]


def record_boxes(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Boxes as page records carry them: ``page`` where LabelFile's items say
    ``page_no`` (real capture: predicted_boxes/moderated_boxes/raw_ocr use ``page``)."""
    out = []
    for box in _copy(boxes):
        if "page_no" in box:
            box["page"] = box.pop("page_no")
        out.append(box)
    return out


def raw_ocr(boxes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``raw_ocr``: the text boxes the OCR saw, the box fields without ``type``."""
    return [
        {k: v for k, v in box.items() if k not in ("type", "cells")}
        for box in record_boxes(boxes)
        if box.get("type") == "field"
    ]


def result_entries(
    svc: Nanonets, rec: FileRecord, *, done: bool, nested: bool = True
) -> list[dict[str, Any]]:
    """``result[]`` of a prediction: one entry per page, or the async acknowledgement —
    nested twice as the docs show it for LabelFile, or flat, one entry per file, as the
    seed does (``async_ack``) and as the docs show it for LabelUrls (*nested* False)."""
    base = {
        "message": "Success",
        "input": rec.name,
        "request_file_id": rec.id,
        "request_metadata": rec.metadata,
        "rotation": 0,
    }
    if not done:
        return _async_ack(svc, rec, base, nested=nested)
    kind = str(svc.settings.get("sync_processing_type") or "")
    return [
        {
            **base,
            "page": page.number,
            "id": page.id,
            "prediction": _copy(page.predicted),
            "filepath": image_path(rec, page),
            "file_url": raw_path(rec),
            "processing_type": kind,
            "size": page.size,
        }
        for page in rec.pages
    ]


def _async_ack(
    svc: Nanonets, rec: FileRecord, base: dict[str, Any], *, nested: bool
) -> list[dict[str, Any]]:
    """The async acknowledgement: no predictions yet, nested or flat as in
    :func:`result_entries`."""
    if not nested or svc.settings.get("async_ack") == "flat":
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
    pages = [
        {
            **base,
            "page": page.number,
            "id": page.id,
            "filepath": image_path(rec, page),
            "prediction": [],
            "processing_type": "async",
            "size": page.size,
        }
        for page in rec.pages
    ]
    return [{"message": "Success", "result": pages}]


def page_view(svc: Nanonets, request: Request, rec: FileRecord, page: PageRecord) -> dict[str, Any]:
    """One page record as GetPredictions (and the seed's getFile) list it."""
    created = time.gmtime(rec.created_at)
    status = svc.page_status(rec)
    done = status.lower() == "success"
    return {
        "id": page.id,
        "model_id": rec.model_id,
        "request_file_id": rec.id,
        "day_since_epoch": int(rec.created_at // 86400),
        "hour_of_day": created.tm_hour,
        "is_moderated": rec.approved,
        "original_file_name": rec.name,
        "page": page.number,
        "url": image_path(rec, page),
        "file_url": raw_path(rec),
        "request_metadata": rec.metadata,
        "size": page.size,
        "status": status,
        "source": "api",
        "is_deleted": False,
        "rotation": 0,
        "retries": 0,
        "no_of_fields": len(page.predicted) if done else 0,
        "export_status": "exported" if rec.exported else "",
        "approval_status": "approved" if rec.approved else "",
        "predicted_boxes": record_boxes(page.predicted) if done else [],
        "moderated_boxes": record_boxes(page.moderated) if done else [],
        "raw_ocr": raw_ocr(page.predicted) if done else [],
    }


def inference_view(
    svc: Nanonets,
    request: Request,
    items: list[tuple[FileRecord, PageRecord]],
    signed: dict[str, Any],
) -> dict[str, Any]:
    """GetPredictions' (and getFile's) body: pages split by review state; while the file
    is processing either pages with ``status: "pending"`` or, as the seed shows it, no
    pages at all (``pending_view``)."""
    if svc.settings.get("pending_view") == "empty":
        items = [(r, p) for r, p in items if svc.is_ready(r)]
    moderated = [page_view(svc, request, r, p) for r, p in items if r.approved]
    unmoderated = [page_view(svc, request, r, p) for r, p in items if not r.approved]
    return {
        "moderated_images_count": len(moderated),
        "unmoderated_images_count": len(unmoderated),
        "moderated_images": moderated,
        "unmoderated_images": unmoderated,
        "signed_urls": signed,
    }


def page_result(
    svc: Nanonets, request: Request, rec: FileRecord, page: PageRecord
) -> dict[str, Any]:
    """The documented page endpoint's body (docs.nanonets.com
    ocrmodelgetpredictionfilebypageid):
    ``{"message", "result": [{message, input, prediction, predicted_boxes, moderated_boxes,
    raw_ocr, ...page record}], "signed_urls"}``."""
    view = page_view(svc, request, rec, page)
    done = view["status"].lower() == "success"
    entry = {
        "message": "success",
        "input": rec.name,
        "prediction": _copy(page.moderated) if done else [],
        **view,
    }
    return {
        "message": "Success",
        "result": [entry],
        "signed_urls": svc.signed_urls(request, rec, [page]),
    }
