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

Sources, per behaviour: docparse has no public trace beyond seed 001, so everything
above and its limits (600 pages, 200 MB, 200 files per batch request, 2000 priority
pages a day), its Chinese messages and its ``-60017 页码余额不足`` (a page balance, where
MinerU's -60017 is "retry limit reached") follow the seed.  What a self-hosted,
MinerU-compatible parser may add is a setting: ``zip_layout`` "mineru-api" (a v3.x
``mineru-api`` result, ``<name>/<backend>/<name>.md`` with ``<name>_middle.json``;
opendatalab/MinerU ``mineru/cli/output_paths.py`` build_zip_arcname, backends ``auto``/
``vlm``/``hybrid_auto``/``office``, a real sample idx:55833805082) or "mineru-api-flat"
(tags mineru-2.6.8/2.7.6: ``<name>/<name>.md``); ``page_idx`` "restart" (the
open-source engine cuts the PDF before parsing, ``mineru/cli/common.py``) or "original";
``err_code`` (an ``errCode`` beside ``errMsg``, as MinerU's SDKs read it) and
``err_msg_language``.  Settings: ``POST /__admin/config {"docparse": {...}}``, the
engine's (:mod:`mockserver.engine`) with the seed's values.
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
