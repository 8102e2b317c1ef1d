"""Logging set-up: one line per event, to stderr and a log file, secrets scrubbed."""

from __future__ import annotations

import logging
import logging.handlers
from collections.abc import Iterable
from pathlib import Path

from . import redact

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class RedactSecrets(logging.Filter):
    """Scrubs every form of every known credential from a record (its message, the
    exception's traceback, the stack), whatever logged it: see :mod:`daemon.redact`.

    Without *secrets* it uses the process-wide redactor, so secrets registered later are
    scrubbed too."""

    def __init__(self, secrets: Iterable[str] | None = None) -> None:
        super().__init__()
        self._own = redact.Redactor(secrets) if secrets is not None else None

    @property
    def redactor(self) -> redact.Redactor:
        return self._own if self._own is not None else redact.active()

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = self.redactor
        if not redactor:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: the handler reports that, with no text of ours
            return True
        clean = redactor.scrub(message)
        if record.exc_info or record.exc_text:
            text = record.exc_text or (
                logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
            )
            clean = f"{clean}\n{redactor.scrub(text)}"
            record.exc_info = None
            record.exc_text = None
        if record.stack_info:
            record.stack_info = redactor.scrub(record.stack_info)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def setup(level: str, file: Path | None, secrets: Iterable[str]) -> None:
    """Handlers for stderr and *file*; *secrets* join the process-wide redactor
    (:func:`daemon.redact.register`), which every handler's filter uses."""
    redact.register(secrets)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_docinbox", False):
            root.removeHandler(handler)
            handler.close()
    scrubber = RedactSecrets()
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                file,
                maxBytes=5 * 1024 * 1024,
                backupCount=3,
                encoding="utf-8",
                errors="backslashreplace",  # a name that is not UTF-8 is logged, not lost
            )
        )
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(scrubber)
        handler._docinbox = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
    # watchdog logs a benign race at every stop as an error; nothing a user can act on.
    logging.getLogger("watchdog.observers.inotify").addFilter(
        lambda record: "called when the thread is inactive" not in record.getMessage()
    )
    # pystray logs a traceback at ERROR when the display or the tray host goes away; the
    # tray says once, in its own words, what that means for the user.
    logging.getLogger("pystray").setLevel(logging.CRITICAL)
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
