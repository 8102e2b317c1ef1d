"""The MinerU v4 service against the mock: in-process (ASGI) for speed, the real server
where sockets matter (streamed PUT headers, truncated downloads, the mock fetching URLs)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.config import Secret
from daemon.errors import (
    CorruptDocument,
    CredentialsError,
    DocinboxError,
    DocumentTooLarge,
    EmptyDocument,
    MalformedResponse,
    QuotaExceeded,
    RemoteRejected,
    ServerError,
    TooManyPages,
    TransientError,
    UnsupportedDocument,
)
from daemon.servers.files import FileServer
from daemon.services import mineru as mineru_mod
from daemon.services import mineru_answers as answers
from daemon.services.base import (
    Accepted,
    Callbacks,
    Received,
    ServiceContext,
    SourceDocument,
    alone,
)
from daemon.services.mineru import Mineru, MineruSettings, data_id_for, remote_name
from daemon.services.mineru_result import normalize, parse_table_html, rewrite_links
from mockserver import defaults
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import running

RESULTS = "/api/v4/extract-results/batch/"


class Crash(Exception):
    """Stands for the daemon dying at a checkpoint."""


def settings(
    url: str = "http://mock", token: str = defaults.MINERU_TOKEN, uid: str = ""
) -> MineruSettings:
    return MineruSettings(
        name="mineru", base_url=url, credential=Secret(token, "inline"), timeout=10, uid=uid
    )


def make_doc(
    tmp_path: Path,
    job_id: int = 1,
    data: bytes | None = None,
    *,
    name: str = "recibo.pdf",
    kind: str = "pdf",
    remote: dict | None = None,
    options: dict | None = None,
    url: str | None = None,
    workdir: Path | None = None,
) -> SourceDocument:
    """A document whose work folder is ``tmp_path / "w"`` unless told otherwise."""
    data = receipt_pdf() if data is None else data
    path = tmp_path / f"in-{job_id}-{name}"
    path.write_bytes(data)
    return SourceDocument(
        job_id=job_id,
        path=path,
        name=name,
        kind=kind,
        pages=1,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        workdir=workdir or tmp_path / "w",
        options=options or {},
        url=url,
        remote=remote or {},
    )


def with_remote(doc: SourceDocument, remote: dict) -> SourceDocument:
    return SourceDocument(**{**doc.__dict__, "remote": dict(remote)})


class Store:
    """What the engine's checkpoint does: merge into the job's remote."""

    def __init__(self, crash_when: Any = None) -> None:
        self.remote: dict[int, dict] = {}
        self.calls: list[tuple[int, dict]] = []
        self.crash_when = crash_when

    def __call__(self, job_id: int, remote: Any) -> None:
        self.calls.append((job_id, dict(remote)))
        self.remote.setdefault(job_id, {}).update(remote)
        if self.crash_when is not None and self.crash_when(dict(remote)):
            raise Crash


@pytest.fixture
def ctx() -> Iterator[MockContext]:
    c = MockContext()
    yield c
    c.close()


@pytest.fixture
def app(ctx: MockContext):  # type: ignore[no-untyped-def]
    return create_app(ctx)


def service(app: Any, **kw: Any) -> Mineru:
    return Mineru(settings(**kw), ServiceContext(transport=httpx.ASGITransport(app=app)))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def on_server(url: str, method: str, *args: Any) -> Any:
    """One call on a fresh client (a socket pool must not outlive its event loop)."""
    m = Mineru(settings(url), ServiceContext())
    try:
        return await getattr(m, method)(*args)
    finally:
        await m.aclose()


def journal(ctx: MockContext, method: str | None = None, prefix: str = "") -> list[dict]:
    return [
        e
        for e in ctx.journal.entries()
        if (method is None or e["method"] == method) and e["path"].startswith(prefix)
    ]


async def poll_until_done(
    m: Mineru, ctx: MockContext, docs: list[SourceDocument], step: float = 5.0, rounds: int = 20
) -> dict[int, Any]:
    """Poll the batch (advancing the mock clock, never sleeping) until nothing is waiting."""
    current = {d.job_id: d for d in docs}
    final: dict[int, Any] = {}
    for _ in range(rounds):
        ctx.clock.advance(step)
        out = await m.poll(list(current.values()), Store())
        for job_id, o in out.items():
            if isinstance(o, Accepted):
                current[job_id] = with_remote(current[job_id], dict(o.remote))
            else:
                final[job_id] = o
                current.pop(job_id)
        if not current:
            return final
    raise AssertionError(f"still waiting: {list(current)}")


# ---------------------------------------------------------------------- pure helpers


def test_remote_name_carries_the_sniffed_kinds_suffix(tmp_path: Path) -> None:
    assert remote_name(make_doc(tmp_path, name="recibo.pdf")) == "recibo.pdf"
    assert remote_name(make_doc(tmp_path, name="foto.JPEG", kind="jpg")) == "foto.JPEG"
    assert remote_name(make_doc(tmp_path, name="scan", kind="jpg")) == "scan.jpg"
    assert remote_name(make_doc(tmp_path, name="informe.txt", kind="pdf")) == "informe.pdf"


def test_data_id_is_stable_and_valid(tmp_path: Path) -> None:
    doc = make_doc(tmp_path, job_id=42)
    assert data_id_for(doc) == data_id_for(make_doc(tmp_path, job_id=42))
    assert data_id_for(doc).startswith("docinbox-42-")
    assert all(c.isalnum() or c in "_-." for c in data_id_for(doc))


def test_batch_key_groups_batch_level_options_only(tmp_path: Path, app: Any) -> None:
    m = service(app)
    a = make_doc(tmp_path, 1, options={"language": "en", "is_ocr": True})
    b = make_doc(tmp_path, 2, options={"language": "en", "page_ranges": "1-2"})
    c = make_doc(tmp_path, 3, options={"language": "ch"})
    link = make_doc(tmp_path, 4, url="https://example.com/a.pdf")
    assert (
        m.batch_key("pdf", a.options)
        == m.batch_key("pdf", b.options)
        != m.batch_key("pdf", c.options)
    )
    assert m.batch_key("link", link.options) is None
    before = m.batch_key("pdf", a.options)
    pushed = Mineru(
        settings(uid="uid-1"),
        ServiceContext(
            transport=httpx.ASGITransport(app=app),
            callbacks=Callbacks("https://me.example/callbacks", "seed_1"),
        ),
    )
    assert pushed.batch_key("pdf", a.options) != before
    assert m.kinds >= {"pdf", "doc", "docx", "ppt", "pptx", "png", "jpg", "link"}
    # mineru.net today: 200 pages per file, 50 files per batch request (settings)
    assert (m.max_bytes, m.max_pages, m.batch_limit) == (200 * 1024 * 1024, 200, 50)


# ---------------------------------------------------------------------- the happy path


def test_batch_upload_checkpoints_before_put_and_polls_once_per_batch(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    m = service(app)
    docs = [
        make_doc(tmp_path, i, multipage_pdf(2) if i == 2 else None, workdir=tmp_path / f"w{i}")
        for i in (1, 2, 3)
    ]
    puts_seen_at_checkpoint: list[int] = []

    def checkpoint(job_id: int, remote: Any) -> None:
        store(job_id, remote)
        if remote.get("uploaded") is False:
            puts_seen_at_checkpoint.append(len(journal(ctx, "PUT")))

    store = Store()
    out = run(m.submit(docs, checkpoint))
    assert all(isinstance(o, Accepted) for o in out.values()), out
    assert puts_seen_at_checkpoint == [0, 0, 0]  # every id stored before the first PUT
    assert len(journal(ctx, "POST", "/api/v4/file-urls/batch")) == 1
    assert len(journal(ctx, "PUT")) == 3
    batch_ids = {o.remote["batch_id"] for o in out.values()}
    assert len(batch_ids) == 1
    assert all(store.remote[d.job_id]["uploaded"] is True for d in docs)
    assert all(m.poll_key(o.remote) == batch_ids.copy().pop() for o in out.values())

    accepted = [with_remote(d, out[d.job_id].remote) for d in docs]
    polls_before = len(journal(ctx, "GET", RESULTS))
    rounds = 0

    async def go() -> dict[int, Any]:
        nonlocal rounds
        current = {d.job_id: d for d in accepted}
        final: dict[int, Any] = {}
        while current:
            rounds += 1
            ctx.clock.advance(2)
            res = await m.poll(list(current.values()), Store())
            for job_id, o in res.items():
                if isinstance(o, Accepted):
                    current[job_id] = with_remote(current[job_id], dict(o.remote))
                else:
                    final[job_id] = o
                    del current[job_id]
        return final

    final = run(go())
    assert all(isinstance(o, Received) for o in final.values()), final
    assert len(journal(ctx, "GET", RESULTS)) - polls_before == rounds  # ONE GET per poll
    raw = tmp_path / "w1" / "raw"
    assert (raw / "full.md").is_file()
    assert not (tmp_path / "w1" / "result.zip").exists()
    result = m.normalize(raw, with_remote(docs[0], dict(final[1].remote)))
    assert "Fecha: 23/12/2025" in result.markdown
    assert result.fields == [] and result.remote["batch_id"] in batch_ids
    run(m.aclose())


def test_adaptive_interval_backs_off_then_resets_on_progress(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    ctx.configure({"mineru": {"queue_seconds": 1000}})
    m = service(app)
    doc = make_doc(tmp_path)
    out = run(m.submit([doc], Store()))[1]
    current = with_remote(doc, dict(out.remote))
    intervals = []
    for _ in range(8):
        o = run(m.poll([current], Store()))[1]
        assert isinstance(o, Accepted)
        intervals.append(o.poll_after)
        current = with_remote(current, dict(o.remote))
    assert intervals[0] == answers.POLL_MIN
    assert intervals == sorted(intervals) and intervals[-1] == answers.POLL_MAX
    assert intervals[2] > intervals[1] > intervals[0]
    ctx.clock.advance(1000.2)  # pending → running: the batch moved
    o = run(m.poll([current], Store()))[1]
    assert isinstance(o, Accepted) and o.poll_after == answers.POLL_MIN


# ---------------------------------------------------------------------- uploads over sockets


def test_streamed_put_sends_no_content_type(tmp_path: Path, mock_server: Any) -> None:
    data = multipage_pdf(3)
    doc = make_doc(tmp_path, data=data)
    out = run(on_server(mock_server.url, "submit", [doc], Store()))[1]
    assert isinstance(out, Accepted), out
    puts = journal(mock_server.ctx, "PUT")
    assert len(puts) == 1 and puts[0]["status"] == 200
    headers = {k.lower(): v for k, v in dict(puts[0]["headers"]).items()}
    assert "content-type" not in headers
    assert headers["content-length"] == str(len(data))
    assert "authorization" not in headers  # the token never goes to the storage host
    uploaded = [t for t in mock_server.ctx.ledger.entries("mineru")]
    assert uploaded and uploaded[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_upload_is_streamed_in_chunks(tmp_path: Path) -> None:
    """The PUT body is an async iterator of ≤ 1 MiB pieces, never the whole file."""
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * (3 * mineru_mod.UPLOAD_CHUNK + 5))

    async def sizes() -> list[int]:
        with path.open("rb") as fh:
            return [len(c) async for c in mineru_mod._file_chunks(fh)]

    assert run(sizes()) == [mineru_mod.UPLOAD_CHUNK] * 3 + [5]


def test_expired_upload_url_gets_a_new_one_next_time(tmp_path: Path, mock_server: Any) -> None:
    ctx = mock_server.ctx
    doc = make_doc(tmp_path)
    store = Store(crash_when=lambda r: r.get("uploaded") is False)
    with pytest.raises(Crash):
        run(on_server(mock_server.url, "submit", [doc], store))
    assert journal(ctx, "PUT") == []
    ctx.clock.advance(25 * 3600)  # the mock's URL is dead; our clock does not know

    store.crash_when = None
    first = run(on_server(mock_server.url, "submit", [with_remote(doc, store.remote[1])], store))
    err = first[1]
    assert isinstance(err, TransientError) and err.retryable
    assert err.remote_code == "AccessDenied" and err.resubmit is True
    assert store.remote[1]["upload_url"] is None and store.remote[1]["batch_id"] is None

    second = run(on_server(mock_server.url, "submit", [with_remote(doc, store.remote[1])], store))[
        1
    ]
    assert isinstance(second, Accepted), second
    assert len(journal(ctx, "POST", "/api/v4/file-urls/batch")) == 2
    assert [p["status"] for p in journal(ctx, "PUT")] == [403, 200]


def test_url_past_its_local_validity_is_not_even_tried(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    clock = FakeClock(ctx.clock.now())
    doc = make_doc(tmp_path)
    store = Store(crash_when=lambda r: r.get("uploaded") is False)
    m = Mineru(settings(), ServiceContext(transport=httpx.ASGITransport(app=app), clock=clock))
    with pytest.raises(Crash):
        run(m.submit([doc], store))
    old_url = store.remote[1]["upload_url"]
    clock.advance(23.5 * 3600)  # within 24 h, but inside the safety margin
    store.crash_when = None
    out = run(m.submit([with_remote(doc, store.remote[1])], store))
    assert isinstance(out[1], Accepted)
    puts = journal(ctx, "PUT")
    assert len(puts) == 1 and puts[0]["path"] not in old_url
    assert len(journal(ctx, "POST", "/api/v4/file-urls/batch")) == 2


def test_re_put_after_a_crash_reuses_the_valid_url(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    doc = make_doc(tmp_path)
    store = Store(crash_when=lambda r: r.get("uploaded") is False)
    with pytest.raises(Crash):
        run(service(app).submit([doc], store))
    store.crash_when = None
    fresh = service(app)  # a restarted daemon
    resumed = with_remote(doc, store.remote[1])
    assert fresh.resubmit_after_crash(resumed)
    out = run(fresh.submit([resumed], store))[1]
    assert isinstance(out, Accepted)
    assert len(journal(ctx, "POST", "/api/v4/file-urls/batch")) == 1  # no new task
    assert [p["status"] for p in journal(ctx, "PUT")] == [200]
    assert out.remote["batch_id"] == store.remote[1]["batch_id"]
    final = run(poll_until_done(fresh, ctx, [with_remote(doc, dict(out.remote))]))
    assert isinstance(final[1], Received)


def test_already_uploaded_after_a_crash_costs_no_request(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    remote = {
        "batch_id": "b-1",
        "data_id": "docinbox-1-x",
        "uploaded": True,
        "upload_url": None,
        "url_issued_at": 1.0,
    }
    out = run(service(app).submit([make_doc(tmp_path, remote=remote)], Store()))[1]
    assert isinstance(out, Accepted) and out.remote["batch_id"] == "b-1"
    assert journal(ctx) == []


# ---------------------------------------------------------------------- errors


class FirstAnswers(httpx.AsyncBaseTransport):
    """Answer the first requests matching *path_part* with canned JSON, then delegate."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, path_part: str, bodies: list[dict], status: int = 200
    ) -> None:
        self.inner, self.path_part, self.bodies, self.status = inner, path_part, bodies, status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.path_part in request.url.path and self.bodies:
            return httpx.Response(self.status, json=self.bodies.pop(0))
        return await self.inner.handle_async_request(request)


