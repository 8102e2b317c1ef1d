"""One service's tasks and batches (``mineru`` or ``docparse``) in one mock context."""

from __future__ import annotations

import fnmatch
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.context import MockContext
from ..core.limits import QuotaCounter, RateLimiter
from ..documents import docmodel
from ..documents.docmodel import DocError
from .callbacks import Callbacks
from .errors import ApiError
from .options import Options
from .tasks import RANK, Batch, Snapshot, Task, format_local, snapshot

#: Timings and limits (``/__admin/config``, per service); see the package docstring.
#: These are seed 001's (docparse); MinerU passes today's mineru.net values on top.
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
    "max_pages": docmodel.MAX_PAGES,
    "page_limit_counts": "file",
    "files_per_day": None,
    "submit_per_minute": 0,
    "query_per_minute": 0,
    "err_msg_language": "zh",
    "err_code": False,
    "err_code_blank_for": [],
    "param_errors": "envelope",
    "page_idx": "restart",
    "zip_layout": "cloud",
    "parse_dir": None,
    "fail_tasks": {},
    "callback_retry_seconds": [5, 10, 20, 40, 80],
    "callback_timeout": 10.0,
}

#: What a callback carries as its ``content`` for a task (the service's task-query view).
ContentView = Callable[[Task], dict[str, Any]]


