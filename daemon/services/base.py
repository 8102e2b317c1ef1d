"""The one interface every service implements, and what it hands back.

A service takes documents in batches — a single document is a batch of one — and
answers per document (:data:`BatchOutcome`): :class:`Received` (its raw output is
stored in the document's work folder, ``workdir/raw``), :class:`Accepted` (poll later
with these ids), or the error that document met.  ``normalize`` turns the stored raw
output into the SPEC's result; it is pure and repeatable, so a crash between receiving
and writing loses nothing.

A service declares what it is (:class:`Service` class attributes: the document kinds it
takes, its limits, how many documents share a submission) and what it needs from the
daemon (:class:`ServiceContext`: the HTTP transport, the clock, signed links to
documents for services that fetch them, the callback address).  Callbacks are verified
by the service they come from (:meth:`Service.callback_ids`).

Every request goes through the service's :class:`~daemon.services.pacing.Pacer`
(:meth:`Service.make_pacer`: one lane per limit the service enforces), and a service
declares the allowances it counts (:class:`Budget`, :meth:`Service.budgets`): what one
document uses of them (:meth:`Service.usage`) and which one a quota error says is used
up (:meth:`Service.spent`); :mod:`daemon.budgets` keeps the counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from ..clock import Clock, SystemClock
from ..errors import ConfigError, DocinboxError, InternalError
from ..settings import Secret, ServiceSettings, ServiceSpec
from . import http
from .libs import httpx
from .pacing import Pacer, Quota

#: Seconds a reachability probe may take: it is one tiny request.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SourceDocument:
    job_id: int
    path: Path  # where the original is now
    name: str  # its name as dropped
    kind: str
    pages: int | None
    size: int
    sha256: str
    workdir: Path  # the job's own folder; the raw answer goes to workdir/raw
    options: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None  # links: the URL to parse instead of the bytes
    remote: Mapping[str, Any] = field(default_factory=dict)  # ids from an earlier attempt

    @property
    def raw(self) -> Path:
        return self.workdir / "raw"


@dataclass(frozen=True)
class Received:
    """The service answered; its raw output is in the work folder's ``raw/``."""

    remote: Mapping[str, Any]


@dataclass(frozen=True)
class Accepted:
    """The service took the document and will answer later; poll with these ids."""

    remote: Mapping[str, Any]
    poll_after: float = 1.0


Outcome = Received | Accepted

#: Per document of a batch (by job id): what happened, or the error that document met.
BatchOutcome = Mapping[int, "Outcome | DocinboxError"]

#: A person's correction of one field (the review desk): ``{"label", "text"}``.
Correction = Mapping[str, str]

#: ``progress(remote)`` persists which review calls landed, before the next one is made.
ReviewProgress = Callable[[Mapping[str, Any]], None]

#: ``checkpoint(job_id, remote)`` persists ids *before* the next side effect (merged into
#: the job's ``remote``; the job keeps its state).  Synchronous: it is one SQLite write.
Checkpoint = Callable[[int, Mapping[str, Any]], None]


@dataclass(frozen=True)
class PartOutput:
    """One part of a document split into parts, as its merge sees it: where its raw
    output now is (``<result>/raw/<folder>``), what the service was given, and how the
    pages of that file map to the document's (``offset`` added to a 0-based page of the
    part's own result; 0 when the part was the whole file under a page range, whose
    pages are the document's already)."""

    raw: Path
    folder: str
    doc: SourceDocument
    offset: int


@dataclass(frozen=True)
class Normalized:
    remote: Mapping[str, Any]
    fields: Sequence[Mapping[str, Any]]
    tables: Sequence[Mapping[str, Any]]
    markdown: str


class FileLinks(Protocol):
    """Signed, expiring URLs at which the daemon serves a document in flight."""

    def url_for(self, job_id: int, name: str, *, ttl: float) -> str: ...


@dataclass(frozen=True)
class Callbacks:
    """Where services push results (``[callbacks] public_url``) and the seed they sign with."""

    url: str
    seed: str


@dataclass(frozen=True)
class ServiceContext:
    """What a service gets from the daemon.  *monotonic* and *sleep* are the pacer's time
    (real by default: pacing is about the network's seconds; tests inject their own)."""

    transport: httpx.AsyncBaseTransport | None = None
    clock: Clock = field(default_factory=SystemClock)
    files: FileLinks | None = None
    callbacks: Callbacks | None = None
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


#: What to do when a budget runs out: wait for it to renew, send the document to the next
#: route that takes it, or go on at the service's low priority (a soft budget only).
POLICIES = ("wait", "next_route", "low_priority")
Policy = Literal["wait", "next_route", "low_priority"]


