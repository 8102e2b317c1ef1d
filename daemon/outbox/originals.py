"""Where a dropped file goes once docinbox is finished with it.

Success: ``archive/<path as dropped>`` (or deleted when archive is ""), only after
its result is durable.  Failure: ``failed/<path as dropped>`` beside
``<name>.error.json``.  Names that are taken get `` (2)``, `` (3)``, ... (a folder of the
dropped path that is a file there, too), names too long for the file system are
shortened (:mod:`.names`): nothing is ever overwritten.

Each move is all or nothing: the original leaves its folder last, once its new place
provably holds the same file (a hard link, or a complete fsynced copy on another file
system) — and for a failure once its ``.error.json`` is written too.  A disk that says no
(full, read-only, failing) raises :class:`HostError` with everything as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .disk import fsync_dir, host_errors, place, remove_quietly, unplace, write_durably
from .names import folder_in, free_file, name_max, parts, remove_made, size

#: The error file's ending: ``failed/<name>.error.json``.
SIDECAR = ".error.json"
#: Names tried when each one is taken the moment it is linked (another writer racing us).
_RACES = 100


def archive_original(location: Path, rel_path: str, archive: Path | None) -> Path | None:
    """Move the original to the archive (or delete it); returns where it went."""
    if archive is None:
        with host_errors(location.parent, f"delete {rel_path} (archive is off)"):
            location.unlink(missing_ok=True)
        return None
    return _relocate(location, rel_path, archive, doing=f"archive {rel_path}")


def fail_original(
    location: Path | None, rel_path: str, failed: Path, error: Mapping[str, Any]
) -> Path:
    """Move the original to ``failed/`` beside its ``.error.json``; returns the new path.

    Either both are there, or nothing moved and :class:`HostError` is raised.  An original
    already in ``failed/`` (a retry that failed again) stays where it is.  With *location*
    None, or no file there any more, only the error file is written."""
    data = _error_bytes(error)
    doing = f"move {rel_path} to the failed folder"
    if location is not None:
        with host_errors(location.parent, f"look at {rel_path}"):
            try:
                os.lstat(location)
            except (FileNotFoundError, NotADirectoryError):
                location = None
    if location is not None and _inside(location, failed) and _sidecar_fits(location):
        with host_errors(location.parent, f"write the error file of {rel_path}"):
            write_durably(_sidecar(location), data)
            fsync_dir(location.parent)
        return location
    if location is not None:
        return _relocate(location, rel_path, failed, doing=doing, error=data)
    made: list[Path] = []
    try:
        with host_errors(failed, f"write the error file of {rel_path}"):
            folder, leaf = _folder(failed, rel_path, made)
            target = free_file(folder, leaf, sidecar=SIDECAR)
            write_durably(_sidecar(target), data)
            fsync_dir(folder)
    except BaseException:
        remove_made(made)
        raise
    return target


def _relocate(
    location: Path, rel_path: str, root: Path, *, doing: str, error: bytes | None = None
) -> Path:
    """*location* → its free place under *root* (with its error file when *error* is
    given); the original is unlinked last, and on any failure everything is undone."""
    made: list[Path] = []
    placed: Path | None = None
    sidecar: Path | None = None
    try:
        with host_errors(root, doing):
            folder, leaf = _folder(root, rel_path, made)
            for _ in range(_RACES):
                target = free_file(
                    folder, leaf, sidecar=SIDECAR if error is not None else "", source=location
                )
                if os.path.abspath(target) == os.path.abspath(location):
                    return target  # already there: "moving" it would unlink the only copy
                try:
                    place(location, target)
                except FileExistsError:
                    continue  # taken the moment we looked: the next name
                placed = target
                break
            else:
                raise FileExistsError(f"no free name for {leaf} in {folder}")
            if error is not None:
                sidecar = _sidecar(placed)
                write_durably(sidecar, error)
            fsync_dir(placed.parent)
        # Only now: its new place holds the same file.  Gone already (someone else removed
        # it): ours is the copy that remains.
        with (
            host_errors(location.parent, f"remove the original of {rel_path}"),
            contextlib.suppress(FileNotFoundError),
        ):
            os.unlink(location)
    except BaseException:
        # Undo while the original is still there (unplace checks): nothing half-moved.
        if placed is not None and os.path.lexists(location):
            if sidecar is not None:
                remove_quietly(sidecar)
            unplace(location, placed)
        remove_made(made)
        raise
    return placed


def _folder(root: Path, rel_path: str, made: list[Path]) -> tuple[Path, str]:
    """The folder under *root* for the dropped path's folders (made as needed) and the
    file's name."""
    root.mkdir(parents=True, exist_ok=True)
    *dirs, leaf = parts(rel_path)
    folder = root
    for name in dirs:
        folder = folder_in(folder, name, made)
    return folder, leaf


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + SIDECAR)


def _sidecar_fits(target: Path) -> bool:
    return size(target.name + SIDECAR) <= name_max(target.parent)


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def _error_bytes(error: Mapping[str, Any]) -> bytes:
    # An undecodable name (surrogate escapes) is written as a JSON \udcXX escape, which
    # reads back to the same name: valid UTF-8 and nothing lost.
    text = json.dumps(dict(error), ensure_ascii=False, indent=2) + "\n"
    return text.encode("utf-8", "backslashreplace")
