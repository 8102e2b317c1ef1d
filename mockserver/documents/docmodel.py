"""What the MinerU and docparse mocks "see" in a document: type, pages, lines, boxes.

Results are derived deterministically from the bytes (SPEC "The mock's defaults"):

* **PDF** — pypdf's text layer. Each non-empty line becomes a block; the first line of
  every page is taken as that page's heading (``text_level: 1``), the rest are ``text``.
  Boxes come from the text matrix pypdf reports for each line (width estimated from the
  font size), in PDF points with a top-left origin. A line drawn as several text runs
  at different x on one baseline (a table row: :func:`mockserver.samples.table_pdf`)
  keeps those runs as its ``cells``; consecutive such rows become a table in the result
  (:mod:`~mockserver.documents.resultzip`).
* **PNG / JPEG** (sniffed by magic bytes) — one page holding one ``image`` block that
  covers the page; the image itself is what goes into ``images/``.
* **DOCX / PPTX** (zip containers) — the text of ``<w:t>`` / ``<a:t>`` runs, a DOCX as one
  page, a PPTX one page per slide. **DOC / PPT** (OLE2 containers) — one page with no text
  layer: the mock has no OLE reader, so only the file name is used as the heading.

Errors use MinerU's codes (seed 002): an unsupported type ``-60002``, bytes that cannot be
read as their declared type ``-60003``, an empty file ``-60004``, over 200 MB ``-60005``,
over the service's page limit ``-60006`` (*max_pages*: 600 in seeds 001/002, 200 on
mineru.net today — see :mod:`mockserver.mineru`).

Messages: :data:`MESSAGES` is the Chinese text of the error table (seed 002, completed
with -60017…-60022 from mineru.net/apiManage/docs; -60017 there is "重试次数达到上限",
docparse's seed 001 redefines it, see :data:`SERVICE_MESSAGES`); :data:`MESSAGES_EN` the
English ``err_msg`` real tasks carry. Where a real English message was captured it is
used verbatim (-60003, -60006, -60010, -60017: user logs quoted in the fidelity notes,
e.g. the mineru-open-api CLI log "retry limit reached (5 attempts), please replace the
file"); the others are renderings of the Chinese table (no official English table is
public).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import pageranges

if TYPE_CHECKING:
    from pypdf import PageObject

MAX_BYTES = 200 * 1024 * 1024
#: Seeds 001/002 (the MinerU mock passes its own, 200, see ``analyze``).
MAX_PAGES = 600
#: What seed 002 lists as accepted: .pdf .doc .docx .ppt .pptx .png .jpg .jpeg
SUPPORTED = ("pdf", "doc", "docx", "ppt", "pptx", "png", "jpg", "jpeg")

#: MinerU's error texts (seed 002's table: the meaning, then the advice).
MESSAGES: dict[int, str] = {
    -500: "传参错误，请确保参数类型及Content-Type正确",
    -10001: "服务异常，请稍后再试",
    -10002: "请求参数错误，检查请求参数格式",
    -60001: "生成上传 URL 失败，请稍后再试",
    -60002: "文件格式不支持，请上传符合要求的文件类型",
    -60003: "文件读取失败，请检查文件是否损坏并重新上传",
    -60004: "空文件，请上传有效文件",
    -60005: "文件大小超出限制，最大支持 200MB",
    -60006: "文件页数超过限制，请拆分文件后重试",
    -60007: "模型服务暂时不可用，请稍后重试或联系技术支持",
    -60008: "文件读取超时，检查 URL 可访问",
    -60009: "任务提交队列已满，请稍后再试",
    -60010: "解析失败，请稍后再试",
    -60011: "获取有效文件失败，请确保文件已上传",
    -60012: "找不到任务，请确保task_id有效且未删除",
    -60013: "没有权限访问该任务，只能访问自己提交的任务",
    -60015: "文件转换失败，可以手动转为pdf再上传",
    -60016: "文件转换失败，文件转换为指定格式失败，可以尝试其他格式导出或重试",
    -60017: "页码余额不足，请充值或升级套餐",
    -60018: "每日解析任务数量已达上限，明日再来",
    -60019: "html 文件解析额度不足，明日再来",
    -60020: "文件拆分失败，请稍后重试",
    -60021: "读取文件页数失败，请稍后重试",
    -60022: "网页读取失败，可能因网络问题或者限频导致读取失败，请稍后重试",
}

#: What a code means on one service where the two disagree: -60017 is MinerU's "retry
#: limit reached" (mineru.net/apiManage/docs) but docparse's "page balance" (seed 001).
SERVICE_MESSAGES: dict[str, dict[int, str]] = {
    "mineru": {-60017: "重试次数达到上限，等后续模型升级后重试"},
}

#: English ``err_msg`` (see the module docstring for which are captured verbatim).
MESSAGES_EN: dict[int, str] = {
    -500: "parameter error, please make sure the parameter types and Content-Type are correct",
    -10001: "service error, please try again later",
    -10002: "bad request parameters, please check the parameter format",
    -60001: "failed to generate the upload URL, please try again later",
    -60002: "file format not supported, please upload a file of a supported type",
    -60003: "failed to read file, please check if the file is corrupted and try uploading again",
    -60004: "empty file, please upload a valid file",
    -60005: "file size exceeds limit (200MB), please check the file size",
    -60006: "number of pages exceeds limit ({max_pages} pages), please split the file and try "
    "again",
    -60007: "model service temporarily unavailable, please try again later or contact support",
    -60008: "file read timeout, please check that the URL is accessible",
    -60009: "task submission queue is full, please try again later",
    -60010: "parsing failed, please try again later",
    -60011: "failed to get a valid file, please make sure the file has been uploaded",
    -60012: "task not found, please make sure the task_id is valid and not deleted",
    -60013: "no permission to access this task, you can only access your own tasks",
    -60015: "file conversion failed, you can convert it to pdf manually and upload again",
    -60016: "conversion to the requested format failed, try another format or try again",
    -60017: "page balance insufficient, please top up or upgrade your plan",
    -60018: "daily parsing task limit reached, please come back tomorrow",
    -60019: "html parsing quota insufficient, please come back tomorrow",
    -60020: "file split failed, please try again later",
    -60021: "failed to read the page count, please try again later",
    -60022: "web page read failed, possibly due to network issues or rate limiting, please "
    "try again later",
}
SERVICE_MESSAGES_EN: dict[str, dict[int, str]] = {
    "mineru": {-60017: "retry limit reached (5 attempts), please replace the file."},
}


def message(code: int, *, language: str = "zh", service: str = "", max_pages: int = 0) -> str:
    """The service's text for *code* in *language* (``en`` or ``zh``)."""
    if language == "en":
        text = SERVICE_MESSAGES_EN.get(service, {}).get(code) or MESSAGES_EN.get(code)
    else:
        text = SERVICE_MESSAGES.get(service, {}).get(code) or MESSAGES.get(code)
    return (text or "error").replace("{max_pages}", str(max_pages or MAX_PAGES))


