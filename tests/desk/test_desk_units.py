"""The review desk's pure parts: which fields need review, what an approval writes, the
export's numbers and files, the search query, the guard's rules, the settings."""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from daemon import config, export, review
from daemon.desk.auth import csrf_for, host_allowed, installation_token
from daemon.errors import ConfigError
from daemon.outbox.markdown import render_extraction
from daemon.settings import ReviewSettings
from daemon.store.sqlite.desk import fts_query

FIELDS = [
    {"label": "fecha", "text": "23/12/2025", "score": 0.95, "page": 0, "box": [1, 2, 3, 4]},
    {"label": "total", "text": "45.99", "score": 0.92, "page": 0, "box": [5, 6, 7, 8]},
]


# --- review ---------------------------------------------------------------------------------


def test_a_low_score_or_a_missing_required_label_needs_review() -> None:
    assert review.needs_review(FIELDS, ReviewSettings(min_score=0.8)) == []
    assert review.needs_review(FIELDS, ReviewSettings(min_score=0.93)) == ["total"]
    required = ReviewSettings(min_score=0.5, required=("total", "nif"))
    assert review.needs_review(FIELDS, required) == ["nif"]
    # found means "holds text": an empty value is not found
    empty = [{"label": "nif", "text": "  ", "score": 0.99}]
    assert review.needs_review(empty, required) == ["total", "nif"]
    # a score that is not a number (None, a string, a bool) never counts as low
    odd = [{"label": "x", "text": "1", "score": s} for s in (None, "0.1", True)]
    assert review.needs_review(odd, ReviewSettings(min_score=0.9)) == []
    assert review.initial(FIELDS, ReviewSettings(min_score=0.93)) == {
        "state": "pending",
        "fields": ["total"],
    }
    assert review.initial(FIELDS, ReviewSettings()) == {"state": "none"}


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {"fields": []},
        {"fields": "total=1"},
        {"fields": [{"label": 3, "text": "1"}]},
        {"fields": [{"label": "", "text": "1"}]},
        {"fields": [{"label": "total"}]},
        {"fields": [{"label": "total", "text": 46.99}]},
        {"fields": [{"label": "total", "text": "x" * 5000}]},
        {"fields": ["total"]},
        {"fields": [{"label": "t", "text": "1"}] * 201},
    ],
)
def test_corrections_from_a_request_are_checked(body: Any) -> None:
    with pytest.raises(ValueError):
        review.check_corrections(body)


def test_an_approval_keeps_the_models_value_and_adds_what_it_missed() -> None:
    result = {"source": {"name": "recibo.pdf"}, "fields": FIELDS, "tables": []}
    corrections = [{"label": "total", "text": "46.99"}, {"label": "nif", "text": "B123"}]
    outcome = {"state": "approved", "by": "dashboard", "at": 5.0, "sent": True}
    after = review.corrected(result, corrections, outcome)
    by_label = {f["label"]: f for f in after["fields"]}
    assert by_label["total"]["text"] == "46.99" and by_label["total"]["original"] == "45.99"
    assert by_label["total"]["corrected"] is True
    assert by_label["nif"] == {
        "label": "nif",
        "text": "B123",
        "score": None,
        "page": None,
        "box": None,
        "original": None,
        "corrected": True,
    }
    assert "original" not in by_label["fecha"]
    assert after["review"] == {**outcome, "corrected": ["total", "nif"]}
    assert result["fields"][1]["text"] == "45.99"  # the input is left alone
    # approving again keeps the model's first value, not the previous correction
    again = review.corrected(after, [{"label": "total", "text": "47.00"}], outcome)
    assert {f["label"]: f for f in again["fields"]}["total"]["original"] == "45.99"


def test_a_result_folder_is_one_name_inside_the_outbox(tmp_path: Path) -> None:
    assert review.result_folder(tmp_path, "recibo (2)") == tmp_path / "recibo (2)"
    for bad in (None, "", ".", "..", "../etc", "/etc", "a/b", "a\0b"):
        with pytest.raises(ValueError):
            review.result_folder(tmp_path, bad)


def test_markdown_is_rendered_again_only_when_docinbox_rendered_it() -> None:
    before = {"source": {"name": "r.pdf"}, "fields": FIELDS, "tables": []}
    after = review.corrected(before, [{"label": "total", "text": "46.99"}], {})
    ours = render_extraction("r.pdf", FIELDS, [])
    new, rewritten = review.markdown_for(after, before, ours)
    assert rewritten and "46.99" in new and "45.99" not in new
    theirs = "# A report\n\nThe total was 45.99.\n"
    assert review.markdown_for(after, before, theirs) == (theirs, False)


