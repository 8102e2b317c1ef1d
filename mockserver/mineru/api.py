"""MinerU v4: the handlers, their envelopes and the accounts (see the package docstring)."""

from __future__ import annotations

import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import defaults
from ..core.context import MockContext
from ..documents import docmodel
from ..engine import intake
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
from ..engine.engine import DEFAULT_SETTINGS, Engine
from ..engine.errors import ApiError
from ..engine.options import SNAKE_NAMES, Options, parse_options
from ..oss.buckets import StoredObject, for_context

SERVICE = "mineru"
SECOND_TOKEN = "mock-mineru-token-2"
EXPIRED_TOKEN = "mock-mineru-token-expired"
BUCKET = "mineru"

#: Wire names of the per-file options (seed 002 uses snake_case throughout).
NAMES = SNAKE_NAMES

#: mineru.net today (see the package docstring for each value's source), on top of the
#: engine's seed values; MinerU has no page balance (its quota is files per day).
SETTINGS: dict[str, Any] = {
    **{k: v for k, v in DEFAULT_SETTINGS.items() if k != "page_balance"},
    "max_files": 50,
    "max_pages": 200,
    "priority_pages_per_day": 1000,
    "files_per_day": 10_000,
    "submit_per_minute": 300,
    "query_per_minute": 1000,
    "err_msg_language": "en",
    "err_code": True,
    "err_code_blank_for": [-60010, -60017],
    "param_errors": "http400",
}
#: Business errors that are the request's fault: with ``param_errors: "http400"`` these
#: are HTTP 400 with ``msg`` an ``{"en", "zh"}`` object (opendatalab/MinerU#1826).
PARAM_CODES = (-500, -10002)


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "data": data, "msg": "ok", "trace_id": trace_id()})


def too_many() -> JSONResponse:
    """Over ``submit_per_minute`` / ``query_per_minute``: the limit page only says such
    requests "will be rejected"; the mock answers HTTP 429, the status MinerU documents
    for its Agent API ("超出限制将返回 HTTP 429 状态码"), without ``Retry-After`` (no
    evidence of rate-limit headers on /api/v4)."""
    return JSONResponse(
        {"code": 429, "data": None, "msg": "too many requests", "trace_id": trace_id()},
        status_code=429,
    )


def unauthorized(code: str, message: str) -> JSONResponse:
    """The real service's auth failure: HTTP 401 and ``msgCode`` (MinerU issue #5133)."""
    return JSONResponse(
        {"success": False, "msgCode": code, "msg": message, "data": None, "traceId": trace_id()},
        status_code=401,
    )