def test_task_not_found_right_after_upload_is_transient(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    clock = FakeClock(ctx.clock.now())
    lost = {"code": -60012, "data": None, "msg": "找不到任务", "trace_id": "t"}
    transport = FirstAnswers(httpx.ASGITransport(app=app), RESULTS, [lost, lost])
    m = Mineru(settings(), ServiceContext(transport=transport, clock=clock))
    doc = make_doc(tmp_path)
    out = run(m.submit([doc], Store()))[1]
    current = with_remote(doc, dict(out.remote))
    again = run(m.poll([current], Store()))[1]
    assert isinstance(again, Accepted)  # not yet visible: keep polling
    clock.advance(mineru_mod.NOT_FOUND_GRACE + 1)
    late = run(m.poll([current], Store()))[1]
    assert isinstance(late, RemoteRejected) and late.remote_code == "-60012"
    final = run(poll_until_done(m, ctx, [current]))
    assert isinstance(final[1], Received)


def test_failed_task_maps_its_message(tmp_path: Path, ctx: MockContext, app: Any) -> None:
    m = service(app)
    doc = make_doc(tmp_path, data=b"%PDF-1.4\n garbage that is no pdf at all")
    out = run(m.submit([doc], Store()))[1]
    final = run(poll_until_done(m, ctx, [with_remote(doc, dict(out.remote))]))
    assert isinstance(final[1], CorruptDocument), final
    assert not final[1].retryable


def quota_failed_task(tmp_path: Path, ctx: MockContext, app: Any) -> tuple[Any, Store]:
    """A batch whose task fails remotely with -60018 (the day's tasks used up; the code
    alone, err_msg empty, as the SDKs' convention has it): the error polling returns,
    and what was checkpointed."""
    ctx.configure(
        {"mineru": {"fail_tasks": {"*": -60018}, "err_msg_language": "zh", "err_code": True}}
    )
    m = service(app)
    doc = make_doc(tmp_path)
    out = run(m.submit([doc], Store()))[1]
    store = Store()

    async def go() -> Any:
        current = with_remote(doc, dict(out.remote))
        for _ in range(10):
            ctx.clock.advance(5)
            o = (await m.poll([current], store))[1]
            if not isinstance(o, Accepted):
                return o
            current = with_remote(current, dict(o.remote))
        return None

    return run(go()), store


def test_daily_quota_used_up_is_quota_with_retry_after(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    err, store = quota_failed_task(tmp_path, ctx, app)
    assert isinstance(err, QuotaExceeded) and err.scope == "service"
    assert err.retry_after is not None and 60 <= err.retry_after <= 86400
    assert store.remote[1]["batch_id"] is None  # the failed task is forgotten


def test_daily_quota_used_up_task_is_resubmitted(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    err, store = quota_failed_task(tmp_path, ctx, app)
    assert isinstance(err, QuotaExceeded) and store.remote[1]["batch_id"] is None
    assert err.resubmit is True


@pytest.mark.parametrize(
    ("token", "code"), [("wrong-token", "A0202"), ("mock-mineru-token-expired", "A0211")]
)
def test_bad_token_is_credentials_error(tmp_path: Path, app: Any, token: str, code: str) -> None:
    out = run(service(app, token=token).submit([make_doc(tmp_path)], Store()))[1]
    assert isinstance(out, CredentialsError) and out.remote_code == code
    assert out.status == 401
    assert "wrong-token" not in str(out)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-60009, ServerError),
        (-10001, ServerError),
        (-60007, ServerError),
        (-60017, RemoteRejected),  # "retry limit reached": the document's, not a quota
        (-60018, QuotaExceeded),
        (-60019, QuotaExceeded),
        (-60020, ServerError),
        (-60021, ServerError),
        (-60022, ServerError),
        (-60005, DocumentTooLarge),
        (-500, RemoteRejected),
        (-10002, RemoteRejected),
        (-60015, RemoteRejected),
    ],
)
def test_business_codes_map_to_docinbox_errors(tmp_path: Path, code: int, cls: type) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": code, "data": None, "msg": "x", "trace_id": "t"})

    m = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    out = run(m.submit([make_doc(tmp_path)], Store()))[1]
    assert type(out) is cls, out
    assert isinstance(out, DocinboxError)


