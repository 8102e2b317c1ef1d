"""Every error docinbox raises on purpose, and what each one means for the user.

::

    DocinboxError                      code, retryable, hint, scope
    ├── ConfigError                    config.toml or a secret is wrong: fix it, restart
    ├── StoreError                     the state database cannot be used
    │   ├── AlreadyRunning             another daemon owns these folders
    │   ├── DamagedDatabase            pages of the database are damaged (found at start)
    │   └── StaleTransition            a job was not in the state an update expected
    ├── DocumentError                  this document cannot be processed (fails at once)
    │   ├── EmptyDocument  UnsupportedDocument  EncryptedDocument
    │   ├── CorruptDocument
    │   │   └── DocumentTooComplex     reading it took too long or too much memory
    │   ├── UnreadableDocument         the file cannot be read (permissions, I/O error)
    │   ├── DocumentTooLarge  TooManyPages
    │   ├── DocumentVanished           the file went away or changed while in flight
    │   │   └── DocumentChanging       it changed while being read: offered again later
    │   └── InternalDocumentError      (also an InternalError) a bug met on this document
    ├── ServiceError                   a remote service failed or said no
    │   ├── TransientError             retryable: try again later, with backoff
    │   │   ├── NetworkError           connect/read errors, resets, timeouts (scope service)
    │   │   │   └── AnswerTooSlow      the exchange outlived its deadline (a trickle, a stall)
    │   │   ├── ServerError            5xx, HTML error pages, busy queues
    │   │   │   └── GatewayError       502/503/504: the service is down (scope service)
    │   │   ├── RateLimited            429 and friends; carries retry_after
    │   │   └── MalformedResponse      a body that is not what the API documents
    │   │       └── AnswerTooLarge     an answer over its size cap (read no further)
    │   ├── ServiceBlocked             the whole service must pause (scope "service")
    │   │   ├── CredentialsError       bad or expired key / token
    │   │   ├── ModelNotFound          the configured model does not exist
    │   │   └── QuotaExceeded          free calls or page balance used up
    │   ├── RemoteRejected             the service refused this document (fatal)
    │   ├── UnsafeArchive              a result zip that escapes its folder, links, bombs
    │   └── (TransientError) RawOutputLost   the stored answer is unreadable: fetch again
    ├── InternalError                  a docinbox bug, recorded on the one document
    ├── HostError                      the local disk said no (full, read-only): retryable
    └── Stopping                       docinbox is stopping: the work is left for the next start

Library errors are converted where they enter (``raise ... from exc``) so the
engine decides retries from ``retryable`` and ``scope`` alone.

Every message (and hint) is scrubbed of the configuration's secrets when the error is
made (:mod:`daemon.redact`): a message carries text from outside — a service's error
body, a URL — to the log, the state database, ``docinbox status`` and error files, and a
service that echoes the key it was sent must not put it there.

Scope "service" with ``retryable`` (the service cannot be reached, its gateway says it
is down) pauses that service and probes it until it answers: an outage is the
service's state, so it never spends a document's retry budget.  Only when the service
demonstrably answers others while one document keeps meeting such an error is that
error the document's.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from . import redact

Scope = Literal["document", "service", "daemon"]


class DocinboxError(Exception):
    """Base class: a stable ``code``, whether a retry can help, and a hint for the user."""

    code: ClassVar[str] = "error"
    retryable: ClassVar[bool] = False
    scope: ClassVar[Scope] = "document"
    hint: ClassVar[str] = ""

    def __init__(self, message: str, *, hint: str | None = None, service: str | None = None):
        message = redact.scrub(message)
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = redact.scrub(hint)  # type: ignore[misc]
        self.service = service

    def to_dict(self) -> dict[str, object]:
        return {"error": self.code, "message": self.message, "hint": self.hint}


# --- the daemon itself ---------------------------------------------------------------------


class ConfigError(DocinboxError):
    code = "config"
    scope = "daemon"
    hint = "Fix the configuration file and start docinbox again."


class StoreError(DocinboxError):
    code = "state_database"
    scope = "daemon"
    hint = "Check the state database path and its permissions; docinbox never replaces it."


class AlreadyRunning(StoreError):
    code = "already_running"
    hint = "Another docinbox daemon uses these folders; stop it first."


class DamagedDatabase(StoreError):
    code = "damaged_database"
    hint = (
        "Stop docinbox, move the state database aside (with its -wal and -shm files) "
        "and start again: documents still in the inbox are queued anew, results already "
        "in the outbox stay. docinbox never replaces the file on its own."
    )


class StaleTransition(StoreError):
    code = "stale_transition"
    hint = "A job changed state underneath this update; it is left as it is."


# --- documents -----------------------------------------------------------------------------


class DocumentError(DocinboxError):
    code = "bad_document"
    hint = "Check the file; drop a corrected copy into the inbox."


class EmptyDocument(DocumentError):
    code = "empty_file"
    hint = "The file is empty; drop the finished document again."


class UnsupportedDocument(DocumentError):
    code = "unsupported_type"
    hint = "Drop a PDF, an image (PNG, JPEG, TIFF), an Office document or a link."


class CorruptDocument(DocumentError):
    code = "corrupt_document"
    hint = "The file cannot be read; export or scan it again."


class EncryptedDocument(DocumentError):
    code = "encrypted_pdf"
    hint = "Remove the password from the PDF and drop it again."


class DocumentTooComplex(CorruptDocument):
    """Reading the file hit a ceiling (time, memory): a damaged or hostile structure."""

    code = "too_complex"
    hint = (
        "The file's structure is damaged or unusually complex; open it and save (or print "
        "to PDF) a fresh copy, then drop that into the inbox."
    )


class UnreadableDocument(DocumentError):
    code = "unreadable"
    hint = "Give docinbox read permission on the file (or copy it again), then drop it again."


class DocumentTooLarge(DocumentError):
    code = "too_large"
    hint = "Split or compress the document below the service's size limit."


class TooManyPages(DocumentError):
    code = "too_many_pages"
    hint = "Split the document below the service's page limit."


class DocumentVanished(DocumentError):
    code = "file_vanished"
    hint = "The file was removed or changed while docinbox worked on it; drop it again."


class DocumentChanging(DocumentVanished):
    """Size or modification time moved while the file was read: it is still being written.
    Intake leaves it to the watcher, which offers it again once it has settled."""

    code = "file_changing"
    hint = "The file was still being written; docinbox reads it again once it is complete."


# --- services ------------------------------------------------------------------------------


class ServiceError(DocinboxError):
    """What a service said, with the facts a retry decision needs, all given when it is
    raised: ``retry_after`` (seconds the service asked for), ``resubmit`` (the remote task
    is used up — an expired upload URL, a task that failed remotely — so a retry submits
    the document again instead of polling the same task)."""

    code = "service_error"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        service: str | None = None,
        status: int | None = None,
        remote_code: str | None = None,
        retry_after: float | None = None,
        resubmit: bool = False,
    ):
        super().__init__(message, hint=hint, service=service)
        self.status = status
        self.remote_code = remote_code
        self.retry_after = retry_after
        self.resubmit = resubmit


class TransientError(ServiceError):
    code = "service_unavailable"
    retryable = True
    hint = "docinbox retries on its own; nothing to do unless it keeps failing."


class NetworkError(TransientError):
    code = "network"
    scope = "service"
    hint = (
        "Check the network connection (and a proxy, if you use one); docinbox waits "
        "and resumes on its own once the service answers."
    )


class AnswerTooSlow(NetworkError):
    """The whole exchange — request and answer — outlived its deadline: a body that
    trickles in a byte at a time, or headers and then silence, would otherwise hold a
    service slot for as long as the server likes (a per-read timeout never fires)."""

    code = "too_slow"
    hint = (
        "The service answered too slowly or stalled mid-answer; docinbox tries again on its "
        "own. On a slow line, raise the service's timeout in the configuration."
    )


class ServerError(TransientError):
    code = "server_error"


class GatewayError(ServerError):
    """502, 503, 504: what a proxy or load balancer answers while the service is down."""

    code = "service_down"
    scope = "service"
    hint = "The service is down or overloaded; docinbox waits and resumes on its own."


class RateLimited(TransientError):
    code = "rate_limited"


class MalformedResponse(TransientError):
    code = "malformed_response"


class AnswerTooLarge(MalformedResponse):
    """An answer over the size its caller allows: reading stops there, so a hostile or
    broken server cannot fill the daemon's memory.  Retryable (a broken proxy may send
    garbage once) within the document's retry budget."""

    code = "answer_too_large"
    hint = (
        "The service sent a far larger answer than its API ever should; docinbox tries "
        "again, and fails the document if it keeps happening. Report it to the service's "
        "operator."
    )


