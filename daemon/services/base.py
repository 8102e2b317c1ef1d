"""The small interface every service module implements, and the normalized result.

A service turns a :class:`SourceDocument` into raw output stored under a work
folder (``submit``, and for asynchronous APIs ``poll``), and turns that stored raw
output into the SPEC's normalized result (``normalize``, pure and repeatable, so a
crash between receiving and writing loses nothing).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..config import ServiceSettings
from ..errors import DocinboxError
from . import http

#: Seconds a reachability probe may take: it is one tiny request.
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class SourceDocument:
    job_id: int
    path: Path             # where the original is now
    name: str              # its name as dropped
    kind: str
    pages: int | None
    size: int
    sha256: str
    options: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None  # links: the URL to parse instead of the bytes
    remote: Mapping[str, Any] = field(default_factory=dict)  # ids from an earlier attempt


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

#: Per document of a batch: what happened, or the error that document met.
BatchOutcome = Mapping[int, "Outcome | DocinboxError"]

#: ``checkpoint(job_id, remote)`` persists ids *before* the next side effect (merged into
#: the job's ``remote``; the job keeps its state).  Synchronous: it is one SQLite write.
Checkpoint = Callable[[int, Mapping[str, Any]], None]


@dataclass(frozen=True)
class Normalized:
    remote: Mapping[str, Any]
    fields: Sequence[Mapping[str, Any]]
    tables: Sequence[Mapping[str, Any]]
    markdown: str


class Service(ABC):
    """One remote document-parsing API."""

    name: str
    #: Document kinds (see daemon.sniff) the service takes.
    kinds: frozenset[str]
    max_bytes: int | None = None
    max_pages: int | None = None

    #: Every request to the service goes through this client (``http.make_client``).
    client: httpx.AsyncClient

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings

    #: Documents one submission may carry, and how long to wait for more before sending
    #: a batch that is not full (MinerU: 200 per ``file-urls/batch``).
    batch_limit: int = 1
    batch_window: float = 0.0

    def accepts(self, kind: str) -> bool:
        return kind in self.kinds

    def batch_key(self, doc: SourceDocument) -> str | None:
        """Documents with the same key may share one submission (same batch-level
        options); None: this document is always sent on its own (e.g. a link)."""
        return None

    async def submit_batch(self, docs: Sequence[SourceDocument],
                           workdirs: Mapping[int, Path], checkpoint: Checkpoint
                           ) -> BatchOutcome:
        """Send several documents that share a :meth:`batch_key`.  Batching services
        override this; the default sends them one by one, concurrently."""
        results = await asyncio.gather(*(self.submit(d, workdirs[d.job_id]) for d in docs),
                                       return_exceptions=True)
        return {d.job_id: _outcome(r) for d, r in zip(docs, results, strict=True)}

    def poll_key(self, remote: Mapping[str, Any]) -> str | None:
        """Accepted documents with the same key are polled with one request (a batch id);
        None: poll the document on its own."""
        return None

    async def poll_batch(self, docs: Sequence[SourceDocument], workdirs: Mapping[int, Path],
                         checkpoint: Checkpoint) -> BatchOutcome:
        """Ask about documents that share a :meth:`poll_key`; one request for all of them
        where the API allows.  Each Accepted outcome carries its own ``poll_after``."""
        results = await asyncio.gather(*(self.poll(d, workdirs[d.job_id]) for d in docs),
                                       return_exceptions=True)
        return {d.job_id: _outcome(r) for d, r in zip(docs, results, strict=True)}

    @abstractmethod
    async def submit(self, doc: SourceDocument, workdir: Path) -> Outcome:
        """Send the document; return Received (raw output stored) or Accepted."""

    async def poll(self, doc: SourceDocument, workdir: Path) -> Outcome:
        """Ask again about an Accepted document (asynchronous services override this)."""
        raise NotImplementedError(f"{self.name} answers synchronously; nothing to poll")

    def resubmit_after_crash(self, doc: SourceDocument) -> bool:
        """After a crash mid-submission: may the document be sent again?

        True when the service cannot have kept it or cannot be asked (a synchronous
        API); services with idempotent ids override this to look first.
        """
        return True

    @abstractmethod
    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        """The SPEC's normalized result from the stored raw output."""

    async def probe(self) -> None:
        """Is the service reachable again?  Any HTTP answer from its host says yes (even a
        404 for ``/``); raises NetworkError or GatewayError while it is not."""
        await http.send(self.client, "GET", "/", service=self.name, timeout=PROBE_TIMEOUT)

    async def aclose(self) -> None:
        """Release connections."""
        await self.client.aclose()


def _outcome(result: object) -> Outcome | DocinboxError:
    if isinstance(result, (Received, Accepted, DocinboxError)):
        return result
    if isinstance(result, BaseException):
        raise result  # a bug or a cancellation: not a per-document outcome
    raise TypeError(f"a service returned {result!r}")
