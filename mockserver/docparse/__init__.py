"""docparse v1 (seed 001): a self-hosted, MinerU-compatible parser that only takes URLs.

Routes:

``POST /api/v1/extract/task``                      camelCase request and response
``GET  /api/v1/extract/task/{taskId}``             camelCase: taskId, state, fullZipUrl,
                                                   markdownUrl, errMsg
``POST /api/v1/extract/task/batch``                snake_case, as MinerU's batch
``GET  /api/v1/extract-results/batch/{batch_id}``  snake_case, as MinerU's batch results
``GET  /__cdn/docparse/pdf/{id}.zip`` / ``.md``    result zip / Markdown (no auth; expire)

Envelopes differ by endpoint exactly as the seed shows them: single-task endpoints answer
``{"code", "message", "data", "timestamp"}`` (milliseconds), batch endpoints
``{"code", "msg", "trace_id", "data"}``.

The seed gives its own token codes (``-20002`` wrong token, ``-20011`` expired) but not
the HTTP status; the mock answers them with HTTP 401 (as MinerU, whose API this one
copies, does for its token errors) in the endpoint's envelope. Accounts:
``mock-docparse-token`` and ``mock-docparse-token-2`` (tasks are private to their
token: ``-60013``); ``mock-docparse-token-expired`` gets ``-20011``.

The mock really fetches the URL it is given (the daemon's signed file URLs), with the
same submission-time vs task-failure split as the MinerU mock (see
:mod:`mockserver.mineru`). The file's type comes from the URL path's suffix or, failing
that, a Content-Disposition filename; a URL with neither is refused with ``-60002``.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ..core.context import MockContext
from ..engine.api import task_routes
from .api import SERVICE, DocParse


def routes(ctx: MockContext) -> list[BaseRoute]:
    """Mounted by ``mockserver.app.create_app``."""
    service = DocParse(ctx)
    ctx.state[SERVICE] = service  # for tests and tools: the engine behind the routes
    return [
        *task_routes("/api/v1", service),
        Route("/__cdn/docparse/pdf/{result_id}.zip", service.download_zip, methods=["GET"]),
        Route("/__cdn/docparse/pdf/{result_id}.md", service.download_md, methods=["GET"]),
    ]
