"""Admission of a ready file (provisional: replaced by the intake branch)."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import DocinboxError, DocumentError, InternalError, UnsupportedDocument
from .watcher import IgnoreRules

HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Admitted:
    rel_path: str
    location: Path
    sha256: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Refused:
    rel_path: str
    location: Path
    size: int
    mtime_ns: int
    error: DocinboxError


def admit(path: Path, inbox: Path, ignore: IgnoreRules) -> Admitted | Refused | None:
    try:
        rel = path.relative_to(inbox).as_posix()
    except ValueError:
        return None
    if ignore.ignored(rel):
        return None
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    try:
        if stat.S_ISLNK(st.st_mode):
            target = path.resolve()
            if not target.is_relative_to(inbox.resolve()) or not target.is_file():
                return Refused(rel, path, st.st_size, st.st_mtime_ns, UnsupportedDocument(
                    f"{rel} is a symbolic link to {target}, outside the inbox or not a file",
                    hint="Drop the document itself, not a link to it."))
        elif not stat.S_ISREG(st.st_mode):
            return None
        digest = sha256_file(path)
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
            return None
        return Admitted(rel, path, digest, st.st_size, st.st_mtime_ns)
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        return Refused(rel, path, st.st_size, st.st_mtime_ns, DocumentError(
            f"{rel} cannot be read: {exc.strerror}",
            hint="Give docinbox read permission on the file."))
    except Exception as exc:  # a bug: contained to this one file
        return Refused(rel, path, st.st_size, st.st_mtime_ns,
                       InternalError(f"internal error: {type(exc).__name__}: {exc}"))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()
