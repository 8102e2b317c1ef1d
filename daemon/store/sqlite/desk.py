"""The review desk's tables (migration 6): the searchable results, reviews and their
approvals (intent before the service is told, outcome after), dismissed failures."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import StaleTransition
from ..records import APPROVED, APPROVING, EDITING, FAILED, IndexedResult, ResultRow, Review
from .base import Connection, placeholders

#: At most this many words of a search reach FTS5 (a hostile query stays cheap).
MAX_TERMS = 16
MAX_TERM = 64
#: Marks around the matched words in a snippet (the page turns them into <mark>).
MARK_START, MARK_END = "\x02", "\x03"


def fts_query(text: str) -> str | None:
    """Words typed by a person → an FTS5 query that cannot be anything else: each
    whitespace-separated chunk becomes a quoted phrase of its word characters, matched as
    a prefix (``45.99`` → ``"45 99"*``, ``gasó`` → ``"gasó"*``); all chunks must match.
    None when nothing searchable is left."""
    phrases = []
    for chunk in text.split()[:MAX_TERMS]:
        words = [w[:MAX_TERM] for w in re.findall(r"\w+", chunk)]
        if words:
            phrases.append('"' + " ".join(words) + '"*')
    return " ".join(phrases) or None


class Desk(Connection):
    # --- results and search -----------------------------------------------------------------

    def index_results(self, results: Iterable[IndexedResult]) -> None:
        """Each result's row and text, replacing what was there (one transaction)."""
        with self._tx() as conn:
            _index(conn, results, self.clock.now())

    def unindexed(self, limit: int) -> list[int]:
        """Done documents whose result is not in the index yet (a crash came between)."""
        rows = self._query(
            "SELECT id FROM jobs WHERE state = 'done' AND result_dir IS NOT NULL "
            "AND parent_id IS NULL AND id NOT IN "
            f"(SELECT job_id FROM results) ORDER BY id LIMIT {int(limit)}"
        )
        return [r["id"] for r in rows]

    def clear_index(self) -> None:
        """Forget every indexed result (``docinbox search --rebuild`` writes them anew)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM results")
            conn.execute("DELETE FROM results_text")

    def results(self, ids: Iterable[int]) -> dict[int, ResultRow]:
        wanted = list(ids)
        out: dict[int, ResultRow] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._query(
                f"SELECT * FROM results WHERE job_id IN ({placeholders(chunk)})", chunk
            )
            out.update((r["job_id"], ResultRow.from_row(r)) for r in rows)
        return out

    def under_review(self) -> list[int]:
        """Documents whose result waits for a person (``review.state`` pending)."""
        rows = self._query(
            "SELECT job_id FROM results WHERE json_extract(review, '$.state') = 'pending' "
            "ORDER BY job_id"
        )
        return [r["job_id"] for r in rows]

    def search(self, text: str, *, limit: int = 200) -> list[tuple[int, str]]:
        """(job id, snippet) of the results whose name, Markdown or field values hold
        every word of *text*, best first."""
        query = fts_query(text)
        if query is None:
            return []
        try:
            rows = self._query(
                "SELECT rowid AS id, snippet(results_text, -1, ?, ?, '…', 12) AS snip "
                f"FROM results_text WHERE results_text MATCH ? ORDER BY rank LIMIT {int(limit)}",
                (MARK_START, MARK_END, query),
            )
        except sqlite3.OperationalError:  # pragma: no cover - fts_query emits valid syntax
            return []
        return [(r["id"], r["snip"] or "") for r in rows]

    # --- reviews and approvals --------------------------------------------------------------

    def review(self, job_id: int) -> Review | None:
        rows = self._query("SELECT * FROM reviews WHERE job_id = ?", (job_id,))
        return Review.from_row(rows[0]) if rows else None

    def reviews(self, ids: Iterable[int]) -> dict[int, Review]:
        wanted = list(ids)
        out: dict[int, Review] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._query(
                f"SELECT * FROM reviews WHERE job_id IN ({placeholders(chunk)})", chunk
            )
            out.update((r["job_id"], Review.from_row(r)) for r in rows)
        return out

    def save_corrections(self, job_id: int, corrections: Sequence[Mapping[str, str]]) -> Review:
        """Keep *corrections* (merged by label over those kept) until approval; refused
        (StaleTransition) while an approval is under way."""
        now = self.clock.now()
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM reviews WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None and row["state"] == APPROVING:
                raise StaleTransition(f"job {job_id}: its approval is under way")
            kept = {c["label"]: c for c in json.loads(row["corrections"])} if row else {}
            kept.update({c["label"]: dict(c) for c in corrections})
            merged = json.dumps(list(kept.values()))
            updated = conn.execute(
                "INSERT INTO reviews (job_id, state, corrections, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
                "corrections = excluded.corrections, updated_at = excluded.updated_at, "
                "error = NULL, message = NULL RETURNING *",
                (job_id, EDITING, merged, now),
            ).fetchone()
        return Review.from_row(updated)

    def request_approval(self, job_id: int, by: str) -> Review:
        """The approval's intent, committed before the service hears of it; refused
        (StaleTransition) when one is already under way."""
        now = self.clock.now()
        with self._tx() as conn:
            row = conn.execute(
                "INSERT INTO reviews (job_id, state, by, requested_at, updated_at) "
                "VALUES (?,?,?,?,?) ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, "
                "by = excluded.by, requested_at = excluded.requested_at, "
                "updated_at = excluded.updated_at, attempts = 0, not_before = 0, "
                "first_error_at = NULL, error = NULL, message = NULL, remote = '{}' "
                "WHERE reviews.state != ? RETURNING *",
                (job_id, APPROVING, by, now, now, APPROVING),
            ).fetchone()
        if row is None:
            raise StaleTransition(f"job {job_id}: its approval is already under way")
        return Review.from_row(row)

    def approvals_due(self, now: float, limit: int = 16) -> list[Review]:
        rows = self._query(
            "SELECT * FROM reviews WHERE state = ? AND not_before <= ? "
            f"ORDER BY not_before, job_id LIMIT {int(limit)}",
            (APPROVING, now),
        )
        return [Review.from_row(r) for r in rows]

    def next_approval(self) -> float | None:
        rows = self._query("SELECT MIN(not_before) AS t FROM reviews WHERE state = ?", (APPROVING,))
        return rows[0]["t"]

    def approval_progress(self, job_id: int, remote: Mapping[str, Any]) -> None:
        """Which of the service's review calls landed, before the next one is made."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE reviews SET remote = json_patch(remote, ?), updated_at = ? "
                "WHERE job_id = ?",
                (json.dumps(dict(remote)), self.clock.now(), job_id),
            )

    def approval_later(self, job_id: int, **changes: Any) -> None:
        """The approval stays under way: a retry time, attempts, the error met."""
        allowed = {"attempts", "not_before", "first_error_at", "error", "message"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"cannot set {sorted(set(changes) - allowed)} on a review")
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._tx() as conn:
            conn.execute(
                f"UPDATE reviews SET {sets}, updated_at = ? WHERE job_id = ? AND state = ?",
                (*changes.values(), self.clock.now(), job_id, APPROVING),
            )

    def approval_failed(self, job_id: int, error: str, message: str) -> None:
        with self._tx() as conn:
            conn.execute(
                "UPDATE reviews SET state = ?, error = ?, message = ?, updated_at = ? "
                "WHERE job_id = ? AND state = ?",
                (FAILED, error, message, self.clock.now(), job_id, APPROVING),
            )

    def approval_done(self, result: IndexedResult) -> None:
        """The outcome: approved, and the rewritten result indexed (one transaction)."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.execute(
                "UPDATE reviews SET state = ?, approved_at = ?, updated_at = ?, error = NULL, "
                "message = NULL WHERE job_id = ?",
                (APPROVED, now, now, result.job_id),
            )
            _index(conn, [result], now)

    # --- dismissed failures -----------------------------------------------------------------

    def dismiss(self, ids: Iterable[int]) -> list[int]:
        """Failed documents out of the counts (their files stay); returns those dismissed."""
        wanted = list(ids)
        if not wanted:
            return []
        now = self.clock.now()
        with self._tx() as conn:
            rows = conn.execute(
                "SELECT id FROM jobs WHERE state = 'failed' AND parent_id IS NULL "
                f"AND id IN ({placeholders(wanted)})",
                wanted,
            ).fetchall()
            done = [r["id"] for r in rows]
            conn.executemany(
                "INSERT OR IGNORE INTO dismissed (job_id, at) VALUES (?, ?)",
                [(i, now) for i in done],
            )
        return done

    def dismissed_ids(self) -> set[int]:
        return {r["job_id"] for r in self._query("SELECT job_id FROM dismissed")}


def _index(conn: sqlite3.Connection, results: Iterable[IndexedResult], now: float) -> None:
    for r in results:
        conn.execute(
            "INSERT INTO results (job_id, folder, review, fields, indexed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET "
            "folder = excluded.folder, review = excluded.review, "
            "fields = excluded.fields, indexed_at = excluded.indexed_at",
            (r.job_id, r.folder, json.dumps(dict(r.review)), _fields_json(r), now),
        )
        conn.execute("DELETE FROM results_text WHERE rowid = ?", (r.job_id,))
        conn.execute(
            "INSERT INTO results_text (rowid, name, markdown, fields) VALUES (?, ?, ?, ?)",
            (r.job_id, r.name, r.markdown, r.field_text),
        )


def _fields_json(r: IndexedResult) -> str:
    keep = ("label", "text", "score", "page")
    return json.dumps([{k: f.get(k) for k in keep} for f in r.fields], ensure_ascii=False)


__all__ = ["APPROVED", "EDITING", "FAILED", "MARK_END", "MARK_START", "Desk", "fts_query"]
