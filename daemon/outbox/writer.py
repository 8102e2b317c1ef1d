"""The outbox folder of one document, written so a reader never sees half of it.

Everything goes into a hidden temporary folder beside the target, is fsynced, and
is renamed into place in one step.  ``rename`` onto an existing non-empty folder
fails, so a result can never land over another document's folder.

Results are written in batches (:meth:`OutboxWriter.write_many`): every folder is
staged first, then their fsyncs are issued together from a few threads — the file
system commits concurrent fsyncs in one journal transaction, and the caller's thread
does not wait out each one in turn — and one fsync of the outbox covers every rename.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TMP_PREFIX = ".docinbox-tmp-"
#: Threads that issue a batch's fsyncs side by side.
SYNC_THREADS = 8


def _fsync(path: Path, flags: int = 0) -> None:
    fd = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    _fsync(path, getattr(os, "O_DIRECTORY", 0))


def _copy_tree(src: Path, dst: Path) -> None:
    dst.mkdir()
    for entry in sorted(src.iterdir()):
        if entry.is_symlink():
            continue  # never carry a link out of a service's output
        if entry.is_dir():
            _copy_tree(entry, dst / entry.name)
        elif entry.is_file():
            shutil.copyfile(entry, dst / entry.name)


def _walk(root: Path, files: list[Path], dirs: list[Path]) -> None:
    """Collect what a moved-in tree needs fsynced (files first, each folder after its
    content); links are removed — never carry a link out of a service's output."""
    with os.scandir(root) as it:
        entries = list(it)
    for entry in entries:
        path = Path(entry.path)
        if entry.is_symlink():
            path.unlink()
        elif entry.is_dir():
            _walk(path, files, dirs)
        elif entry.is_file():
            files.append(path)
    dirs.append(root)


@dataclass(frozen=True)
class Folder:
    """One result folder to write.  *raw_dir* (the service's output) is moved in when it is
    on the outbox's file system — no copy — and put back if the folder cannot be written."""

    name: str
    job_id: int
    result: Mapping[str, Any]
    markdown: str
    raw_dir: Path | None = None
    #: *raw_dir* belongs to another result (a duplicate's): copy it, never move it.
    copy_raw: bool = False


@dataclass(eq=False)
class _Staged:
    index: int
    folder: Folder
    tmp: Path
    raw_moved: bool = False
    files: list[Path] = field(default_factory=list)
    dirs: list[Path] = field(default_factory=list)


