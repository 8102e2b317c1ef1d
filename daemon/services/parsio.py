"""Parsio (parsio.io): a mailbox's parser extracts fields and tables from each document.

What docinbox relies on, and where it comes from (the notes of issue 19 give the long
version; ``mockserver/parsio`` says what the mock infers where the documentation is thin):

- ``X-API-Key`` header; "Unauthenticated responses return HTTP 401 Unauthorized"
  (https://help.parsio.io/public-api/parse-pdf-and-files-using-api-1).
- ``POST /mailboxes/{id}/upload-sync`` (multipart ``file`` and ``meta``): "returns parsed
  data directly in the same HTTP response whenever parsing finishes within the timeout"
  (same page).  Used for documents up to ``sync_max_bytes``.  Its timeout value and the
  shape of the answer once it passes are undocumented; the ``parsing_in_progress`` flag
  of the Document schema (api-evangelist/parsio OpenAPI) says "still parsing": the
  document is then polled.
- ``POST /mailboxes/{id}/upload`` for larger documents (the old article said 2 MB for
  everything, newer derived references 20 MB sync / 50 MB async: ``sync_max_bytes``
  defaults to the safe 2 MB).  Its answer is undocumented: a bare id string, an object
  with ``doc_id``/``_id``/``id``, or a list of those are all taken.
- ``GET /docs/{id}``: ``status`` is one of ``new, parsing, parsed, fail, skipped, quota,
  exception`` (api-evangelist ``DocumentStatus``; Slates agrees).  The parsed data is
  under ``json`` (api-evangelist); ``parsed`` and ``data`` are read too.
- ``meta`` "Custom payload included in the parsed JSON as ``__meta__``" (help page).  It
  carries the job id, the document's sha256 and a per-upload token, persisted before
  the upload: after a crash (or a timeout) between upload and answer, the document is
  looked for with ``GET /mailboxes/{id}/docs?q=<name>&from=<day>`` and recognised by its
  ``__meta__`` instead of being uploaded (and billed) again.
- ``quota``: "When credits are exhausted, documents are queued with a quota status rather
  than parsed" (api-evangelist, from parsio.io/pricing): the service pauses
  (QuotaExceeded; monthly credits, renewal time unknown) and the document is asked
  about again afterwards, never uploaded twice.

Results are polled only: Parsio's webhooks are created per mailbox through the API and
signed (``parsio-signature``) with a secret set in its web app; docinbox does not manage
them, so ``[callbacks] public_url`` changes nothing for Parsio.

The raw answer (the document with its parsed JSON) is stored untouched as
``raw/document.json``.  Scalar values become ``fields`` (label = the field's name; Parsio
gives no score, page or box), lists of objects become ``tables``.
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import redact
from ..errors import (
    CredentialsError,
    DocinboxError,
    DocumentTooLarge,
    MalformedResponse,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    RemoteRejected,
    TransientError,
)
from ..outbox.markdown import render_extraction
from ..settings import ServiceSettings, ServiceSpec, key
from ..sniff import MIME
from . import http
from .base import (
    Accepted,
    BatchOutcome,
    Checkpoint,
    Normalized,
    Outcome,
    Received,
    Service,
    ServiceContext,
    SourceDocument,
    each,
    same_host,
)
from .libs import httpx
from .rawfiles import open_document, read_document, save_raw

RAW_NAME = "document.json"
MB = 1024 * 1024
#: Files up to this size are uploaded from one in-memory buffer; larger ones stream.
SMALL_UPLOAD = 4 * MB
#: Polling a document: first look after this long, then back off to the cap.
POLL_FIRST, POLL_CAP = 3.0, 60.0
#: After a crash (or a timeout) lost an upload's answer: how long the document is looked
#: for before it is uploaded again, and how often.
LOST_UPLOAD_WAIT, LOST_POLL = 300.0, 10.0
#: Looking for a lost upload reads at most this many pages of the mailbox's documents,
#: and skips those created this long before the upload (clocks differ a little).
SEARCH_PAGES, SEARCH_PER_PAGE = 3, 50
CLOCK_SLACK = 600.0
#: Parsio's ids are MongoDB ObjectIds (24 hex digits); anything beyond this shape is not
#: an id docinbox puts into a URL path.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
PENDING = frozenset({"new", "parsing"})


@dataclass(frozen=True)
class ParsioSettings(ServiceSettings):
    mailbox_id: str = field(
        default="",
        metadata=key(required=True, help="the mailbox id from its address in the Parsio app"),
    )
    #: Documents up to this size wait for their result in one request (``upload-sync``);
    #: larger ones are uploaded and polled.  Sources disagree on the limit (2 MB in the
    #: old official article, 20 MB in newer references): the safe side by default.
    sync_max_bytes: int = field(default=2 * MB, metadata=key(minimum=0))


class Parsio(Service):
    name = "parsio"
    spec = ServiceSpec(
        settings=ParsioSettings,
        credential_key="api_key",
        credential_env="PARSIO_API_KEY",
        base_url="https://api.parsio.io",
        concurrency=4,
        route_options={"mailbox_id": str},
        mock={"credential": "PARSIO_API_KEY", "mailbox_id": "PARSIO_MAILBOX_ID"},
    )
    # The AI-powered parser's formats ("PDF, images, and ZIP", help page above).
    kinds = frozenset({"pdf", "png", "jpg", "tiff", "gif", "bmp", "webp"})
    #: The asynchronous upload's limit in the newer references (50 MB).
    max_bytes = 50 * MB
    settings: ParsioSettings

    def __init__(self, settings: ParsioSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        self.pacer = self.make_pacer(
            {"api": None}, same_host(settings.base_url, "api"), {"submit": "api", "poll": "api"}
        )
        self.client = self.make_client()
        self.headers = {"X-API-Key": settings.credential.value or ""}

    def _mailbox(self, doc: SourceDocument) -> str:
        return str(doc.remote.get("mailbox_id") or doc.options.get("mailbox_id") or "") or str(
            self.settings.mailbox_id
        )

    # ------------------------------------------------------------------ the interface

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        return await each(docs, lambda d: self._submit_one(d, checkpoint))

    async def poll(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        return await each(docs, lambda d: self._poll_one(d, checkpoint))

    def can_refetch(self, remote: Mapping[str, Any]) -> bool:
        return bool(remote.get("doc_id"))

    def resubmit_after_crash(self, doc: SourceDocument) -> bool:
        """An upload whose token was persisted may have reached Parsio: poll for it (the
        poll finds it by its ``__meta__``, or sends it again after LOST_UPLOAD_WAIT).
        Without a token the request never left."""
        return not (doc.remote.get("doc_id") or doc.remote.get("upload"))

    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        # Numbers keep the text Parsio wrote ("45.90", not 45.9).
        body = json.loads((raw_dir / RAW_NAME).read_bytes(), parse_float=str, parse_int=str)
        parsed = parsed_of(body)
        if parsed is None:
            raise ValueError("the stored document has no parsed data")
        fields, tables = fields_and_tables(parsed)
        return Normalized(
            remote={"doc_id": doc.remote.get("doc_id"), "mailbox_id": self._mailbox(doc)},
            fields=fields,
            tables=tables,
            markdown=render_extraction(doc.name, fields, tables),
        )

    # ------------------------------------------------------------------ submitting

    async def _submit_one(self, doc: SourceDocument, checkpoint: Checkpoint) -> Outcome:
        if doc.remote.get("doc_id"):  # Parsio has it (a quota pause, a restart): ask again
            return Accepted({"poll_interval": POLL_FIRST}, poll_after=POLL_FIRST)
        previous = doc.remote.get("upload")
        if previous:  # an earlier upload's answer was lost (a timeout): is it there?
            found = await self._find(doc, str(previous), checkpoint)
            if found is not None:
                return found
        mailbox = self._mailbox(doc)
        token = secrets.token_hex(8)
        # The intent, before the side effect: what the upload will carry as __meta__.
        checkpoint(
            doc.job_id,
            {"upload": token, "uploaded_at": self.clock.now(), "mailbox_id": mailbox},
        )
        sync = doc.size <= self.settings.sync_max_bytes
        try:
            response = await self._upload(doc, mailbox, token, sync)
        except RateLimited:
            checkpoint(doc.job_id, {"upload": None})  # refused: nothing was created
            raise
        if 400 <= response.status_code < 500:
            checkpoint(doc.job_id, {"upload": None})
        body = self._check(response, doc)
        doc_id = doc_id_of(body)
        if doc_id is None:
            raise MalformedResponse(
                f"parsio: the upload's answer names no document ({redact.clip(repr(body), 120)})",
                service=self.name,
            )
        checkpoint(doc.job_id, {"doc_id": doc_id})
        return await self._outcome(doc, doc_id, body, response.content, checkpoint, polled=False)

    async def _upload(
        self, doc: SourceDocument, mailbox: str, token: str, sync: bool
    ) -> httpx.Response:
        path = f"/mailboxes/{quote(mailbox, safe='')}/{'upload-sync' if sync else 'upload'}"
        meta = json.dumps({"docinbox_job": doc.job_id, "sha256": doc.sha256, "upload": token})
        ctype = MIME.get(doc.kind, "application/octet-stream")
        if doc.size <= SMALL_UPLOAD:
            # A small file goes as one buffer: one write instead of a dozen for the parts.
            payload, form = http.multipart(
                {"meta": meta}, "file", doc.name, read_document(doc), ctype
            )
            return await http.send(
                self.client,
                "POST",
                path,
                service=self.name,
                headers={**self.headers, "Content-Type": form},
                content=payload,
            )
        with open_document(doc) as fh:  # streamed: httpx reads the file in chunks
            return await http.send(
                self.client,
                "POST",
                path,
                service=self.name,
                headers=self.headers,
                files={"file": (doc.name, fh, ctype)},
                data={"meta": meta},
            )

    # ------------------------------------------------------------------ polling

    async def _poll_one(self, doc: SourceDocument, checkpoint: Checkpoint) -> Outcome:
        doc_id = doc.remote.get("doc_id")
        if not doc_id:
            return await self._find_lost(doc, checkpoint)
        response = await self._get(f"/docs/{quote(str(doc_id), safe='')}")
        if response.status_code == 404:
            checkpoint(doc.job_id, {"doc_id": None, "upload": None})
            raise TransientError(
                f"parsio: document {doc_id} of {doc.name} is gone from the mailbox; "
                "sending it again",
                service=self.name,
                status=404,
                resubmit=True,
            )
        body = self._check(response, doc)
        return await self._outcome(doc, str(doc_id), body, response.content, checkpoint)

    async def _outcome(
        self,
        doc: SourceDocument,
        doc_id: str,
        body: Any,
        content: bytes,
        checkpoint: Checkpoint,
        *,
        polled: bool = True,
    ) -> Outcome:
        """What a document's state says: stored and Received once parsed, Accepted while
        Parsio works on it, the service paused on ``quota``, the document's error else."""
        status = status_of(body)
        if status == "parsed" and parsed_of(body) is not None:
            await save_raw(doc, RAW_NAME, content)
            return Received({"doc_id": doc_id, "mailbox_id": self._mailbox(doc)})
        if status in PENDING or (not polled and status in (None, "parsed")):
            # An upload's answer that names the document but not its state (a bare id),
            # or says parsed without the data: GET /docs tells.
            interval = (
                min(POLL_CAP, float(doc.remote.get("poll_interval") or POLL_FIRST) * 1.5)
                if polled
                else POLL_FIRST
            )
            return Accepted({"doc_id": doc_id, "poll_interval": interval}, poll_after=interval)
        if status in ("exception", "fail", "skipped"):
            checkpoint(doc.job_id, {"doc_id": None, "upload": None})  # a retry uploads anew
        raise state_error(status, doc, doc_id)

    # ------------------------------------------------------------------ lost answers

    async def _find_lost(self, doc: SourceDocument, checkpoint: Checkpoint) -> Outcome:
        """An upload whose answer a crash lost: found by its ``__meta__`` token, waited for
        a while (Parsio may list it a little later), then uploaded again."""
        token = str(doc.remote.get("upload") or "")
        found = await self._find(doc, token, checkpoint) if token else None
        if found is not None:
            return found
        since = float(doc.remote.get("uploaded_at") or 0)
        if token and self.clock.now() - since < LOST_UPLOAD_WAIT:
            return Accepted({}, poll_after=LOST_POLL)
        checkpoint(doc.job_id, {"upload": None})
        raise TransientError(
            f"parsio: the upload of {doc.name} was interrupted and the mailbox does not "
            "have it; sending it again",
            service=self.name,
            resubmit=True,
        )

    async def _find(
        self, doc: SourceDocument, token: str, checkpoint: Checkpoint
    ) -> Outcome | None:
        """The mailbox's document that carries *token* in its ``__meta__``: its outcome;
        Accepted while a candidate is too young to tell (its parsed JSON, which holds
        ``__meta__``, is not there yet); None when no document can be it."""
        since = float(doc.remote.get("uploaded_at") or self.clock.now())
        params = _search_params(doc.name, since)
        undecided = False
        quota = None
        for page in range(1, SEARCH_PAGES + 1):
            items, more = await self._listing(doc, {**params, "page": str(page)})
            for item in items:
                candidate = doc_id_of(item)
                if candidate is None or created_before(item, since - CLOCK_SLACK):
                    continue
                listed = status_of(item) if isinstance(item, dict) and "status" in item else None
                if listed in PENDING:  # no parsed JSON, so no __meta__, yet
                    undecided = True
                    continue
                if listed == "quota":
                    quota = candidate
                    continue
                response = await self._get(f"/docs/{quote(candidate, safe='')}")
                if response.status_code == 404:
                    continue  # deleted meanwhile
                body = self._check(response, doc)
                meta = meta_of(body)
                if meta is not None:
                    if meta.get("upload") == token:
                        checkpoint(doc.job_id, {"doc_id": candidate})
                        return await self._outcome(
                            doc, candidate, body, response.content, checkpoint
                        )
                    continue
                status = status_of(body)
                if status in PENDING:
                    undecided = True
                elif status == "quota":
                    quota = candidate
            if not more:
                break
        return self._not_found(doc, undecided, quota)

    def _not_found(self, doc: SourceDocument, undecided: bool, quota: str | None) -> Outcome | None:
        """No listed document carries the token: yet it may be one still too young to
        tell, or one the account had no credits for, so None only when neither is listed."""
        if undecided:
            interval = min(POLL_CAP, float(doc.remote.get("poll_interval") or POLL_FIRST) * 1.5)
            return Accepted({"poll_interval": interval}, poll_after=interval)
        if quota is not None:
            # Ours or not, the account is out of credits: pause, look again afterwards.
            raise QuotaExceeded(
                f"parsio: the account's credits are used up (document {quota} waits with "
                "status quota)",
                service=self.name,
            )
        return None

    async def _listing(
        self, doc: SourceDocument, params: Mapping[str, str]
    ) -> tuple[list[Any], bool]:
        """One page of the mailbox's documents, and whether there is a next one."""
        mailbox = quote(self._mailbox(doc), safe="")
        listing = self._check(await self._get(f"/mailboxes/{mailbox}/docs", params=params), doc)
        items = listing.get("docs") if isinstance(listing, dict) else listing
        if not isinstance(items, list):
            raise MalformedResponse(
                f"parsio: the mailbox's document list is not a list "
                f"({redact.clip(repr(listing), 80)})",
                service=self.name,
            )
        return items, bool(isinstance(listing, dict) and listing.get("hasNextPage"))

    # ------------------------------------------------------------------ answers

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        return await http.send(
            self.client, "GET", path, service=self.name, headers=self.headers, params=params
        )

    def _check(self, response: httpx.Response, doc: SourceDocument) -> Any:
        return answer_body(response, doc, self._mailbox(doc))


