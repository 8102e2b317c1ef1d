"""The SQLite job store (the only implementation of :class:`daemon.store.api.Store`).

One row per document.  Every state change goes through :meth:`SQLiteStore.transition`,
an UPDATE that names the state it expects, so two actors can never both move a job
(the loser gets :class:`StaleTransition`).  The daemon's event loop is the only user of
its connection; WAL lets ``docinbox status`` read from another process while the daemon
writes, and ``synchronous=FULL`` makes a committed intent survive a power cut.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils

from ..clock import Clock, SystemClock
from ..docfile import from_storable, storable
from ..errors import DamagedDatabase, StaleTransition, StoreError
from .job import Job
from .migrations import current_version, migrate
from .states import ACTIVE, State, allowed

_JSON_COLUMNS = ("options", "remote")
#: Paths are kept losslessly: a name that is not UTF-8 is stored as its bytes (docfile).
_PATH_COLUMNS = ("rel_path", "location")
#: How long a write waits for another connection's lock before giving up.
BUSY_SECONDS = 5.0


class SQLiteStore:
    """Open with :func:`open_store`."""

    def __init__(self, conn: sqlite3.Connection, *, clock: Clock | None = None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.clock = clock or SystemClock()

    # --- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.DatabaseError as exc:  # locked, full, damaged pages...
                raise _store_error(exc) from exc

    def _query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
            except sqlite3.DatabaseError as exc:
                raise _store_error(exc) from exc

    # --- writing --------------------------------------------------------------------------

    def add(
        self,
        *,
        rel_path: str,
        location: str,
        sha256: str,
        size: int,
        mtime_ns: int,
        kind: str | None = None,
        pages: int | None = None,
    ) -> Job | None:
        """Queue one document (see :meth:`add_many`)."""
        (job_id,) = self.add_many(
            [
                {
                    "rel_path": rel_path,
                    "location": location,
                    "sha256": sha256,
                    "size": size,
                    "mtime_ns": mtime_ns,
                    "kind": kind,
                    "pages": pages,
                }
            ]
        )
        return None if job_id is None else self.get(job_id)

    def add_many(self, items: Iterable[Mapping[str, Any]]) -> list[int | None]:
        """Queue many documents in one transaction (one fsync for a whole start-up scan).

        Each item has add()'s keyword arguments.  None where the same path with the same
        content is already active.  A path whose earlier version is queued but was never
        sent (a scanner still adding pages when it was first seen) is that same job,
        refreshed: new content, inspected again — not a second document."""
        now = self.clock.now()
        ids: list[int | None] = []
        active = tuple(map(str, ACTIVE))
        with self._tx() as conn:
            for item in items:
                rel, location = storable(item["rel_path"]), storable(item["location"])
                rows = conn.execute(
                    "SELECT id, sha256, state, attempts FROM jobs WHERE rel_path = ? AND "
                    f"state IN ({_placeholders(active)})",
                    (rel, *active),
                ).fetchall()
                if any(r["sha256"] == item["sha256"] for r in rows):
                    ids.append(None)
                    continue
                unsent = [
                    r["id"] for r in rows if r["state"] == str(State.QUEUED) and r["attempts"] == 0
                ]
                if unsent:
                    conn.execute(
                        "UPDATE jobs SET location = ?, sha256 = ?, size = ?, mtime_ns = ?, "
                        "kind = ?, pages = ?, service = NULL, options = '{}', not_before = 0, "
                        "updated_at = ? WHERE id = ?",
                        (
                            location,
                            item["sha256"],
                            item["size"],
                            item["mtime_ns"],
                            item.get("kind"),
                            item.get("pages"),
                            now,
                            unsent[0],
                        ),
                    )
                    conn.execute(
                        "INSERT INTO history (job_id, at, src, dst, note) VALUES (?,?,?,?,?)",
                        (
                            unsent[0],
                            now,
                            str(State.QUEUED),
                            str(State.QUEUED),
                            "changed before it was sent",
                        ),
                    )
                    ids.append(unsent[0])
                    continue
                cur = conn.execute(
                    "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, kind, pages, "
                    "state, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        rel,
                        location,
                        item["sha256"],
                        item["size"],
                        item["mtime_ns"],
                        item.get("kind"),
                        item.get("pages"),
                        str(State.QUEUED),
                        now,
                        now,
                    ),
                )
                ids.append(cur.lastrowid)
                conn.execute(
                    "INSERT INTO history (job_id, at, src, dst) VALUES (?,?,?,?)",
                    (cur.lastrowid, now, None, str(State.QUEUED)),
                )
        return ids

    def reserved_names(self, *, exclude: int) -> set[str]:
        """Outbox folder names reserved by jobs whose result is being written."""
        rows = self._query(
            "SELECT result_dir FROM jobs WHERE state = 'received' AND "
            "result_dir IS NOT NULL AND id != ?",
            (exclude,),
        )
        return {r[0] for r in rows}

    def clear_routes(self) -> int:
        """Forget the service of every unsent queued job (the routes may have changed)."""
        with self._tx() as conn:
            return conn.execute(
                "UPDATE jobs SET service = NULL WHERE state = 'queued' AND attempts = 0 "
                "AND kind IS NOT NULL AND kind != '' AND service IS NOT NULL"
            ).rowcount

    def set_inspected(
        self, rows: Iterable[tuple[int, str, str, int | None, str, Mapping[str, Any]]]
    ) -> None:
        """Record (job id, sha256 inspected, kind, pages, service, options) for queued jobs,
        one transaction; a job whose content changed meanwhile is left for the next look."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE jobs SET kind = ?, pages = ?, service = ?, options = ?, updated_at = ? "
                "WHERE id = ? AND state = 'queued' AND sha256 = ?",
                [
                    (
                        kind,
                        pages,
                        service,
                        json.dumps(dict(options), sort_keys=True),
                        now,
                        job_id,
                        sha256,
                    )
                    for job_id, sha256, kind, pages, service, options in rows
                ],
            )

    def set_routes(self, routes: Iterable[tuple[int, str, Mapping[str, Any]]]) -> None:
        """Record (job id, service, options) for queued jobs, in one transaction."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.executemany(
                "UPDATE jobs SET service = ?, options = ?, updated_at = ? "
                "WHERE id = ? AND state = 'queued'",
                [
                    (service, json.dumps(dict(options), sort_keys=True), now, job_id)
                    for job_id, service, options in routes
                ],
            )

    def due_for(
        self, service: str, now: float, limit: int, *, exclude: Iterable[int] = ()
    ) -> list[Job]:
        """Queued, inspected jobs routed to *service* and due: what the scheduler can start
        (without those in *exclude*, already being started)."""
        skip = list(exclude)
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND service = ? AND not_before <= ? "
            f"AND kind IS NOT NULL AND id NOT IN ({_placeholders(skip)}) "
            f"ORDER BY not_before, id LIMIT {int(limit)}",
            (service, now, *skip),
        )
        return [Job.from_row(r) for r in rows]

    def unrouted(self, limit: int) -> list[Job]:
        """Queued jobs that are inspected but have no service yet (a route failed before, or
        the routes changed)."""
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND service IS NULL "
            f"AND kind IS NOT NULL AND kind != '' ORDER BY id LIMIT {int(limit)}"
        )
        return [Job.from_row(r) for r in rows]

    def uninspected(self, limit: int, *, due_before: float | None = None) -> list[Job]:
        """Queued documents whose type and pages are not known yet (and, with
        *due_before*, whose inspection is not held back)."""
        due = "" if due_before is None else f" AND not_before <= {float(due_before)!r}"
        rows = self._query(
            "SELECT * FROM jobs WHERE state = 'queued' AND kind IS NULL"
            f"{due} ORDER BY id LIMIT {int(limit)}"
        )
        return [Job.from_row(r) for r in rows]

    def transition(
        self,
        job_id: int,
        expect: State | Iterable[State],
        to: State,
        *,
        note: str | None = None,
        **changes: Any,
    ) -> Job:
        """Move a job from one of *expect* to *to*, setting *changes* in the same UPDATE."""
        with self._tx() as conn:
            return self._transition(conn, job_id, expect, to, note, changes)

    def transition_many(
        self,
        moves: Iterable[tuple[int, State, State, Mapping[str, Any]]],
        *,
        note: str | None = None,
    ) -> list[Job | StaleTransition]:
        """Several (job id, expect, to, changes) moves in one transaction — one commit, one
        fsync, for a batch.  A stale move is returned, not raised, and does not undo the
        others."""
        out: list[Job | StaleTransition] = []
        with self._tx() as conn:
            for job_id, expect, to, changes in moves:
                try:
                    out.append(self._transition(conn, job_id, expect, to, note, changes))
                except StaleTransition as exc:
                    out.append(exc)
        return out

    def _transition(
        self,
        conn: sqlite3.Connection,
        job_id: int,
        expect: State | Iterable[State],
        to: State,
        note: str | None,
        changes: Mapping[str, Any],
    ) -> Job:
        expected = (expect,) if isinstance(expect, State) else tuple(expect)
        for src in expected:
            if not allowed(src, to):
                raise StaleTransition(f"job {job_id}: {src} → {to} is not a transition")
        now = self.clock.now()
        sets = {
            k: (
                json.dumps(v, sort_keys=True)
                if k in _JSON_COLUMNS
                else storable(v)
                if k in _PATH_COLUMNS and isinstance(v, str)
                else v
            )
            for k, v in changes.items()
        }
        sets["state"] = str(to)
        sets["updated_at"] = now
        if to in (State.DONE, State.FAILED):
            sets.setdefault("finished_at", now)
        assignments = ", ".join(f"{k} = :{k}" for k in sets)
        params = {**sets, "_id": job_id}
        params.update({f"_s{i}": str(s) for i, s in enumerate(expected)})
        states = ", ".join(f":_s{i}" for i in range(len(expected)))
        source = str(expected[0])
        if len(expected) > 1:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            source = row[0] if row else "missing"
        updated = conn.execute(
            f"UPDATE jobs SET {assignments} WHERE id = :_id AND state IN ({states}) RETURNING *",
            params,
        ).fetchone()
        if updated is None:
            row = conn.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            found = row[0] if row else "missing"
            raise StaleTransition(
                f"job {job_id} is {found}, expected {'/'.join(map(str, expected))}"
            )
        if source != str(to) or note:  # staying put to record ids is not history
            conn.execute(
                "INSERT INTO history (job_id, at, src, dst, note) VALUES (?,?,?,?,?)",
                (job_id, now, source, str(to), note),
            )
        return Job.from_row(updated)

    def checkpoint(self, job_id: int, remote: Mapping[str, Any]) -> Job:
        """Merge *remote* into the job's ids in one statement (a null removes a key)."""
        with self._tx() as conn:
            row = conn.execute(
                "UPDATE jobs SET remote = json_patch(remote, ?), updated_at = ? "
                "WHERE id = ? RETURNING *",
                (json.dumps(dict(remote)), self.clock.now(), job_id),
            ).fetchone()
        if row is None:
            raise KeyError(job_id)
        return Job.from_row(row)

    def update(self, job_id: int, expect: State, **changes: Any) -> Job:
        """Change columns of a job that stays in *expect* (e.g. record a retry time)."""
        return self.transition(job_id, expect, expect, **changes)

    def cap_waits(self, latest: float) -> int:
        """No active job waits past *latest* (a service may ask for absurd waits)."""
        with self._tx() as conn:
            return conn.execute(
                f"UPDATE jobs SET not_before = ? WHERE not_before > ? AND state IN "
                f"({_placeholders(ACTIVE)})",
                (latest, latest, *map(str, ACTIVE)),
            ).rowcount

    def data_version(self) -> int:
        """Changes when another connection commits (``docinbox retry`` from a shell)."""
        return int(self._query("PRAGMA data_version")[0][0])

    def retry(self, ids: Iterable[int] | None = None) -> list[Job]:
        """Failed documents back in line (all of them when *ids* is None)."""
        if ids is None:
            ids = [r["id"] for r in self._query("SELECT id FROM jobs WHERE state = 'failed'")]
        moved = []
        for job_id in ids:
            try:
                moved.append(
                    self.transition(
                        job_id,
                        State.FAILED,
                        State.QUEUED,
                        note="retry",
                        attempts=0,
                        not_before=0.0,
                        first_error_at=None,
                        error=None,
                        message=None,
                        hint=None,
                        finished_at=None,
                    )
                )
            except StaleTransition:
                continue
        return moved

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def delete_meta(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- reading --------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise KeyError(job_id)
        return Job.from_row(rows[0])

    def meta(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def meta_prefixed(self, prefix: str) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM meta WHERE key LIKE ?", (prefix + "%",))
        return {r["key"][len(prefix) :]: json.loads(r["value"]) for r in rows}

    def by_content(self, sha256: str, *states: State) -> list[Job]:
        rows = self._query(
            f"SELECT * FROM jobs WHERE sha256 = ? AND state IN ({_placeholders(states)}) "
            "ORDER BY id",
            (sha256, *map(str, states)),
        )
        return [Job.from_row(r) for r in rows]

    def active_signatures(self, rel_paths: Iterable[str]) -> set[tuple[str, int, int]]:
        """(path, size, mtime) of the active jobs among *rel_paths*: one query for a batch,
        so a start-up scan can skip known files without hashing them."""
        paths = [storable(p) for p in rel_paths]
        found: set[tuple[str, int, int]] = set()
        active = tuple(map(str, ACTIVE))
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT rel_path, size, mtime_ns FROM jobs WHERE rel_path IN "
                    f"({_placeholders(chunk)}) AND state IN ({_placeholders(active)})",
                    (*chunk, *active),
                ).fetchall()
            found.update((from_storable(r[0]), r[1], r[2]) for r in rows)
        return found

    def in_state(
        self, *states: State, due_before: float | None = None, limit: int | None = None
    ) -> list[Job]:
        sql = f"SELECT * FROM jobs WHERE state IN ({_placeholders(states)})"
        params: list[Any] = [str(s) for s in states]
        if due_before is not None:
            sql += " AND not_before <= ?"
            params.append(due_before)
        sql += " ORDER BY not_before, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Job.from_row(r) for r in self._query(sql, params)]

    def next_due(self, *states: State, after: float | None = None) -> float | None:
        """The earliest ``not_before`` among jobs in *states* (only those later than
        *after*, when given: what is due now but waits for a slot needs no timer)."""
        sql = f"SELECT MIN(not_before) AS t FROM jobs WHERE state IN ({_placeholders(states)})"
        params: list[Any] = [str(s) for s in states]
        if after is not None:
            sql += " AND not_before > ?"
            params.append(after)
        return self._query(sql, params)[0]["t"]

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        return {r["state"]: r["n"] for r in rows}

    def jobs(
        self,
        *,
        limit: int | None = None,
        newest_first: bool = False,
        states: Iterable[State] | None = None,
    ) -> list[Job]:
        sql = "SELECT * FROM jobs"
        params: list[Any] = []
        if states is not None:
            states = tuple(states)
            sql += f" WHERE state IN ({_placeholders(states)})"
            params += [str(s) for s in states]
        sql += " ORDER BY updated_at DESC, id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [Job.from_row(r) for r in self._query(sql, params)]

    def history(self, job_id: int) -> list[dict[str, Any]]:
        return [
            dict(r)
            for r in self._query(
                "SELECT at, src, dst, note FROM history WHERE job_id = ? ORDER BY rowid", (job_id,)
            )
        ]


def _store_error(exc: sqlite3.DatabaseError) -> StoreError:
    if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
        return StoreError(f"state database error: {exc}")
    return DamagedDatabase(f"the state database is damaged ({exc})")


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """``PRAGMA quick_check`` at start: damaged pages are found now, as one clear error,
    not later as a document failing for no reason."""
    rows = conn.execute("PRAGMA quick_check(5)").fetchall()
    lines = [
        line
        for r in rows
        for line in str(r[0]).splitlines()
        if line != "ok" and not line.startswith("***")
    ]
    if lines:
        raise DamagedDatabase(f"{path} is damaged (SQLite's check: {lines[0]})")


def _placeholders(items: Iterable[Any]) -> str:
    return ", ".join("?" for _ in items)


def open_store(
    path: Path, *, clock: Clock | None = None, create: bool = True, readonly: bool = False
) -> SQLiteStore:
    """Open (and migrate) the database; a file that is not a database is an error, never
    silently replaced."""
    path = Path(path)
    if not path.exists():
        if not create or readonly:
            raise StoreError(f"no state database at {path} (has docinbox run here yet?)")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if readonly:
            conn = sqlite3.connect(
                f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False, timeout=10
            )
        else:
            conn = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_SECONDS)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        _check_integrity(conn, path)
        if not readonly:
            db = sqlite_utils.Database(conn)
            db.enable_wal()  # readers (docinbox status, the tray) never block the daemon
            if db.journal_mode != "wal":
                raise StoreError(
                    f"{path}: cannot switch the database to WAL mode ({db.journal_mode})"
                )
            # FULL: a committed intent survives power loss, not only a process crash.
            conn.execute("PRAGMA synchronous = FULL")
            migrate(conn)
            # Find out now, not at the first job, if another program holds the write lock.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        elif current_version(conn) == 0:
            # The daemon has created the file but not its tables yet: nothing to show.
            conn.close()
            conn = sqlite3.connect(":memory:", check_same_thread=False)
            conn.row_factory = sqlite3.Row
            migrate(conn)
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise StoreError(
                f"{path} cannot be used as docinbox's state database: {exc}",
                hint="Check the file's permissions and the disk.",
            ) from exc
        raise StoreError(
            f"{path} is locked by another program ({exc})",
            hint="Close whatever holds the database (a viewer, another docinbox) and start "
            "again; docinbox never replaces it.",
        ) from exc
    except DamagedDatabase:
        raise
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{path} cannot be used as docinbox's state database: {exc}",
            hint="Move the file aside if it is damaged; docinbox never replaces it on its own.",
        ) from exc
    except RuntimeError as exc:
        raise StoreError(f"{path}: {exc}") from exc
    return SQLiteStore(conn, clock=clock)
