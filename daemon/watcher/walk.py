"""Walking the inbox: its files and folders, minus the ignored ones.

Owns the list of folders it could not read, so each one is reported once, not at every
rescan.  A folder's identity (``st_dev``, ``st_ino``) is what the watch checks compare:
a folder whose path stayed and whose identity changed is another folder.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from .ignore import IgnoreRules

log = logging.getLogger("docinbox.watcher")

Key = tuple[int, int]  # (st_dev, st_ino)
Files = list[tuple[Path, os.stat_result]]
Folders = list[tuple[Path, Key]]


def folder_key(path: Path, *, follow: bool = False) -> Key | None:
    """The identity of the folder at *path*; None when it is gone or not a folder."""
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class Walker:
    """Walks the inbox for the start-up scan, the rescans and the folders moved in."""

    def __init__(self, inbox: Path, ignore: IgnoreRules) -> None:
        self.inbox = inbox
        self.ignore = ignore
        self._unreadable: set[Path] = set()

    def walk(self, top: Path, *, files: bool = True) -> tuple[Files, Folders]:
        """Files (with their lstat) and folders (with their identity) under *top*, minus
        the ignored ones; *top* itself is among the folders.  The inbox is followed when
        it is a symbolic link; nothing below it is."""
        found: Files = []
        folders: Folders = []
        key = folder_key(top, follow=top == self.inbox)
        if key is None:
            return found, folders
        folders.append((top, key))
        stack = [top]
        while stack:
            folder = stack.pop()
            for entry in self._entries(folder):
                # the folders above passed the ignore rules already: only this name counts
                if self.ignore.ignored_name(entry.name):
                    continue
                try:
                    if entry.is_dir(follow_symlinks=False):
                        path = folder / entry.name
                        st = entry.stat(follow_symlinks=False)
                        folders.append((path, (st.st_dev, st.st_ino)))
                        stack.append(path)
                    elif files:
                        # Every entry that is not a folder: a FIFO or a device named like a
                        # document reaches admission, which refuses it with an error file.
                        found.append((folder / entry.name, entry.stat(follow_symlinks=False)))
                except OSError:
                    continue
        return found, folders

    def _entries(self, folder: Path) -> list[os.DirEntry[str]]:
        """What *folder* holds; nothing when it is gone (deleted as we walked) or cannot
        be read (said once)."""
        try:
            with os.scandir(folder) as it:
                return list(it)
        except FileNotFoundError:
            return []
        except OSError as exc:
            if folder not in self._unreadable:
                self._unreadable.add(folder)
                log.warning("cannot read %s: %s", folder, exc)
            return []
