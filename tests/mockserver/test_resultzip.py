"""The result zip and the document model behind it, without HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from mockserver import samples
from mockserver.documents import docmodel, resultzip
from mockserver.documents.docmodel import DocError


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_pdf_lines_and_boxes(tmp_path: Path) -> None:
    doc = docmodel.analyze(write(tmp_path, "r.pdf", samples.receipt_pdf()), "pdf")
    assert doc.kind == "pdf" and doc.total_pages == 1
    page = doc.pages[1]
    assert [line.text for line in page.lines] == samples.receipt_lines()
    first = page.lines[0]
    # samples.pdf_bytes writes the first line at x=72, baseline y=770 on a 612x792 page
    assert first.bbox[0] == 72.0
    assert 792 - 770 - 12 <= first.bbox[1] < first.bbox[3] <= 792 - 770 + 4
    assert docmodel.scale_bbox(first.bbox, page)[0] == round(72 * 1000 / 612)


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("a.pdf", b"", -60004),
        ("a.pdf", b"GIF89a....", -60003),
        ("a.png", b"%PDF-1.4", -60003),
        ("a.txt", b"hello", -60002),
        ("a.docx", b"PK\x03\x04 not a zip", -60003),
        ("a.pdf", samples.multipage_pdf(601), -60006),
    ],
)
def test_refusals(tmp_path: Path, name: str, data: bytes, code: int) -> None:
    with pytest.raises(DocError) as info:
        docmodel.analyze(write(tmp_path, name, data), docmodel.extension(name))
    assert info.value.code == code
    assert info.value.message == docmodel.MESSAGES[code]


def test_six_hundred_pages_are_fine(tmp_path: Path) -> None:
    doc = docmodel.analyze(write(tmp_path, "a.pdf", samples.multipage_pdf(600)), "pdf", "-1")
    assert doc.total_pages == 600 and list(doc.pages) == [600]


def test_pptx_is_one_page_per_slide(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n, text in ((2, "Second"), (1, "First"), (10, "Tenth")):
            zf.writestr(
                f"ppt/slides/slide{n}.xml",
                f"<p:sld><a:p><a:r><a:t>{text}</a:t></a:r></a:p></p:sld>",
            )
    doc = docmodel.analyze(write(tmp_path, "s.pptx", buf.getvalue()), "pptx")
    assert doc.total_pages == 3
    assert [doc.pages[n].lines[0].text for n in (1, 2, 3)] == ["First", "Second", "Tenth"]


def test_ole_doc_is_one_page(tmp_path: Path) -> None:
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504
    doc = docmodel.analyze(write(tmp_path, "carta.doc", ole), "doc")
    assert doc.total_pages == 1 and doc.pages[1].lines[0].text == "carta"


def test_zip_entries(tmp_path: Path) -> None:
    origin = write(tmp_path, "o.pdf", samples.multipage_pdf(3))
    doc = docmodel.analyze(origin, "pdf", "1,3")
    out = resultzip.build(tmp_path / "r.zip", "tid", origin, doc, extra_formats=["latex"])
    zf = zipfile.ZipFile(out)
    assert sorted(zf.namelist()) == sorted(
        [
            "full.md",
            "layout.json",
            "tid_content_list.json",
            "tid_model.json",
            "tid_origin.pdf",
            "full.tex",
        ]
    )
    content = json.loads(zf.read("tid_content_list.json"))
    assert [(b["page_idx"], b["text"]) for b in content] == [
        (0, "Page 1"),
        (0, "This is page 1 of 3."),
        (2, "Page 3"),
        (2, "This is page 3 of 3."),
    ]
    assert [b.get("text_level") for b in content] == [1, None, 1, None]
    layout = json.loads(zf.read("layout.json"))
    assert [p["page_idx"] for p in layout["pdf_info"]] == [0, 2]
    assert layout["pdf_info"][0]["para_blocks"][0]["type"] == "title"
    assert "\\section*{Page 3}" in zf.read("full.tex").decode()
    assert not (tmp_path / "r.zip.part").exists()


def test_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docmodel, "MAX_BYTES", 100)
    path = write(tmp_path, "a.pdf", samples.receipt_pdf())
    with pytest.raises(DocError) as info:
        docmodel.analyze(path, "pdf")
    assert info.value.code == -60005
