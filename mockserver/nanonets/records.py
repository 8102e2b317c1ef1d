"""What the mock remembers of a Nanonets file (pages, predictions, review state) and how
it names and fingerprints the file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class PageRecord:
    id: str
    number: int
    size: dict[str, int]
    predicted: list[dict[str, Any]]
    moderated: list[dict[str, Any]]


@dataclass
class FileRecord:
    id: str
    model_id: str
    api_key: str
    name: str
    path: Path
    sha256: str
    metadata: str
    created_at: float
    ready_at: float
    is_async: bool
    pages: list[PageRecord]
    approved: bool = False
    exported: bool = False
    deleted: bool = False
    sig: str = field(default="")


@dataclass
class TrainingImage:
    id: str
    name: str
    sha256: str
    source: str


def parse_pages(spec: str, total: int) -> list[int]:
    """``pages_to_process`` ("1,2", "2-4", "1:3") → 0-based page numbers; ValueError if bad."""
    chosen: list[int] = []
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:[-:](\d+))?", part)
        if m is None:
            raise ValueError(part)
        a = int(m.group(1))
        b = int(m.group(2) or a)
        if a < 1 or b < a:
            raise ValueError(part)
        for n in range(a, b + 1):
            if n <= total and n - 1 not in chosen:
                chosen.append(n - 1)
    if not chosen:
        raise ValueError(spec)
    return sorted(chosen)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(name: str) -> str:
    """A file name safe to store: its last segment, odd characters replaced."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip() or "file"
    return re.sub(r"[^\w.\- ]", "_", name)[:200] or "file"


def display_name(name: str) -> str:
    """What Nanonets reports as ``input``: the file name (the last URL segment for a URL)."""
    if re.match(r"^https?://", name):
        return name.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or name
    return name.replace("\\", "/").rsplit("/", 1)[-1]
