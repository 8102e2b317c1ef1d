"""Which service takes a document: the first ``[[routes]]`` entry whose conditions all
hold (folder glob, pages, bytes, type) and whose service can take that type."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import DocumentError, DocumentTooLarge, TooManyPages, UnsupportedDocument
from .settings import Route
from .sniff import DocumentInfo

MB = 1024 * 1024  # the services' "200MB" are binary megabytes


@dataclass(frozen=True)
class Decision:
    service: str
    options: dict[str, Any]
    route_index: int
    #: Over the service's page or byte limit: the document goes in parts
    #: (daemon/pipeline/split.py decides how many and how).
    split: bool = False


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """``**`` spans folders, ``*`` and ``?`` stay within one; a plain name means a folder."""
    pattern = pattern.strip("/")
    if not any(c in pattern for c in "*?["):
        pattern += "/**"
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def folder_matches(pattern: str, rel_path: str) -> bool:
    return _glob(pattern).match(rel_path) is not None


Limits = Callable[[str], tuple["int | None", "int | None"]]


def _no_limits(service: str) -> tuple[int | None, int | None]:
    return None, None


def route(
    routes: Iterable[Route],
    rel_path: str,
    size: int,
    info: DocumentInfo,
    accepts: Callable[[str, str], bool],
    limits: Limits = _no_limits,
    *,
    splittable: frozenset[str] = frozenset(),
) -> Decision:
    """The decision for a document; *accepts(service, kind)* says what a service can take
    and *limits(service)* its (max bytes, max pages).  A document over a service's limits
    goes to the next route that matches; if none takes it whole, the first route it was
    over takes it in parts when docinbox can split its kind (*splittable*), else the
    limit is the error, with what to do about it."""
    over: tuple[Decision, DocumentError] | None = None
    for index, r in enumerate(routes):
        if not _matches(r, rel_path, size, info) or not accepts(r.service, info.kind):
            continue
        problem = _over_limits(r.service, limits(r.service), rel_path, size, info)
        if problem is None:
            return Decision(r.service, dict(r.options), index)
        over = over or (Decision(r.service, dict(r.options), index, split=True), problem)
    if over is not None:
        decision, problem = over
        if info.kind in splittable and info.pages:
            return decision
        raise problem
    pages = f"{info.pages}-page " if info.pages else ""
    raise UnsupportedDocument(
        f"no route takes this {pages}{info.kind} document ({rel_path})",
        hint="Add a [[routes]] entry for it in the configuration, or drop another format.",
    )


def _matches(r: Route, rel_path: str, size: int, info: DocumentInfo) -> bool:
    """The route's own conditions: folder, bytes, pages, type."""
    if r.folder is not None and not folder_matches(r.folder, rel_path):
        return False
    if r.max_bytes is not None and size > r.max_bytes:
        return False
    if r.max_pages is not None and (info.pages is None or info.pages > r.max_pages):
        return False
    return r.types is None or info.kind in r.types


#: What to do about a file over a service's limits that docinbox cannot split.
UNSPLITTABLE_HINT = (
    "docinbox splits only PDFs. Export or print it as PDF and drop the PDF (docinbox then "
    "sends it in parts), or make it smaller (fewer pages, lower image resolution)."
)


def _over_limits(
    service: str,
    limits: tuple[int | None, int | None],
    rel_path: str,
    size: int,
    info: DocumentInfo,
) -> DocumentError | None:
    """The error a document over *service*'s limits meets (None: within them)."""
    max_bytes, max_pages = limits
    if max_bytes is not None and size > max_bytes:
        return DocumentTooLarge(
            f"{rel_path} is {size / MB:.0f} MB; {service} takes at most "
            f"{max_bytes / MB:.0f} MB per file, and a {info.kind} file cannot be split "
            "without converting it",
            hint=UNSPLITTABLE_HINT,
        )
    if max_pages is not None and info.pages is not None and info.pages > max_pages:
        return TooManyPages(
            f"{rel_path} has {info.pages} pages; {service} takes at most {max_pages} per "
            f"file, and a {info.kind} file cannot be split without converting it",
            hint=UNSPLITTABLE_HINT,
        )
    return None
