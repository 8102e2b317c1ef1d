"""The HTTP side both MinerU-family APIs share: auth header, bodies, submissions, batch
results, result links and the task routes. Envelopes stay with each service.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Protocol

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from ..oss.errors import EC_EXPIRED, error_xml
from . import intake, results
from .engine import Engine
from .errors import ApiError
from .options import SNAKE_NAMES, Options, check_url, parse_options
from .tasks import Task


class TaskApi(Protocol):
    """The four task and batch handlers a MinerU-family service provides."""

    async def create_task(self, request: Request) -> Response: ...
    async def url_batch(self, request: Request) -> Response: ...
    async def get_task(self, request: Request) -> Response: ...
    async def batch_results(self, request: Request) -> Response: ...


def task_routes(api: str, service: TaskApi) -> list[BaseRoute]:
    """The task and batch routes MinerU v4 and docparse v1 share under *api*."""
    return [
        Route(f"{api}/extract/task", service.create_task, methods=["POST"]),
        Route(f"{api}/extract/task/batch", service.url_batch, methods=["POST"]),
        Route(f"{api}/extract/task/{{task_id}}", service.get_task, methods=["GET"]),
        Route(f"{api}/extract-results/batch/{{batch_id}}", service.batch_results, methods=["GET"]),
    ]


def trace_id() -> str:
    return uuid.uuid4().hex


def bearer(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when absent or malformed."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


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
    engine.take_daily_files(owner, 1)
    return await intake.submit_url(engine, owner, url, options, str(request.base_url), strict=True)


def prepare_url_batch(
    engine: Engine, owner: str, data: dict[str, Any], files: list[dict[str, Any]]
) -> list[tuple[str, Options]]:
    """A URL batch's checked URLs and (snake_case) options; the queue must hold them and
    the day's file allowance cover them."""
    prepared = [
        (check_url(f.get("url")), parse_options(f, names=SNAKE_NAMES, top=data)) for f in files
    ]
    engine.check_queue(len(prepared))
    engine.take_daily_files(owner, len(prepared))
    return prepared


async def submit_url_batch(
    engine: Engine, owner: str, prepared: list[tuple[str, Options]], base: str
) -> str:
    """Create the batch, then fetch its files concurrently (per-file errors → failed)."""
    tasks: list[Any] = [None] * len(prepared)

    async def one(i: int, url: str, options: Options) -> None:
        tasks[i] = await intake.submit_url(engine, owner, url, options, base, strict=False)

    async with anyio.create_task_group() as group:
        for i, (url, options) in enumerate(prepared):
            group.start_soon(one, i, url, options)
    return engine.new_batch(owner, tasks).id


def batch_results(engine: Engine, request: Request, owner: str) -> dict[str, Any]:
    """The ``data`` of ``GET .../extract-results/batch/{batch_id}`` (both APIs)."""
    batch_id = request.path_params["batch_id"]
    tasks = engine.get_batch(batch_id, owner)
    base = str(request.base_url)
    now = engine.now()
    entries = [batch_entry(engine.view(t, base, now)) for t in tasks]
    return {"batch_id": batch_id, "extract_result": entries}


def batch_entry(view: dict[str, Any]) -> dict[str, Any]:
    """A batch result entry: seed 002's ``extract_result[]`` fields, in its order."""
    out: dict[str, Any] = {
        "file_name": view["file_name"],
        "state": view["state"],
        "err_msg": view["err_msg"],
    }
    if "data_id" in view:
        out["data_id"] = view["data_id"]
    for key in ("err_code", "full_zip_url", "extract_progress"):
        if key in view:
            out[key] = view[key]
    return out


async def serve_result(engine: Engine, request: Request, kind: str) -> Response:
    """The result link: no auth; 404 NoSuchKey unknown, 403 "Request has expired." late."""
    task, problem = results.result_for(engine, request.path_params["result_id"])
    if problem == "expired":
        body = error_xml("AccessDenied", "Request has expired.", EC_EXPIRED)
        return Response(body, status_code=403, media_type="application/xml")
    if problem or task is None:
        body = error_xml("NoSuchKey", "The specified key does not exist.", "0026-00000001")
        return Response(body, status_code=404, media_type="application/xml")
    if kind == "md":
        text = await anyio.to_thread.run_sync(results.markdown, task)
        return Response(text, media_type="text/markdown; charset=utf-8")
    path = await anyio.to_thread.run_sync(results.build_zip, engine, task)
    return FileResponse(path, media_type="application/zip", filename=f"{task.result_id}.zip")
