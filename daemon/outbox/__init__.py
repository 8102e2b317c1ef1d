"""Writing results: the outbox folder per document, and where originals go afterwards."""

from .originals import archive_original, fail_original
from .writer import OutboxWriter

__all__ = ["OutboxWriter", "archive_original", "fail_original"]
