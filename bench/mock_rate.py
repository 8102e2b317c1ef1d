"""How fast is the mock? Requests/second on a polling endpoint and on a 1-page LabelFile.

Starts the mock as its own process (``python -m mockserver --port <free>``), then
drives it from a separate load process over loopback with a few concurrent
keep-alive connections; each phase stops after ``--seconds`` or ``--max-requests``,
whichever comes first. Prints one line per phase and, with ``--json``, a JSON object.

    python bench/mock_rate.py [--seconds 3] [--concurrency 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID  # noqa: E402
from mockserver.samples import receipt_pdf  # noqa: E402

MODEL = f"/api/v2/OCR/Model/{NANONETS_MODEL_ID}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mock(port: int) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mockserver", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(20):
            proc.kill()
            raise SystemExit("the mock did not start within 20 s")
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"unexpected mock output: {line!r}")
    return proc, line.split()[-1]


async def phase(
    name: str, url: str, make: Any, seconds: float, max_requests: int, concurrency: int
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, auth=(NANONETS_API_KEY, ""), limits=limits, timeout=30
    ) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) + errors < max_requests:
                t0 = time.perf_counter()
                response = await make(client)
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "phase": name,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(statistics.median(latencies) * 1000, 2) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2) if latencies else None,
    }


async def load(url: str, seconds: float, max_requests: int, concurrency: int) -> list[dict]:
    import httpx

    pdf = receipt_pdf()
    async with httpx.AsyncClient(base_url=url, auth=(NANONETS_API_KEY, "")) as c:
        # no rate limit or quota: we measure the server, not the throttles
        await c.post(
            "/__admin/config",
            json={"nanonets": {"rate_per_second": 0, "free_quota": None}},
        )
        queued = await c.post(f"{MODEL}/LabelFile/?async=true", files={"file": ("a.pdf", pdf)})
        pending_id = _file_id(queued.json())
        synced = await c.post(f"{MODEL}/LabelFile/", files={"file": ("b.pdf", pdf)})
        done_id = _file_id(synced.json())

    def get(rid: str) -> Any:
        return lambda client: client.get(
            f"/api/v2/Inferences/Model/{NANONETS_MODEL_ID}/InferenceRequestFiles/GetPredictions/{rid}"
        )

    async def label(client: Any) -> Any:
        return await client.post(
            f"{MODEL}/LabelFile/", files={"file": ("recibo.pdf", pdf, "application/pdf")}
        )

    results = []
    for name, make in (
        ("getFile (processing)", get(pending_id)),
        ("getFile (done, 1 page)", get(done_id)),
        ("LabelFile sync, 1 page", label),
    ):
        results.append(await phase(name, url, make, seconds, max_requests, concurrency))
    return results


def _file_id(body: Any) -> str:
    """The request_file_id of an answer: nested twice in the async acknowledgement."""
    first = body["result"][0]
    return str(
        first["result"][0]["request_file_id"] if "result" in first else first["request_file_id"]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per phase")
    parser.add_argument("--max-requests", type=int, default=20_000, help="per phase")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)  # the load process
    args = parser.parse_args(argv)

    if args.load:
        results = asyncio.run(load(args.load, args.seconds, args.max_requests, args.concurrency))
        print(json.dumps(results))
        return 0

    t0 = time.perf_counter()
    proc, url = start_mock(free_port())
    startup = time.perf_counter() - t0
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--load", url, "--seconds", str(args.seconds),
             "--max-requests", str(args.max_requests), "--concurrency", str(args.concurrency)],
            capture_output=True, text=True, timeout=args.seconds * 3 + 60, check=True,
        )  # fmt: skip
        results = json.loads(out.stdout)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"mock startup (process spawn to listening): {startup * 1000:.0f} ms")
    for r in results:
        print(
            f"{r['phase']:<24} {r['rps']:>8.1f} req/s  "
            f"p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  "
            f"({r['requests']} ok, {r['errors']} errors, {r['seconds']} s, "
            f"concurrency {args.concurrency})"
        )
    if args.json:
        print(json.dumps({"startup_ms": round(startup * 1000), "phases": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
