"""Parsio public API mock (https://api.parsio.io): mailboxes, uploads, documents, parsed data.

**The documentation is thin.**  The official help pages
(https://help.parsio.io/public-api/parsio-public-api and
https://help.parsio.io/public-api/parse-pdf-and-files-using-api-1) confirm the base URL,
the ``X-API-Key`` header and its 401, the endpoints' paths, the multipart fields ``file``
and ``meta`` (echoed as ``__meta__`` in the parsed JSON), ZIPs on ``/upload`` only and the
listing filters ``page``, ``from``/``to`` (YYYY-MM-DD) and ``q``; the stored copies stop
before the response bodies, the sync timeout and the limits.  Everything else here is
marked with where it comes from: [derived] = third-party references generated from the
docs (api-evangelist/parsio's OpenAPI, mindcloud-inc/universal-api-reference), [3p] =
third-party code that calls the real API, [inferred] = a guess, made configurable where
it matters.

Routes (every one needs ``X-API-Key``, the mock accepts
:data:`~mockserver.defaults.PARSIO_API_KEY`; else 401 ``{"statusCode": 401, "message":
"Unauthorized"}``, NestJS's default body [inferred: Parsio's backend is NestJS, its own
n8n node says so]; the only mailbox is :data:`~mockserver.defaults.PARSIO_MAILBOX_ID`,
any other is 404 ``{"statusCode": 404, "message": "Mailbox not found", "error": "Not
Found"}`` [inferred])::

    GET  /mailboxes                      bare array of mailboxes [3p: Pipedream]
    GET  /mailboxes/{id}                 one mailbox: _id, name, email_prefix, ... [derived]
    GET  /mailboxes/{id}/tableFields     [{"_id", "name": "lineas_detalle"}] (shape undocumented)
    POST /mailboxes/{id}/upload-sync     one file; the parsed document, or on timeout
                                         {"doc_id", "parsing_in_progress": true,
                                          "status": "parsing"} [inferred from the flag]
    POST /mailboxes/{id}/upload          one file, or a ZIP of up to zip_max_files: the
                                         document (a list of them for a ZIP) [derived]
    GET  /docs/{id}                      a document; "json" once parsed
    GET  /mailboxes/{id}/docs            q, status, from, to, page, per_page (or limit)
    GET  /mailboxes/{id}/parsed          from, to, page, per_page: parsed JSON per document

POSTs answer 201 (NestJS's default for a POST [inferred]).

Demo mailbox: its parser extracts the Nanonets demo model's fields from the PDF's text
layer (:mod:`mockserver.parsio.parser`): ``{"fecha": "23/12/2025", "total": "45.99",
"lineas_detalle": [{"descripcion": "Gasoil", "cantidad": "50L"}]}`` plus ``__meta__``
when ``meta`` was sent (a JSON-encoded string is decoded, other text kept as text,
``meta[key]`` fields make an object).  A field the document lacks is ``null``, an empty
table ``[]`` [inferred: AI parsers answer with their whole schema].  Images are read as
pages without text; a file the parser cannot read (not a PDF or an image, corrupt,
encrypted) is accepted and ends in status ``fail`` without using credits.

Document (``GET /docs/{id}``; a superset of the spellings sources disagree on, so clients
written against either work)::

    {"_id", "doc_id", "mailbox_id", "name", "filename", "content_type", "type": "file",
     "status", "parsing_in_progress", "credits", "createdAt", "processedAt",
     "json": {... "__meta__": ...}}          # json only when parsed

Statuses ``new`` → ``parsing`` → ``parsed`` | ``fail``, and ``quota`` [derived: the
``DocumentStatus`` enum; ``skipped`` and ``exception`` exist there too but the mock never
produces them].  Timing on the mock clock: ``queue_seconds`` in ``new``, then
``parse_seconds + pages × seconds_per_page`` in ``parsing``.  ``upload-sync`` waits for
the end of parsing at most ``sync_timeout_seconds`` (the real value is undocumented).

Credits: "A credit is consumed the first time a document or email is parsed ... When
credits are exhausted, documents are queued with a quota status rather than parsed"
[derived: api-evangelist's rate-limits file, from parsio.io/pricing].  The mock takes
``credits_per_page`` a page from ``monthly_credits`` per ``credits_period_seconds``
window; a document that finds too few waits in ``quota`` (``upload-sync`` answers at
once with it) and starts, oldest first, when the window renews or the credits are raised
(``/__admin/config``) [inferred: whether Parsio starts them on its own is undocumented].

Listings are mongoose-paginate-v2 envelopes ``{docs, totalDocs, limit, page, totalPages,
pagingCounter, hasPrevPage, hasNextPage, prevPage, nextPage}`` [derived: MindCloud; the
NestJS + Mongo backend fits], newest first, 10 a page unless ``per_page`` says (at most
500).  ``q`` matches the document's name, case-insensitively [inferred: the stored docs
stop at "q (string): searc"].  ``status`` takes one or several values (repeated or comma-
separated).  ``from``/``to`` compare the UTC day of ``createdAt``; a malformed date or
page is 400 with NestJS's validation body.  ``/parsed`` rows are the parsed JSON plus
``received_at_datetime`` [3p: ekallevik/burocrate], with ``docIds`` beside ``docs``.

Limits: ``sync_max_bytes`` (20 MB) on ``upload-sync``, ``max_bytes`` (50 MB) on
``upload`` [derived: api-evangelist, Slates; the old official article said 2 MB], over
it 413 ``{"statusCode": 413, "message": "File too large", ...}`` [inferred: multer's
limit in NestJS]; no file or an empty one is 400; a ZIP on ``upload-sync`` is 400.
Parsio publishes no rate limit: ``rate_per_second`` (0: off) adds a 429 with
``Retry-After`` for clients' tests.

Not mocked: mailbox create/update/delete, templates, ``/doc`` and ``/doc-sync`` (text and
HTML), re-parse, skip, webhooks (docinbox polls).

Settings (``POST /__admin/config {"parsio": {...}}``): ``api_keys``, ``monthly_credits``
(1000; null: unlimited), ``credits_period_seconds`` (30 days), ``credits_per_page`` (1),
``queue_seconds`` (0.5), ``parse_seconds`` (2), ``seconds_per_page`` (1),
``sync_timeout_seconds`` (60), ``sync_max_bytes``, ``max_bytes``, ``zip_max_files``
(100), ``rate_per_second`` (0), ``rate_burst`` (10).

Where it lives: :mod:`~mockserver.parsio.service` (state, credits, checks),
:mod:`~mockserver.parsio.parser` (the demo mailbox's parser),
:mod:`~mockserver.parsio.api` (the endpoints and their shapes).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..core.context import MockContext
from .api import Api
from .service import SERVICE, Parsio


def routes(ctx: MockContext) -> list[BaseRoute]:
    """The Parsio routes on *ctx*."""
    svc = Parsio(ctx)
    ctx.state[SERVICE] = svc  # tests and tools can reach the state
    api = Api(svc)
    mb = "/mailboxes/{mailbox_id}"
    return [
        Route("/mailboxes", api.list_mailboxes, methods=["GET"], name="list_mailboxes"),
        Route("/mailboxes/", api.list_mailboxes, methods=["GET"], name="list_mailboxes_slash"),
        Route(mb, api.get_mailbox, methods=["GET"], name="get_mailbox"),
        Route(mb + "/tableFields", api.table_fields, methods=["GET"], name="table_fields"),
        Route(mb + "/upload-sync", api.upload_sync, methods=["POST"], name="upload_sync"),
        Route(mb + "/upload", api.upload, methods=["POST"], name="upload"),
        Route(mb + "/docs", api.list_docs, methods=["GET"], name="list_docs"),
        Route(mb + "/parsed", api.list_parsed, methods=["GET"], name="list_parsed"),
        Route("/docs/{doc_id}", api.get_doc, methods=["GET"], name="get_doc"),
    ]
