"""MinerU precise-parsing API v4, as the mock serves it.

Routes (paths as on mineru.net):

``POST /api/v4/extract/task``                      one task from a URL
``GET  /api/v4/extract/task/{task_id}``            its state / result
``POST /api/v4/file-urls/batch``                   presigned OSS PUT URLs (see ``mockserver.oss``)
``POST /api/v4/extract/task/batch``                a batch of URL tasks
``GET  /api/v4/extract-results/batch/{batch_id}``  every file of a batch
``GET  /__cdn/mineru/pdf/{id}.zip``                the result zip (no auth; expires)

Seed 002 is an older copy of mineru.net/apiManage/docs; where the current docs, the
official SDKs or users' reports of the real service differ, those win, and where they
disagree among themselves the mock serves each variant behind a setting.  Sources, per
behaviour (quoted in /work/notes/fidelity.md §3–§7 and §10; ``idx:N`` = a file id in the
public code index):

=============================================  ==========================================
behaviour                                      source
=============================================  ==========================================
envelope ``{"code": 0, "data", "msg": "ok",    seed 002; mineru.net/apiManage/docs
"trace_id"}``; business errors HTTP 200 with   (SimpRead copy idx:58243672316)
a non-zero ``code`` and ``data: null``
a parameter error (-500, -10002) as HTTP 400   opendatalab/MinerU#1826 (a real answer:
with ``msg`` = ``{"en", "zh"}`` and no         ``400 {"code":-500,"msg":{"en":…,"zh":…}}``);
``trace_id`` (``param_errors: "http400"``,     extended by the mock to -10002; the seed's
default) or the seed's envelope               ``"envelope"`` keeps HTTP 200
auth: HTTP 401 ``{"success": false,            opendatalab/MinerU#5133; a user log
"msgCode": "A0202", "msg": "user               idx:68761915226; Nebutra/MinerU-Skill's
authenticate failed", …}`` (no ``code``);      envelope; A0211 per the docs' code table
``A0211`` "token expired"
``max_pages`` 200 pages per file (-60006)      current docs ("文件页数不超出 200 页");
                                               MinerU-Ecosystem sdk/python exceptions.py
                                               ("200 page limit (-60006)"); seed: 600
200 MB per file (-60005)                       docs; seed
``max_files`` 50 files per ``file-urls/batch`` the endpoint notes ("单次申请链接不能超过
/ ``extract/task/batch`` (-10002 "单次申请链接  50 个"); the comparison table and the SDK
不能超过 50 个")                                README say 200, so it is a setting
``priority_pages_per_day`` 1000 (beyond it,    current docs ("每个账号每天享有 1000 页最高
tasks queue ``low_priority_factor`` longer)    优先级解析额度"); seed: 2000
``files_per_day`` 10 000 per account (-60018   mineru.net/doc/docs/limit_en ("10,000
at submission, the day renewing at midnight    files/day, of which at most 100 are HTML");
UTC+8)                                         -60018's meaning from the docs' table; when
                                               it surfaces is the mock's choice
``submit_per_minute`` 300 (extract/task,       limit_en ("300 requests/minute" shared by
file-urls/batch, extract/task/batch),          the submit endpoints, 1,000 by the result
``query_per_minute`` 1000 (task and batch      endpoints); over it HTTP 429 as the Agent
results) → HTTP 429                            API documents (no rate-limit headers found)
codes -60017 "retry limit reached", -60018     current docs' table (-60017 … -60022);
daily tasks, -60019 HTML quota, -60020 file    ``fail_tasks`` makes a task fail with any
split failed, -60021 page count unreadable,    code (the real service decides; the mock
-60022 web page unreadable                     cannot know when)
``err_msg`` in English (``err_msg_language:    every real task-level message found is
"en"``) or Chinese (``"zh"``, the docs'        English (user logs: "failed to read file,
examples)                                      please check if the file is corrupted",
                                               "retry limit reached (5 attempts), please
                                               replace the file.", "number of pages exceeds
                                               limit (200 pages), please split the file and
                                               try again"); only doc examples are Chinese
per-task ``err_code`` (``err_code: true``),    read by all official SDKs (MinerU-Ecosystem
empty ("") for the codes in                    sdk/python client.py _parse_task_result,
``err_code_blank_for`` (-60010, -60017)        sdk/go client.go); the mineru-open-api CLI
                                               log idx:69846807865 shows ``[-60006]``
                                               filled, ``[]`` for retry-limit and
                                               parsing-failed
states ``waiting-file``/``pending``/           seed 002; docs
``running`` (``extract_progress``)/
``converting``/``done``/``failed``
result zip: ``full.md``, ``layout.json``,      see :mod:`mockserver.documents.resultzip`
``<uuid>_content_list.json`` (tables,          (opendatalab/MinerU sources, three users'
``image_caption``), ``<uuid>_content_list_v2   zip listings)
.json``, ``<uuid>_model.json``,
``<uuid>_origin.<ext>``, ``images/<sha256>
.jpg``
``page_idx`` under ``page_ranges``: restarts   the open-source engine cuts the PDF first
at 0 (``page_idx: "restart"``) or keeps the    (mineru/cli/common.py); the cloud is
original's numbering (``"original"``)          undocumented, so both are served
presigned PUT, no Content-Type                 seed 002; Aliyun OSS V1 (``mockserver.oss``)
=============================================  ==========================================

Accounts: ``mock-mineru-token`` (``defaults.MINERU_TOKEN``) and a second account
``mock-mineru-token-2`` (:data:`SECOND_TOKEN`). Tasks belong to the token that created
them; the other account gets ``-60013``; ``mock-mineru-token-expired`` gets A0211.

When errors surface (the seed does not say; chosen to match the upload/URL split):

* URL tasks (``extract/task``): the mock fetches the URL at submission. Type (-60002),
  size (-60005), empty (-60004) and page count (-60006) are refused at once with their
  code; a URL that cannot be fetched (-60008) or a file that cannot be read (-60003)
  gives a task that ends ``failed`` with that message in ``err_msg``.
* Uploads and batch URL tasks: the request was accepted before the file was seen, so
  every per-file problem makes that file's task end ``failed`` with ``err_msg``.
* ``file-urls/batch`` refuses a name whose suffix is not supported with -60002, more
  than ``max_files`` files with -10002, more files than the day allows with -60018.

Settings (``POST /__admin/config {"mineru": {...}}``): the engine's (see
:mod:`mockserver.engine`) with :data:`~mockserver.mineru.api.SETTINGS`' values.
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
