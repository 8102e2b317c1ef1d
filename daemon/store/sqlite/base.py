"""The connection and how its errors become docinbox's (locked, full, damaged)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ...clock import Clock, SystemClock
from ...errors import DamagedDatabase, StoreError
from ..job import Job

JSON_COLUMNS = ("options", "remote")
#: Paths are kept losslessly: a name that is not UTF-8 is stored as its bytes (docfile).
PATH_COLUMNS = ("rel_path", "location")


class Connection:
    """One SQLite connection; the daemon's event loop is its only user (the lock guards
    tests and tools that read from another thread)."""

    def __init__(
        self, conn: sqlite3.Connection, *, clock: Clock | None = None, wal: str | None = None
    ) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.clock = clock or SystemClock()
        self._tables: dict[str, bool] = {}
        self._wal = wal  # the writer's: what sync() fsyncs

    def close(self) -> None:
        try:
            self.sync()  # readers may keep SQLite from checkpointing (and syncing) at close
        finally:  # a disk that refuses the fsync still gets the connection closed
            with self._lock:
                self._conn.close()

    def changes(self) -> int:
        """Rows changed since the store was opened: whether a sync has anything to do."""
        return self._conn.total_changes

    def sync(self) -> None:
        """Every commit made so far, durable: the WAL fsynced, as SQLite does at each commit
        under ``synchronous=FULL`` (https://www.sqlite.org/wal.html: a transaction is
        committed once its frames, the last marked as a commit, are in the WAL).
        Blocking, and it never touches the connection: a worker thread calls it."""
        if self._wal is None:
            return
        try:
            fd = os.open(self._wal, os.O_RDONLY)
        except FileNotFoundError:
            return  # nothing written since the last checkpoint removed it
        except OSError as exc:
            raise _sync_error(exc) from exc
        try:
            os.fsync(fd)
        except OSError as exc:
            raise _sync_error(exc) from exc
        finally:
            os.close(fd)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                with self._conn:
                    yield self._conn
            except sqlite3.DatabaseError as exc:  # locked, full, damaged pages...
                raise store_error(exc) from exc

    def _query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()  # type: ignore[arg-type]
            except sqlite3.DatabaseError as exc:
                raise store_error(exc) from exc

    def has_table(self, name: str) -> bool:
        """Whether the schema has *name*: a reader (``docinbox status``) may open a
        database that an older daemon has not migrated yet.  Asked once per name: a
        table never goes away once made."""
        if not self._tables.get(name):
            rows = self._query("SELECT 1 FROM sqlite_master WHERE name = ?", (name,))
            self._tables[name] = bool(rows)
        return self._tables[name]

    def has_column(self, table: str, column: str) -> bool:
        """Whether *table* has *column* (a reader of a database an older daemon has not
        migrated yet); asked once, as columns are never taken away either."""
        key = f"{table}.{column}"
        if not self._tables.get(key):
            rows = self._query(f"SELECT name FROM pragma_table_info('{table}')")
            self._tables[key] = any(r["name"] == column for r in rows)
        return self._tables[key]

    def get(self, job_id: int) -> Job:
        rows = self._query("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            raise KeyError(job_id)
        return Job.from_row(rows[0])


def wal_of(conn: sqlite3.Connection) -> str | None:
    """The WAL file of the connection's database (None: in memory, or not in WAL mode)."""
    rows = conn.execute("PRAGMA database_list").fetchall()
    path = next((str(r[2]) for r in rows if r[1] == "main"), "")
    mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()
    return f"{path}-wal" if path and mode == "wal" else None


def _sync_error(exc: OSError) -> StoreError:
    return StoreError(f"cannot make the state database's last changes durable: {exc}")


def store_error(exc: sqlite3.DatabaseError) -> StoreError:
    text = str(exc).lower()
    if any(w in text for w in ("malformed", "not a database", "disk image")) or (
        type(exc) is sqlite3.DatabaseError
    ):
        return DamagedDatabase(f"the state database is damaged ({exc})")
    return StoreError(f"state database error: {exc}")


def placeholders(items: Iterable[Any]) -> str:
    return ", ".join("?" for _ in items)
