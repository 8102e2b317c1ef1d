"""A MinerU-style result folder (the extracted ``full_zip_url`` zip) → the SPEC's result.

Shared by the MinerU and docparse services.  The folder is the zip's content, kept in
the work folder's ``raw/`` and copied to ``outbox/<stem>/raw/``, so:

* ``markdown``: ``full.md``, with relative links (``images/x.jpg``) rewritten to
  ``raw/images/x.jpg`` so ``document.md`` renders from the outbox folder;
* ``tables``: the ``*_content_list.json`` entries of type ``table`` (``{"type": "table",
  "table_body": "<html><body><table>…", "table_caption": [...], "page_idx": n, ...}``,
  opendatalab/MinerU ``docs/en/reference/output_files.md``) — their HTML parsed into
  ``columns`` (the first row) and ``rows``; ``label`` is the caption or ``table_N``;
  ``page`` is ``page_idx`` in the *original* document's numbering (below).  Without a
  v1 list, the v2 one (``*_content_list_v2.json``: pages of ``{type, content: {html,
  table_caption}}`` blocks, commit ff2d81ad) is read;
* ``fields``: none (MinerU extracts no fields).

Layouts: the cloud zip (``full.md`` beside ``<uuid>_content_list.json`` and
``layout.json``), and a self-hosted ``mineru-api``'s (``<name>/<backend>/<name>.md`` with
``<name>_middle.json``, v3: backends ``auto``/``vlm``/``hybrid_auto``/``office``; or flat
``<name>/<name>.md``, 2.6–2.7; ``mineru/cli/output_paths.py``): the Markdown is found
wherever it is and its image links rewritten relative to its own folder.

Pages under ``page_ranges``: the open-source engine cuts the PDF before parsing
(``mineru/cli/common.py`` ``_prepare_pdf_bytes``), so ``page_idx`` restarts at 0 on the
first selected page; the cloud's behaviour is not documented.  docinbox knows the pages
it asked for, and the middle JSON lists one ``page_idx`` per page parsed: indices that
are exactly ``0..n-1`` for a selection that is not ``0..n-1`` were renumbered, and are
mapped back to the original's; indices within the selection are the original's already.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from ..errors import MalformedResponse
from .base import Normalized, PartOutput

MARKDOWN_NAME = "full.md"
RAW_PREFIX = "raw"

# ![alt](target "title") and <img src="target">: the two ways full.md points at images.
_MD_LINK = re.compile(r"(!?\[[^\]]*\]\()(\s*<?)([^)\s>]+)(>?[^)]*\))")
_HTML_SRC = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])([^"']+)(\2)""", re.IGNORECASE)
_ABSOLUTE = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|/|#)")


_RANGE_ITEM = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?$")


def selected_pages(spec: str | None, total: int | None) -> list[int] | None:
    """The 0-based pages MinerU's ``page_ranges`` *spec* selects from a *total*-page file
    ("2,4-6"; "2--2": page 2 to the second-to-last), or None: every page, or unknowable
    (no page count for a range counted from the end, or a malformed spec)."""
    if not spec or not str(spec).strip():
        return None
    chosen: set[int] = set()
    for item in str(spec).split(","):
        match = _RANGE_ITEM.match(item)
        if match is None:
            return None
        ends = [int(g) for g in match.groups() if g is not None]
        if any(n < 0 for n in ends) and not total:
            return None
        first, last = (n if n > 0 else (total or 0) + 1 + n for n in (ends[0], ends[-1]))
        top = last if total is None else min(last, total)
        chosen.update(range(max(first, 1) - 1, top))
    return sorted(chosen) or None


