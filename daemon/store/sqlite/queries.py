"""Reading jobs: what is due, what is where, counts and history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..job import Job
from ..states import State
from .base import Connection, placeholders

#: A failed job the user dismissed (migration 6's ``dismissed`` table).
_DISMISSED = "(state = 'failed' AND id IN (SELECT job_id FROM dismissed))"


class Queries(Connection):
    def _dismissed(self) -> str:
        return _DISMISSED if self.has_table("dismissed") else "0"

    def _document(self) -> str:
        """Documents, not their parts (a database from before migration 5 has no parts)."""
        return "parent_id IS NULL" if self.has_column("jobs", "parent_id") else "1"

    def by_content(self, sha256: str, *states: State) -> list[Job]:
        rows = self._query(
            f"SELECT * FROM jobs WHERE sha256 = ? AND state IN ({placeholders(states)}) "
            f"AND {self._document()} ORDER BY id",
            (sha256, *map(str, states)),
        )
        return [Job.from_row(r) for r in rows]

    def in_state(
        self,
        *states: State,
        due_before: float | None = None,
        limit: int | None = None,
        documents_only: bool = False,
    ) -> list[Job]:
        """Jobs in *states* (parts included unless *documents_only*)."""
        sql = f"SELECT * FROM jobs WHERE state IN ({placeholders(states)})"
        params: list[Any] = [str(s) for s in states]
        if documents_only:
            sql += f" AND {self._document()}"
        if due_before is not None:
            sql += " AND not_before <= ?"
            params.append(due_before)
        sql += " ORDER BY not_before, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Job.from_row(r) for r in self._query(sql, params)]

    def next_due(self, *states: State, after: float | None = None) -> float | None:
        """The earliest ``not_before`` among jobs in *states* (only those later than
        *after*, when given: what is due now but waits for a slot needs no timer)."""
        sql = f"SELECT MIN(not_before) AS t FROM jobs WHERE state IN ({placeholders(states)})"
        params: list[Any] = [str(s) for s in states]
        if after is not None:
            sql += " AND not_before > ?"
            params.append(after)
        return self._query(sql, params)[0]["t"]

    def counts(self) -> dict[str, int]:
        """Documents per state (a document split into parts counts once); failures the
        user dismissed (the review desk) count no more."""
        rows = self._query(
            f"SELECT state, COUNT(*) AS n FROM jobs WHERE {self._document()} "
            f"AND NOT {self._dismissed()} GROUP BY state"
        )
        return {r["state"]: r["n"] for r in rows}

    def retrying_services(self) -> set[str]:
        rows = self._query(
            "SELECT DISTINCT service FROM jobs WHERE state = 'queued' "
            "AND error IS NOT NULL AND service IS NOT NULL"
        )
        return {r["service"] for r in rows}

    def jobs(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        states: Iterable[State] | None = None,
        hide_dismissed: bool = False,
        parts: bool = False,
    ) -> list[Job]:
        """Documents (and, with *parts*, the parts of split ones too)."""
        sql = "SELECT * FROM jobs WHERE " + ("1" if parts else self._document())
        params: list[Any] = []
        if states is not None:
            states = tuple(states)
            # Newest first: walk the updated_at index back from now ("+state" keeps
            # SQLite from sorting every document of those states instead).
            column = "+state" if newest_first else "state"
            sql += f" AND {column} IN ({placeholders(states)})"
            params += [str(s) for s in states]
        if hide_dismissed:
            sql += f" AND NOT {self._dismissed()}"
        sql += " ORDER BY updated_at DESC, id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Job.from_row(r) for r in self._query(sql, params)]

    def history(self, job_id: int) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query(
                "SELECT at, src, dst, note FROM history WHERE job_id = ? ORDER BY rowid", (job_id,)
            )
        ]

    def due_for(
        self, service: str, now: float, limit: int, *, exclude: Iterable[int] = ()
    ) -> list[Job]:
        """Queued, inspected jobs routed to *service* and due: what the scheduler can start
        (without those in *exclude*, already being started)."""
        skip = list(exclude)
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND service = ? AND not_before <= ? "
            f"AND kind IS NOT NULL AND id NOT IN ({placeholders(skip)}) "
            f"ORDER BY not_before, id LIMIT {int(limit)}",
            (service, now, *skip),
        )
        return [Job.from_row(r) for r in rows]

    def reserved_names(self, *, exclude: int) -> set[str]:
        """Outbox folder names reserved by jobs whose result is being written."""
        rows = self._query(
            "SELECT result_dir FROM jobs WHERE state = 'received' AND "
            "result_dir IS NOT NULL AND id != ?",
            (exclude,),
        )
        return {r[0] for r in rows}

    def data_version(self) -> int:
        """Changes when another connection commits (``docinbox retry`` from a shell)."""
        return int(self._query("PRAGMA data_version")[0][0])
