"""The result zip and the document model behind it, without HTTP."""

from __future__ import annotations

import io
import json
import re
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
        ("a.pdf", samples.multipage_pdf(601), -60006),  # the seed's 600 by default
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


@pytest.mark.parametrize(("numbering", "third"), [("original", 2), ("restart", 1)])
def test_zip_entries(tmp_path: Path, numbering: str, third: int) -> None:
    origin = write(tmp_path, "o.pdf", samples.multipage_pdf(3))
    doc = docmodel.analyze(origin, "pdf", "1,3")
    out = resultzip.build(
        tmp_path / "r.zip", "tid", origin, doc, extra_formats=["latex"], numbering=numbering
    )
    zf = zipfile.ZipFile(out)
    assert sorted(zf.namelist()) == sorted(
        [
            "full.md",
            "layout.json",
            "tid_content_list.json",
            "tid_content_list_v2.json",
            "tid_model.json",
            "tid_origin.pdf",
            "full.tex",
        ]
    )
    content = json.loads(zf.read("tid_content_list.json"))
    assert [(b["page_idx"], b["text"]) for b in content] == [
        (0, "Page 1"),
        (0, "This is page 1 of 3."),
        (third, "Page 3"),
        (third, "This is page 3 of 3."),
    ]
    assert [b.get("text_level") for b in content] == [1, None, 1, None]
    layout = json.loads(zf.read("layout.json"))
    assert [p["page_idx"] for p in layout["pdf_info"]] == [0, third]
    model = json.loads(zf.read("tid_model.json"))
    assert [p["page_info"]["page_no"] for p in model] == [0, third]
    v2 = json.loads(zf.read("tid_content_list_v2.json"))
    assert [[b["type"] for b in page] for page in v2] == [["title", "paragraph"]] * 2
    assert v2[1][0]["content"] == {
        "title_content": [{"type": "text", "content": "Page 3"}],
        "level": 1,
    }
    assert layout["pdf_info"][0]["para_blocks"][0]["type"] == "title"
    assert "\\section*{Page 3}" in zf.read("full.tex").decode()
    assert not (tmp_path / "r.zip.part").exists()


def test_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docmodel, "MAX_BYTES", 100)
    path = write(tmp_path, "a.pdf", samples.receipt_pdf())
    with pytest.raises(DocError) as info:
        docmodel.analyze(path, "pdf")
    assert info.value.code == -60005


def test_a_table_layout_becomes_a_table_entry(tmp_path: Path) -> None:
    """MinerU's table entry (opendatalab/MinerU docs/en/reference/output_files.md)."""
    origin = write(tmp_path, "t.pdf", samples.table_pdf(pages_before=1))
    doc = docmodel.analyze(origin, "pdf")
    zf = zipfile.ZipFile(resultzip.build(tmp_path / "r.zip", "tid", origin, doc))
    content = json.loads(zf.read("tid_content_list.json"))
    [table] = [b for b in content if b["type"] == "table"]
    assert set(table) == {
        "type",
        "img_path",
        "table_caption",
        "table_footnote",
        "table_body",
        "bbox",
        "page_idx",
    }
    assert table["page_idx"] == 1
    assert table["table_caption"] == ["Tabla 1: Consumo por producto"]
    assert table["table_footnote"] == []
    assert table["table_body"] == (
        "<html><body><table><tr><td>Producto</td><td>Unidades</td><td>Precio</td></tr>"
        "<tr><td>Gasoil</td><td>50</td><td>1.45</td></tr>"
        "<tr><td>AdBlue</td><td>10</td><td>0.80</td></tr></table></body></html>"
    )
    assert re.fullmatch(r"images/[0-9a-f]{64}\.jpg", table["img_path"])
    assert zf.read(table["img_path"])[:3] == b"\xff\xd8\xff"
    texts = [b["text"] for b in content if b["type"] == "text"]
    assert texts == ["Page 1", "Informe de consumo", "Fin del informe"]  # rows are not text
    md = zf.read("full.md").decode()
    assert "Tabla 1: Consumo por producto\n\n<html><body><table><tr><td>Producto" in md
    v2 = json.loads(zf.read("tid_content_list_v2.json"))
    [v2_table] = [b for b in v2[1] if b["type"] == "table"]
    assert v2_table["content"]["html"] == table["table_body"]
    assert v2_table["content"]["table_type"] == "simple_table"
    layout = json.loads(zf.read("layout.json"))
    assert "table" in [b["type"] for b in layout["pdf_info"][1]["para_blocks"]]


def test_image_entries_use_image_caption_keys(tmp_path: Path) -> None:
    """Since opendatalab/MinerU commit d9b5d004 (2025-07): image_caption/image_footnote."""
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x08\x08\x02"
        b"\x00\x00\x00\x00\x00\x00\x00"
    )
    origin = write(tmp_path, "f.png", png)
    doc = docmodel.analyze(origin, "png")
    zf = zipfile.ZipFile(resultzip.build(tmp_path / "r.zip", "tid", origin, doc))
    [image] = json.loads(zf.read("tid_content_list.json"))
    assert image["image_caption"] == [] and image["image_footnote"] == []
    assert "img_caption" not in image


@pytest.mark.parametrize(
    ("layout", "md", "middle", "v2"),
    [
        ("mineru-api", "informe/auto/informe.md", "informe/auto/informe_middle.json", True),
        ("mineru-api-flat", "informe/informe.md", "informe/informe_middle.json", False),
    ],
)
def test_self_hosted_layouts(tmp_path: Path, layout: str, md: str, middle: str, v2: bool) -> None:
    """opendatalab/MinerU mineru/cli/output_paths.py (v3) and tags mineru-2.6.8/2.7.6."""
    origin = write(tmp_path, "t.pdf", samples.table_pdf())
    doc = docmodel.analyze(origin, "pdf")
    out = resultzip.build(
        tmp_path / "r.zip", "tid", origin, doc, layout_name=layout, name="informe"
    )
    names = set(zipfile.ZipFile(out).namelist())
    folder = md.rsplit("/", 1)[0]
    assert {
        md,
        middle,
        f"{folder}/informe_content_list.json",
        f"{folder}/informe_origin.pdf",
    } <= names
    assert (f"{folder}/informe_content_list_v2.json" in names) is v2
    assert not any(n.startswith("full") or n == "layout.json" for n in names)
    assert any(n.startswith(f"{folder}/images/") for n in names)