# ---------------------------------------------------------------------- Parsio's shapes


def _search_params(name: str, since: float) -> dict[str, str]:
    """The mailbox search for a lost upload: its file name, from the day before."""
    return {
        "q": name,
        # The day before: Parsio's dates may be in another time zone than ours.
        "from": time.strftime("%Y-%m-%d", time.gmtime(since - 86400)),
        "per_page": str(SEARCH_PER_PAGE),
    }


def answer_body(response: httpx.Response, doc: SourceDocument, mailbox: str) -> Any:
    """The JSON body of a 2xx answer; an error for the others."""
    status = response.status_code
    said = http.describe_body(response)
    if status in (401, 403):
        raise CredentialsError(
            f"parsio rejected the API key (HTTP {status} {said})",
            service="parsio",
            status=status,
        )
    if status == 402:
        raise QuotaExceeded(
            f"parsio: the plan's credits are used up (HTTP 402 {said})",
            service="parsio",
            status=402,
        )
    if status == 413:
        raise DocumentTooLarge(
            f"{doc.name} ({doc.size / MB:.1f} MB) is larger than Parsio takes (HTTP 413)",
            hint="Compress or split it, or lower services.parsio.sync_max_bytes so it "
            "goes through the asynchronous upload.",
            service="parsio",
        )
    if status == 404:
        raise ModelNotFound(
            f"parsio: mailbox {mailbox!r} not found (HTTP 404 {said})",
            service="parsio",
            status=404,
            hint="Check services.parsio.mailbox_id (the id in the mailbox's address in "
            "the Parsio app) and base_url.",
        )
    if status >= 400:
        raise RemoteRejected(
            f"parsio refused {doc.name}: HTTP {status} {said}", service="parsio", status=status
        )
    return http.json_body(response, service="parsio")


