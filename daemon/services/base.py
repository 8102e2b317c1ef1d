"""The small interface every service module implements, and the normalized result.

A service turns a :class:`SourceDocument` into raw output stored under a work
folder (``submit``, and for asynchronous APIs ``poll``), and turns that stored raw
output into the SPEC's normalized result (``normalize``, pure and repeatable, so a
crash between receiving and writing loses nothing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ServiceSettings


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

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings

    def accepts(self, kind: str) -> bool:
        return kind in self.kinds

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

    async def aclose(self) -> None:
        """Release connections."""