def check_policy(value: str, where: str) -> None:
    """A ``when_exhausted`` setting, checked when the settings are made."""
    if value not in POLICIES:
        raise ConfigError(f"{where}.when_exhausted: expected one of {', '.join(POLICIES)}, "
                          f"got {value!r}")  # fmt: skip


@dataclass(frozen=True)
class Budget:
    """One allowance a service counts: *limit* (0: not known — counted, never enforced)
    *unit*s per *period*: ``"day+8"`` (a day from midnight at UTC+8, Beijing),
    ``"month"`` (a calendar month in UTC) or ``"balance"`` (renews only when topped up).
    *soft*: past it the service goes on at a lower priority instead of refusing."""

    name: str
    unit: str
    limit: int
    period: str
    soft: bool = False
    label: str = ""


def same_host(base_url: str, lane: str) -> Callable[[str, str], str | None]:
    """A router: every request to the service's own host goes in *lane*; others (a
    presigned upload, a download from a CDN) are not paced."""
    host = httpx.URL(base_url).host if base_url else ""

    def route(method: str, url: str) -> str | None:
        if url.startswith("/"):
            return lane
        try:
            return lane if httpx.URL(url).host == host else None
        except (httpx.InvalidURL, TypeError):
            return None

    return route


class Service(ABC):
    """One remote document-parsing API."""

    name: ClassVar[str]
    #: Its configuration keys, defaults, route options and the mock's values.
    spec: ClassVar[ServiceSpec]
    #: Document kinds (see daemon.sniff) the service takes.
    kinds: ClassVar[frozenset[str]]
    #: The service's limits per document (a setting may change them per instance).
    max_bytes: int | None = None
    max_pages: int | None = None
    #: Documents one submission may carry, and how long to wait for more before sending
    #: a batch that is not full (MinerU: up to 200 per ``file-urls/batch``).
    batch_limit: int = 1
    batch_window: float = 0.0
    #: A document over the limits goes in parts of this many pages (None: max_pages).
    part_pages: int | None = None
    #: The service takes a ``page_ranges`` route option: a part may be the whole file
    #: with the part's pages selected, instead of a file of its own (MinerU, docparse).
    page_ranges: bool = False
    #: The service fetches documents by URL from the daemon's file server (docparse).
    fetches_documents: ClassVar[bool] = False
    #: The service has a review API (:meth:`review`): a person's corrections go back to
    #: it and the document is approved there.  Without one, corrections stay local.
    reviews: ClassVar[bool] = False
    #: Every request to the service goes through this client (``http.make_client``), at
    #: the pace of this pacer (None: a stand-in without one).
    client: httpx.AsyncClient
    pacer: Pacer | None = None

    def __init__(self, settings: ServiceSettings, ctx: ServiceContext) -> None:
        self.settings = settings
        self.ctx = ctx
        self.clock: Clock = ctx.clock

    @classmethod
    def files_address(cls, settings: ServiceSettings) -> tuple[str, str] | None:
        """(listen, public URL) of the daemon's file server for a service that fetches
        documents; None for the others."""
        return None

    @classmethod
    def for_mock(
        cls, settings: ServiceSettings, url: str, host: str, values: Mapping[str, Any]
    ) -> ServiceSettings:
        """These settings pointed at the embedded mock at *url*, with the mock's own
        credentials (*values*: ``mockserver.defaults`` by name, see ``spec.mock``)."""
        changes: dict[str, Any] = {"base_url": url}
        for setting, name in cls.spec.mock.items():
            value = values[name]
            changes[setting] = Secret(value, "mock") if setting == "credential" else value
        return dataclasses.replace(settings, **changes)

    def accepts(self, kind: str) -> bool:
        return kind in self.kinds

    def make_client(self, *, max_connections: int | None = None) -> httpx.AsyncClient:
        """The client every request of the service goes through: its base URL, timeout
        and proxy, at the pace of :attr:`pacer` (made first), with *max_connections*
        (default: the ``concurrency`` ceiling)."""
        settings = self.settings
        return http.make_client(
            settings.base_url,
            timeout=settings.timeout,
            transport=self.ctx.transport,
            proxy=settings.proxy,
            max_connections=max_connections or settings.concurrency,
            pacer=self.pacer,
        )

    def make_pacer(
        self,
        lanes: Mapping[str, Quota | None],
        route: Callable[[str, str], str | None],
        steps: Mapping[str, str],
    ) -> Pacer:
        """This service's pacer: its ``concurrency`` and ``rate_per_second`` are ceilings."""
        return Pacer(
            self.name,
            lanes=lanes,
            route=route,
            concurrency=self.settings.concurrency,
            ceiling_rate=self.settings.rate_per_second,
            steps=steps,
            clock=self.ctx.monotonic,
            sleep=self.ctx.sleep,
        )

    # --- budgets (daemon/budgets.py keeps the counts) -------------------------------------

    def budgets(self) -> tuple[Budget, ...]:
        """The allowances this service's account counts, with this instance's limits."""
        return ()

    def usage(self, kind: str, pages: int | None) -> Mapping[str, float]:
        """What one accepted submission of a document uses, by budget name."""
        return {}

    def spent(self, err: DocinboxError) -> str | None:
        """The budget a quota error says is used up (None: not a budget's error)."""
        return None

    @property
    def when_exhausted(self) -> Policy:
        """The ``when_exhausted`` setting (services without budgets: wait)."""
        value = getattr(self.settings, "when_exhausted", "wait")
        return value if value in POLICIES else "wait"  # type: ignore[return-value]

    def batch_key(self, kind: str, options: Mapping[str, Any]) -> str | None:
        """Documents of this kind with these route options that get the same key may share
        one submission; None: such a document is always sent on its own (e.g. a link)."""
        return None

    def poll_key(self, remote: Mapping[str, Any]) -> str | None:
        """Accepted documents with the same key are polled with one request (a batch id);
        None: the document is polled on its own."""
        return None

    @abstractmethod
    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        """Send documents that share a :meth:`batch_key` (or one on its own)."""

    async def poll(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        """Ask again about Accepted documents that share a :meth:`poll_key` (or one)."""
        error = InternalError(f"{self.name} answers synchronously; nothing to poll")
        return {d.job_id: error for d in docs}

    def can_refetch(self, remote: Mapping[str, Any]) -> bool:
        """Can the answer be asked for again with these ids (a stored copy was lost)?"""
        return False

    def resubmit_after_crash(self, doc: SourceDocument) -> bool:
        """After a crash mid-submission: send it again (True), or poll for it (False:
        the service provably has it and will say so)?

        True when the service cannot have kept it or cannot be asked (a synchronous
        API); services with checkpointed ids resume from them in ``submit``.
        """
        return True

    @abstractmethod
    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        """The SPEC's normalized result from the stored raw output."""

    def merged_raw(self, parts: Sequence[PartOutput], target: Path) -> list[str]:
        """A document parsed in parts: write into *target* (the result's ``raw/``, beside
        each part's folder) the service's own files as if it had been parsed whole —
        page numbers the document's, paths into the parts' folders — and return their
        names.  Nothing by default: each part's output is in its folder."""
        return []

    def callback_ids(self, payload: Mapping[str, Any]) -> dict[str, str] | None:
        """A pushed result, verified: the remote ids it is about, by kind (``data_id``,
        ``task_id``, ...: to poll them now), or None when it is not genuine.  Services
        without callbacks refuse every push."""
        return None

    async def review(
        self,
        remote: Mapping[str, Any],
        corrections: Sequence[Correction],
        done: Mapping[str, Any],
        progress: ReviewProgress,
    ) -> None:
        """Send a person's *corrections* of the document the service knows by *remote*,
        then approve it there.  Each call that lands is reported to *progress* (persisted)
        before the next is made; *done* holds what a previous attempt reported, so an
        attempt resumes where the last one stopped.  Only services with ``reviews`` set
        are asked; the others have no review API (corrected locally only)."""
        raise InternalError(f"{self.name} has no review API")

    async def probe(self) -> None:
        """Is the service reachable again?  Any HTTP answer from its host says yes (even a
        404 for ``/``); raises NetworkError or GatewayError while it is not."""
        await http.send(self.client, "GET", "/", service=self.name, timeout=PROBE_TIMEOUT)

    async def aclose(self) -> None:
        """Release connections."""
        await self.client.aclose()


async def each(
    docs: Sequence[SourceDocument], one: Callable[[SourceDocument], Awaitable[Outcome]]
) -> BatchOutcome:
    """For APIs without batches: one request per document, concurrently; a document's
    error is its outcome, never the batch's."""
    results = await asyncio.gather(*(settled(one(d)) for d in docs))
    return {d.job_id: r for d, r in zip(docs, results, strict=True)}


async def settled(outcome: Awaitable[Outcome]) -> Outcome | DocinboxError:
    """*outcome* awaited, a docinbox error returned rather than raised."""
    try:
        return await outcome
    except DocinboxError as exc:
        return exc


async def alone(
    batch: Callable[[Sequence[SourceDocument], Checkpoint], Awaitable[BatchOutcome]],
    doc: SourceDocument,
    checkpoint: Checkpoint | None = None,
) -> Outcome:
    """*doc* on its own through a batch method; its error raised."""
    outcome = (await batch([doc], checkpoint or (lambda _j, _r: None)))[doc.job_id]
    if isinstance(outcome, DocinboxError):
        raise outcome
    return outcome
