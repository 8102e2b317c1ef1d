"""What a dropped file really is, from its bytes (never its name), and how many pages it has.

Routing and the services' limits need the type and page count before anything is
sent; a file that is empty, not a document, corrupt or encrypted fails here with
a clear error instead of wasting a request.
"""

from __future__ import annotations

import configparser
import plistlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import (
    CorruptDocument,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocument,
)

MIME = {
    "pdf": "application/pdf", "png": "image/png", "jpg": "image/jpeg", "tiff": "image/tiff",
    "gif": "image/gif", "bmp": "image/bmp", "webp": "image/webp",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "doc": "application/msword", "ppt": "application/vnd.ms-powerpoint",
    "xls": "application/vnd.ms-excel", "link": "text/uri-list",
}
#: The extension a service expects for each kind (MinerU checks the name's suffix).
EXTENSION = {"jpg": ".jpg", "tiff": ".tif", "link": ".url"}

LINK_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class DocumentInfo:
    kind: str
    pages: int | None = None   # None: unknown (Office documents, links)
    url: str | None = None     # for links

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
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"[InternetShortcut]") or text.startswith(b"[Desktop Entry]"):
        return "link"
    if text.startswith(b"bplist00") or (text.startswith(b"<?xml") and b"<plist" in text[:512]):
        return "link"
    return None


def inspect(path: Path) -> DocumentInfo:
    """Type and page count of the file at *path*; raises a DocumentError if it is unusable."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head:
        raise EmptyDocument(f"{path.name} is empty")
    kind = sniff_kind(head)
    if kind == "pdf":
        return DocumentInfo("pdf", pdf_pages(path))
    if kind in ("png", "jpg", "gif", "bmp", "webp"):
        return DocumentInfo(kind, 1)
    if kind == "tiff":
        return DocumentInfo("tiff", _image_frames(path))
    if kind == "zip":
        return DocumentInfo(_ooxml_kind(path))
    if kind == "ole":
        return DocumentInfo(_ole_kind(path))
    if kind == "link":
        return DocumentInfo("link", url=read_link(path))
    raise UnsupportedDocument(f"{path.name} is not a document docinbox can send "
                              f"(its content starts with {head[:8]!r})")


def pdf_pages(path: Path) -> int:
    import pypdf  # imported here: start-up stays fast for those who never see a PDF
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    try:
        # An open file, not a path: given a path pypdf reads the whole file into memory.
        with path.open("rb") as fh:
            reader = pypdf.PdfReader(fh, strict=False)
            if reader.is_encrypted:
                try:
                    # An owner password alone (no user password) still opens.
                    if not reader.decrypt(""):
                        raise EncryptedDocument(f"{path.name} is password-protected")
                except (NotImplementedError, FileNotDecryptedError) as exc:
                    raise EncryptedDocument(f"{path.name} is password-protected") from exc
            pages = len(reader.pages)
    except EncryptedDocument:
        raise
    except FileNotDecryptedError as exc:
        raise EncryptedDocument(f"{path.name} is password-protected") from exc
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError) as exc:
        raise CorruptDocument(f"{path.name} is not a readable PDF: {exc}") from exc
    if pages < 1:
        raise CorruptDocument(f"{path.name} has no pages")
    return pages


def _image_frames(path: Path) -> int:
    try:
        from PIL import Image

        with Image.open(path) as img:
            return int(getattr(img, "n_frames", 1))
    except Exception as exc:
        raise CorruptDocument(f"{path.name} is not a readable image: {exc}") from exc


def _ooxml_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptDocument(f"{path.name} is a damaged zip/Office file: {exc}") from exc
    if "[Content_Types].xml" in names:
        for prefix, kind in (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx")):
            if any(n.startswith(prefix) for n in names):
                return kind
    raise UnsupportedDocument(f"{path.name} is a zip archive, not a document")


def _ole_kind(path: Path) -> str:
    # Legacy Office files share one container; the stream names tell them apart.
    data = path.read_bytes()[: 1 << 20]
    for marker, kind in ((b"W\x00o\x00r\x00d\x00D\x00o\x00c", "doc"),
                         (b"P\x00o\x00w\x00e\x00r\x00P\x00o\x00i\x00n\x00t", "ppt"),
                         (b"W\x00o\x00r\x00k\x00b\x00o\x00o\x00k", "xls")):
        if marker in data:
            return kind
    raise UnsupportedDocument(f"{path.name} is an OLE file that is not a Word, "
                              "PowerPoint or Excel document")


def read_link(path: Path) -> str:
    """The URL of a .url (Windows), .webloc (macOS) or .desktop (freedesktop) link."""
    if path.stat().st_size > LINK_MAX_BYTES:
        raise UnsupportedDocument(f"{path.name} is too large to be a link file")
    data = path.read_bytes()
    url: str | None = None
    stripped = data.lstrip(b"\xef\xbb\xbf").lstrip()
    if stripped.startswith((b"bplist00", b"<?xml")):
        try:
            plist = plistlib.loads(data)
        except Exception as exc:
            raise CorruptDocument(f"{path.name} is not a readable .webloc: {exc}") from exc
        if isinstance(plist, dict):
            url = plist.get("URL")
    else:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(data.decode("utf-8", errors="replace"))
        except configparser.Error as exc:
            raise CorruptDocument(f"{path.name} is not a readable link file: {exc}") from exc
        for section in ("InternetShortcut", "Desktop Entry"):
            if parser.has_option(section, "URL"):
                url = parser.get(section, "URL")
                break
    if not url or not isinstance(url, str):
        raise UnsupportedDocument(f"{path.name} holds no URL")
    url = url.strip()
    if not url.lower().startswith(("http://", "https://")):
        raise UnsupportedDocument(f"{path.name} links to {url[:80]!r}, not an http(s) URL")
    return url
