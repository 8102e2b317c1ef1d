"""How MinerU v4 and docparse v1 answer: envelopes, error codes in both languages, task
states and progress — read here, apart from the requests, so each API is a dialect.

Business errors are HTTP 200 with a non-zero ``code``, or HTTP 400 with ``msg`` an
``{"en", "zh"}`` object (opendatalab/MinerU#1826); a bad token is HTTP 401 with
``msgCode`` A0202/A0211 and no ``code`` (opendatalab/MinerU#5133).  A failed task is read
by its ``err_code`` first (every official SDK reads it: opendatalab/MinerU-Ecosystem
``sdk/python/src/mineru/client.py``), else by its ``err_msg`` against both languages'
texts.  The two APIs differ in what some codes mean (:class:`Dialect`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .. import redact
from ..clock import Clock
from ..errors import (
    CorruptDocument,
    CredentialsError,
    DocinboxError,
    DocumentTooLarge,
    EmptyDocument,
    MalformedResponse,
    QuotaExceeded,
    RemoteRejected,
    ServerError,
    TooManyPages,
    UnsupportedDocument,
)
from . import http
from .base import SourceDocument
from .libs import httpx

#: Adaptive polling: first interval, growth while nothing moves, and the cap.
POLL_FIRST = 3.0
POLL_MIN = 2.0
POLL_FACTOR = 1.6
POLL_MAX = 30.0
IN_PROGRESS = frozenset({"waiting-file", "pending", "running", "converting"})

#: MinerU's quotas renew at midnight in Beijing (UTC+8).
_BEIJING = datetime.timezone(datetime.timedelta(hours=8))

#: Error codes → docinbox errors.  Sources: seed 002's table, completed with -60017 to
#: -60022 from the current official table (mineru.net/apiManage/docs) and the official
#: SDK's mapping (opendatalab/MinerU-Ecosystem sdk/python/src/mineru/exceptions.py).
DOCUMENT_CODES: dict[int, type[DocinboxError]] = {
    -60002: UnsupportedDocument,
    -60003: CorruptDocument,
    -60004: EmptyDocument,
    -60005: DocumentTooLarge,
    -60006: TooManyPages,
}
#: "请稍后再试/重试": a new attempt may work.  -60020 file split failed, -60021 reading the
#: page count failed, -60022 web page read failed ("network issues or rate limiting").
TRANSIENT_CODES = frozenset(
    {-10001, -60001, -60007, -60009, -60010, -60011, -60016, -60020, -60021, -60022}
)
REQUEST_BUG_CODES = frozenset({-500, -10002})
#: Daily allowances ("明日再来"): -60018 parsing tasks per day, -60019 HTML parses; the
#: SDK raises QuotaExceededError "Daily parsing quota exhausted" for both.
DAILY_QUOTA_CODES = frozenset({-60018, -60019})
#: The per-task failure reports ``err_msg`` (and usually ``err_code``); by message, in
#: both languages, when the code is missing.  Real messages are English (user logs in the
#: fidelity notes: "failed to read file, please check if the file is corrupted",
#: "retry limit reached (5 attempts), please replace the file", "parsing failed, please
#: try again later", "number of pages exceeds limit (200 pages), please split the file
#: and try again"); the Chinese ones are the error table's.  Order matters: the first
#: pattern found in the message wins.
MESSAGE_PATTERNS: tuple[tuple[str, int], ...] = (
    (r"retry limit|重试次数达到上限|重试次数达到上线", -60017),
    (r"daily .*(limit|quota)|task limit reached|每日解析任务数量", -60018),
    (r"html.*(quota|limit)|html 文件解析额度", -60019),
    (r"split\w* fail|fail\w* to split|文件拆分失败", -60020),
    (
        r"(number of pages|page count|pages?) (exceeds?|over)|too many pages|exceeds? .*pages"
        r"|文件页数超过限制",
        -60006,
    ),
    (r"(read|get)\w* (the )?page count|page count.*fail|读取文件页数失败", -60021),
    (r"web ?page|网页读取失败", -60022),
    (r"time ?out|timed out|文件读取超时", -60008),
    (r"empty file|空文件", -60004),
    (r"(file )?size exceeds?|too large|文件大小超出限制", -60005),
    (r"file (format|type)|not supported|unsupported|获取匹配的文件格式失败|文件格式不支持", -60002),
    (r"fail\w* to read (the )?file|file read fail|corrupt|文件读取失败", -60003),
    (r"model service|模型服务暂时不可用", -60007),
    (r"queue (is )?full|任务提交队列已满", -60009),
    (r"valid file|not (been )?uploaded|获取有效文件失败", -60011),
    (
        r"(convert|conversion)\w*.*(requested|specified|export) format|文件转换为指定格式失败",
        -60016,
    ),
    (r"convert|conversion|文件转换失败", -60015),
    (r"pars(e|ing) fail|fail\w* to parse|解析失败", -60010),
    (r"service error|服务异常", -10001),
)
RETRY_LIMIT_HINT = (
    "MinerU gave up on this file after retrying it (retry limit reached). Replace it: "
    "export or scan it again (or print it to PDF) and drop the new copy into the inbox."
)
_COUNT_IN_MESSAGE = re.compile(
    r"(?:不能超过|最多|超过|exceed|more than|at most|up to|limit(?: of| is)?)\D{0,24}?(\d+)",
    re.IGNORECASE,
)


def code_of(value: Any) -> int | None:
    """A per-task ``err_code`` as a number: the SDKs read it as an int or a string; empty
    (``""``, ``None``, ``[]``, 0) means the service gave none."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        return None
    return number or None


