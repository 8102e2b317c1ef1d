"""The outbox folder of one document, written so a reader never sees half of it.

Everything goes into a hidden temporary folder beside the target, is fsynced, and
is renamed into place in one step.  ``rename`` onto an existing non-empty folder
fails, so a result can never land over another document's folder.

Results are written in batches (:meth:`OutboxWriter.write_many`): every folder is
staged first, then their fsyncs are issued together from a few threads — the file
system commits concurrent fsyncs in one journal transaction, and the caller's thread
does not wait out each one in turn — and one fsync of the outbox covers every rename.

A disk that says no (full, read-only, failing) costs only that folder: it gets a
:class:`HostError`, its temporary folder goes and the service's output goes back to where
it came from.  The one exception: output that cannot even be renamed back stays in its
temporary folder, and :meth:`OutboxWriter.recover` puts it back at the next start.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import HostError
from . import names
from .disk import fsync_dir, fsync_path, host_error

__all__ = ["TMP_PREFIX", "Folder", "OutboxWriter", "fsync_dir"]

TMP_PREFIX = ".docinbox-tmp-"
#: Threads that issue a batch's fsyncs side by side.
SYNC_THREADS = 8

_fsync = fsync_path


def _copy_tree(src: Path, dst: Path) -> None:
    dst.mkdir()
    for entry in sorted(src.iterdir()):
        if entry.is_symlink():
            continue  # never carry a link out of a service's output
        if entry.is_dir():
            _copy_tree(entry, dst / entry.name)
        elif entry.is_file():
            shutil.copyfile(entry, dst / entry.name)


def _move_file(src: Path, dst: Path) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.copyfile(src, dst)  # another file system
        src.unlink()


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


def _json_bytes(value: Any) -> bytes:
    # An undecodable file name (surrogate escapes) becomes a JSON \udcXX escape: valid
    # UTF-8 that reads back to the same name.
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode(
        "utf-8", "backslashreplace"
    )


@dataclass(frozen=True)
class Folder:
    """One result folder to write.  *raw_dir* (the service's output) is moved in when it is
    on the outbox's file system — no copy — and put back if the folder cannot be written."""

    name: str
    job_id: int
    result: Mapping[str, Any]
    #: The Markdown, or a file holding it (a merged document's, written part by part so
    #: its text is never in memory whole): moved in like *raw_dir*.
    markdown: str | Path
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
    def candidate_names(stem: str, limit: int = names.DEFAULT_NAME_MAX) -> Iterator[str]:
        """``stem``, ``stem (2)``, ``stem (3)``, ... each within *limit* bytes."""
        return names.candidates(stem.strip() or "document", limit=limit, folder=True)

    def free_name(self, stem: str, reserved: set[str]) -> str:
        """The first name for *stem* that no folder in the outbox has and *reserved* does
        not hold, shortened to what the outbox's file system allows."""
        for name in self.candidate_names(stem, names.name_max(self.outbox)):
            if name not in reserved and not os.path.lexists(self.outbox / name):
                return name
        raise names.no_free_name(self.outbox, stem)

    def tmp_path(self, job_id: int) -> Path:
        return self.outbox / f"{TMP_PREFIX}{job_id}"

    def write(
        self, name: str, job_id: int, result: Mapping[str, Any], markdown: str, raw_dir: Path | None
    ) -> Path:
        """Write the folder *name*; FileExistsError if something already has that name,
        HostError if the disk says no."""
        (out,) = self.write_many([Folder(name, job_id, result, markdown, raw_dir)])
        if isinstance(out, BaseException):
            raise out
        return out

    def write_many(self, folders: list[Folder]) -> list[Path | FileExistsError | HostError]:
        """Write each folder; per folder its path, or what stopped it — nothing of that
        folder is left in the outbox, and its service output is back in ``raw_dir``:

        - FileExistsError: the name is taken (or too long for the file system): pick
          another one (:meth:`free_name`);
        - HostError: the disk is full, read-only, failing: try again later.

        Never raises for a folder's trouble."""
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return [self._host_error(exc, f) for f in folders]
        out: list[Path | FileExistsError | HostError] = []
        staged: list[_Staged] = []
        for index, folder in enumerate(folders):
            s = _Staged(index, folder, self.tmp_path(folder.job_id))
            try:
                self._stage(s)
            except OSError as exc:
                self._discard(s)
                out.append(self._outcome(exc, folder))
                continue
            staged.append(s)
            out.append(s.tmp)  # replaced by the target below
        renamed: list[_Staged] = []
        for s, sync_error in zip(staged, self._sync(staged), strict=True):
            try:
                if sync_error is not None:
                    raise sync_error
                out[s.index] = self._rename(s)
            except OSError as exc:
                self._discard(s)
                out[s.index] = self._outcome(exc, s.folder)
                continue
            renamed.append(s)
        if renamed and self.fsync:
            try:
                fsync_dir(self.outbox)
            except OSError as exc:
                # In place, but not durably: say so; a retry finds them complete (written)
                for s in renamed:
                    out[s.index] = self._host_error(exc, s.folder)
        return out

    def _rename(self, s: _Staged) -> Path:
        """The staged folder into place; FileExistsError when its name was taken since."""
        target = self.outbox / s.folder.name
        try:
            os.rename(s.tmp, target)
        except OSError as exc:
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "outbox folder exists", str(target)) from exc
            raise
        return target

    def _host_error(self, exc: OSError, folder: Folder) -> HostError:
        err = host_error(exc, self.outbox, f"write the result folder {folder.name!r}")
        err.__cause__ = exc
        return err

    def _outcome(self, exc: OSError, folder: Folder) -> FileExistsError | HostError:
        if isinstance(exc, FileExistsError):
            return exc
        return self._host_error(exc, folder)

    def _stage(self, s: _Staged) -> None:
        """The folder's content in its temporary folder, not yet fsynced."""
        target = self.outbox / s.folder.name
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "outbox folder exists", str(target))
        if names.size(s.folder.name) > names.name_max(self.outbox):
            # A name reserved before it was known to be too long: the caller picks another
            # (free_name shortens it), rather than retrying a name that can never be made.
            raise FileExistsError(
                errno.ENAMETOOLONG, "name too long for the file system", str(target)
            )
        if s.tmp.exists():
            shutil.rmtree(s.tmp)  # a crash left it half-written
        s.tmp.mkdir()
        (s.tmp / "result.json").write_bytes(_json_bytes(s.folder.result))
        markdown = s.folder.markdown
        if isinstance(markdown, Path):
            _move_file(markdown, s.tmp / "document.md")
        else:
            (s.tmp / "document.md").write_bytes(markdown.encode("utf-8", "backslashreplace"))
        s.files += [s.tmp / "result.json", s.tmp / "document.md"]
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
        """Undo a staged folder: the service's output goes back where it came from, and
        the temporary folder goes.  Only when the output cannot be put back (the disk
        refuses even a rename) does the temporary folder stay, holding it: recovery at the
        next start (:meth:`recover`) puts it back."""
        raw = s.folder.raw_dir
        if s.raw_moved and raw is not None and not os.path.lexists(raw):
            try:
                raw.parent.mkdir(parents=True, exist_ok=True)
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
        """After a crash: is *name* already this document's complete result?  HostError
        when the disk cannot say (a read error is not a "no": that would write it twice)."""
        path = self.outbox / name / "result.json"
        try:
            result = json.loads(path.read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError, ValueError):
            return False
        except OSError as exc:
            raise host_error(exc, self.outbox, f"read {name}/result.json") from exc
        return (
            isinstance(result, dict)
            and isinstance(result.get("source"), dict)
            and result["source"].get("sha256") == sha256
        )

    @staticmethod
    def recover_raw(tmp: Path, raw_dir: Path) -> None:
        """A crash between moving a service's output into *tmp* and the rename: put it back
        (before the temporary folder is removed) so the result can still be written.
        HostError when the disk refuses: then *tmp* must stay."""
        if (tmp / "raw").is_dir() and not os.path.lexists(raw_dir):
            try:
                raw_dir.parent.mkdir(parents=True, exist_ok=True)
                os.rename(tmp / "raw", raw_dir)
            except OSError as exc:
                raise host_error(
                    exc, tmp.parent, f"put back the service output in {tmp.name}"
                ) from exc

    def recover(self, raw_dir_of: Callable[[int], Path]) -> list[HostError]:
        """After a crash: each temporary folder's service output goes back to
        ``raw_dir_of(job id)`` and the folder goes.  A folder whose output cannot be put
        back stays (its error is returned) for the next start: nothing is lost."""
        problems: list[HostError] = []
        try:
            leftovers = sorted(self.outbox.glob(f"{TMP_PREFIX}*"))
        except OSError as exc:
            return [host_error(exc, self.outbox, "look for unfinished result folders")]
        for tmp in leftovers:
            job_id = tmp.name[len(TMP_PREFIX) :]
            if job_id.isdigit():
                try:
                    self.recover_raw(tmp, raw_dir_of(int(job_id)))
                except HostError as exc:
                    problems.append(exc)
                    continue
            shutil.rmtree(tmp, ignore_errors=True)
        return problems
