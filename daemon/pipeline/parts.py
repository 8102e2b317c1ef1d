"""The parts of a split document on their way back (pipeline/split.py made them).

Each part is a job of its own, so submission, polling, retries, pauses and recovery
treat it like any document.  What differs is where it ends:

- a part received: when every part of its document is, the document moves
  ``split → received`` and the finish step merges them (daemon/outbox/merge.py);
- a part that cannot be processed is recorded ``failed`` — no file moves, its output
  and its siblings' stay — and once no part of its document is still under way, the
  document moves ``split → failing`` with that part's error (which part, which pages),
  and its original goes to ``failed/`` as any failed document's does.  ``docinbox
  retry`` then sends only the failed parts again (store ``retry``);
- a part sent as the whole file under a page range that the service refuses for its
  page count (the limit counts the file, not the range): that part is written as a file
  of its own and queued again, and the service gets files from then on.

:func:`settle` is the one place a document leaves ``split``; recovery calls it too, for
a crash between a part's last move and its document's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from .. import errors
from ..errors import DocinboxError, DocumentTooLarge, StaleTransition, TooManyPages
from ..store import Job, State
from ..store.api import Move
from .runtime import Runtime
from .split import RANGES_REFUSED, Span, part_options

log = logging.getLogger("docinbox")

#: States in which a part is settled: its document may move on.
SETTLED = frozenset({State.RECEIVED, State.FAILED})


def describe(part: Job, total: int | None) -> str:
    """``part 2 of 5 (pages 201-400)``."""
    of = f" of {total}" if total else ""
    return f"part {part.part}{of} (pages {part.first_page}-{part.last_page})"


def settle(rt: Runtime, parent_id: int) -> None:
    """Move a split document on once none of its parts is under way: ``received`` when
    every part is, else ``failing`` with its failed parts' error (the finish step moves
    its original to ``failed/``)."""
    parent = rt.store.get(parent_id)
    if parent.state is not State.SPLIT:
        return
    parts = rt.store.parts_of([parent_id])[parent_id]
    if not parts or any(p.state not in SETTLED for p in parts):
        return
    if any(p.id in rt.touched for p in parts):
        rt.touched.add(parent_id)  # docinbox run --once reports the document
    failed = [p for p in parts if p.state is State.FAILED]
    try:
        if not failed:
            rt.store.transition(
                parent_id, State.SPLIT, State.RECEIVED, note="every part received", error=None
            )
        else:
            err = parts_error(parent, failed, len(parts))
            rt.store.transition(
                parent_id,
                State.SPLIT,
                State.FAILING,
                error=err.code,
                message=err.message,
                hint=err.hint,
                attempts=max(p.attempts for p in failed),
                not_before=0.0,
                note=err.code,
            )
            log.error("%s: failed (%s): %s", parent.rel_path, err.code, err.message)
    except StaleTransition:
        return
    rt.signals.finish.set()
    rt.changed()


def parts_error(parent: Job, failed: Sequence[Job], total: int) -> DocinboxError:
    """The document's error: its first failed part's, saying which part it was."""
    first = failed[0]
    lead = (
        f"{describe(first, total)}"
        if len(failed) == 1
        else f"{len(failed)} of {total} parts failed; {describe(first, total)}"
    )
    cls = _error_class(first.error or "")
    err = cls(f"{parent.name}: {lead}: {first.message or first.error}", service=first.service)
    if first.hint:
        err.hint = first.hint  # type: ignore[misc]
    return err


def _error_class(code: str) -> type[DocinboxError]:
    """The error class with this stable code (a part's error, recorded by its code)."""
    pending: list[type[DocinboxError]] = [DocinboxError]
    while pending:
        cls = pending.pop(0)
        if cls.code == code and cls is not DocinboxError:
            return cls
        pending += cls.__subclasses__()
    return errors.DocumentError


def part_failed(rt: Runtime, part: Job, err: DocinboxError | None) -> None:
    """A part that cannot be processed: recorded ``failed`` (nothing moves: its
    document's original goes to ``failed/`` once its other parts have settled)."""
    moves: list[Move] = []
    if part.state is not State.FAILING:
        assert err is not None
        changes = {"error": err.code, "message": err.message, "hint": err.hint, "not_before": 0.0}
        moves.append((part.id, part.state, State.FAILING, changes))
    moves.append((part.id, State.FAILING, State.FAILED, {}))
    results = rt.store.transition_many(moves, note=err.code if err else None)
    if any(isinstance(r, StaleTransition) for r in results):
        return
    message = err.message if err else part.message
    log.info("%s: %s failed: %s", part.rel_path, describe(part, None), message)
    if part.parent_id is not None:
        settle(rt, part.parent_id)


def refused_range(rt: Runtime, part: Job, err: DocinboxError) -> bool:
    """Is *err* the service refusing a whole-file part for the file's page count or
    size (its limit counts the file, not the range)?"""
    if part.parent_id is None or not isinstance(err, TooManyPages | DocumentTooLarge):
        return False
    parent = rt.store.get(part.parent_id)
    return part.sha256 == parent.sha256


async def as_file(rt: Runtime, part: Job, err: DocinboxError) -> DocinboxError | None:
    """Send the refused page range as a file of its own; the service gets files from now
    on.  Returns the error the part meets instead, if writing it fails."""
    assert part.parent_id is not None and part.part is not None
    assert part.first_page is not None and part.last_page is not None
    parent = rt.store.get(part.parent_id)
    service = part.service or ""
    if not rt.store.meta(RANGES_REFUSED + service):
        rt.store.set_meta(RANGES_REFUSED + service, {"at": rt.clock.now(), "said": err.message})
        log.info(
            "%s refuses a page range of a file over its limit (%s); documents over it are "
            "split into files from now on",
            service,
            err.message,
        )
    span = Span(part.first_page, part.last_page)
    target = rt.workdir(parent.id) / "parts" / f"part-{part.part:03d}.pdf"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        made = await asyncio.to_thread(
            rt.inspector.split_part, part.location, span.first, span.last, target
        )
    except OSError as exc:
        return errors.HostError(f"cannot write a part of {parent.rel_path}: {exc}")
    except DocinboxError as exc:
        return exc
    options = part_options(parent.options, span, parent.pages or span.last, whole=False)
    rt.store.transition(
        part.id,
        part.state,
        State.QUEUED,
        location=str(target),
        sha256=made.sha256,
        size=made.size,
        mtime_ns=made.mtime_ns,
        pages=made.pages,
        options=options or {},
        remote={},
        attempts=0,
        error=None,
        message=None,
        first_error_at=None,
        not_before=0.0,
        note="refused as a page range: sent as a file of its own",
    )
    rt.signals.schedule.set()
    return None
