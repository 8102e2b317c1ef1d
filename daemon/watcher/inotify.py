"""Linux: is every folder of the inbox really watched, and if not, why?

watchdog's inotify observer watches a tree with one inotify watch per folder.  Only a
failure on the top folder reaches the caller; a folder below that cannot be watched (the
per-user watch limit, ``fs.inotify.max_user_watches``, is reached: ENOSPC) is skipped
without a word, and files dropped there would be seen only by the next rescan.  So the
watcher compares the folders it finds with the watches this process holds, which the
kernel lists per inotify descriptor in ``/proc/self/fdinfo/<fd>`` as
``inotify wd:<n> ino:<hex> sdev:<hex> ...`` (proc_pid_fdinfo(5)), and asks the kernel
what it says to a new watch on a folder that has none (``probe``).
"""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

_IN_CREATE = 0x00000100
_IN_ONLYDIR = 0x01000000

#: The sysctls behind ENOSPC and EMFILE; each also exists per user namespace under
#: /proc/sys/user/ (the same value in the initial namespace, lower in a sandbox).
LIMIT_FILES = {
    errno.ENOSPC: ("/proc/sys/fs/inotify/max_user_watches", "/proc/sys/user/max_inotify_watches"),
    errno.EMFILE: (
        "/proc/sys/fs/inotify/max_user_instances",
        "/proc/sys/user/max_inotify_instances",
    ),
}


def watched() -> set[tuple[int, int]] | None:
    """(st_dev, st_ino) of every inode this process's inotify instances watch; None when
    /proc cannot say."""
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    result: set[tuple[int, int]] = set()
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{fd}", encoding="ascii", errors="replace") as fh:
                lines = fh.readlines()
        except OSError:
            continue  # closed meanwhile
        for line in lines:
            if not line.startswith("inotify "):
                continue
            fields = dict(f.split(":", 1) for f in line.split()[1:] if ":" in f)
            try:
                ino, sdev = int(fields["ino"], 16), int(fields["sdev"], 16)
            except (KeyError, ValueError):
                continue
            # sdev is the kernel's dev_t (major << 20 | minor), not userspace's st_dev
            result.add((os.makedev(sdev >> 20, sdev & 0xFFFFF), ino))
    return result


def probe(folder: Path) -> OSError | None:
    """The error the kernel gives for a new inotify watch on *folder* (None: it would
    take one).  A fresh instance, closed at once, so no watch is kept."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        init1, add_watch = libc.inotify_init1, libc.inotify_add_watch
    except (OSError, AttributeError) as exc:  # not glibc/musl on Linux
        return OSError(errno.ENOSYS, f"inotify unavailable: {exc}")
    init1.argtypes, init1.restype = [ctypes.c_int], ctypes.c_int
    add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
    add_watch.restype = ctypes.c_int
    fd = init1(os.O_CLOEXEC)  # IN_CLOEXEC has O_CLOEXEC's value (inotify_init(2))
    if fd < 0:
        err = ctypes.get_errno()
        return OSError(err, os.strerror(err))
    try:
        if add_watch(fd, os.fsencode(folder), _IN_CREATE | _IN_ONLYDIR) < 0:
            err = ctypes.get_errno()
            return OSError(err, os.strerror(err))
        return None
    finally:
        os.close(fd)


def limit(code: int) -> int | None:
    """The limit behind a limit error (ENOSPC, EMFILE): the lower of the machine's sysctl
    and this user namespace's."""
    values = []
    for name in LIMIT_FILES.get(code, ()):
        try:
            values.append(int(Path(name).read_text().strip()))
        except (OSError, ValueError):
            continue
    return min(values, default=None)


def limits_signature() -> tuple[int | None, ...]:
    """Both limits: a change means someone raised (or lowered) one, and native watching is
    worth another try."""
    return (limit(errno.ENOSPC), limit(errno.EMFILE))
