from __future__ import annotations

import contextlib
import io
import os
import plistlib
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from daemon import router, sniff
from daemon.config import Route
from daemon.errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooComplex,
    EmptyDocument,
    EncryptedDocument,
    Stopping,
    UnsupportedDocument,
)
from mockserver.samples import multipage_pdf, receipt_pdf
from tests.data import pathological
from tests.helpers import wait_for


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


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.url", b"[InternetShortcut]\r\nURL=https://example.com/a.pdf\r\n"),
        ("a.desktop", b"[Desktop Entry]\nType=Link\nName=A\nURL=https://example.com/a.pdf\n"),
        ("a.webloc", plistlib.dumps({"URL": "https://example.com/a.pdf"})),
        ("b.webloc", plistlib.dumps({"URL": "https://example.com/a.pdf"}, fmt=plistlib.FMT_BINARY)),
    ],
)
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
    routes = (
        Route(service="mineru", max_bytes=100, options={"is_ocr": True}),
        Route(service="nanonets"),
    )
    pdf = sniff.DocumentInfo("pdf", 1)
    d = router.route(routes, "a.pdf", 100, pdf, _everyone)
    assert (d.service, d.options) == ("mineru", {"is_ocr": True})
    assert router.route(routes, "a.pdf", 101, pdf, _everyone).service == "nanonets"


# --- hostile and odd files: only DocumentErrors, in bounded time and memory -----------------

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_certificate_encrypted_pdf_is_an_encrypted_document() -> None:
    """pypdf refuses the public-key handler with NotImplementedError, which used to
    escape inspect() and stop all inspection."""
    with pytest.raises(EncryptedDocument, match="certificate-encrypted") as info:
        sniff.inspect(DATA / "certificate-encrypted.pdf")
    assert "certificate" in info.value.hint


