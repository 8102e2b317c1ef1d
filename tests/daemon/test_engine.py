"""The engine end to end in one process: real folders, the mock app through
httpx.ASGITransport (no sockets), ``run(once=True)``."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import config
from daemon.lifecycle import Daemon as Engine
from daemon.status import build_snapshot
from daemon.store import State, open_store
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import read_json, write_config


@pytest.fixture
def mock() -> MockContext:
    return MockContext()


def run_once(folder: Path, mock: MockContext, app: Any = None, **kwargs) -> tuple[int, Engine]:  # type: ignore[no-untyped-def]
    """``run --once`` in this process against the mock *app* (one made for *mock* if None:
    an app holds the services' state, so a test that talks to the mock first passes it)."""
    settings = config.load(write_config(folder, "http://mock", **kwargs))
    transport = httpx.ASGITransport(app=app or create_app(mock))
    engine = Engine(settings, transport=transport, start_mock=False, fsync=False)
    try:
        code = engine.run(once=True)
    finally:
        engine.close()
    return code, engine


def nanonets_uploads(mock: MockContext) -> list[dict]:
    return [
        e
        for e in mock.journal.entries()
        if e["method"] == "POST" and e["path"].endswith("/LabelFile/")
    ]


def test_receipt_comes_out_with_fields_and_is_archived(workdir: Path, mock: MockContext) -> None:
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    code, _ = run_once(workdir, mock)
    assert code == 0
    result = read_json(workdir / "outbox" / "recibo" / "result.json")
    assert result["service"] == "nanonets"
    assert result["source"]["name"] == "recibo.pdf" and result["source"]["pages"] == 1
    assert {f["label"]: f["text"] for f in result["fields"]} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    assert result["tables"][0]["label"] == "lineas_detalle"
    assert result["tables"][0]["rows"] == [["Gasoil", "50L"]]
    assert result["markdown"] == "document.md"
    assert "| fecha | 23/12/2025 |" in (workdir / "outbox/recibo/document.md").read_text()
    assert read_json(workdir / "outbox/recibo/raw/response.json")["message"] == "Success"
    assert (workdir / "archive" / "recibo.pdf").read_bytes() == receipt_pdf()
    assert not (workdir / "inbox" / "recibo.pdf").exists()
    store = open_store(workdir / "state" / "docinbox.db", readonly=True)
    assert build_snapshot(store, 0).counts == {"done": 1}


def test_bad_input_fails_clearly_and_the_rest_goes_on(workdir: Path, mock: MockContext) -> None:
    inbox = workdir / "inbox"
    (inbox / "empty.pdf").write_bytes(b"")
    (inbox / "notes.pdf").write_bytes(b"shopping list: milk\n")
    (inbox / "cut.pdf").write_bytes(receipt_pdf()[:300])
    (inbox / "good.pdf").write_bytes(receipt_pdf())
    code, _ = run_once(workdir, mock)
    assert code == 1  # a document failed
    failed = workdir / "failed"
    assert read_json(failed / "empty.pdf.error.json")["error"] == "empty_file"
    assert read_json(failed / "notes.pdf.error.json")["error"] == "unsupported_type"
    err = read_json(failed / "cut.pdf.error.json")
    assert err["error"] == "corrupt_document" and "cut.pdf" in err["message"]
    assert set(err) >= {"error", "message", "service", "attempts"}
    assert (failed / "cut.pdf").read_bytes() == receipt_pdf()[:300]  # nothing lost
    assert (workdir / "outbox" / "good" / "result.json").exists()
    assert len(nanonets_uploads(mock)) == 1  # bad files never reached the service


def test_transient_errors_are_retried(workdir: Path, mock: MockContext) -> None:
    mock.faults.add(
        {"method": "POST", "path": r"/api/v2/OCR/Model/.*/LabelFile/", "status": 503, "times": 2}
    )
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    code, _ = run_once(workdir, mock)
    assert code == 0
    assert [e["status"] for e in nanonets_uploads(mock)] == [503, 503, 200]
    doc = json.loads((workdir / "outbox/recibo/result.json").read_text())
    assert doc["fields"]


def test_retries_give_up_with_the_last_error(workdir: Path, mock: MockContext) -> None:
    mock.faults.add({"method": "POST", "path": r".*/LabelFile/", "fault": "html502"})
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    code, _ = run_once(workdir, mock, retry="max_attempts = 3")
    assert code == 1
    err = read_json(workdir / "failed" / "recibo.pdf.error.json")
    assert err["attempts"] == 3 and err["error"] in ("service_down", "malformed_response")
    assert len(nanonets_uploads(mock)) == 3


def test_bad_credentials_fail_at_once_in_once_mode(workdir: Path, mock: MockContext) -> None:
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    cfg = write_config(workdir, "http://mock")
    cfg.write_text(
        cfg.read_text().replace('api_key = "mock-nanonets-key"', 'api_key = "not-the-key"')
    )
    settings = config.load(cfg)
    engine = Engine(
        settings, transport=httpx.ASGITransport(app=create_app(mock)), start_mock=False, fsync=False
    )
    assert engine.run(once=True) == 1
    engine.close()
    err = read_json(workdir / "failed" / "recibo.pdf.error.json")
    assert err["error"] == "credentials" and "API key" in err["hint"]
    assert len(nanonets_uploads(mock)) == 1
    for written in (workdir / "failed" / "recibo.pdf.error.json", workdir / "state/docinbox.db"):
        assert b"not-the-key" not in written.read_bytes()  # no secret in files


def test_same_content_under_two_names_and_same_name_twice(workdir: Path, mock: MockContext) -> None:
    inbox = workdir / "inbox"
    (inbox / "a").mkdir()
    (inbox / "a" / "recibo.pdf").write_bytes(receipt_pdf())
    (inbox / "recibo.pdf").write_bytes(receipt_pdf(total="10.00"))
    assert run_once(workdir, mock)[0] == 0
    names = sorted(p.name for p in (workdir / "outbox").iterdir())
    assert names == ["recibo", "recibo (2)"]
    totals = sorted(
        read_json(workdir / "outbox" / n / "result.json")["fields"][1]["text"] for n in names
    )
    assert totals == ["10.00", "45.99"]
    assert (workdir / "archive" / "a" / "recibo.pdf").exists()


def test_restart_after_crash_mid_request_resubmits_once(workdir: Path, mock: MockContext) -> None:
    """A job left `submitting` (killed mid-request) is sent again: a synchronous API
    cannot be asked whether it got the first request."""
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    settings = config.load(write_config(workdir, "http://mock"))
    store = open_store(settings.folders.state)
    path = workdir / "inbox" / "recibo.pdf"
    st = path.stat()
    job = store.add(
        rel_path="recibo.pdf",
        location=str(path),
        sha256="0" * 64,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        kind="pdf",
        pages=1,
    )
    store.transition(job.id, State.QUEUED, State.SUBMITTING, service="nanonets", attempts=1)
    store.close()
    assert run_once(workdir, mock)[0] == 0
    assert len(nanonets_uploads(mock)) == 1
    assert [p.name for p in (workdir / "outbox").iterdir()] == ["recibo"]
    store = open_store(settings.folders.state)
    assert store.get(job.id).state is State.DONE
    assert "recovered" in (store.history(job.id)[2]["note"] or "")


def test_restart_after_crash_between_outbox_and_archive(workdir: Path, mock: MockContext) -> None:
    """The result was written but the original not yet archived: finish without a
    second outbox folder and without asking the service again."""
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock)[0] == 0
    settings = config.load(write_config(workdir, "http://mock"))
    store = open_store(settings.folders.state)
    [job] = store.jobs()
    # rewind: put the original back and the job in `received` with its raw output
    shutil.move(workdir / "archive" / "recibo.pdf", workdir / "inbox" / "recibo.pdf")
    raw = workdir / "state" / "work" / str(job.id) / "raw"
    shutil.copytree(workdir / "outbox" / "recibo" / "raw", raw)
    store._conn.execute(
        "UPDATE jobs SET state='received', location=? WHERE id=?",
        (str(workdir / "inbox" / "recibo.pdf"), job.id),
    )
    store._conn.commit()
    store.close()
    before = len(nanonets_uploads(mock))
    assert run_once(workdir, mock)[0] == 0
    assert len(nanonets_uploads(mock)) == before
    assert [p.name for p in (workdir / "outbox").iterdir()] == ["recibo"]
    assert (workdir / "archive" / "recibo.pdf").exists()


