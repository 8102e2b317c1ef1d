"""The business error both MinerU-family APIs answer in their envelope."""

from __future__ import annotations

from ..documents import docmodel


class ApiError(Exception):
    """A business error answered with the service's envelope and this code.

    ``custom`` is a message of the mock's own (else the service renders the code's text
    in its language); ``english`` its English version, for a service answering in
    English (or both, see ``param_errors`` in :mod:`mockserver.mineru`)."""

    def __init__(
        self, code: int | str, message: str | None = None, english: str | None = None
    ) -> None:
        default = docmodel.MESSAGES.get(code, "error") if isinstance(code, int) else "error"
        text = message or default
        super().__init__(text)
        self.code = code
        self.message = text
        self.custom = message
        self.english = english
