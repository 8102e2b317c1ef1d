"""The Parsio client against httpx.MockTransport (no sockets) and the mock app (ASGI)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.clock import FakeClock
from daemon.config import Secret, parse
from daemon.errors import (
    ConfigError,
    CredentialsError,
    DocinboxError,
    DocumentTooLarge,
    GatewayError,
    MalformedResponse,
    ModelNotFound,
    NetworkError,
    QuotaExceeded,
    RateLimited,
    RemoteRejected,
    TransientError,
)
from daemon.services import REGISTRY
from daemon.services.base import Accepted, Outcome, Received, ServiceContext, SourceDocument
from daemon.services.nanonets import Nanonets, NanonetsSettings
from daemon.services.parsio import (
    LOST_UPLOAD_WAIT,
    Parsio,
    ParsioSettings,
    doc_id_of,
    fields_and_tables,
)
from mockserver import defaults
from mockserver.app import create_app
from mockserver.samples import receipt_pdf
from tests.helpers import PacerTime

DOC_ID = "6650f0c2a1b2c3d4e5f60718"
PARSED = {
    "_id": DOC_ID,
    "doc_id": DOC_ID,
    "status": "parsed",
    "parsing_in_progress": False,
    "name": "recibo.pdf",
    "json": {
        "fecha": "23/12/2025",
        "total": 45.90,
        "lineas_detalle": [{"descripcion": "Gasoil", "cantidad": "50L"}],
        "__meta__": {"docinbox_job": 7},
    },
}
Handler = Callable[[httpx.Request], httpx.Response]


def _settings(url: str = "https://api.parsio.io", key: str = "k-1", **more: Any) -> ParsioSettings:
    more.setdefault("mailbox_id", "mb-1")
    return ParsioSettings(
        name="parsio", base_url=url, credential=Secret(key, "inline"), timeout=5, **more
    )


def _doc(tmp_path: Path, remote: dict[str, Any] | None = None) -> SourceDocument:
    path = tmp_path / "recibo.pdf"
    path.write_bytes(receipt_pdf())
    return SourceDocument(
        job_id=7,
        path=path,
        name="recibo.pdf",
        kind="pdf",
        pages=1,
        size=path.stat().st_size,
        sha256="ab" * 32,
        workdir=tmp_path / "work",
        remote=remote or {},
    )


class Run:
    """One service on a transport; ``remote`` plays the job's row (checkpoints merge in,
    a null removes a key, as the store's json_patch does)."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        tmp_path: Path,
        clock: FakeClock | None = None,
        settings: ParsioSettings | None = None,
        **more: Any,
    ) -> None:
        t = PacerTime()  # a 429's Retry-After passes at once
        ctx = ServiceContext(
            transport=transport, clock=clock or FakeClock(), monotonic=t.monotonic, sleep=t.sleep
        )
        self.service = Parsio(settings or _settings(**more), ctx)
        self.tmp_path = tmp_path
        self.remote: dict[str, Any] = {}
        self.events: list[str] = []

    def checkpoint(self, job_id: int, remote: dict[str, Any]) -> None:
        assert job_id == 7
        self.events.append(f"checkpoint {sorted(remote)}")
        for k, v in remote.items():
            if v is None:
                self.remote.pop(k, None)
            else:
                self.remote[k] = v

    def doc(self) -> SourceDocument:
        return _doc(self.tmp_path, dict(self.remote))

    def submit(self) -> Outcome | DocinboxError:
        return self._run(self.service.submit)

    def poll(self) -> Outcome | DocinboxError:
        return self._run(self.service.poll)

    def _run(self, step: Any) -> Outcome | DocinboxError:
        async def go() -> Outcome | DocinboxError:
            outcome = (await step([self.doc()], self.checkpoint))[7]
            if isinstance(outcome, Accepted | Received):
                for k, v in outcome.remote.items():
                    self.remote[k] = v
            return outcome  # type: ignore[no-any-return]

        return asyncio.run(go())

    def close(self) -> None:
        asyncio.run(self.service.aclose())


