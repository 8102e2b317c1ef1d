"""One service's tasks and batches (``mineru`` or ``docparse``) in one mock context."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.context import MockContext
from ..core.limits import QuotaCounter
from .callbacks import Callbacks
from .errors import ApiError
from .options import Options
from .tasks import RANK, Batch, Snapshot, Task, format_local, snapshot

#: Timings and limits (``/__admin/config``, per service); see the package docstring.
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
    ) -> None:
        self.ctx = ctx
        self.service = service
        self.uid = uid
        self.settings: dict[str, Any] = ctx.declare_settings(service, DEFAULT_SETTINGS)
        self.tasks: dict[str, Task] = {}
        self.batches: dict[str, Batch] = {}
        self.by_result: dict[str, str] = {}
        self.lock = threading.RLock()
        self._dir: Path | None = None
        #: Pages per owner and UTC day: beyond ``priority_pages_per_day`` tasks queue longer.
        self.priority = QuotaCounter(None, 86400, ctx.clock)
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
        out["err_msg"] = task.error.message if snap.state == "failed" and task.error else ""
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