class Engine:
    """Tasks and batches of one service (``mineru`` or ``docparse``) in one mock context.

    *callback_content* is what a callback's ``content`` holds for a task: by default
    MinerU's task-query ``data``; docparse passes its camelCase view.
    """

    def __init__(
        self,
        ctx: MockContext,
        service: str,
        *,
        uid: str,
        callback_content: ContentView | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.ctx = ctx
        self.service = service
        self.uid = uid
        self.settings: dict[str, Any] = ctx.declare_settings(
            service, dict(settings) if settings is not None else DEFAULT_SETTINGS
        )
        self.tasks: dict[str, Task] = {}
        self.batches: dict[str, Batch] = {}
        self.by_result: dict[str, str] = {}
        self.lock = threading.RLock()
        self._dir: Path | None = None
        #: Pages per owner and UTC day: beyond ``priority_pages_per_day`` tasks queue longer.
        self.priority = QuotaCounter(None, 86400, ctx.clock)
        #: Files per (owner, day in Beijing) (``files_per_day``, -60018).
        self.daily_files: dict[tuple[str, int], int] = {}
        #: Requests per owner: submissions and result queries (``*_per_minute``, HTTP 429).
        self.submit_limiter = RateLimiter(0, 0, ctx.clock)
        self.query_limiter = RateLimiter(0, 0, ctx.clock)
        self.uploads: dict[str, str] = {}  # OSS key -> task id
        self.callback_content: ContentView = callback_content or self.query_view
        self.callbacks = Callbacks(self)
        ctx.on_reset(self.reset)
        ctx.on_refresh(self.refresh)

    # ------------------------------------------------------------------ housekeeping

    def reset(self) -> None:
        self.callbacks.halt()
        with self.lock:
            self.tasks.clear()
            self.batches.clear()
            self.by_result.clear()
            self.uploads.clear()
            self._dir = None
            self.priority.clear()
            self.daily_files.clear()
            self.submit_limiter.clear()
            self.query_limiter.clear()
            self.callbacks.rearm()

    def now(self) -> float:
        return float(self.ctx.clock.now())

    def workdir(self) -> Path:
        with self.lock:
            if self._dir is None or not self._dir.exists():
                self._dir = self.ctx.new_dir(f"{self.service}-")
            return self._dir

    def tick(self, now: float | None = None) -> None:
        """Refresh ledger states and deliver due callbacks (also callable from tests)."""
        self.callbacks.tick(now)

    # ------------------------------------------------------------------ state

    def snapshot(self, task: Task, now: float | None = None) -> Snapshot:
        """The state of *task* at mock time *now* (default: the mock's now)."""
        now = self.now() if now is None else now
        with self.lock:
            return snapshot(task, now)

    def pending_count(self, now: float) -> int:
        with self.lock:
            return sum(1 for t in self.tasks.values() if self.snapshot(t, now).state == "pending")

    def setting(self, key: str, default: Any = None) -> Any:
        """A setting this service declared (``default`` for one it did not)."""
        return self.settings.get(key, default)

    def throttled(self, owner: str, kind: str) -> bool:
        """Over ``submit_per_minute`` / ``query_per_minute`` for *owner* (0: no limit)."""
        limiter = self.submit_limiter if kind == "submit" else self.query_limiter
        per_minute = float(self.setting(f"{kind}_per_minute") or 0)
        limiter.rate, limiter.burst = per_minute / 60.0, max(per_minute, 1.0)
        return limiter.take(owner) > 0

    def take_daily_files(self, owner: str, count: int) -> None:
        """Count *count* new files against ``files_per_day`` (per owner, the day renewing
        at midnight in Beijing); over it, the whole request is refused with -60018."""
        limit = self.setting("files_per_day")
        if limit is None:
            return
        day = int((self.now() + 8 * 3600) // 86400)  # days renew at 00:00 UTC+8
        with self.lock:
            used = self.daily_files.get((owner, day), 0)
            if used + count > int(limit):
                raise ApiError(-60018, self.message(-60018))
            self.daily_files[(owner, day)] = used + count

    def message(self, code: int) -> str:
        """*code*'s text in this service's ``err_msg_language``."""
        return docmodel.message(
            code,
            language=str(self.setting("err_msg_language") or "zh"),
            service=self.service,
            max_pages=int(self.setting("max_pages") or docmodel.MAX_PAGES),
        )

    def error_text(self, error: DocError) -> str:
        """A failed task's ``err_msg``: the mock's own message, else the code's text."""
        return error.custom or self.message(error.code)

    def forced_failure(self, file_name: str) -> DocError | None:
        """``fail_tasks`` (``{"<glob on the file name>": code}``): a task whose file matches
        fails with that code after its queue time, as the service's workers report it."""
        rules = self.setting("fail_tasks") or {}
        if not isinstance(rules, dict):
            return None
        for pattern, code in rules.items():
            if fnmatch.fnmatch(file_name, str(pattern)):
                try:
                    return DocError(int(code))
                except (TypeError, ValueError):
                    return None
        return None

    def check_queue(self, adding: int = 1) -> None:
        """Refuse new work with -60009 when the queue is full (``max_pending``)."""
        limit = self.settings.get("max_pending")
        if limit is not None and self.pending_count(self.now()) + adding > int(limit):
            raise ApiError(-60009)

    # ------------------------------------------------------------------ tasks and batches

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

    def drop(self, task: Task) -> None:
        """Forget a task refused at submission."""
        with self.lock:
            self.tasks.pop(task.id, None)
            self.by_result.pop(task.result_id, None)

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

    # ------------------------------------------------------------------ views

    def view(self, task: Task, base_url: str, now: float | None = None) -> dict[str, Any]:
        """The service-neutral view (snake_case): what MinerU's task query returns."""
        snap = self.snapshot(task, now)
        self.sync_ledger(task, snap.state)
        out: dict[str, Any] = {"task_id": task.id}
        if task.options.data_id is not None:
            out["data_id"] = task.options.data_id
        out["file_name"] = task.file_name
        out["state"] = snap.state
        if snap.state == "done":
            out["full_zip_url"] = self.zip_url(task, base_url)
        failed = snap.state == "failed" and task.error is not None
        out["err_msg"] = self.error_text(task.error) if failed and task.error else ""
        if self.setting("err_code"):
            # Read by every official SDK (MinerU-Ecosystem sdk/python client.py
            # _parse_task_result, sdk/go client.go); a real CLI log shows it filled for
            # -60006 and empty ("[]") for "retry limit reached" and "parsing failed".
            blank = set(self.setting("err_code_blank_for") or [])
            code = task.error.code if failed and task.error else None
            out["err_code"] = code if code is not None and code not in blank else ""
        if snap.state == "running":
            out["extract_progress"] = {
                "extracted_pages": snap.extracted_pages,
                "total_pages": snap.total_pages,
                "start_time": format_local(snap.start_time or 0.0),
            }
        return out

    def query_view(self, task: Task) -> dict[str, Any]:
        """MinerU's task-query ``data`` (the view without ``file_name``)."""
        view = self.view(task, task.base_url)
        view.pop("file_name", None)
        return view

    def zip_url(self, task: Task, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/__cdn/{self.service}/pdf/{task.result_id}.zip"

    def markdown_url(self, task: Task, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/__cdn/{self.service}/pdf/{task.result_id}.md"

    # ------------------------------------------------------------------ ledger

    def sync_ledger(self, task: Task, state: str) -> None:
        """Copy a computed state to ``/__admin/tasks``; only ever forward, so a poller
        that read the clock a moment earlier cannot overwrite a newer state."""
        with self.lock:
            if task.ready_at is None or RANK[state] <= RANK.get(task.ledger_state, -1):
                return
            task.ledger_state = state
            self.ctx.ledger.set_state(self.service, task.id, state)

    def refresh(self) -> None:
        """``ctx.on_refresh`` hook: bring every ledger entry up to the current time."""
        with self.lock:
            now = self.now()
            for task in list(self.tasks.values()):
                if task.ready_at is not None:
                    self.sync_ledger(task, self.snapshot(task, now).state)
