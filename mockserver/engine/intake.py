"""How a file becomes a running task: fetched or uploaded, read, checked, put in the queue.

A failing file (unreadable, empty, too big, too many pages, over the page balance)
spends its queue time in ``pending`` and then shows ``failed`` with the error's message
in ``err_msg`` — the service only finds out once a worker picks it up. Only the
single-task URL endpoints (``strict``) refuse such a file at submission.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from ..documents import docmodel
from ..documents.docmodel import DocError, Document
from .errors import ApiError
from .fetch import fetch
from .options import Options
from .tasks import Task, file_name_of_url

if TYPE_CHECKING:
    from .engine import Engine


async def submit_url(
    engine: Engine, owner: str, url: str, options: Options, base_url: str, *, strict: bool
) -> Task:
    """Create a URL task: fetch now, then validate like the service does.

    *strict* (single-task endpoints): type, size, emptiness and page count are
    refused at submission with their code (ApiError); unreadable files and URLs
    that cannot be fetched become failed tasks. Not strict (batch endpoints): every
    per-file problem becomes a failed task, since the batch as a whole was accepted.
    """
    task = engine.new_task(owner, file_name_of_url(url), options, base_url)
    path = engine.workdir() / f"{task.id}.download"
    timeout = float(engine.settings.get("fetch_timeout") or 30.0)
    try:
        sha, ext = await fetch(url, path, timeout)
    except DocError as exc:
        if strict and exc.code == -60005:
            engine.drop(task)
            raise ApiError(exc.code) from exc
        fail_task(engine, task, exc)
        return task
    try:
        docmodel.check_type(ext)
        doc = await anyio.to_thread.run_sync(analyze, engine, path, ext, options.page_ranges)
    except DocError as exc:
        if strict and exc.code != -60003:
            engine.drop(task)
            path.unlink(missing_ok=True)
            raise ApiError(exc.code, exc.custom) from exc
        fail_task(engine, task, exc, path, sha)
        return task
    final = path.with_name(f"{task.id}_origin.{doc.kind}")
    path.replace(final)
    if not take_balance(engine, len(doc.pages)):
        if strict:
            engine.drop(task)
            final.unlink(missing_ok=True)
            raise ApiError(-60017)
        fail_task(engine, task, DocError(-60017), final, sha)
        return task
    start(engine, task, final, sha, doc, engine.forced_failure(task.file_name))
    return task


def analyze(engine: Engine, path: Path, ext: str, page_spec: str | None) -> docmodel.Document:
    """:func:`docmodel.analyze` with this service's page limit (``max_pages``), counted
    on the file or on the pages ``page_ranges`` selects (``page_limit_counts``)."""
    limit = int(engine.setting("max_pages") or docmodel.MAX_PAGES)
    selection = engine.setting("page_limit_counts", "file") == "selection"
    return docmodel.analyze(path, ext, page_spec, max_pages=limit, limit_selection=selection)


def on_upload(engine: Engine, key: str, path: Path, sha256: str) -> None:
    """OSS listener: the presigned PUT for *key* completed (a re-PUT restarts)."""
    with engine.lock:
        task_id = engine.uploads.get(key)
        task = engine.tasks.get(task_id) if task_id else None
    if task is None:
        return
    accept_file(engine, task, path, sha256, docmodel.extension(task.file_name))


def accept_file(engine: Engine, task: Task, path: Path, sha256: str, ext: str) -> None:
    """The file of *task* is here (uploaded): read it and start the clock.

    Errors do not raise: they become the task's failure (see the module doc).
    """
    error: DocError | None = None
    doc: Document | None = None
    try:
        doc = analyze(engine, path, ext, task.options.page_ranges)
    except DocError as exc:
        error = exc
    pages = len(doc.pages) if doc else 0
    if doc is not None and not take_balance(engine, pages):
        error, doc = DocError(-60017), None
    start(engine, task, path, sha256, doc, error or engine.forced_failure(task.file_name))


def fail_task(
    engine: Engine, task: Task, error: DocError, path: Path | None = None, sha256: str = ""
) -> None:
    start(engine, task, path, sha256, None, error)


def take_balance(engine: Engine, pages: int) -> bool:
    """Use *pages* of the account's page balance (``page_balance``; None: unlimited)."""
    with engine.lock:
        balance = engine.settings.get("page_balance")
        if balance is None:
            return True
        if pages > int(balance):
            return False
        engine.settings["page_balance"] = int(balance) - pages
        return True


def start(
    engine: Engine,
    task: Task,
    path: Path | None,
    sha256: str,
    doc: Document | None,
    error: DocError | None,
) -> None:
    """Start *task*'s clock now: queue, then (unless *error*) run and convert."""
    s = engine.settings
    now = engine.now()
    pages = len(doc.pages) if doc else 0
    queue = _queue_seconds(engine, task.owner, doc, pages)
    with engine.lock:
        task.origin, task.sha256, task.doc, task.error = path, sha256, doc, error
        task.pages = pages
        task.queue_seconds = queue
        task.run_seconds = pages * float(s["seconds_per_page"])
        task.convert_seconds = (
            float(s["converting_seconds"])
            if (task.options.extra_formats and doc is not None)
            else 0.0
        )
        task.ready_at = now
        task.zip_path = None
        task.callback_attempts, task.callback_next = 0, None
        task.callback_done = False
        _record(engine, task, now)
    engine.callbacks.ensure_running()


def _queue_seconds(engine: Engine, owner: str, doc: Document | None, pages: int) -> float:
    """``queue_seconds``, times ``low_priority_factor`` past the day's priority pages."""
    s = engine.settings
    queue = float(s["queue_seconds"])
    limit = s.get("priority_pages_per_day")
    if doc is not None and limit is not None:
        engine.priority.limit = int(limit)
        if not engine.priority.consume(owner, pages):
            queue *= float(s.get("low_priority_factor") or 1.0)
    return queue


def _record(engine: Engine, task: Task, now: float) -> None:
    """Enter the started task in ``/__admin/tasks`` (a re-upload updates its entry)."""
    ledger = engine.ctx.ledger
    state = engine.snapshot(task, now).state
    task.ledger_state = state
    if ledger.get(engine.service, task.id) is None:
        ledger.add(
            engine.service,
            task.id,
            task.file_name,
            task.sha256,
            state,
            pages=task.pages,
            batch_id=task.batch_id,
        )
    else:
        ledger.set_state(engine.service, task.id, state, sha256=task.sha256, pages=task.pages)