class DocError(Exception):
    """A document the service refuses; ``code`` is the service's error code.

    ``custom`` is a message of the mock's own (e.g. a bad page range); without one the
    service renders the code's text in its language (:func:`message`)."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, "解析失败"))
        self.code = code
        self.message = message or MESSAGES.get(code, "解析失败")
        self.custom = message


@dataclass
class Line:
    text: str
    bbox: tuple[float, float, float, float]  # points, top-left origin: x0, y0, x1, y1
    #: A table row: the text of each run on the baseline, left to right (else None).
    cells: list[str] | None = None


@dataclass
class Page:
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)
    image: bool = False  # the whole page is one image block


@dataclass
class Document:
    kind: str  # normalised extension: pdf, docx, pptx, doc, ppt, png, jpg
    total_pages: int
    pages: dict[int, Page]  # 1-based page number -> content (selected pages only)
    sha256: str = ""


def extension(name: str) -> str:
    """The lower-case suffix of a file name or URL path, '' when none."""
    base = name.rsplit("/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def sniff(head: bytes) -> str | None:
    """The family of the first bytes: pdf, png, jpg, zip (docx/pptx), ole (doc/ppt)."""
    if head.startswith(b"%PDF-") or head[:1024].find(b"%PDF-") != -1:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    return None


_FAMILY = {
    "pdf": "pdf",
    "png": "png",
    "jpg": "jpg",
    "jpeg": "jpg",
    "docx": "zip",
    "pptx": "zip",
    "doc": "ole",
    "ppt": "ole",
}


def check_type(ext: str) -> str:
    """Normalise a declared extension, or raise -60002 when MinerU does not take it."""
    ext = ext.lower()
    if ext not in SUPPORTED:
        raise DocError(-60002)
    return "jpg" if ext == "jpeg" else ext


def analyze(
    path: Path,
    ext: str,
    page_spec: str | None = None,
    *,
    max_pages: int = MAX_PAGES,
    limit_selection: bool = False,
) -> Document:
    """Read *path* as a file of type *ext*; keep the pages *page_spec* selects; a file
    of more than *max_pages* pages is refused (-60006) — with *limit_selection*, only
    when more than that many pages are selected.

    Raises :class:`DocError` the way the service fails such a file.
    """

    kind = check_type(ext)
    size = path.stat().st_size
    if size == 0:
        raise DocError(-60004)
    if size > MAX_BYTES:
        raise DocError(-60005)
    with path.open("rb") as fh:
        head = fh.read(1024)
    if sniff(head) != _FAMILY[kind]:
        raise DocError(-60003)
    if kind == "pdf":
        return _pdf(path, page_spec, max_pages, limit_selection)
    if kind in ("png", "jpg"):
        return Document(kind, 1, {1: _image_page(path, kind)})
    # DOC/PPT (OLE2): no reader in the mock, one page headed by the file name.
    texts = _office_zip(path, kind) if kind in ("docx", "pptx") else [[path.stem]]
    total = len(texts)
    selected = pageranges.resolve(page_spec, total)
    if not selected:
        raise DocError(-10002, "page_ranges 超出文档页数范围")
    pages = {n: _text_page(texts[n - 1]) for n in selected}
    return Document(kind, total, pages)


def _text_page(texts: list[str], width: float = 595.0, height: float = 842.0) -> Page:
    """Lines laid out top to bottom (for sources without positions)."""
    page = Page(width, height)
    for i, text in enumerate(t for t in texts if t.strip()):
        y0 = 72.0 + i * 18.0
        x1 = min(width - 36.0, 72.0 + 6.0 * len(text))
        page.lines.append(Line(text.strip(), (72.0, y0, x1, y0 + 14.0)))
    return page


def _image_page(path: Path, kind: str) -> Page:
    width, height = 1000.0, 1000.0
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    if kind == "png" and len(head) >= 24:
        width, height = (
            float(int.from_bytes(head[16:20], "big")),
            float(int.from_bytes(head[20:24], "big")),
        )
    elif kind == "jpg":
        size = _jpeg_size(head)
        if size:
            width, height = size
    return Page(width or 1000.0, height or 1000.0, image=True)


def _jpeg_size(data: bytes) -> tuple[float, float] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h = int.from_bytes(data[i + 5 : i + 7], "big")
            w = int.from_bytes(data[i + 7 : i + 9], "big")
            return float(w), float(h)
        i += 2 + length
    return None


_RUN = {
    "docx": re.compile(rb"<w:t(?:\s[^>]*)?>([^<]*)</w:t>"),
    "pptx": re.compile(rb"<a:t(?:\s[^>]*)?>([^<]*)</a:t>"),
}
_PARA = {
    "docx": re.compile(rb"<w:p[\s>].*?</w:p>", re.S),
    "pptx": re.compile(rb"<a:p[\s>].*?</a:p>", re.S),
}


def _office_zip(path: Path, kind: str) -> list[list[str]]:
    """Paragraph texts per page: a DOCX is one page, a PPTX one page per slide."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if kind == "docx":
                parts = ["word/document.xml"] if "word/document.xml" in names else []
            else:
                parts = sorted(
                    (n for n in names if re.fullmatch(r"ppt/slides/slide\d+\.xml", n)),
                    key=lambda n: int(re.findall(r"\d+", n)[-1]),
                )
            if not parts:
                raise DocError(-60003)
            pages = []
            for part in parts:
                xml = zf.read(part)
                paras = []
                for para in _PARA[kind].findall(xml):
                    text = b"".join(_RUN[kind].findall(para)).decode("utf-8", "replace")
                    if text.strip():
                        paras.append(_unescape(text))
                pages.append(paras)
            return pages
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise DocError(-60003) from exc


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def _pdf(path: Path, page_spec: str | None, max_pages: int, limit_selection: bool) -> Document:

    try:
        import pypdf

        reader = pypdf.PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            raise DocError(-60003)
        total = len(reader.pages)
    except DocError:
        raise
    except Exception as exc:  # pypdf raises many kinds on a corrupt file
        raise DocError(-60003) from exc
    if total == 0:
        raise DocError(-60003)
    selected = pageranges.resolve(page_spec, total)
    if (len(selected) if limit_selection else total) > max_pages:
        raise DocError(-60006)
    if not selected:
        raise DocError(-10002, "page_ranges 超出文档页数范围")
    pages: dict[int, Page] = {}
    for number in selected:
        try:
            pages[number] = _pdf_page(reader.pages[number - 1])
        except Exception as exc:
            raise DocError(-60003) from exc
    return Document("pdf", total, pages)


