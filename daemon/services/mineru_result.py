"""A MinerU-style result folder (the extracted ``full_zip_url`` zip) → the SPEC's result.

Shared by the MinerU and docparse services.  The folder is the zip's content, kept in
the work folder's ``raw/`` and copied to ``outbox/<stem>/raw/``, so:

* ``markdown``: ``full.md``, with relative links (``images/x.jpg``) rewritten to
  ``raw/images/x.jpg`` so ``document.md`` renders from the outbox folder;
* ``tables``: the ``*_content_list.json`` entries of type ``table`` — their HTML
  ``table_body`` parsed into ``columns`` (the first row) and ``rows``; ``label`` is the
  caption or ``table_N``; ``page`` is ``page_idx``;
* ``fields``: none (MinerU extracts no fields).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..errors import MalformedResponse
from .base import Normalized

MARKDOWN_NAME = "full.md"
RAW_PREFIX = "raw"

# ![alt](target "title") and <img src="target">: the two ways full.md points at images.
_MD_LINK = re.compile(r"(!?\[[^\]]*\]\()(\s*<?)([^)\s>]+)(>?[^)]*\))")
_HTML_SRC = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])([^"']+)(\2)""", re.IGNORECASE)
_ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|/|#)")


def find_markdown(raw_dir: Path) -> Path | None:
    """``full.md`` at the top, else the shallowest one (some versions nest a folder)."""
    top = raw_dir / MARKDOWN_NAME
    if top.is_file():
        return top
    found = sorted(raw_dir.rglob(MARKDOWN_NAME), key=lambda p: len(p.parts))
    if found:
        return found[0]
    mds = sorted(raw_dir.rglob("*.md"), key=lambda p: (len(p.parts), p.name))
    return mds[0] if mds else None


def origin_sha256(raw_dir: Path) -> str | None:
    """The sha256 of the original the service put into its result (``*_origin.<ext>``),
    or None when the result holds none: proof of which document a task parsed."""
    for path in sorted(raw_dir.rglob("*_origin.*")):
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
            return digest.hexdigest()
    return None


def rewrite_links(markdown: str, base: str) -> str:
    """Prefix relative link targets with *base* (``raw`` or ``raw/<subfolder>``)."""

    def fix(target: str) -> str:
        if _ABSOLUTE.match(target) or target.startswith(base + "/"):
            return target
        return f"{base}/{target.removeprefix('./')}"

    markdown = _MD_LINK.sub(
        lambda m: m.group(1) + m.group(2) + fix(m.group(3)) + m.group(4), markdown
    )
    return _HTML_SRC.sub(lambda m: m.group(1) + m.group(2) + fix(m.group(3)) + m.group(4), markdown)


class _TableParser(HTMLParser):
    """Rows of cells from an HTML table; colspan/rowspan are expanded (repeated text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[list[str]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._span = (1, 1)
        self._pending: dict[int, tuple[int, str]] = {}  # column -> (rows left, text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            self._end_row()
            self._row = []
            self._fill_pending()
        elif tag in ("td", "th"):
            if self._row is None:
                self._row = []
                self._fill_pending()
            self._end_cell()
            a = dict(attrs)
            self._span = (_int(a.get("colspan")), _int(a.get("rowspan")))
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def _fill_pending(self) -> None:
        assert self._row is not None
        while len(self._row) in self._pending:
            col = len(self._row)
            left, text = self._pending[col]
            self._row.append(text)
            if left <= 1:
                del self._pending[col]
            else:
                self._pending[col] = (left - 1, text)

    def _end_cell(self) -> None:
        if self._cell is None or self._row is None:
            return
        text = " ".join("".join(self._cell).split())
        colspan, rowspan = self._span
        for _ in range(colspan):
            col = len(self._row)
            self._row.append(text)
            if rowspan > 1:
                self._pending[col] = (rowspan - 1, text)
            self._fill_pending()
        self._cell = None

    def _end_row(self) -> None:
        self._end_cell()
        if self._row is not None:
            self._fill_pending()
            if self._row:
                self.rows.append(self._row)
        self._row = None

    def close(self) -> None:
        super().close()
        self._end_row()


def _int(value: str | None) -> int:
    try:
        return max(1, min(int(value or 1), 1000))
    except ValueError:
        return 1


def parse_table_html(html: str) -> tuple[list[str], list[list[str]]]:
    """``(columns, rows)``: the first row names the columns (MinerU's tables carry their
    header as an ordinary first row); short rows are padded to the widest."""
    parser = _TableParser()
    parser.feed(html or "")
    parser.close()
    rows = parser.rows
    if not rows:
        return [], []
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    return rows[0], rows[1:]


def _caption(entry: Mapping[str, Any]) -> str:
    cap = entry.get("table_caption") or entry.get("caption") or []
    if isinstance(cap, str):
        return cap.strip()
    if isinstance(cap, list):
        return " ".join(str(c).strip() for c in cap if str(c).strip())
    return ""


def tables_from_content_list(raw_dir: Path) -> list[dict[str, Any]]:
    """Every ``type: table`` entry of ``*_content_list.json``, in reading order."""
    tables: list[dict[str, Any]] = []
    for path in sorted(raw_dir.rglob("*_content_list.json")):
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MalformedResponse(f"{path.name} in the result is not valid JSON: {exc}") from exc
        if not isinstance(entries, list):
            continue
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("type") != "table":
                continue
            columns, rows = parse_table_html(str(entry.get("table_body") or ""))
            tables.append(
                {
                    "label": _caption(entry) or f"table_{len(tables) + 1}",
                    "page": entry.get("page_idx"),
                    "columns": columns,
                    "rows": rows,
                }
            )
        break  # one content list per result; a stray second copy would duplicate tables
    return tables


def normalize(
    raw_dir: Path, remote: Mapping[str, Any], *, markdown_name: str | None = None
) -> Normalized:
    """The normalized result of the result folder *raw_dir* (pure: reads files only)."""
    md_path = raw_dir / markdown_name if markdown_name else find_markdown(raw_dir)
    if md_path is None or not md_path.is_file():
        raise MalformedResponse(f"the result has no Markdown ({MARKDOWN_NAME})")
    rel = md_path.parent.relative_to(raw_dir).as_posix()
    base = RAW_PREFIX if rel == "." else f"{RAW_PREFIX}/{rel}"
    markdown = rewrite_links(md_path.read_text(encoding="utf-8", errors="replace"), base)
    return Normalized(
        remote=dict(remote), fields=[], tables=tables_from_content_list(raw_dir), markdown=markdown
    )
