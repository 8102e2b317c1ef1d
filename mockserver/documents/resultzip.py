"""The result zip MinerU's ``full_zip_url`` points at, built from a :class:`Document`.

Sources, per behaviour (the fidelity notes, /work/notes/fidelity.md §7–§9, quote them):

* Cloud layout (``layout="cloud"``, mineru.net): ``full.md``, ``layout.json`` (the middle
  JSON), ``<uuid>_content_list.json``, ``<uuid>_content_list_v2.json``,
  ``<uuid>_model.json``, ``<uuid>_origin.<ext>`` and ``images/<sha256>.jpg`` side by side
  — the official doc row for ``full_zip_url`` (mineru.net/apiManage/docs) and three
  independent users' listings of real zips; the prefix is a UUID, not the file name.
* Self-hosted ``mineru-api`` (``layout="mineru-api"``, v3.x, opendatalab/MinerU
  ``mineru/cli/output_paths.py`` ``build_parse_dir`` and ``build_zip_arcname``):
  ``<name>/<parse dir>/<name>.md``, ``<name>_content_list.json``,
  ``<name>_content_list_v2.json``, ``<name>_middle.json``, ``<name>_model.json``,
  ``<name>_origin.<ext>``, ``images/``; the parse dir is ``auto`` (pipeline), ``vlm``,
  ``hybrid_auto`` or ``office``.  ``layout="mineru-api-flat"`` is tags mineru-2.6.8 /
  2.7.6: ``<name>/<name>.md``, ``<name>/<name>_middle.json``, ``<name>/images/`` (no v2
  content list yet).
* ``*_content_list.json`` (``mineru/backend/vlm/vlm_middle_json_mkcontent.py``
  ``make_blocks_to_content_list``; ``docs/en/reference/output_files.md``): ``{"type":
  "text", "text", "text_level"?, "bbox", "page_idx"}``; images ``{"type": "image",
  "img_path", "image_caption", "image_footnote", "bbox", "page_idx"}`` (``img_caption`` /
  ``img_footnote`` until commit d9b5d004, 2025-07-05); tables ``{"type": "table",
  "img_path": "images/<sha256>.jpg", "table_caption", "table_footnote", "table_body":
  "<html><body><table>…", "bbox", "page_idx"}``.  ``text_level`` appears on headings
  only; ``bbox`` is scaled to 0–1000 of the page.
* ``*_content_list_v2.json`` (commit ff2d81ad, 2025-12-09; "added in 3.0 … subject to
  change"): a list of pages, each a list of ``{type, content: {...}, bbox}`` blocks —
  ``title`` (``title_content`` spans, ``level``), ``paragraph`` (``paragraph_content``),
  ``image`` (``image_source``, ``image_caption``, ``image_footnote``), ``table``
  (``image_source``, ``table_caption``, ``table_footnote``, ``html``, ``table_type``,
  ``table_nest_level``); no ``page_idx``: the page is the position.
* Image names: ``sha256(<crop path>).jpg`` (``mineru/utils/pdf_image_tools.py``); the
  mock names a table's crop by the sha256 of ``<result id>/<page>/<n>`` and stores a
  small blank JPEG (it renders nothing).  An uploaded picture is stored as itself, named
  by the sha256 of its bytes.
* ``page_idx`` under ``page_ranges`` (``numbering``): the open-source engine cuts the PDF
  first (``mineru/cli/common.py`` ``_prepare_pdf_bytes`` → pdfium ``import_pages``), so
  numbering restarts at 0 (``"restart"``, the default); ``"original"`` keeps the page's
  index in the uploaded file (the cloud's behaviour is not documented either way).
  ``layout.json``'s ``pdf_info[].page_idx`` and ``_model.json``'s ``page_no`` follow it.
* ``full.md``: per page the heading as ``# text``, each line a paragraph, an image as
  ``![](images/<name>)``, a table as its caption then its HTML (as MinerU's Markdown
  embeds ``table_body``).
* ``full.docx`` / ``full.html`` / ``full.tex``: only for ``extra_formats`` (seed 002;
  the names follow a third-party listing of a real zip).
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .docmodel import Document, Line, Page, scale_bbox

VERSION_NAME = "2.5.4"
EXTRA_FORMATS = ("docx", "html", "latex")
LAYOUTS = ("cloud", "mineru-api", "mineru-api-flat")
NUMBERINGS = ("restart", "original")
#: A line right above a table that names it becomes its caption.
_CAPTION = re.compile(r"^(table|tabla)\s*\d*\b", re.IGNORECASE)
#: An 8×8 white baseline JPEG: what the mock stores for a table's crop.
BLANK_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300100b0c0e0c0a100e0d0e1211101318281a18"
    "1616183123251d283a333d3c3933383740485c4e404457453738506d51575f626768673e4d717970647"
    "85c656763ffc0000b080008000801011100ffc4001f000001050101010101010000000000000000010203"
    "0405060708090a0bffc400b5100002010303020403050504040000017d010203000411051221314106"
    "13516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a343536"
    "3738393a434445464748494a535455565758595a636465666768696a737475767778797a8384858687"
    "88898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4"
    "d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffda0008010100003f00f40affd9"
)


@dataclass(frozen=True)
class Table:
    """Consecutive table rows of one page: the first is the header."""

    rows: list[list[str]]
    caption: str | None
    bbox: tuple[float, float, float, float]
    number: int  # its position among the result's tables (names its crop)


def _page_index(doc: Document, number: int, numbering: str) -> int:
    """``page_idx`` of 1-based page *number*: its index in the cut PDF (``restart``) or in
    the original (``original``)."""
    if numbering == "original":
        return number - 1
    return sorted(doc.pages).index(number)


def _items(page: Page) -> Iterator[Line | Table]:
    """The page's lines in reading order, runs of ≥ 2 table rows of one width grouped
    (with a caption line right above them) into a :class:`Table`."""
    lines = page.lines
    i = 0
    count = 0
    while i < len(lines):
        line = lines[i]
        j = i
        while (
            j < len(lines)
            and lines[j].cells is not None
            and len(lines[j].cells or []) == len(line.cells or [])
        ):
            j += 1
        if line.cells is not None and j - i >= 2:
            rows = [list(r.cells or []) for r in lines[i:j]]
            box = (
                min(r.bbox[0] for r in lines[i:j]),
                lines[i].bbox[1],
                max(r.bbox[2] for r in lines[i:j]),
                lines[j - 1].bbox[3],
            )
            count += 1
            yield Table(rows, None, box, count)
            i = j
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else None
        if _CAPTION.match(line.text) and nxt is not None and nxt.cells is not None:
            k = i + 1
            while (
                k < len(lines)
                and lines[k].cells is not None
                and len(lines[k].cells or []) == len(nxt.cells or [])
            ):
                k += 1
            if k - (i + 1) >= 2:
                rows = [list(r.cells or []) for r in lines[i + 1 : k]]
                box = (
                    min(r.bbox[0] for r in lines[i + 1 : k]),
                    nxt.bbox[1],
                    max(r.bbox[2] for r in lines[i + 1 : k]),
                    lines[k - 1].bbox[3],
                )
                count += 1
                yield Table(rows, line.text, box, count)
                i = k
                continue
        yield line
        i += 1


def table_html(rows: list[list[str]]) -> str:
    """``table_body`` as MinerU writes it: the table wrapped in ``<html><body>``."""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<html><body><table>{body}</table></body></html>"


def table_image(result_id: str, page_idx: int, table: Table) -> str:
    """The table crop's name: sha256 of its (mock) path, as MinerU names crops."""
    return hashlib.sha256(f"{result_id}/{page_idx}/{table.number}".encode()).hexdigest() + ".jpg"


