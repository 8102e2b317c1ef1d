"""Is any process holding a file open for writing?

A file's mtime says when it was last written, not whether its writer is done: a scanner
adding a page every few seconds leaves an mtime seconds old while the file is still half
written.  So before a file counts as settled the watcher asks the operating system:

- **Linux**: one pass over ``/proc/<pid>/fd`` for a whole batch of candidate files.  Each
  descriptor's link is read (``readlink`` never touches the target's file system, so a
  hung network mount elsewhere cannot block the watcher); only links naming a candidate
  file are ``stat``-ed, matched by ``st_dev``/``st_ino``, and their
  ``/proc/<pid>/fdinfo/<fd>`` ``flags:`` checked for ``O_WRONLY`` or ``O_RDWR``
  (proc_pid_fdinfo(5)).  The cost grows with the number of descriptors open on the
  machine, not with the number of candidates: about 3 µs a descriptor.  Processes of
  other users are hidden unless docinbox runs as root; then the answer is "not seen
  open" rather than "not open" (``Writers.complete`` is false).
- **Windows**: each candidate is opened for reading with ``FILE_SHARE_READ`` only; the
  open fails with ``ERROR_SHARING_VIOLATION`` while any handle with write access is open
  ("Creating and Opening Files", learn.microsoft.com/windows/win32/fileio).  Not tested
  here (no Windows machine in CI).
- **macOS and others**: no cheap, reliable source; the answer is always "cannot tell" and
  the watcher falls back to size/mtime settling.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Writers:
    """The files of a batch some process holds open for writing."""

    open: frozenset[Path]
    #: Every process could be inspected, so a file not in ``open`` is really not open.
    complete: bool

    def writing(self, path: Path) -> bool | None:
        """True: open for writing; False: not; None: not seen open, but cannot tell."""
        if path in self.open:
            return True
        return False if self.complete else None


UNKNOWN = Writers(frozenset(), complete=False)

#: The check the watcher calls: candidate paths with their ``lstat`` results.
WriterCheck = Callable[[Mapping[Path, os.stat_result]], Writers]


def procfs_writers(files: Mapping[Path, os.stat_result], proc: str = "/proc") -> Writers:
    """Linux: one pass over every process's open files for the whole batch."""
    if not files:
        return Writers(frozenset(), complete=True)
    wanted = {(st.st_dev, st.st_ino): path for path, st in files.items()}
    names = {path.name for path in files}
    found: set[Path] = set()
    complete = True
    try:
        pids = [name for name in os.listdir(proc) if name.isdigit()]
    except OSError:
        return UNKNOWN
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except FileNotFoundError:
            continue  # the process exited
        except OSError:
            complete = False  # another user's process (EACCES), or /proc mounted hidepid
            continue
        for fd in fds:
            link = f"{fd_dir}/{fd}"
            try:
                target = os.readlink(link)
            except OSError:
                continue
            name = target.rpartition("/")[2]
            if name not in names and name.removesuffix(" (deleted)") not in names:
                continue
            try:
                st = os.stat(link)
            except OSError:
                continue
            path = wanted.get((st.st_dev, st.st_ino))
            if path is None or path in found:
                continue
            if _open_for_writing(f"{proc}/{pid}/fdinfo/{fd}"):
                found.add(path)
    return Writers(frozenset(found), complete)


def _open_for_writing(fdinfo: str) -> bool:
    try:
        with open(fdinfo, encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags:"):
                    mode = int(line.split()[1], 8) & os.O_ACCMODE
                    return mode in (os.O_WRONLY, os.O_RDWR)
    except (OSError, ValueError, IndexError):
        pass
    return False


def windows_writers(files: Mapping[Path, os.stat_result]) -> Writers:  # pragma: no cover
    """Windows: a read-only open that refuses to share write access fails while a writer
    has the file open (or while someone holds it exclusively: also not ready)."""
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    create = kernel32.CreateFileW
    create.argtypes = [
        wintypes.LPCWSTR,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.LPVOID,
        wintypes.DWORD,
        wintypes.DWORD,
        wintypes.HANDLE,
    ]
    create.restype = wintypes.HANDLE
    close = kernel32.CloseHandle
    close.argtypes = [wintypes.HANDLE]
    generic_read, share_read, share_delete, open_existing = 0x80000000, 1, 4, 3
    sharing_violation = 32
    invalid = wintypes.HANDLE(-1).value
    found: set[Path] = set()
    complete = True
    for path in files:
        handle = create(
            str(path), generic_read, share_read | share_delete, None, open_existing, 0, None
        )
        if handle == invalid:
            if ctypes.get_last_error() == sharing_violation:  # type: ignore[attr-defined]
                found.add(path)
            else:
                complete = False
            continue
        close(handle)
    return Writers(frozenset(found), complete)


def unknown_writers(files: Mapping[Path, os.stat_result]) -> Writers:
    """macOS and others: no check; size and mtime settling decide alone."""
    return UNKNOWN


def platform_check() -> tuple[WriterCheck, str]:
    """This platform's check, and how to describe it in the log."""
    if sys.platform.startswith("linux") and os.path.isdir("/proc/self/fd"):
        return procfs_writers, "open files in /proc"
    if sys.platform == "win32":
        return windows_writers, "a share-mode open"
    return unknown_writers, "none on this platform: size and mtime settling only"