# --- export ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "decimal", "value"),
    [
        ("45,99", None, 45.99),
        ("45.99", None, 45.99),
        ("1.234,56", None, 1234.56),
        ("1,234.56", None, 1234.56),
        ("1 234", None, 1234),
        ("1.234.567", None, 1234567),
        ("€ 45,99", None, 45.99),
        ("45,99 €", None, 45.99),
        ("USD 10.50", None, 10.5),
        ("-3", None, -3),
        ("1,234", None, "1,234"),  # thousands or decimals? the document must say
        ("1,234", ",", 1.234),
        ("1,234", ".", 1234),
        ("007", None, "007"),  # a code, not a quantity
        ("23/12/2025", None, "23/12/2025"),
        ("50L", None, "50L"),
        ("15%", None, "15%"),
        ("", None, ""),
    ],
)
def test_numbers_are_read_the_documents_way(text: str, decimal: str | None, value: Any) -> None:
    assert export.as_number(text, decimal) == value
    assert type(export.as_number(text, decimal)) is type(value)


def test_the_documents_decimal_mark_comes_from_values_that_say_it() -> None:
    assert export.decimal_mark(["45,99", "23/12/2025"]) == ","
    assert export.decimal_mark(["45.99", "1,234"]) == "."
    assert export.decimal_mark(["1.234,5"]) == ","
    assert export.decimal_mark(["1.234", "abc"]) is None


def _export() -> export.Export:
    import datetime as dt

    docs = [
        export.Document(
            source="recibo.pdf",
            folder="facturas",
            service="nanonets",
            date=dt.datetime(2025, 12, 23, 10, 0),
            review="approved",
            fields={"fecha": "23/12/2025", "total": 45.99, "nota": '=HYPERLINK("x")'},
            tables=[
                {"label": "lineas", "page": 0, "columns": ["d", "q"], "rows": [["Gasoil", 50]]}
            ],
        ),
        export.Document(
            source="añejo.pdf",
            folder="",
            service="mineru",
            date=None,
            review="none",
            fields={"total": 12},
        ),
    ]
    return export.Export(docs, ["fecha", "total", "nota"], ["d", "q"])


def test_csv_opens_as_utf8_with_numbers_and_no_formulas() -> None:
    main, tables = export.to_csv(_export())
    assert main.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8 only then
    rows = list(csv.reader(io.StringIO(main.decode("utf-8-sig"))))
    assert rows[0] == ["source", "folder", "service", "date", "review", "fecha", "total", "nota"]
    assert rows[1][:7] == ["recibo.pdf", "facturas", "nanonets", "2025-12-23", "approved",
                           "23/12/2025", "45.99"]  # fmt: skip
    assert rows[1][7] == '\'=HYPERLINK("x")'  # text, never a formula
    assert rows[2][0] == "añejo.pdf" and rows[2][6] == "12"
    table_rows = list(csv.reader(io.StringIO(tables.decode("utf-8-sig"))))
    assert table_rows == [
        ["source", "table", "page", "row", "d", "q"],
        ["recibo.pdf", "lineas", "0", "1", "Gasoil", "50"],
    ]


def test_xlsx_has_numbers_as_numbers_and_text_as_text(tmp_path: Path) -> None:
    data = export.to_xlsx(_export())
    book = load_workbook(io.BytesIO(data))
    assert book.sheetnames == ["Documents", "Tables"]
    docs = [list(r) for r in book["Documents"].iter_rows(values_only=True)]
    assert docs[1][6] == 45.99 and isinstance(docs[1][6], float)
    assert docs[1][7] == '=HYPERLINK("x")'
    assert book["Documents"].cell(row=2, column=8).data_type == "s"
    assert [list(r) for r in book["Tables"].iter_rows(values_only=True)][1] == [
        "recibo.pdf", "lineas", 0, 1, "Gasoil", 50]  # fmt: skip


def test_jsonl_is_one_document_a_line() -> None:
    lines = export.to_jsonl(_export()).decode("utf-8").splitlines()
    first = json.loads(lines[0])
    assert first["fields"]["total"] == 45.99 and first["date"] == "2025-12-23T10:00:00"
    assert json.loads(lines[1])["source"] == "añejo.pdf"


def test_export_files_sit_beside_each_other(tmp_path: Path) -> None:
    written = export.write(export.render(_export(), "csv"), tmp_path / "out.csv")
    assert [p.name for p in written] == ["out.csv", "out-tables.csv"]
    with pytest.raises(export.ExportError):
        export.render(_export(), "ods")
    with pytest.raises(export.ExportError):
        export.parse_since("yesterday")


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("gasoil", '"gasoil"*'),
        ("45.99 Gasoil", '"45 99"* "Gasoil"*'),
        ('"*) OR 1=1 --', '"OR"* "1 1"*'),
        ("NEAR(a b) AND c:", '"NEAR a"* "b"* "AND"* "c"*'),
        ("--- ***", None),
        ("", None),
    ],
)
def test_a_search_becomes_quoted_phrases(text: str, query: str | None) -> None:
    assert fts_query(text) == query


