"""Step 5: a received answer becomes the document's outbox folder, the original goes to
the archive, and the job is done.

In order, for a batch of received jobs (one batch at a time, outside the services'
slots — a slot is for talking to a service):

1. each job's outbox folder name is chosen and persisted (the intent: after a crash the
   folder under that name is recognised as already written);
2. in a worker thread: the service normalizes its stored raw answer (pure), the
   folders are written atomically (``OutboxWriter.write_many``: staged, fsynced,
   renamed), and only then each original leaves the inbox;
3. on the loop: the batch's jobs move to ``done`` in one commit; their work folders go.

A document whose stored answer cannot be read (a power cut before it reached the disk)
is fetched again, or sent again where the service cannot be asked twice.

A document split into parts is received once every part is: its folder is the parts'
answers merged (daemon/outbox/merge.py), and its parts are done with it, in the same
commit.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import shutil
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import review
from ..desk.index import index_finished
from ..docfile import display_name
from ..errors import DocinboxError, HostError, InternalError, RawOutputLost, StaleTransition
from ..outbox import archive_original, merge
from ..outbox.writer import Folder
from ..store import Job, State
from ..store.api import Move
from .outcomes import Outcomes
from .runtime import Runtime

log = logging.getLogger("docinbox")

#: Received results written out (and committed done) together at most.
BATCH = 64
#: What an unreadable stored answer looks like, as opposed to a bug in normalizing it.
_UNREADABLE = (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, KeyError)


async def move_failing(rt: Runtime, outcomes: Outcomes) -> bool:
    """Originals of failed documents whose move to ``failed/`` is due (it waited for a
    disk, or a crash came between); False when none was."""
    jobs = [
        j
        for j in rt.store.in_state(State.FAILING, due_before=rt.clock.now(), limit=BATCH)
        if j.id not in rt.inflight
    ]
    for job in jobs:
        await outcomes.move_failed(job)
    return bool(jobs)


async def finish_received(rt: Runtime, outcomes: Outcomes) -> bool:
    """Write out one batch of received results; False when none was due."""
    now = rt.clock.now()
    jobs = [
        j
        for j in rt.store.in_state(State.RECEIVED, due_before=now, limit=BATCH, documents_only=True)
        if j.id not in rt.inflight
    ]
    if not jobs:
        return False
    rt.inflight.update(j.id for j in jobs)
    try:
        await _finish(rt, outcomes, jobs)
    finally:
        rt.inflight.difference_update(j.id for j in jobs)
    return True


async def _finish(rt: Runtime, outcomes: Outcomes, jobs: list[Job]) -> None:
    jobs = _choose_names(rt, jobs)
    rt.activity = f"writing {jobs[0].name}" if len(jobs) == 1 else f"writing {len(jobs)} results"
    rt.changed()
    twins = {
        j.id: _twin_raw(rt, int(j.remote["same_as_job"]))
        for j in jobs
        if j.remote.get("same_as_job")
    }
    merges = _merges(rt, jobs)
    await rt.durable.wait()  # "received" on disk before the original leaves the inbox
    try:
        results = await asyncio.to_thread(_write, rt, jobs, twins, merges)
    except Exception as exc:  # a bug: recorded on the documents, never a spin
        log.exception("unexpected error while writing results")
        error = InternalError(f"internal error while writing results: {type(exc).__name__}: {exc}")
        results = [error] * len(jobs)
    moves: list[Move] = []
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, FileExistsError):
            # The chosen name was taken meanwhile: choose again next round.
            rt.store.update(job.id, State.RECEIVED, result_dir=None)
            rt.signals.finish.set()
        elif isinstance(result, DocinboxError | OSError):
            await outcomes.error(job.id, _as_error(job, result))  # type: ignore[arg-type]
        else:
            name, archived = result
            moves += [(p.job.id, State.RECEIVED, State.DONE, {}) for p in merges.get(job.id, ())]
            moves.append(
                (
                    job.id,
                    State.RECEIVED,
                    State.DONE,
                    {
                        "result_dir": name,
                        "location": str(archived) if archived else "",
                        "error": None,
                        "message": None,
                    },
                )
            )
    await _done(rt, outcomes, moves)


async def _done(rt: Runtime, outcomes: Outcomes, moves: list[Move]) -> None:
    """The batch's documents (and their parts) → ``done`` in one commit; their work
    folders go."""
    finished: list[Job] = []
    for moved in rt.store.transition_many(moves):
        if isinstance(moved, StaleTransition):
            log.warning("%s", moved)
            continue
        finished.append(moved)
        if moved.is_part:
            continue
        outcomes.succeeded(moved.id)
        log.info("%s: done → %s", moved.rel_path, rt.folders.outbox / (moved.result_dir or ""))
    await asyncio.to_thread(_remove_workdirs, rt, [j.id for j in finished])
    await index_finished(rt.store, rt.folders.outbox, finished)  # the desk's search
    rt.changed()


def _merges(rt: Runtime, jobs: list[Job]) -> dict[int, list[merge.Part]]:
    """(On the loop: the store is read here, never in the worker thread.)  The parts of
    each split document of the batch, as the merge needs them."""
    split = rt.store.parts_of([j.id for j in jobs if j.parts])
    out: dict[int, list[merge.Part]] = {}
    for job_id, parts in split.items():
        service = rt.services.get(parts[0].service or "") if parts else None
        out[job_id] = [
            merge.Part(
                job=p,
                doc=rt.document(p),
                stored=rt.workdir(p.id) / "raw",
                can_refetch=service is not None and service.can_refetch(p.remote),
            )
            for p in parts
        ]
    return out


def _choose_names(rt: Runtime, jobs: list[Job]) -> list[Job]:
    """Each job's outbox folder name, persisted before anything is written."""
    taken = rt.store.reserved_names(exclude=-1)
    changes: list[tuple[int, State, State, Mapping[str, Any]]] = []
    for job in jobs:
        if job.result_dir:
            continue
        name = rt.writer.free_name(Path(display_name(job.name)).stem, taken)
        taken.add(name)
        changes.append((job.id, State.RECEIVED, State.RECEIVED, {"result_dir": name}))
    if not changes:
        return jobs
    named = {j.id: j for j in rt.store.transition_many(changes) if isinstance(j, Job)}
    return [named.get(j.id, j) for j in jobs]


