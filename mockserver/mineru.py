"""MinerU precise-parsing API v4 (seed 002), as the mock serves it.

Routes (paths as on mineru.net):

``POST /api/v4/extract/task``                      one task from a URL
``GET  /api/v4/extract/task/{task_id}``            its state / result
``POST /api/v4/file-urls/batch``                   presigned OSS PUT URLs (see ``oss.py``)
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

import datetime
import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mockserver import defaults, oss
from mockserver.documents import docmodel
from mockserver.parsejobs import (
    ApiError,
    Engine,
    Options,
    Task,
    bearer,
    check_url,
    parse_options,
)

SERVICE = "mineru"
SECOND_TOKEN = "mock-mineru-token-2"
EXPIRED_TOKEN = "mock-mineru-token-expired"
BUCKET = "mineru"

#: Wire names of the per-file options (seed 002 uses snake_case throughout).
NAMES = {
    "is_ocr": "is_ocr",
    "enable_formula": "enable_formula",
    "enable_table": "enable_table",
    "language": "language",
    "data_id": "data_id",
    "page_ranges": "page_ranges",
    "extra_formats": "extra_formats",
    "model_version": "model_version",
    "callback": "callback",
    "seed": "seed",
}


def trace_id() -> str:
    return uuid.uuid4().hex


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "data": data, "msg": "ok", "trace_id": trace_id()})


def fail(error: ApiError) -> JSONResponse:
    return JSONResponse(
        {"code": error.code, "data": None, "msg": error.message, "trace_id": trace_id()}
    )


def unauthorized(code: str, message: str) -> JSONResponse:
    """The real service's auth failure: HTTP 401 and ``msgCode`` (MinerU issue #5133)."""
    return JSONResponse(
        {"success": False, "msgCode": code, "msg": message, "data": None, "traceId": trace_id()},
        status_code=401,
    )


class MinerU:
    """The MinerU v4 routes over one :class:`Engine`."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.engine = Engine(ctx, SERVICE, uid=defaults.MOCK_UID)
        self.oss = oss.for_context(ctx)
        self.bucket = self.oss.bucket(BUCKET)
        self.bucket.on_upload(self._uploaded)

    def _uploaded(self, stored: oss.StoredObject) -> None:
        self.engine.on_upload(stored.key, stored.path, stored.sha256)

    # ------------------------------------------------------------------ plumbing

    def owner(self, request: Request) -> str | JSONResponse:
        token = bearer(request.headers.get("authorization"))
        if token == EXPIRED_TOKEN:
            return unauthorized("A0211", "token expired")
        if token not in (defaults.MINERU_TOKEN, SECOND_TOKEN):
            return unauthorized("A0202", "user authenticate failed")
        return token

    def files(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        files = data.get("files")
        if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
            raise ApiError(-10002, "files 不能为空")
        if not files:
            raise ApiError(-10002, "files 不能为空")
        limit = int(self.engine.settings.get("max_files") or 200)
        if len(files) > limit:
            raise ApiError(-10002, f"单次申请链接不能超过 {limit} 个")
        return files

    # ------------------------------------------------------------------ handlers

    async def create_task(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        try:
            task = await submit_task(self.engine, request, owner, NAMES)
        except ApiError as exc:
            return fail(exc)
        return ok({"task_id": task.id})

    async def get_task(self, request: Request) -> Response:
        owner = self.owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        try:
            task = self.engine.get_task(request.path_params["task_id"], owner)
        except ApiError as exc:
            return fail(exc)
        view = self.engine.view(task, str(request.base_url))
        view.pop("file_name", None)
        return ok(view)

    async def file_urls(self, request: Request) -> Response:
        owner = self.owner(request)
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
        except ApiError as exc:
            return fail(exc)
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
        owner = self.owner(request)
        if isinstance(owner, JSONResponse):
            return owner
        try:
            data = await json_body(request)
            prepared = prepare_url_batch(self.engine, data, self.files(data))
        except ApiError as exc:
            return fail(exc)
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
            return fail(exc)

    async def download(self, request: Request) -> Response:
        return await serve_result(self.engine, request, "zip")


async def json_body(request: Request) -> dict[str, Any]:
    """A request's JSON object; anything else is ``-500`` (both APIs)."""
    if "json" not in request.headers.get("content-type", "").lower():
        raise ApiError(-500)
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise ApiError(-500) from exc
    if not isinstance(data, dict):
        raise ApiError(-500)
    return data


