"""One document's job: a row of the store, as the pipeline sees it."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..docfile import from_storable
from .states import State


@dataclass(frozen=True)
class Job:
    id: int
    rel_path: str
    location: str
    sha256: str
    size: int
    mtime_ns: int
    state: State
    kind: str | None = None
    pages: int | None = None
    service: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    remote: Mapping[str, Any] = field(default_factory=dict)
    attempts: int = 0
    not_before: float = 0.0
    first_error_at: float | None = None
    error: str | None = None
    message: str | None = None
    result_dir: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    finished_at: float | None = None
    hint: str | None = None
    #: A part of a document split into parts: that document, the part's number (from
    #: 1) and the document's pages it carries (1-based, inclusive).
    parent_id: int | None = None
    part: int | None = None
    first_page: int | None = None
    last_page: int | None = None
    #: A document split into parts: how many.
    parts: int | None = None

    @property
    def is_part(self) -> bool:
        return self.parent_id is not None

    @property
    def page_count(self) -> int:
        """The pages of the document this part carries (a document: its pages)."""
        if self.first_page is not None and self.last_page is not None:
            return self.last_page - self.first_page + 1
        return self.pages or 0

    @property
    def name(self) -> str:
        return self.rel_path.rsplit("/", 1)[-1]

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | sqlite3.Row) -> Job:
        values = dict(row)
        values["state"] = State(values["state"])
        values["options"] = json.loads(values["options"] or "{}")
        values["remote"] = json.loads(values["remote"] or "{}")
        values["rel_path"] = from_storable(values["rel_path"])
        values["location"] = from_storable(values["location"])
        return cls(**values)
