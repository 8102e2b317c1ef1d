"""What a dropped file really is, from its bytes (never its name), and how many pages it has.

Routing and the services' limits need the type and page count before anything is
sent; a file that is empty, not a document, corrupt or encrypted fails here with
a clear error instead of wasting a request.

Every file is hostile until read: :func:`inspect` raises nothing but
:class:`~daemon.errors.DocumentError` subclasses, whatever the bytes make the parsers do
(pypdf raises a zoo: ``NotImplementedError``, ``LimitReachedError``, ``AssertionError``,
``RecursionError``...), and each read has a ceiling: the head is 4 KiB, a link file
64 KiB, a legacy Office file only its header and directory. pypdf's own safety limits
bound most PDFs, but some structures still take minutes in pure Python (a damaged cross
reference table makes it parse every object in the file), so :class:`Inspector` runs
:func:`inspect` in a long-lived helper process with a time and memory ceiling, killed
and restarted when a file exceeds them. The daemon inspects through an ``Inspector``;
``inspect`` itself is the in-process step (tests, tools, the helper).
"""

from __future__ import annotations

import configparser
import contextlib
import errno
import hashlib
import logging
import multiprocessing
import os
import plistlib
import re
import signal
import struct
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from . import errors
from .docfile import display_name, open_document, os_error, read_bounded
from .errors import (
    CorruptDocument,
    DocumentError,
    DocumentTooComplex,
    EmptyDocument,
    EncryptedDocument,
    InternalDocumentError,
    Stopping,
    UnsupportedDocument,
)

log = logging.getLogger(__name__)

MIME = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "tiff": "image/tiff",
    "gif": "image/gif",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "doc": "application/msword",
    "ppt": "application/vnd.ms-powerpoint",
    "xls": "application/vnd.ms-excel",
    "link": "text/uri-list",
}
#: The extension a service expects for each kind (MinerU checks the name's suffix).
EXTENSION = {"jpg": ".jpg", "tiff": ".tif", "link": ".url"}

HEAD_BYTES = 4096
LINK_MAX_BYTES = 64 * 1024
#: More pages than this is no document a person dropped; also pypdf's page-tree ceiling.
MAX_PAGES = 100_000
#: A TIFF with more frames than this is refused before PIL walks them all.
MAX_FRAMES = 10_000

#: The in-process ceiling the helper's timeout is a safeguard for: reading one file never
#: takes longer than this. Measured (bench figures in the report of issue 12): a sane PDF
#: of any size takes milliseconds; the worst hostile PDFs found take minutes.
INSPECT_TIMEOUT = 30.0
#: Address space the helper may use (POSIX); pypdf's own buffers are capped at 75 MB each.
WORKER_MEMORY = 2 << 30
#: A helper whose resident size passed this after a document is replaced by a fresh one.
WORKER_RETIRE_RSS = 512 << 20
#: Writing one part of a document split into parts (up to a service's 200 MB) may take
#: this long before the document counts as too complex to split.
SPLIT_TIMEOUT = 300.0
#: Document kinds docinbox can split into parts at page boundaries.
SPLITTABLE = frozenset({"pdf"})


@dataclass(frozen=True)
class PartFile:
    """One part written by :func:`write_pdf_part`: what the store records of it."""

    size: int
    sha256: str
    pages: int
    mtime_ns: int


@dataclass(frozen=True)
class DocumentInfo:
    kind: str
    pages: int | None = None  # None: unknown (Office documents, links)
    url: str | None = None  # for links

    @property
    def mime(self) -> str:
        return MIME.get(self.kind, "application/octet-stream")


def sniff_kind(head: bytes) -> str | None:
    """The document type from the first bytes, or None when it is no document we know."""
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024]):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head.startswith(b"BM") and len(head) > 14:
        return "bmp"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head.startswith(b"PK\x03\x04"):
        return "zip"  # an OOXML document, told apart by its members
    if head.startswith(OLE_SIGNATURE):
        return "ole"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"[InternetShortcut]") or text.startswith(b"[Desktop Entry]"):
        return "link"
    if text.startswith(b"bplist00") or (text.startswith(b"<?xml") and b"<plist" in text[:512]):
        return "link"
    return None


