"""Files that are not documents yet (partial downloads, lock files) or never (system files)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from pathlib import PurePosixPath

BUILTIN = (
    "*.part",
    "*.partial",
    "*.crdownload",
    "*.filepart",
    "*.tmp",
    "*.download",
    "~$*",
    ".~lock.*",
    ".syncthing.*",
    ".DS_Store",
    "Thumbs.db",
    "desktop.ini",
    "@eaDir",
    "__MACOSX",
    "$RECYCLE.BIN",
    "System Volume Information",
)


class IgnoreRules:
    """Patterns match any component of the path relative to the inbox, case-insensitively
    (so ``@eaDir`` hides a whole folder); every dotfile and dot-folder is ignored too."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.patterns = (*BUILTIN, *extra)
        self._regex = re.compile(
            "|".join(f"(?:{fnmatch.translate(p.lower())})" for p in self.patterns)
        )

    def ignored(self, rel_path: str | PurePosixPath) -> bool:
        return any(self.ignored_name(part) for part in PurePosixPath(rel_path).parts)

    def ignored_name(self, name: str) -> bool:
        """One component: what a walk checks as it descends (its parents passed already)."""
        return name.startswith(".") or self._regex.match(name.lower()) is not None