def _blocks(
    doc: Document, image_name: str | None, result_id: str = "", numbering: str = "restart"
) -> Iterable[tuple[int, Page, dict[str, Any]]]:
    """Every block in reading order as (page number, page, content-list entry)."""
    for number in sorted(doc.pages):
        page = doc.pages[number]
        idx = _page_index(doc, number, numbering)
        if page.image and image_name:
            yield (
                number,
                page,
                {
                    "type": "image",
                    "img_path": f"images/{image_name}",
                    "image_caption": [],
                    "image_footnote": [],
                    "bbox": [0, 0, 1000, 1000],
                    "page_idx": idx,
                },
            )
        for i, item in enumerate(_items(page)):
            if isinstance(item, Table):
                yield (
                    number,
                    page,
                    {
                        "type": "table",
                        "img_path": f"images/{table_image(result_id, idx, item)}",
                        "table_caption": [item.caption] if item.caption else [],
                        "table_footnote": [],
                        "table_body": table_html(item.rows),
                        "bbox": scale_bbox(item.bbox, page),
                        "page_idx": idx,
                    },
                )
                continue
            entry: dict[str, Any] = {"type": "text", "text": item.text}
            if i == 0:
                entry["text_level"] = 1
            entry["bbox"] = scale_bbox(item.bbox, page)
            entry["page_idx"] = idx
            yield number, page, entry


