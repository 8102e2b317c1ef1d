"""Documents split into parts: the parts recorded with their document in one commit, read
back per document, and a failed document's failed parts put back in line."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...docfile import storable
from ...errors import StaleTransition
from ..job import Job
from ..states import State
from .base import placeholders
from .transitions import Transitions

#: What a retry clears on a job it puts back in line — the service's ids too: a task
#: that ended failed would answer the same again, so a retry sends the document anew.
RETRY_CLEARS: Mapping[str, Any] = {
    "remote": {},
    "attempts": 0,
    "not_before": 0.0,
    "first_error_at": None,
    "error": None,
    "message": None,
    "hint": None,
    "finished_at": None,
}


class Parts(Transitions):
    def split_into(
        self,
        job_id: int,
        *,
        sha256: str,
        kind: str,
        pages: int,
        service: str,
        options: Mapping[str, Any],
        parts: Sequence[Mapping[str, Any]],
    ) -> list[Job]:
        """The document *job_id* (queued, still with content *sha256*) → ``split``, and its
        *parts* queued for *service*, in one transaction.  Each part: ``rel_path``,
        ``location``, ``sha256``, ``size``, ``mtime_ns``, ``pages`` (of the file the
        service gets), ``first_page``, ``last_page``, ``options``.  StaleTransition when
        the document changed or moved on meanwhile."""
        now = self.clock.now()
        with self._tx() as conn:
            moved = conn.execute(
                "UPDATE jobs SET state = 'split', kind = ?, pages = ?, service = ?, "
                "options = ?, parts = ?, updated_at = ? "
                "WHERE id = ? AND state = 'queued' AND sha256 = ? AND parent_id IS NULL",
                (
                    kind,
                    pages,
                    service,
                    json.dumps(dict(options), sort_keys=True),
                    len(parts),
                    now,
                    job_id,
                    sha256,
                ),
            ).rowcount
            if not moved:
                raise StaleTransition(f"job {job_id} changed before it could be split")
            _history(conn, job_id, now, State.QUEUED, State.SPLIT, f"{len(parts)} parts")
            ids = [
                self._insert_part(conn, job_id, n, part, kind, service, now)
                for n, part in enumerate(parts, 1)
            ]
        return [self.get(i) for i in ids]

    @staticmethod
    def _insert_part(
        conn: sqlite3.Connection,
        parent_id: int,
        number: int,
        part: Mapping[str, Any],
        kind: str,
        service: str,
        now: float,
    ) -> int:
        cur = conn.execute(
            "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, kind, pages, "
            "state, service, options, created_at, updated_at, parent_id, part, first_page, "
            "last_page) VALUES (?,?,?,?,?,?,?,'queued',?,?,?,?,?,?,?,?)",
            (
                storable(part["rel_path"]),
                storable(part["location"]),
                part["sha256"],
                part["size"],
                part["mtime_ns"],
                kind,
                part["pages"],
                service,
                json.dumps(dict(part["options"]), sort_keys=True),
                now,
                now,
                parent_id,
                number,
                part["first_page"],
                part["last_page"],
            ),
        )
        part_id = int(cur.lastrowid or 0)
        _history(conn, part_id, now, None, State.QUEUED, f"part {number} of job {parent_id}")
        return part_id

    def parts_of(self, job_ids: Iterable[int]) -> dict[int, list[Job]]:
        """The parts of each of these documents, in page order (none: not split)."""
        ids = list(job_ids)
        out: dict[int, list[Job]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in self._query(
                f"SELECT * FROM jobs WHERE parent_id IN ({placeholders(chunk)}) "
                "ORDER BY parent_id, part",
                chunk,
            ):
                job = Job.from_row(row)
                out[job.parent_id or 0].append(job)
        return out

    def retry(self, ids: Iterable[int] | None = None) -> list[Job]:
        """Failed documents back in line (all of them when *ids* is None); of a document
        split into parts, only the failed parts."""
        if ids is None:
            ids = [
                r["id"]
                for r in self._query(  # those the user dismissed stay where they are
                    "SELECT id FROM jobs WHERE state = 'failed' AND parent_id IS NULL "
                    "AND id NOT IN (SELECT job_id FROM dismissed)"
                )
            ]
        moved = []
        for job_id in ids:
            try:
                with self._tx() as conn:
                    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
                    if row is None or row["parent_id"] is not None:
                        continue  # unknown, or a part: its document is what is retried
                    job = Job.from_row(row)
                    if job.parts:
                        moved.append(self._retry_split(conn, job))
                    else:
                        moved.append(
                            self._transition(
                                conn, job_id, State.FAILED, State.QUEUED, "retry", RETRY_CLEARS
                            )
                        )
            except StaleTransition:
                continue
        if moved:  # back in line: no longer dismissed
            with self._tx() as conn:
                conn.execute(
                    f"DELETE FROM dismissed WHERE job_id IN ({placeholders(moved)})",
                    [j.id for j in moved],
                )
        return moved

    def _retry_split(self, conn: sqlite3.Connection, job: Job) -> Job:
        """A failed split document back in line: only its failed parts are sent again
        (those received keep their answers); a part that is the whole file under a page
        range follows the original to wherever it is now (``failed/``)."""
        rows = conn.execute(
            "SELECT * FROM jobs WHERE parent_id = ? ORDER BY part", (job.id,)
        ).fetchall()
        parts = [Job.from_row(r) for r in rows]
        redo = [p for p in parts if p.state is State.FAILED]
        for part in redo:
            changes = dict(RETRY_CLEARS)
            if part.sha256 == job.sha256:
                changes["location"] = job.location
            self._transition(conn, part.id, State.FAILED, State.QUEUED, "retry", changes)
        pending = redo or any(p.state is not State.RECEIVED for p in parts)
        to = State.SPLIT if pending else State.RECEIVED
        return self._transition(conn, job.id, State.FAILED, to, "retry", RETRY_CLEARS)


def _history(
    conn: sqlite3.Connection, job_id: int, at: float, src: State | None, dst: State, note: str
) -> None:
    conn.execute(
        "INSERT INTO history (job_id, at, src, dst, note) VALUES (?,?,?,?,?)",
        (job_id, at, None if src is None else str(src), str(dst), note),
    )
