"""docparse v1: the handlers, their two envelopes and the accounts (see the package docstring)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import defaults
from ..core.context import MockContext
from ..engine.api import (
    batch_results,
    bearer,
    json_body,
    prepare_url_batch,
    serve_result,
    submit_task,
    submit_url_batch,
    trace_id,
)
from ..engine.engine import Engine
from ..engine.errors import ApiError
from ..engine.tasks import Task

SERVICE = "docparse"
SECOND_TOKEN = "mock-docparse-token-2"
EXPIRED_TOKEN = "mock-docparse-token-expired"

CAMEL_NAMES = {
    "is_ocr": "isOcr",
    "enable_formula": "enableFormula",
    "enable_table": "enableTable",
    "language": "language",
    "data_id": "dataId",
    "page_ranges": "pageRanges",
    "extra_formats": "extraFormats",
    "model_version": "modelVersion",
    "callback": "callback",
    "seed": "seed",
}
TOKEN_MESSAGES = {-20002: "Token 错误", -20011: "Token 过期"}


def single(code: int, message: str, data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"code": code, "message": message, "data": data, "timestamp": int(time.time() * 1000)},
        status_code=status,
    )


def batch(code: int, msg: str, data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(
        {"code": code, "data": data, "msg": msg, "trace_id": trace_id()}, status_code=status
    )


class DocParse:
    """The docparse v1 routes over one :class:`Engine`."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.engine = Engine(ctx, SERVICE, uid=defaults.MOCK_UID, callback_content=self.camel_view)

    def camel_view(self, task: Task, base_url: str | None = None) -> dict[str, Any]:
        """The single-task query's ``data`` (also a callback's ``content``)."""
        base = base_url or task.base_url
        view = self.engine.view(task, base)
        out: dict[str, Any] = {"taskId": task.id, "state": view["state"]}
        if view["state"] == "done":
            out["fullZipUrl"] = view["full_zip_url"]
            out["markdownUrl"] = self.engine.markdown_url(task, base)
        out["errMsg"] = view["err_msg"]
        if "err_code" in view:
            out["errCode"] = view["err_code"]
        return out

    def text(self, exc: ApiError) -> str:
        """An error's message in this service's ``err_msg_language``."""
        if exc.custom or not isinstance(exc.code, int):
            return exc.message
        return self.engine.message(exc.code)

    def owner(self, request: Request) -> str | int:
        token = bearer(request.headers.get("authorization"))
        if token == EXPIRED_TOKEN:
            return -20011
        if token not in (defaults.DOCPARSE_TOKEN, SECOND_TOKEN):
            return -20002
        return token

    async def create_task(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, int):
            return single(owner, TOKEN_MESSAGES[owner], None, 401)
        try:
            task = await submit_task(self.engine, request, owner, CAMEL_NAMES)
        except ApiError as exc:
            return single(int(exc.code), self.text(exc), None)
        return single(0, "ok", {"taskId": task.id})

    async def get_task(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, int):
            return single(owner, TOKEN_MESSAGES[owner], None, 401)
        try:
            task = self.engine.get_task(request.path_params["task_id"], owner)
        except ApiError as exc:
            return single(int(exc.code), self.text(exc), None)
        return single(0, "ok", self.camel_view(task, str(request.base_url)))

    async def url_batch(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, int):
            return batch(owner, TOKEN_MESSAGES[owner], None, 401)
        try:
            data = await json_body(request)
            files = data.get("files")
            if not isinstance(files, list) or not files:
                raise ApiError(-10002, "files 不能为空")
            if not all(isinstance(f, dict) for f in files):
                raise ApiError(-500)
            limit = int(self.engine.settings.get("max_files") or 200)
            if len(files) > limit:
                raise ApiError(-10002, f"单次请求最多 {limit} 个文件")
            prepared = prepare_url_batch(self.engine, owner, data, files)
        except ApiError as exc:
            return batch(int(exc.code), self.text(exc), None)
        batch_id = await submit_url_batch(self.engine, owner, prepared, str(request.base_url))
        return batch(0, "ok", {"batch_id": batch_id})

    async def batch_results(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, int):
            return batch(owner, TOKEN_MESSAGES[owner], None, 401)
        try:
            return batch(0, "ok", batch_results(self.engine, request, owner))
        except ApiError as exc:
            return batch(int(exc.code), self.text(exc), None)

    async def download_zip(self, request: Request) -> Response:
        return await serve_result(self.engine, request, "zip")

    async def download_md(self, request: Request) -> Response:
        return await serve_result(self.engine, request, "md")
