"""``docinbox export`` and the desk's download: the results as a spreadsheet.

One row per document — source name, folder, service, date, review state, then one
column per field label found across the selection (first seen first) — and the tables'
rows apart: a second sheet (xlsx), a second file (csv: ``NAME-tables.csv``), or inside
each line (jsonl).  A spreadsheet opens either without fixes: CSV is UTF-8 with a BOM
(Excel reads it as UTF-8 only then), and a value the model read as a number in the
document's own way of writing them (``45,99``, ``45.99``, ``1.234,56``) is written as a
number.  A document's text is never a formula: a cell that would start one (``=``,
``+``, ``-``, ``@``) is written as text, with a leading apostrophe in CSV (OWASP's
advice on CSV injection).

The selection comes from the store (done documents; ``--folder`` a glob as in
``[[routes]]``, ``--since`` a date, ``--state done|approved``); the values from each
result's ``result.json`` — the outbox is the truth, corrections included.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .docfile import display_name
from .errors import DocinboxError
from .review import read_result, result_folder
from .router import folder_matches
from .store import Job, State, Store

FORMATS = ("csv", "xlsx", "jsonl")
STATES = ("done", "approved")
BASE_COLUMNS = ("source", "folder", "service", "date", "review")
TABLE_COLUMNS = ("source", "table", "page", "row")
#: What a spreadsheet would take for the start of a formula.
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:[.,\u00a0 ']\d{3})+|\d+)(?:[.,]\d+)?")
_MONEY = r"(?:[€$£¥]|EUR|USD|GBP)"
_CURRENCY = re.compile(rf"^{_MONEY}?\s*(.*?)\s*{_MONEY}?$", re.IGNORECASE)


class ExportError(DocinboxError):
    code = "export"
    hint = "Check the options of docinbox export (docinbox export --help)."


@dataclass(frozen=True)
class Selection:
    """Which documents an export takes (all done ones by default)."""

    folder: str | None = None
    since: float | None = None  # Unix seconds
    state: str = "done"  # done: every done document; approved: only approved ones


@dataclass
class Document:
    """One exported document."""

    source: str
    folder: str
    service: str
    date: dt.datetime | None
    review: str
    fields: dict[str, Any] = field(default_factory=dict)
    tables: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Export:
    documents: list[Document]
    labels: list[str]
    columns: list[str]  # the union of the tables' columns

    def rows(self) -> Iterator[list[Any]]:
        for d in self.documents:
            when = d.date.date().isoformat() if d.date else ""
            yield [d.source, d.folder, d.service, when, d.review] + [
                d.fields.get(label, "") for label in self.labels
            ]

    def table_rows(self) -> Iterator[list[Any]]:
        for d in self.documents:
            for t in d.tables:
                cols = list(t.get("columns") or [])
                for n, row in enumerate(t.get("rows") or [], start=1):
                    cells = dict(zip(cols, row, strict=False))
                    yield [d.source, t.get("label") or "", t.get("page"), n] + [
                        cells.get(c, "") for c in self.columns
                    ]


def parse_since(text: str) -> float:
    """``YYYY-MM-DD`` (local midnight) or an ISO date and time → Unix seconds."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ExportError(f"--since: expected a date such as 2025-12-23, got {text!r}") from exc
    return when.timestamp()


def select(store: Store, selection: Selection) -> list[Job]:
    """The done documents an export takes, oldest first."""
    if selection.state not in STATES:
        raise ExportError(f"--state: expected one of {', '.join(STATES)}, got {selection.state!r}")
    jobs = [j for j in store.jobs(states=(State.DONE,)) if j.result_dir]
    if selection.folder:
        jobs = [j for j in jobs if folder_matches(selection.folder, display_name(j.rel_path))]
    if selection.since is not None:
        since = selection.since
        jobs = [j for j in jobs if (j.finished_at or j.updated_at) >= since]
    if selection.state == "approved":
        results = store.results(j.id for j in jobs)
        jobs = [
            j for j in jobs if j.id in results and results[j.id].review.get("state") == "approved"
        ]
    return jobs


def gather(outbox: Path, jobs: Sequence[Job]) -> Export:
    """(Blocking: reads each result.json) the export of *jobs*."""
    documents: list[Document] = []
    labels: dict[str, None] = {}
    columns: dict[str, None] = {}
    for job in jobs:
        try:
            result, _md = read_result(result_folder(outbox, job.result_dir))
        except (OSError, ValueError):
            continue  # its folder was moved or deleted: nothing to export
        doc = _document(job, result)
        labels.update(dict.fromkeys(doc.fields))
        for t in doc.tables:
            columns.update(dict.fromkeys(str(c) for c in t.get("columns") or []))
        documents.append(doc)
    return Export(documents, list(labels), list(columns))


def _document(job: Job, result: Mapping[str, Any]) -> Document:
    rel = display_name(job.rel_path)
    fields_list = [f for f in result.get("fields") or [] if isinstance(f, dict)]
    texts = [str(f.get("text") or "") for f in fields_list]
    decimal = decimal_mark(texts)
    values: dict[str, Any] = {}
    for f in fields_list:
        label = str(f.get("label") or "")
        if label and label not in values:  # the first of a label (a later page repeats it)
            values[label] = as_number(str(f.get("text") or ""), decimal)
    review = result.get("review") if isinstance(result.get("review"), dict) else {}
    when = job.finished_at or job.updated_at
    tables = [t for t in result.get("tables") or [] if isinstance(t, dict)]
    return Document(
        source=str((result.get("source") or {}).get("name") or display_name(job.name)),
        folder=rel.rsplit("/", 1)[0] if "/" in rel else "",
        service=str(result.get("service") or job.service or ""),
        date=dt.datetime.fromtimestamp(when) if when else None,
        review=str((review or {}).get("state") or "none"),
        fields=values,
        tables=[_numbers_in_table(t, decimal) for t in tables],
    )


