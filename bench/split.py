"""Past the page limit (issue 16): a long real PDF split, sent in parts and merged.

The mock in its own process at its defaults (MinerU takes 200 pages a file); per length
a daemon of its own, a short document first (the baseline: the whole path warmed up,
peak RSS read), then a document of the same real manual at that length:
each is split into parts of 200 pages, sent to MinerU, merged into one result folder.
Per length, each in a daemon of its own: the time from the drop to ``done`` and the
daemon's peak RSS (VmHWM) over its idle baseline — the goal is memory independent of
page count, at most 50 MB over idle.
The mock's clock is moved on while it parses (a 200-page part takes minutes of its
time), so the time is docinbox's own work: split, upload, poll, fetch, merge.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path
from typing import Any

from tests import splitdoc

from . import common as C
from .common import Mock, stop, wait_until

Row = Any  # bench.suite.row, passed in (no import cycle)

#: A document goes to MinerU whatever its length (the shipped routes send short PDFs to
#: Nanonets; this measures the split path only).
ROUTES = """
[[routes]]
service = "mineru"
"""


def _state(db: Path, name: str) -> str | None:
    """The document's state as `docinbox status` would say it (parts left out)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT state FROM jobs WHERE rel_path = ? AND parent_id IS NULL", (name,)
            ).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def _through(mock: Mock, cfg: Path, pid: int, source: Path, name: str) -> dict[str, Any]:
    """Rename *source* into the inbox as *name*; advance the mock's clock until done."""
    db = cfg.parent / "state" / "docinbox.db"
    t0 = time.monotonic()
    (cfg.parent / "inbox" / name).parent.mkdir(parents=True, exist_ok=True)
    source.rename(cfg.parent / "inbox" / name)

    def finished() -> bool:
        state = _state(db, name)
        if state in ("done", "failed"):
            return True
        mock.admin("POST", "/__admin/clock/advance", {"seconds": 20})
        return False

    wait_until(finished, 600, 0.1, f"{name} done")
    seconds = time.monotonic() - t0
    return {
        "name": name,
        "state": _state(db, name),
        "seconds": seconds,
        "status": C.proc_status(pid),
        "parts": len([t for t in mock.tasks() if t["name"].startswith(Path(name).stem)]),
    }


def bench_split(args: argparse.Namespace, tmp: Path, row: Row, raw: dict[str, Any]) -> None:
    lengths = sorted({200, args.split_pages // 2, args.split_pages})
    print(f"split: real PDFs of {', '.join(map(str, lengths))} pages through MinerU", flush=True)
    staging = tmp / "split-staging"
    built = {}
    for pages in lengths:
        t0 = time.monotonic()
        built[pages] = splitdoc.build(staging / f"book-{pages}.pdf", pages)
        print(f"    built {pages} pages in {time.monotonic() - t0:.1f} s", flush=True)
    runs = [_fresh(tmp, pages, built[pages], staging) for pages in lengths]
    raw["split"] = {"runs": runs}
    previous = None
    for pages, run in zip(lengths, runs, strict=True):
        over = (run["status"]["VmHWM"] - run["idle"]["VmHWM"]) / 1024
        row(
            "split",
            f"{pages} pages → {run['parts']} part(s): drop → done",
            round(run["seconds"], 1),
            "s",
            "",
            run["state"] == "done",
            f"{pages / run['seconds']:.0f} pages/s; {run['state']}",
        )
        row(
            "split",
            f"{pages} pages: peak RSS over idle",
            round(over, 1),
            "MB",
            "≤ 50",
            over <= 50,
            f"idle HWM {run['idle']['VmHWM'] / 1024:.0f} MB"
            + ("" if previous is None else f"; {over - previous:+.1f} MB against the shorter one"),
        )
        previous = over


def _fresh(tmp: Path, pages: int, book: Path, staging: Path) -> dict[str, Any]:
    """*book* through a daemon of its own, after a short warm-up document: its peak is
    this length's alone (a daemon that parsed a shorter one first keeps that one's
    high-water mark and freed-but-kept heap in its figure)."""
    warm = splitdoc.build(staging / f"warm-{pages}.pdf", 4)
    with Mock() as mock:
        cfg = C.write_config(tmp / f"split-{pages}", mock.url, routes=ROUTES)
        daemon = C.start_daemon(cfg)
        try:
            wait_until(lambda: C.log_says(cfg, "watching "), 60, 0.05, "the daemon to start")
            _through(mock, cfg, daemon.pid, warm, "warm.pdf")
            time.sleep(1)  # the warm-up's last writes settle before the baseline is read
            idle = C.proc_status(daemon.pid)
            run = _through(mock, cfg, daemon.pid, book, f"book-{pages}.pdf")
        finally:
            stop(daemon)
    return {**run, "idle": idle}
