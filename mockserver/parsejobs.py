"""The parsing-task engine shared by the MinerU v4 and docparse v1 mocks.

Both services run the same lifecycle (seeds 001 and 002):
``waiting-file`` (upload batches only) → ``pending`` → ``running`` (with
``extract_progress``) → ``converting`` (only when ``extra_formats`` were asked for) →
``done`` | ``failed``.

State is never stored: it is computed from timestamps on the mock clock under a lock,
so concurrent polls always agree and ``/__admin/clock/advance`` moves every task at once.
Timings are settings (``/__admin/config``, per service):

``queue_seconds`` (3)        time in ``pending`` once the file is there
``seconds_per_page`` (1)     time in ``running`` per selected page
``converting_seconds`` (3)   time in ``converting`` when ``extra_formats`` were asked for
``zip_validity_seconds`` (7 days) how long a result link works after the task is done
``max_pending`` (1000)       more tasks than this in ``pending`` → ``-60009`` queue full
``page_balance`` (None)      pages the account may still parse (None: unlimited) → ``-60017``
``priority_pages_per_day`` (2000)  seed 002: pages beyond this per day lose priority: their
                              queue time is multiplied by ``low_priority_factor`` (4)
``fetch_timeout`` (30)       real seconds to fetch a URL before ``-60008``
``max_files`` (200)          files per batch request

A failing file (unreadable, empty, too big, too many pages, over the page balance)
spends its queue time in ``pending`` and then shows ``failed`` with the error's message
in ``err_msg`` — the service only finds out once a worker picks it up.

A background thread (one per service, started with the first task) keeps
``/__admin/tasks`` in step with the computed states and delivers callbacks
(seed 002: POST ``{"checksum": sha256(uid + seed + content), "content": <the task-query
data as a JSON string>}``, repeated up to 5 more times until a 200 arrives; retries
wait ``callback_retry_seconds`` of mock time).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import httpx

from mockserver.core.limits import QuotaCounter
from mockserver.documents import docmodel, pageranges, resultzip
from mockserver.documents.docmodel import DocError, Document

log = logging.getLogger("mockserver.parsejobs")

DEFAULT_SETTINGS: dict[str, Any] = {
    "queue_seconds": 3.0,
    "seconds_per_page": 1.0,
    "converting_seconds": 3.0,
    "zip_validity_seconds": 7 * 86400,
    "max_pending": 1000,
    "page_balance": None,
    "priority_pages_per_day": 2000,
    "low_priority_factor": 4.0,
    "fetch_timeout": 30.0,
    "max_files": 200,
    "callback_retry_seconds": [5, 10, 20, 40, 80],
    "callback_timeout": 10.0,
}
#: seed 002: a failed callback is pushed again at most 5 times.
CALLBACK_RETRIES = 5
TERMINAL = ("done", "failed")
DATA_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
SEED = re.compile(r"^[A-Za-z0-9_]{1,64}$")
MODEL_VERSIONS = ("pipeline", "vlm")
BEIJING = 8 * 3600
_RANK = {
    "waiting-file": 0,
    "pending": 1,
    "running": 2,
    "converting": 3,
    "done": 4,
    "failed": 4,
}  # extract_progress.start_time is the service's local time (UTC+8)


class ApiError(Exception):
    """A business error answered with the service's envelope and this code."""

    def __init__(self, code: int | str, message: str | None = None) -> None:
        default = docmodel.MESSAGES.get(code, "error") if isinstance(code, int) else "error"
        text = message or default
        super().__init__(text)
        self.code = code
        self.message = text


@dataclass
class Options:
    """What a submission asked for (already validated)."""

    is_ocr: bool = False
    enable_formula: bool = True
    enable_table: bool = True
    language: str = "ch"
    data_id: str | None = None
    page_ranges: str | None = None
    extra_formats: tuple[str, ...] = ()
    model_version: str = "pipeline"
    callback: str | None = None
    seed: str | None = None


