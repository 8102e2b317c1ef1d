"""Numbered schema migrations, applied in order; ``PRAGMA user_version`` records the last.

Never edit a migration that has shipped: add the next number.  A migration is SQL, or a
function of the connection when it must read the schema it changes (5: a table rebuild
that keeps whatever columns earlier migrations added).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

#: The states a job may be in, as migration 5 leaves the CHECK constraint.
STATES_5 = "'queued','submitting','submitted','received','done','failing','failed','split'"
_STATE_CHECK = re.compile(r"CHECK\s*\(\s*state\s+IN\s*\([^)]*\)\s*\)", re.IGNORECASE)


def _parts(conn: sqlite3.Connection) -> None:
    """5: documents split into parts (issue 16).  A part is a job of its own — queued,
    submitted, polled, recovered like any — linked to its document (``parent_id``) with
    the pages it carries; the document waits in the new state ``split`` until every
    part is received.  SQLite cannot widen a CHECK constraint in place, so ``jobs`` is
    rebuilt (sqlite.org/lang_altertable.html, "other kinds of table schema changes"):
    from its own CREATE statement and column list, so columns another migration added
    survive, then its indexes are made again."""
    (sql,) = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
    ).fetchone()
    new_sql, found = _STATE_CHECK.subn(f"CHECK (state IN ({STATES_5}))", sql, count=1)
    if not found:
        raise RuntimeError("migration 5: the jobs table has no state CHECK constraint")
    new_sql = re.sub(
        r'^\s*CREATE TABLE\s+("?jobs"?|"?jobs_new"?)', "CREATE TABLE jobs_new", new_sql
    )
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' "
            "AND sql IS NOT NULL"
        )
    ]
    columns = ", ".join(f'"{r[1]}"' for r in conn.execute("PRAGMA table_info(jobs)"))
    conn.execute(new_sql)
    conn.execute(f"INSERT INTO jobs_new ({columns}) SELECT {columns} FROM jobs")
    conn.execute("DROP TABLE jobs")
    conn.execute("ALTER TABLE jobs_new RENAME TO jobs")
    for index in indexes:
        conn.execute(index)
    for column in (
        "parent_id INTEGER",  # a part: the document it belongs to
        "part INTEGER",  # its number among the document's parts, from 1
        "first_page INTEGER",  # the document's pages it carries (1-based, inclusive)
        "last_page INTEGER",
        "parts INTEGER",  # a document split into parts: how many
    ):
        conn.execute(f"ALTER TABLE jobs ADD COLUMN {column}")
    conn.execute("CREATE INDEX jobs_parent ON jobs (parent_id, part)")


MIGRATIONS: list[tuple[int, str | Callable[[sqlite3.Connection], None]]] = [
    (
        1,
        """
        CREATE TABLE jobs (
            id          INTEGER PRIMARY KEY,
            rel_path    TEXT NOT NULL,              -- as dropped, relative to the inbox
            location    TEXT NOT NULL,              -- where the original is now
            sha256      TEXT NOT NULL,
            size        INTEGER NOT NULL,
            mtime_ns    INTEGER NOT NULL,
            kind        TEXT,                       -- sniffed type: pdf, png, docx, link, ...
            pages       INTEGER,
            state       TEXT NOT NULL CHECK (state IN
                          ('queued','submitting','submitted','received','done','failed')),
            service     TEXT,
            options     TEXT NOT NULL DEFAULT '{}', -- route options (JSON)
            remote      TEXT NOT NULL DEFAULT '{}', -- the service's ids for this job (JSON)
            attempts    INTEGER NOT NULL DEFAULT 0,
            not_before  REAL NOT NULL DEFAULT 0,    -- retries wait until then
            first_error_at REAL,
            error       TEXT,                       -- stable error code
            message     TEXT,
            result_dir  TEXT,                       -- outbox folder name, reserved before writing
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            finished_at REAL
        );
        CREATE INDEX jobs_state ON jobs (state, not_before);
        CREATE INDEX jobs_rel_path ON jobs (rel_path);
        CREATE INDEX jobs_sha256 ON jobs (sha256);
        CREATE TABLE history (
            job_id  INTEGER NOT NULL,
            at      REAL NOT NULL,
            src     TEXT,
            dst     TEXT NOT NULL,
            note    TEXT
        );
        CREATE INDEX history_job ON history (job_id);
        CREATE TABLE meta (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- the scheduler asks for due jobs of one service at a time
        CREATE INDEX jobs_service ON jobs (state, service, not_before);
        """,
    ),
    (
        3,
        """
        -- 'failing': a document's failure is recorded before its original moves to
        -- failed/ (which may wait for a full disk), with the hint its error file will
        -- carry.  SQLite cannot change a CHECK constraint in place, so the table is
        -- rebuilt with the same columns and one more.
        CREATE TABLE jobs_new (
            id          INTEGER PRIMARY KEY,
            rel_path    TEXT NOT NULL,
            location    TEXT NOT NULL,
            sha256      TEXT NOT NULL,
            size        INTEGER NOT NULL,
            mtime_ns    INTEGER NOT NULL,
            kind        TEXT,
            pages       INTEGER,
            state       TEXT NOT NULL CHECK (state IN
                          ('queued','submitting','submitted','received','done','failing',
                           'failed')),
            service     TEXT,
            options     TEXT NOT NULL DEFAULT '{}',
            remote      TEXT NOT NULL DEFAULT '{}',
            attempts    INTEGER NOT NULL DEFAULT 0,
            not_before  REAL NOT NULL DEFAULT 0,
            first_error_at REAL,
            error       TEXT,
            message     TEXT,
            result_dir  TEXT,
            created_at  REAL NOT NULL,
            updated_at  REAL NOT NULL,
            finished_at REAL,
            hint        TEXT                        -- what the user should do about error
        );
        INSERT INTO jobs_new SELECT *, NULL FROM jobs;
        DROP TABLE jobs;
        ALTER TABLE jobs_new RENAME TO jobs;
        CREATE INDEX jobs_state ON jobs (state, not_before);
        CREATE INDEX jobs_rel_path ON jobs (rel_path);
        CREATE INDEX jobs_sha256 ON jobs (sha256);
        CREATE INDEX jobs_service ON jobs (state, service, not_before);
        """,
    ),
    (
        4,
        """
        -- What each service's quotas count (daemon/budgets.py): one row per allowance,
        -- for the period it counts now; a new period starts the count again.
        CREATE TABLE budgets (
            service     TEXT NOT NULL,
            name        TEXT NOT NULL,              -- files, priority_pages, calls, pages
            period      TEXT NOT NULL,              -- '2026-11-21' (a day), '2026-11', 'balance'
            used        REAL NOT NULL DEFAULT 0,
            allowance   INTEGER NOT NULL DEFAULT 0, -- the setting's limit (0: not known)
            renews_at   REAL,                       -- when the period ends (NULL: a balance)
            spent_until REAL,                       -- the service said it is used up, till then
            detail      TEXT NOT NULL DEFAULT '{}', -- label, unit, soft, policy (JSON)
            updated_at  REAL NOT NULL,
            PRIMARY KEY (service, name)
        );
        """,
    ),
    (5, _parts),
    (
        6,
        """
        -- The review desk (issue 17).  New tables only, keyed by job id: nothing here
        -- touches the jobs table, so it applies whatever 4 and 5 did to it.
        -- What the desk shows of each written result, kept current as results are written
        -- and approved (daemon/desk/index.py), rebuilt by `docinbox search --rebuild`.
        CREATE TABLE results (
            job_id      INTEGER PRIMARY KEY,
            folder      TEXT NOT NULL,              -- the inbox subfolder ('' at the top)
            review      TEXT NOT NULL,              -- result.json's "review" object (JSON)
            fields      TEXT NOT NULL,              -- [{label, text, score}] as written (JSON)
            indexed_at  REAL NOT NULL
        );
        -- Full text of every result: its name, Markdown and field values (rowid = job id).
        CREATE VIRTUAL TABLE results_text USING fts5(
            name, markdown, fields, tokenize = 'unicode61 remove_diacritics 2'
        );
        -- A person's corrections and approval of one result.  ``state``: editing
        -- (corrections kept, not yet approved) → approving (the intent, committed before
        -- the service is told) → approved; failed when the service refused for good.
        -- ``remote`` records which of the service's review calls landed.
        CREATE TABLE reviews (
            job_id      INTEGER PRIMARY KEY,
            state       TEXT NOT NULL CHECK (state IN
                          ('editing', 'approving', 'approved', 'failed')),
            corrections TEXT NOT NULL DEFAULT '[]', -- [{label, text}] (JSON)
            by          TEXT,
            remote      TEXT NOT NULL DEFAULT '{}',
            attempts    INTEGER NOT NULL DEFAULT 0,
            not_before  REAL NOT NULL DEFAULT 0,
            first_error_at REAL,
            error       TEXT,
            message     TEXT,
            requested_at REAL,
            approved_at REAL,
            updated_at  REAL NOT NULL
        );
        CREATE INDEX reviews_state ON reviews (state, not_before);
        -- Failed documents the user dismissed: out of the counts, files kept.
        CREATE TABLE dismissed (
            job_id      INTEGER PRIMARY KEY,
            at          REAL NOT NULL
        );
        """,
    ),
    (
        7,
        """
        -- Migration 5's index on parent_id also matched "parent_id IS NULL" (every
        -- document), and SQLite, with no statistics, took it for every status query: a
        -- walk through the whole history, four times a second (bench, 2026-12-01:
        -- 35 ms a snapshot with 10,000 documents done).  Parts are found by their
        -- parent, never by its absence.
        DROP INDEX jobs_parent;
        CREATE INDEX jobs_parent ON jobs (parent_id, part) WHERE parent_id IS NOT NULL;
        -- The latest finished documents (status, tray) without sorting the history.
        CREATE INDEX jobs_updated ON jobs (updated_at);
        -- Documents per state counted from the index alone.
        DROP INDEX jobs_state;
        CREATE INDEX jobs_state ON jobs (state, not_before, parent_id);
        """,
    ),
]


def current_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version reached."""
    version = current_version(conn)
    latest = MIGRATIONS[-1][0]
    if version > latest:
        raise RuntimeError(
            f"the state database has schema version {version}, newer than this docinbox "
            f"knows ({latest}); upgrade docinbox"
        )
    for number, step in MIGRATIONS:
        if number <= version:
            continue
        if isinstance(step, str):
            with conn:
                conn.executescript("BEGIN;" + step + f"; PRAGMA user_version = {number};")
        else:
            _in_transaction(conn, number, step)
        version = number
    return version


def _in_transaction(
    conn: sqlite3.Connection, number: int, step: Callable[[sqlite3.Connection], None]
) -> None:
    """A migration function and its version number, all or nothing."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        step(conn)
        conn.execute(f"PRAGMA user_version = {number}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