def content_list(
    doc: Document, image_name: str | None = None, result_id: str = "", numbering: str = "restart"
) -> list[dict[str, Any]]:
    return [entry for _n, _p, entry in _blocks(doc, image_name, result_id, numbering)]


def content_list_v2(
    doc: Document, image_name: str | None = None, result_id: str = ""
) -> list[list[dict[str, Any]]]:
    """The v2 content list: one list of blocks per processed page, in page order."""
    pages: dict[int, list[dict[str, Any]]] = {n: [] for n in sorted(doc.pages)}
    for number, _page, e in _blocks(doc, image_name, result_id):
        if e["type"] == "image":
            block: dict[str, Any] = {
                "type": "image",
                "content": {
                    "image_source": {"path": e["img_path"]},
                    "image_caption": [],
                    "image_footnote": [],
                },
            }
        elif e["type"] == "table":
            block = {
                "type": "table",
                "content": {
                    "image_source": {"path": e["img_path"]},
                    "table_caption": [{"type": "text", "content": c} for c in e["table_caption"]],
                    "table_footnote": [],
                    "html": e["table_body"],
                    "table_type": "simple_table",
                    "table_nest_level": 1,
                },
            }
        elif e.get("text_level"):
            block = {
                "type": "title",
                "content": {
                    "title_content": [{"type": "text", "content": e["text"]}],
                    "level": e["text_level"],
                },
            }
        else:
            block = {
                "type": "paragraph",
                "content": {"paragraph_content": [{"type": "text", "content": e["text"]}]},
            }
        block["bbox"] = e["bbox"]
        pages[number].append(block)
    return list(pages.values())


def markdown(doc: Document, image_name: str | None = None, result_id: str = "") -> str:
    parts: list[str] = []
    for _n, _p, entry in _blocks(doc, image_name, result_id):
        if entry["type"] == "image":
            parts.append(f"![]({entry['img_path']})")
        elif entry["type"] == "table":
            parts.extend(entry["table_caption"])
            parts.append(entry["table_body"])
        elif entry.get("text_level"):
            parts.append("#" * entry["text_level"] + " " + entry["text"])
        else:
            parts.append(entry["text"])
    return "\n\n".join(parts) + ("\n" if parts else "")