Written = tuple[str, "Path | None"]


def _write(
    rt: Runtime,
    jobs: Sequence[Job],
    twins: Mapping[int, Path],
    merges: Mapping[int, Sequence[merge.Part]],
) -> list[Written | DocinboxError | OSError]:
    """(Worker thread) the batch's folders together, then the originals: an original
    leaves the inbox only once its result is durable."""
    out: list[Written | DocinboxError | OSError] = []
    folders: list[tuple[int, Folder]] = []
    for i, job in enumerate(jobs):
        prepared = _guard(job, lambda j=job: _prepare(rt, j, twins.get(j.id), merges.get(j.id)))
        out.append(prepared if not isinstance(prepared, Folder) else (prepared.name, None))
        if isinstance(prepared, Folder):
            folders.append((i, prepared))
    try:
        written: Sequence[Path | OSError | DocinboxError] = rt.writer.write_many(
            [f for _, f in folders]
        )
    except OSError as exc:  # the writer says per folder; this is the outbox as a whole
        written = [_as_error(jobs[i], exc) for i, _ in folders]
    for (i, _folder), path in zip(folders, written, strict=True):
        if not isinstance(path, Path):  # FileExistsError: choose again; HostError: wait
            out[i] = path
    for i, job in enumerate(jobs):
        done = out[i]
        if isinstance(done, tuple):
            archived = _guard(job, lambda j=job: _archive(rt, j))
            out[i] = (
                archived if isinstance(archived, DocinboxError | OSError) else (done[0], archived)
            )
    return out


