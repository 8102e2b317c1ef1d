"""docinbox benchmark suite (issue 7): docinbox as a real process against the mock as a
real process, next to what a user would otherwise write (the Nanonets seed's ``curl``
in a shell loop, ``inotifywait`` for pickup).

    python -m bench.suite [--quick] [--only NAME[,NAME...]] [--repeat N] [--profile]

Benchmarks: throughput, pickup, slowwriter, memory, bigfile, idle, startup, api.
Prints a table (figure, goal, pass/fail) and writes bench-results/latest.json and
bench/RESULTS.md.  Every wait is bounded; every process is killed on the way out.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from . import common as C
from .common import LABELFILE, REPO, Mock, StateDB, median, pct, stop, wait_until

RESULTS_DIR = REPO / "bench-results"
ROWS: list[dict[str, Any]] = []
RAW: dict[str, Any] = {}


def row(
    bench: str,
    metric: str,
    value: Any,
    unit: str = "",
    goal: str = "",
    ok: bool | None = None,
    note: str = "",
) -> None:
    r = {
        "bench": bench,
        "metric": metric,
        "value": value,
        "unit": unit,
        "goal": goal,
        "pass": ok,
        "note": note,
    }
    ROWS.append(r)
    v = f"{value:.3g}" if isinstance(value, float) else str(value)
    print(
        f"  · {metric}: {v} {unit}  {goal} {'' if ok is None else ('PASS' if ok else 'FAIL')}"
        f"  {note}",
        flush=True,
    )


def spread(xs: list[float]) -> str:
    if len(xs) < 2:
        return f"n={len(xs)}"
    return f"median of {len(xs)}: min {min(xs):.3g}, max {max(xs):.3g}"


def ready(cfg: Path, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited with {proc.returncode} during start-up")
        return C.log_says(cfg, "watching ")

    wait_until(up, timeout, 0.01, "the daemon to watch its inbox")


def finished(db: StateDB, n: int) -> bool:
    c = db.counts()
    return c.get("done", 0) + c.get("failed", 0) >= n


# --- 1. throughput ---------------------------------------------------------------------------


def daemon_burst(tmp: Path, n: int, profile: Path | None = None) -> dict[str, Any]:
    """A running daemon; *n* finished receipts renamed into the inbox at once; until all done."""
    with Mock() as mock:
        cfg = C.write_config(tmp, mock.url)
        staged = C.make_receipts(tmp / "staging", n, aged=False)
        daemon = C.start_daemon(cfg)
        spy = None
        try:
            ready(cfg, daemon)
            db = StateDB(cfg)
            if profile is not None:
                spy = start_pyspy(daemon.pid, profile)
            cpu0 = C.cpu_seconds(daemon.pid)
            t0 = time.time()
            for p in staged:
                os.rename(p, tmp / "inbox" / p.name)
            dropped = time.time() - t0
            wait_until(lambda: finished(db, n), max(120, n / 5), 0.02, f"{n} documents done")
            elapsed = time.time() - t0
            cpu = C.cpu_seconds(daemon.pid) - cpu0
            counts = db.counts()
            if counts.get("failed"):
                counts["failed_codes"] = C.failed_codes(cfg)  # type: ignore[assignment]
            db.close()
        finally:
            if spy is not None:
                stop_pyspy(spy)
            stop(daemon)
        return {
            "seconds": elapsed,
            "rate": n / elapsed,
            "drop_seconds": dropped,
            "counts": counts,
            "cpu_ms_per_doc": cpu / n * 1000,
        }


def daemon_once(tmp: Path, n: int) -> dict[str, Any]:
    """`docinbox run --once` over *n* receipts already in the inbox (process start to exit)."""
    with Mock() as mock:
        cfg = C.write_config(tmp, mock.url)
        C.make_receipts(tmp / "inbox", n, aged=True)
        t0 = time.time()
        proc = C.start_daemon(cfg, once=True)
        try:
            rc = proc.wait(max(120, n / 5))
        finally:
            stop(proc)
        elapsed = time.time() - t0
        db = StateDB(cfg)
        counts = db.counts()
        db.close()
        return {"seconds": elapsed, "rate": n / elapsed, "rc": rc, "counts": counts}


CURL = 'curl -s -X POST "$URL/api/v2/OCR/Model/$MODEL/LabelFile/" -u "$KEY:" -F "file=@$f"'


def curl_loop(tmp: Path, n: int, parallel: int = 1) -> dict[str, Any]:
    """The seed's curl command in a bash loop over *n* receipts (or xargs -P)."""
    with Mock() as mock:
        folder = tmp / "files"
        C.make_receipts(folder, n, aged=True)
        (folder / "out").mkdir()
        if parallel == 1:
            script = f'cd "$DIR"; for f in *.pdf; do {CURL} > "out/$f.json"; done'
        else:
            script = (
                f'cd "$DIR"; printf "%s\\n" *.pdf | xargs -P {parallel} -I{{}} '
                f'sh -c \'f="$1"; {CURL} > "out/$f.json"\' _ {{}}'
            )
        env = {
            "URL": mock.url,
            "MODEL": C.defaults.NANONETS_MODEL_ID,
            "KEY": C.defaults.NANONETS_API_KEY,
            "DIR": str(folder),
        }
        t0 = time.time()
        proc = C.spawn(["bash", "-c", script], env=env)
        try:
            rc = proc.wait(max(120, n / 2))
        finally:
            stop(proc)
        elapsed = time.time() - t0
        ok = sum(1 for p in (folder / "out").iterdir() if b'"Success"' in p.read_bytes())
        return {"seconds": elapsed, "rate": n / elapsed, "rc": rc, "ok": ok}