class MinerU:
    """The MinerU v4 routes over one :class:`Engine`."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.engine = Engine(ctx, SERVICE, uid=defaults.MOCK_UID, settings=SETTINGS)
        self.oss = for_context(ctx)
        self.bucket = self.oss.bucket(BUCKET)
        self.bucket.on_upload(self._uploaded)

    def _uploaded(self, stored: StoredObject) -> None:
        intake.on_upload(self.engine, stored.key, stored.path, stored.sha256)

    # ------------------------------------------------------------------ plumbing

    def owner(self, request: Request, kind: str = "query") -> str | JSONResponse:
        """The account behind the token (else its 401), within its request rate."""
        token = bearer(request.headers.get("authorization"))
        if token == EXPIRED_TOKEN:
            return unauthorized("A0211", "token expired")
        if token not in (defaults.MINERU_TOKEN, SECOND_TOKEN):
            return unauthorized("A0202", "user authenticate failed")
        if self.engine.throttled(token, kind):
            return too_many()
        return token

    def fail(self, error: ApiError) -> JSONResponse:
        """A business error: HTTP 200 with ``code`` and a ``msg`` string (seed 002), or for
        a parameter error with ``param_errors: "http400"``, HTTP 400 with ``msg`` as
        ``{"en", "zh"}`` and no ``trace_id`` (opendatalab/MinerU#1826)."""
        code = error.code
        zh = error.custom or (
            docmodel.message(code, service=SERVICE) if isinstance(code, int) else error.message
        )
        en = error.english or (
            docmodel.message(code, language="en", service=SERVICE)
            if isinstance(code, int)
            else error.message
        )
        if code in PARAM_CODES and self.engine.setting("param_errors") == "http400":
            return JSONResponse({"code": code, "msg": {"en": en, "zh": zh}}, status_code=400)
        english = self.engine.setting("err_msg_language") == "en"
        return JSONResponse(
            {"code": code, "data": None, "msg": en if english else zh, "trace_id": trace_id()}
        )

    def files(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        files = data.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise ApiError(-10002, "files 不能为空", "files must not be empty")
        if not files:
            raise ApiError(-10002, "files 不能为空", "files must not be empty")
        limit = int(self.engine.settings.get("max_files") or 50)
        if len(files) > limit:
            raise ApiError(
                -10002,
                f"单次申请链接不能超过 {limit} 个",
                f"the number of files in one request cannot exceed {limit}",
            )
        return files

    # ------------------------------------------------------------------ handlers

    async def create_task(self, request: Request) -> Response:
        owner = self.owner(request, "submit")
        if isinstance(owner, JSONResponse):
            return owner
        try:
            task = await submit_task(self.engine, request, owner, NAMES)
        except ApiError as exc:
            return self.fail(exc)
        return ok({"task_id": task.id})

    async def get_task(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        try:
            task = self.engine.get_task(request.path_params["task_id"], owner)
        except ApiError as exc:
            return self.fail(exc)
        view = self.engine.view(task, str(request.base_url))
        view.pop("file_name", None)
        return ok(view)

    async def file_urls(self, request: Request) -> Response:
        owner = self.owner(request, "submit")
        if isinstance(owner, JSONResponse):
            return owner
        try:
            data = await json_body(request)
            files = self.files(data)
            prepared: list[tuple[str, str, Options]] = []
            for entry in files:
                name = entry.get("name")
                if not isinstance(name, str) or not name.strip():
                    raise ApiError(-10002, "file.name 不能为空")
                try:
                    ext = docmodel.check_type(docmodel.extension(name))
                except docmodel.DocError as exc:
                    raise ApiError(exc.code) from exc
                prepared.append((name, ext, parse_options(entry, names=NAMES, top=data)))
            self.engine.check_queue(1)
            self.engine.take_daily_files(owner, len(prepared))
        except ApiError as exc:
            return self.fail(exc)
        base = str(request.base_url)
        day = datetime.datetime.fromtimestamp(self.engine.now(), datetime.timezone.utc)
        tasks, urls = [], []
        for name, ext, options in prepared:
            task = self.engine.new_task(owner, name, options, base)
            key = f"api-upload/extract/{day:%Y-%m-%d}/{task.id}.{ext}"
            with self.engine.lock:
                self.engine.uploads[key] = task.id
            urls.append(self.bucket.presign_put(base, key))
            tasks.append(task)
        batch = self.engine.new_batch(owner, tasks)
        return ok({"batch_id": batch.id, "file_urls": urls})

    async def url_batch(self, request: Request) -> Response:
        owner = self.owner(request, "submit")
        if isinstance(owner, JSONResponse):
            return owner
        try:
            data = await json_body(request)
            prepared = prepare_url_batch(self.engine, owner, data, self.files(data))
        except ApiError as exc:
            return self.fail(exc)
        return ok(
            {
                "batch_id": await submit_url_batch(
                    self.engine, owner, prepared, str(request.base_url)
                )
            }
        )

    async def batch_results(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        try:
            return ok(batch_results(self.engine, request, owner))
        except ApiError as exc:
            return self.fail(exc)

    async def download(self, request: Request) -> Response:
        return await serve_result(self.engine, request, "zip")