def test_truncated_zip_download_is_malformed_then_recovers(
    tmp_path: Path, mock_server: Any
) -> None:
    ctx = mock_server.ctx
    doc = make_doc(tmp_path)
    out = run(on_server(mock_server.url, "submit", [doc], Store()))[1]
    ctx.faults.add({"path": "/__cdn/mineru/.*", "fault": "truncate", "times": 1})
    ctx.clock.advance(30)
    current = with_remote(doc, dict(out.remote))
    bad = run(on_server(mock_server.url, "poll", [current], Store()))[1]
    assert isinstance(bad, MalformedResponse) and bad.retryable, bad
    assert not (tmp_path / "w" / "raw").exists()
    good = run(on_server(mock_server.url, "poll", [current], Store()))[1]
    assert isinstance(good, Received)
    assert (tmp_path / "w" / "raw" / "full.md").is_file()


def test_expired_zip_link_is_retryable_and_next_poll_fetches_again(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    m = service(app)
    doc = make_doc(tmp_path)
    out = run(m.submit([doc], Store()))[1]
    ctx.faults.add({"path": "/__cdn/mineru/.*", "fault": "expire", "times": 1})
    ctx.clock.advance(30)
    current = with_remote(doc, dict(out.remote))
    err = run(m.poll([current], Store()))[1]
    assert isinstance(err, TransientError) and err.remote_code == "AccessDenied"
    polls = len(journal(ctx, "GET", RESULTS))
    good = run(m.poll([current], Store()))[1]
    assert isinstance(good, Received)
    assert len(journal(ctx, "GET", RESULTS)) == polls + 1  # a fresh full_zip_url was asked


# ---------------------------------------------------------------------- links and callbacks


def test_link_task_end_to_end(tmp_path: Path, mock_server: Any) -> None:
    """The mock really fetches the link, here from the daemon's file server running on the
    same event loop as the service."""
    source = tmp_path / "remote.pdf"
    source.write_bytes(receipt_pdf())
    served: list[int] = []

    async def go() -> tuple[Mineru, SourceDocument, Accepted, Any]:
        files = FileServer("127.0.0.1:0", None, b"k" * 32, lambda j: source, on_fetch=served.append)
        async with running(files):
            url = files.url_for(5, "remote.pdf", ttl=600)
            m = Mineru(settings(mock_server.url), ServiceContext())
            try:
                doc = make_doc(tmp_path, 5, url=url, kind="link", name="remote.url")
                assert m.batch_key("link", doc.options) is None
                out = await alone(m.submit, doc)
                assert isinstance(out, Accepted) and out.remote["task_id"]
                assert m.poll_key(out.remote) is None
                current = with_remote(doc, dict(out.remote))
                result: Any = None
                for _ in range(10):
                    mock_server.ctx.clock.advance(5)
                    result = await alone(m.poll, current)
                    if isinstance(result, Received):
                        break
                    current = with_remote(current, dict(result.remote))
                return m, current, out, result
            finally:
                await m.aclose()

    m, current, out, result = run(go())
    assert served == [5]  # the mock fetched the document from the file server
    assert isinstance(result, Received) and result.remote["task_id"] == out.remote["task_id"]
    assert "Fecha" in m.normalize(tmp_path / "w" / "raw", current).markdown


def test_callback_and_seed_are_sent_when_configured(tmp_path: Path) -> None:
    """Only with the account's uid: MinerU signs its pushes with it, so without it no push
    could be verified and none is asked for."""
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"code": 0, "data": {"task_id": "t-9"}, "msg": "ok"})

    callbacks = Callbacks("https://me.example/callbacks", "seed_1")
    plain = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    no_uid = Mineru(
        settings(), ServiceContext(transport=httpx.MockTransport(handler), callbacks=callbacks)
    )
    pushed = Mineru(
        settings(uid="uid-1"),
        ServiceContext(transport=httpx.MockTransport(handler), callbacks=callbacks),
    )
    doc = make_doc(
        tmp_path,
        url="https://example.com/a.pdf",
        kind="link",
        options={"is_ocr": True, "language": "en", "page_ranges": "1-3"},
    )
    for m in (plain, no_uid, pushed):
        assert isinstance(run(alone(m.submit, doc)), Accepted)
    assert "callback" not in bodies[0] and "seed" not in bodies[0]
    assert "callback" not in bodies[1] and "seed" not in bodies[1]
    assert bodies[2]["callback"] == "https://me.example/callbacks/mineru"
    assert bodies[2]["seed"] == "seed_1"
    assert bodies[2]["is_ocr"] is True and bodies[2]["page_ranges"] == "1-3"
    assert bodies[2]["data_id"] == data_id_for(doc)