def test_symlink_out_of_the_inbox_is_refused(workdir: Path, mock: MockContext) -> None:
    secret = workdir / "secret.pdf"
    secret.write_bytes(receipt_pdf())
    (workdir / "inbox" / "link.pdf").symlink_to(secret)
    assert run_once(workdir, mock)[0] == 1
    assert read_json(workdir / "failed" / "link.pdf.error.json")["error"] == "unsupported_type"
    assert secret.exists()  # the target is never moved
    assert nanonets_uploads(mock) == []


def test_no_route_for_a_type(workdir: Path, mock: MockContext) -> None:
    (workdir / "inbox" / "book.pdf").write_bytes(multipage_pdf(5))
    code, _ = run_once(workdir, mock, routes='[[routes]]\nservice = "nanonets"\nmax_pages = 3\n')
    assert code == 1
    err = read_json(workdir / "failed" / "book.pdf.error.json")
    assert "no route" in err["message"] and "5-page" in err["message"]


def test_long_document_goes_async_and_is_polled(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import daemon.services.nanonets as nanonets

    monkeypatch.setattr(nanonets, "POLL_FIRST", 0.05)
    mock = MockContext(speed=200.0)  # 5 s queue + 2 s/page of mock time pass in ~0.1 s
    pages = [["Fecha: 01/02/2026", "Total: 12.00"]] + [[f"page {n}"] for n in range(2, 6)]
    from mockserver.samples import pdf_bytes

    (workdir / "inbox" / "long.pdf").write_bytes(pdf_bytes(pages))
    code, _ = run_once(workdir, mock)
    assert code == 0
    uploads = [e for e in mock.journal.entries() if e["path"].endswith("/LabelFile/")]
    assert [u["query"] for u in uploads] == ["async=true"]
    polls = [e for e in mock.journal.entries() if "/GetPredictions/" in e["path"]]
    assert polls and all(p["status"] == 200 for p in polls)
    result = read_json(workdir / "outbox" / "long" / "result.json")
    assert result["source"]["pages"] == 5
    assert {f["label"]: f["text"] for f in result["fields"]} == {
        "fecha": "01/02/2026",
        "total": "12.00",
    }
    raw = read_json(workdir / "outbox" / "long" / "raw" / "response.json")
    assert raw["unmoderated_images_count"] == 5  # the final prediction, untouched


def test_same_content_again_reuses_the_result(workdir: Path, mock: MockContext) -> None:
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock)[0] == 0
    (workdir / "inbox" / "copia.pdf").write_bytes(receipt_pdf())  # same bytes, other name
    assert run_once(workdir, mock)[0] == 0
    assert len(nanonets_uploads(mock)) == 1  # the service was asked once
    copy = read_json(workdir / "outbox" / "copia" / "result.json")
    original = read_json(workdir / "outbox" / "recibo" / "result.json")
    assert copy["source"]["name"] == "copia.pdf"
    assert copy["fields"] == original["fields"]
    assert copy["remote"]["request_file_id"] == original["remote"]["request_file_id"]


