"""What the desk's API says about documents and about the daemon, as JSON values.

Everything here reads the store (and, for one document, its result folder); nothing
writes.  Names are shown readably (:func:`daemon.docfile.display_name`) and messages
scrubbed of secrets again (:mod:`daemon.redact`), as ``docinbox status`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import redact, status
from ..control import StatusSnapshot
from ..docfile import display_name
from ..router import folder_matches
from ..settings import RetrySettings, Route, Settings
from ..status import job_json
from ..store import Job, State
from ..store.records import ResultRow, Review

#: The steps a document goes through, for the progress shown beside it.
STEPS = ("queued", "submitting", "submitted", "received", "done")


def folder_of(job: Job) -> str:
    rel = display_name(job.rel_path)
    return rel.rsplit("/", 1)[0] if "/" in rel else ""


def document(
    job: Job,
    outbox: Path,
    result: ResultRow | None,
    review: Review | None,
    dismissed: bool = False,
) -> dict[str, Any]:
    """One document in a list: at least ``id, name, state, service, review, result``."""
    out = job_json(job, outbox)
    out.pop("remote", None)  # the service's ids: the detail shows them
    out["folder"] = folder_of(job)
    out["review"] = dict(result.review) if result is not None else None
    out["approval"] = review.as_json() if review is not None else None
    out["finished_at"] = job.finished_at
    out["dismissed"] = dismissed
    out["progress"] = progress(job)
    return out


def progress(job: Job) -> dict[str, Any]:
    """How far along a document is: its step of :data:`STEPS`, and the service's own
    count of pages done when it reports one (MinerU's ``extract_progress``, kept by its
    last poll: :func:`daemon.status.progress`)."""
    state = str(job.state)
    step = STEPS.index(state) if state in STEPS else None
    out: dict[str, Any] = {"step": step, "steps": len(STEPS)}
    seen = status.progress(job)
    if seen is not None and seen.pages_done is not None and (seen.pages or job.pages):
        out["pages_done"], out["pages"] = seen.pages_done, seen.pages or job.pages
    return out


def detail(
    job: Job,
    settings: Settings,
    row: Mapping[str, Any],
    result: Mapping[str, Any] | None,
    markdown: str | None,
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """One document whole: the list's keys plus ``fields``, ``tables``, ``history``, the
    Markdown, where it came from and which route sent it where."""
    out = dict(row)
    out["fields"] = list((result or {}).get("fields") or [])
    out["tables"] = list((result or {}).get("tables") or [])
    out["markdown"] = markdown
    out["remote"] = dict((result or {}).get("remote") or {}) or dict(job.remote)
    out["history"] = [
        {
            "at": h.get("at"),
            "from": h.get("src"),
            "to": h.get("dst"),
            "note": redact.scrub(h.get("note") or "") or None,
        }
        for h in history
    ]
    out["route"] = explain_route(settings.routes, job)
    out["options"] = dict(job.options)
    return out


def explain_route(routes: Sequence[Route], job: Job) -> dict[str, Any] | None:
    """Which ``[[routes]]`` entry (as configured now) takes this document to its
    service, and why: each of its conditions with the document's own value."""
    rel = display_name(job.rel_path)
    for index, r in enumerate(routes):
        if r.service != job.service:
            continue
        why = _conditions(r, rel, job)
        if why is not None:
            return {"index": index, "service": r.service, "because": why}
    return None


def _conditions(r: Route, rel: str, job: Job) -> list[str] | None:
    """The route's conditions as met by the document, or None when one is not met."""
    why = []
    if r.folder is not None:
        if not folder_matches(r.folder, rel):
            return None
        why.append(f"folder {r.folder!r} matches {rel!r}")
    if r.max_pages is not None:
        if job.pages is None or job.pages > r.max_pages:
            return None
        why.append(f"{job.pages} page(s) ≤ max_pages {r.max_pages}")
    if r.max_bytes is not None:
        if job.size > r.max_bytes:
            return None
        why.append(f"{job.size} bytes ≤ max_bytes {r.max_bytes}")
    if r.types is not None:
        if job.kind not in r.types:
            return None
        why.append(f"type {job.kind} is one of {', '.join(r.types)}")
    return why or ["the route takes every document"]


def snapshot(
    snap: StatusSnapshot, *, under_review: int, retry: RetrySettings | None = None
) -> dict[str, Any]:
    """The daemon's status as the "Now" view shows it (a JSON value: no infinity), with
    the retry budget each document has (``[retry]``)."""
    paused = snap.paused_until
    budget = retry or RetrySettings()
    return {
        "budget": {"max_attempts": budget.max_attempts, "max_seconds": budget.max_seconds},
        "counts": dict(snap.counts),
        "pending": snap.pending,
        "failed": snap.failed,
        "under_review": under_review,
        "activity": snap.activity,
        "starting": snap.starting,
        "paused": paused is not None,
        "paused_until": None if paused is None or math.isinf(paused) else paused,
        "services": [
            {
                "name": s.name,
                "condition": s.condition,
                "reason": s.reason,
                "error": s.error,
                "until": s.until,
            }
            for s in snap.services
        ],
        "active": [
            {"id": d.id, "name": d.name, "state": d.state, "service": d.service}
            for d in snap.active
        ],
        "recent": [
            {"id": d.id, "name": d.name, "state": d.state, "service": d.service}
            for d in snap.recent
        ],
    }


def wanted(
    job: Job,
    *,
    state: str | None,
    service: str | None,
    folder: str | None,
    since: float | None,
) -> bool:
    """The list's filters (each None: any)."""
    if state and str(job.state) != state:
        return False
    if service and job.service != service:
        return False
    if folder and not folder_matches(folder, display_name(job.rel_path)):
        return False
    return not (since is not None and (job.finished_at or job.updated_at) < since)


__all__ = ["State", "detail", "document", "explain_route", "snapshot", "wanted"]