def fake(handler: Handler, tmp_path: Path, **kw: Any) -> Run:
    return Run(httpx.MockTransport(handler), tmp_path, **kw)


def form_of(request: httpx.Request) -> dict[str, Any]:
    import email.parser

    msg = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + request.headers["content-type"].encode() + b"\r\n\r\n" + request.read()
    )
    parts = {}
    for part in msg.get_payload():  # type: ignore[union-attr]
        name = part.get_param("name", header="content-disposition")
        parts[name] = (part.get_filename(), part.get_payload(decode=True))
    return parts


# --------------------------------------------------------------------- submitting


def test_a_small_document_waits_for_its_result_in_upload_sync(tmp_path: Path) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        run.events.append(f"{request.method} {request.url.path}")
        return httpx.Response(201, json=PARSED)

    run = fake(handler, tmp_path)
    outcome = run.submit()
    assert isinstance(outcome, Received)
    assert outcome.remote == {"doc_id": DOC_ID, "mailbox_id": "mb-1"}
    [request] = seen
    assert str(request.url) == "https://api.parsio.io/mailboxes/mb-1/upload-sync"
    assert request.headers["x-api-key"] == "k-1"
    form = form_of(request)
    assert form["file"] == ("recibo.pdf", receipt_pdf())
    meta = json.loads(form["meta"][1])
    # The token the upload carries was persisted before the request went out.
    assert run.events[0] == "checkpoint ['mailbox_id', 'upload', 'uploaded_at']"
    assert run.events[1] == "POST /mailboxes/mb-1/upload-sync"
    assert meta == {"docinbox_job": 7, "sha256": "ab" * 32, "upload": run.remote["upload"]}
    # The answer is stored untouched.
    assert json.loads((tmp_path / "work/raw/document.json").read_bytes()) == PARSED


@pytest.mark.parametrize(
    "answer",
    [DOC_ID, {"doc_id": DOC_ID}, {"_id": DOC_ID}, {"id": DOC_ID}, [{"_id": DOC_ID}], [DOC_ID]],
)
def test_a_large_document_is_uploaded_then_polled(tmp_path: Path, answer: Any) -> None:
    """Any of the shapes sources give ``/upload``'s answer names the document."""
    states = iter(["new", "parsing"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert request.url.path == "/mailboxes/mb-1/upload"
            return httpx.Response(201, json=answer)
        assert request.url.path == f"/docs/{DOC_ID}"
        status = next(states, "parsed")
        return httpx.Response(200, json=PARSED if status == "parsed" else {"status": status})

    run = fake(handler, tmp_path, sync_max_bytes=10)
    first = run.submit()
    assert isinstance(first, Accepted) and run.remote["doc_id"] == DOC_ID
    waits = []
    while isinstance(outcome := run.poll(), Accepted):
        waits.append(outcome.poll_after)
    assert waits == sorted(waits) and len(waits) == 2  # backing off while it parses
    assert isinstance(outcome, Received)
    assert (tmp_path / "work/raw/document.json").exists()


def test_a_sync_timeout_answer_is_polled(tmp_path: Path) -> None:
    timed_out = {"doc_id": DOC_ID, "parsing_in_progress": True, "status": "parsing"}
    run = fake(lambda r: httpx.Response(201, json=timed_out), tmp_path)
    outcome = run.submit()
    assert isinstance(outcome, Accepted) and outcome.remote["doc_id"] == DOC_ID
    assert not (tmp_path / "work/raw").exists()


def test_quota_pauses_the_service_and_the_document_is_never_uploaded_twice(
    tmp_path: Path,
) -> None:
    uploads = []
    status = {"now": "quota"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            uploads.append(request)
            return httpx.Response(201, json={"doc_id": DOC_ID, "status": "quota"})
        if status["now"] == "parsed":
            return httpx.Response(200, json=PARSED)
        return httpx.Response(200, json={"_id": DOC_ID, "status": status["now"]})

    run = fake(handler, tmp_path)
    paused = run.submit()
    assert isinstance(paused, QuotaExceeded) and paused.scope == "service" and paused.retryable
    assert run.remote["doc_id"] == DOC_ID  # kept: the next submission asks, not uploads
    assert isinstance(run.submit(), Accepted)
    assert isinstance(run.poll(), QuotaExceeded)
    status["now"] = "parsed"
    assert isinstance(run.poll(), Received)
    assert len(uploads) == 1


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"statusCode": 401, "message": "Unauthorized"}, CredentialsError),
        (403, {"statusCode": 403, "message": "Forbidden"}, CredentialsError),
        (402, {"message": "no credits"}, QuotaExceeded),
        (404, {"statusCode": 404, "message": "Not Found"}, ModelNotFound),
        (413, {"statusCode": 413, "message": "File too large"}, DocumentTooLarge),
        (400, {"statusCode": 400, "message": ["file must be a file"]}, RemoteRejected),
        (429, {"message": "slow down"}, RateLimited),
        (503, "<html>down</html>", GatewayError),
    ],
)
def test_status_codes_become_errors(tmp_path: Path, status: int, body: Any, error: type) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"content-type": "text/html"})
        return httpx.Response(status, json=body, headers={"Retry-After": "7"})

    run = fake(handler, tmp_path)
    outcome = run.submit()
    assert isinstance(outcome, error), outcome
    if status == 404:
        assert "mailbox_id" in outcome.hint
    if status == 429:
        assert isinstance(outcome, RateLimited) and outcome.retry_after == 7.0
    # An answer that refused the upload leaves no token to look for; an unknown outcome
    # (a 5xx: the server may have kept it) does.
    assert ("upload" in run.remote) == (status >= 500)


