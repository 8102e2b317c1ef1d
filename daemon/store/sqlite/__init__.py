"""The SQLite job store (the only implementation of :class:`daemon.store.api.Store`).

One row per document, and one per part of a document split into parts.  Every state
change goes through :meth:`SQLiteStore.transition`, an UPDATE that names the state it
expects, so two actors can never both move a job (the loser gets
:class:`StaleTransition`).  The daemon's event loop is the only user of
its connection; WAL lets ``docinbox status`` read from another process while the daemon
writes.  Commits are fsynced in groups, off the event loop (:meth:`SQLiteStore.sync`,
daemon/store/durable.py): an intent is durable before the side effect it announces.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...clock import Clock
from ...errors import DamagedDatabase, StoreError
from ..migrations import current_version, migrate
from .base import wal_of
from .budgets import Budgets
from .desk import Desk
from .intake import Intake
from .meta import Meta
from .parts import Parts
from .queries import Queries

#: How long a write waits for another connection's lock before giving up.
BUSY_SECONDS = 5.0


class SQLiteStore(Intake, Parts, Queries, Meta, Budgets, Desk):
    """Open with :func:`open_store`."""


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
        conn = _reader(path) if readonly else _writer(path)
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
    return SQLiteStore(conn, clock=clock, wal=None if readonly else wal_of(conn))


def _connect(
    target: str | Path, *, timeout: float = BUSY_SECONDS, uri: bool = False
) -> sqlite3.Connection:
    conn = sqlite3.connect(target, timeout=timeout, uri=uri, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
    return conn


def _writer(path: Path) -> sqlite3.Connection:
    conn = _connect(path, timeout=BUSY_SECONDS)
    _check_integrity(conn, path)
    # WAL: readers (docinbox status, the tray) never block the daemon.
    mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
    if mode != "wal":
        raise StoreError(f"{path}: cannot switch the database to WAL mode ({mode})")
    # NORMAL: a commit survives a crash of docinbox at once, a power cut once
    # SQLiteStore.sync has fsynced the WAL; the pipeline asks for that before every side
    # effect that depends on it, in a worker thread (daemon/store/durable.py).
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    # Find out now, not at the first job, if another program holds the write lock.
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    return conn


def _reader(path: Path) -> sqlite3.Connection:
    conn = _connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
    _check_integrity(conn, path)
    if current_version(conn) == 0:
        # The daemon has created the file but not its tables yet: nothing to show.
        conn.close()
        conn = _connect(":memory:")
        migrate(conn)
    return conn
