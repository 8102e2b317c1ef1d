"""A state database with damaged pages: found at once, said plainly, never a traceback."""

from __future__ import annotations

import sqlite3

from tests.acceptance.conftest import Workspace, receipt, wait_for


def damage(db: str) -> None:
    """Scribble over the pages that hold the jobs table (what a failing disk does)."""
    with sqlite3.connect(db) as conn:
        pages = [
            r[0]
            for r in conn.execute(
                "SELECT rootpage FROM sqlite_master WHERE name IN ('jobs', 'history')"
            )
        ]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with open(db, "r+b") as fh:
        for page in pages:
            fh.seek((page - 1) * size + 8)
            fh.write(b"\xff\x13\x37" * 300)


def test_a_damaged_database_is_exit_3_with_what_to_do(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())
    wait_for(lambda: workspace.counts().get("done") == 1, 30, "the receipt")
    assert daemon.stop() == 0
    db = workspace.root / "state" / "docinbox.db"
    damage(str(db))
    before = db.read_bytes()

    status = workspace.docinbox("status")
    assert status.returncode == 3, status.stdout + status.stderr
    assert "damaged" in status.stderr and "move the state database aside" in status.stderr
    assert "Traceback" not in status.stderr

    run = workspace.docinbox("run", timeout=60)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "damaged" in run.stderr and "Traceback" not in run.stdout + run.stderr
    assert db.read_bytes() == before  # never replaced, never "repaired"