def message_texts(msg: Any) -> list[str]:
    """An envelope's ``msg``: a string, or an ``{"en", "zh"}`` object (HTTP 400 answers,
    opendatalab/MinerU#1826) — English first."""
    if isinstance(msg, Mapping):
        return [str(msg[k]) for k in ("en", "zh") if msg.get(k)] + [
            str(v) for k, v in msg.items() if k not in ("en", "zh") and isinstance(v, str) and v
        ]
    return [str(msg)] if msg not in (None, "") else []


def seconds_until_quota_renews(now: float) -> float:
    """Until the next midnight in Beijing, when MinerU's daily allowances renew."""
    local = datetime.datetime.fromtimestamp(now, _BEIJING)
    tomorrow = (local + datetime.timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(60.0, tomorrow.timestamp() - now)


def message_code(
    message: str, patterns: Sequence[tuple[str, int]] = MESSAGE_PATTERNS
) -> int | None:
    """The code a failure message stands for (English or Chinese), or None."""
    text = (message or "").strip()
    for pattern, code in patterns:
        if re.search(pattern, text, re.IGNORECASE):
            return code
    return None


def batch_cap(error: DocinboxError, sent: int) -> tuple[int, bool] | None:
    """When *error* is the service refusing a batch of *sent* files for its size (a
    parameter error, -10002 or -500): how many it takes and whether its message said so
    ("单次申请链接不能超过 50 个"; else, for -10002, half is tried).  None: not that."""
    if sent <= 1 or not isinstance(error, RemoteRejected):
        return None
    if error.remote_code not in ("-10002", "-500"):
        return None
    for match in _COUNT_IN_MESSAGE.finditer(error.message):
        number = int(match.group(1))
        if 0 < number < sent:
            return number, True
    return (max(1, sent // 2), False) if error.remote_code == "-10002" else None


@dataclass(frozen=True)
class Dialect:
    """What one API's codes mean: its token codes, its quota codes, whether -60017 is
    "retry limit reached" (MinerU) or a quota (docparse), and its message texts."""

    service: str
    clock: Clock
    token_codes: frozenset[str]
    quota_codes: frozenset[int]
    retry_limit_code: int | None
    message_patterns: tuple[tuple[str, int], ...]

    def error_for_code(
        self, code: Any, message: str, *, status: int | None = None, resubmit: bool = False
    ) -> DocinboxError:
        """The docinbox error for one of the seeds' codes (a number or ``A0202``);
        *resubmit*: the task failed remotely, so a transient cause means a new task."""
        svc = self.service
        text = f"{svc}: {message or 'error'} (code {code})"
        if str(code) in self.token_codes:
            return CredentialsError(text, service=svc, status=status, remote_code=str(code))
        try:
            number = int(code)
        except (TypeError, ValueError):
            return RemoteRejected(text, service=svc, status=status, remote_code=str(code))
        if number in self.quota_codes:
            return QuotaExceeded(
                text,
                service=svc,
                status=status,
                remote_code=str(code),
                retry_after=seconds_until_quota_renews(self.clock.now()),
                resubmit=resubmit,
                hint="The service's daily allowance is used up; docinbox resumes on its own "
                "after midnight in Beijing (UTC+8), or upgrade the plan.",
            )
        if number == self.retry_limit_code:
            return RemoteRejected(
                text, service=svc, status=status, remote_code=str(code), hint=RETRY_LIMIT_HINT
            )
        return _shared_code_error(
            number, str(code), text, service=svc, status=status, resubmit=resubmit
        )

    def envelope(self, response: httpx.Response) -> dict[str, Any]:
        """The envelope of an API answer; auth failures and non-zero codes raise."""
        status = response.status_code
        body: Any = None
        with contextlib.suppress(MalformedResponse):
            body = http.json_body(response, service=self.service)
        if status in (401, 403):
            code = body.get("msgCode") or body.get("code") if isinstance(body, dict) else None
            msg = (
                " / ".join(message_texts(body.get("msg") or body.get("message")))
                if isinstance(body, dict)
                else None
            )
            raise CredentialsError(
                f"{self.service} rejected the token (HTTP {status}"
                f"{f' {code}' if code else ''}: {msg or 'unauthorized'})",
                service=self.service,
                status=status,
                remote_code=str(code) if code else None,
            )
        if not isinstance(body, dict):
            if status >= 400:
                raise RemoteRejected(
                    f"{self.service}: HTTP {status} {http.describe_body(response)}",
                    service=self.service,
                    status=status,
                )
            raise MalformedResponse(
                f"{self.service}: expected a JSON object ({http.describe_body(response)})",
                service=self.service,
                status=status,
            )
        code = body.get("code", body.get("msgCode"))
        if code not in (0, "0"):
            # msg is a string, or {"en", "zh"} on an HTTP 400 (opendatalab/MinerU#1826).
            texts = message_texts(body.get("msg") or body.get("message"))
            raise self.error_for_code(code, " / ".join(texts), status=status)
        if status >= 400:
            raise RemoteRejected(
                f"{self.service}: HTTP {status} {http.describe_body(response)}",
                service=self.service,
                status=status,
            )
        return body


def _shared_code_error(
    number: int, code: str, text: str, *, service: str, status: int | None, resubmit: bool
) -> DocinboxError:
    """The error for a code that means the same in every dialect (the document's fault, a
    passing fault, docinbox's request refused), so only the dialects' own codes differ."""
    if number in DOCUMENT_CODES:
        hint = "Split the document first." if number in (-60005, -60006) else None
        return DOCUMENT_CODES[number](text, service=service, hint=hint)
    if number in TRANSIENT_CODES:
        return ServerError(
            text, service=service, status=status, remote_code=code, resubmit=resubmit
        )
    if number == -60015:
        return RemoteRejected(
            text,
            service=service,
            remote_code=code,
            hint="The service could not convert the file; export it as PDF and drop that instead.",
        )
    if number in REQUEST_BUG_CODES:
        return RemoteRejected(
            f"{text}: the service refused docinbox's request",
            service=service,
            status=status,
            remote_code=code,
        )
    return RemoteRejected(text, service=service, status=status, remote_code=code)


def batch_options(doc: SourceDocument) -> dict[str, Any]:
    """A batch's options (the API's names), from the document's route."""
    o = doc.options
    out: dict[str, Any] = {
        k: o[k]
        for k in ("model_version", "enable_formula", "enable_table", "language")
        if o.get(k) is not None
    }
    if o.get("extra_formats"):
        out["extra_formats"] = list(o["extra_formats"])
    return out


def file_options(doc: SourceDocument) -> dict[str, Any]:
    """One file's own options in a batch."""
    o = doc.options
    out: dict[str, Any] = {}
    if o.get("is_ocr") is not None:
        out["is_ocr"] = bool(o["is_ocr"])
    if o.get("page_ranges"):
        out["page_ranges"] = str(o["page_ranges"])
    return out


def cleared() -> dict[str, Any]:
    """Remote ids to forget so the next attempt is a fresh submission."""
    return {
        "batch_id": None,
        "task_id": None,
        "upload_url": None,
        "uploaded": False,
        "url_issued_at": None,
        "submitted_at": None,
    }


def data(body: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The envelope's ``data`` object, which must hold *keys*."""
    data = body.get("data")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise MalformedResponse(
            f"expected data with {', '.join(keys)}, got {redact.clip(repr(data), 120)}"
        )
    return data


def signature(entries: Sequence[Mapping[str, Any]]) -> str:
    """What has to change for the batch to count as progressing."""
    parts = sorted(
        f"{e.get('data_id') or e.get('file_name')}:{e.get('state')}:"
        f"{(e.get('extract_progress') or {}).get('extracted_pages', '')}"
        for e in entries
        if isinstance(e, Mapping)
    )
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def interval(remote: Mapping[str, Any], signature: str) -> float:
    """Short again when the batch moved; otherwise back off ×1.6 up to 30 s."""
    previous = remote.get("poll_interval")
    if not isinstance(previous, int | float) or remote.get("progress") != signature:
        return POLL_MIN
    return min(POLL_MAX, max(POLL_MIN, float(previous) * POLL_FACTOR))


def progress(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Where the service is with a document: its state (``pending``: in the service's
    queue — the API gives no position in it), and while ``running`` the pages done of
    how many (``extract_progress``, seed 002)."""
    out: dict[str, Any] = {"state": str(entry.get("state") or "")}
    progress = entry.get("extract_progress") or entry.get("extractProgress")
    if isinstance(progress, Mapping):
        done = progress.get("extracted_pages", progress.get("extractedPages"))
        total = progress.get("total_pages", progress.get("totalPages"))
        if isinstance(done, int) and not isinstance(done, bool) and done >= 0:
            out["pages_done"] = done
        if isinstance(total, int) and not isinstance(total, bool) and total > 0:
            out["pages"] = total
    return out


def ids(remote: Mapping[str, Any]) -> dict[str, Any]:
    """The remote ids a result is filed under."""
    return {k: remote[k] for k in ("batch_id", "task_id", "data_id") if remote.get(k) is not None}
