"""Names in the outbox, archive and failed folders: free, within the file system's limit,
and never two documents on one name.

A name that is taken gets `` (2)``, `` (3)``, ... before its extension; a folder in a
dropped path whose name is taken by a file (or the other way round) is numbered the same
way.  A name longer than the file system allows (``NAME_MAX``, counted in bytes: 255 on
ext4, XFS, btrfs and tmpfs, 143 on eCryptfs) is shortened: the extension stays, and a
short hash of the whole name keeps two long names that start alike apart.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from ..errors import HostError

#: Bytes any file system allows in one name when it cannot say (POSIX's NAME_MAX of Linux).
DEFAULT_NAME_MAX = 255
#: An extension longer than this is not one ("notes.from the meeting with ...").
MAX_SUFFIX = 16
#: Hex digits of the hash that marks a shortened name.
HASH_DIGITS = 10
#: Numbered candidates tried before giving up: 100,000 documents of one name.
MAX_NUMBER = 100_000


def name_max(folder: Path) -> int:
    """The longest name, in bytes, the file system of *folder* (or of its nearest existing
    parent, when it is yet to be made) accepts."""
    path = folder
    while True:
        try:
            limit = os.pathconf(path, "PC_NAME_MAX")
        except (FileNotFoundError, NotADirectoryError):
            if path.parent == path:
                return DEFAULT_NAME_MAX
            path = path.parent
            continue
        except (OSError, ValueError, AttributeError):  # AttributeError: no pathconf (Windows)
            return DEFAULT_NAME_MAX
        return limit if limit > 0 else DEFAULT_NAME_MAX


def size(name: str) -> int:
    """Bytes *name* takes on disk: UTF-8, and one byte per undecodable byte that Python
    carries as a surrogate escape (``os.fsencode``)."""
    try:
        return len(os.fsencode(name))
    except UnicodeError:
        return len(name.encode("utf-8", "surrogatepass"))


def short_hash(name: str) -> str:
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_DIGITS]


def _cut(text: str, budget: int) -> str:
    """The longest start of *text* within *budget* bytes, never half a character."""
    out: list[str] = []
    used = 0
    for char in text:
        used += size(char)
        if used > budget:
            break
        out.append(char)
    return "".join(out).rstrip(" .")


def _split(name: str, *, folder: bool) -> tuple[str, str]:
    if folder:
        return name, ""
    path = PurePosixPath(name)
    suffix = path.suffix
    if not suffix or size(suffix) > MAX_SUFFIX or " " in suffix:
        return name, ""
    return name[: -len(suffix)], suffix


def numbered(name: str, n: int, *, limit: int, reserve: int = 0, folder: bool = False) -> str:
    """Candidate *n* for *name* (1: the name itself, then ``name (n).ext``) within *limit*
    bytes, leaving *reserve* bytes free for a sidecar's ending (``.error.json``)."""
    stem, suffix = _split(name, folder=folder)
    tail = f" ({n})" if n > 1 else ""
    candidate = f"{stem}{tail}{suffix}"
    if size(candidate) + reserve <= limit:
        return candidate
    mark = "~" + short_hash(name)
    room = limit - reserve - size(tail + suffix + mark)
    if room < 1 and suffix:  # a file system with tiny names: the extension goes first
        suffix = ""
        room = limit - reserve - size(tail + mark)
    return f"{_cut(stem, max(room, 0))}{mark}{tail}{suffix}"


def candidates(name: str, *, limit: int, reserve: int = 0, folder: bool = False) -> Iterator[str]:
    for n in range(1, MAX_NUMBER):
        yield numbered(name, n, limit=limit, reserve=reserve, folder=folder)


def same_file(a: Path, b: Path) -> bool:
    """*a* and *b* are one file (the same inode; links are compared, not followed)."""
    try:
        sa, sb = os.lstat(a), os.lstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def parts(rel_path: str) -> list[str]:
    """The components of a dropped path, with nothing that could climb out of a folder."""
    return [p for p in PurePosixPath(rel_path).parts if p not in ("", ".", "..", "/")] or [
        "document"
    ]


def folder_in(parent: Path, name: str, made: list[Path]) -> Path:
    """The folder *name* in *parent* (made when missing, recorded in *made*), or the first
    numbered one that is a folder: a file or a link of that name is never entered."""
    limit = name_max(parent)
    for candidate in candidates(name, limit=limit, folder=True):
        path = parent / candidate
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            try:
                os.mkdir(path)
            except FileExistsError:  # made meanwhile: look again
                st = os.lstat(path)
            else:
                made.append(path)
                return path
        if stat.S_ISDIR(st.st_mode):
            return path
    raise no_free_name(parent, name)


def free_file(folder: Path, name: str, *, sidecar: str = "", source: Path | None = None) -> Path:
    """The first candidate for *name* in *folder* that nothing has (nor its *sidecar*); a
    name already linked to *source* (a move a crash interrupted) counts as free."""
    limit = name_max(folder)
    for candidate in candidates(name, limit=limit, reserve=size(sidecar)):
        path = folder / candidate
        if source is not None and same_file(path, source):
            return path
        if os.path.lexists(path) or (
            sidecar and os.path.lexists(path.with_name(candidate + sidecar))
        ):
            continue
        return path
    raise no_free_name(folder, name)


def no_free_name(folder: Path, name: str) -> HostError:
    return HostError(
        f"{folder} has no free name left for {name}",
        hint=f"Move older files out of {folder}; docinbox tries again on its own.",
    )


def remove_made(made: list[Path]) -> None:
    """Undo :func:`folder_in`: the folders it made, deepest first, while they are empty."""
    for path in reversed(made):
        try:
            os.rmdir(path)
        except OSError:
            return