class OutboxWriter:
    def __init__(self, outbox: Path, *, fsync: bool = True) -> None:
        self.outbox = outbox
        self.fsync = fsync
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    @staticmethod
    def candidate_names(stem: str) -> Iterator[str]:
        """``stem``, ``stem (2)``, ``stem (3)``, ..."""
        stem = stem.strip() or "document"
        yield stem
        for n in range(2, 100_000):
            yield f"{stem} ({n})"

    def free_name(self, stem: str, reserved: set[str]) -> str:
        for name in self.candidate_names(stem):
            if name not in reserved and not (self.outbox / name).exists():
                return name
        raise FileExistsError(f"no free outbox name for {stem!r}")

    def tmp_path(self, job_id: int) -> Path:
        return self.outbox / f"{TMP_PREFIX}{job_id}"

    def leftovers(self) -> list[Path]:
        """Temporary folders a crash left behind (recovery settles them)."""
        if not self.outbox.is_dir():
            return []
        return sorted(self.outbox.glob(f"{TMP_PREFIX}*"))

    def write(self, name: str, job_id: int, result: Mapping[str, Any], markdown: str,
              raw_dir: Path | None) -> Path:
        """Write the folder *name*; FileExistsError if something already has that name."""
        (out,) = self.write_many([Folder(name, job_id, result, markdown, raw_dir)])
        if isinstance(out, BaseException):
            raise out
        return out

    def write_many(self, folders: list[Folder]) -> list[Path | OSError]:
        """Write each folder; per folder its path, or the OSError that stopped it
        (FileExistsError: the name is taken — nothing of that folder was written)."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        out: list[Path | OSError] = []
        staged: list[_Staged] = []
        for index, folder in enumerate(folders):
            s = _Staged(index, folder, self.tmp_path(folder.job_id))
            try:
                self._stage(s)
            except OSError as exc:
                self._discard(s)
                out.append(exc)
                continue
            staged.append(s)
            out.append(s.tmp)  # replaced by the target below
        renamed = False
        for s, sync_error in zip(staged, self._sync(staged), strict=True):
            target = self.outbox / s.folder.name
            try:
                if sync_error is not None:
                    raise sync_error
                try:
                    os.rename(s.tmp, target)
                except OSError as exc:
                    if target.exists():
                        raise FileExistsError(errno.EEXIST, "outbox folder exists",
                                              str(target)) from exc
                    raise
            except OSError as exc:
                self._discard(s)
                out[s.index] = exc
                continue
            renamed = True
            out[s.index] = target
        if renamed and self.fsync:
            try:
                fsync_dir(self.outbox)
            except OSError as exc:  # the folders are in place, but not durably: say so
                out = [exc if isinstance(o, Path) else o for o in out]
        return out

    def _stage(self, s: _Staged) -> None:
        """The folder's content in its temporary folder, not yet fsynced."""
        target = self.outbox / s.folder.name
        if target.exists():
            raise FileExistsError(errno.EEXIST, "outbox folder exists", str(target))
        if s.tmp.exists():
            shutil.rmtree(s.tmp)  # a crash left it half-written
        s.tmp.mkdir()
        for name, data in (
            ("result.json", (json.dumps(s.folder.result, ensure_ascii=False, indent=2)
                             + "\n").encode()),
            ("document.md", s.folder.markdown.encode("utf-8")),
        ):
            (s.tmp / name).write_bytes(data)
            s.files.append(s.tmp / name)
        raw = s.folder.raw_dir
        if raw is not None and raw.is_dir() and s.folder.copy_raw:
            _copy_tree(raw, s.tmp / "raw")
            _walk(s.tmp / "raw", s.files, s.dirs)
        elif raw is not None and raw.is_dir():
            try:
                os.rename(raw, s.tmp / "raw")
                s.raw_moved = True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_tree(raw, s.tmp / "raw")  # another file system
            _walk(s.tmp / "raw", s.files, s.dirs)
        s.dirs.append(s.tmp)

    def _sync(self, staged: list[_Staged]) -> list[OSError | None]:
        """fsync every staged folder (files, then folders), folders side by side."""
        if not self.fsync or not staged:
            return [None] * len(staged)

        def one(s: _Staged) -> OSError | None:
            try:
                for path in s.files:
                    _fsync(path)
                for path in s.dirs:
                    fsync_dir(path)
            except OSError as exc:
                return exc
            return None

        if len(staged) == 1:
            return [one(staged[0])]
        return list(self._executor().map(one, staged))

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(SYNC_THREADS, thread_name_prefix="docinbox-sync")
            return self._pool

    def _discard(self, s: _Staged) -> None:
        """Undo a staged folder: the service's output goes back where it came from."""
        raw = s.folder.raw_dir
        if s.raw_moved and raw is not None and not raw.exists():
            try:
                os.rename(s.tmp / "raw", raw)
            except OSError:
                pass  # left in the temporary folder; recovery puts it back
            else:
                s.raw_moved = False
        if not s.raw_moved:
            shutil.rmtree(s.tmp, ignore_errors=True)

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def written(self, name: str, sha256: str) -> bool:
        """After a crash: is *name* already this document's complete result?"""
        try:
            result = json.loads((self.outbox / name / "result.json").read_text("utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(result, dict) and result.get("source", {}).get("sha256") == sha256

    @staticmethod
    def recover_raw(tmp: Path, raw_dir: Path) -> None:
        """A crash between moving a service's output into *tmp* and the rename: put it back
        (before the temporary folder is removed) so the result can still be written."""
        if (tmp / "raw").is_dir() and not raw_dir.exists():
            raw_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp / "raw", raw_dir)
