"""Nanonets OCR API v2 mock: prediction, retrieval, review, training.

Seed 000 (a third-party write-up, the Smithery skill "guillempuche/nanonets-api") is the
starting point; where public evidence contradicts or completes it, the evidence wins,
and where sources disagree the mock serves each variant behind a setting.  Sources, per
behaviour (quoted in /work/notes/fidelity.md §1–§2; ``idx:N`` = a file id in the public
code index):

=============================================  ==========================================
behaviour                                      source
=============================================  ==========================================
``POST /api/v2/OCR/Model/{id}/LabelFile/``,    seed 000; docs.nanonets.com
``LabelUrls/``, Basic auth with the key as     (ocrmodellabelfile…); every public client
user and an empty password
polling: ``GET /api/v2/Inferences/Model/{id}/  docs.nanonets.com/reference/
InferenceRequestFiles/GetPredictions/{rfid}``  ocrmodelgetpredictionfilebyfileid; vendor
                                               OpenAPI (konfig-sdks/openapi-examples
                                               nanonets/openapi.yaml); clients idx:6090208970,
                                               idx:55590882749, idx:21830121742
the seed's ``GET /api/v2/OCR/Model/{id}/       seed 000 only (no public client or doc);
getFile/{rfid}/``, same answer                 ``poll_paths`` serves either or both
``{moderated_images_count,                     the docs' example; a real capture of the list
unmoderated_images_count, moderated_images,    endpoint (idx:32569231608, 2022-11-24)
unmoderated_images, signed_urls}``
page record: ``id, model_id, request_file_id,  same capture and the docs: ``status``
page, url, file_url, original_file_name,       "success" (real) vs "Success" (docs:
status, size, predicted_boxes,                 ``status_spelling``); ``url``/``file_url``
moderated_boxes, raw_ocr, …`` (no              storage paths (``PredictionImages/<uuid>
``uploaded_file_name`` anywhere)               .jpeg``, ``RawPredictions/<rfid>.<ext>``)
boxes of page records carry ``page``;          real captures (idx:32569231608;
LabelFile ``prediction[]`` items ``page_no``;  idx:44629359572, idx:4035747019); cells
table cells 1-based ``row``/``col``            1-based in real data and the docs
while processing: page records with            the async docs: file status ``success``,
``status: "pending"`` (``pending_view:         ``pending`` or ``failure`` (a failure means
"pending"``), or no pages at all as the seed   three retries failed); ``pending_view:
shows it (``"empty"``); ``failure`` for files  "empty"`` is the seed's getFile; ``fail_files``
``fail_files`` names                           picks the files that fail
async ack: ``result[0].result[]`` (nested      nanonets.readme.io/reference/
twice, one entry per page, ``processing_type:  ocrmodellabelfileasyncbymodelidpost and the
"async"``) — or flat, one entry per file       ``okAsync`` example of NanoNets/api-docs
(``async_ack: "flat"``)                        (nested); seed 000 (flat)
sync page records carry ``filepath``,          real captures idx:44629359572 (2023),
``file_url``, ``processing_type: "sync"``      idx:4035747019 (2024); the seed and docs
(``sync_processing_type``: "" as the seed)     show ""
``signed_urls`` keyed by storage path, each    three real captures (idx:32569231608,
``{original, original_compressed, thumbnail,   idx:44629359572, idx:4035747019); the flat
acw_rotate_90/180/270,                         pair is the seed's (``signed_urls:
original_with_long_expiry}``; RawPredictions   "flat"``)
key: ``original`` only (7 days), others ""
validity: ``original`` 4 h,                    docs ("valid for 4 hrs … 180 days"); the
``original_with_long_expiry`` 180 days         2024 capture agrees to the second
page: ``GET /api/v2/Inferences/Model/{id}/     docs.nanonets.com/reference/
ImageLevelInferences/{page_id}`` →             ocrmodelgetpredictionfilebypageid; NanoNets/
``{message, result: [{message, input,          api-docs nanonets_openapi_3.1.0.yaml; the
prediction, predicted_boxes, moderated_boxes,  C# data object idx:6400952165
raw_ocr, …}], signed_urls}``
the seed's ``/OCR/Model/{id}/                  seed 000 only (kept, getFile's shape)
ImageLevelInferences/{page_id}/``
listing: ``GET /api/v2/Inferences/Model/{id}/  real C# fixture idx:32569231608; both are
ImageLevelInferences?start_day_interval=&      days since the epoch.  The seed's
current_batch_day=``                           ``getModelImages/`` is kept (values ≤ 10 000
                                               read as days back, as the seed says)
review: ``POST …/ImageLevelInferences/Verify/  docs.nanonets.com/reference/file-review-api
{rfid}`` (``UnVerify``; also the heading's     (its heading and samples disagree: both
``/ImageLevelInferences/Model/{id}/Verify/``), served) and update-fields-via-api; slates
``PATCH …/ImageLevelInference?use_ui_version=  client idx:55590882749
true {"moderated_boxes": [...]}``, ``DELETE
…/InferenceRequestFiles/{rfid}``
the seed's ``ApproveFile``, ``UpdateFile``     seed 000 only — no public source has them;
(``{"fields": [{label, ocr_text}]}``),         kept because docinbox's review desk uses
``ExportFile``, ``DeleteFile``                 them
errors ``{"message": …}``: 400, 401 (with      the API reference's texts (seed 000); the
``WWW-Authenticate``), 402, 404, 429 (with     order of checks and ``Retry-After`` are the
``Retry-After``)                               mock's choice
a path not served (``poll_paths``): 404        the mock's choice (a framework's 404)
``{"detail": "Not found."}``
=============================================  ==========================================

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
                 "filepath": "uploadedfiles/<model>/PredictionImages/<page uuid>.jpeg",
                 "file_url": "uploadedfiles/<model>/RawPredictions/<uuid>.pdf",
                 "processing_type": "sync", "request_metadata": "<as sent>",
                 "size": {"width": 1275, "height": 1650}, "rotation": 0}],
     "signed_urls": {"<storage path>": {"original": URL, ...}, ...}}

``<field>`` = ``{id, label, xmin, ymin, xmax, ymax, score, ocr_text, type: "field",
status: "correctly_predicted", page_no, label_id}`` (ints for the box, pixels of the
page rendered at 150 dpi, origin top-left). ``<table>`` = ``{id, label, type: "table",
score, xmin, ymin, xmax, ymax, page_no, label_id, status, cells: [{id, row, col, label,
text, score, xmin, ymin, xmax, ymax}]}``. The signed URLs are the mock's own
(``/api/v2/OCR/files/{request_file_id}/{name}?expires=&sig=``) on the mock clock;
expired or tampered → 403 XML ``AccessDenied``.

Sync latency: ``sync_seconds_per_page`` (mock) seconds per processed page before the
answer (0 by default; real calls take seconds: set it to measure concurrency against
something like the real service).

Sync on a long document: the real service does not refuse it — the docs call sync
"optimized for files of 3 pages or fewer" and async "for large files (... more than
20 pages)" because processing takes minutes. The mock therefore processes it, but the
response is delayed by ``sync_seconds_per_extra_page`` (mock) seconds per page beyond 3;
if that exceeds ``sync_timeout_seconds`` the client gets what a front proxy sends when
the backend takes too long, a **504** HTML page, while the file is still processed and
later readable by polling (the upload was accepted and billed).

**Async** (``?async=true``): 200 at once (the acknowledgement above). Processing then
takes ``async_queue_seconds + pages × async_seconds_per_page`` on the mock clock
(defaults 5 + 2/page; tests use ``POST /__admin/clock/advance``).  Polling answers 200
for a known file (404 ``{"message": "File not found"}`` for an unknown or deleted one);
the prediction is complete when every listed page has ``status`` success.  A done file
lists one record per processed page, in page order, in ``unmoderated_images`` (or
``moderated_images`` once approved).

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
``async_seconds_per_page`` (2), ``sync_seconds_per_page`` (0),
``sync_seconds_per_extra_page`` (2),
``sync_timeout_seconds`` (60), ``url_fetch_timeout`` (20, real seconds),
``api_keys`` (list of accepted keys); the variants: ``poll_paths`` ("both" |
"documented" | "seed"), ``async_ack`` ("nested" | "flat"), ``pending_view`` ("pending" |
"empty"), ``status_spelling`` ("success" | "Success"), ``signed_urls`` ("by_path" |
"flat"), ``sync_processing_type`` ("sync" | ""), ``fail_files`` (globs).

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

#: The seed's prefix and the documented one.
_OCR = "/api/v2/OCR/Model/{model_id}"
_INF = "/api/v2/Inferences/Model/{model_id}"


def routes(ctx: MockContext) -> list[BaseRoute]:
    """The Nanonets v2 routes on *ctx*: the documented ``/Inferences/Model/`` ones and the
    seed's ``/OCR/Model/`` ones (trailing slashes as the seed writes them)."""
    svc = Nanonets(ctx)
    ctx.state[SERVICE] = svc  # tests and the daemon's embedded mode can reach the state
    predict, review, train = Prediction(svc), Review(svc), Training(svc)
    return [
        Route("/api/v2/OCR/Model/", train.list_models, methods=["GET"], name="list_models"),
        Route(_OCR + "/", train.get_model, methods=["GET"], name="get_model"),
        *_prediction_routes(predict),
        *_training_routes(train),
        *_review_routes(review),
        Route(
            "/api/v2/OCR/files/{file_id}/{name}",
            predict.original,
            methods=["GET"],
            name="signed_original",
        ),
    ]


