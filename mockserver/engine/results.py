"""A done task's results: the zip behind its link (built once) and its Markdown."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..documents import resultzip
from .tasks import Task

if TYPE_CHECKING:
    from .engine import Engine


def result_for(engine: Engine, result_id: str) -> tuple[Task | None, str]:
    """The task behind a result link and why it cannot be served ('' when it can):
    ``missing`` (unknown, or not done yet) or ``expired`` (``zip_validity_seconds``)."""
    with engine.lock:
        task_id = engine.by_result.get(result_id)
        task = engine.tasks.get(task_id) if task_id else None
    if task is None:
        return None, "missing"
    snap = engine.snapshot(task)
    if snap.state != "done":
        return task, "missing"
    validity = float(engine.settings.get("zip_validity_seconds") or 0)
    if snap.done_at is not None and engine.now() > snap.done_at + validity:
        return task, "expired"
    return task, ""


def build_zip(engine: Engine, task: Task) -> Path:
    """The result zip, built once on first download."""
    with engine.lock:
        if task.zip_path is not None and task.zip_path.exists():
            return task.zip_path
        assert task.doc is not None and task.origin is not None
        out = engine.workdir() / f"{task.result_id}.zip"
        backend = "vlm" if task.options.model_version == "vlm" else "pipeline"
        resultzip.build(
            out,
            task.id,
            task.origin,
            task.doc,
            extra_formats=task.options.extra_formats,
            backend=backend,
            numbering=str(engine.setting("page_idx") or "restart"),
            layout_name=str(engine.setting("zip_layout") or "cloud"),
            name=result_name(task.file_name),
            parse_dir=str(engine.setting("parse_dir") or parse_dir(task)),
        )
        task.zip_path = out
        return out


def result_name(file_name: str) -> str:
    """``<name>`` of a self-hosted result: the file's stem, made safe for a path."""
    stem = PurePosixPath(file_name.replace("\\", "/")).stem
    return re.sub(r"[^\w.\-]", "_", stem).strip(".") or "document"


def parse_dir(task: Task) -> str:
    """mineru-api's folder per backend (``mineru/cli/output_paths.py`` build_parse_dir):
    ``office`` for Office inputs, ``vlm``, else the pipeline's parse method ``auto``."""
    assert task.doc is not None
    if task.doc.kind in ("doc", "docx", "ppt", "pptx"):
        return "office"
    return "vlm" if task.options.model_version == "vlm" else "auto"


def markdown(task: Task) -> str:
    """``full.md`` of the result (docparse's ``markdownUrl``)."""
    assert task.doc is not None and task.origin is not None
    image = (
        resultzip.image_name_for(task.origin, task.doc.kind)
        if task.doc.kind in ("png", "jpg")
        else None
    )
    return resultzip.markdown(task.doc, image, task.id)
