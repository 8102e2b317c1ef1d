"""Step 2b: a PDF over its service's page or byte limit goes in parts.

Where the route is chosen (pipeline/inspect.py), a document the router marks ``split``
comes here.  Its parts are planned — the service's part size (``split_pages``, by
default its page limit), fewer pages each when the file is over the byte limit — and
made one of two ways, decided per document:

- **page ranges**: each part is the whole file with ``page_ranges`` selecting its
  pages, nothing written locally.  Only for a service that takes ``page_ranges``, a
  file under its byte limit, and when sending it whole once per part adds at most
  :data:`RANGES_EXTRA_UPLOAD` of upload: splitting costs a few seconds of CPU per
  thousand pages (measured: bench ``split``), the extra upload costs more beyond that.
  A service that refuses such a part for its page count (the limit counts the file, not
  the range) gets that part as a file of its own instead, and from then on files for
  every document (remembered in the store's meta);
- **files**: each part is written (pages copied by pypdf, streamed) into the document's
  work folder by the inspection helper process (its memory ceiling and a time limit
  per part: :meth:`daemon.sniff.Inspector.split_part`).  A part over the byte limit
  is split in two again; a single page over it fails the document, saying so.

The files are written before anything is recorded (a crash leaves the document queued
and uninspected: the next start splits it again, overwriting the same files), then the
document moves ``queued → split`` and its parts are queued, in one transaction.  From
there each part is a job like any other; pipeline/parts.py follows them back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..errors import DocinboxError, DocumentTooLarge, StaleTransition, Stopping
from ..router import MB, Decision
from ..services import Service
from ..services.mineru_result import selected_pages
from ..store import Job
from .runtime import Runtime

if TYPE_CHECKING:
    from .outcomes import Outcomes

log = logging.getLogger("docinbox")

#: Sending the whole file with a page range per part instead of writing parts is
#: cheaper while the extra upload ((parts - 1) × its size) stays within this.
RANGES_EXTRA_UPLOAD = 16 * MB
#: A part's file aims at this share of the byte limit (pages differ in size).
SIZE_MARGIN = 0.9
#: Where a service's refusal of page ranges past its page limit is remembered.
RANGES_REFUSED = "split:ranges_refused:"


@dataclass(frozen=True)
class Span:
    first: int  # 1-based, inclusive
    last: int

    @property
    def pages(self) -> int:
        return self.last - self.first + 1


def plan(pages: int, size: int, *, part_pages: int | None, max_bytes: int | None) -> list[Span]:
    """Consecutive spans of at most *part_pages* pages (the last one shorter), fewer
    pages each when the file is over *max_bytes* (by its average page size)."""
    per = part_pages or pages
    if max_bytes is not None and size > max_bytes:
        per = min(per, max(1, math.floor(pages * max_bytes * SIZE_MARGIN / size)))
    return [Span(first, min(pages, first + per - 1)) for first in range(1, pages + 1, per)]


def whole_file_parts(rt: Runtime, service: Service, job: Job, spans: list[Span]) -> bool:
    """Send the whole file with a page range per part (True), or write parts (False)?"""
    if not service.page_ranges or rt.store.meta(RANGES_REFUSED + service.name):
        return False
    if service.max_bytes is not None and job.size > service.max_bytes:
        return False
    return (len(spans) - 1) * job.size <= RANGES_EXTRA_UPLOAD


def part_name(rel_path: str, number: int) -> str:
    """``scans/book.pdf`` → ``scans/book.part-002.pdf``: the part's name for the service
    and in the log."""
    path = PurePosixPath(rel_path)
    return str(path.with_name(f"{path.stem}.part-{number:03d}{path.suffix or '.pdf'}"))


def part_options(
    options: Mapping[str, Any], span: Span, total: int, whole: bool
) -> dict[str, Any] | None:
    """The route's options for one part: the part's pages under ``page_ranges`` when it
    is the whole file; a route's own ``page_ranges`` narrowed to the part (numbered in
    the part's file when it is a file of its own).  None: the route selects none of
    the part's pages."""
    out = dict(options)
    chosen = (
        selected_pages(options.get("page_ranges"), total) if options.get("page_ranges") else None
    )
    if chosen is None and not whole:
        return out
    wanted = [p + 1 for p in (chosen if chosen is not None else range(total))]
    inside = [p for p in wanted if span.first <= p <= span.last]
    if not inside:
        return None
    base = 0 if whole else span.first - 1
    out["page_ranges"] = compact([p - base for p in inside])
    return out


def compact(pages: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3,7"`` (MinerU's page_ranges syntax, 1-based)."""
    runs: list[list[int]] = []
    for page in sorted(set(pages)):
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in runs)


