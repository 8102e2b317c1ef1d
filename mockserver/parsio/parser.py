"""The demo mailbox's parser: the Nanonets demo model's fields and table, as Parsio's
parsed JSON (one key per field, a table as a list of objects).

The values come from the same place as the Nanonets demo model's (the PDF's text layer,
:mod:`mockserver.documents.pdftext`, read by :func:`mockserver.nanonets.model.predict_page`),
so a receipt parsed by either mock gives the same labels and texts.  A field the document
lacks is ``null`` and an empty table ``[]``, as AI parsers answer with every field of
their schema; the first page a field is found on wins, table rows of every page are kept
in page order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..documents import pdftext
from ..nanonets.model import DEMO_LABELS, predict_page


@dataclass(frozen=True)
class Parsed:
    """What the parser made of a file: its pages and data (None: it could not read it)."""

    kind: str | None
    pages: int
    data: dict[str, Any] | None
    sha256: str
    error: str = ""


def parse(path: Path) -> Parsed:
    """Read a stored upload; never raises for a bad file (the document then fails)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        doc = pdftext.extract(path)
    except pdftext.DocumentError as exc:
        return Parsed(None, 0, None, digest, str(exc))
    data: dict[str, Any] = {
        label.name: [] if label.kind == "table" else None for label in DEMO_LABELS
    }
    columns = {label.name: label.columns for label in DEMO_LABELS if label.kind == "table"}
    for page in doc.pages:
        for box in predict_page(page, digest):
            label = str(box["label"])
            if box["type"] == "table":
                rows: dict[int, dict[str, str]] = {}
                for cell in box["cells"]:
                    row = rows.setdefault(int(cell["row"]), dict.fromkeys(columns[label], ""))
                    row[str(cell["label"])] = str(cell["text"])
                data[label].extend(rows[r] for r in sorted(rows))
            elif data.get(label) is None:
                data[label] = str(box["ocr_text"])
    return Parsed(doc.kind, doc.page_count, data, digest)