def layout(
    doc: Document, backend: str, image_name: str | None = None, numbering: str = "restart"
) -> dict[str, Any]:
    """The middle JSON (``layout.json``): the blocks of every page, in page units."""
    pdf_info = []
    for number in sorted(doc.pages):
        page = doc.pages[number]
        blocks: list[dict[str, Any]] = []
        if page.image:
            blocks.append(_image_block(page, image_name))
        for i, item in enumerate(_items(page)):
            if isinstance(item, Table):
                blocks.append(_table_block(item))
            else:
                blocks.append(_text_block(item.bbox, item.text, "title" if i == 0 else "text"))
            blocks[-1]["index"] = len(blocks) - 1
        pdf_info.append(
            {
                "page_idx": _page_index(doc, number, numbering),
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


def _table_block(table: Table) -> dict[str, Any]:
    """A table: block > table_body > line > span carrying the HTML."""
    box = list(table.bbox)
    span = {"bbox": box, "type": "table", "html": table_html(table.rows)}
    body = {"type": "table_body", "bbox": box, "lines": [{"bbox": box, "spans": [span]}]}
    return {"type": "table", "bbox": box, "index": 0, "blocks": [body]}


def _text_block(box: tuple[float, float, float, float], text: str, kind: str) -> dict[str, Any]:
    """A one-line title or text block (its ``index`` is set by the caller)."""
    bbox = list(box)
    span = {"bbox": bbox, "type": "text", "content": text}
    return {"type": kind, "bbox": bbox, "index": 0, "lines": [{"bbox": bbox, "spans": [span]}]}


def model(doc: Document, numbering: str = "restart") -> list[dict[str, Any]]:
    out = []
    for number in sorted(doc.pages):
        page = doc.pages[number]
        dets = []
        if page.image:
            dets.append(
                {"category_id": 3, "poly": _poly((0, 0, page.width, page.height)), "score": 0.98}
            )
        for i, item in enumerate(_items(page)):
            category = 5 if isinstance(item, Table) else (0 if i == 0 else 1)
            dets.append({"category_id": category, "poly": _poly(item.bbox), "score": 0.95})
        out.append(
            {
                "layout_dets": dets,
                "page_info": {
                    "page_no": _page_index(doc, number, numbering),
                    "width": page.width,
                    "height": page.height,
                },
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
        elif entry["type"] == "table":
            table = entry["table_body"].removeprefix("<html><body>")
            body.append(table.removesuffix("</body></html>"))
        elif entry.get("text_level"):
            body.append(f"<h1>{html.escape(entry['text'])}</h1>")
        else:
            body.append(f"<p>{html.escape(entry['text'])}</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def _table_text(entry: dict[str, Any]) -> str:
    """A table entry as plain text: its cells, rows on their own lines."""
    rows = re.findall(r"<tr>(.*?)</tr>", entry["table_body"])
    return "\n".join(
        " | ".join(html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)) for row in rows
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
        elif entry["type"] == "table":
            body.append(esc(_table_text(entry)))
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
        text = (
            entry["img_path"]
            if entry["type"] == "image"
            else _table_text(entry)
            if entry["type"] == "table"
            else entry["text"]
        )
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
    numbering: str = "restart",
    layout_name: str = "cloud",
    name: str = "document",
    parse_dir: str = "auto",
) -> Path:
    """Write the zip for *doc* to *out* (the original is streamed in, not read whole).

    *layout_name*: ``cloud`` (files named by *result_id*), ``mineru-api`` (under
    ``<name>/<parse_dir>/``, files named by *name*) or ``mineru-api-flat`` (under
    ``<name>/``); *numbering*: ``restart`` or ``original`` ``page_idx`` (module doc)."""
    image_name = image_name_for(origin, doc.kind) if doc.kind in ("png", "jpg") else None
    folder, prefix, md_name, middle_name = _names(layout_name, result_id, name, parse_dir)
    tmp = out.with_name(out.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(folder + md_name, markdown(doc, image_name, result_id))
        zf.writestr(
            folder + middle_name,
            json.dumps(layout(doc, backend, image_name, numbering), ensure_ascii=False, indent=2),
        )
        entries = content_list(doc, image_name, result_id, numbering)
        zf.writestr(
            f"{folder}{prefix}_content_list.json",
            json.dumps(entries, ensure_ascii=False, indent=2),
        )
        if layout_name != "mineru-api-flat":
            zf.writestr(
                f"{folder}{prefix}_content_list_v2.json",
                json.dumps(content_list_v2(doc, image_name, result_id), ensure_ascii=False),
            )
        zf.writestr(
            f"{folder}{prefix}_model.json", json.dumps(model(doc, numbering), ensure_ascii=False)
        )
        zf.write(origin, f"{folder}{prefix}_origin.{doc.kind}", zipfile.ZIP_STORED)
        _write_images(zf, folder, origin, image_name, entries)
        _write_extra_formats(zf, folder, extra_formats, doc, image_name)
    tmp.replace(out)
    return out


def _names(
    layout_name: str, result_id: str, name: str, parse_dir: str
) -> tuple[str, str, str, str]:
    """(folder, file prefix, Markdown name, middle JSON name) in *layout_name*: the cloud
    names files by the result id, ``mineru-api`` by the document (module doc)."""
    if layout_name == "mineru-api":
        folder, prefix, md_name, middle = f"{name}/{parse_dir}/", name, f"{name}.md", "_middle"
    elif layout_name == "mineru-api-flat":
        folder, prefix, md_name, middle = f"{name}/", name, f"{name}.md", "_middle"
    else:
        folder, prefix, md_name, middle = "", result_id, "full.md", ""
    middle_name = f"{prefix}_middle.json" if middle else "layout.json"
    return folder, prefix, md_name, middle_name


def _write_images(
    zf: zipfile.ZipFile,
    folder: str,
    origin: Path,
    image_name: str | None,
    entries: list[dict[str, Any]],
) -> None:
    """The images the Markdown and content list point to, so that every link resolves:
    an uploaded picture as itself, a blank crop per table."""
    if image_name:
        zf.write(origin, f"{folder}images/{image_name}", zipfile.ZIP_STORED)
    for entry in entries:
        if entry["type"] == "table":
            zf.writestr(f"{folder}{entry['img_path']}", BLANK_JPEG)


def _write_extra_formats(
    zf: zipfile.ZipFile,
    folder: str,
    extra_formats: Iterable[str],
    doc: Document,
    image_name: str | None,
) -> None:
    """``full.docx`` / ``full.html`` / ``full.tex``: only those asked for (seed 002)."""
    formats = set(extra_formats)
    if "docx" in formats:
        zf.writestr(folder + "full.docx", _docx(doc, image_name))
    if "html" in formats:
        zf.writestr(folder + "full.html", _html(doc, image_name))
    if "latex" in formats:
        zf.writestr(folder + "full.tex", _latex(doc, image_name))