def _pdf_page(page: PageObject) -> Page:
    box = page.mediabox
    width, height = float(box.width), float(box.height)
    fragments: list[tuple[str, float, float, float]] = []

    def visit(text: str, cm: list[float], tm: list[float], _font: object, size: float) -> None:
        if text:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            fragments.append((text, x, y, float(size or 12.0)))

    runs: list[tuple[str, float, float]] = []

    def before(op: bytes, args: list[object], cm: list[float], tm: list[float]) -> None:
        # Where each ``Tj`` run starts: several on one baseline are a table row's cells.
        if op == b"Tj" and args:
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((_run_text(args[0]), x, y))

    page.extract_text(visitor_text=visit, visitor_operand_before=before)
    result = Page(width, height)
    current = ""
    start: tuple[float, float, float] | None = None
    for text, x, y, size in fragments:
        for i, piece in enumerate(text.split("\n")):
            if i > 0:  # a newline ends the current line
                _flush(result, current, start, width, height)
                current, start = "", None
            if piece:
                if start is None:
                    start = (x, y, size)
                current += piece
    _flush(result, current, start, width, height)
    _mark_cells(result, runs, height)
    return result


def _run_text(operand: object) -> str:
    """A ``Tj`` string as a simple (WinAnsi) font shows it; '' for anything else."""
    from pypdf.generic import ByteStringObject, TextStringObject

    if isinstance(operand, TextStringObject):
        return operand.get_original_bytes().decode("cp1252", "replace")
    if isinstance(operand, bytes | ByteStringObject):
        return bytes(operand).decode("cp1252", "replace")
    return ""


