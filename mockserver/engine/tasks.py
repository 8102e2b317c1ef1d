"""Tasks and batches, and the state a task is in at a given mock time.

A state is never stored: :func:`snapshot` derives it from the task's timestamps, so
concurrent polls agree and ``/__admin/clock/advance`` moves every task at once.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..documents.docmodel import DocError, Document
from .options import Options

TERMINAL = ("done", "failed")
#: Order of the states, so the ledger only ever moves forward.
RANK = {
    "waiting-file": 0,
    "pending": 1,
    "running": 2,
    "converting": 3,
    "done": 4,
    "failed": 4,
}
#: ``extract_progress.start_time`` is the service's local time (UTC+8).
BEIJING = 8 * 3600


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


def snapshot(task: Task, now: float) -> Snapshot:
    """The state of *task* at mock time *now* (pure: derived from timestamps)."""
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


def file_name_of_url(url: str) -> str:
    path = unquote(urlsplit(url).path)
    return path.rsplit("/", 1)[-1] or "file"


def format_local(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts + BEIJING))
