"""Chaos: hundreds of documents, seeded faults on every service, the daemon SIGKILLed at
random moments and restarted, hostile inputs among the good ones (a certificate-encrypted
PDF, a FIFO, a link to itself, a name that is not UTF-8, an empty and a cut PDF), and an
archive disk that is full for part of the run.  Every good document must end `done`
exactly once, every hostile one `failed` exactly once with its error file, and the mock's
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
from tests.helpers import fill, service_sections, small_disk, wait_for, write_config

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


DATA = Path(__file__).resolve().parents[1] / "data"
LATIN1 = b"Factura_\xf1.pdf"  # from an old USB stick: not UTF-8


def drop_hostile(inbox: Path) -> list[str]:
    """Inputs that must each fail alone, with an error file, and never stop the others."""
    old = 1_000_000_000  # an old mtime: not "still being written"
    (inbox / "certificado.pdf").write_bytes((DATA / "certificate-encrypted.pdf").read_bytes())
    (inbox / "vacio.pdf").write_bytes(b"")
    (inbox / "cortado.pdf").write_bytes(receipt_pdf(total="7.77")[:400])
    for name in ("certificado.pdf", "vacio.pdf", "cortado.pdf"):
        os.utime(inbox / name, (old, old))
    os.mkfifo(inbox / "tubo.pdf")
    os.symlink("bucle.pdf", inbox / "bucle.pdf")
    return ["bucle.pdf", "certificado.pdf", "cortado.pdf", "tubo.pdf", "vacio.pdf"]


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
    with open(os.fsencode(str(inbox)) + b"/" + LATIN1, "wb") as fh:
        fh.write(receipt_pdf(total="8.88"))
    total = len(names) + 1
    hostile = drop_hostile(inbox)

    with small_disk(workdir / "archive", "4m") as archive:
        filler = fill(archive)  # full for the first kills; freed half way
        started = time.monotonic()
        kills = run_and_kill(config, rng, filler)
        result = docinbox("run", "--once", "-c", str(config), timeout=900)
        elapsed = time.monotonic() - started
        assert result.returncode in (0, 1), result.stdout[-4000:] + result.stderr[-4000:]
        check_outcome(workdir, mock_process, names, hostile, total, kills, elapsed)


def run_and_kill(config: Path, rng: random.Random, filler: Path) -> int:
    kills = 0
    for round_ in range(KILLS):
        if round_ == KILLS // 2:
            filler.unlink()  # the user frees space: archiving goes on by itself
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
    return kills


def check_outcome(
    workdir: Path,
    mock_process: MockProcess,
    names: list[str],
    hostile: list[str],
    total: int,
    kills: int,
    elapsed: float,
) -> None:
    config = workdir / "config.toml"
    assert counts(config) == {"done": total, "failed": len(hostile)}
    outbox = sorted(p.name for p in (workdir / "outbox").iterdir())
    # each exactly once, no " (2)"; the name that is not UTF-8 shown readably
    assert outbox == sorted([Path(n).stem for n in names] + ["Factura_ñ"])
    archived = sorted(
        p.relative_to(workdir / "archive").as_posix() for p in (workdir / "archive").rglob("*.pdf")
    )
    assert sorted(a for a in archived if a.isascii()) == sorted(names)
    assert os.path.exists(os.fsencode(str(workdir / "archive")) + b"/" + LATIN1)
    inbox = workdir / "inbox"
    assert not [p for p in inbox.rglob("*") if p.is_file() or p.is_symlink()]
    failed = workdir / "failed"
    assert sorted(p.name for p in failed.iterdir()) == sorted(
        [*hostile, *(f"{n}.error.json" for n in hostile)]
    )

    tasks = [t for t in mock_process.tasks() if t.get("sha256")]
    requests = mock_process.requests()
    per_doc = collections.Counter(t["sha256"] for t in tasks)
    extra = sum(n - 1 for n in per_doc.values())
    faulted = sum(1 for r in requests if r.get("fault"))
    print(
        f"\nchaos seed={SEED}: {total} documents and {len(hostile)} hostile inputs, "
        f"{kills} SIGKILLs, a full archive disk for {KILLS // 2} rounds, {len(requests)} requests "
        f"({faulted} faulted), {len(tasks)} submissions accepted, {extra} resubmissions "
        f"(max {max(per_doc.values())} per document), {elapsed:.1f} s"
    )
    assert len(per_doc) == total
    # a kill can make a document in flight be sent again, at most once per kill
    assert max(per_doc.values()) <= 1 + kills
    in_flight_at_most = 8 + 200 + 4  # nanonets concurrency + a MinerU batch + docparse
    assert extra <= kills * in_flight_at_most
