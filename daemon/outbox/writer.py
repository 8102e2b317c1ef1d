"""The outbox folder of one document, written so a reader never sees half of it.

Everything goes into a hidden temporary folder beside the target, is fsynced, and
is renamed into place in one step.  ``rename`` onto an existing non-empty folder
fails, so a result can never land over another document's folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

TMP_PREFIX = ".docinbox-tmp-"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes, *, fsync: bool) -> None:
    with path.open("wb") as fh:
        fh.write(data)
        if fsync:
            fh.flush()
            os.fsync(fh.fileno())


def _copy_tree(src: Path, dst: Path, *, fsync: bool) -> None:
    dst.mkdir()
    for entry in sorted(src.iterdir()):
        if entry.is_symlink():
            continue  # never carry a link out of a service's output
        if entry.is_dir():
            _copy_tree(entry, dst / entry.name, fsync=fsync)
        elif entry.is_file():
            shutil.copyfile(entry, dst / entry.name)
            if fsync:
                with (dst / entry.name).open("rb") as fh:
                    os.fsync(fh.fileno())
    if fsync:
        fsync_dir(dst)


class OutboxWriter:
    def __init__(self, outbox: Path, *, fsync: bool = True) -> None:
        self.outbox = outbox
        self.fsync = fsync

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

    def write(self, name: str, job_id: int, result: Mapping[str, Any], markdown: str,
              raw_dir: Path | None) -> Path:
        """Write the folder *name*; FileExistsError if something already has that name."""
        self.outbox.mkdir(parents=True, exist_ok=True)
        target = self.outbox / name
        if target.exists():
            raise FileExistsError(target)
        tmp = self.tmp_path(job_id)
        if tmp.exists():
            shutil.rmtree(tmp)  # a crash left it half-written
        tmp.mkdir()
        try:
            _write(tmp / "result.json",
                   (json.dumps(result, ensure_ascii=False, indent=2) + "\n").encode(),
                   fsync=self.fsync)
            _write(tmp / "document.md", markdown.encode("utf-8"), fsync=self.fsync)
            if raw_dir is not None and raw_dir.is_dir():
                _copy_tree(raw_dir, tmp / "raw", fsync=self.fsync)
            if self.fsync:
                fsync_dir(tmp)
            try:
                os.rename(tmp, target)
            except OSError as exc:
                if target.exists():
                    raise FileExistsError(target) from exc
                raise
            if self.fsync:
                fsync_dir(self.outbox)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    def written(self, name: str, sha256: str) -> bool:
        """After a crash: is *name* already this document's complete result?"""
        try:
            result = json.loads((self.outbox / name / "result.json").read_text("utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(result, dict) and result.get("source", {}).get("sha256") == sha256
