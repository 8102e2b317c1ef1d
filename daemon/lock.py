"""One daemon per set of folders: the lock, and who holds it.

Two daemons on one inbox steal each other's files; on one outbox they race for names;
on one database they corrupt each other's view of the queue.  So the daemon locks each
of them, whatever configuration file led there: the inbox and outbox folders
themselves (an advisory ``flock`` on the directory, no file left in the user's folders;
a hidden ``.docinbox.lock`` inside where a file system cannot lock a directory) and a
``<database>.lock`` file beside the state database, which also says who holds it
(process id, configuration, since when) for ``docinbox status`` and for the refusal a
second daemon prints.

``docinbox status`` asks without taking the lock for long: a shared lock it cannot get
means a daemon runs; a daemon starting at that instant tries again for half a second.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import AlreadyRunning

#: A daemon's own attempt to lock retries this long (a `status` may hold a shared lock
#: for a few microseconds).
ACQUIRE_SECONDS = 0.5
FOLDER_LOCK_NAME = ".docinbox.lock"


@dataclass(frozen=True)
class Holder:
    """The running daemon, as its lock file describes it."""

    pid: int
    config: str
    since: float


def database_lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class DaemonLock:
    """Held by a running daemon from before its first log line to its last."""

    def __init__(self, database: Path, folders: Sequence[Path], *, config: Path) -> None:
        self.database_lock = database_lock_path(database)
        self.folders = list(dict.fromkeys(folders))
        self.config = config
        self._fds: list[int] = []  # the database's lock file
        self._folder_fds: dict[Path, int] = {}

    def acquire(self) -> None:
        """Lock everything or nothing; AlreadyRunning names the folder that is taken."""
        try:
            self.database_lock.parent.mkdir(parents=True, exist_ok=True)
            fd = _open_lock_file(self.database_lock)
            self._fds.append(fd)
            if not _lock(fd, exclusive=True, patience=ACQUIRE_SECONDS):
                holder = read_holder(self.database_lock)
                who = f" (process {holder.pid}, {holder.config})" if holder else ""
                raise AlreadyRunning(
                    f"another docinbox daemon{who} already uses {self.database_lock.parent}"
                )
            for folder in self.folders:
                folder.mkdir(parents=True, exist_ok=True)
                self._folder_fds[folder] = self._lock_folder(folder)
        except BaseException:
            self.release()
            raise
        fd = self._fds[0]
        os.ftruncate(fd, 0)
        os.write(
            fd,
            json.dumps(
                {"pid": os.getpid(), "config": str(self.config), "since": time.time()}
            ).encode()
            + b"\n",
        )

    def _lock_folder(self, folder: Path) -> int:
        fd = _open_folder(folder)
        if not _lock(fd, exclusive=True, patience=ACQUIRE_SECONDS):
            os.close(fd)
            raise AlreadyRunning(
                f"another docinbox daemon already uses {folder}",
                hint="Two daemons on one folder would take each other's files: "
                "stop the other one, or give this configuration its own folders.",
            )
        return fd

    def reattach(self, folder: Path) -> None:
        """*folder* was deleted (or replaced) and is there again: the lock on the old one
        protects nothing any more, so take the new one (AlreadyRunning when another daemon
        was quicker)."""
        old = self._folder_fds.get(folder)
        if old is not None:
            with contextlib.suppress(OSError):
                held, now = os.fstat(old), os.stat(folder)
                if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                    return  # the same folder, back where it was: still ours
        fd = self._lock_folder(folder)
        self._folder_fds[folder] = fd
        if old is not None:
            with contextlib.suppress(OSError):
                os.close(old)

    def release(self) -> None:
        for fd in [*reversed(self._folder_fds.values()), *reversed(self._fds)]:
            with contextlib.suppress(OSError):
                os.close(fd)  # closing the descriptor drops its lock
        self._fds.clear()
        self._folder_fds.clear()

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def running(database: Path) -> Holder | None:
    """The daemon that holds *database*'s lock now, or None when none runs."""
    path = database_lock_path(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        if _lock(fd, exclusive=False, patience=0.0):
            return None  # nobody holds it (our shared lock goes with the descriptor)
    finally:
        os.close(fd)
    return read_holder(path) or Holder(pid=0, config="", since=0.0)


def read_holder(path: Path) -> Holder | None:
    try:
        data = json.loads(path.read_text("utf-8"))
        return Holder(pid=int(data["pid"]), config=str(data["config"]), since=float(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # an older docinbox wrote only its pid, or it is being rewritten


def _open_lock_file(path: Path) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _open_folder(folder: Path) -> int:
    """The folder itself where the platform locks directories; else a hidden file in it."""
    if sys.platform != "win32":
        fd = os.open(folder, os.O_RDONLY)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return fd
        except BlockingIOError:
            return fd  # locked by another daemon: acquire() reports it
        except OSError as exc:  # e.g. NFS, where flock on a directory is refused
            os.close(fd)
            if exc.errno not in (errno.EBADF, errno.EINVAL, errno.ENOLCK, errno.EOPNOTSUPP):
                raise
    return _open_lock_file(folder / FOLDER_LOCK_NAME)


def _lock(fd: int, *, exclusive: bool, patience: float) -> bool:
    """Take the lock within *patience* seconds; False when someone else holds it."""
    deadline = time.monotonic() + patience
    for attempt in _attempts(deadline):
        del attempt
        try:
            _try_lock(fd, exclusive)
            return True
        except (BlockingIOError, PermissionError):
            continue
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EDEADLK):
                raise
    return False


def _attempts(deadline: float) -> Iterator[int]:
    n = 0
    while True:
        yield n
        n += 1
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def _try_lock(fd: int, exclusive: bool) -> None:
    if sys.platform == "win32":  # pragma: no cover - msvcrt has no shared locks
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        if not exclusive:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
