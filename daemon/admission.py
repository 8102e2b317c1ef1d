"""Intake of one offered file: admitted (hashed), refused (can never be processed), or
not yet (ignored, gone, still changing).

:func:`admit` is pure with respect to the daemon (no store, no logging) and never
raises, so one strange entry in the inbox can only ever affect itself: the engine
admits a batch by calling it per path and storing the outcomes together.

* ``Admitted`` — a regular file (or a link to one inside the inbox), hashed through one
  descriptor whose size and mtime did not move while it was read.
* ``Refused`` — the engine fails it at once (``failed/<name>`` + ``.error.json``):
  a symbolic link leaving the inbox, looping or dangling; a FIFO, device or socket; an
  unreadable file; or an unexpected exception (``InternalDocumentError``: our bug, and
  only this document pays for it).
* ``None`` — nothing to do now: ignored by the rules, a folder, gone, or still being
  written (the watcher offers it again once it settles).

Names are kept exactly as the OS gives them (surrogate escapes for bytes that are not
UTF-8, see :mod:`daemon.docfile`); ``display`` is the readable form for people.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .docfile import display_name, file_kind, os_error, sha256_of
from .errors import (
    DocumentChanging,
    DocumentError,
    DocumentVanished,
    InternalDocumentError,
    UnsupportedDocument,
)

if TYPE_CHECKING:
    from .watcher import IgnoreRules

LINK_HINT = "Drop the document itself into the inbox, not a link to it."


@dataclass(frozen=True)
class Admitted:
    rel_path: str  # relative to the inbox, "/"-separated, exactly as the OS names it
    location: str  # the path to open (str; surrogate escapes kept)
    sha256: str
    size: int
    mtime_ns: int

    @property
    def display(self) -> str:
        return display_name(self.rel_path)


@dataclass(frozen=True)
class Refused:
    rel_path: str
    location: str
    size: int  # 0 when it could not be stat'ed
    mtime_ns: int
    error: DocumentError

    @property
    def display(self) -> str:
        return display_name(self.rel_path)


def admit(path: Path, inbox: Path, ignore: IgnoreRules) -> Admitted | Refused | None:
    """What to do with the file the watcher offers at *path* (see the module docstring).
    Never raises."""
    location = _fspath(path)
    rel_path = location
    try:
        try:
            rel_path = Path(location).relative_to(inbox).as_posix()
        except ValueError:
            return None  # not in the inbox: nothing of ours
        return _admit(location, rel_path, inbox, ignore)
    except Exception as exc:
        # Not even the message may fail: names are made displayable before formatting.
        error = InternalDocumentError(
            f"{display_name(rel_path)}: intake failed unexpectedly: "
            f"{type(exc).__name__}: {display_name(str(exc))[:200]}"
        )
        error.__cause__ = exc
        return Refused(rel_path, location, 0, 0, error)


def _fspath(path: Path) -> str:
    try:
        return os.fspath(path)
    except TypeError:
        return repr(path)


def _admit(
    location: str, rel_path: str, inbox: Path, ignore: IgnoreRules
) -> Admitted | Refused | None:
    if ignore.ignored(rel_path):
        return None
    name = display_name(rel_path)
    try:
        st = os.lstat(location)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Refused(rel_path, location, 0, 0, os_error(exc, name))

    def refuse(error: DocumentError, at: os.stat_result = st) -> Refused:
        return Refused(rel_path, location, at.st_size, at.st_mtime_ns, error)

    if stat.S_ISDIR(st.st_mode):
        return None  # the watcher walks folders itself
    target = _follow(location, name) if stat.S_ISLNK(st.st_mode) else st
    if target is None:
        return None  # the link itself went away
    if isinstance(target, DocumentError):
        return refuse(target)
    if stat.S_ISDIR(target.st_mode):
        return refuse(UnsupportedDocument(f"{name} is a symbolic link to a folder", hint=LINK_HINT))
    if not stat.S_ISREG(target.st_mode):
        return refuse(
            UnsupportedDocument(
                f"{name} is {file_kind(target.st_mode)}, not a document",
                hint="Drop the document itself into the inbox.",
            )
        )
    if not _inside(location, rel_path, inbox, followed_link=target is not st):
        # A link, or a linked folder on the way: the file lives elsewhere, and whoever can
        # write to the inbox must not make docinbox send files it can read out of it.
        return refuse(
            UnsupportedDocument(
                f"{name} leads outside the inbox (through a symbolic link)", hint=LINK_HINT
            )
        )
    try:
        digest, size, mtime_ns = sha256_of(location)
    except (DocumentChanging, DocumentVanished):
        return None  # still being written, or gone: the watcher offers it again
    except DocumentError as exc:
        return refuse(exc)
    except OSError as exc:  # sha256_of maps its own; this keeps admit() total regardless
        return refuse(os_error(exc, name))
    return Admitted(rel_path, location, digest, size, mtime_ns)


def _follow(location: str, name: str) -> os.stat_result | DocumentError | None:
    """What a symbolic link leads to; its error when it leads nowhere; None when the
    link itself is gone."""
    try:
        return os.stat(location)
    except FileNotFoundError:
        if not os.path.lexists(location):
            return None
        return UnsupportedDocument(
            f"{name} is a symbolic link to something that does not exist", hint=LINK_HINT
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return UnsupportedDocument(f"{name} is a symbolic link that loops", hint=LINK_HINT)
        return os_error(exc, name)


def _inside(location: str, rel_path: str, inbox: Path, followed_link: bool) -> bool:
    """Whether *location*, all links followed, is inside the inbox.

    The common case costs nothing more: a plain file directly in the inbox, or below
    folders none of which is a link (one lstat each). Otherwise the full resolution."""
    parts = rel_path.split("/")
    if not followed_link and ".." not in parts:
        folder = os.fspath(inbox)
        for part in parts[:-1]:
            folder = os.path.join(folder, part)
            if os.path.islink(folder):
                break
        else:
            return True
    real = os.path.realpath(location)
    root = os.path.realpath(inbox)
    try:
        return os.path.commonpath([real, root]) == root
    except ValueError:  # different drives (Windows)
        return False