def state_error(status: str | None, doc: SourceDocument, doc_id: str) -> DocinboxError:
    """What a document's final status other than ``parsed`` (with its data) means:
    ``quota`` pauses the service, ``exception`` is worth a new upload, ``fail`` and
    ``skipped`` are the document's."""
    if status == "parsed":
        return MalformedResponse(
            f"parsio: document {doc_id} is parsed but the answer carries no parsed data",
            service="parsio",
        )
    if status == "quota":
        return QuotaExceeded(
            f"parsio: the account's credits are used up; {doc.name} waits in the "
            "mailbox with status quota",
            service="parsio",
            hint="Parsio's credits renew monthly (or upgrade the plan); docinbox asks "
            "again every hour, or at once after `docinbox retry`.",
        )
    if status == "exception":
        return TransientError(
            f"parsio: parsing {doc.name} met an error on Parsio's side (status "
            "exception); sending it again",
            service="parsio",
            resubmit=True,
        )
    if status in ("fail", "skipped"):
        said = "could not parse" if status == "fail" else "skipped"
        return RemoteRejected(
            f"parsio {said} {doc.name} (status {status})",
            service="parsio",
            hint="Check the mailbox's parser in the Parsio app (does it take this kind "
            "of document?), then `docinbox retry` it.",
        )
    return MalformedResponse(
        f"parsio: document {doc_id} has an unknown status {redact.clip(repr(status), 40)}",
        service="parsio",
    )


