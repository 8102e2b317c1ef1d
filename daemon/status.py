"""What the daemon is doing, read from the store — by the daemon itself (for the tray),
or by ``docinbox status`` from another process (:func:`report`).

Names are shown as people can read them (:func:`daemon.docfile.display_name`): a file
name that is not UTF-8 never reaches a terminal or a JSON document as raw bytes.

Documents are listed, never their parts: a document split into parts shows them as its
progress ("part 2 of 5, 140 of 600 pages", :func:`parts_progress`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import budgets, health, lock, redact
from .control import (
    FOREVER,
    BudgetUse,
    DocumentSummary,
    LaneUse,
    Pace,
    Progress,
    ServiceHealth,
    StatusSnapshot,
)
from .docfile import display_name
from .settings import Settings
from .store import ACTIVE, TERMINAL, Job, State, Store

#: The user's pause (``docinbox pause``, the tray): Unix seconds, or FOREVER.
PAUSE_KEY = "paused_until"


@dataclass(frozen=True)
class PartsProgress:
    """How far a document split into parts is."""

    parts: int
    received: int
    failed: int
    pages: int
    pages_done: int
    text: str


def parts_progress(job: Job, parts: Sequence[Job]) -> PartsProgress | None:
    """Parts received and pages parsed (received parts, and those a service reports
    under way); None for a document sent whole."""
    if not parts:
        return None
    done = [p for p in parts if p.state in (State.RECEIVED, State.DONE)]
    failed = sum(p.state is State.FAILED for p in parts)
    running = sum(
        min((seen.pages_done or 0) if (seen := progress(p)) else 0, p.page_count) for p in parts
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
    return PartsProgress(n, len(done), failed, pages, pages_done, text)


def with_progress(item: DocumentSummary, p: PartsProgress | None) -> DocumentSummary:
    if p is None:
        return item
    return replace(
        item,
        parts=p.parts,
        parts_received=p.received,
        parts_failed=p.failed,
        pages=p.pages,
        pages_done=p.pages_done,
        parts_text=p.text,
    )


def summaries(
    store: Store, jobs: Sequence[Job], outbox: Path | None
) -> tuple[DocumentSummary, ...]:
    """Each document's summary, a split one's with its parts' progress (one query)."""
    split = store.parts_of([j.id for j in jobs if j.parts])
    return tuple(
        with_progress(summary(j, outbox), parts_progress(j, split.get(j.id, []))) for j in jobs
    )


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
        progress=progress(job),
    )