@pytest.mark.parametrize(
    "make", list(pathological.PATHOLOGICAL.values()), ids=list(pathological.PATHOLOGICAL)
)
def test_pathological_pdfs_fail_as_documents_quickly(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    doc = _file(tmp_path, "hostile.pdf", make())
    started = time.monotonic()
    with pytest.raises(DocumentError) as info:
        sniff.inspect(doc)
    assert time.monotonic() - started < 15
    assert isinstance(info.value, (CorruptDocument, EncryptedDocument))
    assert "hostile.pdf" in info.value.message


def test_pypdf_exceptions_outside_its_hierarchy_become_corrupt_documents(tmp_path: Path) -> None:
    # AssertionError (an object stream that is not one), LimitReachedError (nesting)
    with pytest.raises(CorruptDocument, match="AssertionError"):
        sniff.inspect(_file(tmp_path, "a.pdf", pathological.compressed_in_a_non_object_stream()))
    with pytest.raises(DocumentTooComplex, match="safety limits"):
        sniff.inspect(_file(tmp_path, "b.pdf", pathological.deep_page_tree()))
    # pypdf seeks before the start of a mangled file: OSError(EINVAL), not a disk error
    with pytest.raises(CorruptDocument, match="Invalid argument") as info:
        sniff.inspect(DATA / "fuzzed-negative-seek.pdf")
    assert type(info.value) is CorruptDocument


def test_a_sane_count_is_read_without_walking_the_page_tree(tmp_path: Path) -> None:
    doc = _file(tmp_path, "book.pdf", pathological.pages_pdf(5000))
    started = time.monotonic()
    assert sniff.inspect(doc).pages == 5000
    assert time.monotonic() - started < 5
    # an implausible /Count is not trusted: the tree is walked instead
    lying = pathological.pages_pdf(3).replace(b"/Count 3", b"/Count 9999999")
    assert sniff.inspect(_file(tmp_path, "lying.pdf", lying)).pages == 3


def test_a_pdf_without_end_marker_fails_fast(tmp_path: Path) -> None:
    cut = receipt_pdf()[:-40]  # a download cut short: no %%EOF at all
    assert b"%%EOF" not in cut
    with pytest.raises(CorruptDocument, match="incomplete"):
        sniff.inspect(_file(tmp_path, "cut.pdf", cut))
    # an end marker itself cut short is accepted, as pypdf does
    almost = receipt_pdf().rstrip()[:-1]
    assert sniff.inspect(_file(tmp_path, "almost.pdf", almost)).pages == 1


def test_a_fifo_named_like_a_document_does_not_block_inspection(tmp_path: Path) -> None:
    fifo = tmp_path / "queued.pdf"
    os.mkfifo(fifo)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(sniff.inspect(fifo))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        with contextlib.suppress(OSError):  # let the stuck open() return
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("inspect() blocked on a FIFO")
    assert isinstance(outcome[0], UnsupportedDocument) and "a FIFO" in str(outcome[0])


def test_a_link_file_is_read_with_a_cap(tmp_path: Path) -> None:
    huge = b"[InternetShortcut]\nURL=https://example.com/a.pdf\n" + b";" * (1 << 20)
    with pytest.raises(UnsupportedDocument, match="too large to be a link"):
        sniff.inspect(_file(tmp_path, "a.url", huge))
    with pytest.raises(UnsupportedDocument, match="too large to be a link"):
        sniff.read_link(tmp_path / "a.url")


def test_non_utf8_names_in_messages_are_readable(tmp_path: Path) -> None:
    name = os.fsdecode(b"Factura_\xf1.pdf")
    with pytest.raises(EmptyDocument, match=r"Factura_ñ\.pdf is empty"):
        sniff.inspect(_file(tmp_path, name, b""))


# --- legacy Office: the kind from the directory, never the whole file -----------------------


@pytest.mark.parametrize(("sample", "kind"), [("receipt.doc", "doc"), ("receipt.xls", "xls")])
def test_real_legacy_office_files(sample: str, kind: str) -> None:
    assert sniff.inspect(DATA / sample).kind == kind


@pytest.mark.parametrize(
    ("streams", "kind"),
    [
        (["1Table", "WordDocument", "\x05SummaryInformation"], "doc"),
        (["Current User", "PowerPoint Document"], "ppt"),
        (["Workbook"], "xls"),
        (["Book"], "xls"),  # Excel 5/95
    ],
)
@pytest.mark.parametrize("shift", [9, 12])  # 512- and 4096-byte sectors (CFB v3, v4)
def test_ole_kinds(tmp_path: Path, streams: list[str], kind: str, shift: int) -> None:
    doc = _file(tmp_path, "legacy", pathological.cfb(streams, shift=shift))
    assert sniff.inspect(doc).kind == kind


def test_ole_kind_ignores_embedded_objects_and_deep_directories(tmp_path: Path) -> None:
    # a Word document with 300 other entries before its main stream; an Excel workbook
    # with an embedded Word object (a storage at the root, never its streams) stays xls
    many = pathological.cfb([f"S{i}" for i in range(300)] + ["WordDocument"])
    assert sniff.inspect(_file(tmp_path, "many", many)).kind == "doc"
    embedded = pathological.cfb(["Workbook"], storages=["MBD0001A2B3"])
    assert sniff.inspect(_file(tmp_path, "embedded", embedded)).kind == "xls"


def test_damaged_and_other_ole_files(tmp_path: Path) -> None:
    with pytest.raises(EncryptedDocument, match="password-protected Office"):
        sniff.inspect(
            _file(tmp_path, "a", pathological.cfb(["EncryptionInfo", "EncryptedPackage"]))
        )
    with pytest.raises(UnsupportedDocument, match="not a Word"):
        sniff.inspect(_file(tmp_path, "b", pathological.cfb(["__properties_version1.0"])))
    for name, data in {
        "loop": pathological.cfb(list("ABCDE"), dir_loop=True),
        "siblings": pathological.cfb(list("ABC"), sibling_loop=True),
        "cut": pathological.cfb([f"S{i}" for i in range(30)] + ["WordDocument"])[:1500],
        "header": pathological.cfb(["WordDocument"])[:300],
    }.items():
        with pytest.raises(CorruptDocument, match="damaged Office"):
            sniff.inspect(_file(tmp_path, name, data))


def test_a_huge_ole_file_is_sniffed_in_bounded_memory(tmp_path: Path) -> None:
    """Item 13: a 1.5 GB .doc took the daemon from 43 to 1,581 MB. A sparse 512 MB file
    in a fresh interpreter: the peak RSS must not move by more than a few MB."""
    doc = tmp_path / "big.doc"
    with doc.open("wb") as fh:
        fh.write(pathological.cfb(["1Table", "WordDocument"]))
        fh.truncate(512 << 20)
    script = (
        "import pathlib, resource, sys\n"
        "from daemon import sniff\n"
        "import pypdf, PIL.Image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "kind = sniff.inspect(pathlib.Path(sys.argv[1])).kind\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(kind, (after - before) // 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(doc)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out[0] == "doc"
    assert int(out[1]) < 32, f"peak RSS grew by {out[1]} MB"


# --- the inspection helper ------------------------------------------------------------------


def test_the_helper_inspects_like_inspect(tmp_path: Path) -> None:
    good = _file(tmp_path, "recibo.pdf", multipage_pdf(3))
    with sniff.Inspector() as inspector:
        assert inspector.inspect(good) == sniff.inspect(good)
        with pytest.raises(EncryptedDocument, match="certificate-encrypted") as info:
            inspector.inspect(DATA / "certificate-encrypted.pdf")
        assert info.value.hint == sniff.CERTIFICATE_HINT
        with pytest.raises(UnsupportedDocument, match="not a document"):
            inspector.inspect(_file(tmp_path, "notes.pdf", b"just text"))
        assert inspector.inspect(DATA / "receipt.xls").kind == "xls"
        odd = _file(tmp_path, os.fsdecode(b"Factura_\xf1.pdf"), receipt_pdf())
        assert inspector.inspect(odd) == sniff.DocumentInfo("pdf", 1)
        empty = _file(tmp_path, os.fsdecode(b"Vac\xedo.pdf"), b"")
        with pytest.raises(EmptyDocument, match=r"^Vacío\.pdf is empty"):
            inspector.inspect(empty)
        assert inspector.starts == 1


def test_a_large_daemon_does_not_make_every_helper_retire(tmp_path: Path) -> None:
    """CI, 2026-12-01: after a thousand tests the pytest process held ~600 MB, and on
    Linux a spawned helper inherits its parent's peak RSS, so every helper "grew
    large" and retired after one document (200 helpers for 200 calls). A helper started
    from a 700 MB process must serve every document."""
    good = _file(tmp_path, "good.pdf", receipt_pdf())
    script = (
        "import sys\n"
        "from daemon import sniff\n"
        "ballast = bytearray(700 << 20)\n"
        "for i in range(0, len(ballast), 4096):\n"
        "    ballast[i] = 1\n"
        "with sniff.Inspector() as inspector:\n"
        "    for _ in range(4):\n"
        "        inspector.inspect(sys.argv[1])\n"
        "    print(inspector.starts)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(good)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stdout.split() == ["1"], out.stderr


def test_a_warmed_helper_serves_the_first_document(tmp_path: Path) -> None:
    """The daemon warms the helper at start (bench pickup, 2026-12-01: the first
    document waited 630 ms for it); the first document then uses that helper, and a
    closed inspector starts none."""
    good = _file(tmp_path, "good.pdf", receipt_pdf())
    with sniff.Inspector() as inspector:
        inspector.warm()
        assert inspector.starts == 1
        assert inspector.inspect(good).pages == 1
        assert inspector.starts == 1
    closed = sniff.Inspector()
    closed.close()
    closed.warm()
    assert closed.starts == 0


def test_a_file_past_the_time_limit_fails_alone(tmp_path: Path) -> None:
    """A damaged cross-reference table makes pypdf parse every object in Python (200,000
    objects: seconds to minutes): the helper is killed at the deadline, the document
    fails as too complex, and the next document is read by a fresh helper."""
    slow = _file(tmp_path, "slow.pdf", pathological.many_objects_without_xref(200_000))
    good = _file(tmp_path, "good.pdf", receipt_pdf())
    with sniff.Inspector(timeout=0.5) as inspector:
        assert inspector.inspect(good).pages == 1
        started = time.monotonic()
        with pytest.raises(DocumentTooComplex, match=r"within 0\.5 s"):
            inspector.inspect(slow)
        assert time.monotonic() - started < 10
        assert inspector.inspect(good).pages == 1
        assert inspector.starts == 2


def test_the_helper_has_a_memory_ceiling(tmp_path: Path) -> None:
    bomb = _file(tmp_path, "bomb.pdf", pathological.object_stream_bomb(70))  # under pypdf's 75 MB
    good = _file(tmp_path, "good.pdf", receipt_pdf())
    with sniff.Inspector(memory=128 << 20) as inspector:  # the helper alone takes ~56 MB
        assert inspector.inspect(good).pages == 1
        with pytest.raises(DocumentTooComplex):
            inspector.inspect(bomb)
        assert inspector.inspect(good).pages == 1


def test_closing_releases_a_waiting_inspection(tmp_path: Path) -> None:
    slow = _file(tmp_path, "slow.pdf", pathological.many_objects_without_xref(400_000))
    inspector = sniff.Inspector(timeout=120)
    assert inspector.inspect(DATA / "receipt.doc").kind == "doc"
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            inspector.inspect(slow)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    wait_for(lambda: inspector.busy, message="the inspection to start")
    started = time.monotonic()
    inspector.close()
    thread.join(15)
    assert not thread.is_alive() and time.monotonic() - started < 15
    assert isinstance(outcome[0], Stopping)
    with pytest.raises(Stopping):
        inspector.inspect(slow)
