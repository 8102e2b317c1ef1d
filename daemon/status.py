"""What the daemon is doing, read from the store — by the daemon itself (for the tray),
or by ``docinbox status`` from another process (:func:`report`).

Names are shown as people can read them (:func:`daemon.docfile.display_name`): a file
name that is not UTF-8 never reaches a terminal or a JSON document as raw bytes.

Documents are listed, never their parts: a document split into parts shows them as its
progress ("part 2 of 5, 140 of 600 pages", :func:`progress`)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import health, lock, redact
from .control import FOREVER, DocumentSummary, ServiceHealth, StatusSnapshot
from .docfile import display_name
from .settings import Settings
from .store import ACTIVE, TERMINAL, Job, State, Store

#: The user's pause (``docinbox pause``, the tray): Unix seconds, or FOREVER.
PAUSE_KEY = "paused_until"


@dataclass(frozen=True)
class Progress:
    """How far a document split into parts is."""

    parts: int
    received: int
    failed: int
    pages: int
    pages_done: int
    text: str


def progress(job: Job, parts: Sequence[Job]) -> Progress | None:
    """Parts received and pages parsed (received parts, and those a service reports
    under way); None for a document sent whole."""
    if not parts:
        return None
    done = [p for p in parts if p.state in (State.RECEIVED, State.DONE)]
    failed = sum(p.state is State.FAILED for p in parts)
    running = sum(
        min(int(p.remote.get("extracted_pages") or 0), p.page_count)
        for p in parts
        if p.state is State.SUBMITTED
    )
    pages = job.pages or sum(p.page_count for p in parts)
    pages_done = min(pages, sum(p.page_count for p in done) + running)
    n = len(parts)
    if job.state is State.SPLIT:
        current = next((p.part for p in parts if p.state not in (State.RECEIVED, State.DONE)), n)
        text = f"part {current} of {n}, {pages_done} of {pages} pages"
        if failed:
            text += f", {failed} part{'s' if failed != 1 else ''} failed"
    elif job.state is State.RECEIVED:
        text = f"{n} parts received, merging"
    elif failed:
        text = f"{failed} of {n} parts failed"
    else:
        text = f"{n} parts, {pages} pages"
    return Progress(n, len(done), failed, pages, pages_done, text)


def with_progress(item: DocumentSummary, p: Progress | None) -> DocumentSummary:
    if p is None:
        return item
    return replace(
        item,
        parts=p.parts,
        parts_received=p.received,
        parts_failed=p.failed,
        pages=p.pages,
        pages_done=p.pages_done,
        progress=p.text,
    )


def summaries(
    store: Store, jobs: Sequence[Job], outbox: Path | None
) -> tuple[DocumentSummary, ...]:
    """Each document's summary, a split one's with its parts' progress (one query)."""
    split = store.parts_of([j.id for j in jobs if j.parts])
    return tuple(with_progress(summary(j, outbox), progress(j, split.get(j.id, []))) for j in jobs)


def summary(job: Job, outbox: Path | None = None) -> DocumentSummary:
    failed = job.state is State.FAILED and job.location
    return DocumentSummary(
        id=job.id,
        name=display_name(job.rel_path),
        state=str(job.state),
        service=job.service,
        error=job.error,
        message=redact.scrub(job.message or "") or None,
        result_dir=(outbox / job.result_dir)
        if outbox and job.result_dir and job.state is State.DONE
        else None,
        updated_at=job.updated_at,
        error_file=Path(job.location + ".error.json") if failed else None,
    )


def paused_until(store: Store, now: float) -> float | None:
    """The user's pause, if it still holds."""
    until = store.meta(PAUSE_KEY)
    if until is None:
        return None
    until = float(until)
    return None if until != FOREVER and until <= now else until


def build_snapshot(
    store: Store, now: float, *, activity: str | None = None, outbox: Path | None = None
) -> StatusSnapshot:
    """What ``docinbox status`` and the tray show; works from any process."""
    counts = store.counts()
    active = summaries(store, store.jobs(states=ACTIVE, limit=50), outbox)
    recent = summaries(store, store.jobs(states=TERMINAL, newest_first=True, limit=8), outbox)
    services = []
    for name, h in sorted(health.records(store).items()):
        until = h.get("until")
        if until is not None and float(until) <= now and h.get("condition") != health.RETRYING:
            continue
        reason = h.get("reason")
        services.append(
            ServiceHealth(
                name=name,
                condition=h.get("condition", health.PAUSED),
                reason=redact.scrub(reason) if reason else None,
                error=h.get("error"),
                until=until,
            )
        )
    retrying = {
        j.service
        for j in store.jobs(states=(State.QUEUED,), limit=200, parts=True)
        if j.error and j.service
    }
    for name in sorted(retrying - {s.name for s in services}):
        services.append(ServiceHealth(name=name, condition="retrying"))
    return StatusSnapshot(
        counts=counts,
        active=active,
        recent=recent,
        services=tuple(services),
        paused_until=paused_until(store, now),
        activity=activity,
    )


