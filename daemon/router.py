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
) -> Decision:
    """The decision for a document; *accepts(service, kind)* says what a service can take
    and *limits(service)* its (max bytes, max pages).  A document over a service's limits
    goes to the next route that matches; if none does, the limit is the error."""
    over: DocumentError | None = None
    for index, r in enumerate(routes):
        if r.folder is not None and not folder_matches(r.folder, rel_path):
            continue
        if r.max_bytes is not None and size > r.max_bytes:
            continue
        if r.max_pages is not None and (info.pages is None or info.pages > r.max_pages):
            continue
        if r.types is not None and info.kind not in r.types:
            continue
        if not accepts(r.service, info.kind):
            continue
        max_bytes, max_pages = limits(r.service)
        if max_bytes is not None and size > max_bytes:
            over = over or DocumentTooLarge(
                f"{rel_path} is {size / MB:.0f} MB; {r.service} takes at most "
                f"{max_bytes / MB:.0f} MB"
            )
            continue
        if max_pages is not None and info.pages is not None and info.pages > max_pages:
            over = over or TooManyPages(
                f"{rel_path} has {info.pages} pages; {r.service} takes at most {max_pages}"
            )
            continue
        return Decision(r.service, dict(r.options), index)
    if over is not None:
        raise over
    pages = f"{info.pages}-page " if info.pages else ""
    raise UnsupportedDocument(
        f"no route takes this {pages}{info.kind} document ({rel_path})",
        hint="Add a [[routes]] entry for it in the configuration, or drop another format.",
    )
