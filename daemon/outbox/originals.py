"""Where a dropped file goes once docinbox is finished with it.

Success: ``archive/<path as dropped>`` (or deleted when archive is ""), only after
its result is durable.  Failure: ``failed/<path as dropped>`` beside
``<name>.error.json``.  Names that are taken get `` (2)``, `` (3)``, ...: nothing is
ever overwritten.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from .writer import fsync_dir


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _free(path: Path, *, sidecar: str | None = None, source: Path | None = None) -> Path:
    """*path*, or the first free ``name (n).ext``; a name already linked to *source* (a move
    a crash interrupted) counts as free."""
    def taken(p: Path) -> bool:
        if source is not None and _same(p, source):
            return False
        return p.exists() or (sidecar is not None and p.with_name(p.name + sidecar).exists())

    if not taken(path):
        return path
    stem, suffix = path.stem, path.suffix
    for n in range(2, 100_000):
        candidate = path.with_name(f"{stem} ({n}){suffix}")
        if not taken(candidate):
            return candidate
    raise FileExistsError(path)


def _move(src: Path, dst: Path) -> None:
    """Move by hard link + unlink, not rename: a rename out of the watched inbox is a
    moved-from event that the inotify observer holds back 0.5 s to pair — and every
    event behind it waits too, so each archived file would delay the next pickup."""
    if src.absolute() == dst.absolute():
        return  # already there: "moving" it would end by unlinking the only copy
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not _same(src, dst):
            os.link(src, dst, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        # another file system, or one without hard links: copy, then remove
        shutil.copy2(src, dst, follow_symlinks=False)
        if not dst.is_symlink():
            with dst.open("rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(dst.parent)
    os.unlink(src)


def archive_original(location: Path, rel_path: str, archive: Path | None) -> Path | None:
    """Move the original to the archive (or delete it); returns where it went."""
    if archive is None:
        location.unlink(missing_ok=True)
        return None
    target = _free(archive / PurePosixPath(rel_path), source=location)
    _move(location, target)
    return target


def fail_original(location: Path | None, rel_path: str, failed: Path,
                  error: Mapping[str, Any]) -> Path:
    """Move the original to ``failed/`` and write its ``.error.json``; returns the new path.

    With *location* None (the file is gone or no longer ours) only the error file is written.
    """
    wanted = failed / PurePosixPath(rel_path)
    if location is not None and _same(location, wanted):
        # A retried document failing again is already where it belongs: moving it "onto
        # itself" would link nothing and then unlink the only copy.
        target = location
    else:
        target = _free(wanted, sidecar=".error.json", source=location)
    target.parent.mkdir(parents=True, exist_ok=True)
    if location is not None and location.exists() and not _same(location, target):
        _move(location, target)
    sidecar = target.with_name(target.name + ".error.json")
    tmp = sidecar.with_name("." + sidecar.name + ".tmp")
    tmp.write_text(json.dumps(dict(error), ensure_ascii=False, indent=2) + "\n", "utf-8")
    os.replace(tmp, sidecar)
    return target