def inspect(path: str | os.PathLike[str]) -> DocumentInfo:
    """Type and page count of the file at *path*, in this process.

    Raises only DocumentError subclasses: what is wrong with the file (empty, not a
    document, corrupt, encrypted, too complex to read, gone, unreadable), or
    ``InternalDocumentError`` for a bug of ours met on this file."""
    name = display_name(os.path.basename(os.fspath(path)))
    try:
        # Parsers warn about the damage they work around (PIL: "Corrupt EXIF data"): the
        # outcome says what matters; the helper process ignores warnings altogether.
        with open_document(path) as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _inspect_open(fh, name)
    except DocumentError:
        raise
    except OSError as exc:
        if exc.errno in (None, errno.EINVAL):  # a parser's, not the disk's
            raise CorruptDocument(f"{name} cannot be read: {_brief(exc)}") from exc
        raise os_error(exc, name) from exc
    except MemoryError as exc:
        raise DocumentTooComplex(f"{name} needs more memory to read than docinbox allows") from exc
    except Exception as exc:
        raise InternalDocumentError(
            f"{name}: inspecting it failed unexpectedly: {type(exc).__name__}: {_brief(exc)}"
        ) from exc


def _inspect_open(fh: BinaryIO, name: str) -> DocumentInfo:
    head = fh.read(HEAD_BYTES)
    if not head:
        raise EmptyDocument(f"{name} is empty")
    kind = sniff_kind(head)
    fh.seek(0)
    if kind == "pdf":
        return DocumentInfo("pdf", _pdf_pages(fh, name))
    if kind in ("png", "jpg", "gif", "bmp", "webp"):
        return DocumentInfo(kind, 1)
    if kind == "tiff":
        return DocumentInfo("tiff", _image_frames(fh, name))
    if kind == "zip":
        return DocumentInfo(_ooxml_kind(fh, name))
    if kind == "ole":
        return DocumentInfo(_ole_kind(fh, name))
    if kind == "link":
        return DocumentInfo("link", url=_parse_link(read_bounded_link(fh, name), name))
    raise UnsupportedDocument(
        f"{name} is not a document docinbox can send (its content starts with {head[:8]!r})"
    )


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


# --- PDF ------------------------------------------------------------------------------------

CERTIFICATE_HINT = (
    "The PDF is encrypted for its recipients' certificates. Open it with "
    "your certificate, save a copy without security, and drop that copy."
)
UNSUPPORTED_ENCRYPTION_HINT = (
    "Save a copy of the PDF without security (or print it to PDF) and drop that copy."
)
_PUBSEC = re.compile(rb"/Filter\s*/Adobe\.PubSec")


def pdf_pages(path: str | os.PathLike[str]) -> int:
    """The page count of the PDF at *path* (DocumentError when it has none we can read)."""
    name = display_name(os.path.basename(os.fspath(path)))
    with open_document(path) as fh:
        return _pdf_pages(fh, name)


def write_pdf_part(
    path: str | os.PathLike[str], first: int, last: int, target: str | os.PathLike[str]
) -> PartFile:
    """Pages *first*..*last* (1-based, inclusive) of the PDF at *path*, as a PDF of their
    own at *target* (written aside, fsynced, renamed in: a crash leaves it whole or
    absent).  Streaming: pypdf reads the file through an open handle, and only those
    pages' objects (their content, fonts, images) are loaded and copied, so memory
    follows the part, not the document.  Raises only DocumentError subclasses (and
    HostError when the work folder's disk says no)."""
    name = display_name(os.path.basename(os.fspath(path)))
    target = os.fspath(target)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.tmp")
    try:
        with open_document(path) as fh, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pages = _write_pages(fh, name, first, last, tmp)
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_file(os.path.dirname(target) or ".", directory=True)
        st = os.stat(target)
        return PartFile(st.st_size, _sha256_file(target), pages, st.st_mtime_ns)
    except DocumentError:
        raise
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if exc.errno in (None, errno.EINVAL):
            raise CorruptDocument(f"{name} cannot be split: {_brief(exc)}") from exc
        raise errors.HostError(f"cannot write a part of {name}: {exc.strerror or exc}") from exc
    except Exception as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _pdf_error(exc, name) from exc


