"""What the review desk keeps in the store beside the jobs (migration 6): each written
result's searchable text and review state, and a person's corrections and approval."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A review's states (the ``reviews`` table): corrections kept → the approval's intent
#: persisted → done; ``failed`` when the service refused the approval for good.
EDITING, APPROVING, APPROVED, FAILED = "editing", "approving", "approved", "failed"


@dataclass(frozen=True)
class IndexedResult:
    """One written result as the desk searches and lists it."""

    job_id: int
    name: str
    folder: str
    markdown: str
    fields: Sequence[Mapping[str, Any]]
    review: Mapping[str, Any]

    @property
    def field_text(self) -> str:
        return "\n".join(f"{f.get('label') or ''}: {f.get('text') or ''}" for f in self.fields)


@dataclass(frozen=True)
class ResultRow:
    """The ``results`` row of one document."""

    job_id: int
    folder: str
    review: Mapping[str, Any]
    fields: Sequence[Mapping[str, Any]]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> ResultRow:
        return cls(
            job_id=row["job_id"],
            folder=row["folder"],
            review=json.loads(row["review"]),
            fields=json.loads(row["fields"]),
        )


@dataclass(frozen=True)
class Review:
    """A person's corrections and approval of one result (the ``reviews`` row)."""

    job_id: int
    state: str
    corrections: Sequence[Mapping[str, str]] = ()
    by: str | None = None
    remote: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    not_before: float = 0.0
    first_error_at: float | None = None
    error: str | None = None
    message: str | None = None
    requested_at: float | None = None
    approved_at: float | None = None
    updated_at: float = 0.0

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Review:
        values = dict(row)
        values["corrections"] = tuple(json.loads(values["corrections"] or "[]"))
        values["remote"] = json.loads(values["remote"] or "{}")
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "corrections": [dict(c) for c in self.corrections],
            "by": self.by,
            "attempts": self.attempts,
            "error": self.error,
            "message": self.message,
            "requested_at": self.requested_at,
            "approved_at": self.approved_at,
        }
