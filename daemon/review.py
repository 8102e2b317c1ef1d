"""The review loop: which results need a person's look, and what an approval does.

A field scored under ``[review] min_score``, or a label of ``[review] required`` the
model did not find, puts the document under review: its result is written as always,
with ``"review": {"state": "pending", "fields": [labels]}`` (:func:`initial`).

On the desk a person corrects values (kept in the store until approval) and approves.
The approval is a remote side effect handled like every other one (:class:`Approvals`):

1. the intent is committed (``reviews.state = approving``, with the corrections);
2. the service is told — Nanonets: ``UpdateFile`` with the corrected fields, then
   ``ApproveFile`` — each call that lands persisted before the next is made, so a retry
   or a restart resumes where it stopped; a service without a review API is skipped
   (the result says ``"sent": false``: corrected locally only);
3. ``document.md`` and ``result.json`` are rewritten in place, each file replaced in one
   step (fsynced, renamed), ``result.json`` last: its ``review`` becomes
   ``{"state": "approved", "by", "at", ...}`` and each corrected field keeps the
   model's value as ``original`` — ``raw/`` (the service's own answer) is never touched;
4. the outcome is committed (``approved``) together with the result's new search text.

A transient failure (the network, a 5xx, a paused service, a full disk) is retried with
the daemon's backoff, for as long as it takes: an approval is never lost.  A refusal
(the file deleted on the service) ends the approval as ``failed`` with the service's
message; the person may approve again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .docfile import display_name
from .errors import DocinboxError, HostError, InternalError
from .outbox.disk import fsync_dir, host_error, write_durably
from .outbox.markdown import render_extraction
from .retry import RetryPolicy
from .services import Service
from .services.base import Correction
from .settings import ReviewSettings
from .store import Job, State, Store
from .store.records import IndexedResult, Review

log = logging.getLogger("docinbox")

#: Who approved, as ``review.by`` says (the desk is the only way to approve yet).
BY_DASHBOARD = "dashboard"
#: A correction's text may be this long at most (a field value, not a document).
MAX_TEXT = 4000
MAX_CORRECTIONS = 200


def needs_review(fields: Sequence[Mapping[str, Any]], settings: ReviewSettings) -> list[str]:
    """The labels a person should look at: scored under ``min_score``, or required and
    not found (no field with that label holds text)."""
    labels: list[str] = []
    for f in fields:
        score = f.get("score")
        if not isinstance(score, int | float) or isinstance(score, bool):
            continue
        if score < settings.min_score and f.get("label"):
            labels.append(str(f["label"]))
    found = {f.get("label") for f in fields if str(f.get("text") or "").strip()}
    labels += [label for label in settings.required if label not in found]
    return list(dict.fromkeys(labels))


def initial(fields: Sequence[Mapping[str, Any]], settings: ReviewSettings) -> dict[str, Any]:
    """The ``review`` object of a freshly written result."""
    labels = needs_review(fields, settings)
    return {"state": "pending", "fields": labels} if labels else {"state": "none"}


def check_corrections(body: Any) -> list[dict[str, str]]:
    """A request's ``{"fields": [{"label", "text"}]}`` (untrusted), checked; ValueError
    says what is wrong."""
    items = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError('expected {"fields": [{"label": ..., "text": ...}]}')
    if len(items) > MAX_CORRECTIONS:
        raise ValueError(f"at most {MAX_CORRECTIONS} corrections at once")
    out: dict[str, dict[str, str]] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ValueError("each correction is an object with label and text")
        label, text = item.get("label"), item.get("text")
        if not isinstance(label, str) or not label.strip() or len(label) > 200:
            raise ValueError("a correction needs a label (a non-empty string)")
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            raise ValueError(f"the text of {label!r} must be a string of at most {MAX_TEXT}")
        out[label] = {"label": label, "text": text}
    return list(out.values())


def corrected(
    result: Mapping[str, Any], corrections: Sequence[Correction], review: Mapping[str, Any]
) -> dict[str, Any]:
    """*result* with *corrections* applied and *review* as its ``review``.  A corrected
    field keeps the model's value as ``original``; a label the model did not find is
    added.  Pure: the same input gives the same output (a retried rewrite is the same)."""
    new = copy.deepcopy(dict(result))
    fields: list[dict[str, Any]] = [dict(f) for f in new.get("fields") or []]
    changed = []
    for c in corrections:
        match = next((f for f in fields if f.get("label") == c["label"]), None)
        if match is None:
            fields.append(
                {"label": c["label"], "text": c["text"], "score": None, "page": None, "box": None}
            )
            match = fields[-1]
            match["original"] = None
        elif match.get("text") == c["text"]:
            continue
        else:
            match.setdefault("original", match.get("text"))
            match["text"] = c["text"]
        match["corrected"] = True
        changed.append(c["label"])
    new["fields"] = fields
    new["review"] = {**review, "corrected": changed}
    return new


def markdown_for(
    result: Mapping[str, Any], before: Mapping[str, Any], markdown: str
) -> tuple[str, bool]:
    """(document.md, rewritten?): a Markdown docinbox rendered from the fields is rendered
    again from the corrected ones; a service's own Markdown (the document's text) stays."""
    name = str((before.get("source") or {}).get("name") or "")
    tables = before.get("tables") or []
    if render_extraction(name, before.get("fields") or [], tables) != markdown:
        return markdown, False
    return render_extraction(name, result.get("fields") or [], tables), True


def result_folder(outbox: Path, name: str | None) -> Path:
    """The result folder *name* in *outbox*; ValueError unless *name* is one plain folder
    name (the store's ``result_dir``: a tampered row never reaches outside the outbox)."""
    if not name or name in (".", "..") or "\0" in name or Path(name).name != name:
        raise ValueError(f"not a result folder name: {name!r}")
    return outbox / name


def read_result(folder: Path) -> tuple[dict[str, Any], str]:
    """(Worker thread) result.json and document.md of a result folder."""
    result = json.loads((folder / "result.json").read_bytes())
    if not isinstance(result, dict):
        raise ValueError(f"{folder / 'result.json'} is not a JSON object")
    md_path = folder / "document.md"  # never where the (untrusted) file says
    markdown = md_path.read_text("utf-8", errors="replace") if md_path.is_file() else ""
    return result, markdown


def rewrite(folder: Path, result: Mapping[str, Any], markdown: str | None) -> None:
    """(Worker thread) each file replaced in one step, ``result.json`` last: a reader
    sees the old file or the new one, never half of either."""
    try:
        if markdown is not None:
            write_durably(folder / "document.md", markdown.encode("utf-8", "backslashreplace"))
        data = json.dumps(result, ensure_ascii=False, indent=2) + "\n"
        write_durably(folder / "result.json", data.encode("utf-8", "backslashreplace"))
        fsync_dir(folder)
    except OSError as exc:
        raise host_error(exc, folder, "rewrite the reviewed result") from exc


def indexed(job: Job, result: Mapping[str, Any], markdown: str) -> IndexedResult:
    """What the store searches and lists of a written result."""
    rel = display_name(job.rel_path)
    review = result.get("review")
    return IndexedResult(
        job_id=job.id,
        name=display_name(job.name),
        folder=rel.rsplit("/", 1)[0] if "/" in rel else "",
        markdown=markdown,
        fields=[f for f in result.get("fields") or [] if isinstance(f, dict)],
        review=review if isinstance(review, dict) else {"state": "none"},
    )


@dataclass
class Approvals:
    """Carries out approvals on the daemon's loop: one long-lived task (:meth:`run`),
    woken by :meth:`wake` when a person approves, and by its own timer for retries."""

    store: Store
    services: Callable[[], Mapping[str, Service]]
    outbox: Path
    clock: Any
    retry: Callable[[], RetryPolicy]
    changed: Callable[[], None]

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._wake.set()  # at start: approvals a stop or a crash left under way

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            for review in self.store.approvals_due(self.clock.now()):
                await self.approve(review)
            due = self.store.next_approval()
            timeout = None if due is None else max(0.0, due - self.clock.now())
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def approve(self, review: Review) -> None:
        """One approval, start to end (or to its next retry)."""
        try:
            await self._approve(review)
        except DocinboxError as exc:
            self._setback(review, exc)
        except Exception as exc:  # a bug: recorded on the approval, never a spin
            log.exception("unexpected error while approving job %s", review.job_id)
            self._setback(review, InternalError(f"{type(exc).__name__}: {exc}"))
        self.changed()

    async def _approve(self, review: Review) -> None:
        job = self.store.get(review.job_id)
        if job.state is not State.DONE or not job.result_dir:
            raise InternalError(f"{job.rel_path} has no written result to approve")
        try:
            folder = result_folder(self.outbox, job.result_dir)
            before, markdown = await asyncio.to_thread(read_result, folder)
        except (OSError, ValueError) as exc:
            raise HostError(f"cannot read the result in {folder}: {exc}") from exc
        service = self.services().get(job.service or "")
        sent = service is not None and service.reviews
        if service is not None and sent:
            remote = {**job.remote, **(before.get("remote") or {})}
            await service.review(
                remote,
                review.corrections,
                review.remote,
                lambda r: self.store.approval_progress(job.id, r),
            )
        outcome: dict[str, Any] = {
            "state": "approved",
            "by": review.by or BY_DASHBOARD,
            "at": self.clock.now(),
            "sent": sent,
        }
        if not sent:
            why = "has no review API" if service is not None else "is not configured now"
            outcome["note"] = f"{job.service} {why}: corrected locally only"
        after = corrected(before, review.corrections, outcome)
        new_md, rewritten = markdown_for(after, before, markdown)
        await asyncio.to_thread(rewrite, folder, after, new_md if rewritten else None)
        self.store.approval_done(indexed(job, after, new_md))
        log.info(
            "%s: approved (%s)",
            job.rel_path,
            "sent to " + str(job.service) if sent else "corrected locally",
        )

    def _setback(self, review: Review, exc: DocinboxError) -> None:
        """Retried with backoff when it may pass (a paused or unreachable service, a full
        disk: for as long as it takes); a refusal ends the approval."""
        now = self.clock.now()
        if exc.retryable or exc.scope == "service" or isinstance(exc, HostError):
            attempts = review.attempts + 1
            delay = self.retry().delay(attempts, getattr(exc, "retry_after", None))
            log.info("approval of job %s: %s; trying again in %.0f s", review.job_id, exc, delay)
            self.store.approval_later(
                review.job_id,
                attempts=attempts,
                not_before=now + delay,
                first_error_at=review.first_error_at or now,
                error=exc.code,
                message=exc.message,
            )
            return
        log.warning("approval of job %s failed: %s", review.job_id, exc)
        self.store.approval_failed(review.job_id, exc.code, exc.message)
