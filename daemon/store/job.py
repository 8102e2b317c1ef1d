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