# --- the guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "listen", "ok"),
    [
        ("127.0.0.1:8767", "127.0.0.1", True),
        ("localhost:8767", "127.0.0.1", True),
        ("LOCALHOST:8767", "127.0.0.1", True),
        ("[::1]:8767", "127.0.0.1", True),
        ("127.0.0.1:8768", "127.0.0.1", False),  # another port
        ("127.0.0.1", "127.0.0.1", False),  # no port: 80
        ("evil.example:8767", "127.0.0.1", False),  # DNS rebinding
        ("localhost.evil.example:8767", "127.0.0.1", False),
        ("127.0.0.1:8767@evil", "127.0.0.1", False),
        ("user@127.0.0.1:8767", "127.0.0.1", False),
        ("", "127.0.0.1", False),
        ("192.168.1.10:8767", "0.0.0.0", True),  # listening everywhere: any address
        ("desk.lan:8767", "0.0.0.0", False),  # ...but no name
        ("desk.lan:8767", "desk.lan", True),  # the name it was given
        ("192.168.1.10:8767", "127.0.0.1", False),
    ],
)
def test_the_host_header_must_name_the_desk(host: str, listen: str, ok: bool) -> None:
    assert host_allowed(host, listen, 8767) is ok


def test_the_token_is_the_owners_alone_and_stays(tmp_path: Path) -> None:
    path = tmp_path / "state" / "dashboard.token"
    token = installation_token(path)
    assert len(token) >= 32 and installation_token(path) == token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)  # restored from a backup with other rights
    installation_token(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert csrf_for(token) != token and token not in csrf_for(token)
    path.write_text("short\n")
    with pytest.raises(ConfigError):
        installation_token(path)


# --- settings -------------------------------------------------------------------------------


def _load(tmp_path: Path, extra: str) -> Any:
    path = tmp_path / "config.toml"
    path.write_text(extra, "utf-8")
    return config.load(path, environ={})


def test_dashboard_and_review_settings(tmp_path: Path) -> None:
    s = _load(tmp_path, "")
    assert s.dashboard.listen == "127.0.0.1:8767"
    assert s.review == ReviewSettings(min_score=0.8, required=())
    s = _load(
        tmp_path,
        '[dashboard]\nlisten = ""\n[review]\nmin_score = 0.9\n'
        'required = ["total", "fecha", "total"]\n',
    )
    assert s.dashboard.listen == "" and s.review.required == ("total", "fecha")
    for bad, says in [
        ('[dashboard]\nlisten = "8767"\n', "dashboard.listen"),
        ("[dashboard]\nport = 1\n", "dashboard.port"),
        ("[review]\nmin_score = 2\n", "review.min_score"),
        ('[review]\nrequired = "total"\n', "review.required"),
        ("[review]\nmax = 1\n", "review.max"),
    ]:
        with pytest.raises(ConfigError, match=says):
            _load(tmp_path, bad)


# --- pages ----------------------------------------------------------------------------------


def test_pages_are_drawn_in_a_helper_and_a_hostile_file_draws_nothing(tmp_path: Path) -> None:
    import asyncio

    from PIL import Image

    from daemon.desk.pages import Pages
    from daemon.store import Job, State
    from mockserver.samples import receipt_pdf

    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "r.pdf").write_bytes(receipt_pdf())
    Image.new("RGB", (3000, 1000), "white").save(archive / "scan.png")
    (archive / "bad.pdf").write_bytes(b"%PDF-1.4\n" + b"\xff" * 5000)
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (10, 10)).save(outside)
    (archive / "link.png").symlink_to(outside)  # a link out of the archive

    def job(name: str, kind: str, pages: int = 1) -> Job:
        path = archive / name
        return Job(1, name, str(path), name, 1, 1, State.DONE, kind=kind, pages=pages)

    pages = Pages(tmp_path / "cache", [archive], timeout=60)

    async def draw() -> list[bytes | None]:
        return [
            await pages.png(job("r.pdf", "pdf"), 0),
            await pages.png(job("scan.png", "png"), 0),
            await pages.png(job("bad.pdf", "pdf"), 0),
            await pages.png(job("link.png", "png"), 0),
            await pages.png(job("r.pdf", "pdf"), 1),  # past its last page
            await pages.png(job("r.pdf", "docx"), 0),  # a kind that is never drawn
        ]

    pdf, png, bad, link, past, docx = asyncio.run(draw())
    assert pdf is not None and Image.open(io.BytesIO(pdf)).size == (1237, 1600)
    assert png is not None and Image.open(io.BytesIO(png)).size == (1600, 533)
    assert bad is None and link is None and past is None and docx is None
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [
        "r.pdf-0.png",
        "scan.png-0.png",
    ]