@dataclass
class Task:
    id: str
    owner: str
    file_name: str
    options: Options
    created_at: float
    base_url: str
    batch_id: str | None = None
    result_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ready_at: float | None = None  # None: waiting for the upload
    origin: Path | None = None
    sha256: str = ""
    doc: Document | None = None
    error: DocError | None = None
    pages: int = 0
    queue_seconds: float = 0.0
    run_seconds: float = 0.0
    convert_seconds: float = 0.0
    zip_path: Path | None = None
    callback_attempts: int = 0
    callback_next: float | None = None
    callback_done: bool = False
    callback_inflight: bool = False  # one delivery at a time, whoever ticks
    ledger_state: str = ""

    def end_at(self) -> float | None:
        if self.ready_at is None:
            return None
        if self.error is not None:
            return self.ready_at + self.queue_seconds
        return self.ready_at + self.queue_seconds + self.run_seconds + self.convert_seconds


@dataclass
class Snapshot:
    """A task's state at one instant."""

    state: str
    extracted_pages: int = 0
    total_pages: int = 0
    start_time: float | None = None
    done_at: float | None = None


@dataclass
class Batch:
    id: str
    owner: str
    task_ids: list[str]


def file_name_of_url(url: str) -> str:
    path = unquote(urlsplit(url).path)
    return path.rsplit("/", 1)[-1] or "file"


def format_local(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts + BEIJING))


