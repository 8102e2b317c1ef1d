"""Bad input and a hostile host: each ends clearly, the daemon runs on, nothing is lost."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from daemon import config
from daemon.errors import StoreError
from daemon.lifecycle import Daemon as Engine
from daemon.status import build_snapshot
from daemon.store import State, open_store
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import receipt_pdf
from tests.helpers import read_json, service_sections, wait_for, write_config

MINERU = (
    service_sections("http://mock", docparse=False)
    + """
[[routes]]
service = "nanonets"
max_pages = 3
types = ["pdf"]

[[routes]]
service = "mineru"
"""
)


def engine_for(workdir: Path, mock: MockContext, **kwargs) -> Engine:  # type: ignore[no-untyped-def]
    settings = config.load(write_config(workdir, "http://mock", **kwargs))
    return Engine(
        settings, transport=httpx.ASGITransport(app=create_app(mock)), start_mock=False, fsync=False
    )


def run_once(workdir: Path, mock: MockContext, **kwargs) -> int:  # type: ignore[no-untyped-def]
    engine = engine_for(workdir, mock, **kwargs)
    try:
        return engine.run(once=True)
    finally:
        engine.close()


@pytest.mark.parametrize(
    "name",
    ["factura marzo 2026.pdf", "recibo_ñandú_€.pdf", "-rf.pdf", "領収書.pdf", "x" * 251 + ".pdf"],
)
def test_awkward_names_are_processed(workdir: Path, name: str) -> None:
    mock = MockContext()
    (workdir / "inbox" / name).write_bytes(receipt_pdf())
    assert run_once(workdir, mock) == 0
    stem = name[:-4]
    assert read_json(workdir / "outbox" / stem / "result.json")["source"]["name"] == name
    assert (workdir / "archive" / name).exists()


def one_big_page(path: Path, content_bytes: int, streams: int = 3) -> None:
    """A valid one-page PDF whose page itself weighs *content_bytes* (its content: whitespace
    in *streams* streams, each under pypdf's 75 MB limit on one stream), so no part
    holding that page can be smaller."""
    head = b"%PDF-1.4\n"
    contents = " ".join(f"{4 + i} 0 R" for i in range(streams)).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents [%s] >>" % contents,
    ]
    offsets = []
    each = content_bytes // streams
    chunk = b" " * (1 << 20)
    with path.open("wb") as fh:
        fh.write(head)
        for n, obj in enumerate(objects, 1):
            offsets.append(fh.tell())
            fh.write(b"%d 0 obj\n%s\nendobj\n" % (n, obj))
        for i in range(streams):
            offsets.append(fh.tell())
            fh.write(b"%d 0 obj\n<< /Length %d >>\nstream\n" % (4 + i, each))
            left = each
            while left:
                fh.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
            fh.write(b"\nendstream\nendobj\n")
        xref = fh.tell()
        fh.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1))
        for off in offsets:
            fh.write(b"%010d 00000 n \n" % off)
        fh.write(
            b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(offsets) + 1, xref)
        )


def test_over_the_services_limits(workdir: Path) -> None:
    """A PDF over MinerU's page limit goes in parts (issue 16); a single page over its
    byte limit cannot, and fails saying so, without a request."""
    mock = MockContext(speed=200.0)  # 200-page parts: 200 s of mock time pass in 1 s
    from mockserver.samples import pdf_bytes

    (workdir / "inbox" / "huge-book.pdf").write_bytes(pdf_bytes([["p"]] * 601))
    one_big_page(workdir / "inbox" / "giant.pdf", 201 * 1024 * 1024)
    only_mineru = MINERU.split("[[routes]]")[0] + '[[routes]]\nservice = "mineru"\n'
    assert run_once(workdir, mock, routes=only_mineru) == 1
    book = read_json(workdir / "outbox" / "huge-book" / "result.json")
    assert book["source"]["pages"] == 601
    assert [p["pages"] for p in book["source"]["parts"]] == [
        [1, 200],
        [201, 400],
        [401, 600],
        [601, 601],
    ]
    size = read_json(workdir / "failed" / "giant.pdf.error.json")
    assert size["error"] == "too_large" and "page 1 alone is 201 MB" in size["message"]
    assert "200 MB" in size["message"]
    assert (workdir / "failed" / "giant.pdf").stat().st_size > 201 * 1024 * 1024
    assert not any("giant" in e["path"] for e in mock.journal.entries())  # never sent


def test_a_dropped_folder_is_walked(workdir: Path) -> None:
    mock = MockContext()
    folder = workdir / "inbox" / "scans 2026" / "march"
    folder.mkdir(parents=True)
    (folder / "a.pdf").write_bytes(receipt_pdf(total="1.00"))
    (folder / "b.pdf").write_bytes(receipt_pdf(total="2.00"))
    assert run_once(workdir, mock) == 0
    assert sorted(p.name for p in (workdir / "outbox").iterdir()) == ["a", "b"]
    assert (workdir / "archive" / "scans 2026" / "march" / "a.pdf").exists()


def test_unreadable_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(As root permissions cannot stop a read, so the refusal is injected.)"""
    import daemon.admission as admission
    from daemon.errors import UnreadableDocument

    real = admission.sha256_of

    def sha(path: Path) -> tuple[str, int, int]:
        if Path(path).name == "locked.pdf":
            raise UnreadableDocument(
                "locked.pdf cannot be read: permission denied",
                hint="Give docinbox read permission on the file.",
            )
        return real(path)

    monkeypatch.setattr(admission, "sha256_of", sha)
    mock = MockContext()
    (workdir / "inbox" / "locked.pdf").write_bytes(receipt_pdf())
    (workdir / "inbox" / "fine.pdf").write_bytes(receipt_pdf(total="3.00"))
    assert run_once(workdir, mock) == 1
    err = read_json(workdir / "failed" / "locked.pdf.error.json")
    assert "cannot be read" in err["message"] and "permission" in err["hint"]
    assert (workdir / "outbox" / "fine" / "result.json").exists()


def test_file_deleted_before_it_is_sent(workdir: Path) -> None:
    mock = MockContext()
    # A 500 with a Retry-After: the document waits to be tried again (a 429 would not do:
    # the pacer sends it again itself, the document never waits for it).
    mock.faults.add(
        {"method": "POST", "path": ".*/LabelFile/", "status": 500, "retry_after": 3, "times": 1}
    )
    path = workdir / "inbox" / "gone.pdf"
    path.write_bytes(receipt_pdf())
    engine = engine_for(workdir, mock)
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(engine.run(once=True)))
    thread.start()
    try:
        wait_for(
            lambda: (
                engine.store is not None
                and engine.store.jobs()
                and engine.store.jobs()[0].error == "server_error"
            ),
            message="first try failed",
        )
        path.unlink()  # the user deletes it while docinbox waits to retry
    finally:
        thread.join(timeout=60)
        engine.close()
    assert code == [1]
    err = read_json(workdir / "failed" / "gone.pdf.error.json")
    assert err["error"] == "file_vanished"