def page_mapper(raw_dir: Path, pages: list[int] | None) -> Callable[[Any], Any]:
    """``page_idx`` → the page's 0-based index in the original document (see the module
    doc); identity when every page was parsed or the numbering is already the original."""
    if not pages:
        return lambda idx: idx
    seen = _middle_page_indices(raw_dir)
    if not seen:
        found = (e.get("page_idx") for e in _content_entries(raw_dir))
        seen = sorted({i for i in found if isinstance(i, int) and not isinstance(i, bool)})
    renumbered = (
        bool(seen) and not set(seen) <= set(pages) and all(0 <= i < len(pages) for i in seen)
    )
    if not renumbered:
        return lambda idx: idx
    return lambda idx: pages[idx] if _is_int(idx) and 0 <= idx < len(pages) else idx


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _middle_page_indices(raw_dir: Path) -> list[int]:
    """``pdf_info[].page_idx`` of the middle JSON (``layout.json`` in the cloud zip,
    ``<name>_middle.json`` from mineru-api): one per page parsed."""
    for path in sorted(raw_dir.rglob("*_middle.json")) + sorted(raw_dir.rglob("layout.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        info = data.get("pdf_info") if isinstance(data, dict) else None
        if isinstance(info, list):
            return [
                p["page_idx"] for p in info if isinstance(p, dict) and _is_int(p.get("page_idx"))
            ]
    return []


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


def _content_list_path(raw_dir: Path) -> Path | None:
    """The result's ``*_content_list.json`` (the first: a stray second copy would
    duplicate tables)."""
    return next(iter(sorted(raw_dir.rglob("*_content_list.json"))), None)


def _content_entries(raw_dir: Path) -> list[dict[str, Any]]:
    """The entries of ``*_content_list.json`` (one per result; a stray second copy
    would duplicate tables)."""
    for path in sorted(raw_dir.rglob("*_content_list.json")):
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise MalformedResponse(f"{path.name} in the result is not valid JSON: {exc}") from exc
        if isinstance(entries, list):
            return [e for e in entries if isinstance(e, dict)]
        break
    return []


def _v2_tables(raw_dir: Path) -> list[dict[str, Any]]:
    """Table entries of ``*_content_list_v2.json`` in the v1 shape (page = position)."""
    for path in sorted(raw_dir.rglob("*_content_list_v2.json")):
        try:
            pages = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as exc:
            raise MalformedResponse(f"{path.name} in the result is not valid JSON: {exc}") from exc
        out: list[dict[str, Any]] = []
        for idx, blocks in enumerate(pages if isinstance(pages, list) else []):
            for block in blocks if isinstance(blocks, list) else []:
                if not isinstance(block, dict) or block.get("type") != "table":
                    continue
                content = block.get("content") if isinstance(block.get("content"), dict) else {}
                assert isinstance(content, dict)
                caption = [
                    c.get("content") if isinstance(c, dict) else c
                    for c in content.get("table_caption") or []
                ]
                out.append(
                    {
                        "table_body": content.get("html") or "",
                        "table_caption": [str(c) for c in caption if c],
                        "page_idx": idx,
                    }
                )
        return out
    return []


def tables_from_content_list(raw_dir: Path, pages: list[int] | None = None) -> list[dict[str, Any]]:
    """Every ``type: table`` entry of ``*_content_list.json`` (else of the v2 list), in
    reading order; *pages*: the 0-based pages ``page_ranges`` selected, to number them as
    the original does."""
    entries = [e for e in _content_entries(raw_dir) if e.get("type") == "table"]
    if not entries and not list(raw_dir.rglob("*_content_list.json")):
        entries = _v2_tables(raw_dir)
    original = page_mapper(raw_dir, pages)
    tables: list[dict[str, Any]] = []
    for entry in entries:
        columns, rows = parse_table_html(str(entry.get("table_body") or ""))
        tables.append(
            {
                "label": _caption(entry) or f"table_{len(tables) + 1}",
                "page": original(entry.get("page_idx")),
                "columns": columns,
                "rows": rows,
            }
        )
    return tables


def normalize(
    raw_dir: Path,
    remote: Mapping[str, Any],
    *,
    markdown_name: str | None = None,
    pages: list[int] | None = None,
) -> Normalized:
    """The normalized result of the result folder *raw_dir* (pure: reads files only);
    *pages*: what ``page_ranges`` selected (0-based), None for the whole document."""
    md_path = raw_dir / markdown_name if markdown_name else find_markdown(raw_dir)
    if md_path is None or not md_path.is_file():
        raise MalformedResponse(f"the result has no Markdown ({MARKDOWN_NAME})")
    rel = md_path.parent.relative_to(raw_dir).as_posix()
    base = RAW_PREFIX if rel == "." else f"{RAW_PREFIX}/{rel}"
    markdown = rewrite_links(md_path.read_text(encoding="utf-8", errors="replace"), base)
    return Normalized(
        remote=dict(remote),
        fields=[],
        tables=tables_from_content_list(raw_dir, pages),
        markdown=markdown,
    )


# --- a document parsed in parts --------------------------------------------------------

#: The content list of a document parsed in parts, in its result's ``raw/`` beside the
#: parts' folders (``*_content_list.json``: found where a whole document's is looked for).
MERGED_CONTENT_LIST = "merged_content_list.json"
#: Content-list keys that hold a path into the result folder (images of images, tables,
#: equations: opendatalab/MinerU docs/en/reference/output_files.md).
_PATH_KEYS = ("img_path", "image_path")


def merge_content_lists(parts: Sequence[PartOutput], target: Path) -> list[str]:
    """One content list for the whole document at ``target/merged_content_list.json``:
    each part's entries in page order, ``page_idx`` in the original's numbering, image
    paths into that part's folder (``part-002/images/…``), so two parts' images never
    collide.  Streamed part by part: one part's list in memory at a time."""
    out = target / MERGED_CONTENT_LIST
    tmp = target / f".{MERGED_CONTENT_LIST}.tmp"
    written = 0
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write("[")
        for part in parts:
            for entry in _renumbered(part, target):
                fh.write(",\n" if written else "\n")
                fh.write(json.dumps(entry, ensure_ascii=False))
                written += 1
        fh.write("\n]\n")
    if not written:
        tmp.unlink()
        return []
    tmp.replace(out)
    return [MERGED_CONTENT_LIST]


def _renumbered(part: PartOutput, target: Path) -> list[dict[str, Any]]:
    path = _content_list_path(part.raw)
    if path is None:
        return []
    selected = selected_pages(part.doc.options.get("page_ranges"), part.doc.pages)
    original = page_mapper(part.raw, selected)
    folder = path.parent.relative_to(target).as_posix()
    entries = []
    for entry in _content_entries(part.raw):
        entry = dict(entry)
        if _is_int(entry.get("page_idx")):
            entry["page_idx"] = original(entry["page_idx"]) + part.offset
        for key in _PATH_KEYS:
            value = entry.get(key)
            if isinstance(value, str) and value and not _ABSOLUTE.match(value):
                entry[key] = f"{folder}/{value.removeprefix('./')}"
        entries.append(entry)
    return entries
