"""Opening a dropped document safely (placeholder until the intake branch lands)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from .errors import DocumentError, DocumentVanished, UnsupportedDocument


def open_document(path: Path) -> BinaryIO:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError as exc:
        raise DocumentVanished(f"{path.name} was removed before it was sent") from exc
    except PermissionError as exc:
        raise DocumentError(f"{path.name} cannot be read: {exc.strerror}",
                            hint="Give docinbox read permission on the file.") from exc
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsupportedDocument(f"{path.name} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
