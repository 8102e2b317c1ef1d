"""Guarded state changes: every UPDATE names the state it expects, and history records
each move (the loser of a race gets :class:`StaleTransition`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from ...docfile import storable
from ...errors import StaleTransition
from ..job import Job
from ..states import ACTIVE, State, allowed
from .base import JSON_COLUMNS, PATH_COLUMNS, Connection, placeholders


class Transitions(Connection):
    def transition(
        self,
        job_id: int,
        expect: State | Iterable[State],
        to: State,
        *,
        note: str | None = None,
        **changes: Any,
    ) -> Job:
        """Move a job from one of *expect* to *to*, setting *changes* in the same UPDATE."""
        with self._tx() as conn:
            return self._transition(conn, job_id, expect, to, note, changes)

    def transition_many(
        self,
        moves: Iterable[tuple[int, State, State, Mapping[str, Any]]],
        *,
        note: str | None = None,
    ) -> list[Job | StaleTransition]:
        """Several (job id, expect, to, changes) moves in one transaction — one commit, one
        fsync, for a batch.  A stale move is returned, not raised, and does not undo the
        others."""
        out: list[Job | StaleTransition] = []
        with self._tx() as conn:
            for job_id, expect, to, changes in moves:
                try:
                    out.append(self._transition(conn, job_id, expect, to, note, changes))
                except StaleTransition as exc:
                    out.append(exc)
        return out

    def _transition(
        self,
        conn: sqlite3.Connection,
        job_id: int,
        expect: State | Iterable[State],
        to: State,
        note: str | None,
        changes: Mapping[str, Any],
    ) -> Job:
        expected = (expect,) if isinstance(expect, State) else tuple(expect)
        for src in expected:
            if not allowed(src, to):
                raise StaleTransition(f"job {job_id}: {src} → {to} is not a transition")
        now = self.clock.now()
        sets = _columns(changes, to, now)
        assignments = ", ".join(f"{k} = :{k}" for k in sets)
        params = {**sets, "_id": job_id}
        params.update({f"_s{i}": str(s) for i, s in enumerate(expected)})
        states = ", ".join(f":_s{i}" for i in range(len(expected)))
        source = str(expected[0])
        if len(expected) > 1:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            source = row[0] if row else "missing"
        updated = conn.execute(
            f"UPDATE jobs SET {assignments} WHERE id = :_id AND state IN ({states}) RETURNING *",
            params,
        ).fetchone()
        if updated is None:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            found = row[0] if row else "missing"
            raise StaleTransition(
                f"job {job_id} is {found}, expected {'/'.join(map(str, expected))}"
            )
        if source != str(to) or note:  # staying put to record ids is not history
            conn.execute(
                "INSERT INTO history (job_id, at, src, dst, note) VALUES (?,?,?,?,?)",
                (job_id, now, source, str(to), note),
            )
        return Job.from_row(updated)

    def checkpoint(self, job_id: int, remote: Mapping[str, Any]) -> Job:
        """Merge *remote* into the job's ids in one statement (a null removes a key)."""
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE jobs SET remote = json_patch(remote, ?), updated_at = ? "
                "WHERE id = ? RETURNING *",
                (json.dumps(dict(remote)), self.clock.now(), job_id),
            ).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job.from_row(row)

    def update(self, job_id: int, expect: State, **changes: Any) -> Job:
        """Change columns of a job that stays in *expect* (e.g. record a retry time)."""
        return self.transition(job_id, expect, expect, **changes)

    def cap_waits(self, latest: float) -> int:
        """No active job waits past *latest* (a service may ask for absurd waits)."""
        with self._tx() as conn:
            return conn.execute(
                f"UPDATE jobs SET not_before = ? WHERE not_before > ? AND state IN "
                f"({placeholders(ACTIVE)})",
                (latest, latest, *map(str, ACTIVE)),
            ).rowcount


def _columns(changes: Mapping[str, Any], to: State, now: float) -> dict[str, Any]:
    """The columns one transition sets, each as the store keeps it (JSON as text, a path
    with undecodable bytes as its bytes); a job that ends gets a finishing time if none
    is given."""
    sets = {
        k: (
            json.dumps(v, sort_keys=True)
            if k in JSON_COLUMNS
            else storable(v)
            if k in PATH_COLUMNS and isinstance(v, str)
            else v
        )
        for k, v in changes.items()
    }
    sets["state"] = str(to)
    sets["updated_at"] = now
    if to in (State.DONE, State.FAILED):
        sets.setdefault("finished_at", now)
    return sets