def _write_pages(fh: BinaryIO, name: str, first: int, last: int, target: str) -> int:
    import pypdf

    reader = pypdf.PdfReader(fh, strict=False)  # a handle: pypdf reads what it needs
    if reader.is_encrypted and not reader.decrypt(""):
        raise EncryptedDocument(f"{name} is password-protected")
    total = len(reader.pages)
    if not 1 <= first <= last <= total:
        raise CorruptDocument(f"{name} has {total} pages, not {last}")
    writer = pypdf.PdfWriter()
    for index in range(first - 1, last):
        writer.add_page(reader.pages[index])
    with open(target, "wb") as out:
        writer.write(out)
    return last - first + 1


def _fsync_file(path: str, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:
            return  # folders cannot be opened everywhere: the rename stands
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _pdf_pages(fh: BinaryIO, name: str) -> int:
    from pypdf.errors import LimitReachedError

    reader = _open_pdf(fh, name)
    try:
        _decrypt(reader, name)
        pages = _count_pages(reader)
    except DocumentError:
        raise
    except LimitReachedError as exc:
        raise DocumentTooComplex(
            f"{name} exceeds the PDF reader's safety limits: {_brief(exc)}"
        ) from exc
    except Exception as exc:
        raise _pdf_error(exc, name) from exc
    if pages < 1:
        raise CorruptDocument(f"{name} has no pages")
    if pages > MAX_PAGES:
        raise DocumentTooComplex(f"{name} claims {pages} pages; docinbox reads at most {MAX_PAGES}")
    return pages


def _open_pdf(fh: BinaryIO, name: str) -> Any:
    """pypdf's reader on a whole file; what it cannot open is the document's error: an
    encryption it does not know is told apart from damage, the fixes differ."""
    import pypdf  # imported here: start-up stays fast for those who never see a PDF

    _require_eof_marker(fh, name)
    fh.seek(0)
    try:
        # An open file, not a path: given a path pypdf reads the whole file into memory.
        return pypdf.PdfReader(fh, strict=False)
    except NotImplementedError as exc:
        # pypdf knows only the Standard (password) security handler; it refuses the others
        # while reading the trailer (pypdf/_encryption.py, Encryption.read).
        if _has_pubsec_filter(fh):
            raise EncryptedDocument(
                f"{name} is certificate-encrypted (Adobe public-key security): only its "
                "recipients' certificates open it",
                hint=CERTIFICATE_HINT,
            ) from exc
        if "encrypt" in str(exc).lower():
            raise EncryptedDocument(
                f"{name} uses an encryption docinbox cannot open: {_brief(exc)}",
                hint=UNSUPPORTED_ENCRYPTION_HINT,
            ) from exc
        raise CorruptDocument(f"{name} is not a readable PDF: {_brief(exc)}") from exc
    except Exception as exc:
        raise _pdf_error(exc, name) from exc


def _decrypt(reader: Any, name: str) -> None:
    """An encrypted PDF opened with the empty password, as a viewer does: the pages of
    one with only an owner password can be counted (and parsed)."""
    from pypdf.errors import DependencyError

    if not reader.is_encrypted:
        return
    try:
        # An owner password alone (no user password) still opens.
        opened = reader.decrypt("")
    except (NotImplementedError, DependencyError) as exc:
        raise EncryptedDocument(
            f"{name} uses an encryption docinbox cannot open: {_brief(exc)}",
            hint=UNSUPPORTED_ENCRYPTION_HINT,
        ) from exc
    if not opened:
        raise EncryptedDocument(f"{name} is password-protected")


def _count_pages(reader: Any) -> int:
    """The page tree's ``/Count`` when it is plausible, else the pages counted.

    Viewers take ``/Count`` as the page count (pdf.js, src/core/catalog.js: ``numPages``
    is the top-level page-tree node's ``Count`` until pages fail to load), and it is
    O(1): walking the tree is O(pages) in pure Python (100,000 pages: 12 s, 330 MB),
    and a page-tree loop or fan-out makes it worse. A ``/Count`` that
    is not a positive integer, or larger than the file's object count (each page is an
    object of its own), is not trusted: then pypdf walks the tree, within its limits."""
    # Not .get(): dict.get bypasses pypdf's __getitem__, which resolves indirect objects.
    pages_node = reader.root_object["/Pages"]
    count = pages_node["/Count"] if "/Count" in pages_node else None  # noqa: SIM401
    size = reader.trailer["/Size"] if "/Size" in reader.trailer else None  # noqa: SIM401
    if (
        isinstance(count, int)
        and not isinstance(count, bool)
        and 0 < count <= MAX_PAGES
        and (not isinstance(size, int) or count < size)
    ):
        return int(count)
    return len(reader.pages)


def _pdf_error(exc: BaseException, name: str) -> DocumentError:
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    if isinstance(exc, FileNotDecryptedError):
        return EncryptedDocument(f"{name} is password-protected")
    if isinstance(exc, LimitReachedError):
        return DocumentTooComplex(f"{name} exceeds the PDF reader's safety limits: {_brief(exc)}")
    if isinstance(exc, MemoryError):
        return DocumentTooComplex(f"{name} needs more memory to read than docinbox allows")
    if isinstance(exc, RecursionError):
        return DocumentTooComplex(f"{name} is nested too deeply to read")
    if isinstance(exc, OSError) and exc.errno not in (None, errno.EINVAL):
        return os_error(exc, name)  # the disk or share said no; EINVAL: a seek before 0
    detail = f": {_brief(exc)}" if str(exc).strip() else ""
    return CorruptDocument(f"{name} is not a readable PDF: {type(exc).__name__}{detail}")


def _require_eof_marker(fh: BinaryIO, name: str, chunk: int = 1 << 20) -> None:
    """Fail fast on a PDF with no ``%%EOF`` anywhere (a copy or download cut short).

    pypdf fails on those too, but only after reading the file backwards line by line in
    Python: 210 MB took 45-60 s. A marker that is itself cut (``%%EO``) is left to pypdf,
    which accepts it; a marker only further up (an earlier revision) too."""
    size = os.fstat(fh.fileno()).st_size
    fh.seek(max(0, size - 1024))
    tail = fh.read()
    if b"%%EOF" in tail or tail.rstrip().endswith((b"%%EO", b"%%E", b"%")):
        return
    fh.seek(0)
    carry = b""
    while data := fh.read(chunk):
        if b"%%EOF" in carry + data:
            return
        carry = data[-4:]
    raise CorruptDocument(
        f"{name} is incomplete: it has no end-of-file marker (cut short while it was "
        "copied or downloaded?)",
        hint="Copy or download the PDF again, completely, and drop that copy.",
    )


def _has_pubsec_filter(fh: BinaryIO, chunk: int = 1 << 20) -> bool:
    """Whether the file names the public-key security handler; its encryption dictionary
    is never compressed or encrypted (PDF 1.7, 7.5.7 and 7.6.1), so the bytes say it."""
    fh.seek(0)
    tail = b""
    while data := fh.read(chunk):
        if _PUBSEC.search(tail + data):
            return True
        tail = data[-64:]
    return False


# --- images, OOXML ------------------------------------------------------------------------


def _image_frames(fh: BinaryIO, name: str) -> int:
    try:
        from PIL import Image

        with Image.open(fh) as img:
            frames = int(getattr(img, "n_frames", 1))
    except MemoryError as exc:
        raise DocumentTooComplex(f"{name} needs more memory to read than docinbox allows") from exc
    except Exception as exc:
        raise CorruptDocument(f"{name} is not a readable image: {_brief(exc)}") from exc
    if frames > MAX_FRAMES:
        raise DocumentTooComplex(f"{name} has {frames} frames; docinbox reads at most {MAX_FRAMES}")
    return frames


def _ooxml_kind(fh: BinaryIO, name: str) -> str:
    try:
        with zipfile.ZipFile(fh) as zf:
            names = set(zf.namelist())
    except MemoryError as exc:
        raise DocumentTooComplex(f"{name} needs more memory to read than docinbox allows") from exc
    except Exception as exc:  # zipfile raises BadZipFile, but also struct/Value/EOF errors
        raise CorruptDocument(f"{name} is a damaged zip/Office file: {_brief(exc)}") from exc
    if "[Content_Types].xml" in names:
        for prefix, kind in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
            if any(n.startswith(prefix) for n in names):
                return kind
    raise UnsupportedDocument(f"{name} is a zip archive, not a document")


# --- legacy Office (OLE compound files) ---------------------------------------------------

OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_NOSTREAM = 0xFFFFFFFF
_ENDOFCHAIN = 0xFFFFFFFE
_MAXREGSECT = 0xFFFFFFFA
#: At most this many directory sectors and root entries are read: bounds memory (a few
#: MB at most) and time whatever the file's size or its chains claim.
_OLE_MAX_DIR_SECTORS = 512
_OLE_MAX_ENTRIES = 4096
#: The streams at the root that name each legacy format: [MS-DOC] ``WordDocument``,
#: [MS-PPT] ``PowerPoint Document``, [MS-XLS] ``Workbook`` (Excel 5/95 called it
#: ``Book``); checked in this order.
_OLE_KINDS = (
    ("worddocument", "doc"),
    ("powerpoint document", "ppt"),
    ("workbook", "xls"),
    ("book", "xls"),
)


class _Ole:
    """Just enough of [MS-CFB] to list the root storage's entries, reading only the
    header, the directory sectors and the FAT sectors that chain them."""

    def __init__(self, fh: BinaryIO, name: str) -> None:
        self.fh, self.name = fh, name
        self.size = os.fstat(fh.fileno()).st_size
        header = self._read_at(0, 512)
        if header[:8] != OLE_SIGNATURE:
            raise self._corrupt("bad signature")
        shift = struct.unpack_from("<H", header, 0x1E)[0]
        if shift not in (9, 12):  # version 3: 512-byte sectors; version 4: 4096
            raise self._corrupt(f"sector shift {shift}")
        self.shift = shift
        self.sector_size = 1 << shift
        self.per_sector = self.sector_size // 4
        self.fat_count = struct.unpack_from("<I", header, 0x2C)[0]
        self.first_dir = struct.unpack_from("<I", header, 0x30)[0]
        self.first_difat = struct.unpack_from("<I", header, 0x44)[0]
        self.difat = list(struct.unpack_from("<109I", header, 0x4C))
        self.difat_next = self.first_difat
        self.difat_seen: set[int] = set()
        self.fat_sectors: dict[int, bytes] = {}
        self.dir_chain = [self.first_dir]
        self.dir_seen = {self.first_dir}
        self.dir_sectors: dict[int, bytes] = {}

    def _corrupt(self, why: str) -> CorruptDocument:
        return CorruptDocument(f"{self.name} is a damaged Office (OLE) file: {why}")

    def _read_at(self, offset: int, length: int) -> bytes:
        self.fh.seek(offset)
        data = self.fh.read(length)
        if len(data) != length:
            raise self._corrupt("it ends early")
        return data

    def _sector(self, number: int) -> bytes:
        if number > _MAXREGSECT or ((number + 1) << self.shift) + self.sector_size > self.size:
            raise self._corrupt(f"sector {number} lies outside the file")
        return self._read_at((number + 1) << self.shift, self.sector_size)

    def _fat_sector_location(self, index: int) -> int:
        if index >= self.fat_count:
            raise self._corrupt("a chain runs past the allocation table")
        while index >= len(self.difat):  # FAT sectors past the 109th: the DIFAT chain
            if (
                self.difat_next > _MAXREGSECT
                or self.difat_next in self.difat_seen
                or len(self.difat_seen) >= _OLE_MAX_DIR_SECTORS
            ):
                raise self._corrupt("broken DIFAT chain")
            self.difat_seen.add(self.difat_next)
            data = self._sector(self.difat_next)
            entries = struct.unpack(f"<{self.per_sector}I", data)
            self.difat.extend(entries[:-1])
            self.difat_next = entries[-1]
        return self.difat[index]

    def _next(self, sector: int) -> int:
        index, slot = divmod(sector, self.per_sector)
        if index not in self.fat_sectors:
            self.fat_sectors[index] = self._sector(self._fat_sector_location(index))
        return struct.unpack_from("<I", self.fat_sectors[index], slot * 4)[0]

    def entry(self, number: int) -> bytes:
        position, offset = divmod(number * 128, self.sector_size)
        if position >= _OLE_MAX_DIR_SECTORS:
            raise self._corrupt("directory too large")
        while len(self.dir_chain) <= position:
            following = self._next(self.dir_chain[-1])
            if following == _ENDOFCHAIN:
                raise self._corrupt(f"directory entry {number} does not exist")
            if following > _MAXREGSECT or following in self.dir_seen:
                raise self._corrupt("broken directory chain")
            self.dir_chain.append(following)
            self.dir_seen.add(following)
        sector = self.dir_chain[position]
        if sector not in self.dir_sectors:
            self.dir_sectors[sector] = self._sector(sector)
        return self.dir_sectors[sector][offset : offset + 128]

    def root_entries(self) -> list[tuple[str, int]]:
        """(name, type) of each entry directly in the root storage: a red-black tree of
        siblings under the root entry's child (type 1 storage, 2 stream)."""
        root = self.entry(0)
        if root[0x42] != 5:
            raise self._corrupt("no root entry")
        found: list[tuple[str, int]] = []
        pending = [struct.unpack_from("<I", root, 0x4C)[0]]
        seen: set[int] = set()
        while pending:
            number = pending.pop()
            if number == _NOSTREAM:
                continue
            if number in seen or len(seen) >= _OLE_MAX_ENTRIES:
                raise self._corrupt("looping or oversized directory")
            seen.add(number)
            entry = self.entry(number)
            length = min(struct.unpack_from("<H", entry, 0x40)[0], 64)
            name = entry[: max(length - 2, 0)].decode("utf-16-le", "replace")
            found.append((name, entry[0x42]))
            left, right = struct.unpack_from("<II", entry, 0x44)
            pending += [left, right]
        return found


def _ole_kind(fh: BinaryIO, name: str) -> str:
    """Word, Excel or PowerPoint, from the names of the root storage's streams.

    Streams the container's directory instead of reading the file (a 1.5 GB file used to
    take 1.5 GB of memory here): a few KB are read, whatever the size."""
    try:
        entries = _Ole(fh, name).root_entries()
    except DocumentError:
        raise
    except (struct.error, IndexError, ValueError) as exc:
        raise CorruptDocument(f"{name} is a damaged Office (OLE) file: {_brief(exc)}") from exc
    streams = {entry_name.casefold() for entry_name, kind in entries if kind == 2}
    for marker, kind in _OLE_KINDS:
        if marker in streams:
            return kind
    if {"encryptedpackage", "encryptioninfo"} <= streams:
        raise EncryptedDocument(
            f"{name} is a password-protected Office document",
            hint="Remove the password in Office (File > Info > Protect) and drop it again.",
        )
    raise UnsupportedDocument(
        f"{name} is an OLE file that is not a Word, PowerPoint or Excel document"
    )


# --- links ----------------------------------------------------------------------------------


def read_link(path: str | os.PathLike[str]) -> str:
    """The URL of a .url (Windows), .webloc (macOS) or .desktop (freedesktop) link."""
    name = display_name(os.path.basename(os.fspath(path)))
    with open_document(path) as fh:
        return _parse_link(read_bounded_link(fh, name), name)


def read_bounded_link(fh: BinaryIO, name: str) -> bytes:
    try:
        return read_bounded(fh, LINK_MAX_BYTES)
    except ValueError as exc:
        raise UnsupportedDocument(f"{name} is too large to be a link file") from exc


def _parse_link(data: bytes, name: str) -> str:
    url: Any = None
    stripped = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith((b"bplist00", b"<?xml")):
        try:
            plist = plistlib.loads(data)
        except Exception as exc:
            raise CorruptDocument(f"{name} is not a readable .webloc: {_brief(exc)}") from exc
        if isinstance(plist, dict):
            url = plist.get("URL")
    else:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(data.decode("utf-8", errors="replace"))
        except configparser.Error as exc:
            raise CorruptDocument(f"{name} is not a readable link file: {_brief(exc)}") from exc
        for section in ("InternetShortcut", "Desktop Entry"):
            if parser.has_option(section, "URL"):
                url = parser.get(section, "URL")
                break
    if not url or not isinstance(url, str):
        raise UnsupportedDocument(f"{name} holds no URL")
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise UnsupportedDocument(f"{name} links to {url[:80]!r}, not an http(s) URL")
    return url


# --- the inspection helper process ----------------------------------------------------------


class Inspector:
    """:func:`inspect` in a long-lived helper process, so that no file holds inspection
    longer than *timeout* seconds or takes more than *memory* bytes.

    One helper serves calls one at a time (calls from several threads queue on a lock).
    A file that runs past the timeout gets ``DocumentTooComplex`` and the helper is
    killed; the next call starts a fresh one (~0.3 s). A helper that grew large retires
    after its answer. :meth:`close` (from any thread) kills it at once: a call waiting on
    it raises :class:`~daemon.errors.Stopping` instead of failing its document. If the
    helper cannot be started at all, inspection falls back to this process (logged)."""

    def __init__(
        self,
        *,
        timeout: float = INSPECT_TIMEOUT,
        memory: int | None = WORKER_MEMORY,
        retire_rss: int = WORKER_RETIRE_RSS,
        start_timeout: float = 60.0,
    ) -> None:
        self.timeout = timeout
        self.memory = memory
        self.retire_rss = retire_rss
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Any = None
        self._closed = False
        self._unavailable_until = 0.0
        #: Helpers started so far (tests and the report read it).
        self.starts = 0

    @property
    def busy(self) -> bool:
        """Whether a call is being served (or the helper is starting) right now."""
        return self._lock.locked()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def warm(self) -> None:
        """Start the helper now, so that the first document does not wait for it (its
        imports take ~0.3 s, more on a busy machine)."""
        with self._lock:
            if not self._closed:
                self._ensure_helper()

    def inspect(self, path: str | os.PathLike[str]) -> DocumentInfo:
        """Like :func:`inspect`; also ``Stopping`` once :meth:`close` was called."""
        name = display_name(os.path.basename(os.fspath(path)))
        reply = self._ask(
            os.fspath(path),
            name,
            self.timeout,
            "could not be read",
            fallback=lambda: inspect(path),
        )
        return reply if isinstance(reply, DocumentInfo) else _decode(reply)

    def split_part(
        self,
        path: str | os.PathLike[str],
        first: int,
        last: int,
        target: str | os.PathLike[str],
        *,
        timeout: float = SPLIT_TIMEOUT,
    ) -> PartFile:
        """Like :func:`write_pdf_part`, in the helper: its memory ceiling and a time
        limit (*timeout*) hold for splitting as for reading."""
        name = display_name(os.path.basename(os.fspath(path)))
        request = ("split", os.fspath(path), first, last, os.fspath(target))
        reply = self._ask(
            request,
            name,
            timeout,
            "could not be split",
            fallback=lambda: write_pdf_part(path, first, last, target),
        )
        if isinstance(reply, PartFile):
            return reply
        if reply[0] == "ok":
            _, size, sha256, pages, mtime_ns, _ = reply
            return PartFile(size, sha256, pages, mtime_ns)
        raise _error_of(reply)

    def _ask(
        self,
        request: Any,
        name: str,
        timeout: float,
        failed: str,
        *,
        fallback: Any,
    ) -> Any:
        """Send *request* to the helper and wait up to *timeout* for its reply (a tuple),
        or run *fallback* here when no helper can be started."""
        with self._lock:
            if self._closed:
                raise Stopping("inspection stopped: docinbox is shutting down")
            conn = self._ensure_helper()
            if conn is None:
                return fallback()
            try:
                conn.send(request)
                if not self._answered(conn, timeout):
                    self._discard()
                    if self._closed:
                        raise Stopping("inspection stopped: docinbox is shutting down")
                    raise DocumentTooComplex(
                        f"{name} {failed} within {timeout:g} s: its structure "
                        "is damaged or built to exhaust readers"
                    )
                reply = conn.recv()
            except (DocumentTooComplex, Stopping):
                raise
            except (EOFError, OSError) as exc:
                self._discard()
                if self._closed:
                    raise Stopping("inspection stopped: docinbox is shutting down") from exc
                raise DocumentTooComplex(
                    f"{name} made the document reader crash (likely out of memory)"
                ) from exc
            if reply[-1]:  # the helper retires after this answer
                self._discard(kill=False)
        return reply

    def _answered(self, conn: Any, timeout: float) -> bool:
        """Wait for the answer until the deadline, or until close() is called."""
        deadline = time.monotonic() + timeout
        while not self._closed:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if conn.poll(min(left, 0.5)):
                return True
        return False

    def close(self) -> None:
        """Stop the helper; safe from any thread, and more than once."""
        self._closed = True
        process = self._process
        if process is not None:
            with contextlib.suppress(Exception):
                process.kill()
        if self._lock.acquire(timeout=10):
            try:
                self._discard()
            finally:
                self._lock.release()

    def _ensure_helper(self) -> Any:
        if self._process is not None and self._process.is_alive():
            return self._conn
        self._discard()
        if time.monotonic() < self._unavailable_until:
            return None
        context = multiprocessing.get_context("spawn")  # no fork of a threaded daemon
        parent, child = context.Pipe()
        process = context.Process(
            target=_helper_main,
            name="docinbox-inspect",
            args=(child, self.memory, self.retire_rss),
            daemon=True,
        )
        try:
            process.start()
            child.close()
            if not parent.poll(self.start_timeout) or parent.recv() != "ready":
                raise OSError(f"no answer within {self.start_timeout:g} s")
        except Exception as exc:
            with contextlib.suppress(Exception):
                process.kill()
                process.join(5)
            parent.close()
            self._unavailable_until = time.monotonic() + 300
            log.warning(
                "the document inspection helper could not start (%s); inspecting "
                "in the daemon itself, without a time limit, for 5 minutes",
                exc,
            )
            return None
        self._process, self._conn = process, parent
        self.starts += 1
        return parent

    def _discard(self, *, kill: bool = True) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            if kill:
                with contextlib.suppress(Exception):
                    process.kill()
            process.join(5)
            if process.is_alive():  # stuck in the kernel (a dead network share): let it be
                log.warning("the inspection helper (pid %s) did not exit", process.pid)
            else:
                process.close()
        if conn is not None:
            conn.close()


def _decode(reply: tuple[Any, ...]) -> DocumentInfo:
    """The helper's answer: the DocumentInfo, or its DocumentError raised here."""
    if reply[0] == "ok":
        _, kind, pages, url, _ = reply
        return DocumentInfo(kind, pages, url)
    raise _error_of(reply)


def _error_of(reply: tuple[Any, ...]) -> errors.DocinboxError:
    """The error an ("error", class name, message, hint, retiring) reply stands for."""
    _, class_name, message, hint, _ = reply
    cls = getattr(errors, class_name, None)
    if class_name == "HostError":
        return errors.HostError(message, hint=hint)
    if not (isinstance(cls, type) and issubclass(cls, DocumentError)):
        cls = InternalDocumentError
    return cls(message, hint=hint)


def _limit_memory(limit: int | None) -> None:
    if limit is None:
        return
    try:
        import resource
    except ImportError:  # Windows: the helper retires on its peak size instead
        return
    with contextlib.suppress(ValueError, OSError):  # macOS does not enforce RLIMIT_AS
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _resident() -> int:
    """The helper's resident size now. Not ``ru_maxrss``: on Linux the peak survives
    fork and exec, so a helper started by a large daemon (or test run) would read its
    parent's peak and retire after every document."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    try:
        import resource
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # macOS: bytes, its own
    return peak if os.uname().sysname == "Darwin" else peak * 1024


def _serve(request: Any) -> tuple[Any, ...]:
    """One request of the helper: a path to inspect, or ("split", path, first, last,
    target) to write a part."""
    if isinstance(request, tuple) and request[0] == "split":
        _, path, first, last, target = request
        part = write_pdf_part(path, first, last, target)
        return ("ok", part.size, part.sha256, part.pages, part.mtime_ns)
    info = inspect(request)
    return ("ok", info.kind, info.pages, info.url)


def _helper_main(conn: Any, memory: int | None, retire_rss: int) -> None:
    """The helper: answers paths with ("ok", kind, pages, url, retiring) or ("error",
    class name, message, hint, retiring). It logs nothing (pypdf's warnings about damaged
    files would reach the daemon's terminal); every outcome goes back in the answer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the daemon, which stops us
    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")
    _limit_memory(memory)
    import pypdf  # noqa: F401  (loaded before "ready": the first document pays nothing)
    from PIL import Image  # noqa: F401

    conn.send("ready")
    while True:
        try:
            path = conn.recv()
        except (EOFError, OSError):
            return
        reply: tuple[Any, ...]
        hit_ceiling = False
        try:
            reply = _serve(path)
        except (DocumentError, errors.HostError) as exc:
            reply = ("error", type(exc).__name__, exc.message, exc.__dict__.get("hint"))
            hit_ceiling = isinstance(exc, DocumentTooComplex)
        except BaseException as exc:  # inspect() raises DocumentErrors only; a bug is ours
            reply = (
                "error",
                "InternalDocumentError",
                f"inspecting failed unexpectedly: {type(exc).__name__}",
                None,
            )
            hit_ceiling = True
        # After a ceiling (memory, limits) the helper's heap may stay bloated: a fresh one.
        retiring = hit_ceiling or _resident() > retire_rss
        try:
            conn.send((*reply, retiring))
        except (EOFError, OSError):
            return
        if retiring:
            return