def test_a_network_error_keeps_the_token_and_the_next_attempt_looks_first(
    tmp_path: Path,
) -> None:
    """A timeout may hide a successful upload: before uploading again, the document is
    looked for by its token, and found."""
    calls: list[str] = []
    token: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            token["value"] = json.loads(form_of(request)["meta"][1])["upload"]
            raise httpx.ReadTimeout("timed out")
        if request.url.path.endswith("/docs"):
            assert request.url.params["q"] == "recibo.pdf"
            assert request.url.params["from"] == "2023-11-13"  # the day before (UTC)
            return httpx.Response(200, json={"docs": [{"_id": DOC_ID}], "hasNextPage": False})
        body = json.loads(json.dumps(PARSED))
        body["json"]["__meta__"] = {"upload": token["value"]}
        return httpx.Response(200, json=body)

    run = fake(handler, tmp_path)
    assert isinstance(run.submit(), NetworkError)
    assert run.remote["upload"] == token["value"] and "doc_id" not in run.remote
    assert isinstance(run.submit(), Received)
    assert calls == [
        "POST /mailboxes/mb-1/upload-sync",
        "GET /mailboxes/mb-1/docs",
        f"GET /docs/{DOC_ID}",
    ]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"doc_id": "../../users/me"}, "not a document id"),
        ({"doc_id": 12}, "not a document id"),
        ({"status": "parsed"}, "names no document"),
        ([1, 2], "not a document id"),
    ],
)
def test_hostile_upload_answers(tmp_path: Path, answer: Any, problem: str) -> None:
    run = fake(lambda r: httpx.Response(201, json=answer), tmp_path)
    outcome = run.submit()
    assert isinstance(outcome, MalformedResponse) and problem in outcome.message


# --------------------------------------------------------------------- polling


@pytest.mark.parametrize(
    ("status", "error", "resubmit"),
    [("fail", RemoteRejected, False), ("skipped", RemoteRejected, False),
     ("exception", TransientError, True), ("teleported", MalformedResponse, False)],
)  # fmt: skip
def test_terminal_statuses(tmp_path: Path, status: str, error: type, resubmit: bool) -> None:
    run = fake(lambda r: httpx.Response(200, json={"_id": DOC_ID, "status": status}), tmp_path)
    run.remote = {"doc_id": DOC_ID, "upload": "t"}
    outcome = run.poll()
    assert isinstance(outcome, error)
    assert getattr(outcome, "resubmit", False) is resubmit
    if status != "teleported":  # a retry (or `docinbox retry`) uploads afresh
        assert "doc_id" not in run.remote and "upload" not in run.remote


