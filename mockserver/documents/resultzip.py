"""The result zip MinerU's ``full_zip_url`` points at, built from a :class:`Document`.

Layout (MinerU's output-files reference, opendatalab/MinerU docs/en/reference/output_files.md,
and clients that unpack the cloud zip, which find ``full.md``, ``<uuid>_origin.pdf`` and
``images/`` side by side):

``full.md``
    The Markdown: per page, the heading as ``# text`` then each line as a paragraph;
    an image as ``![](images/<sha256>.<ext>)``.
``layout.json``
    The middle JSON: ``{"pdf_info": [{"page_idx", "page_size", "para_blocks",
    "discarded_blocks"}], "_backend", "_version_name"}`` with boxes in page units.
``<id>_content_list.json``
    The flat reading-order list: ``{"type": "text", "text", "text_level"?, "bbox",
    "page_idx"}`` or ``{"type": "image", "img_path", "img_caption", "img_footnote",
    "bbox", "page_idx"}``. ``text_level`` appears on headings only (as MinerU omits it for
    body text); ``bbox`` is scaled to 0–1000 of the page; ``page_idx`` is the 0-based
    index of the page in the *original* document (so page_ranges keep true page numbers).
``<id>_model.json``
    Pipeline-style raw detections per page: ``{"layout_dets": [{"category_id", "poly",
    "score"}], "page_info": {"page_no", "width", "height"}}`` (category 0 title, 1 text,
    3 image, as in MinerU's CategoryType).
``<id>_origin.<ext>``
    The file as received.
``images/``
    For images, the picture itself named by its SHA-256.
``full.docx`` / ``full.html`` / ``full.tex``
    Only when ``extra_formats`` asked for ``docx`` / ``html`` / ``latex``. The names are the
    mock's choice: the seed only says these formats are exported.
"""

from __future__ import annotations

import hashlib
import html
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .docmodel import Document, Page, scale_bbox

VERSION_NAME = "2.5.4"
EXTRA_FORMATS = ("docx", "html", "latex")


def _blocks(doc: Document, image_name: str | None) -> Iterable[tuple[int, Page, dict[str, Any]]]:
    """Every block in reading order as (page number, page, content-list entry)."""
    for number in sorted(doc.pages):
        page = doc.pages[number]
        if page.image and image_name:
            yield (
                number,
                page,
                {
                    "type": "image",
                    "img_path": f"images/{image_name}",
                    "img_caption": [],
                    "img_footnote": [],
                    "bbox": [0, 0, 1000, 1000],
                    "page_idx": number - 1,
                },
            )
        for i, line in enumerate(page.lines):
            entry: dict[str, Any] = {"type": "text", "text": line.text}
            if i == 0:
                entry["text_level"] = 1
            entry["bbox"] = scale_bbox(line.bbox, page)
            entry["page_idx"] = number - 1
            yield number, page, entry


def content_list(doc: Document, image_name: str | None = None) -> list[dict[str, Any]]:
    return [entry for _n, _p, entry in _blocks(doc, image_name)]


def markdown(doc: Document, image_name: str | None = None) -> str:
    parts: list[str] = []
    for _n, _p, entry in _blocks(doc, image_name):
        if entry["type"] == "image":
            parts.append(f"![]({entry['img_path']})")
        elif entry.get("text_level"):
            parts.append("#" * entry["text_level"] + " " + entry["text"])
        else:
            parts.append(entry["text"])
    return "\n\n".join(parts) + ("\n" if parts else "")


def layout(doc: Document, backend: str, image_name: str | None = None) -> dict[str, Any]:
    """The middle JSON (``layout.json``): the blocks of every page, in page units."""
    pdf_info = []
    for number in sorted(doc.pages):
        page = doc.pages[number]
        blocks: list[dict[str, Any]] = []
        if page.image:
            blocks.append(_image_block(page, image_name))
        for i, line in enumerate(page.lines):
            blocks.append(_text_block(line.bbox, line.text, "title" if i == 0 else "text"))
            blocks[-1]["index"] = len(blocks) - 1
        pdf_info.append(
            {
                "page_idx": number - 1,
                "page_size": [page.width, page.height],
                "para_blocks": blocks,
                "discarded_blocks": [],
            }
        )
    return {"pdf_info": pdf_info, "_backend": backend, "_version_name": VERSION_NAME}


def _image_block(page: Page, image_name: str | None) -> dict[str, Any]:
    """A whole-page image: block > image_body > line > span."""
    box = [0, 0, page.width, page.height]
    span = {"bbox": box, "type": "image", "image_path": image_name or ""}
    body = {"type": "image_body", "bbox": box, "lines": [{"bbox": box, "spans": [span]}]}
    return {"type": "image", "bbox": box, "index": 0, "blocks": [body]}