def _prediction_routes(predict: Prediction) -> list[Route]:
    """Predicting and reading predictions back, on both APIs' paths (which of the two
    polling paths answer is the ``poll_paths`` setting)."""
    m, inf = _OCR, _INF
    return [
        Route(m + "/LabelFile/", predict.label_file, methods=["POST"], name="label_file"),
        Route(m + "/LabelUrls/", predict.label_urls, methods=["POST"], name="label_urls"),
        Route(
            inf + "/InferenceRequestFiles/GetPredictions/{file_id}",
            predict.get_predictions,
            methods=["GET"],
            name="get_predictions",
        ),
        Route(m + "/getFile/{file_id}/", predict.get_file, methods=["GET"], name="get_file"),
        Route(
            inf + "/ImageLevelInferences/{page_id}",
            predict.page,
            methods=["GET"],
            name="page_prediction",
        ),
        Route(
            inf + "/ImageLevelInferences",
            predict.list_pages,
            methods=["GET"],
            name="list_pages",
        ),
        Route(
            m + "/ImageLevelInferences/{page_id}/",
            predict.image_level,
            methods=["GET"],
            name="image_level_inferences",
        ),
        Route(m + "/getModelImages/", predict.model_images, methods=["GET"], name="model_images"),
    ]


def _training_routes(train: Training) -> list[Route]:
    """Training images in and a training run: the seed's paths only."""
    m = _OCR
    return [
        Route(m + "/UploadFile/", train.upload_training_file, methods=["POST"], name="upload_file"),
        Route(m + "/UploadUrls/", train.upload_training_urls, methods=["POST"], name="upload_urls"),
        Route(m + "/Train/", train.train, methods=["POST"], name="train"),
    ]