def test_a_document_deleted_in_parsio_is_sent_again(tmp_path: Path) -> None:
    run = fake(lambda r: httpx.Response(404, json={"statusCode": 404}), tmp_path)
    run.remote = {"doc_id": DOC_ID}
    outcome = run.poll()
    assert isinstance(outcome, TransientError) and outcome.resubmit
    assert "doc_id" not in run.remote


def test_parsed_without_data_is_malformed_when_polled(tmp_path: Path) -> None:
    run = fake(lambda r: httpx.Response(200, json={"_id": DOC_ID, "status": "parsed"}), tmp_path)
    run.remote = {"doc_id": DOC_ID}
    assert isinstance(run.poll(), MalformedResponse)


# --------------------------------------------------------------------- lost answers


def test_resubmit_after_crash_only_when_the_upload_never_left(tmp_path: Path) -> None:
    service = Parsio(_settings(), ServiceContext(transport=httpx.MockTransport(lambda r: 0)))  # type: ignore[arg-type,return-value]
    assert service.resubmit_after_crash(_doc(tmp_path))
    assert not service.resubmit_after_crash(_doc(tmp_path, {"upload": "t", "uploaded_at": 1}))
    assert not service.resubmit_after_crash(_doc(tmp_path, {"doc_id": DOC_ID}))
    assert service.can_refetch({"doc_id": DOC_ID}) and not service.can_refetch({})


def test_a_lost_upload_that_never_arrived_is_sent_again_after_a_while(tmp_path: Path) -> None:
    clock = FakeClock()
    listing = {"docs": [], "totalDocs": 0, "hasNextPage": False}
    run = fake(lambda r: httpx.Response(200, json=listing), tmp_path, clock=clock)
    run.remote = {"upload": "t", "uploaded_at": clock.now(), "awaiting_answer": True}
    assert isinstance(run.poll(), Accepted)
    clock.advance(LOST_UPLOAD_WAIT + 1)
    outcome = run.poll()
    assert isinstance(outcome, TransientError) and outcome.resubmit
    assert "upload" not in run.remote  # the next submission uploads without looking


