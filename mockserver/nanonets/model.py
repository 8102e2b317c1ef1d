"""The demo model: its labels, and what it predicts on a page (from the text layer).

Fields ``fecha`` (a date after "Fecha") and ``total`` (an amount after "Total"); table
``lineas_detalle`` (columns ``descripcion``, ``cantidad``: ``<description> <quantity>``
lines after a line reading ``lineas_detalle``). Boxes are ints, in pixels of the page
rendered at 150 dpi, origin top-left; table ``row``/``col`` are 1-based. Ids are derived
from the file's SHA-256, so the same bytes always get the same prediction.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

from ..defaults import NANONETS_MODEL_ID
from ..documents import pdftext

DPI_SCALE = 150 / 72  # page pixels per PDF point: pages "rendered" at 150 dpi


@dataclass(frozen=True)
class Label:
    name: str
    id: str
    kind: str  # "field" | "table"
    columns: tuple[str, ...] = ()


DEMO_LABELS = (
    Label("fecha", "label_001", "field"),
    Label("total", "label_002", "field"),
    Label("lineas_detalle", "label_003", "table", ("descripcion", "cantidad")),
)

_DATE = re.compile(
    r"\bfecha\b\s*[:\-]?\s*(\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{2}-\d{2})", re.IGNORECASE
)
_AMOUNT = re.compile(r"\btotal\b\s*[:\-]?\s*[€$]?\s*(-?\d[\d.,]*\d|\d)", re.IGNORECASE)
_ROW = re.compile(r"^(.*\S)\s+(\S+)$")


def model_view() -> dict[str, Any]:
    """The demo model as ``GET /api/v2/OCR/Model/{id}/`` describes it."""
    return {
        "model_id": NANONETS_MODEL_ID,
        "model_type": "ocr",
        "name": "docinbox demo (recibos)",
        "state": 5,
        "categories": [
            {"id": lbl.id, "name": lbl.name, "type": lbl.kind, "columns": list(lbl.columns)}
            if lbl.kind == "table"
            else {"id": lbl.id, "name": lbl.name, "type": lbl.kind}
            for lbl in DEMO_LABELS
        ],
    }


def uid(*parts: str) -> str:
    """A stable uuid-shaped id from *parts* (same bytes, same ids)."""
    return str(uuid.UUID(hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]))


def px(value: float) -> int:
    """PDF points to page pixels."""
    return round(value * DPI_SCALE)


def _value_box(line: pdftext.Line, match: re.Match[str]) -> tuple[int, int, int, int]:
    """The box of the matched value within its line (width shared out per character)."""
    n = max(1, len(line.text))
    per = (line.x1 - line.x0) / n
    x0 = line.x0 + per * match.start(1)
    x1 = line.x0 + per * match.end(1)
    return px(x0), px(line.top), px(x1), px(line.bottom)


def predict_page(page: pdftext.Page, seed: str) -> list[dict[str, Any]]:
    """The demo model's prediction for one page, deterministic in its text and *seed*."""
    out: list[dict[str, Any]] = []
    for label, regex, score in (("fecha", _DATE, 0.95), ("total", _AMOUNT, 0.92)):
        for line in page.lines:
            match = regex.search(line.text)
            if match is None:
                continue
            xmin, ymin, xmax, ymax = _value_box(line, match)
            meta = next(lbl for lbl in DEMO_LABELS if lbl.name == label)
            out.append(
                {
                    "id": uid(seed, str(page.number), label),
                    "label": label,
                    "xmin": xmin,
                    "ymin": ymin,
                    "xmax": xmax,
                    "ymax": ymax,
                    "score": score,
                    "ocr_text": match.group(1),
                    "type": "field",
                    "status": "correctly_predicted",
                    "page_no": page.number,
                    "label_id": meta.id,
                }
            )
            break
    table = _table(page, seed)
    if table is not None:
        out.append(table)
    return out


def _table(page: pdftext.Page, seed: str) -> dict[str, Any] | None:
    """``lineas_detalle``: the rows under its heading line, up to the first non-row."""
    lines = page.lines
    start = next(
        (i for i, ln in enumerate(lines) if ln.text.strip().lower() == "lineas_detalle"), None
    )
    if start is None:
        return None
    rows: list[pdftext.Line] = []
    for line in lines[start + 1 :]:
        text = line.text.strip()
        if not text or _AMOUNT.search(text) or _DATE.search(text) or not _ROW.match(text):
            break
        rows.append(line)
    header = lines[start]
    cells = [cell for r, line in enumerate(rows, start=1) for cell in _cells(page, seed, r, line)]
    last = rows[-1] if rows else header
    return {
        "id": uid(seed, str(page.number), "lineas_detalle"),
        "label": "lineas_detalle",
        "type": "table",
        "score": 0.89,
        "xmin": px(min([header.x0] + [ln.x0 for ln in rows])),
        "ymin": px(header.top),
        "xmax": px(max([header.x1] + [ln.x1 for ln in rows])),
        "ymax": px(last.bottom),
        "page_no": page.number,
        "label_id": "label_003",
        "status": "correctly_predicted",
        "cells": cells,
    }


def _cells(page: pdftext.Page, seed: str, r: int, line: pdftext.Line) -> list[dict[str, Any]]:
    """Row *r*'s two cells: the description, then the quantity (its last word)."""
    match = _ROW.match(line.text.strip())
    assert match is not None
    desc, qty = match.group(1), match.group(2)
    split = line.x0 + (line.x1 - line.x0) * (len(desc) + 1) / max(1, len(line.text))
    columns = (
        ("descripcion", desc, line.x0, split, 0.91),
        ("cantidad", qty, split, line.x1, 0.88),
    )
    return [
        {
            "id": uid(seed, str(page.number), "lineas_detalle", str(r), str(c)),
            "row": r,
            "col": c,
            "label": col,
            "text": text,
            "score": score,
            "xmin": px(x0),
            "ymin": px(line.top),
            "xmax": px(x1),
            "ymax": px(line.bottom),
        }
        for c, (col, text, x0, x1, score) in enumerate(columns, start=1)
    ]