async def split_document(
    rt: Runtime, outcomes: Outcomes, job: Job, kind: str, pages: int, decision: Decision
) -> None:
    """Plan, make and record the parts of *job* (inspected: *kind*, *pages*)."""
    service = rt.services[decision.service]
    spans = plan(pages, job.size, part_pages=service.part_pages, max_bytes=service.max_bytes)
    whole = whole_file_parts(rt, service, job, spans)
    rt.inflight.add(job.id)
    try:
        if whole:
            rows = _whole_file_rows(job, spans, pages, decision.options)
        else:
            rows = await asyncio.to_thread(
                _write_parts, rt, service, job, spans, pages, decision.options
            )
    except Stopping:
        return  # split again at the next start
    except DocinboxError as exc:
        await outcomes.error(job.id, exc)
        return
    finally:
        rt.inflight.discard(job.id)
    try:
        rt.store.split_into(
            job.id,
            sha256=job.sha256,
            kind=kind,
            pages=pages,
            service=service.name,
            options=decision.options,
            parts=rows,
        )
    except StaleTransition as exc:  # it changed meanwhile: its new version is inspected
        log.info("%s: %s", job.rel_path, exc)
        await asyncio.to_thread(shutil.rmtree, _parts_dir(rt, job), True)
        return
    _log_split(job, service, pages, rows, whole)
    rt.signals.schedule.set()
    rt.changed()


def _log_split(
    job: Job, service: Service, pages: int, rows: list[dict[str, Any]], whole: bool
) -> None:
    limits = []
    if service.max_pages is not None and pages > service.max_pages:
        limits.append(f"{service.max_pages} pages")
    if service.max_bytes is not None and job.size > service.max_bytes:
        limits.append(f"{service.max_bytes / MB:.0f} MB")
    how = "the whole file with a page range each" if whole else "files of their own"
    log.info(
        "%s: %d pages, over %s's limit of %s per file: sent in %d parts (%s)",
        job.rel_path,
        pages,
        service.name,
        " and ".join(limits) or "its limits",
        len(rows),
        how,
    )


def _whole_file_rows(
    job: Job, spans: list[Span], pages: int, options: Mapping[str, Any]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for span in spans:
        opts = part_options(options, span, pages, whole=True)
        if opts is not None:
            rows.append(
                _row(
                    job,
                    len(rows) + 1,
                    span,
                    job.location,
                    job.sha256,
                    job.size,
                    job.mtime_ns,
                    pages,
                    opts,
                )
            )
    return rows


def _row(
    job: Job,
    number: int,
    span: Span,
    location: str,
    sha256: str,
    size: int,
    mtime_ns: int,
    pages: int,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "rel_path": part_name(job.rel_path, number),
        "location": location,
        "sha256": sha256,
        "size": size,
        "mtime_ns": mtime_ns,
        "pages": pages,
        "first_page": span.first,
        "last_page": span.last,
        "options": dict(options),
    }


def _parts_dir(rt: Runtime, job: Job) -> Path:
    return rt.workdir(job.id) / "parts"


def _write_parts(
    rt: Runtime,
    service: Service,
    job: Job,
    spans: list[Span],
    pages: int,
    options: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """(Worker thread) each part written by the inspection helper; a part over the byte
    limit is split in two again."""
    folder = _parts_dir(rt, job)
    folder.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    todo = list(spans)
    while todo:
        span = todo.pop(0)
        opts = part_options(options, span, pages, whole=False)
        if opts is None:
            continue
        number = len(rows) + 1
        target = folder / f"part-{number:03d}.pdf"
        made = rt.inspector.split_part(job.location, span.first, span.last, target)
        if service.max_bytes is not None and made.size > service.max_bytes:
            target.unlink(missing_ok=True)
            if span.pages == 1:
                raise _page_too_large(job, service, span, made.size)
            half = span.first + span.pages // 2 - 1
            todo[:0] = [Span(span.first, half), Span(half + 1, span.last)]
            continue
        rows.append(
            _row(
                job,
                number,
                span,
                str(target),
                made.sha256,
                made.size,
                made.mtime_ns,
                made.pages,
                opts,
            )
        )
    return rows


def _page_too_large(job: Job, service: Service, span: Span, size: int) -> DocumentTooLarge:
    assert service.max_bytes is not None
    return DocumentTooLarge(
        f"{job.rel_path}: page {span.first} alone is {size / MB:.0f} MB; {service.name} "
        f"takes at most {service.max_bytes / MB:.0f} MB per file, so it cannot be sent "
        "even on its own",
        hint="Scan or export that page at a lower resolution (or compress the PDF) and "
        "drop it again.",
    )