def mock_ceiling() -> dict[str, Any]:
    out = subprocess.run(
        [C.PY, str(REPO / "bench" / "mock_rate.py"), "--seconds", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_throughput(args: argparse.Namespace, tmp: Path) -> None:
    n = args.docs
    print(
        f"throughput: {n} one-page receipts, mock without latency, {args.repeat} runs", flush=True
    )
    burst, once, seq, par = [], [], [], []
    for i in range(args.repeat):
        r = daemon_burst(tmp / f"burst{i}", n)
        burst.append(r)
        print(
            f"    daemon (running, burst drop): {r['rate']:.1f} docs/s  {r['counts']}", flush=True
        )
        r = daemon_once(tmp / f"once{i}", n)
        once.append(r)
        print(
            f"    docinbox run --once: {r['rate']:.1f} docs/s rc={r['rc']} {r['counts']}",
            flush=True,
        )
        r = curl_loop(tmp / f"curl{i}", n)
        seq.append(r)
        print(f"    curl loop: {r['rate']:.1f} docs/s ({r['ok']} ok)", flush=True)
        r = curl_loop(tmp / f"curlp{i}", n, parallel=8)
        par.append(r)
        print(f"    curl xargs -P8: {r['rate']:.1f} docs/s ({r['ok']} ok)", flush=True)
    RAW["throughput"] = {"burst": burst, "once": once, "curl": seq, "curl_p8": par}
    d = median([r["rate"] for r in burst])
    o = median([r["rate"] for r in once])
    c = median([r["rate"] for r in seq])
    p = median([r["rate"] for r in par])
    all_done = all(r["counts"].get("done", 0) == n for r in burst + once)
    row(
        "throughput",
        f"docinbox, running daemon, {n} dropped at once",
        round(d, 1),
        "docs/s",
        "≥ 200",
        d >= 200,
        spread([r["rate"] for r in burst]) + ("" if all_done else "; NOT all done"),
    )
    cpu = median([r["cpu_ms_per_doc"] for r in burst])
    row(
        "throughput",
        "daemon CPU per document (user+sys, all threads)",
        round(cpu, 1),
        "ms",
        "",
        None,
        f"≥ 200 docs/s needs ≤ {2000 / 200:.0f} ms on 2 cores minus the mock's share",
    )
    row(
        "throughput",
        f"docinbox run --once, {n} in inbox (incl. start/exit)",
        round(o, 1),
        "docs/s",
        "≥ 200",
        o >= 200,
        spread([r["rate"] for r in once]),
    )
    row(
        "throughput",
        "curl loop (seed command, sequential)",
        round(c, 1),
        "docs/s",
        "",
        None,
        spread([r["rate"] for r in seq]),
    )
    row("throughput", "ratio docinbox / curl loop", round(d / c, 2), "×", "≥ 5×", d / c >= 5)
    row(
        "throughput",
        "curl via xargs -P 8 (for reference)",
        round(p, 1),
        "docs/s",
        "",
        None,
        f"docinbox / this = {d / p:.2f}×",
    )
    try:
        m = mock_ceiling()
        RAW["mock_rate"] = m
        for ph in m["phases"]:
            row(
                "throughput",
                f"mock ceiling: {ph['phase']}",
                ph["rps"],
                "req/s",
                "",
                None,
                "bench/mock_rate.py, concurrency 8",
            )
        label = next(ph["rps"] for ph in m["phases"] if ph["phase"].startswith("LabelFile"))
        row(
            "throughput",
            "docinbox / mock LabelFile ceiling",
            round(d / label, 2),
            "×",
            "",
            None,
            "1.0 would mean the mock is the bottleneck",
        )
    except Exception as exc:
        row("throughput", "mock ceiling", "error", "", "", None, str(exc)[:100])


# --- 2. pickup latency -----------------------------------------------------------------------


def match_arrivals(drops: list[float], entries: list[dict[str, Any]]) -> list[float]:
    """Drop k ↔ the first unused upload that arrived after it (drops are paced apart)."""
    lat, j = [], 0
    ats = sorted(e["at"] for e in entries)
    for t in drops:
        while j < len(ats) and ats[j] < t - 0.0005:
            j += 1
        if j == len(ats):
            break
        lat.append(ats[j] - t)
        j += 1
    return lat


def paced_drops(tmp: Path, n: int, pace: float) -> list[float]:
    staging, inbox = tmp / "staging", tmp / "inbox"
    times = []
    for i in range(n):
        p = staging / f"p{i:05d}.pdf"
        p.write_bytes(C.receipt(i))
        time.sleep(pace)
        t = time.time()
        os.rename(p, inbox / p.name)
        times.append(t)
    return times


def pickup_daemon(tmp: Path, n: int, pace: float, archive: str = "archive") -> list[float]:
    with Mock() as mock:
        cfg = C.write_config(tmp, mock.url, archive=archive)
        daemon = C.start_daemon(cfg)
        try:
            ready(cfg, daemon)
            time.sleep(0.5)
            drops = paced_drops(tmp, n, pace)
            wait_until(lambda: len(mock.requests(path=LABELFILE)) >= n, 30, 0.1, "uploads")
            entries = mock.requests(path=LABELFILE)
        finally:
            stop(daemon)
    return match_arrivals(drops, entries)


def pickup_inotify(tmp: Path, n: int, pace: float) -> list[float]:
    with Mock() as mock:
        (tmp / "inbox").mkdir(parents=True)
        (tmp / "staging").mkdir()
        (tmp / "out").mkdir()
        script = (
            'inotifywait -m -e close_write,moved_to --format "%w%f" "$INBOX" | '
            f'while read -r f; do {CURL} > "$OUT/$(basename "$f").json"; done'
        )
        env = {
            "URL": mock.url,
            "MODEL": C.defaults.NANONETS_MODEL_ID,
            "KEY": C.defaults.NANONETS_API_KEY,
            "INBOX": str(tmp / "inbox"),
            "OUT": str(tmp / "out"),
        }
        proc = C.spawn(["bash", "-c", script], env=env, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stderr is not None
            line = ""
            deadline = time.monotonic() + 10
            while "Watches established" not in line and time.monotonic() < deadline:
                line = proc.stderr.readline()
            time.sleep(0.2)
            drops = paced_drops(tmp, n, pace)
            wait_until(lambda: len(mock.requests(path=LABELFILE)) >= n, 30, 0.1, "uploads")
            entries = mock.requests(path=LABELFILE)
        finally:
            stop(proc)
    return match_arrivals(drops, entries)


def bench_pickup(args: argparse.Namespace, tmp: Path) -> None:
    n, pace = args.drops, 0.1
    print(
        f"pickup: {n} drops by rename(), {pace * 1000:.0f} ms apart; latency to the upload's "
        "arrival at the mock (journal `at`)",
        flush=True,
    )
    d = pickup_daemon(tmp / "daemon", n, pace)
    i = pickup_inotify(tmp / "inotify", n, pace)
    nd = pickup_daemon(tmp / "noarchive", n, pace, archive="")
    RAW["pickup"] = {
        "daemon_ms": [x * 1000 for x in d],
        "inotify_ms": [x * 1000 for x in i],
        "daemon_archive_off_ms": [x * 1000 for x in nd],
    }
    note = "" if len(d) == n else f"only {len(d)} of {n} matched"
    p50, p99 = pct(d, 50) * 1000, pct(d, 99) * 1000
    row("pickup", "docinbox pickup latency p50", round(p50, 1), "ms", "≤ 20", p50 <= 20, note)
    row(
        "pickup",
        "docinbox pickup latency p99",
        round(p99, 1),
        "ms",
        "≤ 100",
        p99 <= 100,
        f"max {max(d) * 1000:.1f} ms",
    )
    row(
        "pickup",
        'docinbox p50 / p99 with archive = "" (diagnostic)',
        f"{pct(nd, 50) * 1000:.1f} / {pct(nd, 99) * 1000:.1f}",
        "ms",
        "",
        None,
        "originals deleted instead of renamed out of the inbox",
    )
    row("pickup", "inotifywait + curl loop p50", round(pct(i, 50) * 1000, 1), "ms")
    row(
        "pickup",
        "inotifywait + curl loop p99",
        round(pct(i, 99) * 1000, 1),
        "ms",
        note=f"max {max(i) * 1000:.1f} ms",
    )


# --- 2b. slow writers ------------------------------------------------------------------------


def slow_write(path: Path, data: bytes, chunks: int, pause: float) -> None:
    step = -(-len(data) // chunks)
    with path.open("wb") as fh:
        for k in range(0, len(data), step):
            fh.write(data[k : k + step])
            fh.flush()
            time.sleep(pause)


def bench_slowwriter(args: argparse.Namespace, tmp: Path) -> None:
    from mockserver.samples import multipage_pdf

    cases = [
        ("pauses 0.4 s (< settle 2 s), file kept open", 10, 6, 0.4),
        ("pauses 2.5 s (> settle 2 s), file kept open", 2, 3, 2.5),
    ]
    print("slow writer: PDFs written in chunks straight into the inbox", flush=True)
    for label, files, chunks, pause in cases:
        with Mock() as mock:
            cfg = C.write_config(tmp / f"slow{pause}", mock.url)
            daemon = C.start_daemon(cfg)
            try:
                ready(cfg, daemon)
                datas = {
                    f"s{i:03d}.pdf": multipage_pdf(3, words=f"Slow{i}") + b"%" * 3000 * i
                    for i in range(files)
                }
                threads = [
                    threading.Thread(
                        target=slow_write, args=(cfg.parent / "inbox" / name, data, chunks, pause)
                    )
                    for name, data in datas.items()
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(60)
                db = StateDB(cfg)
                with contextlib.suppress(TimeoutError):
                    wait_until(
                        lambda db=db, files=files: finished(db, files),
                        30,
                        0.05,
                        "slow files settled",
                    )
                counts = db.counts()
                db.close()
                tasks = mock.tasks()
            finally:
                stop(daemon)
        want = {name: __import__("hashlib").sha256(d).hexdigest() for name, d in datas.items()}
        bad = [t for t in tasks if t["name"] in want and t["sha256"] != want[t["name"]]]
        sent_ok = {t["name"] for t in tasks if t.get("sha256") == want.get(t["name"])}
        half = len(bad) + counts.get("failed", 0)
        goal = "0" if pause < 2 else ""
        row(
            "slowwriter",
            f"half-written pickups, {files} files, {label}",
            half,
            "",
            goal,
            (half == 0) if goal else None,
            f"{len(sent_ok)}/{files} uploaded with full bytes; states {counts}",
        )
        RAW.setdefault("slowwriter", []).append(
            {"case": label, "counts": counts, "bad": bad, "ok": sorted(sent_ok)}
        )


# --- 3. memory -------------------------------------------------------------------------------


def bench_memory(args: argparse.Namespace, tmp: Path) -> None:
    n = args.backlog
    print(f"memory: peak RSS with {n} documents in the inbox at start", flush=True)
    with Mock() as mock:
        cfg = C.write_config(tmp / "backlog", mock.url)
        C.make_receipts(cfg.parent / "inbox", n, aged=True)
        t0 = time.time()
        daemon = C.start_daemon(cfg)
        samples = []
        try:
            db = StateDB(cfg)

            def sample() -> bool:
                samples.append((time.time() - t0, C.proc_status(daemon.pid)["VmRSS"]))
                if daemon.poll() is not None:
                    raise RuntimeError("daemon died")
                return finished(db, n)

            wait_until(sample, max(300, n / 10), 0.25, f"{n} done")
            elapsed = time.time() - t0
            st = C.proc_status(daemon.pid)
            counts = db.counts()
            db.close()
        finally:
            stop(daemon)
    RAW["memory_backlog"] = {
        "counts": counts,
        "seconds": elapsed,
        "VmHWM_kB": st["VmHWM"],
        "rss_samples": samples[::8],
    }
    hwm = st["VmHWM"] / 1024
    row(
        "memory",
        f"peak RSS (VmHWM), {n}-document backlog",
        round(hwm, 1),
        "MB",
        "≤ 80",
        hwm <= 80,
        f"final RSS {st['VmRSS'] / 1024:.1f} MB",
    )
    row(
        "memory",
        f"backlog of {n} drained (process start → all done)",
        round(n / elapsed, 1),
        "docs/s",
        "",
        None,
        f"{elapsed:.1f} s; {counts}",
    )


def bench_bigfile(args: argparse.Namespace, tmp: Path) -> None:
    size = args.big_mb * 1_000_000  # the mock's MinerU takes up to 200 MiB
    print(f"memory: RSS growth while a {args.big_mb} MB PDF uploads", flush=True)
    with Mock() as mock:
        cfg = C.write_config(tmp / "big", mock.url)
        big = cfg.parent / "staging" / "big.pdf"
        C.big_pdf(big, size)
        want = C.sha256_file(big)
        daemon = C.start_daemon(cfg)
        try:
            ready(cfg, daemon)
            # warm up the whole path with one small document first
            C.make_receipts(cfg.parent / "inbox", 1, aged=False, prefix="warm")
            db = StateDB(cfg)
            wait_until(lambda: finished(db, 1), 30, 0.05, "warm-up document")
            time.sleep(1)
            before = C.proc_status(daemon.pid)
            t0 = time.time()
            os.rename(big, cfg.parent / "inbox" / "big.pdf")
            wait_until(lambda: finished(db, 2), 300, 0.1, "the big document")
            elapsed = time.time() - t0
            after = C.proc_status(daemon.pid)
            counts = db.counts()
            db.close()
            tasks = [t for t in mock.tasks() if t["name"] == "big.pdf"]
            if counts.get("failed"):
                counts["failed_codes"] = C.failed_codes(cfg)  # type: ignore[assignment]
        finally:
            stop(daemon)
    growth = (after["VmHWM"] - before["VmHWM"]) / 1024
    route = ", ".join(sorted({t["service"] for t in tasks})) or "nothing reached the mock"
    if tasks and tasks[-1].get("sha256") != want:
        route += " (sha256 MISMATCH)"
    RAW["memory_bigfile"] = {
        "before": before,
        "after": after,
        "seconds": elapsed,
        "counts": counts,
        "tasks": tasks,
    }
    row(
        "memory",
        f"peak RSS growth, {args.big_mb} MB upload",
        round(growth, 1),
        "MB",
        "≤ 16",
        growth <= 16,
        f"via {route}; HWM {before['VmHWM'] / 1024:.0f}→"
        f"{after['VmHWM'] / 1024:.0f} MB; {elapsed:.1f} s; {counts}",
    )


# --- 4. idle ---------------------------------------------------------------------------------


def bench_idle(args: argparse.Namespace, tmp: Path) -> None:
    secs = args.idle_seconds
    print(f"idle: CPU over {secs:.0f} s with nothing to do (both daemons side by side)", flush=True)
    with Mock() as mock:
        cfg_ext = C.write_config(tmp / "ext", mock.url)
        cfg_emb = C.write_config(tmp / "emb", None)
        d1, d2 = C.start_daemon(cfg_ext), C.start_daemon(cfg_emb)
        mock_pid = mock.proc.pid
        try:
            ready(cfg_ext, d1)
            ready(cfg_emb, d2)
            time.sleep(3)
            c0 = [C.cpu_seconds(p) for p in (d1.pid, d2.pid, mock_pid)]
            t0 = time.monotonic()
            time.sleep(secs)
            c1 = [C.cpu_seconds(p) for p in (d1.pid, d2.pid, mock_pid)]
            dt = time.monotonic() - t0
        finally:
            stop(d1)
            stop(d2)
    ext, emb, mk = ((b - a) / dt * 100 for a, b in zip(c0, c1, strict=True))
    RAW["idle"] = {
        "seconds": dt,
        "cpu_pct": {"external_mock": ext, "embedded_mock": emb, "mock_process": mk},
    }
    tick = 100 / C.CLK_TCK / dt
    row(
        "idle",
        "idle CPU, daemon (mock in another process)",
        round(ext, 3),
        "%",
        "≤ 0.5",
        ext <= 0.5,
        f"over {dt:.0f} s; resolution {tick:.3f} %",
    )
    row("idle", "idle CPU, daemon with the embedded mock", round(emb, 3), "%", "≤ 0.5", emb <= 0.5)
    row("idle", "idle CPU, the standalone mock process", round(mk, 3), "%", "", None)


# --- 5. start-up -----------------------------------------------------------------------------


def bench_startup(args: argparse.Namespace, tmp: Path, profile: Path | None = None) -> None:
    n = args.backlog
    print(f"start-up: {n} files already in the inbox, uploads hang (nothing completes)", flush=True)
    runs = []
    for r in range(args.repeat):
        with Mock() as mock:
            mock.fault({"path": LABELFILE, "fault": "hang", "seconds": 600})
            cfg = C.write_config(tmp / f"startup{r}", mock.url)
            C.make_receipts(cfg.parent / "inbox", n, aged=True)
            db = StateDB(cfg)
            t0 = time.time()
            daemon = C.start_daemon(cfg)
            spy = start_pyspy(daemon.pid, profile) if (profile and r == 0) else None
            try:
                wait_until(lambda db=db: db.total() >= n, 120, 0.01, f"{n} queued")
                queued = time.time() - t0
                ready_at = None
                if spy is not None:
                    stop_pyspy(spy)
                    spy = None
                # queued first, inspected later: let the inspection finish (bounded)
                with contextlib.suppress(TimeoutError):
                    wait_until(lambda db=db: db.uninspected() == 0, 60, 0.05, "inspection")
                inspected = time.time() - t0
                c0, w0 = C.cpu_seconds(daemon.pid), time.monotonic()
                time.sleep(3)
                busy = (C.cpu_seconds(daemon.pid) - c0) / (time.monotonic() - w0) * 100
                stop_s = stop(daemon, timeout=30)
                t1 = time.time()
                daemon = C.start_daemon(cfg)
                log = cfg.parent / "state" / "docinbox.log"
                wait_until(
                    lambda log=log: log.read_text().count("watching ") >= 2, 60, 0.01, "restart"
                )
                ready_at = time.time() - t1
                # let the restart's admission pass reach every file (it only stats and
                # looks up; no hashing): a quarter of the first pass, 3-30 s
                time.sleep(min(30.0, max(3.0, queued / 4)))
                total, again = db.total(), db.created_after(t1)
                db.close()
            finally:
                if spy is not None:
                    stop_pyspy(spy)
                stop(daemon)
        runs.append(
            {
                "queued_s": queued,
                "inspected_s": inspected,
                "saturated_cpu_pct": busy,
                "stop_s": stop_s,
                "restart_ready_s": ready_at,
                "rows_after_restart": total,
                "queued_again": again,
            }
        )
        print(f"    {runs[-1]}", flush=True)
    RAW["startup"] = runs
    q = median([r["queued_s"] for r in runs])
    row(
        "startup",
        f"{n} files in the inbox → all queued (process start)",
        round(q, 2),
        "s",
        "≤ 3",
        q <= 3,
        spread([r["queued_s"] for r in runs]),
    )
    again = max(r["queued_again"] for r in runs)
    row(
        "startup",
        "documents queued again by a restart",
        again,
        "",
        "0",
        again == 0,
        f"rows after restart {runs[0]['rows_after_restart']} (want {n})",
    )
    row(
        "startup",
        f"{n} files → all inspected (type, pages)",
        round(median([r["inspected_s"] for r in runs]), 2),
        "s",
        "",
        None,
        "rows with kind set",
    )
    sat = median([r["saturated_cpu_pct"] for r in runs])
    row(
        "startup",
        "daemon CPU while every upload slot is busy (backlog waiting)",
        round(sat, 1),
        "%",
        "",
        None,
        "3 s once all are inspected; ~0 expected",
    )
    row(
        "startup",
        "SIGTERM → exit with uploads in flight",
        round(median([r["stop_s"] for r in runs]), 2),
        "s",
        "",
        None,
        "hung uploads: waits for in-flight",
    )
    row(
        "startup",
        "restart with a full inbox → watching",
        round(median([r["restart_ready_s"] for r in runs]), 2),
        "s",
    )


# --- 6. API economy --------------------------------------------------------------------------


def bench_api(args: argparse.Namespace, tmp: Path) -> None:
    """Requests per document: MinerU batches (status polls) and the Nanonets sync path."""
    from daemon.services import REGISTRY
    from mockserver.samples import multipage_pdf

    n = args.api_docs
    if "mineru" not in REGISTRY:
        row(
            "api",
            "status requests per document (MinerU batches)",
            "n/a",
            "",
            "≤ 0.2",
            None,
            "n/a: not wired yet (daemon.services.REGISTRY has no mineru)",
        )
    else:
        print(
            f"api: {n} ten-page PDFs to MinerU at once, mock timings as shipped "
            "(queue 3 s, 1 s/page)",
            flush=True,
        )
        with Mock() as mock:
            cfg = C.write_config(tmp / "mineru", mock.url)
            old = time.time() - 60
            for i in range(n):
                p = cfg.parent / "inbox" / f"m{i:04d}.pdf"
                p.write_bytes(multipage_pdf(10, words=f"Doc{i}"))
                os.utime(p, (old, old))
            t0 = time.time()
            proc = C.start_daemon(cfg, once=True)
            try:
                rc = proc.wait(240)
            finally:
                stop(proc)
            elapsed = time.time() - t0
            reqs = mock.requests()
            db = StateDB(cfg)
            counts = db.counts()
            db.close()
        status = [
            r
            for r in reqs
            if r["method"] == "GET"
            and (
                r["path"].startswith("/api/v4/extract-results/")
                or r["path"].startswith("/api/v4/extract/task/")
            )
        ]
        per = len(status) / n
        kinds: dict[str, int] = {}
        for r in reqs:
            key = r["method"] + " " + "/".join(r["path"].split("/")[:5])
            kinds[key] = kinds.get(key, 0) + 1
        RAW["api_mineru"] = {"counts": counts, "rc": rc, "seconds": elapsed, "requests": kinds}
        row(
            "api",
            f"status requests per document (MinerU, {n} docs)",
            round(per, 3),
            "",
            "≤ 0.2",
            per <= 0.2,
            f"{len(status)} polls, {len(reqs)} requests in all, {elapsed:.0f} s, {counts}",
        )
    # the Nanonets path: one synchronous request per document, no polling
    m = 50
    with Mock() as mock:
        cfg = C.write_config(tmp / "api", mock.url)
        C.make_receipts(cfg.parent / "inbox", m, aged=True)
        proc = C.start_daemon(cfg, once=True)
        try:
            proc.wait(120)
        finally:
            stop(proc)
        reqs = mock.requests()
    row(
        "api",
        "Nanonets requests per document (sync LabelFile)",
        round(len(reqs) / m, 2),
        "",
        "",
        None,
        f"{len(reqs)} requests for {m} docs; "
        f"{sum(1 for r in reqs if 'GetPredictions' in r['path'] or 'getFile' in r['path'])} "
        "status polls",
    )


# --- profiling -------------------------------------------------------------------------------


def start_pyspy(pid: int, out: Path) -> subprocess.Popen[Any] | None:
    exe = shutil.which("py-spy") or str(C.VENV_BIN / "py-spy")
    if not Path(exe).exists():
        print("    (py-spy not installed: no profile)")
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = C.spawn(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--rate",
            "250",
            "--format",
            "raw",
            "-o",
            str(out),
            "--threads",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc


def stop_pyspy(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    stop(proc)


IDLE_LEAVES = (
    "_worker (concurrent/futures/thread.py:81)",
    "Condition.wait (",
    "_check_inotify_fd (",
    "DelayedQueue.get (",
    "Event.wait (",
    "EpollSelector.select (",
    "Thread.join (",
)


def summarize_profile(raw: Path, top: int = 25) -> dict[str, Any]:
    """Collapsed stacks → shares of the *busy* samples (idle waits dropped) per function:
    self (leaf) and inclusive, the latter for docinbox's own frames and its libraries."""
    import collections
    import re

    selfc: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = busy = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        if any(i in frames[-1] for i in IDLE_LEAVES):
            continue
        busy += c
        name = re.sub(r"_\d+$", "", re.sub(r"\(\d+\)", "", frames[0]).split(":")[-1].strip())
        threads[name] += c
        selfc[frames[-1]] += c
        for f in set(frames[1:]):
            incl[f] += c
    keep = ("daemon/", "sqlite", "pypdf", "httpx", "httpcore", "watchdog", "json", "hashlib")

    def share(items: Any) -> list[tuple[str, float]]:
        return [(k, round(100 * v / max(1, busy), 1)) for k, v in items]

    return {
        "samples": total,
        "busy_samples": busy,
        "threads": share(threads.most_common(6)),
        "self": share(selfc.most_common(top)),
        "inclusive": share(
            [kv for kv in incl.most_common(400) if any(k in kv[0] for k in keep)][: top * 2]
        ),
    }


def bench_profile(args: argparse.Namespace, tmp: Path) -> None:
    print("profile: py-spy on the daemon during a burst and during start-up", flush=True)
    if not (shutil.which("py-spy") or (C.VENV_BIN / "py-spy").exists()):
        print("    (py-spy not installed: scripts/bench --profile installs it)")
        return
    out = RESULTS_DIR / "profiles"
    prof = {}
    r = daemon_burst(tmp / "prof-burst", args.docs, profile=out / "throughput.txt")
    prof["throughput"] = {
        "rate_under_profiler": r["rate"],
        **summarize_profile(out / "throughput.txt"),
    }
    sub = argparse.Namespace(**{**vars(args), "repeat": 1})
    saved = len(ROWS)
    bench_startup(sub, tmp / "prof-startup", profile=out / "startup.txt")
    del ROWS[saved:]
    prof["startup"] = summarize_profile(out / "startup.txt")
    RAW["profile"] = prof
    for name, p in prof.items():
        print(
            f"  {name}: {p['samples']} samples, {p['busy_samples']} busy (250 Hz, all "
            f"threads); busy by thread {p['threads']}"
        )
        for k, v in p["inclusive"][:40]:
            print(f"     incl {v:5.1f}%  {k}")
        for k, v in p["self"][:15]:
            print(f"     self {v:5.1f}%  {k}")
    (out / "summary.json").write_text(json.dumps(prof, indent=1))


# --- the table -------------------------------------------------------------------------------


def bench_limits(args: argparse.Namespace, tmp: Path) -> None:
    from .limits import bench_limits as limits

    limits(args, tmp, row, RAW)


def bench_overhead(args: argparse.Namespace, tmp: Path) -> None:
    from .limits import bench_overhead as overhead

    overhead(args, tmp, row, RAW)


def bench_split(args: argparse.Namespace, tmp: Path) -> None:
    from .split import bench_split as split

    split(args, tmp, row, RAW)


BENCHES = {
    "throughput": bench_throughput,
    "limits": bench_limits,
    "overhead": bench_overhead,
    "pickup": bench_pickup,
    "slowwriter": bench_slowwriter,
    "memory": bench_memory,
    "bigfile": bench_bigfile,
    "split": bench_split,
    "idle": bench_idle,
    "startup": bench_startup,
    "api": bench_api,
    "profile": bench_profile,
}
DEFAULT = [
    "throughput",
    "limits",
    "overhead",
    "pickup",
    "slowwriter",
    "memory",
    "bigfile",
    "split",
    "idle",
    "startup",
    "api",
]


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}".rstrip("0").rstrip(".") if abs(v) < 10 else f"{v:,.1f}"
    return str(v)


def table_markdown(command: str, meta: dict[str, Any]) -> str:
    lines = [
        f"`{command}` — {meta['date']}, {meta['machine']}",
        "",
        "| benchmark | figure | value | goal | result | notes |",
        "|---|---|---:|---|---|---|",
    ]
    for r in ROWS:
        res = "" if r["pass"] is None else ("pass" if r["pass"] else "**FAIL**")
        lines.append(
            f"| {r['bench']} | {r['metric']} | {fmt(r['value'])} {r['unit']} | "
            f"{r['goal']} | {res} | {r['note']} |"
        )
    return "\n".join(lines) + "\n"


def print_table() -> None:
    w = max(len(r["metric"]) for r in ROWS) if ROWS else 10
    print("\n" + "=" * (w + 60))
    for r in ROWS:
        res = "" if r["pass"] is None else ("PASS" if r["pass"] else "FAIL")
        val = f"{fmt(r['value'])} {r['unit']}"
        print(f"{r['bench']:<11} {r['metric']:<{w}}  {val:>14}  {r['goal']:<7} {res:<4}")
    print("=" * (w + 60))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="docinbox benchmark suite")
    p.add_argument("--quick", action="store_true", help="smaller sizes, one run, 10 s idle")
    p.add_argument("--only", default="", help=f"comma-separated: {', '.join(BENCHES)}")
    p.add_argument("--repeat", type=int, default=None)
    p.add_argument("--docs", type=int, default=None, help="throughput documents (1000)")
    p.add_argument("--limit-docs", type=int, default=None, help="limits documents (200)")
    p.add_argument("--drops", type=int, default=None, help="pickup drops (200)")
    p.add_argument("--backlog", type=int, default=None, help="backlog files (10000)")
    p.add_argument("--api-docs", type=int, default=None, help="MinerU documents (100)")
    p.add_argument("--big-mb", type=int, default=None, help="big upload size (200)")
    p.add_argument("--split-pages", type=int, default=None, help="longest split PDF (1000)")
    p.add_argument("--idle-seconds", type=float, default=None, help="idle window (60)")
    p.add_argument("--profile", action="store_true", help="also run the py-spy profiles")
    p.add_argument("--command", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    q = args.quick
    args.repeat = args.repeat or (1 if q else 3)
    args.docs = args.docs or (200 if q else 1000)
    args.drops = args.drops or (40 if q else 200)
    args.limit_docs = args.limit_docs or 200
    args.backlog = args.backlog or (2000 if q else 10000)
    args.big_mb = args.big_mb or (50 if q else 200)
    args.api_docs = args.api_docs or (30 if q else 100)
    args.split_pages = args.split_pages or (600 if q else 1000)
    args.idle_seconds = args.idle_seconds or (10.0 if q else 60.0)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(DEFAULT)
    if args.profile and "profile" not in names:
        names.append("profile")
    unknown = set(names) - set(BENCHES)
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    for tool in ("curl", "inotifywait"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is missing (scripts/apt-packages.txt; run scripts/setup)")
    command = args.command or "scripts/bench " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else __import__("sys").argv[1:])
    )
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}",
        "load_before": os.getloadavg(),
        "command": command.strip(),
        "sizes": {
            k: getattr(args, k)
            for k in (
                "repeat",
                "docs",
                "limit_docs",
                "drops",
                "backlog",
                "big_mb",
                "idle_seconds",
                "api_docs",
            )
        },
    }
    failures = []
    tmp_root = Path(tempfile.mkdtemp(prefix="docinbox-bench-"))
    try:
        for name in names:
            t0 = time.time()
            try:
                BENCHES[name](args, tmp_root / name)
            except Exception as exc:
                traceback.print_exc()
                failures.append(name)
                row(name, "error", type(exc).__name__, "", "", False, str(exc)[:120])
            finally:
                C.cleanup()
                shutil.rmtree(tmp_root / name, ignore_errors=True)
            print(f"  ({name} took {time.time() - t0:.0f} s)", flush=True)
    finally:
        C.cleanup()
        shutil.rmtree(tmp_root, ignore_errors=True)
    meta["load_after"] = os.getloadavg()
    print_table()
    RESULTS_DIR.mkdir(exist_ok=True)
    (RESULTS_DIR / "latest.json").write_text(
        json.dumps({"meta": meta, "rows": ROWS, "raw": RAW}, indent=1, default=str)
    )
    md = table_markdown(meta["command"], meta)
    if args.only or args.quick:
        (RESULTS_DIR / "latest.md").write_text(md)
        print(
            f"\nwrote {RESULTS_DIR / 'latest.json'} and latest.md "
            "(bench/RESULTS.md is only rewritten by a full run)"
        )
    else:
        (REPO / "bench" / "RESULTS.md").write_text(
            "# docinbox benchmark results\n\nMade by `scripts/bench` (see bench/README.md). "
            "Paste into the README's performance section.\n\n" + md
        )
        print(f"\nwrote {RESULTS_DIR / 'latest.json'} and bench/RESULTS.md")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
