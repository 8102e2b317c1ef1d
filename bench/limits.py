"""At the service's limits (issue 14): how close docinbox gets to what a service allows.

* **limits**: N one-page receipts renamed into a running daemon's inbox at once, the
  mock at its default Nanonets limits (10 requests/s, bursts of 20 — the limiter a
  user's embedded mock has): the drain time against the ideal ``(N − burst) / rate``,
  and every request the mock saw for them (429s included) per document; the seed's
  own shell loop (its ``curl`` with the 1-2-4-8-16 s backoff on 429) in the same run.
* **latency**: the same with the mock's synchronous Nanonets latency at 2 s per page:
  against what the service's own limits allow (the ideal plus one answer's latency).
* **overhead**: limits off — docinbox against the sequential curl loop and
  ``xargs -P 8 curl``, with the daemon's CPU per document.

The daemon's config sets no ``concurrency`` or ``rate_per_second``: those are ceilings,
and docinbox is meant to find the service's capacity by itself.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from . import common as C
from .common import Mock, StateDB, median, stop, wait_until

#: The mock's default Nanonets limits (mockserver/nanonets/service.py SETTINGS).
RATE, BURST = 10.0, 20.0
LABEL = "/api/v2/OCR/Model/[^/]+/Label(File|Urls)/"

Row = Any  # bench.suite.row, passed in (no import cycle)


def ideal(n: int, latency: float = 0.0) -> float:
    """The fastest the service's limits allow for *n* documents: the burst at once, the
    rest at the sustained rate, plus the last answer's latency."""
    return max(0.0, n - BURST) / RATE + latency


def _limited_mock(latency: float) -> Mock:
    mock = Mock()
    mock.admin(
        "POST",
        "/__admin/config",
        {
            "nanonets": {
                "rate_per_second": RATE,
                "rate_burst": BURST,
                "free_quota": None,
                "sync_seconds_per_page": latency,
            }
        },
    )
    return mock


def drain(tmp: Path, n: int, *, latency: float = 0.0, limited: bool = True) -> dict[str, Any]:
    """A running daemon; *n* receipts dropped at once; until all are done or failed."""
    with _limited_mock(latency) if limited else Mock() as mock:
        cfg = C.write_config(tmp, mock.url, concurrency=None)
        staged = C.make_receipts(tmp / "staging", n, aged=False)
        daemon = C.start_daemon(cfg)
        try:
            wait_until(lambda: daemon.poll() is None and C.log_says(cfg, "watching "), 60)
            db = StateDB(cfg)
            seq = max((r["seq"] for r in mock.requests()), default=0)
            cpu0 = C.cpu_seconds(daemon.pid)
            t0 = time.time()
            for p in staged:
                os.rename(p, tmp / "inbox" / p.name)
            wait_until(lambda: _finished(db, n), max(180, n), 0.02, f"{n} documents done")
            elapsed = time.time() - t0
            cpu = C.cpu_seconds(daemon.pid) - cpu0
            counts = db.counts()
            db.close()
        finally:
            stop(daemon)
        sent = mock.requests(since=seq, path=LABEL)
    return {
        "seconds": elapsed,
        "rate": n / elapsed,
        "requests": len(sent),
        "refused": sum(1 for r in sent if r["status"] == 429),
        "per_doc": len(sent) / n,
        "counts": counts,
        "cpu_ms_per_doc": cpu / n * 1000,
    }


def _finished(db: StateDB, n: int) -> bool:
    c = db.counts()
    return c.get("done", 0) + c.get("failed", 0) >= n


#: The seed's loop: its curl command, and its "Manejo de 429" backoff (1 2 4 8 16 s).
SEED_LOOP = (
    'cd "$DIR"; for f in *.pdf; do for i in 1 2 4 8 16; do '
    'code=$(curl -s -o "out/$f.json" -w "%{http_code}" -X POST '
    '"$URL/api/v2/OCR/Model/$MODEL/LabelFile/" -u "$KEY:" -F "file=@$f"); '
    '[ "$code" != 429 ] && break; sleep $i; done; done'
)


def seed_loop(tmp: Path, n: int, *, latency: float = 0.0) -> dict[str, Any]:
    """The seed's curl loop with its backoff, against the same limited mock."""
    with _limited_mock(latency) as mock:
        folder = tmp / "files"
        C.make_receipts(folder, n, aged=True)
        (folder / "out").mkdir()
        env = {
            "URL": mock.url,
            "MODEL": C.defaults.NANONETS_MODEL_ID,
            "KEY": C.defaults.NANONETS_API_KEY,
            "DIR": str(folder),
        }
        t0 = time.time()
        proc = C.spawn(["bash", "-c", SEED_LOOP], env=env)
        try:
            rc = proc.wait(max(300, n * 3))
        finally:
            stop(proc)
        elapsed = time.time() - t0
        sent = mock.requests(path=LABEL)
        ok = sum(1 for p in (folder / "out").iterdir() if b'"Success"' in p.read_bytes())
    return {
        "seconds": elapsed,
        "rc": rc,
        "ok": ok,
        "requests": len(sent),
        "refused": sum(1 for r in sent if r["status"] == 429),
        "per_doc": len(sent) / n,
    }


