"""What a mock service "reads" in an upload: its type, pages, text lines and their positions.

Shared by the services so results are derived deterministically from the bytes:
a PDF's text layer via pypdf (lines with their position on the page, in PDF
points with a top-left origin, as OCR boxes are given); PNG/JPEG/TIFF/GIF/BMP/WEBP
images sniffed by magic bytes are one page with no text (the mock does no OCR).
Anything else, a broken PDF or one that needs a password, raises
:class:`DocumentError` whose ``code`` a service maps to its own refusal
(Nanonets: 400 "invalid format"; MinerU: -60002/-60003).
"""

from __future__ import annotations

import io
import logging
import struct
from dataclasses import dataclass, field
from pathlib import Path

logging.getLogger("pypdf").setLevel(logging.ERROR)  # broken uploads are expected, not news

IMAGE_KINDS = ("png", "jpg", "tiff", "gif", "bmp", "webp")


class DocumentError(ValueError):
    """The upload cannot be read. ``code``: empty | unsupported | corrupt | encrypted."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Line:
    """One text line; box in points, origin top-left (x grows right, y grows down)."""

    text: str
    x0: float
    top: float
    x1: float
    bottom: float


@dataclass
class Page:
    number: int  # 0-based, as Nanonets' page_no
    width: float
    height: float
    lines: list[Line] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


@dataclass
class Extracted:
    kind: str  # "pdf" or one of IMAGE_KINDS
    pages: list[Page]

    @property
    def page_count(self) -> int:
        return len(self.pages)

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)


def sniff(head: bytes) -> str | None:
    """The file type from its first bytes (never from its name), or None."""
    if head.startswith(b"%PDF-") or b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM"):
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _image_size(data: bytes, kind: str) -> tuple[float, float]:
    """Pixel size from the header where cheap (PNG, JPEG, GIF); A4-ish otherwise."""
    try:
        if kind == "png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return float(w), float(h)
        if kind == "gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return float(w), float(h)
        if kind == "jpg":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                size = struct.unpack(">H", data[i + 2 : i + 4])[0]
                if marker in (0xC0, 0xC1, 0xC2):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return float(w), float(h)
                i += 2 + size
    except struct.error:
        pass
    return 1240.0, 1754.0


def _pdf_pages(data: bytes) -> list[Page]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception as exc:  # pypdf raises several types for crypto trouble
                raise DocumentError("encrypted", "the PDF is password-protected") from exc
            if not ok:
                raise DocumentError("encrypted", "the PDF is password-protected")
        pages: list[Page] = []
        for number, pdf_page in enumerate(reader.pages):
            box = pdf_page.mediabox
            width, height = float(box.width), float(box.height)
            pieces: list[tuple[str, float, float, float]] = []

            def visit(text: str, cm: list[float], tm: list[float], _fd: object, size: float,
                      pieces: list[tuple[str, float, float, float]] = pieces) -> None:  # fmt: skip
                if text.strip():
                    x = tm[4] * cm[0] + cm[4]
                    y = tm[5] * cm[3] + cm[5]
                    pieces.append((text, x, y, size * (abs(tm[3]) or 1.0) * (abs(cm[3]) or 1.0)))

            full = pdf_page.extract_text(visitor_text=visit) or ""
            lines = _lines_from(pieces, full, width, height)
            pages.append(Page(number, width, height, lines))
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise DocumentError("corrupt", f"the PDF cannot be read: {exc}") from exc
    if not pages:
        raise DocumentError("corrupt", "the PDF has no pages")
    return pages


def _lines_from(
    pieces: list[tuple[str, float, float, float]], full: str, width: float, height: float
) -> list[Line]:
    """Text lines with boxes: from pypdf's positions, else stacked from the top."""
    lines: list[Line] = []
    for text, x, y, size in pieces:
        for k, part in enumerate(p for p in text.split("\n") if p.strip()):
            size = size or 12.0
            top = height - y - size * 0.8 + k * size * 1.2
            lines.append(
                Line(part.strip(), x, top, min(width, x + 0.5 * size * len(part)), top + size)
            )
    if lines or not full.strip():
        return lines
    stacked = []
    for k, part in enumerate(p for p in full.splitlines() if p.strip()):
        top = 72.0 + 14.0 * k
        stacked.append(Line(part.strip(), 72.0, top, min(width, 72.0 + 6.0 * len(part)), top + 12))
    return stacked


def extract(source: bytes | Path | str) -> Extracted:
    """Read an upload (bytes or a path) into pages and lines; raises :class:`DocumentError`."""
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    if not data:
        raise DocumentError("empty", "the file is empty")
    kind = sniff(data[:2048])
    if kind is None:
        raise DocumentError("unsupported", "the file is not a PDF or a supported image")
    if kind == "pdf":
        return Extracted("pdf", _pdf_pages(data))
    width, height = _image_size(data, kind)
    return Extracted(kind, [Page(0, width, height, [])])


def page_count(source: bytes | Path | str) -> int:
    """Number of pages (1 for an image); raises :class:`DocumentError`."""
    return extract(source).page_count
