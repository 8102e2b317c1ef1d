"""What the daemon needs of a job store — the interface the pipeline is written against.

SQLite (``sqlite.py``) is the only implementation and the default.  The interface is
kept to what a shared store could also do, so several daemons on one shared inbox could
later share one queue: a PostgreSQL store would implement

- :meth:`Store.due_for` (claim due jobs) as ``SELECT … FOR UPDATE SKIP LOCKED`` with a
  lease column (``leased_by``, ``leased_until``) set in the same transaction, so two
  daemons never start the same job and a crashed daemon's leases run out;
- :meth:`Store.transition` / :meth:`Store.transition_many` (the guarded state change) as
  ``UPDATE … WHERE id = $1 AND state = ANY($2) RETURNING *`` plus the history row, as
  SQLite does;
- :meth:`Store.checkpoint` as ``remote = remote || $2`` (jsonb), one statement;
- :meth:`Store.data_version` as a ``LISTEN``/``NOTIFY`` counter.

A document over its service's limits is split into parts, each a job of its own (its
``parent_id`` names the document): claimed, sent, polled and recovered like any job.
Reading "documents" (``counts``, ``jobs``, ``retry``, admission) leaves parts out.

Everything else is plain reading and writing of rows and of the small ``meta`` table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..errors import StaleTransition
from .job import Job
from .records import IndexedResult, ResultRow, Review
from .states import State

#: (job id, expected state, new state, columns to set)
Move = tuple[int, State, State, Mapping[str, Any]]


class Store(Protocol):
    # --- intake ----------------------------------------------------------------------------
    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[int | None]:
        """Queue documents in one transaction; None where the same path and content is
        already active."""

    def active_signatures(self, rel_paths: Iterable[str]) -> set[tuple[str, int, int]]:
        """(path, size, mtime) of the active jobs among *rel_paths*."""

    # --- the queue -------------------------------------------------------------------------
    def uninspected(self, limit: int, *, due_before: float | None = None) -> list[Job]: ...

    def unrouted(self, limit: int) -> list[Job]: ...

    def set_inspected(
        self, rows: Iterable[tuple[int, str, str, int | None, str, Mapping[str, Any]]]
    ) -> None: ...

    def set_routes(self, routes: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None: ...

    def clear_routes(self, service: str | None = None) -> int:
        """Forget the route of unsent queued jobs (of *service* only, when given)."""

    def due_for(
        self, service: str, now: float, limit: int, *, exclude: Iterable[int] = ()
    ) -> list[Job]:
        """Claim up to *limit* queued jobs of *service* that are due."""

    def in_state(
        self,
        *states: State,
        due_before: float | None = None,
        limit: int | None = None,
        documents_only: bool = False,
    ) -> list[Job]:
        """Jobs in *states*, parts of split documents included unless *documents_only*."""

    def next_due(self, *states: State, after: float | None = None) -> float | None: ...

    # --- state changes ---------------------------------------------------------------------
    def get(self, job_id: int) -> Job: ...

    def transition(
        self,
        job_id: int,
        expect: State | Iterable[State],
        to: State,
        *,
        note: str | None = None,
        **changes: Any,
    ) -> Job:
        """Move a job that is in *expect* (else :class:`StaleTransition`), recorded in its
        history."""

    def transition_many(
        self, moves: Iterable[Move], *, note: str | None = None
    ) -> list[Job | StaleTransition]: ...

    def update(self, job_id: int, expect: State, **changes: Any) -> Job: ...

    def checkpoint(self, job_id: int, remote: Mapping[str, Any]) -> Job:
        """Merge a service's ids into the job's ``remote`` before its next side effect."""

    def retry(self, ids: Iterable[int] | None = None) -> list[Job]:
        """Failed documents back in line; of a split one, only its failed parts."""

    def cap_waits(self, latest: float) -> int: ...

    def by_content(self, sha256: str, *states: State) -> list[Job]: ...

    def reserved_names(self, *, exclude: int) -> set[str]: ...

    # --- documents split into parts -------------------------------------------------------
    def split_into(
        self,
        job_id: int,
        *,
        sha256: str,
        kind: str,
        pages: int,
        service: str,
        options: Mapping[str, Any],
        parts: Sequence[Mapping[str, Any]],
    ) -> list[Job]:
        """A queued document → ``split`` with its parts queued, in one transaction."""

    def parts_of(self, job_ids: Iterable[int]) -> dict[int, list[Job]]:
        """Each document's parts in page order (an empty list: not split)."""

    # --- reading, meta ---------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Documents per state (parts are not documents)."""

    def retrying_services(self) -> set[str]:
        """Services with a queued job (or part) waiting to be tried again after an error."""

    def jobs(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        states: Iterable[State] | None = None,
        hide_dismissed: bool = False,
        parts: bool = False,
    ) -> list[Job]:
        """Documents (with *parts*, the parts of split documents as well)."""

    def history(self, job_id: int) -> list[Any]: ...

    def meta(self, key: str, default: Any = None) -> Any: ...

    def meta_prefixed(self, prefix: str) -> dict[str, Any]: ...

    def set_meta(self, key: str, value: Any) -> None: ...

    def delete_meta(self, key: str) -> None: ...

    # --- budgets (what each service's quotas count) ---------------------------------------
    def add_usage(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add use to each allowance's count; a new period starts its count again."""

    def set_budget_spent(self, row: Mapping[str, Any], until: float | None) -> None:
        """The service said an allowance is used up, until *until*."""

    def clear_budgets_spent(self) -> int: ...

    def budgets(self) -> list[dict[str, Any]]: ...

    def data_version(self) -> int:
        """Changes when another process commits (the daemon then looks again)."""

    # --- the review desk: results, search, reviews, dismissed failures --------------------
    # (a shared store: ``results_text`` as a tsvector column with a GIN index; the rest
    # are plain tables; ``request_approval`` is an upsert guarded on the state)
    def index_results(self, results: Iterable[IndexedResult]) -> None: ...

    def unindexed(self, limit: int) -> list[int]: ...

    def clear_index(self) -> None: ...

    def results(self, ids: Iterable[int]) -> dict[int, ResultRow]: ...

    def under_review(self) -> list[int]: ...

    def search(self, text: str, *, limit: int = 200) -> list[tuple[int, str]]:
        """(job id, snippet) of the results that hold every word of *text*, best first."""

    def review(self, job_id: int) -> Review | None: ...

    def reviews(self, ids: Iterable[int]) -> dict[int, Review]: ...

    def save_corrections(self, job_id: int, corrections: Sequence[Mapping[str, str]]) -> Review: ...

    def request_approval(self, job_id: int, by: str) -> Review:
        """The approval's intent, committed before the service hears of it."""

    def approvals_due(self, now: float, limit: int = 16) -> list[Review]: ...

    def next_approval(self) -> float | None: ...

    def approval_progress(self, job_id: int, remote: Mapping[str, Any]) -> None: ...

    def approval_later(self, job_id: int, **changes: Any) -> None: ...

    def approval_failed(self, job_id: int, error: str, message: str) -> None: ...

    def approval_done(self, result: IndexedResult) -> None: ...

    def dismiss(self, ids: Iterable[int]) -> list[int]: ...

    def dismissed_ids(self) -> set[int]: ...

    def changes(self) -> int:
        """Rows changed since the store was opened (tells a sync whether it has work)."""
        ...

    def sync(self) -> None:
        """Every commit so far made durable (blocking; it never touches the connection,
        so a worker thread may call it while the loop goes on).  A shared store whose
        commits are durable at once makes this a no-op."""
        ...

    def close(self) -> None: ...
