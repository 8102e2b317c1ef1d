"""What the daemon is doing, read from the store — by the daemon itself (for the tray),
or by ``docinbox status`` from another process — and the one user action that works
the same from both: putting failed documents back in line."""

from __future__ import annotations

from pathlib import Path

from . import health
from .control import FOREVER, DocumentSummary, ServiceHealth, StatusSnapshot
from .store import ACTIVE, TERMINAL, Job, State, Store

#: The user's pause (``docinbox pause``, the tray): Unix seconds, or FOREVER.
PAUSE_KEY = "paused_until"


def summary(job: Job, outbox: Path | None = None) -> DocumentSummary:
    failed = job.state is State.FAILED and job.location
    return DocumentSummary(
        id=job.id, name=job.rel_path, state=str(job.state), service=job.service,
        error=job.error, message=job.message,
        result_dir=(outbox / job.result_dir) if outbox and job.result_dir
        and job.state is State.DONE else None,
        updated_at=job.updated_at,
        error_file=Path(job.location + ".error.json") if failed else None)


def paused_until(store: Store, now: float) -> float | None:
    """The user's pause, if it still holds."""
    until = store.meta(PAUSE_KEY)
    if until is None:
        return None
    until = float(until)
    return None if until != FOREVER and until <= now else until


def build_snapshot(store: Store, now: float, *, activity: str | None = None,
                   outbox: Path | None = None) -> StatusSnapshot:
    """What ``docinbox status`` and the tray show; works from any process."""
    counts = store.counts()
    active = tuple(summary(j, outbox) for j in store.jobs(states=ACTIVE, limit=50))
    recent = tuple(summary(j, outbox)
                   for j in store.jobs(states=TERMINAL, newest_first=True, limit=8))
    services = []
    for name, h in sorted(health.records(store).items()):
        until = h.get("until")
        if until is not None and float(until) <= now and h.get("condition") != health.RETRYING:
            continue
        services.append(ServiceHealth(name=name, condition=h.get("condition", health.PAUSED),
                                      reason=h.get("reason"), error=h.get("error"),
                                      until=until))
    retrying = {j.service for j in store.jobs(states=(State.QUEUED,), limit=200)
                if j.error and j.service}
    for name in sorted(retrying - {s.name for s in services}):
        services.append(ServiceHealth(name=name, condition="retrying"))
    return StatusSnapshot(counts=counts, active=active, recent=recent,
                          services=tuple(services), paused_until=paused_until(store, now),
                          activity=activity)


def retry(store: Store, ids: list[int] | None = None) -> list[Job]:
    """Failed documents back in line, and every paused service unpaused (the user acted)."""
    health.clear(store)
    return store.retry(ids)
