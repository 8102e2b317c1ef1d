"""Numbered schema migrations, applied in order; ``PRAGMA user_version`` records the last.

Never edit a migration that has shipped: add the next number.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[int, str]] = [
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
    for number, sql in MIGRATIONS:
        if number <= version:
            continue
        with conn:
            conn.executescript("BEGIN;" + sql + f"; PRAGMA user_version = {number};")
        version = number
    return version