def _mark_cells(page: Page, runs: list[tuple[str, float, float]], height: float) -> None:
    """Give a line its ``cells`` when it was drawn as runs at distinct x on its baseline
    and those runs, joined, are exactly the line's text."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for text, x, y in runs:
        if text.strip():
            rows.setdefault(round(y, 1), []).append((x, text.strip()))
    for line in page.lines:
        _x0, top, _x1, bottom = line.bbox
        baseline = next((y for y in rows if top - 0.5 <= height - y <= bottom + 0.5), None)
        if baseline is None:
            continue
        row = sorted(rows[baseline])
        xs = [x for x, _t in row]
        cells = [t for _x, t in row]
        if len(cells) >= 2 and len(set(xs)) == len(xs) and " ".join(cells) == line.text:
            line.cells = cells


def _flush(
    page: Page, text: str, start: tuple[float, float, float] | None, width: float, height: float
) -> None:
    text = text.strip()
    if not text:
        return
    x, y, size = start if start else (72.0, height - 72.0 - 18.0 * len(page.lines), 12.0)
    x0 = max(0.0, min(x, width))
    x1 = max(x0, min(width, x + 0.5 * size * len(text)))
    y0 = max(0.0, min(height, height - (y + 0.8 * size)))
    y1 = max(y0, min(height, height - (y - 0.2 * size)))
    page.lines.append(Line(text, (round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))))


def scale_bbox(bbox: tuple[float, float, float, float], page: Page) -> list[int]:
    """A box in page units scaled to MinerU's 0–1000 range (content_list ``bbox``)."""
    x0, y0, x1, y1 = bbox
    return [
        round(x0 * 1000 / page.width),
        round(y0 * 1000 / page.height),
        round(x1 * 1000 / page.width),
        round(y1 * 1000 / page.height),
    ]