def doc_id_of(body: Any) -> str | None:
    """A document's id from any of the shapes Parsio's answers are known in: a bare id,
    an object with ``doc_id``/``_id``/``id``, or a list of those (the first); None when
    there is none.  Something else where an id should be is a MalformedResponse: an id
    goes into a URL path."""
    if isinstance(body, list):
        return next((i for i in map(doc_id_of, body) if i), None)
    value: Any = body
    if isinstance(body, dict):
        value = next((body[k] for k in ("doc_id", "_id", "id") if body.get(k)), None)
    if value is None or isinstance(value, dict):
        return None
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    raise MalformedResponse(
        f"parsio: {redact.clip(repr(value), 40)} is not a document id", service="parsio"
    )


def created_before(item: Any, limit: float) -> bool:
    """Was this listed document created before *limit* (Unix seconds)?  False when its
    ``createdAt`` (or ``created_at``) is missing or unreadable: it stays a candidate."""
    if not isinstance(item, dict):
        return False
    value = item.get("createdAt", item.get("created_at"))
    if not isinstance(value, str):
        return False
    try:
        when = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp() < limit


def status_of(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    status = body.get("status")
    if isinstance(status, str):
        return status.lower()
    if body.get("parsing_in_progress") is True:
        return "parsing"
    return "parsed" if parsed_of(body) is not None else None


def parsed_of(body: Any) -> dict[str, Any] | None:
    """The parsed data of a document: ``json`` (api-evangelist), else ``parsed`` or
    ``data`` (other clients' readings)."""
    if not isinstance(body, dict):
        return None
    for key_ in ("json", "parsed", "data"):
        value = body.get(key_)
        if isinstance(value, dict):
            return value
    return None


def meta_of(body: Any) -> dict[str, Any] | None:
    """``__meta__`` as sent (an object; a JSON string is read), from the parsed data or
    the document itself."""
    parsed = parsed_of(body) or {}
    meta = parsed.get("__meta__")
    if meta is None and isinstance(body, dict):
        meta = body.get("__meta__", body.get("meta"))
    if isinstance(meta, str):
        try:
            meta = json.loads(meta)
        except ValueError:
            return None
    return meta if isinstance(meta, dict) else None


#: Nested objects are flattened this deep ("address.city"); deeper ones are shown as JSON.
FLATTEN_DEPTH = 4


def fields_and_tables(parsed: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    """Parsio's parsed JSON → the SPEC's ``fields`` and ``tables``.

    Keys starting with ``__`` (``__meta__``) are Parsio's or ours, not the document's.
    A value that is null was not found and is left out; a list of objects is a table
    (columns in order of first appearance); a list of plain values is one field.
    """
    fields: list[dict] = []
    tables: list[dict] = []

    def walk(prefix: str, value: Any, depth: int) -> None:
        if value is None:
            return
        if isinstance(value, dict) and depth < FLATTEN_DEPTH:
            for k, v in value.items():
                walk(f"{prefix}.{k}", v, depth + 1)
            return
        if isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
            tables.append(_table(prefix, value))
            return
        if isinstance(value, list):
            if value:
                fields.append(_field(prefix, "; ".join(_text(v) for v in value)))
            return
        fields.append(_field(prefix, _text(value)))

    for name, value in parsed.items():
        if not name.startswith("__"):
            walk(name, value, 0)
    return fields, tables


def _field(label: str, text: str) -> dict[str, Any]:
    return {"label": label, "text": text, "score": None, "page": None, "box": None}


def _table(label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    order = list(columns)
    return {
        "label": label,
        "page": None,
        "columns": order,
        "rows": [[_text(row.get(c)) for c in order] for row in rows],
    }


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


__all__ = ["Parsio", "ParsioSettings", "fields_and_tables"]
