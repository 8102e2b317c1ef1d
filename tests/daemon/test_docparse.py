"""The docparse v1 service end to end: the real mock server really fetches the documents
from the daemon's real file server on loopback, which runs on the same event loop as the
service (as in the daemon)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config import Secret
from daemon.errors import CredentialsError, QuotaExceeded, TransientError
from daemon.servers.files import FileServer
from daemon.services.base import (
    Accepted,
    Callbacks,
    Received,
    ServiceContext,
    SourceDocument,
    alone,
    settled,
)
from daemon.services.docparse import Docparse, DocparseSettings
from mockserver import defaults
from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import running


def settings(url: str, token: str = defaults.DOCPARSE_TOKEN, uid: str = "") -> DocparseSettings:
    return DocparseSettings(
        name="docparse", base_url=url, credential=Secret(token, "inline"), timeout=30, uid=uid
    )


def make_doc(
    tmp_path: Path,
    job_id: int,
    data: bytes | None = None,
    *,
    name: str = "recibo.pdf",
    url: str | None = None,
    remote: dict | None = None,
    options: dict | None = None,
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
        kind="link" if url else "pdf",
        pages=1,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        workdir=workdir or tmp_path / "w",
        url=url,
        remote=remote or {},
        options=options or {},
    )


def with_remote(doc: SourceDocument, remote: dict) -> SourceDocument:
    return SourceDocument(**{**doc.__dict__, "remote": dict(remote)})


class Store:
    def __init__(self) -> None:
        self.remote: dict[int, dict] = {}

    def __call__(self, job_id: int, remote: Any) -> None:
        self.remote.setdefault(job_id, {}).update(remote)


@dataclass
class Files:
    """The daemon's file server (started by :meth:`serving`), the jobs it may serve, and
    what it saw: every lookup and every document it handed out."""

    server: FileServer
    jobs: dict[int, Path] = field(default_factory=dict)
    looked_up: list[int] = field(default_factory=list)
    fetched: list[int] = field(default_factory=list)

    def serving(self, work: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
        """Run *work* in a fresh event loop with the file server listening on that loop."""

        async def go() -> Any:
            async with running(self.server):
                return await work()

        return asyncio.run(go())


@pytest.fixture
def files() -> Files:
    jobs: dict[int, Path] = {}
    looked_up: list[int] = []
    fetched: list[int] = []

    def lookup(job_id: int) -> Path | None:
        looked_up.append(job_id)
        return jobs.get(job_id)

    server = FileServer(
        "127.0.0.1:0", None, b"docparse-test-secret-32-bytes!!", lookup, on_fetch=fetched.append
    )
    return Files(server, jobs, looked_up, fetched)


def journal(ctx: Any, method: str, prefix: str) -> list[dict]:
    return [
        e for e in ctx.journal.entries() if e["method"] == method and e["path"].startswith(prefix)
    ]


async def submit_and_collect(
    svc: Docparse, ctx: Any, docs: list[SourceDocument]
) -> tuple[dict, dict, int]:
    """Submit, then poll (advancing the mock clock) until every document is answered."""
    submitted = await svc.submit(docs, Store())
    current = {
        d.job_id: with_remote(d, dict(submitted[d.job_id].remote))
        for d in docs
        if isinstance(submitted[d.job_id], Accepted)
    }
    final: dict[int, Any] = {}
    rounds = 0
    while current and rounds < 20:
        rounds += 1
        ctx.clock.advance(5)
        groups: dict[Any, list[SourceDocument]] = {}
        for d in current.values():
            groups.setdefault(svc.poll_key(d.remote), []).append(d)
        for key, group in groups.items():
            if key is None:
                out = {d.job_id: await settled(alone(svc.poll, d)) for d in group}
            else:
                out = await svc.poll(group, Store())
            for job_id, o in out.items():
                if isinstance(o, Accepted):
                    current[job_id] = with_remote(current[job_id], dict(o.remote))
                else:
                    final[job_id] = o
                    del current[job_id]
    await svc.aclose()
    return submitted, final, rounds


def test_one_file_goes_as_a_single_task_fetched_from_the_file_server(
    tmp_path: Path, mock_server: Any, files: Files
) -> None:
    doc = make_doc(tmp_path, 11)
    files.jobs[11] = doc.path
    svc = Docparse(settings(mock_server.url), ServiceContext(files=files.server))
    submitted, final, _ = files.serving(lambda: submit_and_collect(svc, mock_server.ctx, [doc]))
    assert isinstance(submitted[11], Accepted) and submitted[11].remote["task_id"]
    assert 11 in files.looked_up  # the parser really fetched the signed URL
    assert files.fetched == [11]  # ... and got the document
    assert len(journal(mock_server.ctx, "POST", "/api/v1/extract/task")) == 1
    assert isinstance(final[11], Received), final
    result = svc.normalize(tmp_path / "w" / "raw", with_remote(doc, dict(final[11].remote)))
    assert "Fecha: 23/12/2025" in result.markdown
    assert result.remote["task_id"] == submitted[11].remote["task_id"]


def test_several_files_go_as_one_batch_polled_once_per_round(
    tmp_path: Path, mock_server: Any, files: Files
) -> None:
    docs = [
        make_doc(tmp_path, 20 + i, multipage_pdf(i + 1), workdir=tmp_path / f"w{20 + i}")
        for i in range(3)
    ]
    for d in docs:
        files.jobs[d.job_id] = d.path
    svc = Docparse(settings(mock_server.url), ServiceContext(files=files.server))
    assert len({svc.batch_key(d.kind, d.options) for d in docs}) == 1
    submitted, final, rounds = files.serving(lambda: submit_and_collect(svc, mock_server.ctx, docs))
    assert len(journal(mock_server.ctx, "POST", "/api/v1/extract/task/batch")) == 1
    assert len({s.remote["batch_id"] for s in submitted.values()}) == 1
    assert all(isinstance(o, Received) for o in final.values()), final
    polls = journal(mock_server.ctx, "GET", "/api/v1/extract-results/batch/")
    assert len(polls) == rounds  # one GET per batch per round, never one per document
    assert all((tmp_path / f"w{d.job_id}" / "raw" / "full.md").is_file() for d in docs)
    assert sorted(files.fetched) == [20, 21, 22]


def test_a_file_the_server_no_longer_serves_is_retryable_with_a_new_submission(
    tmp_path: Path, mock_server: Any, files: Files
) -> None:
    doc = make_doc(tmp_path, 30)  # the job is not in flight: lookup says None
    svc = Docparse(settings(mock_server.url), ServiceContext(files=files.server))
    _, final, _ = files.serving(lambda: submit_and_collect(svc, mock_server.ctx, [doc]))
    err = final[30]
    assert 30 in files.looked_up and files.fetched == []
    assert isinstance(err, TransientError) and err.remote_code == "-60008", err
    assert err.resubmit is True and "files_url" in err.hint


@pytest.mark.parametrize(
    ("token", "code"), [("nope", "-20002"), ("mock-docparse-token-expired", "-20011")]
)
def test_bad_token_is_credentials_error(
    tmp_path: Path, mock_server: Any, files: Files, token: str, code: str
) -> None:
    doc = make_doc(tmp_path, 40)
    files.jobs[40] = doc.path

    async def go() -> Any:
        svc = Docparse(settings(mock_server.url, token), ServiceContext(files=files.server))
        try:
            return await svc.submit([doc], Store())
        finally:
            await svc.aclose()

    err = files.serving(go)[40]
    assert isinstance(err, CredentialsError) and err.remote_code == code


def test_request_fields_are_camel_case_and_links_go_as_they_are(
    tmp_path: Path, files: Files
) -> None:
    bodies: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.path, json.loads(request.content)))
        if request.url.path.endswith("/batch"):
            return httpx.Response(200, json={"code": 0, "msg": "ok", "data": {"batch_id": "b"}})
        return httpx.Response(
            200, json={"code": 0, "message": "ok", "data": {"taskId": "t-1"}, "timestamp": 1}
        )

    svc = Docparse(
        settings("http://parser", uid="uid-1"),
        ServiceContext(
            transport=httpx.MockTransport(handler),
            files=files.server,
            callbacks=Callbacks("http://me/callbacks", "s_1"),
        ),
    )
    opts = {
        "is_ocr": True,
        "enable_formula": False,
        "page_ranges": "1-2",
        "model_version": "vlm",
        "extra_formats": ["html"],
    }
    link = make_doc(tmp_path, 50, url="https://example.com/x.pdf", options=opts)
    f1, f2 = make_doc(tmp_path, 51, options=opts), make_doc(tmp_path, 52, options=opts)
    store = Store()

    async def go() -> tuple[Any, Any]:
        return await svc.submit([link], Store()), await svc.submit([f1, f2], store)

    out, out2 = files.serving(go)
    path, single = bodies[0]
    assert path == "/api/v1/extract/task" and out[50].remote["task_id"] == "t-1"
    assert single["url"] == "https://example.com/x.pdf"
    assert single["isOcr"] is True and single["enableFormula"] is False
    assert single["pageRanges"] == "1-2" and single["modelVersion"] == "vlm"
    assert single["extraFormats"] == ["html"] and single["dataId"].startswith("docinbox-50-")
    assert single["callback"] == "http://me/callbacks/docparse" and single["seed"] == "s_1"
    path, batch = bodies[1]
    assert path == "/api/v1/extract/task/batch"
    assert batch["model_version"] == "vlm" and batch["files"][0]["is_ocr"] is True
    assert batch["callback"] == "http://me/callbacks/docparse" and batch["seed"] == "s_1"
    assert batch["files"][0]["url"].startswith(f"{files.server.url}/files/51/")
    assert batch["files"][0]["url"].endswith("/recibo.pdf")
    assert store.remote[51]["batch_id"] == "b" and out2[52].remote["batch_id"] == "b"


def test_checkpointed_task_is_not_sent_again(tmp_path: Path, files: Files) -> None:
    calls: list[httpx.Request] = []
    svc = Docparse(
        settings("http://parser"),
        ServiceContext(
            files=files.server,
            transport=httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(500)),
        ),
    )
    doc = make_doc(tmp_path, 60, remote={"task_id": "t-7", "data_id": "d"})
    out = asyncio.run(svc.submit([doc], Store()))[60]
    assert isinstance(out, Accepted) and out.remote["task_id"] == "t-7"
    assert calls == []


def test_without_the_file_server_docparse_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="file server"):
        Docparse(settings("http://parser"), ServiceContext())


# ---------------------------------------------------------------------- real-world fidelity
# (issue 15: docparse is seed 001 only; a self-hosted MinerU may add the mineru-api layout)


def test_docparse_keeps_the_seeds_limits(tmp_path: Path, files: Files) -> None:
    svc = Docparse(settings("http://parser"), ServiceContext(files=files.server))
    assert (svc.max_pages, svc.batch_limit) == (600, 200)  # seed 001
    asyncio.run(svc.aclose())


def test_minus_60017_is_docparses_page_balance_a_quota(tmp_path: Path, files: Files) -> None:
    """Seed 001: "-60017 页码余额不足 请充值或升级套餐"; on MinerU -60017 is the retry limit."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"code": -60017, "message": "页码余额不足", "data": None, "timestamp": 1}
        )

    svc = Docparse(
        settings("http://parser"),
        ServiceContext(transport=httpx.MockTransport(handler), files=files.server),
    )
    err = asyncio.run(svc.submit([make_doc(tmp_path, 70)], Store()))[70]
    assert isinstance(err, QuotaExceeded) and err.remote_code == "-60017"
    assert svc.message_patterns[0][1] == -60017
    from daemon.services.mineru_answers import message_code

    assert message_code("页码余额不足，请充值或升级套餐", svc.message_patterns) == -60017
    assert message_code("retry limit reached (5 attempts)", svc.message_patterns) is None


