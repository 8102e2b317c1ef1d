"""The outbox room's boundary with the disk: durable moves, and every disk error turned
into a :class:`HostError` that names the folder and says what to do.

A full, read-only or failing disk is never a document's fault: the engine keeps the
document where it is and tries again (with backoff, for as long as it takes), so each
function here either finishes or leaves things as they were — no partial copies, no
temporary files.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from ..errors import HostError
from .names import same_file, short_hash

#: Hidden name of a copy on its way into place (one per target name: a retry after a
#: crash overwrites the one the crash left).
PART_PREFIX = ".docinbox-part-"

# What each errno means for the user: (what is wrong, what to do).  EPERM/EACCES on the
# folders are permissions; ENOENT is a folder that vanished (an unmounted disk or share).
_MEANINGS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "Free space on the disk that holds {folder}"),
    errno.EDQUOT: (
        "the disk quota is used up",
        "Free space within your quota on {folder}, or have it raised",
    ),
    errno.EROFS: (
        "the file system is read-only",
        "Make {folder} writable again (remount it read-write)",
    ),
    errno.EIO: (
        "the disk reports an input/output error",
        "Check the disk or network share that holds {folder}",
    ),
    errno.EACCES: ("permission denied", "Give docinbox's user write permission on {folder}"),
    errno.EPERM: ("operation not permitted", "Give docinbox's user write permission on {folder}"),
    errno.ENOENT: (
        "the folder is missing",
        "Mount or create {folder} again (an unplugged disk or a lost share?)",
    ),
    errno.ENAMETOOLONG: (
        "a name is too long for the file system",
        "Shorten the document's name or folder path under {folder}",
    ),
}


def host_error(exc: OSError, folder: Path, doing: str) -> HostError:
    """*exc*, met while *doing* something in *folder*, as the user should read it."""
    what, todo = _MEANINGS.get(
        exc.errno or 0, (exc.strerror or str(exc), "Check {folder} and the disk it is on")
    )
    return HostError(
        f"cannot {doing} in {folder}: {what}",
        hint=todo.format(folder=folder) + "; docinbox tries again on its own.",
    )


@contextlib.contextmanager
def host_errors(folder: Path, doing: str) -> Iterator[None]:
    """Disk errors inside become :class:`HostError` (``raise ... from``)."""
    try:
        yield
    except OSError as exc:
        raise host_error(exc, folder, doing) from exc


def fsync_path(path: Path, flags: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_path(path, getattr(os, "O_DIRECTORY", 0))


def remove_quietly(path: Path) -> None:
    """Best effort, for undoing: the error that made us undo is the one to report."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def part_path(dst: Path) -> Path:
    return dst.with_name(PART_PREFIX + short_hash(dst.name))


def write_durably(dst: Path, data: bytes) -> None:
    """*data* at *dst* in one step (a hidden temporary name, fsynced, renamed into place);
    on failure nothing new is left in the folder."""
    tmp = part_path(dst)
    remove_quietly(tmp)  # what a crash left
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
    except BaseException:
        remove_quietly(tmp)
        raise


def _copy(src: Path, dst: Path) -> None:
    """A complete, fsynced copy of *src* at *dst* (to another file system): copied under a
    hidden name beside *dst* and renamed into place, so *dst* is never half a file."""
    tmp = part_path(dst)
    remove_quietly(tmp)  # what a crash mid-copy left
    try:
        before = os.lstat(src)
        if stat.S_ISLNK(before.st_mode):
            os.symlink(os.readlink(src), tmp)
        else:
            shutil.copyfile(src, tmp)
            with contextlib.suppress(OSError):  # times and mode are nice to have
                shutil.copystat(src, tmp)
            fsync_path(tmp)
            after = os.lstat(src)
            copied = os.lstat(tmp)
            if copied.st_size != before.st_size or (after.st_size, after.st_mtime_ns) != (
                before.st_size,
                before.st_mtime_ns,
            ):
                raise OSError(errno.EAGAIN, "the file changed while it was copied", str(src))
        if os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "File exists", str(dst))
        os.rename(tmp, dst)
    except BaseException:
        remove_quietly(tmp)
        raise


#: link() errors that mean "no hard link here" rather than "no": copy instead.
_NO_LINK = {
    errno.EXDEV,
    errno.EPERM,
    errno.EMLINK,
    errno.ENOTSUP,
    getattr(errno, "EOPNOTSUPP", errno.ENOTSUP),
}


def place(src: Path, dst: Path) -> None:
    """Make *dst* provably the same file as *src*: a hard link (same inode afterwards) or,
    across file systems, a complete fsynced copy; *src* stays.  FileExistsError when *dst*
    is taken by something else.  The caller fsyncs ``dst.parent``."""
    if same_file(src, dst):
        return  # linked before a crash
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        _copy(src, dst)  # another file system, or one without hard links
        return
    if not same_file(src, dst):  # cannot happen, but the source's life depends on it
        raise OSError(errno.EIO, "the link does not point at the original", str(dst))


def unplace(src: Path, dst: Path) -> None:
    """Undo :func:`place` while *src* is still there (nothing is ever lost by it)."""
    if os.path.lexists(src) and os.path.lexists(dst):
        remove_quietly(dst)