async def submit_task(engine: Engine, request: Request, owner: str, names: dict[str, str]) -> Task:
    """One URL task from the request's body, its options under the API's wire *names*."""
    data = await json_body(request)
    url = check_url(data.get("url"))
    options = parse_options(data, names=names)
    engine.check_queue()
    return await engine.submit_url(owner, url, options, str(request.base_url), strict=True)


def prepare_url_batch(
    engine: Engine, data: dict[str, Any], files: list[dict[str, Any]]
) -> list[tuple[str, Options]]:
    """A URL batch's checked URLs and (snake_case) options; the queue must hold them."""
    prepared = [(check_url(f.get("url")), parse_options(f, names=NAMES, top=data)) for f in files]
    engine.check_queue(len(prepared))
    return prepared


def batch_results(engine: Engine, request: Request, owner: str) -> dict[str, Any]:
    """The ``data`` of ``GET .../extract-results/batch/{batch_id}`` (both APIs)."""
    batch_id = request.path_params["batch_id"]
    tasks = engine.get_batch(batch_id, owner)
    base = str(request.base_url)
    now = engine.now()
    results = [batch_entry(engine.view(t, base, now)) for t in tasks]
    return {"batch_id": batch_id, "extract_result": results}


def batch_entry(view: dict[str, Any]) -> dict[str, Any]:
    """A batch result entry: seed 002's ``extract_result[]`` fields, in its order."""
    out: dict[str, Any] = {
        "file_name": view["file_name"],
        "state": view["state"],
        "err_msg": view["err_msg"],
    }
    if "data_id" in view:
        out["data_id"] = view["data_id"]
    for key in ("full_zip_url", "extract_progress"):
        if key in view:
            out[key] = view[key]
    return out


async def submit_url_batch(
    engine: Engine, owner: str, prepared: list[tuple[str, Options]], base: str
) -> str:
    """Create the batch, then fetch its files concurrently (per-file errors → failed)."""
    import anyio

    tasks: list[Any] = [None] * len(prepared)

    async def one(i: int, url: str, options: Options) -> None:
        tasks[i] = await engine.submit_url(owner, url, options, base, strict=False)

    async with anyio.create_task_group() as group:
        for i, (url, options) in enumerate(prepared):
            group.start_soon(one, i, url, options)
    return engine.new_batch(owner, tasks).id


async def serve_result(engine: Engine, request: Request, kind: str) -> Response:
    """The result link: no auth; 404 NoSuchKey unknown, 403 "Request has expired." late."""
    task, problem = engine.result_for(request.path_params["result_id"])
    if problem == "expired":
        body = oss.error_xml("AccessDenied", "Request has expired.", oss.EC_EXPIRED)
        return Response(body, status_code=403, media_type="application/xml")
    if problem or task is None:
        body = oss.error_xml("NoSuchKey", "The specified key does not exist.", "0026-00000001")
        return Response(body, status_code=404, media_type="application/xml")
    if kind == "md":
        text = await _in_thread(engine.markdown, task)
        return Response(text, media_type="text/markdown; charset=utf-8")
    path = await _in_thread(engine.build_zip, task)
    return FileResponse(path, media_type="application/zip", filename=f"{task.result_id}.zip")


async def _in_thread(fn: Any, *args: Any) -> Any:
    import anyio

    return await anyio.to_thread.run_sync(fn, *args)


def task_routes(api: str, service: Any) -> list[BaseRoute]:
    """The task and batch routes MinerU v4 and docparse v1 share under *api*."""
    return [
        Route(f"{api}/extract/task", service.create_task, methods=["POST"]),
        Route(f"{api}/extract/task/batch", service.url_batch, methods=["POST"]),
        Route(f"{api}/extract/task/{{task_id}}", service.get_task, methods=["GET"]),
        Route(f"{api}/extract-results/batch/{{batch_id}}", service.batch_results, methods=["GET"]),
    ]


def routes(ctx: Any) -> list[BaseRoute]:
    """Mounted by ``mockserver.app.create_app``."""
    service = MinerU(ctx)
    ctx.state[SERVICE] = service  # for tests and tools: the engine behind the routes
    return [
        *task_routes("/api/v4", service),
        Route("/api/v4/file-urls/batch", service.file_urls, methods=["POST"]),
        Route("/__cdn/mineru/pdf/{result_id}.zip", service.download, methods=["GET"]),
    ]