def _push(content: str, uid: str = "uid-1", seed: str = "seed_1") -> dict[str, str]:
    """A callback as MinerU sends it (seed 002): checksum = sha256(uid + seed + content)."""
    return {
        "checksum": hashlib.sha256((uid + seed + content).encode()).hexdigest(),
        "content": content,
    }


def test_callback_ids_verifies_the_push_and_names_its_ids() -> None:
    callbacks = Callbacks("https://me.example/callbacks", "seed_1")
    m = Mineru(settings(uid="uid-1"), ServiceContext(callbacks=callbacks))
    content = json.dumps({"task_id": "t-1", "data_id": "docinbox-1-ab", "state": "done"})
    assert m.callback_ids(_push(content)) == {"task_id": "t-1", "data_id": "docinbox-1-ab"}
    assert m.callback_ids(_push(json.dumps({"batch_id": "b-1"}))) == {"batch_id": "b-1"}
    assert m.callback_ids(_push(json.dumps({"taskId": "t-2", "dataId": "d"}))) == {
        "task_id": "t-2",
        "data_id": "d",
    }
    assert m.callback_ids(_push(content, seed="seed_2")) is None
    assert m.callback_ids(_push(content, uid="uid-2")) is None
    assert m.callback_ids({**_push(content), "content": content + " "}) is None
    assert m.callback_ids(_push("not json")) is None
    assert m.callback_ids(_push('["t-1"]')) is None
    assert m.callback_ids({"checksum": 1, "content": content}) is None
    assert m.callback_ids({"content": content}) is None
    # without callbacks configured (or without the uid) no push is genuine
    assert Mineru(settings(uid="uid-1"), ServiceContext()).callback_ids(_push(content)) is None
    assert (
        Mineru(settings(), ServiceContext(callbacks=callbacks)).callback_ids(_push(content, uid=""))
        is None
    )
    run(m.aclose())


