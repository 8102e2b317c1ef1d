"""Markdown for services that answer with fields and tables rather than a document."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render_extraction(
    name: str, fields: Sequence[Mapping[str, Any]], tables: Sequence[Mapping[str, Any]]
) -> str:
    out = [f"# {_cell(name)}", ""]
    if fields:
        out += ["## Fields", ""]
        out += _table(
            ["Field", "Value", "Score", "Page"],
            [
                [
                    f.get("label"),
                    f.get("text"),
                    "" if f.get("score") is None else f"{float(f['score']):.2f}",
                    "" if f.get("page") is None else int(f["page"]) + 1,
                ]
                for f in fields
            ],
        )
        out.append("")
    for t in tables:
        page = t.get("page")
        where = f" (page {int(page) + 1})" if page is not None else ""
        out += [f"## {_cell(t.get('label') or 'Table')}{where}", ""]
        out += _table(list(t.get("columns") or []), list(t.get("rows") or []))
        out.append("")
    if not fields and not tables:
        out += ["_The service found no fields or tables in this document._", ""]
    return "\n".join(out)
