"""What the daemon is doing, read from the store — by the daemon itself (for the tray),
or by ``docinbox status`` from another process (:func:`report`).

Names are shown as people can read them (:func:`daemon.docfile.display_name`): a file
name that is not UTF-8 never reaches a terminal or a JSON document as raw bytes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import health, lock, redact
from .control import FOREVER, DocumentSummary, ServiceHealth, StatusSnapshot
from .docfile import display_name
from .settings import Settings
from .store import ACTIVE, TERMINAL, Job, State, Store

#: The user's pause (``docinbox pause``, the tray): Unix seconds, or FOREVER.
PAUSE_KEY = "paused_until"


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
    active = tuple(summary(j, outbox) for j in store.jobs(states=ACTIVE, limit=50))
    recent = tuple(
        summary(j, outbox)
        for j in store.jobs(states=TERMINAL, newest_first=True, limit=8, hide_dismissed=True)
    )
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
        j.service for j in store.jobs(states=(State.QUEUED,), limit=200) if j.error and j.service
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

    def as_json(self) -> dict[str, Any]:
        snap = self.snapshot
        return {
            "daemon": _daemon_json(self.holder),
            "counts": snap.counts if snap else {},
            "documents": [job_json(j, self.outbox) for j in self.jobs],
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
            lines.append(line)
        return "\n".join(lines)


def report(store: Store | None, settings: Settings, now: float) -> Report:
    outbox = settings.folders.outbox
    snap = None if store is None else build_snapshot(store, now, outbox=outbox)
    # failures the user dismissed on the review desk are left out (their files stay)
    jobs = [] if store is None else store.jobs(hide_dismissed=True)
    return Report(snap, jobs, lock.running(settings.folders.state), outbox)


def job_json(job: Job, outbox: Path) -> dict[str, Any]:
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
