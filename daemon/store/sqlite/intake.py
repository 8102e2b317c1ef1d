"""Documents entering the queue, and what inspection learns of them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from ...docfile import from_storable, storable
from ..job import Job
from ..states import ACTIVE, State
from .base import Connection, placeholders

_ACTIVE = tuple(map(str, ACTIVE))
_QUEUED = str(State.QUEUED)


class Intake(Connection):
    def add(
        self,
        *,
        rel_path: str,
        location: str,
        sha256: str,
        size: int,
        mtime_ns: int,
        kind: str | None = None,
        pages: int | None = None,
    ) -> Job | None:
        """Queue one document (see :meth:`add_many`)."""
        (job_id,) = self.add_many(
            [
                {
                    "rel_path": rel_path,
                    "location": location,
                    "sha256": sha256,
                    "size": size,
                    "mtime_ns": mtime_ns,
                    "kind": kind,
                    "pages": pages,
                }
            ]
        )
        return None if job_id is None else self.get(job_id)

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[int | None]:
        """Queue many documents in one transaction (one fsync for a whole start-up scan).

        Each item has add()'s keyword arguments.  None where the same path with the same
        content is already active.  A path whose earlier version is queued but was never
        sent (a scanner still adding pages when it was first seen) is that same job,
        refreshed: new content, inspected again — not a second document."""
        now = self.clock.now()
        ids: list[int | None] = []
        with self._tx() as conn:
            for item in items:
                rows = conn.execute(
                    "SELECT id, sha256, state, attempts FROM jobs WHERE rel_path = ? AND "
                    f"parent_id IS NULL AND state IN ({placeholders(_ACTIVE)})",
                    (storable(item["rel_path"]), *_ACTIVE),
                ).fetchall()
                if any(r["sha256"] == item["sha256"] for r in rows):
                    ids.append(None)
                    continue
                unsent = [r["id"] for r in rows if r["state"] == _QUEUED and r["attempts"] == 0]
                if unsent:
                    ids.append(self._refresh(conn, unsent[0], item, now))
                else:
                    ids.append(self._insert(conn, item, now))
        return ids

    @staticmethod
    def _refresh(conn: sqlite3.Connection, job_id: int, item: Mapping[str, Any], now: float) -> int:
        conn.execute(
            "UPDATE jobs SET location = ?, sha256 = ?, size = ?, mtime_ns = ?, kind = ?, "
            "pages = ?, service = NULL, options = '{}', not_before = 0, updated_at = ? "
            "WHERE id = ?",
            (
                storable(item["location"]),
                item["sha256"],
                item["size"],
                item["mtime_ns"],
                item.get("kind"),
                item.get("pages"),
                now,
                job_id,
            ),
        )
        conn.execute(
            "INSERT INTO history (job_id, at, src, dst, note) VALUES (?,?,?,?,?)",
            (job_id, now, _QUEUED, _QUEUED, "changed before it was sent"),
        )
        return job_id

    @staticmethod
    def _insert(conn: sqlite3.Connection, item: Mapping[str, Any], now: float) -> int:
        cur = conn.execute(
            "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, kind, pages, "
            "state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                storable(item["rel_path"]),
                storable(item["location"]),
                item["sha256"],
                item["size"],
                item["mtime_ns"],
                item.get("kind"),
                item.get("pages"),
                _QUEUED,
                now,
                now,
            ),
        )
        job_id = int(cur.lastrowid or 0)
        conn.execute(
            "INSERT INTO history (job_id, at, src, dst) VALUES (?,?,?,?)",
            (job_id, now, None, _QUEUED),
        )
        return job_id

    def set_inspected(
        self, rows: Iterable[tuple[int, str, str, int | None, str, Mapping[str, Any]]]
    ) -> None:
        """Record (job id, sha256 inspected, kind, pages, service, options) for queued jobs,
        one transaction; a job whose content changed meanwhile is left for the next look."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE jobs SET kind = ?, pages = ?, service = ?, options = ?, updated_at = ? "
                "WHERE id = ? AND state = 'queued' AND sha256 = ?",
                [
                    (
                        kind,
                        pages,
                        service,
                        json.dumps(dict(options), sort_keys=True),
                        now,
                        job_id,
                        sha256,
                    )
                    for job_id, sha256, kind, pages, service, options in rows
                ],
            )

    def set_routes(self, routes: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None:
        """Record (job id, service, options) for queued jobs, in one transaction."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE jobs SET service = ?, options = ?, updated_at = ? "
                "WHERE id = ? AND state = 'queued'",
                [
                    (service, json.dumps(dict(options), sort_keys=True), now, job_id)
                    for job_id, service, options in routes
                ],
            )

    def clear_routes(self, service: str | None = None) -> int:
        """Forget the service of every unsent queued document (the routes may have
        changed), or of *service*'s only (its budget ran out: they take the next route);
        a part keeps its document's service."""
        only = "" if service is None else " AND service = ?"
        with self._tx() as conn:
            return conn.execute(
                "UPDATE jobs SET service = NULL WHERE state = 'queued' AND attempts = 0 "
                "AND kind IS NOT NULL AND kind != '' AND service IS NOT NULL "
                "AND parent_id IS NULL" + only,
                () if service is None else (service,),
            ).rowcount

    def uninspected(self, limit: int, *, due_before: float | None = None) -> list[Job]:
        """Queued documents whose type and pages are not known yet (and, with
        *due_before*, whose inspection is not held back)."""
        due = "" if due_before is None else f" AND not_before <= {float(due_before)!r}"
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND kind IS NULL AND parent_id IS NULL"
            f"{due} ORDER BY id LIMIT {int(limit)}"
        )
        return [Job.from_row(r) for r in rows]

    def unrouted(self, limit: int) -> list[Job]:
        """Queued jobs that are inspected but have no service yet (a route failed before, or
        the routes changed)."""
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND service IS NULL "
            "AND kind IS NOT NULL AND kind != '' AND parent_id IS NULL "
            f"ORDER BY id LIMIT {int(limit)}"
        )
        return [Job.from_row(r) for r in rows]

    def active_signatures(self, rel_paths: Iterable[str]) -> set[tuple[str, int, int]]:
        """(path, size, mtime) of the active jobs among *rel_paths*: one query for a batch,
        so a start-up scan can skip known files without hashing them."""
        paths = [storable(p) for p in rel_paths]
        found: set[tuple[str, int, int]] = set()
        active = tuple(map(str, ACTIVE))
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT rel_path, size, mtime_ns FROM jobs WHERE rel_path IN "
                    f"({placeholders(chunk)}) AND state IN ({placeholders(active)}) "
                    "AND parent_id IS NULL",
                    (*chunk, *active),
                ).fetchall()
            found.update((from_storable(r[0]), r[1], r[2]) for r in rows)
        return found