def progress(job: Job) -> Progress | None:
    """How far the service is with a submitted document, as its last poll said."""
    seen = job.remote.get("service_state")
    if job.state is not State.SUBMITTED or not isinstance(seen, Mapping):
        return None
    done, pages = seen.get("pages_done"), seen.get("pages")
    since = job.remote.get("submitted_at") or job.remote.get("url_issued_at")
    return Progress(
        state=str(seen.get("state") or ""),
        pages_done=done if isinstance(done, int) else None,
        pages=pages if isinstance(pages, int) else None,
        since=float(since) if isinstance(since, int | float) else None,
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
    recent = summaries(
        store, store.jobs(states=TERMINAL, newest_first=True, limit=8, hide_dismissed=True), outbox
    )
    return StatusSnapshot(
        counts=counts,
        active=active,
        recent=recent,
        services=services_of(store, now),
        paused_until=paused_until(store, now),
        activity=activity,
    )


def services_of(store: Store, now: float) -> tuple[ServiceHealth, ...]:
    """Every service the store knows something of: its pause or outage, its budgets
    (use against limit, renewal), its pace."""
    found = _health(store, now)
    uses: dict[str, list[BudgetUse]] = {}
    for row in budgets.rows(store, now):
        fields = {k: v for k, v in row.items() if k != "service"}
        uses.setdefault(row["service"], []).append(BudgetUse(**fields))
    paces = {
        name: _pace(v.get("view"))
        for name, v in store.meta_prefixed("pacer:").items()
        if isinstance(v, dict)
    }
    out = []
    for name in sorted(set(found) | set(uses) | set(paces)):
        own = tuple(uses.get(name, ()))
        base = found.get(name) or _closed(name, own) or ServiceHealth(name=name)
        out.append(dataclasses.replace(base, budgets=own, pace=paces.get(name)))
    return tuple(out)


def _health(store: Store, now: float) -> dict[str, ServiceHealth]:
    """Paused and unreachable services (daemon/health.py), and those whose documents
    wait to be tried again."""
    found: dict[str, ServiceHealth] = {}
    for name, h in sorted(health.records(store).items()):
        until = h.get("until")
        if until is not None and float(until) <= now and h.get("condition") != health.RETRYING:
            continue
        reason = h.get("reason")
        found[name] = ServiceHealth(
            name=name,
            condition=h.get("condition", health.PAUSED),
            reason=redact.scrub(reason) if reason else None,
            error=h.get("error"),
            until=until,
        )
    # one query, no rows decoded: this runs at every status publish, 10 % of the daemon's
    # time in a burst when it decoded 200 queued jobs (py-spy, bench profile)
    for name in sorted(store.retrying_services() - set(found)):
        found[name] = ServiceHealth(name=name, condition="retrying")
    return found


def _closed(name: str, uses: tuple[BudgetUse, ...]) -> ServiceHealth | None:
    """A service whose allowance is used up waits (its policy permitting) until renewal."""
    for use in uses:
        if not use.out or (use.soft and use.policy == "low_priority"):
            continue
        until = use.spent_until or use.renews_at
        limit = f" of {use.limit:,}" if use.limit else ""
        goes = "its documents take the next route" if use.policy == "next_route" else "waits"
        return ServiceHealth(
            name=name,
            condition="paused",
            reason=f"{use.used:,.0f}{limit} {use.label} used; {goes} until it renews",
            error="quota",
            until=until,
        )
    return None


def _pace(view: Any) -> Pace | None:
    if not isinstance(view, dict):
        return None
    found = view.get("lanes")
    lanes: dict[str, Any] = found if isinstance(found, dict) else {}
    rates = [v["rate"] for v in lanes.values() if isinstance(v, dict) and v.get("rate")]
    holds = [v["held_until"] for v in lanes.values() if isinstance(v, dict) and v.get("held_until")]
    return Pace(
        rate=min(rates) if rates else None,
        held_until=max(holds) if holds else None,
        concurrency=int(view.get("concurrency") or 0),
        in_flight=int(view.get("in_flight") or 0),
        refusals=sum(int(v.get("refusals") or 0) for v in lanes.values() if isinstance(v, dict)),
        lanes=tuple(
            LaneUse(name, int(v["used"]), int(v["limit"]), float(v.get("per") or 60))
            for name, v in lanes.items()
            if isinstance(v, dict) and v.get("limit")
        ),
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
            "services": [dataclasses.asdict(s) for s in snap.services] if snap else [],
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
            lines += service_lines(s)
        for job in self.jobs[len(self.jobs) - limit :] if limit else ():
            line = f"  #{job.id:<5} {job.state!s:<10} {display_name(job.rel_path)}"
            seen = progress(job)
            if job.result_dir and job.state is State.DONE:
                line += f" → {self.outbox / job.result_dir}"
            elif seen is not None and seen.state:
                line += f"  ({job.service}: {progress_text(seen)})"
            elif job.error:
                line += f"  ({job.error}: {redact.scrub(job.message or '')})"
            split = parts_progress(job, self.parts.get(job.id, []))
            if split is not None and job.state is not State.DONE:
                line += f"  [{split.text}]"
            lines.append(line)
        return "\n".join(lines)


def report(store: Store | None, settings: Settings, now: float) -> Report:
    outbox = settings.folders.outbox
    snap = None if store is None else build_snapshot(store, now, outbox=outbox)
    # failures the user dismissed on the review desk are left out (their files stay)
    jobs = [] if store is None else store.jobs(hide_dismissed=True)
    parts = {} if store is None else store.parts_of([j.id for j in jobs if j.parts])
    return Report(snap, jobs, lock.running(settings.folders.state), outbox, parts)


def job_json(job: Job, outbox: Path, parts: Sequence[Job] | None = None) -> dict[str, Any]:
    out = _document_json(job, outbox)
    split = parts_progress(job, parts or [])
    if split is not None and parts:
        out["parts_progress"] = split.text
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
        "progress": dataclasses.asdict(seen) if (seen := progress(job)) else None,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def service_lines(s: ServiceHealth) -> list[str]:
    """A service in ``docinbox status``: its condition, its pace, each allowance."""
    head = f"  {s.name}: {s.condition}" + (f" — {s.reason}" if s.reason else "")
    if s.until is not None and s.condition == "paused":
        head += f" (until {_when(s.until)})"
    lines = [head]
    pace = s.pace
    if pace is not None:
        said = (
            f"{pace.rate:.3g} requests/s, the most it sustains"
            if pace.rate
            else "no request limit met"
        )
        if pace.refusals:
            said += f" ({pace.refusals} answered 429)"
        if pace.held_until:
            said += f"; it asked to wait until {_when(pace.held_until)}"
        said += f"; {pace.in_flight} under way, up to {pace.concurrency} at once"
        lines.append(f"    pace: {said}")
        for lane in pace.lanes:
            per = "a minute" if lane.per == 60 else f"per {lane.per:g} s"
            lines.append(f"    {lane.name} requests: {lane.used:,} of {lane.limit:,} {per}")
    for use in s.budgets:
        lines.append(f"    {budget_text(use)}")
    return lines


def budget_text(use: BudgetUse) -> str:
    """``files a day: 120 of 10,000 files, renews 2026-11-22 00:00`` (local time)."""
    if use.limit:
        text = f"{use.label}: {use.used:,.0f} of {use.limit:,} {use.unit}"
    else:
        unit = use.unit[:-1] if round(use.used) == 1 and use.unit.endswith("s") else use.unit
        text = f"{use.label}: {use.used:,.0f} {unit} (no limit set)"
    if use.spent_until is not None:
        text += f" — used up, says the service, until {_when(use.spent_until)}"
    elif use.renews_at is not None:
        text += f", renews {_when(use.renews_at)}"
    if use.soft:
        text += " (past it: lower priority)"
    return text


def progress_text(p: Progress) -> str:
    if p.state == "running" and p.pages:
        return f"running, {p.pages_done or 0} of {p.pages} pages"
    if p.state == "pending":
        return "waiting in the service's queue"
    return p.state


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


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