def test_callback_ids_refuses_signed_content_nested_too_deep() -> None:
    m = Mineru(
        settings(uid="uid-1"),
        ServiceContext(callbacks=Callbacks("https://me.example/callbacks", "seed_1")),
    )
    try:
        assert m.callback_ids(_push("[" * 100_000)) is None
    finally:
        run(m.aclose())


# ---------------------------------------------------------------------- normalizing


def test_normalize_tables_and_image_links(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "full.md").write_text(
        '# T\n\n![](images/a.jpg)\n\n<img src="images/b.png">\n[site](https://x.example/y)\n'
    )
    table = (
        "<table><tr><td>descripcion</td><td>cantidad</td></tr>"
        "<tr><td>Gasoil</td><td>50L</td></tr>"
        '<tr><td colspan="2">Total &amp; more</td></tr></table>'
    )
    (raw / "abc_content_list.json").write_text(
        json.dumps(
            [
                {"type": "text", "text": "T", "page_idx": 0},
                {"type": "table", "table_body": table, "table_caption": ["Líneas"], "page_idx": 1},
                {
                    "type": "table",
                    "table_body": "<table><tr><th>a</th></tr></table>",
                    "page_idx": 2,
                },
            ]
        )
    )
    n = normalize(raw, {"batch_id": "b"})
    assert "![](raw/images/a.jpg)" in n.markdown
    assert '<img src="raw/images/b.png">' in n.markdown
    assert "(https://x.example/y)" in n.markdown
    assert n.tables[0] == {
        "label": "Líneas",
        "page": 1,
        "columns": ["descripcion", "cantidad"],
        "rows": [["Gasoil", "50L"], ["Total & more", "Total & more"]],
    }
    assert n.tables[1]["label"] == "table_2" and n.tables[1]["columns"] == ["a"]
    assert n.fields == [] and n.remote == {"batch_id": "b"}