def test_locked_database_is_a_clear_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import daemon.store.sqlite as jobs

    monkeypatch.setattr(jobs, "BUSY_SECONDS", 0.2)
    db = workdir / "state" / "docinbox.db"
    open_store(db).close()
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked by another program"):
            open_store(db)
    finally:
        holder.rollback()
        holder.close()


def test_quota_pauses_one_service_and_the_others_go_on(workdir: Path) -> None:
    mock = MockContext()
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    from mockserver.samples import multipage_pdf

    (workdir / "inbox" / "book.pdf").write_bytes(multipage_pdf(5))
    engine = engine_for(workdir, mock, routes=MINERU)  # builds the mock app
    mock.configure({"nanonets": {"free_quota": 0}})
    mock.clock.set_speed(100)
    thread = threading.Thread(target=engine.run)  # a running daemon, not --once
    thread.start()
    try:
        wait_for(
            lambda: engine.store is not None and engine.store.counts().get("done") == 1,
            message="book done",
            timeout=60,
        )
        snap = engine.control.snapshot()
        [health] = [s for s in snap.services if s.name == "nanonets"]
        assert health.condition == "paused" and health.error == "quota"
        assert health.until is not None  # probed again later on its own
        recibo = next(
            j
            for j in engine.store.jobs()  # type: ignore[union-attr]
            if j.rel_path == "recibo.pdf"
        )
        assert recibo.state is State.QUEUED and recibo.error == "quota"
        assert (workdir / "inbox" / "recibo.pdf").exists()
        # the user upgrades the plan and says retry: the service resumes
        mock.configure({"nanonets": {"free_quota": None}})
        engine.control.retry_failed()
        wait_for(
            lambda: engine.store.counts().get("done") == 2,  # type: ignore[union-attr]
            message="recibo done after retry",
            timeout=30,
        )
        services = build_snapshot(engine.store, 0).services  # type: ignore[arg-type]
        assert all(s.condition == "ok" for s in services), services
    finally:
        engine.stop()
        thread.join(timeout=30)
        engine.close()


def test_read_only_inbox_file_cannot_be_moved_yet_nothing_is_lost(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Archiving fails (EACCES linking into the archive): the result stays, the job waits,
    nothing is moved to failed/."""
    import errno

    import daemon.outbox.originals as originals

    real = os.link
    calls = {"n": 0}

    def link(src, dst, **kwargs):  # type: ignore[no-untyped-def]
        if "archive" in str(dst) and calls["n"] < 2:
            calls["n"] += 1
            raise OSError(errno.EACCES, "Permission denied")
        return real(src, dst, **kwargs)

    monkeypatch.setattr(originals.os, "link", link)
    mock = MockContext()
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock) == 0
    assert calls["n"] == 2
    assert [p.name for p in (workdir / "outbox").iterdir()] == ["recibo"]
    assert (workdir / "archive" / "recibo.pdf").exists()