def test_a_docparse_batch_too_big_is_split(tmp_path: Path, mock_server: Any, files: Files) -> None:
    mock_server.ctx.configure({"docparse": {"max_files": 2}})
    docs = [make_doc(tmp_path, 80 + i, workdir=tmp_path / f"w{80 + i}") for i in range(5)]
    for d in docs:
        files.jobs[d.job_id] = d.path
    svc = Docparse(settings(mock_server.url), ServiceContext(files=files.server))
    submitted, final, _ = files.serving(lambda: submit_and_collect(svc, mock_server.ctx, docs))
    assert all(isinstance(o, Received) for o in final.values()), final
    posts = journal(mock_server.ctx, "POST", "/api/v1/extract/task/batch")
    assert len(posts) == 4  # refused (5), then 2 + 2 + 1
    assert len({s.remote["batch_id"] for s in submitted.values()}) == 3


@pytest.mark.parametrize(
    ("layout", "md"),
    [
        ("cloud", "full.md"),
        ("mineru-api", "recibo/auto/recibo.md"),
        ("mineru-api-flat", "recibo/recibo.md"),
    ],
)
def test_every_docparse_result_layout_is_read(
    tmp_path: Path, mock_server: Any, files: Files, layout: str, md: str
) -> None:
    mock_server.ctx.configure({"docparse": {"zip_layout": layout, "err_code": True}})
    doc = make_doc(tmp_path, 90)
    files.jobs[90] = doc.path
    svc = Docparse(settings(mock_server.url), ServiceContext(files=files.server))
    _, final, _ = files.serving(lambda: submit_and_collect(svc, mock_server.ctx, [doc]))
    assert isinstance(final[90], Received), final
    assert (tmp_path / "w" / "raw" / md).is_file()
    result = svc.normalize(tmp_path / "w" / "raw", with_remote(doc, dict(final[90].remote)))
    assert "Fecha: 23/12/2025" in result.markdown
