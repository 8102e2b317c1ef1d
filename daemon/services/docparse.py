"""docparse v1 (seed 001): a self-hosted, MinerU-compatible parser that only takes URLs.

Files are served by the daemon's :class:`~daemon.servers.files.FileServer` at a signed,
expiring URL the parser fetches; links go to the parser as they are.  One document:
``POST /api/v1/extract/task`` (camelCase) and ``GET /api/v1/extract/task/{taskId}``
(``fullZipUrl``, ``markdownUrl``); several files sharing options:
``POST /api/v1/extract/task/batch`` (snake_case, as MinerU) and ONE
``GET /api/v1/extract-results/batch/{batch_id}`` per poll.  Results are MinerU's zip,
unpacked safely into ``raw/`` and normalized like MinerU's.

Token errors are ``-20002``/``-20011`` (the mock answers them with HTTP 401).

Where docparse differs from MinerU (no public trace beyond seed 001): its limits are the
seed's (600 pages per file, 200 files per batch request), and its ``-60017`` is "页码余额
不足" (page balance insufficient: a quota) where MinerU's is "retry limit reached".  A
self-hosted parser may hand back a ``mineru-api`` zip (``<name>/<backend>/<name>.md``,
``<name>_middle.json``): :mod:`~daemon.services.mineru_result` reads every layout.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DocinboxError, QuotaExceeded, TransientError
from ..settings import ServiceSettings, ServiceSpec, key
from . import mineru_answers as answers
from . import mineru_result
from .base import (
    Accepted,
    BatchOutcome,
    Budget,
    Checkpoint,
    Outcome,
    Received,
    ServiceContext,
    SourceDocument,
    each,
)
from .mineru import (
    ROUTE_OPTIONS,
    MineruFamily,
    MineruSettings,
    data_id_for,
    remote_name,
)

log = logging.getLogger("docinbox")

#: How long a signed document URL works: the parser may queue a task before fetching.
FILE_URL_TTL = 24 * 3600.0
#: After a crash lost a submission's answer, how long to wait for the parser's callback
#: before sending the document again.
LOST_ANSWER_WAIT = 600.0
#: seed 001's camelCase names of the single-task request.
CAMEL = {
    "is_ocr": "isOcr",
    "enable_formula": "enableFormula",
    "enable_table": "enableTable",
    "language": "language",
    "extra_formats": "extraFormats",
    "page_ranges": "pageRanges",
    "model_version": "modelVersion",
}


@dataclass(frozen=True)
class DocparseSettings(MineruSettings):
    #: Seed 001: "单个文件大小≤200MB、页数≤600", "单次请求最多 200 个文件".
    max_pages_per_file: int = field(
        default=600, metadata=key(minimum=1, help="pages one file may have (the service's limit)")
    )
    max_files_per_batch: int = field(
        default=200, metadata=key(minimum=1, help="files one batch request may carry")
    )
    #: A self-hosted parser: no request limits known (its 429s are learned), no daily
    #: file limit; seed 001: 2,000 pages a day at the highest priority, and a page
    #: balance ("页码余额", -60017) whose size only the operator knows (0: not enforced).
    submit_per_minute: int = field(default=0, metadata=key(minimum=0))
    query_per_minute: int = field(default=0, metadata=key(minimum=0))
    files_per_day: int = field(default=0, metadata=key(minimum=0))
    priority_pages_per_day: int = field(default=2000, metadata=key(minimum=0))
    page_balance: int = field(default=0, metadata=key(minimum=0))
    #: Where docinbox serves documents to the parser, and the address the parser uses.
    files_listen: str = field(default="127.0.0.1:8766", metadata=key())
    files_url: str = field(default="", metadata=key())


class Docparse(MineruFamily):
    """docparse v1 over the daemon's file server."""

    name = "docparse"
    spec = ServiceSpec(
        settings=DocparseSettings,
        credential_key="token",
        credential_env="DOCPARSE_API_KEY",
        base_url="",
        route_options=ROUTE_OPTIONS,
        mock={"credential": "DOCPARSE_TOKEN", "uid": "MOCK_UID"},
    )
    settings: DocparseSettings
    token_codes = frozenset({"-20002", "-20011"})
    task_path = "/api/v1/extract/task"
    batch_results_path = "/api/v1/extract-results/batch"
    task_zip_field = "fullZipUrl"
    task_markdown_field = "markdownUrl"
    task_error_field = "errMsg"
    batch_since_key = "submitted_at"
    fetches_documents = True
    #: Seed 001's error table: "-60017 页码余额不足 请充值或升级套餐".
    quota_codes = answers.DAILY_QUOTA_CODES | {-60017}
    retry_limit_code = None
    message_patterns = (
        (r"page balance|页码余额不足", -60017),
        *(p for p in answers.MESSAGE_PATTERNS if p[1] != -60017),
    )

    def budgets(self) -> tuple[Budget, ...]:
        balance = self.settings.page_balance
        return (
            *super().budgets(),
            Budget("pages", "pages", balance, "balance", label="page balance"),
        )

    def usage(self, kind: str, pages: int | None) -> Mapping[str, float]:
        return {**super().usage(kind, pages), "pages": pages or 1}

    def spent(self, err: DocinboxError) -> str | None:
        if isinstance(err, QuotaExceeded) and err.remote_code == "-60017":
            return "pages"
        return super().spent(err)

    @classmethod
    def files_address(cls, settings: ServiceSettings) -> tuple[str, str] | None:
        assert isinstance(settings, DocparseSettings)
        return settings.files_listen, settings.files_url

    @classmethod
    def for_mock(
        cls, settings: ServiceSettings, url: str, host: str, values: Mapping[str, Any]
    ) -> ServiceSettings:
        # The mock fetches documents from this machine: serve them on loopback only, at
        # the address the file server learns once it listens.
        mocked = super().for_mock(settings, url, host, values)
        assert isinstance(mocked, DocparseSettings)
        return dataclasses.replace(mocked, files_listen=f"{host}:0", files_url="")

    def __init__(self, settings: DocparseSettings, ctx: ServiceContext) -> None:
        super().__init__(settings, ctx)
        if ctx.files is None:
            raise ValueError("docparse fetches documents from the daemon's file server")
        self.files = ctx.files

    # ------------------------------------------------------------------ submitting

    def _source_url(self, doc: SourceDocument) -> str:
        """Links as dropped; files at a signed URL whose name carries the right suffix."""
        if doc.url is not None:
            return doc.url
        return self.files.url_for(doc.job_id, remote_name(doc), ttl=FILE_URL_TTL)

    @staticmethod
    def _already(doc: SourceDocument) -> Accepted | None:
        """After a crash: a checkpointed task or batch is polled, not sent again."""
        if doc.remote.get("task_id") or doc.remote.get("batch_id"):
            return Accepted(dict(doc.remote), poll_after=answers.POLL_FIRST)
        return None

    async def _submit_one(self, doc: SourceDocument) -> Outcome:
        already = self._already(doc)
        if already is not None:
            return already
        snake = {**answers.batch_options(doc), **answers.file_options(doc)}
        body: dict[str, Any] = {CAMEL[k]: v for k, v in snake.items()}
        body.update(url=self._source_url(doc), dataId=data_id_for(doc), **self._callback_fields())
        data = answers.data(await self._call("POST", self.task_path, json=body), "taskId")
        return Accepted(
            {
                "task_id": str(data["taskId"]),
                "data_id": body["dataId"],
                "submitted_at": self.clock.now(),
                "poll_interval": answers.POLL_FIRST,
            },
            poll_after=answers.POLL_FIRST,
        )

    def resubmit_after_crash(self, doc: SourceDocument) -> bool:
        """The parser fetches the document while it handles the submission, so a crash in
        that request may leave a task docinbox never heard of.  The file server recorded
        the fetch (``fetched_at``): then, when the parser pushes results, its callback
        (which names the ``data_id``, persisted before the request) brings the task back —
        the document is polled, not sent twice.  Without callbacks the parser cannot be
        asked (seed 001 has no lookup by data id), so it is sent again."""
        if doc.remote.get("task_id") or doc.remote.get("batch_id"):
            return True  # submit() resumes from the checkpoint
        return not (doc.remote.get("fetched_at") and self.callbacks is not None)

    async def _poll_task(self, doc: SourceDocument) -> Outcome:
        if doc.remote.get("task_id") or doc.remote.get("batch_id"):
            return await super()._poll_task(doc)
        return await self._find_lost_task(doc)

    async def _find_lost_task(self, doc: SourceDocument) -> Outcome:
        """A submission whose answer a crash lost.  The parser's callbacks name tasks
        docinbox does not know (``candidates``, see pipeline/poll.wake); the one whose
        result holds this very document (its ``*_origin`` file has the document's
        sha256) is this job's.  Until one proves so, or for LOST_ANSWER_WAIT, wait; then
        send the document again."""
        waiting = False
        for task_id in list(doc.remote.get("candidates") or []):
            probe = dataclasses.replace(doc, remote={**doc.remote, "task_id": task_id})
            try:
                outcome = await super()._poll_task(probe)
            except DocinboxError:
                continue  # not ours to know about (another token's, or gone)
            if isinstance(outcome, Accepted):
                waiting = True
            elif mineru_result.origin_sha256(doc.raw) == doc.sha256:
                log.info("%s: its task %s, lost in a crash, was found again", doc.name, task_id)
                return Received({**outcome.remote, "task_id": task_id})
            else:
                shutil.rmtree(doc.raw, ignore_errors=True)  # another document's result
        since = float(doc.remote.get("fetched_at") or 0)
        if waiting or self.clock.now() - since < LOST_ANSWER_WAIT:
            return Accepted(dict(doc.remote), poll_after=answers.POLL_MAX)
        raise TransientError(
            f"docparse: the task for {doc.name} was lost in a crash and no callback named "
            "it; sending it again",
            service=self.name,
            resubmit=True,
        )

    async def submit(self, docs: Sequence[SourceDocument], checkpoint: Checkpoint) -> BatchOutcome:
        outcomes: dict[int, Outcome | DocinboxError] = {}
        todo: list[SourceDocument] = []
        for doc in docs:
            already = self._already(doc)
            if already is not None:
                outcomes[doc.job_id] = already
            else:
                # The intent: the data_id the parser's callback will name, before the
                # request (see resubmit_after_crash).
                checkpoint(doc.job_id, {"data_id": data_id_for(doc), "fetched_at": None})
                todo.append(doc)
        if len(todo) == 1 or any(d.url is not None for d in todo):
            # One document (or links): the single-task API says more (markdownUrl, errors
            # at submission) and a batch would buy nothing.
            outcomes.update(await each(todo, self._submit_one))
            return outcomes
        if not todo:
            return outcomes

        async def send(batch: Sequence[SourceDocument]) -> dict[int, Outcome]:
            files = [
                {"url": self._source_url(d), "data_id": data_id_for(d), **answers.file_options(d)}
                for d in batch
            ]
            body = {**answers.batch_options(batch[0]), **self._callback_fields(), "files": files}
            data = answers.data(
                await self._call("POST", "/api/v1/extract/task/batch", json=body), "batch_id"
            )
            now = self.clock.now()
            sent: dict[int, Outcome] = {}
            for doc, f in zip(batch, files, strict=True):
                remote = {
                    "batch_id": str(data["batch_id"]),
                    "data_id": f["data_id"],
                    "submitted_at": now,
                }
                checkpoint(doc.job_id, remote)
                sent[doc.job_id] = Accepted(
                    {**remote, "poll_interval": answers.POLL_FIRST}, poll_after=answers.POLL_FIRST
                )
            return sent

        accepted, refused = await self._in_batches_it_takes(todo, send)
        for part in accepted:
            outcomes.update(part)
        outcomes.update(refused)
        return outcomes

    def _fetch_failed(
        self, doc: SourceDocument, message: str, checkpoint: Checkpoint | None
    ) -> DocinboxError:
        if doc.url is not None:
            return super()._fetch_failed(doc, message, checkpoint)
        # The parser could not reach our file server: a new URL may do, or files_url is
        # wrong; either way the next attempt submits afresh.
        if checkpoint is not None:
            checkpoint(doc.job_id, answers.cleared())
        return TransientError(
            f"docparse could not fetch {doc.name} from the daemon's file server ({message})",
            service=self.name,
            remote_code="-60008",
            resubmit=True,
            hint="Check that services.docparse.files_url is reachable from the parser.",
        )
