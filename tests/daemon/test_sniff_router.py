from __future__ import annotations

import io
import plistlib
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from daemon import router, sniff
from daemon.config import Route
from daemon.errors import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocument,
)
from mockserver.samples import multipage_pdf, receipt_pdf


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_pdf_type_and_pages_come_from_the_content(tmp_path: Path) -> None:
    # a misleading name does not matter
    info = sniff.inspect(_file(tmp_path, "photo.jpg", multipage_pdf(5)))
    assert (info.kind, info.pages) == ("pdf", 5)


def test_images(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "PNG")
    assert sniff.inspect(_file(tmp_path, "scan", buf.getvalue())).kind == "png"
    buf = io.BytesIO()
    frames = [Image.new("L", (8, 8), c) for c in (0, 128, 255)]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    assert sniff.inspect(_file(tmp_path, "fax.tif", buf.getvalue())).pages == 3


def test_office_documents(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    assert sniff.inspect(_file(tmp_path, "a.docx", buf.getvalue())).kind == "docx"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(UnsupportedDocument, match="zip archive"):
        sniff.inspect(_file(tmp_path, "a.zip", buf.getvalue()))


@pytest.mark.parametrize(("name", "data"), [
    ("a.url", b"[InternetShortcut]\r\nURL=https://example.com/a.pdf\r\n"),
    ("a.desktop", b"[Desktop Entry]\nType=Link\nName=A\nURL=https://example.com/a.pdf\n"),
    ("a.webloc", plistlib.dumps({"URL": "https://example.com/a.pdf"})),
    ("b.webloc", plistlib.dumps({"URL": "https://example.com/a.pdf"}, fmt=plistlib.FMT_BINARY)),
])
def test_links(tmp_path: Path, name: str, data: bytes) -> None:
    info = sniff.inspect(_file(tmp_path, name, data))
    assert (info.kind, info.url) == ("link", "https://example.com/a.pdf")


def test_links_to_other_schemes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedDocument, match="not an http"):
        sniff.inspect(_file(tmp_path, "a.url", b"[InternetShortcut]\nURL=file:///etc/passwd\n"))


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(EmptyDocument):
        sniff.inspect(_file(tmp_path, "empty.pdf", b""))
    with pytest.raises(UnsupportedDocument, match="not a document"):
        sniff.inspect(_file(tmp_path, "notes.pdf", b"just some text\n"))
    with pytest.raises(CorruptDocument):
        sniff.inspect(_file(tmp_path, "cut.pdf", receipt_pdf()[:200]))


def test_encrypted_pdf(tmp_path: Path) -> None:
    import pypdf

    writer = pypdf.PdfWriter(clone_from=io.BytesIO(receipt_pdf()))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    with pytest.raises(EncryptedDocument):
        sniff.inspect(_file(tmp_path, "locked.pdf", buf.getvalue()))


ROUTES = (
    Route(service="docparse", folder="private/**"),
    Route(service="nanonets", max_pages=3, types=("pdf", "png")),
    Route(service="mineru"),
)


def _everyone(service: str, kind: str) -> bool:
    return True


def test_first_matching_route_wins() -> None:
    pdf = sniff.DocumentInfo("pdf", 2)
    assert router.route(ROUTES, "private/pay.pdf", 10, pdf, _everyone).service == "docparse"
    assert router.route(ROUTES, "inv.pdf", 10, pdf, _everyone).service == "nanonets"
    big = sniff.DocumentInfo("pdf", 40)
    assert router.route(ROUTES, "book.pdf", 10, big, _everyone).service == "mineru"
    docx = sniff.DocumentInfo("docx", None)
    assert router.route(ROUTES, "a.docx", 10, docx, _everyone).service == "mineru"


def test_route_skips_services_that_cannot_take_the_type() -> None:
    def no_docparse(service: str, kind: str) -> bool:
        return service != "docparse"

    pdf = sniff.DocumentInfo("pdf", 1)
    assert router.route(ROUTES, "private/a.pdf", 1, pdf, no_docparse).service == "nanonets"
    with pytest.raises(UnsupportedDocument, match="no route"):
        router.route(ROUTES[:2], "a.docx", 1, sniff.DocumentInfo("docx"), _everyone)


def test_max_bytes_and_options() -> None:
    routes = (Route(service="mineru", max_bytes=100, options={"is_ocr": True}),
              Route(service="nanonets"))
    pdf = sniff.DocumentInfo("pdf", 1)
    d = router.route(routes, "a.pdf", 100, pdf, _everyone)
    assert (d.service, d.options) == ("mineru", {"is_ocr": True})
    assert router.route(routes, "a.pdf", 101, pdf, _everyone).service == "nanonets"
