"""What the pipeline's steps share while the daemon runs, owned by its event loop.

Nothing here does work: the steps (admit, inspect, submit, poll, finish) use it, and
the lifecycle builds it.  The signals are how the steps hand work on without polling:
each long-lived task waits on its own event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import sniff
from ..clock import Clock
from ..docfile import display_name
from ..errors import DocumentError
from ..health import Health
from ..outbox import OutboxWriter
from ..retry import RetryPolicy
from ..services import Service, SourceDocument
from ..settings import Folders, Settings
from ..store import Job, Store
from ..store.durable import Durability
from ..watcher import IgnoreRules


@dataclass
class Signals:
    """One event per kind of work that may be waiting; set by whoever made it."""

    intake: asyncio.Event = field(default_factory=asyncio.Event)  # paths to admit
    inspect: asyncio.Event = field(default_factory=asyncio.Event)  # jobs to inspect/route
    schedule: asyncio.Event = field(default_factory=asyncio.Event)  # work may be startable
    finish: asyncio.Event = field(default_factory=asyncio.Event)  # results to write
    health: asyncio.Event = field(default_factory=asyncio.Event)  # a service paused
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # anything a user sees

    def all(self) -> None:
        for event in (
            self.intake,
            self.inspect,
            self.schedule,
            self.finish,
            self.health,
            self.changed,
        ):
            event.set()


@dataclass
class Runtime:
    settings: Settings
    store: Store
    services: Mapping[str, Service]
    clock: Clock
    writer: OutboxWriter
    health: Health
    retry: RetryPolicy
    ignore: IgnoreRules
    inspector: sniff.Inspector
    signals: Signals = field(default_factory=Signals)
    #: Jobs this run queued or worked on: ``--once`` exits 1 if any of them failed.
    touched: set[int] = field(default_factory=set)
    #: Jobs a step is working on now (the scheduler leaves them alone).
    inflight: set[int] = field(default_factory=set)
    #: What the daemon is doing, for the tray ("sending recibo.pdf").
    activity: str | None = None
    #: Services `--once` must not pause (a batch run fails documents instead of waiting).
    once: bool = False
    #: The store's commits made durable, off the loop, before a side effect needs them.
    durable: Durability = field(init=False)

    def __post_init__(self) -> None:
        self.durable = Durability(self.store.sync, self.store.changes)

    @property
    def folders(self) -> Folders:
        return self.settings.folders

    def workdir(self, job_id: int) -> Path:
        return self.settings.folders.state.parent / "work" / str(job_id)

    def document(self, job: Job) -> SourceDocument:
        """What a service is given for *job*."""
        url = None
        if job.kind == "link":
            with contextlib.suppress(OSError, DocumentError):
                url = sniff.read_link(Path(job.location))
        return SourceDocument(
            job_id=job.id,
            path=Path(job.location),
            name=display_name(job.name),
            kind=job.kind or "",
            pages=job.pages,
            size=job.size,
            sha256=job.sha256,
            workdir=self.workdir(job.id),
            options=job.options,
            url=url,
            remote=job.remote,
        )

    def changed(self) -> None:
        self.signals.changed.set()