def _review_routes(review: Review) -> list[Route]:
    """Review: the documented verify/update/delete paths (the docs' heading and samples
    disagree on verify: both served), then the seed's, which docinbox's desk uses."""
    m, inf = _OCR, _INF
    return [
        Route(
            inf + "/ImageLevelInferences/Verify/{file_id}",
            review.approve,
            methods=["POST"],
            name="verify",
        ),
        Route(
            "/api/v2/ImageLevelInferences/Model/{model_id}/Verify/{file_id}",
            review.approve,
            methods=["POST"],
            name="verify_heading_path",
        ),
        Route(
            inf + "/ImageLevelInferences/UnVerify/{file_id}",
            review.unverify,
            methods=["POST"],
            name="unverify",
        ),
        Route(
            inf + "/ImageLevelInference",
            review.update_boxes,
            methods=["PATCH"],
            name="update_boxes",
        ),
        Route(
            inf + "/InferenceRequestFiles/{file_id}",
            review.delete,
            methods=["DELETE"],
            name="delete_request_file",
        ),
        Route(m + "/ApproveFile/{file_id}/", review.approve, methods=["POST"], name="approve_file"),
        Route(m + "/DeleteFile/{file_id}/", review.delete, methods=["DELETE"], name="delete_file"),
        Route(m + "/UpdateFile/{file_id}/", review.update, methods=["PATCH"], name="update_file"),
        Route(m + "/ExportFile/{file_id}/", review.export, methods=["POST"], name="export_file"),
    ]