def test_a_lost_upload_still_parsing_is_waited_for_and_quota_pauses(tmp_path: Path) -> None:
    status = {"now": "parsing"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/docs"):
            return httpx.Response(200, json={"docs": [{"_id": DOC_ID}], "hasNextPage": False})
        return httpx.Response(200, json={"_id": DOC_ID, "status": status["now"]})

    run = fake(handler, tmp_path)
    run.remote = {"upload": "t", "uploaded_at": run.service.clock.now()}
    assert isinstance(run.poll(), Accepted)  # too young to say whose it is
    status["now"] = "quota"
    assert isinstance(run.poll(), QuotaExceeded)
    assert "doc_id" not in run.remote  # not known to be ours


def test_looking_for_a_lost_upload_reads_only_documents_that_can_be_it(tmp_path: Path) -> None:
    """Older documents of the same name are not opened; one the listing says is still
    parsing has no ``__meta__`` to read yet: no request for either."""
    asked: list[str] = []
    listing = {
        "docs": [
            {"_id": "a" * 24, "status": "parsed", "createdAt": "2023-11-01T10:00:00.000Z"},
            {"_id": "b" * 24, "status": "parsing", "createdAt": "2023-11-14T22:13:25.000Z"},
        ],
        "hasNextPage": False,
    }

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(200, json=listing)

    run = fake(handler, tmp_path)
    run.remote = {"upload": "t", "uploaded_at": run.service.clock.now()}
    assert isinstance(run.poll(), Accepted)
    assert asked == ["/mailboxes/mb-1/docs"]


def test_against_the_mock_a_lost_answer_is_found_and_sent_once(tmp_path: Path) -> None:
    """A crash between upload and answer, in-process: the request reaches the mock, the
    answer never comes back; the poll finds the document by its ``__meta__``."""
    app = create_app()
    ctx = app.mock  # type: ignore[attr-defined]
    asgi = httpx.ASGITransport(app=app)

    class LosesTheUploadAnswer(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await asgi.handle_async_request(request)
            if request.method == "POST":
                raise httpx.RemoteProtocolError("the daemon died before the answer")
            return response

    ctx.configure({"parsio": {"parse_seconds": 3600}})
    run = Run(
        LosesTheUploadAnswer(),
        tmp_path,
        settings=Parsio.for_mock(_settings(), "http://mock", "127.0.0.1", vars(defaults)),  # type: ignore[arg-type]
    )
    ctx.configure({"parsio": {"sync_timeout_seconds": 0.1}})
    assert isinstance(run.submit(), NetworkError)
    assert not run.service.resubmit_after_crash(run.doc())
    assert isinstance(run.poll(), Accepted)  # found, still parsing: not yet provably ours
    ctx.clock.advance(4000)
    outcome = run.poll()
    assert isinstance(outcome, Received)
    assert outcome.remote["doc_id"] == ctx.ledger.entries("parsio")[0]["id"]
    uploads = [e for e in ctx.journal.entries() if e["method"] == "POST"]
    assert len(uploads) == 1
    normalized = run.service.normalize(tmp_path / "work/raw", run.doc())
    assert {f["label"]: f["text"] for f in normalized.fields} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    run.close()


# --------------------------------------------------------------------- results


def test_parsed_json_becomes_fields_and_tables() -> None:
    fields, tables = fields_and_tables(
        {
            "fecha": "23/12/2025",
            "total": "45.90",
            "paid": True,
            "missing": None,
            "vendor": {"name": "Demo", "address": {"city": "Madrid"}},
            "tags": ["fuel", 2],
            "lineas_detalle": [
                {"descripcion": "Gasoil", "cantidad": "50L"},
                {"descripcion": "AdBlue", "importe": 12.5},
            ],
            "empty_table": [],
            "__meta__": {"docinbox_job": 7},
        }
    )
    assert [(f["label"], f["text"]) for f in fields] == [
        ("fecha", "23/12/2025"),
        ("total", "45.90"),
        ("paid", "true"),
        ("vendor.name", "Demo"),
        ("vendor.address.city", "Madrid"),
        ("tags", "fuel; 2"),
    ]
    assert all(f["score"] is None and f["page"] is None and f["box"] is None for f in fields)
    assert tables == [
        {
            "label": "lineas_detalle",
            "page": None,
            "columns": ["descripcion", "cantidad", "importe"],
            "rows": [["Gasoil", "50L", ""], ["AdBlue", "", "12.5"]],
        }
    ]


def test_deep_nesting_is_shown_as_json_not_walked_forever() -> None:
    deep: Any = "x"
    for _ in range(50):
        deep = {"k": deep}
    fields, _tables = fields_and_tables({"deep": deep})
    [field] = fields
    assert field["label"] == "deep.k.k.k.k" and field["text"].startswith('{"k":')


def test_normalize_keeps_the_numbers_text_and_drops_meta(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "document.json").write_text(
        '{"_id": "x", "status": "parsed", "json": {"total": 45.90, "n": 3, '
        '"__meta__": {"upload": "t"}}}'
    )
    service = Parsio(_settings(), ServiceContext())
    normalized = service.normalize(raw, _doc(tmp_path, {"doc_id": DOC_ID}))
    assert [(f["label"], f["text"]) for f in normalized.fields] == [("total", "45.90"), ("n", "3")]
    assert normalized.remote == {"doc_id": DOC_ID, "mailbox_id": "mb-1"}
    assert "| total | 45.90 |" in normalized.markdown
    (raw / "document.json").write_text('{"_id": "x", "status": "parsed"}')
    with pytest.raises(ValueError):  # the finish step reads it as a lost answer
        service.normalize(raw, _doc(tmp_path))
    asyncio.run(service.aclose())


def test_doc_id_of_shapes() -> None:
    assert doc_id_of(None) is None and doc_id_of({}) is None and doc_id_of([]) is None
    assert doc_id_of([{}, {"doc_id": DOC_ID}]) == DOC_ID
    with pytest.raises(MalformedResponse):
        doc_id_of("a/b")


def test_against_the_mock_the_receipt_gives_nanonets_fields(tmp_path: Path) -> None:
    """The same receipt through both mocks: the same labels and texts, the same table."""
    app = create_app()
    app.mock.clock.set_speed(1000)  # type: ignore[attr-defined]  # parsing takes 3.5 mock seconds
    transport = httpx.ASGITransport(app=app)
    settings = Parsio.for_mock(_settings(), "http://mock", "127.0.0.1", vars(defaults))
    assert isinstance(settings, ParsioSettings)
    assert settings.mailbox_id == defaults.PARSIO_MAILBOX_ID
    assert settings.credential.value == defaults.PARSIO_API_KEY
    assert settings.credential.source == "mock"
    run = Run(transport, tmp_path, settings=settings)
    outcome = run.submit()
    assert isinstance(outcome, Received), outcome
    parsio = run.service.normalize(tmp_path / "work/raw", run.doc())
    run.close()

    nanonets = Nanonets(
        NanonetsSettings(
            name="nanonets",
            base_url="http://mock",
            credential=Secret(defaults.NANONETS_API_KEY, "mock"),
            model_id=defaults.NANONETS_MODEL_ID,
        ),
        ServiceContext(transport=transport),
    )
    nano_doc = dataclasses.replace(_doc(tmp_path), workdir=tmp_path / "nano")

    async def go() -> None:
        try:
            await nanonets.submit([nano_doc], lambda _j, _r: None)
        finally:
            await nanonets.aclose()

    asyncio.run(go())
    theirs = nanonets.normalize(tmp_path / "nano/raw", nano_doc)
    assert [(f["label"], f["text"]) for f in parsio.fields] == [
        (f["label"], f["text"]) for f in theirs.fields
    ]
    assert [(t["label"], t["columns"], t["rows"]) for t in parsio.tables] == [
        (t["label"], t["columns"], t["rows"]) for t in theirs.tables
    ]


# --------------------------------------------------------------------- configuration


def _config(tmp_path: Path, section: str, embedded: bool = False) -> dict[str, Any]:
    import tomllib

    text = f"""
[mock]
embedded = {str(embedded).lower()}
[[routes]]
service = "parsio"
mailbox_id = "other-mailbox"
{section}
"""
    return tomllib.loads(text)


def test_the_configuration_knows_parsio(tmp_path: Path) -> None:
    assert REGISTRY["parsio"] is Parsio
    env = {"PARSIO_API_KEY": "k-real"}
    settings = parse(
        _config(tmp_path, '[services.parsio]\nmailbox_id = "mb-9"\nsync_max_bytes = 1000'),
        config_path=tmp_path / "config.toml",
        environ=env,
    )
    parsio = settings.services["parsio"]
    assert isinstance(parsio, ParsioSettings)
    assert (parsio.mailbox_id, parsio.sync_max_bytes, parsio.base_url) == (
        "mb-9",
        1000,
        "https://api.parsio.io",
    )
    assert parsio.credential.value == "k-real"
    assert settings.routes[0].options == {"mailbox_id": "other-mailbox"}
    with pytest.raises(ConfigError, match=r"services\.parsio\.mailbox_id: required"):
        parse(_config(tmp_path, ""), config_path=tmp_path / "config.toml", environ=env)
    with pytest.raises(ConfigError, match="PARSIO_API_KEY"):
        parse(
            _config(tmp_path, '[services.parsio]\nmailbox_id = "mb-9"'),
            config_path=tmp_path / "config.toml",
            environ={},
        )
    # The embedded mock needs neither: it brings its own key and mailbox.
    embedded = parse(_config(tmp_path, "", True), config_path=tmp_path / "c.toml", environ={})
    assert embedded.services["parsio"].credential.value is None
