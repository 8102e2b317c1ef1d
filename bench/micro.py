"""Per-document costs of the daemon's steps, measured in-process (evidence for the profile
findings; not part of the table).

    python -m bench.micro [--n 1000]

Each step runs over N one-page receipts in a temporary folder; prints µs per document.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from . import common as C


def timed(label: str, n: int, fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    us = (time.perf_counter() - t0) / n * 1e6
    print(f"{label:<62} {us:9.0f} µs/doc")
    return us


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1000)
    args = p.parse_args(argv)
    n = args.n
    from daemon import sniff
    from daemon.docfile import sha256_of as _sha256
    from daemon.outbox.writer import OutboxWriter
    from daemon.store import State, open_store

    tmp = Path(tempfile.mkdtemp(prefix="docinbox-micro-"))
    try:
        files = C.make_receipts(tmp / "inbox", n)
        out: dict[str, float] = {}
        out["sha"] = timed("sha256 of the file", n, lambda: [_sha256(f) for f in files])
        out["sniff"] = timed(
            "sniff.inspect (pypdf page count, path → whole file read)",
            n,
            lambda: [sniff.inspect(f) for f in files],
        )

        def pypdf_fh() -> None:
            import pypdf

            for f in files:
                with f.open("rb") as fh:
                    len(pypdf.PdfReader(fh, strict=False).pages)

        out["pypdf_fh"] = timed("  pypdf page count from an open file object", n, pypdf_fh)

        for sync in ("FULL", "NORMAL"):
            db = tmp / f"s-{sync}.db"
            store = open_store(db)
            store._conn.execute(f"PRAGMA synchronous = {sync}")

            def add(store=store) -> None:  # type: ignore[no-untyped-def]
                for i, f in enumerate(files):
                    store.add(
                        rel_path=f.name,
                        location=str(f),
                        sha256=f"{i:064d}",
                        size=1,
                        mtime_ns=1,
                        kind="pdf",
                        pages=1,
                    )

            out[f"add_{sync}"] = timed(f"store.add (own transaction), synchronous={sync}", n, add)

            def lifecycle(store=store) -> None:  # type: ignore[no-untyped-def]
                for job in store.in_state(State.QUEUED):
                    store.transition(job.id, State.QUEUED, State.SUBMITTING, service="nanonets")
                    store.transition(job.id, State.SUBMITTING, State.RECEIVED, remote={"a": 1})
                    store.update(job.id, State.RECEIVED, result_dir=f"r{job.id}")
                    store.transition(job.id, State.RECEIVED, State.DONE, location="x")

            out[f"life_{sync}"] = timed(
                f"4 state changes of a job, synchronous={sync}", n, lifecycle
            )
            store.close()

        store = open_store(tmp / "q.db")
        for i, f in enumerate(files):
            store.add(
                rel_path=f.name,
                location=str(f),
                sha256=f"{i:064d}",
                size=1,
                mtime_ns=1,
                kind="pdf",
                pages=1,
            )
        reps = 200
        t0 = time.perf_counter()
        for _ in range(reps):
            store.in_state(State.QUEUED, due_before=time.time(), limit=256)
        ms = (time.perf_counter() - t0) / reps * 1000
        print(f"{'in_state(QUEUED, limit=256): one scheduler pass':<62} {ms * 1000:9.0f} µs")
        out["scheduler_pass_ms"] = ms
        store.close()

        writer = OutboxWriter(tmp / "outbox", fsync=True)
        raw = tmp / "raw"
        raw.mkdir()
        (raw / "response.json").write_bytes(b"{}" * 1000)
        result = {"source": {"name": "x"}, "fields": [], "tables": []}
        out["outbox"] = timed(
            "OutboxWriter.write (3 files, 6 fsyncs)",
            n,
            lambda: [writer.write(f"d{i}", i, result, "# x\n", raw) for i in range(n)],
        )
        reserved: set[str] = set()
        out["free_name"] = timed(
            "OutboxWriter.free_name (builds 10,000 candidates)",
            n,
            lambda: [writer.free_name(f"new{i}", reserved) for i in range(n)],
        )
        fd = os.open(tmp / "f", os.O_WRONLY | os.O_CREAT)
        out["fsync"] = timed(
            "one fsync on this disk",
            200,
            lambda: [(os.write(fd, b"x"), os.fsync(fd)) for _ in range(200)],
        )
        os.close(fd)
        with sqlite3.connect(":memory:") as _:
            pass
        import json

        print(json.dumps({k: round(v, 1) for k, v in out.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
