"""Reviewing a file: the documented endpoints and the seed's.

Documented (docs.nanonets.com/reference/file-review-api and update-fields-via-api; the
slates client): ``POST .../Inferences/Model/{id}/ImageLevelInferences/Verify/{rfid}``
(and ``UnVerify``; the page's heading also shows ``/ImageLevelInferences/Model/{id}/
Verify/{rfid}``), ``PATCH .../Inferences/Model/{id}/ImageLevelInference?use_ui_version=
true`` with ``{"moderated_boxes": [...]}`` (built from the GET data, ``is_new: true`` for
new boxes, a box left out is deleted), ``DELETE .../Inferences/Model/{id}/
InferenceRequestFiles/{rfid}``.

The seed's ``ApproveFile``, ``UpdateFile`` (``{"fields": [...]}``), ``ExportFile`` and
``DeleteFile`` under ``/OCR/Model/`` appear in no public source; the mock keeps serving
them (docinbox's review desk is built on them).

``moderated_boxes`` starts as a copy of ``predicted_boxes``; an edit marks the boxes it
changed ``"status": "moderated"``, so later reads show it.
"""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .model import DEMO_LABELS, Label
from .records import FileRecord
from .replies import error
from .service import SERVICE, Nanonets


class Review:
    """The review endpoints over one :class:`Nanonets` state."""

    def __init__(self, svc: Nanonets) -> None:
        self.svc = svc

    async def approve(self, request: Request) -> Response:
        """Mark a file reviewed: its pages move to ``moderated_images``."""
        return self._file_action(request, "approved")

    async def unverify(self, request: Request) -> Response:
        """Undo an approval: the pages go back to ``unmoderated_images``."""
        rec = self.svc.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        rec.approved = False
        return JSONResponse({"message": "Success", "request_file_id": rec.id})

    async def update_boxes(self, request: Request) -> Response:
        """``PATCH ImageLevelInference``: the pages whose boxes the body names get exactly
        the body's boxes (a box left out is deleted, ``is_new`` ones are added)."""
        _key, denied = self.svc.guard(request)
        if denied:
            return denied
        try:
            body = await request.json()
        except ValueError:
            return error(400, "Invalid JSON body")
        boxes = body.get("moderated_boxes") if isinstance(body, dict) else None
        if not isinstance(boxes, list) or not all(isinstance(b, dict) for b in boxes):
            return error(400, "moderated_boxes is required: a list of boxes")
        rec = self._file_of(boxes, request.path_params["model_id"])
        if rec is None:
            return error(400, "moderated_boxes name no box of a known file")
        by_page: dict[int, list[dict[str, Any]]] = {}
        for box in boxes:
            page = box.get("page", box.get("page_no", 0))
            if not isinstance(page, int) or not any(p.number == page for p in rec.pages):
                return error(400, f"Unknown page: {page}")
            stored = {k: v for k, v in box.items() if k not in ("page", "is_new")}
            stored["page_no"] = page
            if box.get("is_new") or not stored.get("id"):
                stored["id"] = str(uuid.uuid4())
            by_page.setdefault(page, []).append(stored)
        for page in rec.pages:
            if page.number in by_page:
                page.moderated = by_page[page.number]
        return JSONResponse({"message": "Success", "request_file_id": rec.id})

    def _file_of(self, boxes: list[dict[str, Any]], model_id: str) -> FileRecord | None:
        """The file whose page holds one of *boxes*' ids."""
        ids = {b.get("id") for b in boxes if b.get("id") and not b.get("is_new")}
        with self.svc.lock:
            records = [r for r in self.svc.files.values() if not r.deleted]
        for rec in records:
            if rec.model_id != model_id:
                continue
            for page in rec.pages:
                if ids & {b.get("id") for b in page.moderated + page.predicted}:
                    return rec
        return None

    async def export(self, request: Request) -> Response:
        """Send a file to the model's export integrations (the mock just records it)."""
        return self._file_action(request, "exported")

    async def delete(self, request: Request) -> Response:
        """Delete a file: later reads answer 404."""
        return self._file_action(request, "deleted")

    def _file_action(self, request: Request, action: str) -> Response:
        rec = self.svc.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        setattr(rec, action, True)
        ledger = self.svc.ctx.ledger
        if action == "deleted":
            ledger.set_state(SERVICE, rec.id, "deleted")
        else:
            entry = ledger.get(SERVICE, rec.id)
            if entry is not None:  # None once the ledger has dropped it (it is bounded)
                ledger.set_state(SERVICE, rec.id, entry["state"], **{action: True})
        return JSONResponse({"message": "Success", "request_file_id": rec.id})

    async def update(self, request: Request) -> Response:
        """Edit field values of a file; later reads show the edit in ``moderated_boxes``."""
        rec = self.svc.guarded_record(request)
        if isinstance(rec, Response):
            return rec
        try:
            body = await request.json()
        except ValueError:
            return error(400, "Invalid JSON body")
        fields = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(fields, list) or not fields:
            return error(400, 'fields is required: [{"label", "ocr_text"}]')
        known = {lbl.name: lbl for lbl in DEMO_LABELS if lbl.kind == "field"}
        for item in fields:
            if not isinstance(item, dict) or item.get("label") not in known:
                shown = item.get("label") if isinstance(item, dict) else item
                return error(400, f"Unknown label: {shown}")
            if not isinstance(item.get("ocr_text"), str):
                return error(400, "ocr_text must be a string")
        for item in fields:
            _apply_edit(rec, item, known[item["label"]])
        return JSONResponse({"message": "Success", "request_file_id": rec.id})


def _apply_edit(rec: FileRecord, item: dict[str, Any], label: Label) -> None:
    """Set a field's text on its page(s); a field the model missed is added."""
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
                "xmin": 0,
                "ymin": 0,
                "xmax": 0,
                "ymax": 0,
                "score": 1.0,
                "ocr_text": item["ocr_text"],
                "type": "field",
                "status": "moderated",
                "page_no": page.number,
                "label_id": label.id,
            }
        )
