"""Reading a dropped file safely, and names that are not valid UTF-8.

Every read of a dropped document (hashing at intake, sniffing, uploads) goes through
:func:`open_document`: the inbox is writable by people and programs docinbox does not
control, so a name ending in ``.pdf`` may be a FIFO (``open()`` would block forever), a
device, a socket or a folder. It is checked before it is opened and again on the open
descriptor, and refused with an :class:`~daemon.errors.UnsupportedDocument` that says
what it is. Errors come out as :class:`~daemon.errors.DocumentError` subclasses, never as
a bare ``OSError``.

Names contract
--------------
Old zips, USB sticks and Samba shares carry names that are not UTF-8 (``Factura_\\xf1.pdf``
in cp1252). Python gives them to us as ``str`` with *surrogate escapes* (``os.fsdecode``:
each undecodable byte becomes U+DC80..U+DCFF). Such a document is still a document:

* ``location`` and ``rel_path`` keep that exact ``str``: it is the only form that opens,
  renames and re-finds the file. Never ``.encode()`` it as UTF-8: that raises.
* :func:`display_name` makes it readable for people and for anything written as text
  (log lines, ``result.json``, ``.error.json``, outbox folder names): UTF-8 where the
  bytes are UTF-8, each other byte read as cp1252 (the usual origin), never raising.
  It is for display only: two different raw names may display the same.
* :func:`storable` / :func:`from_storable` keep it in SQLite losslessly: a name without
  surrogates is stored as TEXT, as before; one with surrogates is stored as its raw file
  system bytes (a BLOB, which a TEXT-affinity column keeps as it is; ``sqlite3`` returns
  it as ``bytes``). ``from_storable(storable(x)) == x`` for every name the OS gives.
  Queries must pass ``storable(x)`` too: in SQLite a BLOB never equals a TEXT.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import stat
from typing import BinaryIO

from .errors import (
    DocumentChanging,
    DocumentError,
    DocumentVanished,
    UnreadableDocument,
    UnsupportedDocument,
)

HASH_CHUNK = 1 << 20

#: What each kind of non-regular file is called in an error message.
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISLNK, "a symbolic link"),
)


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words ("a FIFO (named pipe)", "a device"...)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "not a regular file"


def open_document(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a dropped document for reading, refusing anything but a regular file.

    The file is stat'ed first (nothing special is opened at all), then opened with
    ``O_NONBLOCK`` (a FIFO swapped in meanwhile cannot block) and checked again on the
    descriptor, which is what every later read uses. Raises ``DocumentVanished`` (gone),
    ``UnreadableDocument`` (permissions, I/O), ``UnsupportedDocument`` (not a file)."""
    try:
        _require_regular(os.stat(path).st_mode, path)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise os_error(exc, _name(path)) from exc
    try:
        _require_regular(os.fstat(fd).st_mode, path)
        if _NONBLOCK:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException as exc:
        os.close(fd)
        if isinstance(exc, OSError):
            raise os_error(exc, _name(path)) from exc
        raise


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_OPEN_FLAGS = (
    os.O_RDONLY
    | _NONBLOCK
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)


def _name(path: str | os.PathLike[str]) -> str:
    return display_name(os.path.basename(os.fspath(path)))


def _require_regular(mode: int, path: str | os.PathLike[str]) -> None:
    if not stat.S_ISREG(mode):
        raise UnsupportedDocument(
            f"{_name(path)} is {file_kind(mode)}, not a document",
            hint="Drop the document itself into the inbox.",
        )


def os_error(exc: OSError, name: str) -> DocumentError:
    """The DocumentError for an OSError met while reading the document *name*."""
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)):
        return DocumentVanished(f"{name} was removed before docinbox could read it")
    if isinstance(exc, PermissionError):
        return UnreadableDocument(f"{name} cannot be read: permission denied")
    if exc.errno == errno.ELOOP:
        return UnsupportedDocument(
            f"{name} is a symbolic link that loops",
            hint="Drop the document itself, not a link to it.",
        )
    if exc.errno == errno.ENAMETOOLONG:
        return UnsupportedDocument(
            f"{name} has a path too long to open",
            hint="Use a shorter name or fewer nested folders.",
        )
    reason = exc.strerror or type(exc).__name__
    return UnreadableDocument(f"{name} cannot be read: {reason}")


def sha256_of(path: str | os.PathLike[str]) -> tuple[str, int, int]:
    """(hex digest, size, mtime_ns) of the document, read through one descriptor.

    The descriptor is fstat'ed before and after: a file that grew, shrank or was touched
    while it was read raises ``DocumentChanging`` (the caller offers it again later), so
    the digest always belongs to the size and time returned."""
    with open_document(path) as fh:
        try:
            before = os.fstat(fh.fileno())
            h = hashlib.sha256()
            buffer = bytearray(min(HASH_CHUNK, before.st_size + 1))  # small files: small
            view = memoryview(buffer)
            total = 0
            while n := fh.readinto(buffer):  # type: ignore[attr-defined]  # a BufferedReader
                h.update(view[:n])
                total += n
            after = os.fstat(fh.fileno())
        except OSError as exc:
            raise os_error(exc, _name(path)) from exc
    if (before.st_size, before.st_mtime_ns) != (
        after.st_size,
        after.st_mtime_ns,
    ) or total != before.st_size:
        raise DocumentChanging(f"{_name(path)} changed while docinbox read it")
    return h.hexdigest(), before.st_size, before.st_mtime_ns


def read_bounded(fh: BinaryIO, limit: int) -> bytes:
    """At most *limit* bytes; more raises ValueError, without reading them all."""
    data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"more than {limit} bytes")
    return data


# --- names that are not UTF-8 -----------------------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogates(text: str) -> bool:
    return not text.isascii() and _SURROGATE.search(text) is not None


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each byte that is not UTF-8 is read as cp1252 (U+FFFD for the
    five bytes cp1252 leaves undefined)."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    chars = []
    for byte in exc.object[exc.start : exc.end]:
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append("\ufffd")
    return "".join(chars), exc.end


codecs.register_error("docinbox.cp1252", _cp1252_fallback)


def display_name(text: str | os.PathLike[str]) -> str:
    """*text* (a name or path) as readable text: never raises, never returns surrogates."""
    text = os.fspath(text)
    if not _has_surrogates(text):
        return text
    try:
        if os.name == "nt":  # Windows names are UTF-16: a surrogate there was never a byte
            raise UnicodeEncodeError("utf-16", text, 0, 1, "lone surrogate")
        raw = os.fsencode(text)  # the bytes os.fsdecode escaped, exactly
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return raw.decode("utf-8", "docinbox.cp1252")


def storable(text: str) -> str | bytes:
    """*text* as SQLite keeps it losslessly: itself, or its raw bytes when it has
    surrogate escapes (see the module docstring)."""
    if not _has_surrogates(text):
        return text
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:  # not from this OS's file system decoding: keep it anyway
        return text.encode("utf-8", "surrogatepass")


def from_storable(value: str | bytes) -> str:
    """The name :func:`storable` stored, as the ``str`` the OS calls it."""
    if isinstance(value, str):
        return value
    return os.fsdecode(bytes(value))