class Engine:
    """Tasks and batches of one service (``mineru`` or ``docparse``) in one mock context."""

    def __init__(self, ctx: Any, service: str, *, uid: str) -> None:
        self.ctx = ctx
        self.service = service
        self.uid = uid
        self.settings: dict[str, Any] = ctx.declare_settings(service, DEFAULT_SETTINGS)
        self.tasks: dict[str, Task] = {}
        self.batches: dict[str, Batch] = {}
        self.by_result: dict[str, str] = {}
        self.lock = threading.RLock()
        self._dir: Path | None = None
        self._priority = QuotaCounter(None, 86400, ctx.clock)
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self.uploads: dict[str, str] = {}  # OSS key -> task id
        ctx.on_reset(self.reset)
        if hasattr(ctx, "on_refresh"):
            ctx.on_refresh(self.refresh)

    # ------------------------------------------------------------------ housekeeping

    def reset(self) -> None:
        self._stop.set()
        self._wake.set()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(5)
        with self.lock:
            self.tasks.clear()
            self.batches.clear()
            self.by_result.clear()
            self.uploads.clear()
            self._dir = None
            self._priority.clear()
            self._ticker = None
            self._stop = threading.Event()

    def now(self) -> float:
        return float(self.ctx.clock.now())

    def workdir(self) -> Path:
        with self.lock:
            if self._dir is None or not self._dir.exists():
                self._dir = self.ctx.new_dir(f"{self.service}-")
            return self._dir

    # ------------------------------------------------------------------ state machine

    def snapshot(self, task: Task, now: float | None = None) -> Snapshot:
        """The state of *task* at mock time *now* (pure: derived from timestamps)."""
        now = self.now() if now is None else now
        with self.lock:
            if task.ready_at is None:
                return Snapshot("waiting-file")
            elapsed = now - task.ready_at
            if elapsed < task.queue_seconds:
                return Snapshot("pending")
            if task.error is not None:
                return Snapshot("failed", done_at=task.end_at())
            start = task.ready_at + task.queue_seconds
            running = elapsed - task.queue_seconds
            if running < task.run_seconds:
                per_page = task.run_seconds / max(task.pages, 1)
                done_pages = min(task.pages, int(running / per_page)) if per_page > 0 else 0
                return Snapshot("running", done_pages, task.pages, start)
            if running < task.run_seconds + task.convert_seconds:
                return Snapshot("converting", task.pages, task.pages, start)
            return Snapshot("done", task.pages, task.pages, start, task.end_at())

    def pending_count(self, now: float) -> int:
        with self.lock:
            return sum(1 for t in self.tasks.values() if self.snapshot(t, now).state == "pending")

    def check_queue(self, adding: int = 1) -> None:
        """Refuse new work with -60009 when the queue is full (``max_pending``)."""
        limit = self.settings.get("max_pending")
        if limit is not None and self.pending_count(self.now()) + adding > int(limit):
            raise ApiError(-60009)

    # ------------------------------------------------------------------ creating tasks

    def new_task(
        self,
        owner: str,
        file_name: str,
        options: Options,
        base_url: str,
        batch_id: str | None = None,
    ) -> Task:
        task = Task(str(uuid.uuid4()), owner, file_name, options, self.now(), base_url, batch_id)
        with self.lock:
            self.tasks[task.id] = task
            self.by_result[task.result_id] = task.id
        return task

    def new_batch(self, owner: str, tasks: list[Task]) -> Batch:
        batch = Batch(str(uuid.uuid4()), owner, [t.id for t in tasks])
        with self.lock:
            self.batches[batch.id] = batch
            for task in tasks:
                task.batch_id = batch.id
        return batch

    def accept_file(
        self, task: Task, path: Path, sha256: str, ext: str, *, check_balance: bool = True
    ) -> None:
        """The file of *task* is here (uploaded or fetched): read it and start the clock.

        Errors do not raise: they become the task's failure (see the module doc).
        """
        error: DocError | None = None
        doc: Document | None = None
        try:
            doc = docmodel.analyze(path, ext, task.options.page_ranges)
        except DocError as exc:
            error = exc
        pages = len(doc.pages) if doc else 0
        if doc is not None and check_balance and not self.take_balance(pages):
            error, doc = DocError(-60017), None
        self._start(task, path, sha256, doc, error)

    def fail_task(
        self, task: Task, error: DocError, path: Path | None = None, sha256: str = ""
    ) -> None:
        self._start(task, path, sha256, None, error)

    def _start(
        self,
        task: Task,
        path: Path | None,
        sha256: str,
        doc: Document | None,
        error: DocError | None,
    ) -> None:
        s = self.settings
        now = self.now()
        pages = len(doc.pages) if doc else 0
        queue = float(s["queue_seconds"])
        limit = s.get("priority_pages_per_day")
        if doc is not None and limit is not None:
            self._priority.limit = int(limit)
            if not self._priority.consume(task.owner, pages):
                queue *= float(s.get("low_priority_factor") or 1.0)
        with self.lock:
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
            state = self.snapshot(task, now).state
            task.ledger_state = state
            if self.ctx.ledger.get(self.service, task.id) is None:
                self.ctx.ledger.add(
                    self.service,
                    task.id,
                    task.file_name,
                    sha256,
                    state,
                    pages=pages,
                    batch_id=task.batch_id,
                )
            else:
                self.ctx.ledger.set_state(self.service, task.id, state, sha256=sha256, pages=pages)
        self.ensure_ticker()

    def take_balance(self, pages: int) -> bool:
        """Use *pages* of the account's page balance (``page_balance``; None: unlimited)."""
        with self.lock:
            balance = self.settings.get("page_balance")
            if balance is None:
                return True
            if pages > int(balance):
                return False
            self.settings["page_balance"] = int(balance) - pages
            return True

    # ------------------------------------------------------------------ fetching URLs

    async def fetch(self, url: str, task_id: str) -> tuple[Path, str, str]:
        """Download *url* (streamed to disk). Returns (path, sha256, extension).

        Raises DocError -60008 when it cannot be fetched, -60005 past 200 MB.
        The extension comes from the URL path, else from a Content-Disposition
        filename (seed 002: "请求的文件名及链接中带有正确的后缀名").
        """
        target = self.workdir() / f"{task_id}.download"
        sha = hashlib.sha256()
        size = 0
        timeout = float(self.settings.get("fetch_timeout") or 30.0)
        try:
            async with (
                httpx.AsyncClient(
                    follow_redirects=True, timeout=timeout, trust_env=False
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise DocError(-60008)
                disposition = response.headers.get("content-disposition", "")
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(1 << 16):
                        size += len(chunk)
                        if size > docmodel.MAX_BYTES:
                            raise DocError(-60005)
                        out.write(chunk)
                        sha.update(chunk)
        except DocError:
            target.unlink(missing_ok=True)
            raise
        except (httpx.HTTPError, OSError, ValueError) as exc:
            target.unlink(missing_ok=True)
            raise DocError(-60008) from exc
        ext = docmodel.extension(urlsplit(url).path)
        if ext not in docmodel.SUPPORTED:
            match = re.search(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', disposition, re.I)
            if match:
                ext = docmodel.extension(unquote(match.group(1)))
        return target, sha.hexdigest(), ext

    async def submit_url(
        self, owner: str, url: str, options: Options, base_url: str, *, strict: bool
    ) -> Task:
        """Create a URL task: fetch now, then validate like the service does.

        *strict* (single-task endpoints): type, size, emptiness and page count are
        refused at submission with their code (ApiError); unreadable files and URLs
        that cannot be fetched become failed tasks. Not strict (batch endpoints): every
        per-file problem becomes a failed task, since the batch as a whole was accepted.
        """
        task = self.new_task(owner, file_name_of_url(url), options, base_url)
        try:
            path, sha, ext = await self.fetch(url, task.id)
        except DocError as exc:
            if strict and exc.code == -60005:
                self._drop(task)
                raise ApiError(exc.code) from exc
            self.fail_task(task, exc)
            return task
        try:
            docmodel.check_type(ext)
            doc = await anyio.to_thread.run_sync(docmodel.analyze, path, ext, options.page_ranges)
        except DocError as exc:
            if strict and exc.code != -60003:
                self._drop(task)
                path.unlink(missing_ok=True)
                raise ApiError(exc.code, exc.message) from exc
            self.fail_task(task, exc, path, sha)
            return task
        final = path.with_name(f"{task.id}_origin.{doc.kind}")
        path.replace(final)
        if not self.take_balance(len(doc.pages)):
            if strict:
                self._drop(task)
                final.unlink(missing_ok=True)
                raise ApiError(-60017)
            self.fail_task(task, DocError(-60017), final, sha)
            return task
        self._start(task, final, sha, doc, None)
        return task

    def _drop(self, task: Task) -> None:
        with self.lock:
            self.tasks.pop(task.id, None)
            self.by_result.pop(task.result_id, None)

    # ------------------------------------------------------------------ uploads

    def on_upload(self, key: str, path: Path, sha256: str) -> None:
        """OSS listener: the presigned PUT for *key* completed (a re-PUT restarts)."""
        with self.lock:
            task_id = self.uploads.get(key)
            task = self.tasks.get(task_id) if task_id else None
        if task is None:
            return
        ext = docmodel.extension(task.file_name)
        self.accept_file(task, path, sha256, ext)

    # ------------------------------------------------------------------ queries

    def get_task(self, task_id: str, owner: str) -> Task:
        with self.lock:
            task = self.tasks.get(task_id)
        if task is None:
            raise ApiError(-60012)
        if task.owner != owner:
            raise ApiError(-60013)
        return task

    def get_batch(self, batch_id: str, owner: str) -> list[Task]:
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                raise ApiError(-60012)
            if batch.owner != owner:
                raise ApiError(-60013)
            return [self.tasks[t] for t in batch.task_ids if t in self.tasks]

    def view(self, task: Task, base_url: str, now: float | None = None) -> dict[str, Any]:
        """The service-neutral view (snake_case): what MinerU's task query returns."""
        snap = self.snapshot(task, now)
        self._sync_ledger(task, snap.state)
        out: dict[str, Any] = {"task_id": task.id}
        if task.options.data_id is not None:
            out["data_id"] = task.options.data_id
        out["file_name"] = task.file_name
        out["state"] = snap.state
        if snap.state == "done":
            out["full_zip_url"] = self.zip_url(task, base_url)
        out["err_msg"] = task.error.message if snap.state == "failed" and task.error else ""
        if snap.state == "running":
            out["extract_progress"] = {
                "extracted_pages": snap.extracted_pages,
                "total_pages": snap.total_pages,
                "start_time": format_local(snap.start_time or 0.0),
            }
        return out

    def zip_url(self, task: Task, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/__cdn/{self.service}/pdf/{task.result_id}.zip"

    def markdown_url(self, task: Task, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/__cdn/{self.service}/pdf/{task.result_id}.md"

    def _sync_ledger(self, task: Task, state: str) -> None:
        """Copy a computed state to ``/__admin/tasks``; only ever forward, so a poller
        that read the clock a moment earlier cannot overwrite a newer state."""
        with self.lock:
            if task.ready_at is None or _RANK[state] <= _RANK.get(task.ledger_state, -1):
                return
            task.ledger_state = state
            self.ctx.ledger.set_state(self.service, task.id, state)

    def refresh(self) -> None:
        """``ctx.on_refresh`` hook: bring every ledger entry up to the current time."""
        with self.lock:
            now = self.now()
            for task in list(self.tasks.values()):
                if task.ready_at is not None:
                    self._sync_ledger(task, self.snapshot(task, now).state)

    # ------------------------------------------------------------------ results

    def result_for(self, result_id: str) -> tuple[Task | None, str]:
        """The task behind a result link and why it cannot be served ('' when it can)."""
        with self.lock:
            task_id = self.by_result.get(result_id)
            task = self.tasks.get(task_id) if task_id else None
        if task is None:
            return None, "missing"
        snap = self.snapshot(task)
        if snap.state != "done":
            return task, "missing"
        validity = float(self.settings.get("zip_validity_seconds") or 0)
        if snap.done_at is not None and self.now() > snap.done_at + validity:
            return task, "expired"
        return task, ""

    def build_zip(self, task: Task) -> Path:
        """The result zip, built once on first download."""
        with self.lock:
            if task.zip_path is not None and task.zip_path.exists():
                return task.zip_path
            assert task.doc is not None and task.origin is not None
            out = self.workdir() / f"{task.result_id}.zip"
            backend = "vlm" if task.options.model_version == "vlm" else "pipeline"
            resultzip.build(
                out,
                task.id,
                task.origin,
                task.doc,
                extra_formats=task.options.extra_formats,
                backend=backend,
            )
            task.zip_path = out
            return out

    def markdown(self, task: Task) -> str:
        assert task.doc is not None and task.origin is not None
        image = (
            resultzip.image_name_for(task.origin, task.doc.kind)
            if task.doc.kind in ("png", "jpg")
            else None
        )
        return resultzip.markdown(task.doc, image)

    # ------------------------------------------------------------------ background

    def ensure_ticker(self) -> None:
        with self.lock:
            if self._ticker is not None and self._ticker.is_alive():
                self._wake.set()
                return
            stop = self._stop
            self._ticker = threading.Thread(
                target=self._tick_loop, args=(stop,), name=f"{self.service}-ticker", daemon=True
            )
            self._ticker.start()

    def _tick_loop(self, stop: threading.Event) -> None:
        while not stop.is_set() and not self.ctx.closing.is_set():
            try:
                self.tick()
            except Exception:  # keep ticking: one bad callback must not stop the rest
                log.exception("%s ticker", self.service)
            self._wake.wait(0.05)
            self._wake.clear()

    def tick(self, now: float | None = None) -> None:
        """Refresh ledger states and deliver due callbacks (also callable from tests)."""
        now = self.now() if now is None else now
        due: list[Task] = []
        with self.lock:
            for task in list(self.tasks.values()):
                if task.ready_at is None:
                    continue
                snap = self.snapshot(task, now)
                self._sync_ledger(task, snap.state)
                if (
                    snap.state in TERMINAL
                    and task.options.callback
                    and not task.callback_done
                    and not task.callback_inflight
                    and (task.callback_next is None or now >= task.callback_next)
                ):
                    task.callback_inflight = True
                    due.append(task)
        for task in due:
            self._deliver(task, now)

    def callback_payload(self, task: Task) -> dict[str, str]:
        """``{"checksum": sha256(uid + seed + content), "content": json}`` (seed 002)."""
        data = self.callback_content(task)
        content = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        checksum = hashlib.sha256(
            (self.uid + (task.options.seed or "") + content).encode()
        ).hexdigest()
        return {"checksum": checksum, "content": content}

    def callback_content(self, task: Task) -> dict[str, Any]:
        """What the task query's ``data`` would be (overridden per service)."""
        view = self.view(task, task.base_url)
        view.pop("file_name", None)
        return view

    def _deliver(self, task: Task, now: float) -> None:
        ok = False
        try:
            payload = self.callback_payload(task)
            timeout = float(self.settings.get("callback_timeout") or 10)
            with httpx.Client(timeout=timeout, trust_env=False) as client:  # no proxies
                response = client.post(str(task.options.callback), json=payload)
            ok = response.status_code == 200
        except Exception:  # any failure counts as a failed push, like a non-200
            log.debug("callback to %s failed", task.options.callback, exc_info=True)
        with self.lock:
            task.callback_inflight = False
            task.callback_attempts += 1
            if ok or task.callback_attempts > CALLBACK_RETRIES:
                task.callback_done = True
                task.callback_next = None
                return
            delays = list(self.settings.get("callback_retry_seconds") or [5])
            delay = float(delays[min(task.callback_attempts - 1, len(delays) - 1)])
            task.callback_next = now + delay


# ---------------------------------------------------------------------- validation


def parse_options(
    raw: dict[str, Any],
    *,
    names: dict[str, str],
    top: dict[str, Any] | None = None,
    bad_type: int = -500,
    bad_value: int = -10002,
) -> Options:
    """Validate one file's options. *names* maps Options fields to the wire names
    (``is_ocr`` or ``isOcr``); *top* holds request-level fields that apply to every file.

    Wrong JSON types → *bad_type* (-500, "传参错误"); malformed values → *bad_value*.
    """
    merged: dict[str, Any] = {}
    for fld, wire in names.items():
        if top is not None and wire in top:
            merged[fld] = top[wire]
        if wire in raw:
            merged[fld] = raw[wire]
    opts = Options()
    for fld in ("is_ocr", "enable_formula", "enable_table"):
        if fld in merged and merged[fld] is not None:
            if not isinstance(merged[fld], bool):
                raise ApiError(bad_type, f"{names[fld]} must be a boolean")
            setattr(opts, fld, merged[fld])
    for fld in ("language", "data_id", "page_ranges", "model_version", "callback", "seed"):
        value = merged.get(fld)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ApiError(bad_type, f"{names[fld]} must be a string")
        setattr(opts, fld, value)
    if opts.data_id is not None and not DATA_ID.match(opts.data_id):
        raise ApiError(
            bad_value,
            f"{names['data_id']} 只能由英文字母、数字、下划线、短划线、"
            "英文句号组成，不超过128个字符",
        )
    if opts.page_ranges is not None and opts.page_ranges != "":
        try:
            pageranges.validate(opts.page_ranges)
        except ValueError as exc:
            raise ApiError(bad_value, f"{names['page_ranges']} 格式错误: {exc}") from exc
    elif opts.page_ranges == "":
        opts.page_ranges = None
    if opts.model_version not in MODEL_VERSIONS:
        raise ApiError(bad_value, f"{names['model_version']} 只支持 pipeline、vlm")
    if opts.callback is not None:
        scheme = urlsplit(opts.callback).scheme
        if scheme not in ("http", "https"):
            raise ApiError(bad_value, f"{names['callback']} 必须是 http 或 https 地址")
        if not opts.seed:
            raise ApiError(bad_value, f"使用 {names['callback']} 时 {names['seed']} 必须提供")
    if opts.seed is not None and not SEED.match(opts.seed):
        raise ApiError(
            bad_value, f"{names['seed']} 只能由英文字母、数字、下划线组成，不超过64个字符"
        )
    formats = merged.get("extra_formats")
    if formats is not None:
        if not isinstance(formats, list) or not all(isinstance(f, str) for f in formats):
            raise ApiError(bad_type, f"{names['extra_formats']} must be a list of strings")
        if any(f not in resultzip.EXTRA_FORMATS for f in formats):
            raise ApiError(bad_value, f"{names['extra_formats']} 仅支持 docx、html、latex")
        opts.extra_formats = tuple(dict.fromkeys(formats))
    return opts


def check_url(url: Any, *, bad_type: int = -500, bad_value: int = -10002) -> str:
    if url is None:
        raise ApiError(bad_value, "url 不能为空")
    if not isinstance(url, str):
        raise ApiError(bad_type, "url must be a string")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ApiError(bad_value, "url 必须是 http 或 https 地址")
    return url


def bearer(header: str | None) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None when absent or malformed."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def cleanup(path: Path | None) -> None:
    if path is not None and path.exists():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


JsonHandler = Callable[..., Any]