class ServiceBlocked(ServiceError):
    code = "service_blocked"
    scope = "service"


class CredentialsError(ServiceBlocked):
    code = "credentials"
    hint = "Check the service's API key or token in the configuration (or its .env)."


class ModelNotFound(ServiceBlocked):
    code = "model_not_found"
    hint = "Check the model id (and base_url) of the service in the configuration."


class QuotaExceeded(ServiceBlocked):
    code = "quota"
    retryable = True
    hint = "The service's quota is used up; docinbox resumes when it renews, or upgrade the plan."


class RemoteRejected(ServiceError):
    code = "rejected"
    hint = "The service refused the document; see the message."


class RawOutputLost(TransientError):
    """The service's answer was received but its stored copy cannot be read (a power cut
    before it reached the disk): fetched again where the service keeps it, else the
    document is submitted again."""

    code = "raw_output_lost"
    scope = "document"
    hint = "docinbox fetches the result again on its own."


class InternalError(DocinboxError):
    """A docinbox bug met while handling one document: recorded on that document (its
    error file says so) instead of stopping the others."""

    code = "internal"
    hint = "This is a docinbox bug; please report it with the log."


class InternalDocumentError(InternalError, DocumentError):
    """A docinbox bug met while handling one document, raised where only DocumentErrors
    may come out (intake, inspection): that document fails with the bug named, and
    ``except InternalError`` finds it like any other bug."""

    code = "internal"
    hint = "This is a docinbox bug; please report it with the log. Other documents go on."


class Stopping(DocinboxError):
    """The daemon is shutting down while a step waited (e.g. on the inspection helper):
    the job is not failed, it stays where it was and resumes at the next start."""

    code = "stopping"
    retryable = True
    scope = "daemon"
    hint = "docinbox is stopping; the document is picked up again at the next start."


class HostError(DocinboxError):
    code = "host"
    retryable = True
    hint = "Free disk space or fix the folder's permissions; docinbox retries on its own."


class UnsafeArchive(ServiceError):
    """A result archive that escapes its folder, holds links or special files, or is a zip
    bomb: retrying would fetch the same archive, so the document fails at once."""

    code = "unsafe_archive"
    hint = (
        "The service sent a result archive docinbox refuses to unpack (paths outside "
        "its folder, links, or far too large); report it to the service's operator."
    )