def _text_block(box: tuple[float, float, float, float], text: str, kind: str) -> dict[str, Any]:
    """A one-line title or text block (its ``index`` is set by the caller)."""
    bbox = list(box)
    span = {"bbox": bbox, "type": "text", "content": text}
    return {"type": kind, "bbox": bbox, "index": 0, "lines": [{"bbox": bbox, "spans": [span]}]}


def model(doc: Document) -> list[dict[str, Any]]:
    out = []
    for number in sorted(doc.pages):
        page = doc.pages[number]
        dets = []
        if page.image:
            dets.append(
                {"category_id": 3, "poly": _poly((0, 0, page.width, page.height)), "score": 0.98}
            )
        for i, line in enumerate(page.lines):
            dets.append(
                {"category_id": 0 if i == 0 else 1, "poly": _poly(line.bbox), "score": 0.95}
            )
        out.append(
            {
                "layout_dets": dets,
                "page_info": {"page_no": number - 1, "width": page.width, "height": page.height},
            }
        )
    return out


def _poly(b: tuple[float, float, float, float]) -> list[float]:
    x0, y0, x1, y1 = b
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _html(doc: Document, image_name: str | None) -> str:
    body = []
    for _n, _p, entry in _blocks(doc, image_name):
        if entry["type"] == "image":
            body.append(f'<img src="{html.escape(entry["img_path"])}"/>')
        elif entry.get("text_level"):
            body.append(f"<h1>{html.escape(entry['text'])}</h1>")
        else:
            body.append(f"<p>{html.escape(entry['text'])}</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _latex(doc: Document, image_name: str | None) -> str:
    def esc(text: str) -> str:
        for a, b in (
            ("\\", r"\textbackslash{}"),
            ("&", r"\&"),
            ("%", r"\%"),
            ("$", r"\$"),
            ("#", r"\#"),
            ("_", r"\_"),
            ("{", r"\{"),
            ("}", r"\}"),
        ):
            text = text.replace(a, b)
        return text

    body = []
    for _n, _p, entry in _blocks(doc, image_name):
        if entry["type"] == "image":
            body.append(f"\\includegraphics{{{entry['img_path']}}}")
        elif entry.get("text_level"):
            body.append(f"\\section*{{{esc(entry['text'])}}}")
        else:
            body.append(esc(entry["text"]))
    return (
        "\\documentclass{article}\n\\usepackage{graphicx}\n\\begin{document}\n"
        + "\n\n".join(body)
        + "\n\\end{document}\n"
    )


def _docx(doc: Document, image_name: str | None) -> bytes:
    """A minimal but valid WordprocessingML package with one paragraph per block."""
    import io

    paras = []
    for _n, _p, entry in _blocks(doc, image_name):
        text = entry["img_path"] if entry["type"] == "image" else entry["text"]
        style = '<w:pPr><w:pStyle w:val="Heading1"/></w:pPr>' if entry.get("text_level") else ""
        paras.append(
            f'<w:p>{style}<w:r><w:t xml:space="preserve">{html.escape(text)}</w:t></w:r></w:p>'
        )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document '
        'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{''.join(paras)}</w:body></w:document>"
    )
    types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://'
        'schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/><Override PartName='
        '"/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
        'wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships xmlns='
        '"http://schemas.openxmlformats.org/package/2006/relationships"><Relationship '
        'Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/>'
        "</Relationships>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", types)
        zf.writestr("_rels/.rels", rels)
        zf.writestr("word/document.xml", document)
    return buf.getvalue()


def image_name_for(origin: Path, kind: str) -> str:
    """Images are named by the SHA-256 of their bytes, as MinerU names extracted images."""
    digest = hashlib.sha256()
    with origin.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    return f"{digest.hexdigest()}.{kind}"


def build(
    out: Path,
    result_id: str,
    origin: Path,
    doc: Document,
    *,
    extra_formats: Iterable[str] = (),
    backend: str = "pipeline",
) -> Path:
    """Write the zip for *doc* to *out* (the original is streamed in, not read whole)."""
    image_name = image_name_for(origin, doc.kind) if doc.kind in ("png", "jpg") else None
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("full.md", markdown(doc, image_name))
        zf.writestr(
            "layout.json",
            json.dumps(layout(doc, backend, image_name), ensure_ascii=False, indent=2),
        )
        zf.writestr(
            f"{result_id}_content_list.json",
            json.dumps(content_list(doc, image_name), ensure_ascii=False, indent=2),
        )
        zf.writestr(f"{result_id}_model.json", json.dumps(model(doc), ensure_ascii=False))
        zf.write(origin, f"{result_id}_origin.{doc.kind}", zipfile.ZIP_STORED)
        if image_name:
            zf.write(origin, f"images/{image_name}", zipfile.ZIP_STORED)
        formats = set(extra_formats)
        if "docx" in formats:
            zf.writestr("full.docx", _docx(doc, image_name))
        if "html" in formats:
            zf.writestr("full.html", _html(doc, image_name))
        if "latex" in formats:
            zf.writestr("full.tex", _latex(doc, image_name))
    tmp.replace(out)
    return out
