"""What the services read in an upload: type sniffing, text lines, refusals."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from pypdf import PdfWriter

from mockserver.documents import pdftext
from mockserver.samples import multipage_pdf, receipt_pdf


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_receipt_lines_in_reading_order_with_boxes_top_down() -> None:
    doc = pdftext.extract(receipt_pdf())
    assert doc.kind == "pdf" and doc.page_count == 1
    lines = doc.pages[0].lines
    assert [ln.text for ln in lines] == [
        "Estacion de Servicio Demo",
        "Fecha: 23/12/2025",
        "lineas_detalle",
        "Gasoil 50L",
        "Total: 45.99",
    ]
    tops = [ln.top for ln in lines]
    assert tops == sorted(tops) and tops[0] > 0
    assert all(ln.x1 > ln.x0 and ln.bottom > ln.top for ln in lines)


def test_multipage_count_and_text(tmp_path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(multipage_pdf(4))
    doc = pdftext.extract(path)
    assert doc.page_count == pdftext.page_count(path) == 4
    assert doc.pages[3].text.startswith("Page 4")
    assert [p.number for p in doc.pages] == [0, 1, 2, 3]


def test_images_are_one_page_without_text() -> None:
    doc = pdftext.extract(png(30, 20))
    assert doc.kind == "png" and doc.page_count == 1
    assert doc.pages[0].lines == []
    assert (doc.pages[0].width, doc.pages[0].height) == (30, 20)
    assert pdftext.extract(b"\xff\xd8\xff\xe0" + b"\x00" * 20).kind == "jpg"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"hello, plain text", "unsupported"),
        (b"PK\x03\x04 a zip", "unsupported"),
        (b"%PDF-1.4\nthis is not a pdf body", "corrupt"),
    ],
)
def test_refusals(data: bytes, code: str) -> None:
    with pytest.raises(pdftext.DocumentError) as info:
        pdftext.extract(data)
    assert info.value.code == code


def test_password_protected_pdf_is_refused() -> None:
    writer = PdfWriter()
    writer.add_blank_page(100, 100)
    writer.encrypt(user_password="secret", owner_password="owner")
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(pdftext.DocumentError) as info:
        pdftext.extract(out.getvalue())
    assert info.value.code == "encrypted"
