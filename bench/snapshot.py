"""What a status snapshot costs as the history grows: the schema as migration 6 left it
beside the current one, in the same run (evidence for migration 7; not in the table).

    python -m bench.snapshot [--queued 500] [--history 0,10000,50000]

The daemon rebuilds the snapshot (counts, the documents under way, the latest finished)
up to four times a second while it works; ``docinbox status`` and the tray read it.
Prints milliseconds per snapshot for each history size, old schema and new.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from daemon.status import build_snapshot
from daemon.store import migrations, open_store


def _store(folder: Path, queued: int, history: int, upto: int | None) -> Path:
    """A database with *history* finished documents and *queued* waiting ones, its schema
    migrated up to *upto* (None: the latest) before the daemon opens it."""
    path = folder / f"s-{upto}-{history}.db"
    if upto is not None:
        conn = sqlite3.connect(path)
        conn.isolation_level = None
        for number, step in migrations.MIGRATIONS:
            if number > upto:
                break
            if isinstance(step, str):
                conn.executescript("BEGIN;" + step + f"; PRAGMA user_version = {number}; COMMIT;")
            else:
                migrations._in_transaction(conn, number, step)
        conn.close()
    store = open_store(path) if upto is None else None
    conn = sqlite3.connect(path)
    rows = [
        (f"d{i}.pdf", f"/in/d{i}.pdf", f"{i:064d}", 1, 1, "done" if i < history else "queued")
        for i in range(history + queued)
    ]
    conn.executemany(
        "INSERT INTO jobs (rel_path, location, sha256, size, mtime_ns, state, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, abs(random() % 1000000))",
        rows,
    )
    conn.commit()
    conn.close()
    if store is not None:
        store.close()
    return path


def per_snapshot(path: Path, rounds: int = 40) -> float:
    """Milliseconds per snapshot, the schema as it is in *path* (read-only: not migrated)."""
    store = open_store(path, readonly=True)
    build_snapshot(store, time.time())
    t0 = time.perf_counter()
    for _ in range(rounds):
        build_snapshot(store, time.time())
    ms = (time.perf_counter() - t0) / rounds * 1000
    store.close()
    return ms


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--queued", type=int, default=500)
    p.add_argument("--history", default="0,10000,50000")
    args = p.parse_args(argv)
    print(f"status snapshot, {args.queued} documents queued; ms per snapshot")
    print(f"{'finished documents':>20} {'schema 6':>10} {'schema 7':>10} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for history in map(int, args.history.split(",")):
            old = per_snapshot(_store(Path(tmp), args.queued, history, 6))
            new = per_snapshot(_store(Path(tmp), args.queued, history, None))
            print(f"{history:>20,} {old:>10.1f} {new:>10.1f} {old / new:>6.1f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
