"""Nanonets OCR API v2 mock (seed 000): prediction, retrieval, training, file management.

Base paths are the real ones (``/api/v2/OCR/Model/{model_id}/<Action>/`` with the
trailing slash). Authentication is HTTP Basic with the API key as the user name
(``curl -u "$KEY:"``); the mock accepts :data:`~mockserver.defaults.NANONETS_API_KEY`.

Demo model :data:`~mockserver.defaults.NANONETS_MODEL_ID`: fields ``fecha`` (a date
after "Fecha") and ``total`` (an amount after "Total"); table ``lineas_detalle``
(columns ``descripcion``, ``cantidad``: ``<description> <quantity>`` lines after a
line reading ``lineas_detalle``). Everything is derived from the PDF text layer
(:mod:`mockserver.documents.pdftext`); images carry no text, so they get no predictions.

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

Where it lives: :mod:`~mockserver.nanonets.service` (state, settings, auth and limits),
:mod:`~mockserver.nanonets.model` (the demo model), :mod:`~mockserver.nanonets.records`
(files, pages, training images), :mod:`~mockserver.nanonets.ingest` (uploads and URLs to
records), :mod:`~mockserver.nanonets.views` (response shapes),
:mod:`~mockserver.nanonets.prediction`, :mod:`~mockserver.nanonets.review` and
:mod:`~mockserver.nanonets.training` (the endpoints), :mod:`~mockserver.nanonets.replies`
(error answers).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..core.context import MockContext
from .prediction import Prediction
from .review import Review
from .service import SERVICE, Nanonets
from .training import Training


def routes(ctx: MockContext) -> list[BaseRoute]:
    """The Nanonets v2 routes on *ctx* (paths exactly as the seed, trailing slashes)."""
    svc = Nanonets(ctx)
    ctx.state[SERVICE] = svc  # tests and the daemon's embedded mode can reach the state
    predict, review, train = Prediction(svc), Review(svc), Training(svc)
    m = "/api/v2/OCR/Model/{model_id}"
    return [
        Route("/api/v2/OCR/Model/", train.list_models, methods=["GET"], name="list_models"),
        Route(m + "/", train.get_model, methods=["GET"], name="get_model"),
        Route(m + "/LabelFile/", predict.label_file, methods=["POST"], name="label_file"),
        Route(m + "/LabelUrls/", predict.label_urls, methods=["POST"], name="label_urls"),
        Route(m + "/getFile/{file_id}/", predict.get_file, methods=["GET"], name="get_file"),
        Route(
            m + "/ImageLevelInferences/{page_id}/",
            predict.image_level,
            methods=["GET"],
            name="image_level_inferences",
        ),
        Route(m + "/getModelImages/", predict.model_images, methods=["GET"], name="model_images"),
        Route(m + "/UploadFile/", train.upload_training_file, methods=["POST"], name="upload_file"),
        Route(m + "/UploadUrls/", train.upload_training_urls, methods=["POST"], name="upload_urls"),
        Route(m + "/Train/", train.train, methods=["POST"], name="train"),
        Route(m + "/ApproveFile/{file_id}/", review.approve, methods=["POST"], name="approve_file"),
        Route(m + "/DeleteFile/{file_id}/", review.delete, methods=["DELETE"], name="delete_file"),
        Route(m + "/UpdateFile/{file_id}/", review.update, methods=["PATCH"], name="update_file"),
        Route(m + "/ExportFile/{file_id}/", review.export, methods=["POST"], name="export_file"),
        Route(
            "/api/v2/OCR/files/{file_id}/{name}",
            predict.original,
            methods=["GET"],
            name="signed_original",
        ),
    ]
