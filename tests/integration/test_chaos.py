"""Chaos: hundreds of documents, seeded faults on every service, the daemon SIGKILLed at
random moments and restarted.  Every document must end `done` exactly once and the mock's
ledger must show no document submitted more often than the kills can explain.

``CHAOS_SEED`` picks another run; the figures are printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import collections
import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import service_sections, wait_for, write_config

from .conftest import MockProcess, docinbox, start_daemon

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CHAOS_SEED", "20261121"))
RECEIPTS, BOOKS, PRIVATE, KILLS = 160, 50, 20, 5

ROUTES = """
[[routes]]
folder = "private/**"
service = "docparse"
[[routes]]
service = "nanonets"
max_pages = 3
types = ["pdf"]
[[routes]]
service = "mineru"
"""

FAULTS = [  # each matching request fails with this seeded chance
    {
        "method": "POST",
        "path": "/api/v2/OCR/Model/.*/LabelFile/",
        "status": 503,
        "probability": 0.08,
        "seed": SEED,
    },
    {
        "method": "POST",
        "path": "/api/v2/OCR/Model/.*/LabelFile/",
        "fault": "html502",
        "probability": 0.04,
        "seed": SEED + 1,
    },
    {
        "method": "POST",
        "path": "/api/v2/OCR/Model/.*/LabelFile/",
        "status": 429,
        "retry_after": 1,
        "probability": 0.04,
        "seed": SEED + 2,
    },
    {
        "path": "/api/v4/extract-results/batch/.*",
        "fault": "malformed",
        "probability": 0.1,
        "seed": SEED + 3,
    },
    {"method": "PUT", "path": "/__oss/.*", "fault": "reset", "probability": 0.05, "seed": SEED + 4},
    {
        "method": "GET",
        "path": "/__cdn/.*",
        "fault": "truncate",
        "probability": 0.1,
        "seed": SEED + 5,
    },
    {"path": "/api/v1/.*", "status": 502, "probability": 0.05, "seed": SEED + 6},
]


def counts(config: Path) -> dict[str, int]:
    out = docinbox("status", "--json", "-c", str(config), check=True).stdout
    return json.loads(out)["counts"]


@pytest.mark.mock_speed(100)
def test_chaos(workdir: Path, mock_process: MockProcess) -> None:
    rng = random.Random(SEED)
    config = write_config(
        workdir,
        mock_process.url,
        routes=service_sections(mock_process.url) + ROUTES,
        retry="max_attempts = 12",
    )
    for rule in FAULTS:
        mock_process.admin("POST", "faults", json=rule)
    inbox = workdir / "inbox"
    names = []
    for n in range(RECEIPTS):
        (inbox / f"r{n:03}.pdf").write_bytes(receipt_pdf(total=f"{n}.{n % 100:02}"))
        names.append(f"r{n:03}.pdf")
    for n in range(BOOKS):
        (inbox / f"b{n:03}.pdf").write_bytes(multipage_pdf(4 + n % 5, words=f"Book{n}"))
        names.append(f"b{n:03}.pdf")
    (inbox / "private").mkdir()
    for n in range(PRIVATE):
        (inbox / "private" / f"p{n:03}.pdf").write_bytes(receipt_pdf(total=f"9{n}.00"))
        names.append(f"private/p{n:03}.pdf")
    total = len(names)

    started = time.monotonic()
    kills = 0
    for _ in range(KILLS):
        daemon = start_daemon(config)
        try:
            # let it work for a random while (any moment is fair game, start-up included)
            deadline = time.monotonic() + rng.uniform(0.5, 3.0)
            wait_for(
                lambda d=deadline, p=daemon: time.monotonic() >= d or p.poll() is not None,
                timeout=10,
                message="the kill moment",
            )
            assert daemon.poll() is None, daemon.communicate()[0]  # it must not have died
        finally:
            daemon.send_signal(signal.SIGKILL)
            daemon.communicate(timeout=30)
            kills += 1
    result = docinbox("run", "--once", "-c", str(config), timeout=900)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    assert counts(config) == {"done": total}
    outbox = sorted(p.name for p in (workdir / "outbox").iterdir())
    assert outbox == sorted(Path(n).stem for n in names)  # each exactly once, no " (2)"
    archived = sorted(
        p.relative_to(workdir / "archive").as_posix() for p in (workdir / "archive").rglob("*.pdf")
    )
    assert archived == sorted(names)
    assert not [p for p in inbox.rglob("*") if p.is_file()]
    assert not (workdir / "failed").exists() or not list((workdir / "failed").iterdir())

    tasks = [t for t in mock_process.tasks() if t.get("sha256")]
    per_doc = collections.Counter(t["sha256"] for t in tasks)
    extra = sum(n - 1 for n in per_doc.values())
    requests = mock_process.requests()
    faulted = sum(1 for r in requests if r.get("fault"))
    print(
        f"\nchaos seed={SEED}: {total} documents, {kills} SIGKILLs, {len(requests)} requests "
        f"({faulted} faulted), {len(tasks)} submissions accepted, {extra} resubmissions "
        f"(max {max(per_doc.values())} per document), {elapsed:.1f} s"
    )
    assert len(per_doc) == total
    # a kill can make a document in flight be sent again, at most once per kill
    assert max(per_doc.values()) <= 1 + kills
    in_flight_at_most = 8 + 200 + 4  # nanonets concurrency + a MinerU batch + docparse
    assert extra <= kills * in_flight_at_most