def _prepare(
    rt: Runtime, job: Job, twin_raw: Path | None, parts: Sequence[merge.Part] | None = None
) -> Folder | Written:
    """The folder to write under the job's chosen name — or, when a run before a crash
    wrote it already, just that name (only the archiving was left).  *twin_raw*: the
    raw output of an earlier result with the same content, reused; *parts*: a split
    document's, merged."""
    name = job.result_dir or ""
    if (rt.folders.outbox / name).exists():
        if rt.writer.written(name, job.sha256):
            return (name, None)
        raise FileExistsError(errno.EEXIST, "outbox folder exists", name)
    service = rt.services[job.service or ""]
    doc = rt.document(job)
    if parts:
        source = _source(job, doc.name)
        return merge.folder(name, job, source, service, parts, rt.workdir(job.id) / "raw")
    raw = twin_raw or doc.raw
    try:
        normalized = service.normalize(raw, doc)
    except DocinboxError:
        raise
    except _UNREADABLE as exc:
        raise RawOutputLost(
            f"{job.rel_path}: the stored answer of {service.name} cannot be read "
            f"({type(exc).__name__}: {exc})",
            service=service.name,
            resubmit=twin_raw is not None or not service.can_refetch(job.remote),
        ) from exc
    result = {
        "source": _source(job, doc.name),
        "service": job.service,
        "remote": dict(normalized.remote),
        "fields": list(normalized.fields),
        "tables": list(normalized.tables),
        "markdown": "document.md",
        "review": review.initial(normalized.fields, rt.settings.review),
    }
    return Folder(name, job.id, result, normalized.markdown, raw, copy_raw=twin_raw is not None)


def _source(job: Job, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "path": display_name(job.rel_path),
        "sha256": job.sha256,
        "bytes": job.size,
        "pages": job.pages,
        "type": job.kind,
    }


def _twin_raw(rt: Runtime, twin_id: int) -> Path:
    twin = rt.store.get(twin_id)
    return rt.folders.outbox / (twin.result_dir or "") / "raw"


def _archive(rt: Runtime, job: Job) -> Path | None:
    location = Path(job.location)
    try:
        st = location.lstat()
    except FileNotFoundError:
        log.warning("%s: the original disappeared before it could be archived", job.rel_path)
        return None
    if (st.st_size, st.st_mtime_ns) != (job.size, job.mtime_ns) and not location.is_symlink():
        # Replaced while in flight: the file there now is another document (the watcher
        # queues it on its own); this job's result stands for the content it was sent.
        log.warning(
            "%s: replaced while it was processed; the new file is left in place", job.rel_path
        )
        return None
    archived = archive_original(location, job.rel_path, rt.folders.archive)
    if location.is_relative_to(rt.folders.failed):  # a retried failure succeeded
        location.with_name(location.name + ".error.json").unlink(missing_ok=True)
    return archived


def _guard(job: Job, step: Any) -> Any:
    """A step's result, or its error as a value: one job's trouble is not the batch's."""
    try:
        return step()
    except Exception as exc:
        return _as_error(job, exc)


def _as_error(job: Job, exc: Exception) -> DocinboxError | OSError:
    if isinstance(exc, FileExistsError | DocinboxError):
        return exc  # FileExistsError: the name was taken; the next round picks another
    if isinstance(exc, OSError):
        return HostError(f"cannot write the result of {job.rel_path}: {exc}")
    log.error("%s: unexpected error while writing the result", job.rel_path, exc_info=exc)
    return InternalError(
        f"internal error while writing {job.rel_path}: {type(exc).__name__}: {exc}"
    )


def _remove_workdirs(rt: Runtime, job_ids: list[int]) -> None:
    for job_id in job_ids:
        shutil.rmtree(rt.workdir(job_id), ignore_errors=True)


__all__ = ["BATCH", "finish_received", "move_failing"]
