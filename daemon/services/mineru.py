"""MinerU precise-parsing API v4 (seed 002): large documents, in batches.

Files: ``POST /api/v4/file-urls/batch`` hands out one presigned OSS PUT URL per file
(valid 24 h); each file is PUT streamed with no Content-Type (the URL is signed with an
empty one); MinerU starts parsing on its own once the object arrives.  ONE
``GET /api/v4/extract-results/batch/{batch_id}`` then reports every file of the batch;
a ``done`` file's ``full_zip_url`` is downloaded streamed and unpacked safely into the
work folder's ``raw/``.  Links: ``POST /api/v4/extract/task`` and
``GET /api/v4/extract/task/{task_id}``.

Crash safety: the batch id, upload URL and data_id are checkpointed before any PUT, and
``uploaded`` after it, so a restarted daemon re-PUTs to a still-valid URL (a re-PUT
replaces the object) or just polls, instead of asking for (and paying for) a new task.

Business errors are HTTP 200 with a non-zero ``code``, or HTTP 400 with ``msg`` an
``{"en", "zh"}`` object (opendatalab/MinerU#1826); a bad token is HTTP 401 with
``msgCode`` A0202/A0211 and no ``code`` (opendatalab/MinerU#5133).  A failed task is read
by its ``err_code`` first (every official SDK reads it: opendatalab/MinerU-Ecosystem
``sdk/python/src/mineru/client.py``), else by its ``err_msg`` — English in every real
answer found, Chinese in the docs' examples — against both languages' texts.  -60017 is
"retry limit reached" (the document's failure, with a hint), -60018/-60019 the daily
allowances (a pause until midnight in Beijing), -60020…-60022 worth another try
(mineru.net/apiManage/docs' error table).

Limits are settings (``max_pages_per_file`` 200, ``max_files_per_batch`` 50: the current
docs; the seed's 600 and 200 are outdated).  A batch the service refuses for its size is
split — to the size its answer names, else in halves — and sent again, never failed.

:class:`MineruFamily` holds what docparse (seed 001, same engine, other paths and field
names) shares with this service; how both answer (envelopes, codes, task states) is read
in :mod:`daemon.services.mineru_answers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, TypeVar
from urllib.parse import parse_qs, urlsplit

from .. import redact
from ..errors import (
    DocinboxError,
    MalformedResponse,
    QuotaExceeded,
    RemoteRejected,
    ServerError,
    TransientError,
)
from ..outbox.disk import host_errors
from ..settings import ServiceSettings, ServiceSpec, key
from ..sniff import EXTENSION
from . import http, mineru_result, zipsafe
from . import mineru_answers as answers
from .base import (
    Accepted,
    BatchOutcome,
    Budget,
    Checkpoint,
    Normalized,
    Outcome,
    PartOutput,
    Received,
    Service,
    ServiceContext,
    SourceDocument,
    alone,
    check_policy,
    each,
    settled,
)
from .libs import httpx
from .pacing import Quota
from .rawfiles import open_document

log = logging.getLogger("docinbox")
T = TypeVar("T")

#: Presigned upload URLs live 24 h (seed 002); a resumed upload must start well before.
UPLOAD_URL_VALIDITY = 24 * 3600.0
UPLOAD_URL_MARGIN = 3600.0
#: ``-60012`` (task not found) this soon after submitting is the service catching up.
NOT_FOUND_GRACE = 300.0
UPLOAD_CONCURRENCY = 4
DOWNLOAD_CONCURRENCY = 4
UPLOAD_CHUNK = 1 << 20
#: A result zip holds the original plus images and JSON: generous, but bounded.
MAX_RESULT_BYTES = 2 * 1024**3
RESULT_ZIP = "result.zip"
_DATA_ID_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def callback_ids(payload: Mapping[str, Any], uid: str, seed: str) -> dict[str, str] | None:
    """seed 002's push: ``{"checksum", "content"}`` with checksum = sha256(uid + seed +
    content); the ids in the verified content say which jobs to poll now."""
    checksum, content = payload.get("checksum"), payload.get("content")
    if not isinstance(checksum, str) or not isinstance(content, str):
        return None
    if not verify_callback(uid, seed, checksum, content):
        return None
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):  # hostile even when signed: never a 500
        return None
    if not isinstance(data, dict):
        return None
    names = {
        "data_id": "data_id",
        "dataId": "data_id",
        "task_id": "task_id",
        "taskId": "task_id",
        "batch_id": "batch_id",
        "batchId": "batch_id",
    }
    return {
        names[k]: str(v)
        for k, v in data.items()
        if k in names and isinstance(v, str | int) and v != ""
    }


def verify_callback(uid: str, seed: str, checksum: str, content: str) -> bool:
    """MinerU's callback signature: ``sha256(uid + seed + content)``, compared in constant
    time so a forger learns nothing from the timing."""
    expected = hashlib.sha256((uid + seed + content).encode("utf-8")).hexdigest().encode()
    return hmac.compare_digest(expected, (checksum or "").strip().lower().encode("utf-8"))


def data_id_for(doc: SourceDocument) -> str:
    """Stable per job and content: letters, digits, ``_-.``, ≤ 128 (the seeds' rule)."""
    return _DATA_ID_BAD.sub("_", f"docinbox-{doc.job_id}-{doc.sha256[:8]}")[:128]


def remote_name(doc: SourceDocument) -> str:
    """A name whose suffix matches the sniffed kind (MinerU judges files by suffix)."""
    ext = EXTENSION.get(doc.kind, f".{doc.kind}")
    suffix = PurePosixPath(doc.name).suffix.lower()
    if suffix == ext or (doc.kind == "jpg" and suffix in (".jpg", ".jpeg")):
        return doc.name
    stem = PurePosixPath(doc.name).stem or "document"
    return f"{stem}{ext}"


#: What a route may set for MinerU and docparse (the API's own names).
ROUTE_OPTIONS: dict[str, type | tuple[type, ...]] = {
    "model_version": str,
    "is_ocr": bool,
    "language": str,
    "enable_formula": bool,
    "enable_table": bool,
    "page_ranges": str,
    "extra_formats": list,
}


@dataclass(frozen=True)
class MineruSettings(ServiceSettings):
    #: The account's user id: results pushed to docinbox are signed with it.
    uid: str = field(default="", metadata=key())
    #: mineru.net/apiManage/docs: "文件页数不超出 200 页" (the seed's 600 is outdated).
    max_pages_per_file: int = field(
        default=200, metadata=key(minimum=1, help="pages one file may have (the service's limit)")
    )
    #: The endpoint notes of file-urls/batch and extract/task/batch: "单次申请链接不能超过
    #: 50 个" (the comparison table says 200).  A batch the service refuses for its size
    #: is split and sent again, so a larger value costs a refused request, never a file.
    max_files_per_batch: int = field(
        default=50, metadata=key(minimum=1, help="files one batch request may carry")
    )
    #: mineru.net/doc/docs/limit_en: the submit endpoints share 300 requests a minute, the
    #: result endpoints 1,000; each account parses 10,000 files a day; the docs give 1,000
    #: pages a day at the highest priority (the older limit page: 2,000).  0: none.
    submit_per_minute: int = field(default=300, metadata=key(minimum=0))
    query_per_minute: int = field(default=1000, metadata=key(minimum=0))
    files_per_day: int = field(default=10_000, metadata=key(minimum=0))
    priority_pages_per_day: int = field(default=1000, metadata=key(minimum=0))
    #: When a budget runs out: "wait" (for renewal), "next_route", "low_priority".  Past
    #: its priority pages MinerU's queue is only slower (limit_en): a day's work must not
    #: stop at page 1,001, so MinerU goes on at low priority; its files a day still wait.
    when_exhausted: str = field(default="low_priority", metadata=key())
    #: A PDF over the limits goes in parts of this many pages (0: max_pages_per_file).
    split_pages: int = field(
        default=0, metadata=key(minimum=0, help="pages per part of a longer PDF (0: the limit)")
    )
    #: A part may be the whole file with ``page_ranges`` when that is cheaper (the file
    #: is under the byte limit and small): see daemon/pipeline/split.py.
    split_by_page_ranges: bool = field(default=True, metadata=key())


class MineruFamily(Service):
    """What MinerU v4 and docparse v1 share: auth, options, codes, polling, results."""

    settings: MineruSettings

    token_codes: frozenset[str] = frozenset()
    #: Per API: the single task (``POST`` it, ``GET {task_path}/{id}``) and one batch's
    #: results (``GET {batch_results_path}/{batch_id}``).
    task_path: str = ""
    batch_results_path: str = ""
    #: A polled single task's fields (batch entries always use MinerU's snake_case).
    task_zip_field = "full_zip_url"
    task_markdown_field: str | None = None
    task_error_field = "err_msg"
    #: What a batch's ``-60012`` is timed from (else ``submitted_at``).
    batch_since_key = "url_issued_at"
    kinds = frozenset({"pdf", "doc", "docx", "ppt", "pptx", "png", "jpg", "link"})
    max_bytes = 200 * 1024 * 1024
    batch_window = 2.0
    #: Codes whose meaning is this API's own: MinerU's -60017 is "retry limit reached"
    #: (mineru.net/apiManage/docs), docparse's "page balance insufficient" (seed 001).
    quota_codes: frozenset[int] = answers.DAILY_QUOTA_CODES
    retry_limit_code: int | None = -60017
    message_patterns: tuple[tuple[str, int], ...] = answers.MESSAGE_PATTERNS

    def __init__(self, settings: MineruSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        # Limits are settings (the service changed them; an account may differ): the
        # router and the scheduler read them from the instance.
        self.max_pages = settings.max_pages_per_file
        self.batch_limit = settings.max_files_per_batch
        check_policy(settings.when_exhausted, f"services.{self.name}")
        self.pacer = self.make_pacer(
            {"submit": per_minute(settings.submit_per_minute),
             "query": per_minute(settings.query_per_minute)},
            api_lanes(settings.base_url, (self.task_path, self.batch_results_path)),
            {"submit": "submit", "poll": "query"},
        )  # fmt: skip
        self.part_pages = min(settings.split_pages or self.max_pages, self.max_pages)
        self.page_ranges = settings.split_by_page_ranges
        self.client = self.make_client(max_connections=max(settings.concurrency, 8))
        self.dialect = answers.Dialect(
            self.name,
            self.clock,
            self.token_codes,
            self.quota_codes,
            self.retry_limit_code,
            self.message_patterns,
        )
        #: Results pushed here (seed 002 ``callback``/``seed``) when the account's uid is
        #: known: MinerU signs each push with it, and an unsigned push proves nothing.
        self.callbacks = ctx.callbacks if settings.uid else None

    # ------------------------------------------------------------------ pace and budgets

    def budgets(self) -> tuple[Budget, ...]:
        s = self.settings
        return (
            Budget("files", "files", s.files_per_day, "day+8", label="files a day"),
            Budget("priority_pages", "pages", s.priority_pages_per_day, "day+8", soft=True,
                   label="pages a day at the highest priority"),
        )  # fmt: skip

    def usage(self, kind: str, pages: int | None) -> Mapping[str, float]:
        return {"files": 1, "priority_pages": pages or 1}

    def spent(self, err: DocinboxError) -> str | None:
        if not isinstance(err, QuotaExceeded):
            return None
        return "files" if err.remote_code in ("-60018", "-60019") else None

    # ------------------------------------------------------------------ plumbing

    async def _in_batches_it_takes(
        self,
        docs: Sequence[SourceDocument],
        send: Callable[[Sequence[SourceDocument]], Awaitable[T]],
    ) -> tuple[list[T], dict[int, DocinboxError]]:
        """:func:`in_batches_it_takes`; a size the service named lowers ``batch_limit``
        for the batches still to come."""
        sent, errors, named = await in_batches_it_takes(self.name, docs, send)
        if named is not None and named < self.batch_limit:
            self.batch_limit = named
        return sent, errors

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.credential.value or ''}"}

    def _callback_fields(self) -> dict[str, str]:
        if self.callbacks is None:
            return {}
        return {"callback": f"{self.callbacks.url}/{self.name}", "seed": self.callbacks.seed}

    def callback_ids(self, payload: Mapping[str, Any]) -> dict[str, str] | None:
        if self.callbacks is None:
            return None
        return callback_ids(payload, self.settings.uid, self.callbacks.seed)

    def batch_key(self, kind: str, options: Mapping[str, Any]) -> str | None:
        if kind == "link":
            return None
        o = options
        key = {
            "model_version": o.get("model_version"),
            "enable_formula": o.get("enable_formula"),
            "enable_table": o.get("enable_table"),
            "language": o.get("language"),
            "extra_formats": sorted(o.get("extra_formats") or []),
            "callback": self.callbacks is not None,
        }
        return json.dumps(key, sort_keys=True, separators=(",", ":"))

    def _failed_task(
        self,
        doc: SourceDocument,
        message: str,
        checkpoint: Checkpoint | None,
        err_code: Any = None,
    ) -> DocinboxError:
        """A task that ended ``failed``: its ``err_code`` decides (every official SDK reads
        it), else its ``err_msg``, in either language; transient causes clear the remote
        ids so the next attempt submits again (polling would see the same)."""
        code = answers.code_of(err_code) or answers.message_code(message, self.message_patterns)
        if code is None:
            return RemoteRejected(
                f"{self.name} could not parse {doc.name}: {message}", service=self.name
            )
        if code == -60008:
            return self._fetch_failed(doc, message, checkpoint)
        error = self.dialect.error_for_code(code, message, resubmit=True)
        if error.retryable and checkpoint is not None:
            checkpoint(doc.job_id, answers.cleared())
        return error

    def _fetch_failed(
        self, doc: SourceDocument, message: str, checkpoint: Checkpoint | None
    ) -> DocinboxError:
        return RemoteRejected(
            f"{self.name} could not fetch {doc.url or doc.name}: {message}",
            service=self.name,
            remote_code="-60008",
        )

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await http.send(
            self.client, method, path, service=self.name, headers=self._headers(), **kwargs
        )
        return self.dialect.envelope(response)

    # ------------------------------------------------------------------ polling

    def _not_found(self, doc: SourceDocument, since_key: str) -> Outcome:
        """``-60012`` right after submitting: not yet visible; later: lost for good."""
        since = doc.remote.get(since_key) or doc.remote.get("submitted_at")
        if isinstance(since, int | float) and self.clock.now() - since < NOT_FOUND_GRACE:
            interval = min(
                answers.POLL_MAX,
                max(answers.POLL_MIN, float(doc.remote.get("poll_interval") or answers.POLL_MIN)),
            )
            return Accepted(dict(doc.remote), poll_after=interval)
        raise RemoteRejected(
            f"{self.name} no longer knows the task of {doc.name} (-60012 task not found)",
            service=self.name,
            remote_code="-60012",
        )

    async def _collect(
        self,
        doc: SourceDocument,
        zip_url: str | None,
        remote: Mapping[str, Any],
        markdown_url: str | None = None,
    ) -> Received:
        await collect(self.client, self.name, doc, zip_url, markdown_url)
        return Received(answers.ids(remote))

    def poll_key(self, remote: Mapping[str, Any]) -> str | None:
        batch = remote.get("batch_id")
        return str(batch) if batch else None

    def can_refetch(self, remote: Mapping[str, Any]) -> bool:
        # A done task keeps answering with a fresh result link.
        return bool(remote.get("batch_id") or remote.get("task_id"))

    async def _poll_entries(
        self,
        docs: Sequence[SourceDocument],
        checkpoint: Checkpoint,
        entries: Sequence[Mapping[str, Any]],
    ) -> BatchOutcome:
        """Per document: match its entry by data_id and act on the state."""
        signature = answers.signature(entries)
        by_id = {
            str(e.get("data_id")): e for e in entries if isinstance(e, Mapping) and e.get("data_id")
        }
        outcomes: dict[int, Outcome | DocinboxError] = {}
        done: list[tuple[SourceDocument, Mapping[str, Any]]] = []
        for doc in docs:
            entry = by_id.get(str(doc.remote.get("data_id") or data_id_for(doc)))
            if entry is None:
                outcomes[doc.job_id] = self._missing_entry(doc, signature)
                continue
            state = entry.get("state")
            if state in answers.IN_PROGRESS:
                outcomes[doc.job_id] = _waiting(doc.remote, signature, entry)
            elif state == "done":
                done.append((doc, entry))
            elif state == "failed":
                outcomes[doc.job_id] = self._failed_task(
                    doc, str(entry.get("err_msg") or ""), checkpoint, entry.get("err_code")
                )
            else:
                outcomes[doc.job_id] = MalformedResponse(
                    f"{self.name}: unknown task state {state!r}", service=self.name
                )
        limit = asyncio.Semaphore(DOWNLOAD_CONCURRENCY)

        async def fetch(doc: SourceDocument, entry: Mapping[str, Any]) -> None:
            async with limit:
                outcomes[doc.job_id] = await settled(
                    self._collect(
                        doc, entry.get("full_zip_url"), doc.remote, entry.get("markdown_url")
                    )
                )

        await asyncio.gather(*(fetch(d, e) for d, e in done))
        return outcomes

    def _missing_entry(self, doc: SourceDocument, signature: str) -> Outcome | DocinboxError:
        """The batch answered but not for this document: it is not there yet, or lost."""
        return self._not_found_outcome(doc, "url_issued_at")

    def _not_found_outcome(self, doc: SourceDocument, since_key: str) -> Outcome | DocinboxError:
        """:meth:`_not_found` with its error returned rather than raised."""
        try:
            return self._not_found(doc, since_key)
        except RemoteRejected as exc:
            return exc

    async def poll(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        batch_ids = {d.remote.get("batch_id") for d in docs}
        if len(batch_ids) != 1 or None in batch_ids:
            return await each(docs, self._poll_task)
        batch_id = batch_ids.pop()
        try:
            body = await self._call("GET", f"{self.batch_results_path}/{batch_id}")
        except RemoteRejected as exc:
            if exc.remote_code != "-60012":
                return {d.job_id: exc for d in docs}
            return {d.job_id: self._not_found_outcome(d, self.batch_since_key) for d in docs}
        except DocinboxError as exc:
            return {d.job_id: exc for d in docs}
        entries = answers.data(body, "extract_result")["extract_result"]
        if not isinstance(entries, list):
            err = MalformedResponse(f"{self.name}: extract_result is not a list", service=self.name)
            return {d.job_id: err for d in docs}
        return await self._poll_entries(docs, checkpoint, entries)

    async def _poll_task(self, doc: SourceDocument) -> Outcome:
        """A single task (a link): one request for one document."""
        if doc.remote.get("batch_id"):
            return await alone(self.poll, doc)
        task_id = doc.remote.get("task_id")
        if not task_id:
            raise RemoteRejected(
                f"{self.name}: nothing to poll for {doc.name} (no task id)", service=self.name
            )
        try:
            body = await self._call("GET", f"{self.task_path}/{task_id}")
        except RemoteRejected as exc:
            if exc.remote_code == "-60012":
                return self._not_found(doc, "submitted_at")
            raise
        data = answers.data(body, "state")
        state = data["state"]
        if state in answers.IN_PROGRESS:
            return _waiting(doc.remote, answers.signature([data]), data)
        if state == "done":
            markdown = data.get(self.task_markdown_field) if self.task_markdown_field else None
            return await self._collect(doc, data.get(self.task_zip_field), doc.remote, markdown)
        if state == "failed":
            err_code = data.get("err_code", data.get("errCode"))
            raise self._failed_task(doc, str(data.get(self.task_error_field) or ""), None, err_code)
        raise MalformedResponse(f"{self.name}: unknown task state {state!r}", service=self.name)

    def normalize(self, raw_dir: Path, doc: SourceDocument) -> Normalized:
        pages = mineru_result.selected_pages(doc.options.get("page_ranges"), doc.pages)
        return mineru_result.normalize(raw_dir, answers.ids(doc.remote), pages=pages)

    def merged_raw(self, parts: Sequence[PartOutput], target: Path) -> list[str]:
        return mineru_result.merge_content_lists(parts, target)


class Mineru(MineruFamily):
    """MinerU v4: uploads by presigned PUT for files, URL tasks for links."""

    name = "mineru"
    spec = ServiceSpec(
        settings=MineruSettings,
        credential_key="token",
        credential_env="MINERU_API_KEY",
        base_url="https://mineru.net",
        route_options=ROUTE_OPTIONS,
        mock={"credential": "MINERU_TOKEN", "uid": "MOCK_UID"},
    )
    token_codes = frozenset({"A0202", "A0211"})
    task_path = "/api/v4/extract/task"
    batch_results_path = "/api/v4/extract-results/batch"

    # ------------------------------------------------------------------ submitting

    def resubmit_after_crash(self, doc: SourceDocument) -> bool:
        # The checkpointed remote says what is left to do; submit resumes from it.
        return True

    def _url_still_valid(self, remote: Mapping[str, Any]) -> bool:
        issued = remote.get("url_issued_at")
        url = remote.get("upload_url")
        if not url or not isinstance(issued, int | float):
            return False
        deadline = issued + UPLOAD_URL_VALIDITY
        with contextlib.suppress(ValueError, IndexError, TypeError):
            expires = parse_qs(urlsplit(str(url)).query).get("Expires")
            if expires:
                deadline = min(deadline, float(expires[0]))
        return self.clock.now() < deadline - UPLOAD_URL_MARGIN

    async def _submit_link(self, doc: SourceDocument) -> Outcome:
        """A link: ``extract/task`` with its URL (MinerU fetches it)."""
        if doc.remote.get("task_id"):
            return Accepted(dict(doc.remote), poll_after=answers.POLL_MIN)
        body = {
            "url": doc.url,
            "data_id": data_id_for(doc),
            **answers.batch_options(doc),
            **answers.file_options(doc),
            **self._callback_fields(),
        }
        data = answers.data(await self._call("POST", self.task_path, json=body), "task_id")
        return Accepted(
            {
                "task_id": data["task_id"],
                "data_id": body["data_id"],
                "submitted_at": self.clock.now(),
                "poll_interval": answers.POLL_FIRST,
            },
            poll_after=answers.POLL_FIRST,
        )

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        outcomes: dict[int, Outcome | DocinboxError] = {}
        links = [d for d in docs if d.url is not None]
        uploads: list[tuple[SourceDocument, dict[str, Any]]] = []
        fresh: list[SourceDocument] = []
        for doc in docs:
            if doc.url is not None:
                continue
            r = dict(doc.remote)
            if r.get("batch_id") and r.get("uploaded"):
                outcomes[doc.job_id] = self._accepted(r)
            elif r.get("batch_id") and self._url_still_valid(r):
                uploads.append((doc, r))
            else:
                fresh.append(doc)
        if fresh:
            granted, refused = await self._in_batches_it_takes(
                fresh, lambda chunk: self._request_urls(chunk, checkpoint)
            )
            for pairs in granted:
                uploads += pairs
            outcomes.update(refused)
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def put(doc: SourceDocument, remote: dict[str, Any]) -> None:
            async with limit:
                outcomes[doc.job_id] = await settled(self._upload(doc, remote, checkpoint))

        async def link(doc: SourceDocument) -> None:
            outcomes[doc.job_id] = await settled(self._submit_link(doc))

        await asyncio.gather(*(put(d, r) for d, r in uploads), *(link(d) for d in links))
        return outcomes

    async def _request_urls(
        self, docs: Sequence[SourceDocument], checkpoint: Checkpoint
    ) -> list[tuple[SourceDocument, dict[str, Any]]]:
        """One ``file-urls/batch`` for *docs*; every doc's ids checkpointed before a PUT."""
        files = [
            {"name": remote_name(d), "data_id": data_id_for(d), **answers.file_options(d)}
            for d in docs
        ]
        body = {**answers.batch_options(docs[0]), **self._callback_fields(), "files": files}
        data = answers.data(
            await self._call("POST", "/api/v4/file-urls/batch", json=body), "batch_id", "file_urls"
        )
        urls = data["file_urls"]
        if not isinstance(urls, list) or len(urls) != len(docs):
            raise MalformedResponse(
                f"{self.name}: asked for {len(docs)} upload URLs, got "
                f"{redact.clip(repr(urls), 80)}",
                service=self.name,
            )
        issued = self.clock.now()
        out = []
        for doc, f, url in zip(docs, files, urls, strict=True):
            remote = {
                "batch_id": str(data["batch_id"]),
                "upload_url": str(url),
                "data_id": f["data_id"],
                "uploaded": False,
                "url_issued_at": issued,
            }
            checkpoint(doc.job_id, remote)
            out.append((doc, remote))
        return out

    def _accepted(self, remote: Mapping[str, Any]) -> Accepted:
        r = dict(remote)
        r.setdefault("poll_interval", answers.POLL_FIRST)
        return Accepted(r, poll_after=float(r["poll_interval"]))

    async def _upload(
        self, doc: SourceDocument, remote: dict[str, Any], checkpoint: Checkpoint
    ) -> Accepted:
        """PUT the file streamed, with no Content-Type (the URL is signed without one)."""
        with open_document(doc) as fh:  # a vanished or swapped file fails before the PUT
            response = await http.send(
                self.client,
                "PUT",
                str(remote["upload_url"]),
                service=self.name,
                content=_file_chunks(fh),
                headers={"Content-Length": str(doc.size)},
            )
        if response.status_code != 200:
            raise self._upload_error(doc, response, checkpoint)
        checkpoint(doc.job_id, {"uploaded": True, "upload_url": None})
        remote.update(uploaded=True, upload_url=None, poll_interval=answers.POLL_FIRST)
        return Accepted(remote, poll_after=answers.POLL_FIRST)

    def _upload_error(
        self, doc: SourceDocument, response: httpx.Response, checkpoint: Checkpoint
    ) -> DocinboxError:
        text = response.text[:2048]
        code = zipsafe.xml_tag(text, "Code")
        message = zipsafe.xml_tag(text, "Message") or http.describe_body(response)
        # Whatever went wrong, that URL is spent: the next attempt asks for a new one.
        checkpoint(doc.job_id, answers.cleared())
        if response.status_code == 403 and code == "AccessDenied" and "expired" in message:
            return TransientError(
                f"{self.name}: the upload URL for {doc.name} expired; a new one is requested "
                "next time",
                service=self.name,
                status=403,
                remote_code="AccessDenied",
                resubmit=True,
            )
        if response.status_code in (403, 404, 408, 409):
            return ServerError(
                f"{self.name}: upload of {doc.name} refused: HTTP "
                f"{response.status_code} {code} {message}",
                service=self.name,
                status=response.status_code,
                remote_code=code or None,
                resubmit=True,
            )
        return RemoteRejected(
            f"{self.name}: upload of {doc.name} refused: HTTP "
            f"{response.status_code} {code} {message}",
            service=self.name,
            status=response.status_code,
            remote_code=code or None,
        )


async def in_batches_it_takes(
    service: str,
    docs: Sequence[SourceDocument],
    send: Callable[[Sequence[SourceDocument]], Awaitable[T]],
) -> tuple[list[T], dict[int, DocinboxError], int | None]:
    """*send* the documents as one batch; when the service refuses it for its size,
    in smaller ones (the size its answer names, else halves), each sent again — a
    document is never failed for sharing a batch that was too big.  Also returns the
    smallest batch size the service named, if it named one."""
    try:
        return [await send(docs)], {}, None
    except DocinboxError as exc:
        cap = answers.batch_cap(exc, len(docs))
        if cap is None:
            return [], {d.job_id: exc for d in docs}, None
        size, named = cap
    log.info(
        "%s refused a batch of %d documents for its size; sending it in batches of %d",
        service,
        len(docs),
        size,
    )
    smallest = size if named else None
    sent: list[T] = []
    errors: dict[int, DocinboxError] = {}
    for start in range(0, len(docs), size):
        more, failed, told = await in_batches_it_takes(service, docs[start : start + size], send)
        sent += more
        errors.update(failed)
        if told is not None:
            smallest = told if smallest is None else min(smallest, told)
    return sent, errors, smallest


def _waiting(
    remote: Mapping[str, Any], signature: str, entry: Mapping[str, Any] | None = None
) -> Accepted:
    """Polled again later: sooner when the batch moved since the last poll (the
    signature kept here tells), and with the service's progress for the desk."""
    interval = answers.interval(remote, signature)
    new = dict(remote)
    new.update(
        poll_interval=interval, progress=signature, service_state=answers.progress(entry or {})
    )
    return Accepted(new, poll_after=interval)


async def collect(
    client: httpx.AsyncClient,
    service: str,
    doc: SourceDocument,
    zip_url: str | None,
    markdown_url: str | None = None,
) -> None:
    """Download the result zip streamed and unpack it safely into ``workdir/raw`` (and
    the Markdown beside it when the zip has none and the answer links one)."""
    workdir = doc.workdir
    raw = doc.raw
    with host_errors(workdir.parent, "make the work folder"):
        workdir.mkdir(parents=True, exist_ok=True)
    if zip_url:
        target = workdir / RESULT_ZIP
        try:
            await zipsafe.download(
                client, zip_url, target, max_bytes=MAX_RESULT_BYTES, service=service
            )
            await asyncio.to_thread(zipsafe.extract, target, raw)
        finally:
            target.unlink(missing_ok=True)
    if markdown_url and mineru_result.find_markdown(raw) is None:
        with host_errors(workdir, "store the result"):
            raw.mkdir(parents=True, exist_ok=True)
        await zipsafe.download(
            client,
            markdown_url,
            raw / mineru_result.MARKDOWN_NAME,
            max_bytes=MAX_RESULT_BYTES,
            service=service,
            durable=True,
        )
    if not raw.is_dir():
        raise MalformedResponse(f"{service}: task done but no result link", service=service)


def per_minute(count: int) -> Quota | None:
    return Quota(count, 60.0) if count else None


def api_lanes(base_url: str, queries: tuple[str, ...]) -> Callable[[str, str], str | None]:
    """Submissions (every POST to the API) and result queries (GETs under *queries*) are
    limited apart (limit_en); uploads to storage and result downloads are not the API's."""
    host = httpx.URL(base_url).host if base_url else ""

    def lane(method: str, url: str) -> str | None:
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            return None
        if parsed.host and parsed.host != host:
            return None
        if method == "POST":
            return "submit"
        return "query" if method == "GET" and parsed.path.startswith(queries) else None

    return lane


async def _file_chunks(fh: BinaryIO) -> AsyncIterator[bytes]:
    """The file in 1 MiB pieces, read off the event loop: a 200 MB upload costs 1 MiB."""
    while chunk := await asyncio.to_thread(fh.read, UPLOAD_CHUNK):
        yield chunk


__all__ = ["Mineru", "MineruFamily", "data_id_for", "remote_name", "verify_callback"]