def _spread(xs: list[float]) -> str:
    return f"median of {len(xs)}: {min(xs):.3g}–{max(xs):.3g}" if len(xs) > 1 else "n=1"


def bench_limits(args: argparse.Namespace, tmp: Path, row: Row, raw: dict[str, Any]) -> None:
    n = args.limit_docs
    print(f"limits: {n} receipts at Nanonets' default limits, {args.repeat} runs", flush=True)
    runs, seeds = [], []
    for i in range(args.repeat):
        runs.append(drain(tmp / f"limits{i}", n))
        print(f"    docinbox: {runs[-1]}", flush=True)
        seeds.append(seed_loop(tmp / f"seed{i}", n))
        print(f"    seed loop: {seeds[-1]}", flush=True)
    raw["limits"] = {"docinbox": runs, "seed": seeds}
    best = ideal(n)
    secs = median([r["seconds"] for r in runs])
    per = median([r["per_doc"] for r in runs])
    seed = median([r["seconds"] for r in seeds])
    done = all(r["counts"].get("done", 0) == n for r in runs)
    row(
        "limits",
        f"{n} receipts at 10/s burst 20: drain",
        round(secs, 1),
        "s",
        f"≤ {1.05 * best:.1f}",
        secs <= 1.05 * best,
        f"ideal {best:.0f} s = {secs / best:.2f}×; {_spread([r['seconds'] for r in runs])}"
        + ("" if done else "; NOT all done"),
    )
    row(
        "limits",
        "requests per document (429s included)",
        round(per, 3),
        "",
        "≤ 1.02",
        per <= 1.02,
        f"429 answers: {[r['refused'] for r in runs]}",
    )
    row(
        "limits",
        "the seed's curl loop with its 1-2-4-8-16 s backoff",
        round(seed, 1),
        "s",
        "",
        None,
        f"{median([r['per_doc'] for r in seeds]):.2f} requests/doc; "
        f"docinbox / seed loop time = {secs / seed:.2f}×",
    )
    bench_latency(args, tmp, row, raw)


def bench_latency(args: argparse.Namespace, tmp: Path, row: Row, raw: dict[str, Any]) -> None:
    n, latency = args.limit_docs, 2.0
    print(f"limits: the same with {latency:g} s of sync latency per page", flush=True)
    runs = []
    for i in range(args.repeat):
        runs.append(drain(tmp / f"latency{i}", n, latency=latency))
        print(f"    docinbox: {runs[-1]}", flush=True)
    raw["latency"] = runs
    best = ideal(n, latency)
    secs = median([r["seconds"] for r in runs])
    per = median([r["per_doc"] for r in runs])
    row(
        "limits",
        f"{n} receipts, {latency:g} s/page latency: drain",
        round(secs, 1),
        "s",
        f"≤ {1.1 * best:.1f}",
        secs <= 1.1 * best,
        f"the limits allow {best:.0f} s: {secs / best:.2f}×; {per:.3f} requests/doc; "
        + _spread([r["seconds"] for r in runs]),
    )


def bench_overhead(args: argparse.Namespace, tmp: Path, row: Row, raw: dict[str, Any]) -> None:
    from .suite import curl_loop

    n = args.docs
    print(f"overhead: {n} receipts, limits off, {args.repeat} runs", flush=True)
    runs, seq, par = [], [], []
    for i in range(args.repeat):
        runs.append(drain(tmp / f"off{i}", n, limited=False))
        print(f"    docinbox: {runs[-1]}", flush=True)
        seq.append(curl_loop(tmp / f"curl{i}", n))
        par.append(curl_loop(tmp / f"curlp{i}", n, parallel=8))
        print(f"    curl loop {seq[-1]['rate']:.1f}/s, -P 8 {par[-1]['rate']:.1f}/s", flush=True)
    raw["overhead"] = {"docinbox": runs, "curl": seq, "curl_p8": par}
    d = median([r["rate"] for r in runs])
    c = median([r["rate"] for r in seq])
    p = median([r["rate"] for r in par])
    cpu = median([r["cpu_ms_per_doc"] for r in runs])
    row(
        "overhead",
        f"limits off, {n} dropped at once",
        round(d, 1),
        "docs/s",
        "",
        None,
        _spread([r["rate"] for r in runs]),
    )
    row(
        "overhead",
        "docinbox / xargs -P 8 curl",
        round(d / p, 2),
        "×",
        "≥ 1.5",
        d / p >= 1.5,
        f"xargs -P 8: {p:.1f} docs/s; sequential curl loop {c:.1f} docs/s ({d / c:.2f}×)",
    )
    row(
        "overhead",
        "daemon CPU per document",
        round(cpu, 2),
        "ms",
        "≤ 3",
        cpu <= 3,
        _spread([r["cpu_ms_per_doc"] for r in runs]),
    )
