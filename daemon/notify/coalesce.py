"""What to announce: on changes only, coalesced, and once per problem.

A batch of 40 scanned pages must give one "40 documents processed", not 40
pop-ups; a wrong API key must be announced once, not on every refresh.  The
clock is injected so the tests drive time without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daemon.control import DocumentSummary, StatusSnapshot
from daemon.notify.problems import Problem, truncate


@dataclass(frozen=True)
class Notice:
    """One notification: *kind* is ``done``, ``failed`` (a batch with failures),
    ``paused``, ``budget`` or ``problem``; *target* is what its action opens (a result
    folder, an error file, the outbox, the log), None when nothing fits."""

    title: str
    message: str
    kind: str = "done"
    target: Path | None = None


Send = Callable[[Notice], None]


@dataclass
class _Batch:
    done: int = 0
    failed: int = 0
    done_names: list[str] = field(default_factory=list)
    failed_names: list[str] = field(default_factory=list)
    targets: list[Path] = field(default_factory=list)
    first_at: float = 0.0
    last_at: float = 0.0

    def __bool__(self) -> bool:
        return bool(self.done or self.failed)


class Notifier:
    """Feed it every snapshot (:meth:`observe`) and call :meth:`tick` now and then.

    Only documents that finish after the first snapshot of a started daemon count.
    Finished documents are collected until nothing new finished for *quiet*
    seconds (or *window* seconds passed since the first), then announced in one
    message.  Each problem (see :func:`daemon.tray.state.problems_of`) is announced
    when it appears, and again only if it reappears after *renotify_after* seconds.
    """

    def __init__(
        self,
        send: Send,
        *,
        clock: Callable[[], float] = time.monotonic,
        quiet: float = 5.0,
        window: float = 60.0,
        renotify_after: float = 3600.0,
        outbox: Path | None = None,
        log_path: Path | None = None,
    ) -> None:
        self._send = send
        self.outbox = outbox
        self.log_path = log_path
        self._clock = clock
        self.quiet = quiet
        self.window = window
        self.renotify_after = renotify_after
        self._counts: tuple[int, int] | None = None  # (done, failed) last seen
        self._seen_ids: set[int] = set()
        self._batch = _Batch()
        self._active_problems: set[str] = set()
        self._announced: dict[str, float] = {}

    def observe(self, snap: StatusSnapshot, problems: tuple[Problem, ...] = ()) -> None:
        now = self._clock()
        self._observe_problems(problems, now)
        if snap.starting:  # counts unknown yet: neither a baseline nor news
            return
        done, failed = snap.counts.get("done", 0), snap.counts.get("failed", 0)
        fresh = [d for d in snap.recent if d.id not in self._seen_ids]
        self._seen_ids.update(d.id for d in snap.recent)
        if len(self._seen_ids) > 4096:  # bounded; the recent list is short anyway
            self._seen_ids = {d.id for d in snap.recent}
        # The first snapshot of a started daemon is the baseline: what earlier runs
        # finished is not news after a restart.
        if self._counts is None:
            self._counts = (done, failed)
            return
        new_done = max(0, done - self._counts[0])
        new_failed = max(0, failed - self._counts[1])
        self._counts = (done, failed)
        if new_done or new_failed:
            if not self._batch:
                self._batch.first_at = now
            self._batch.last_at = now
            self._batch.done += new_done
            self._batch.failed += new_failed
            self._batch.done_names += [d.name for d in fresh if d.state == "done"]
            self._batch.failed_names += [
                d.name + (f" ({d.message or d.error})" if d.message or d.error else "")
                for d in fresh
                if d.state == "failed"
            ]
            self._batch.targets += [t for d in fresh if (t := _target(d)) is not None]
        self.tick()

    def next_due(self) -> float | None:
        """Seconds until the pending batch is due (None: nothing pending)."""
        b = self._batch
        if not b:
            return None
        due = min(b.last_at + self.quiet, b.first_at + self.window)
        return max(0.0, due - self._clock())

    def tick(self) -> None:
        """Send the pending batch if it is due."""
        b = self._batch
        if not b:
            return
        now = self._clock()
        if now - b.last_at >= self.quiet or now - b.first_at >= self.window:
            self._batch = _Batch()
            self._send(self.batch_notice(b))

    def flush(self) -> None:
        """Send whatever is pending now (on stop)."""
        if self._batch:
            b, self._batch = self._batch, _Batch()
            self._send(self.batch_notice(b))

    def batch_notice(self, b: _Batch) -> Notice:
        """The batch's message; its action opens the one document's result (or error
        file), else the outbox."""
        title, message = self.batch_message(b)
        one = len(b.targets) == 1 and b.done + b.failed == 1
        target = b.targets[0] if one else self.outbox
        return Notice(title, message, "failed" if b.failed else "done", target)

    @staticmethod
    def batch_message(b: _Batch) -> tuple[str, str]:
        if b.failed == 0:
            if b.done == 1 and len(b.done_names) == 1:
                return "docinbox", truncate(f"{b.done_names[0]} processed", 200)
            return "docinbox", f"{b.done} documents processed"
        if b.done == 0 and b.failed == 1 and len(b.failed_names) == 1:
            return "docinbox: a document failed", truncate(f"{b.failed_names[0]} failed", 200)
        parts = []
        if b.done:
            parts.append(f"{b.done} document{'s' if b.done != 1 else ''} processed")
        parts.append(f"{b.failed} failed")
        return "docinbox: some documents failed", ", ".join(parts)

    def _observe_problems(self, problems: tuple[Problem, ...], now: float) -> None:
        keys = {p.key for p in problems}
        for p in problems:
            if p.key in self._active_problems:
                continue
            last = self._announced.get(p.key)
            if last is None or now - last >= self.renotify_after:
                self._announced[p.key] = now
                title = (
                    "docinbox: quota used up" if p.kind == "budget" else "docinbox needs attention"
                )
                self._send(Notice(title, truncate(p.message, 200), p.kind, self.log_path))
        self._active_problems = keys


def _target(doc: DocumentSummary) -> Path | None:
    if doc.state == "done":
        return doc.result_dir
    if doc.state == "failed":
        return doc.error_file
    return None
