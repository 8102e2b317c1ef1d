"""A long real document for the split tests and the bench (issue 16): copies of the
Libtasn1 manual (tests/data, 36 real pages with a text layer) up to N pages, each page
stamped with one line, ``docinbox sample page 0007 of 1000``, so a merged result can be
checked page by page: every page's text exactly once, in order."""

from __future__ import annotations

import io
import re
from functools import lru_cache
from pathlib import Path

import pypdf

SOURCE = Path(__file__).parent / "data" / "libtasn1-manual.pdf"
STAMP = re.compile(r"docinbox sample page (\d{4}) of (\d+)")


def stamp_text(page: int, total: int) -> str:
    return f"docinbox sample page {page:04d} of {total}"


def build(target: Path, pages: int) -> Path:
    """*pages* pages of the manual over and over, each stamped at its foot, at *target*."""
    from mockserver.samples import pdf_bytes

    data = SOURCE.read_bytes()
    writer = pypdf.PdfWriter()
    count = 0
    while count < pages:
        reader = pypdf.PdfReader(io.BytesIO(data))  # a fresh copy: pages are never shared
        for source in reader.pages:
            if count == pages:
                break
            count += 1
            page = writer.add_page(source)
            stamp = pypdf.PdfReader(io.BytesIO(pdf_bytes([[stamp_text(count, pages)]])))
            page.merge_transformed_page(stamp.pages[0], pypdf.Transformation().translate(0, -755))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as fh:
        writer.write(fh)
    return target


@lru_cache(maxsize=1)
def source_lines() -> tuple[str, ...]:
    """The longest line the mock reads on each page of the manual (as its own reader
    finds it): what tells that page's text apart."""
    from mockserver.documents import docmodel

    doc = docmodel.analyze(SOURCE, "pdf")
    return tuple(max((ln.text for ln in doc.pages[n].lines), key=len) for n in sorted(doc.pages))


def check_markdown(markdown: str, pages: int) -> None:
    """Every page's stamp exactly once and in order, and before each stamp the real text
    of that page (its longest line): each page's text once, in its place."""
    found = [int(m.group(1)) for m in STAMP.finditer(markdown)]
    assert found == list(range(1, pages + 1)), _first_difference(found, pages)
    lines = source_lines()
    segments = STAMP.split(markdown)[::3]  # the text before each stamp
    for number, segment in enumerate(segments[:pages], 1):
        expected = lines[(number - 1) % len(lines)]
        assert expected in segment, f"page {number}: {expected!r} not just before its stamp"


def _first_difference(found: list[int], pages: int) -> str:
    for i, (a, b) in enumerate(zip(found, range(1, pages + 1), strict=False)):
        if a != b:
            return f"stamp {i + 1} is page {a}, expected {b}"
    return f"{len(found)} stamps for {pages} pages"