def test_table_rowspan_is_carried_down() -> None:
    cols, rows = parse_table_html(
        "<table><tr><td rowspan=2>A</td><td>b1</td></tr><tr><td>b2</td></tr></table>"
    )
    assert cols == ["A", "b1"] and rows == [["A", "b2"]]


def test_rewrite_links_leaves_absolute_and_already_prefixed_targets() -> None:
    assert (
        rewrite_links("![](raw/images/a.jpg) ![](/abs.png) ![](#x)", "raw")
        == "![](raw/images/a.jpg) ![](/abs.png) ![](#x)"
    )


# ---------------------------------------------------------------------- real-world fidelity
# (issue 15: what mineru.net does beyond seed 002; sources in mockserver/mineru/__init__.py)


def test_limits_are_settings_with_the_safe_defaults() -> None:
    """mineru.net/apiManage/docs: 200 pages per file, 50 links per batch request."""
    m = Mineru(settings(), ServiceContext())
    assert (m.max_pages, m.batch_limit) == (200, 50)
    own = MineruSettings(
        name="mineru",
        base_url="http://x",
        credential=Secret("t", "inline"),
        max_pages_per_file=600,
        max_files_per_batch=200,
    )
    assert (Mineru(own, ServiceContext()).max_pages, Mineru(own, ServiceContext()).batch_limit) == (
        600,
        200,
    )
    run(m.aclose())