@dataclass(frozen=True)
class Report:
    """``docinbox status``: the snapshot, every document, and whether a daemon runs."""

    snapshot: StatusSnapshot | None
    jobs: list[Job]
    holder: lock.Holder | None
    outbox: Path
    #: The parts of each document split into parts.
    parts: Mapping[int, list[Job]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "daemon": _daemon_json(self.holder),
            "counts": snap.counts if snap else {},
            "documents": [job_json(j, self.outbox, self.parts.get(j.id)) for j in self.jobs],
            "services": [s.__dict__ for s in snap.services] if snap else [],
            "paused_until": snap.paused_until if snap else None,
        }

    def as_text(self, *, limit: int) -> str:
        snap = self.snapshot
        counts = snap.counts if snap else {}
        total = sum(counts.values())
        parts = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        lines = [
            f"docinbox: {total} document{'s' if total != 1 else ''}"
            + (f" — {parts}" if parts else ""),
            f"  {_daemon_line(self.holder)}",
        ]
        if snap and snap.paused_until is not None:
            lines.append(
                "  paused"
                + (
                    ""
                    if snap.paused_until == FOREVER
                    else f" until {time.strftime('%H:%M', time.localtime(snap.paused_until))}"
                )
            )
        for s in snap.services if snap else ():
            lines.append(f"  {s.name}: {s.condition}" + (f" — {s.reason}" if s.reason else ""))
        for job in self.jobs[len(self.jobs) - limit :] if limit else ():
            line = f"  #{job.id:<5} {job.state!s:<10} {display_name(job.rel_path)}"
            if job.result_dir and job.state is State.DONE:
                line += f" → {self.outbox / job.result_dir}"
            elif job.error:
                line += f"  ({job.error}: {redact.scrub(job.message or '')})"
            split = progress(job, self.parts.get(job.id, []))
            if split is not None and job.state is not State.DONE:
                line += f"  [{split.text}]"
            lines.append(line)
        return "\n".join(lines)


def report(store: Store | None, settings: Settings, now: float) -> Report:
    outbox = settings.folders.outbox
    snap = None if store is None else build_snapshot(store, now, outbox=outbox)
    jobs = [] if store is None else store.jobs()
    parts = {} if store is None else store.parts_of([j.id for j in jobs if j.parts])
    return Report(snap, jobs, lock.running(settings.folders.state), outbox, parts)


def job_json(job: Job, outbox: Path, parts: Sequence[Job] | None = None) -> dict[str, Any]:
    out = _document_json(job, outbox)
    split = progress(job, parts or [])
    if split is not None and parts:
        out["progress"] = split.text
        out["parts"] = [_part_json(p) for p in parts]
    return out


def _part_json(part: Job) -> dict[str, Any]:
    return {
        "part": part.part,
        "pages": [part.first_page, part.last_page],
        "state": str(part.state),
        "attempts": part.attempts,
        "error": part.error,
        "message": redact.scrub(part.message or "") or None,
        "remote": dict(part.remote),
    }


def _document_json(job: Job, outbox: Path) -> dict[str, Any]:
    return {
        "id": job.id,
        "name": display_name(job.name),
        "path": display_name(job.rel_path),
        "state": str(job.state),
        "service": job.service,
        "sha256": job.sha256,
        "bytes": job.size,
        "pages": job.pages,
        "type": job.kind,
        "attempts": job.attempts,
        # What a service said is scrubbed again on the way out: a database written before
        # a key was known (or changed) may still hold it.
        "error": job.error,
        "message": redact.scrub(job.message or "") or None,
        "hint": redact.scrub(job.hint or "") or None,
        "remote": dict(job.remote),
        "result": str(outbox / job.result_dir)
        if job.result_dir and job.state is State.DONE
        else None,
        "location": display_name(job.location) if job.location else None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def _daemon_json(holder: lock.Holder | None) -> dict[str, object]:
    if holder is None:
        return {"running": False}
    return {
        "running": True,
        "pid": holder.pid or None,
        "config": holder.config or None,
        "since": holder.since or None,
    }


def _daemon_line(holder: lock.Holder | None) -> str:
    if holder is None:
        return "no daemon is running (start one with: docinbox run)"
    line = "daemon running"
    if holder.pid:
        line += f" (process {holder.pid}"
        if holder.since:
            line += f", since {time.strftime('%Y-%m-%d %H:%M', time.localtime(holder.since))}"
        line += ")"
    if holder.config:
        line += f" with {holder.config}"
    return line
