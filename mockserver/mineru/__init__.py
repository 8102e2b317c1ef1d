"""MinerU precise-parsing API v4 (seed 002), as the mock serves it.

Routes (paths as on mineru.net):

``POST /api/v4/extract/task``                      one task from a URL
``GET  /api/v4/extract/task/{task_id}``            its state / result
``POST /api/v4/file-urls/batch``                   presigned OSS PUT URLs (see ``mockserver.oss``)
``POST /api/v4/extract/task/batch``                a batch of URL tasks
``GET  /api/v4/extract-results/batch/{batch_id}``  every file of a batch
``GET  /__cdn/mineru/pdf/{id}.zip``                the result zip (no auth; expires)

Envelope ``{"code": 0, "data": {...}, "msg": "ok", "trace_id": "<32 hex>"}``. Business
errors are HTTP 200 with a non-zero ``code`` and ``data: null`` (seed 002's error table).

Authentication, where the seed is silent, follows what users report from the real service
(opendatalab/MinerU issues #5133 and #5187): a bad token is **HTTP 401** with
``{"msgCode": "A0202", "msg": "user authenticate failed", ...}`` — not a 200 envelope.
The mock answers the same for a missing/malformed header or an unknown token, and
``A0211`` ("token expired") for the test token ``mock-mineru-token-expired``.

Accounts: ``mock-mineru-token`` (``defaults.MINERU_TOKEN``) and a second account
``mock-mineru-token-2`` (:data:`SECOND_TOKEN`). Tasks belong to the token that created
them; the other account gets ``-60013``.

When errors surface (the seed does not say; chosen to match the upload/URL split):

* URL tasks (``extract/task``): the mock fetches the URL at submission. Type (-60002),
  size (-60005), empty (-60004), page count (-60006) and page balance (-60017) are refused
  at once with their code; a URL that cannot be fetched (-60008) or a file that cannot be
  read (-60003) gives a task that ends ``failed`` with that message in ``err_msg``.
* Uploads and batch URL tasks: the request was accepted before the file was seen, so
  every per-file problem makes that file's task end ``failed`` with ``err_msg``.
* ``file-urls/batch`` refuses a name whose suffix is not supported with -60002.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..core.context import MockContext
from ..engine.api import task_routes
from .api import SERVICE, MinerU


def routes(ctx: MockContext) -> list[BaseRoute]:
    """Mounted by ``mockserver.app.create_app``."""
    service = MinerU(ctx)
    ctx.state[SERVICE] = service  # for tests and tools: the engine behind the routes
    return [
        *task_routes("/api/v4", service),
        Route("/api/v4/file-urls/batch", service.file_urls, methods=["POST"]),
        Route("/__cdn/mineru/pdf/{result_id}.zip", service.download, methods=["GET"]),
    ]