def settings_with(**kw: Any) -> MineruSettings:
    return MineruSettings(
        name="mineru",
        base_url="http://mock",
        credential=Secret(defaults.MINERU_TOKEN, "inline"),
        timeout=10,
        **kw,
    )


def test_a_batch_too_big_for_the_service_is_split_and_sent_again(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    """The user raised max_files_per_batch to the comparison table's 200; the service
    takes 50 a request: the 60 go out as 50 + 10, none fails, later batches use 50."""
    m = Mineru(
        settings_with(max_files_per_batch=200),
        ServiceContext(transport=httpx.ASGITransport(app=app)),
    )
    assert m.batch_limit == 200
    docs = [make_doc(tmp_path, i, workdir=tmp_path / f"w{i}") for i in range(1, 61)]
    out = run(m.submit(docs, Store()))
    assert all(isinstance(o, Accepted) for o in out.values()), out
    statuses = [e["status"] for e in journal(ctx, "POST", "/api/v4/file-urls/batch")]
    assert statuses == [400, 200, 200]  # refused (HTTP 400, MinerU#1826), then 50 + 10
    batches: dict[str, int] = {}
    for o in out.values():
        batches[o.remote["batch_id"]] = batches.get(o.remote["batch_id"], 0) + 1
    assert sorted(batches.values()) == [10, 50]
    assert m.batch_limit == 50  # the size the service named, for the batches to come
    run(m.aclose())


def test_a_size_refusal_that_names_no_size_is_halved(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    refusal = {"code": -10002, "data": None, "msg": "请求参数错误", "trace_id": "t"}
    transport = FirstAnswers(httpx.ASGITransport(app=app), "/file-urls/batch", [refusal])
    m = Mineru(settings_with(max_files_per_batch=200), ServiceContext(transport=transport))
    docs = [make_doc(tmp_path, i, workdir=tmp_path / f"w{i}") for i in range(1, 9)]
    out = run(m.submit(docs, Store()))
    assert all(isinstance(o, Accepted) for o in out.values()), out
    assert len({o.remote["batch_id"] for o in out.values()}) == 2  # 4 + 4
    assert m.batch_limit == 200  # nothing learnt from a guess
    run(m.aclose())


def test_a_batch_refused_for_another_reason_fails_its_documents(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"code": -60009, "data": None, "msg": "queue full"})

    m = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    docs = [make_doc(tmp_path, i) for i in (1, 2, 3)]
    out = run(m.submit(docs, Store()))
    assert all(isinstance(o, ServerError) for o in out.values())


def test_http_400_with_a_bilingual_msg_object(tmp_path: Path) -> None:
    """opendatalab/MinerU#1826: 400 {"code":-500,"msg":{"en":…,"zh":…}}."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            400,
            json={
                "code": -500,
                "msg": {
                    "en": "Service error, please retry or contact support",
                    "zh": "服务出错，请重试或联系支持",
                },
            },
        )

    m = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    doc = make_doc(tmp_path, url="https://example.com/a.pdf", kind="link")
    out = run(m.submit([doc], Store()))[1]
    assert isinstance(out, RemoteRejected) and out.remote_code == "-500" and out.status == 400
    assert "Service error, please retry or contact support" in out.message
    assert "{'en'" not in out.message


def test_auth_failure_without_a_code_field(tmp_path: Path) -> None:
    """opendatalab/MinerU#5133: HTTP 401 {"msgCode":"A0202","msg":"user authenticate failed"}."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"msgCode": "A0202", "msg": "user authenticate failed"})

    m = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    out = run(m.submit([make_doc(tmp_path)], Store()))[1]
    assert isinstance(out, CredentialsError) and out.remote_code == "A0202"
    assert "user authenticate failed" in out.message


def test_daily_task_quota_at_submission_waits_for_midnight_in_beijing(
    tmp_path: Path, ctx: MockContext, app: Any
) -> None:
    ctx.configure({"mineru": {"files_per_day": 1}})
    clock = FakeClock(1_767_225_600.0 + 10 * 3600)  # 2026-01-01 10:00 UTC = 18:00 in Beijing
    m = Mineru(settings(), ServiceContext(transport=httpx.ASGITransport(app=app), clock=clock))
    run(m.submit([make_doc(tmp_path, 1)], Store()))
    err = run(m.submit([make_doc(tmp_path, 2)], Store()))[2]
    assert isinstance(err, QuotaExceeded) and err.remote_code == "-60018"
    assert err.scope == "service" and err.retry_after == 6 * 3600
    assert "Beijing" in err.hint
    run(m.aclose())


def failed_task(
    tmp_path: Path, ctx: MockContext, app: Any, code: int, **config: Any
) -> DocinboxError:
    """A task that the service fails with *code* (``fail_tasks``), as polling reports it."""
    ctx.configure({"mineru": {"fail_tasks": {"*": code}, **config}})
    m = service(app)
    doc = make_doc(tmp_path)
    out = run(m.submit([doc], Store()))[1]
    final = run(poll_until_done(m, ctx, [with_remote(doc, dict(out.remote))]))[1]
    assert isinstance(final, DocinboxError), final
    return final


@pytest.mark.parametrize(
    "config",
    [
        {},  # mineru.net today: English err_msg, err_code empty for this code (CLI log)
        {"err_code_blank_for": []},  # with err_code
        {"err_msg_language": "zh", "err_code": False},  # the docs' Chinese, no err_code
    ],
    ids=["english-no-code", "english-code", "chinese-no-code"],
)
def test_retry_limit_is_the_documents_failure_not_a_quota(
    tmp_path: Path, ctx: MockContext, app: Any, config: dict
) -> None:
    """-60017 on MinerU is "retry limit reached" (mineru.net/apiManage/docs): today's
    code paused the whole service for a quota."""
    err = failed_task(tmp_path, ctx, app, -60017, **config)
    assert type(err) is RemoteRejected and err.scope == "document" and not err.retryable
    assert err.remote_code == "-60017"
    assert "Replace it" in err.hint


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (-60006, TooManyPages),
        (-60003, CorruptDocument),
        (-60004, EmptyDocument),
        (-60002, UnsupportedDocument),
        (-60010, ServerError),
        (-60020, ServerError),
        (-60021, ServerError),
        (-60022, ServerError),
        (-60018, QuotaExceeded),
        (-60019, QuotaExceeded),
    ],
)
@pytest.mark.parametrize(
    "config",
    [
        {"err_code_blank_for": []},
        {"err_code": False},
        {"err_code": False, "err_msg_language": "zh"},
    ],
    ids=["code", "english-message", "chinese-message"],
)
def test_failed_tasks_by_code_then_message_in_either_language(
    tmp_path: Path, ctx: MockContext, app: Any, code: int, cls: type, config: dict
) -> None:
    err = failed_task(tmp_path, ctx, app, code, **config)
    assert type(err) is cls, err
    if err.retryable and not isinstance(err, QuotaExceeded):
        assert isinstance(err, ServerError) and err.resubmit  # a new task next time