def _numbers_in_table(table: Mapping[str, Any], decimal: str | None) -> dict[str, Any]:
    rows = [
        [as_number(str(v), decimal) for v in row]
        for row in table.get("rows") or []
        if isinstance(row, list)
    ]
    return {**table, "rows": rows}


# --- numbers ---------------------------------------------------------------------------------


def decimal_mark(texts: Iterable[str]) -> str | None:
    """The document's decimal mark, from values that can only be read one way: a
    separator followed by one or two digits at the end (``45,99`` → ``,``), or the
    last of two different separators (``1.234,56`` → ``,``).  None when none says."""
    votes = {",": 0, ".": 0}
    for text in texts:
        core = _strip_currency(text)
        if not _NUMBER.fullmatch(core):
            continue
        marks = [c for c in core if c in ",."]
        if len(set(marks)) == 2 or (marks and re.search(r"[.,]\d{1,2}$", core)):
            votes[marks[-1]] += 1
    if votes[","] == votes["."]:
        return None
    return "," if votes[","] > votes["."] else "."


def as_number(text: str, decimal: str | None = None) -> Any:
    """*text* as an int or float when it is a number written the document's way
    (*decimal*: its decimal mark, or None when unknown), else the text unchanged.
    ``1,234`` stays text when the document does not say which mark is decimal;
    ``00123`` (a code, not a quantity) and dates stay text."""
    core = _strip_currency(text)
    if not core or not _NUMBER.fullmatch(core):
        return text
    sign = -1 if core.startswith("-") else 1
    body = core.lstrip("+-")
    marks = [c for c in body if not c.isdigit()]
    if not marks:
        return text if len(body) > 1 and body.startswith("0") else sign * int(body)
    last = marks[-1]
    head, tail = body.rsplit(last, 1)
    if last in ",." and marks.count(last) == 1:
        if len(tail) == 3 and len(set(marks)) == 1:  # 1,234 / 1.234: which is it?
            if decimal is None:
                return text
            is_decimal = last == decimal
        else:  # 45,99 / 1.234,56 / 1,5
            is_decimal = True
    else:  # 1.234.567 / 1 234: only thousands
        is_decimal = False
    whole = re.sub(r"\D", "", head)
    if is_decimal:
        return sign * float(f"{whole or '0'}.{tail}")
    return sign * int(whole + tail)


def _strip_currency(text: str) -> str:
    m = _CURRENCY.match(text.strip().replace("\u00a0", " "))
    return m.group(1) if m else text.strip()


# --- writers ---------------------------------------------------------------------------------


def _cell_text(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def to_csv(export: Export) -> tuple[bytes, bytes]:
    """(documents, tables) as CSV: UTF-8 with a BOM, numbers as numbers."""

    def sheet(header: Sequence[str], rows: Iterable[list[Any]]) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_cell_text(v) for v in row])
        return ("\ufeff" + out.getvalue()).encode("utf-8", "backslashreplace")

    main = sheet([*BASE_COLUMNS, *export.labels], export.rows())
    tables = sheet([*TABLE_COLUMNS, *export.columns], export.table_rows())
    return main, tables


def to_jsonl(export: Export) -> bytes:
    lines = []
    for d in export.documents:
        lines.append(
            json.dumps(
                {
                    "source": d.source,
                    "folder": d.folder,
                    "service": d.service,
                    "date": d.date.isoformat(timespec="seconds") if d.date else None,
                    "review": d.review,
                    "fields": d.fields,
                    "tables": d.tables,
                },
                ensure_ascii=False,
            )
        )
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8", "backslashreplace")


def to_xlsx(export: Export) -> bytes:
    """A workbook: "Documents", then "Tables".  Every string cell is typed as text, so
    nothing a document says becomes a formula."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    for title, header, rows in (
        ("Documents", [*BASE_COLUMNS, *export.labels], export.rows()),
        ("Tables", [*TABLE_COLUMNS, *export.columns], export.table_rows()),
    ):
        sheet = book.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=_clean_xml(value))
                if isinstance(value, str):
                    cell.data_type = "s"  # never "f": a document's text is not a formula
                cells.append(cell)
            sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _clean_xml(value: Any) -> Any:
    """Control characters XML cannot hold (openpyxl refuses them) become spaces."""
    if isinstance(value, str):
        return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", value)
    return value


def render(export: Export, fmt: str) -> dict[str, bytes]:
    """The files of one export by suffix: ``""`` the main one, ``"-tables"`` the CSV's
    second file."""
    if fmt == "csv":
        main, tables = to_csv(export)
        return {"": main, "-tables": tables}
    if fmt == "xlsx":
        return {"": to_xlsx(export)}
    if fmt == "jsonl":
        return {"": to_jsonl(export)}
    raise ExportError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")


def write(files: Mapping[str, bytes], target: Path) -> list[Path]:
    """Write *files* beside each other (``out.csv``, ``out-tables.csv``); returns them."""
    written = []
    for suffix, data in files.items():
        path = target.with_name(target.stem + suffix + target.suffix) if suffix else target
        try:
            path.write_bytes(data)
        except OSError as exc:
            raise ExportError(
                f"cannot write {path}: {exc.strerror or exc}", hint="Choose another -o FILE."
            ) from exc
        written.append(path)
    return written