def test_duplicates_process_sends_again(workdir: Path, mock: MockContext) -> None:
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock, extra='[daemon]\nduplicates = "process"\n')[0] == 0
    (workdir / "inbox" / "copia.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock, extra='[daemon]\nduplicates = "process"\n')[0] == 0
    assert len(nanonets_uploads(mock)) == 2


def test_read_only_outbox_waits_and_loses_nothing(
    workdir: Path, mock: MockContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result cannot be written (EROFS): the document waits in `received`, the original
    stays in the inbox, and once the outbox is writable again it completes."""
    import errno
    import threading

    from daemon.outbox.writer import OutboxWriter
    from tests.helpers import wait_for

    read_only = threading.Event()
    read_only.set()
    real_write = OutboxWriter.write_many

    def write(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if read_only.is_set():
            raise OSError(errno.EROFS, "Read-only file system")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(OutboxWriter, "write_many", write)
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    settings = config.load(write_config(workdir, "http://mock", retry="max_attempts = 1"))
    engine = Engine(
        settings, transport=httpx.ASGITransport(app=create_app(mock)), start_mock=False, fsync=False
    )
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(engine.run(once=True)))
    thread.start()
    try:
        # more failed writes than max_attempts allows: a host error never fails a document
        wait_for(
            lambda: (
                engine.store is not None
                and len([h for h in engine.store.history(1) if h["note"] == "host error"]) >= 3
            ),
            message="repeated host errors",
        )
        job = engine.store.get(1)  # type: ignore[union-attr]
        assert job.state is State.RECEIVED and job.error == "host"
        assert (workdir / "inbox" / "recibo.pdf").exists()
        assert not (workdir / "failed").exists() or not list((workdir / "failed").iterdir())
    finally:
        read_only.clear()
        thread.join(timeout=60)
        engine.close()
    assert result == [0]
    assert (workdir / "outbox" / "recibo" / "result.json").exists()
    assert len(nanonets_uploads(mock)) == 1


def test_once_after_a_restart_reports_resumed_failures(workdir: Path, mock: MockContext) -> None:
    """A document queued by an earlier run that fails in this one makes --once exit 1."""
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    settings = config.load(write_config(workdir, "http://mock"))
    store = open_store(settings.folders.state)
    path = workdir / "inbox" / "recibo.pdf"
    st = path.stat()
    store.add(
        rel_path="recibo.pdf",
        location=str(path),
        sha256="0" * 64,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        kind="pdf",
        pages=1,
    )
    store.close()
    mock.faults.add({"path": ".*/LabelFile/", "status": 400})  # the service refuses it
    code, _engine = run_once(workdir, mock)
    assert code == 1
    assert read_json(workdir / "failed" / "recibo.pdf.error.json")["error"] == "rejected"


def test_control_snapshot_points_at_results_and_error_files(
    workdir: Path, mock: MockContext
) -> None:
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    (workdir / "inbox" / "cut.pdf").write_bytes(receipt_pdf()[:300])
    _code, engine = run_once(workdir, mock)
    store = open_store(workdir / "state" / "docinbox.db", readonly=True)
    engine.store = store
    recent = {d.name: d for d in engine.control.snapshot().recent}
    assert recent["recibo.pdf"].result_dir == workdir / "outbox" / "recibo"
    assert recent["cut.pdf"].result_dir is None
    assert recent["cut.pdf"].error_file == workdir / "failed" / "cut.pdf.error.json"
    assert recent["cut.pdf"].error_file.exists()


def test_a_crash_while_a_result_was_staged_loses_nothing_and_sends_nothing_again(
    workdir: Path, mock: MockContext
) -> None:
    """Killed after the service's output was moved into the outbox's temporary folder but
    before the rename: the restart puts it back and writes the result from it."""
    import sqlite3

    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    assert run_once(workdir, mock)[0] == 0
    # Rebuild the moment of the crash from the finished job: staged folder, job `received`,
    # original still in the inbox, no service output in the workdir.
    outbox = workdir / "outbox"
    (outbox / "recibo").rename(outbox / ".docinbox-tmp-1")
    (workdir / "archive" / "recibo.pdf").rename(workdir / "inbox" / "recibo.pdf")
    st = (workdir / "inbox" / "recibo.pdf").stat()
    db = sqlite3.connect(workdir / "state" / "docinbox.db")
    with db:
        db.execute(
            "UPDATE jobs SET state = 'received', location = ?, mtime_ns = ? WHERE id = 1",
            (str(workdir / "inbox" / "recibo.pdf"), st.st_mtime_ns),
        )
    db.close()
    code, _ = run_once(workdir, mock)
    assert code == 0
    assert read_json(outbox / "recibo" / "raw" / "response.json")["message"] == "Success"
    assert read_json(outbox / "recibo" / "result.json")["fields"]
    assert not list(outbox.glob(".docinbox-tmp-*"))
    assert (workdir / "archive" / "recibo.pdf").exists()
    assert len(nanonets_uploads(mock)) == 1


@pytest.mark.parametrize("damage", ["empty", "missing", "truncated"])
def test_a_stored_answer_lost_in_a_power_cut_is_fetched_again(
    workdir: Path, mock: MockContext, damage: str
) -> None:
    """`received`, but the raw answer on disk is empty, gone or cut short (a power cut
    before it reached the disk): fetched again from the service, not failed, not sent
    again."""
    import asyncio

    from mockserver import defaults

    settings = config.load(write_config(workdir, "http://mock"))
    app = create_app(mock)

    async def label() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
            return await client.post(
                f"/api/v2/OCR/Model/{defaults.NANONETS_MODEL_ID}/LabelFile/",
                auth=(defaults.NANONETS_API_KEY, ""),
                files={"file": ("recibo.pdf", receipt_pdf(), "application/pdf")},
            )

    answered = asyncio.run(label())
    file_id = answered.json()["result"][0]["request_file_id"]
    path = workdir / "inbox" / "recibo.pdf"
    path.write_bytes(receipt_pdf())
    st = path.stat()
    store = open_store(settings.folders.state)
    job = store.add(
        rel_path="recibo.pdf",
        location=str(path),
        sha256="0" * 64,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        kind="pdf",
        pages=1,
    )
    store.transition(job.id, State.QUEUED, State.SUBMITTING, service="nanonets", attempts=1)
    store.transition(
        job.id,
        State.SUBMITTING,
        State.RECEIVED,
        remote={"request_file_id": file_id, "model_id": defaults.NANONETS_MODEL_ID},
    )
    store.close()
    raw = workdir / "state" / "work" / str(job.id) / "raw"
    raw.mkdir(parents=True)
    if damage == "empty":
        (raw / "response.json").write_bytes(b"")
    elif damage == "truncated":
        (raw / "response.json").write_bytes(answered.content[: len(answered.content) // 2])
    uploads_before = len(nanonets_uploads(mock))

    assert run_once(workdir, mock, app)[0] == 0
    result = read_json(workdir / "outbox" / "recibo" / "result.json")
    assert {f["label"]: f["text"] for f in result["fields"]}["total"] == "45.99"
    assert len(nanonets_uploads(mock)) == uploads_before  # fetched, never sent again
    fetched = [e for e in mock.journal.entries() if e["method"] == "GET" and file_id in e["path"]]
    assert fetched


def test_what_a_step_acts_on_is_on_disk_first(
    workdir: Path, mock: MockContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits are not fsynced one by one (synchronous=NORMAL): before the request, the
    state that says it was sent has been made durable, and before the original leaves
    the inbox, the state that says the answer is stored (daemon/store/durable.py)."""
    from daemon.pipeline import finish
    from daemon.store.sqlite import SQLiteStore

    db = workdir / "state" / "docinbox.db"
    durable: dict[str, str] = {}  # each document's state as of the last fsync
    readers: dict[int, SQLiteStore] = {}
    real_sync = SQLiteStore.sync

    def sync(self: SQLiteStore) -> None:
        if self is readers.get(threading.get_ident()):
            return  # the reader's own close
        readers[threading.get_ident()] = reader = open_store(db, readonly=True)
        try:  # what the fsync is about to cover
            seen = {j.rel_path: str(j.state) for j in reader.jobs()}
        finally:
            reader.close()
        real_sync(self)
        durable.update(seen)

    monkeypatch.setattr(SQLiteStore, "sync", sync)
    seen_at_archive: list[str | None] = []
    archive = finish.archive_original

    def archive_original(*args: Any, **kwargs: Any) -> Any:
        seen_at_archive.append(durable.get("recibo.pdf"))
        return archive(*args, **kwargs)

    monkeypatch.setattr(finish, "archive_original", archive_original)
    seen_at_request: list[str | None] = []
    app = create_app(mock)

    async def service(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/LabelFile/"):
            seen_at_request.append(durable.get("recibo.pdf"))
        await app(scope, receive, send)

    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    code, _ = run_once(workdir, mock, app=service)
    assert code == 0 and seen_at_request == ["submitting"]
    assert seen_at_archive == ["received"]
    assert durable["recibo.pdf"] == "done"  # and the last state too, by the end


def test_a_bug_met_while_asking_a_service_is_recorded_on_the_documents(
    workdir: Path, mock: MockContext, caplog: pytest.LogCaptureFixture
) -> None:
    """Not a service's error, not hidden: the documents fail as ``internal`` with what
    happened, the log has the traceback, and the daemon goes on."""

    class Buggy(httpx.AsyncBaseTransport):
        def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
            self.inner = inner

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/LabelFile/"):
                raise RuntimeError("boom")
            return await self.inner.handle_async_request(request)

    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    settings = config.load(write_config(workdir, "http://mock", retry="max_attempts = 2"))
    transport = Buggy(httpx.ASGITransport(app=create_app(mock)))
    engine = Engine(settings, transport=transport, start_mock=False, fsync=False)
    try:
        assert engine.run(once=True) == 1
    finally:
        engine.close()
    err = read_json(workdir / "failed" / "recibo.pdf.error.json")
    assert err["error"] == "internal"
    assert "internal error while sending to nanonets: RuntimeError: boom" in err["message"]
    assert "unexpected error while sending to nanonets" in caplog.text