@pytest.mark.parametrize(
    ("err_code", "cls"),
    [("-60006", TooManyPages), (-60006, TooManyPages), ("", ServerError), (None, ServerError)],
)
def test_the_code_wins_over_the_message(tmp_path: Path, err_code: Any, cls: type) -> None:
    """All official SDKs read err_code (int or string); empty means none was given."""
    entry = {
        "file_name": "recibo.pdf",
        "data_id": "d-1",
        "state": "failed",
        "err_msg": "parsing failed, please try again later",
        "err_code": err_code,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        data = {"batch_id": "b-1", "extract_result": [entry]}
        return httpx.Response(200, json={"code": 0, "data": data, "msg": "ok", "trace_id": "t"})

    m = Mineru(settings(), ServiceContext(transport=httpx.MockTransport(handler)))
    doc = make_doc(tmp_path, remote={"batch_id": "b-1", "data_id": "d-1", "uploaded": True})
    err = run(m.poll([doc], Store()))[1]
    assert type(err) is cls, err


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("failed to read file, please check if the file is corrupted", -60003),
        ("retry limit reached (5 attempts), please replace the file.", -60017),
        ("retry limit reached (5 attempts), please try again later", -60017),
        ("parsing failed, please try again later", -60010),
        ("number of pages exceeds limit (200 pages), please split the file and try again", -60006),
        ("文件页数超过限制，请拆分文件后重试", -60006),
        ("重试次数达到上限，等后续模型升级后重试", -60017),
        ("每日解析任务数量已达上限，明日再来", -60018),
        ("文件读取失败，请检查文件是否损坏并重新上传", -60003),
        ("网页读取失败，可能因网络问题或者限频导致读取失败，请稍后重试", -60022),
        ("something nobody documented", None),
    ],
)
def test_message_codes_in_both_languages(message: str, code: int | None) -> None:
    """The real messages (English, user logs in the fidelity notes) and the table's."""
    assert answers.message_code(message) == code
