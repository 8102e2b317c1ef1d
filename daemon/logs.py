"""Logging set-up: one line per event, to stderr and a log file, secrets scrubbed."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces every known credential in a record by ``****``, whatever logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = message
        for secret in self.secrets:
            clean = clean.replace(secret, "****")
        if clean != message or record.exc_info:
            if record.exc_info:
                text = logging.Formatter().formatException(record.exc_info)
                for secret in self.secrets:
                    text = text.replace(secret, "****")
                clean = f"{clean}\n{text}"
                record.exc_info = None
                record.exc_text = None
            record.msg, record.args = clean, None
        return True


def setup(level: str, file: Path | None, secrets: Iterable[str]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_docinbox", False):
            root.removeHandler(handler)
            handler.close()
    redact = RedactSecrets(secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                file,
                maxBytes=5 * 1024 * 1024,
                backupCount=3,
                encoding="utf-8",
                errors="backslashreplace",
            )
        )  # a name that is not UTF-8 is logged, not lost
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(redact)
        handler._docinbox = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # watchdog logs a benign race at every stop as an error; nothing a user can act on.
    logging.getLogger("watchdog.observers.inotify").addFilter(
        lambda record: "called when the thread is inactive" not in record.getMessage()
    )
    for noisy in (
        "httpx",
        "httpcore",
        "watchdog",
        "uvicorn",
        "uvicorn.access",
        "uvicorn.error",
        "pypdf",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
