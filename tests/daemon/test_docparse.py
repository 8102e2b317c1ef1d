"""The docparse v1 service end to end: the real mock server really fetches the documents
from the daemon's real file server on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon.config import Secret, ServiceSettings
from daemon.errors import CredentialsError, TransientError
from daemon.fileserver import FileServer
from daemon.services.base import Accepted, Received, SourceDocument
from daemon.services.docparse import Docparse
from mockserver import defaults
from mockserver.samples import multipage_pdf, receipt_pdf


def settings(url: str, token: str = defaults.DOCPARSE_TOKEN) -> ServiceSettings:
    return ServiceSettings(name="docparse", base_url=url, credential=Secret(token, "inline"),
                           timeout=30)


def make_doc(tmp_path: Path, job_id: int, data: bytes | None = None, *,
             name: str = "recibo.pdf", url: str | None = None, remote: dict | None = None,
             options: dict | None = None) -> SourceDocument:
    data = receipt_pdf() if data is None else data
    path = tmp_path / f"in-{job_id}-{name}"
    path.write_bytes(data)
    return SourceDocument(job_id=job_id, path=path, name=name,
                          kind="link" if url else "pdf", pages=1, size=len(data),
                          sha256=hashlib.sha256(data).hexdigest(), url=url,
                          remote=remote or {}, options=options or {})


def with_remote(doc: SourceDocument, remote: dict) -> SourceDocument:
    return SourceDocument(**{**doc.__dict__, "remote": dict(remote)})


class Store:
    def __init__(self) -> None:
        self.remote: dict[int, dict] = {}

    def __call__(self, job_id: int, remote: Any) -> None:
        self.remote.setdefault(job_id, {}).update(remote)


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[FileServer, dict[int, Path], list[int]]]:
    jobs: dict[int, Path] = {}
    looked_up: list[int] = []

    def lookup(job_id: int) -> Path | None:
        looked_up.append(job_id)
        return jobs.get(job_id)

    server = FileServer("127.0.0.1:0", None, b"docparse-test-secret-32-bytes!!", lookup)
    server.start()
    try:
        yield server, jobs, looked_up
    finally:
        server.stop()


def journal(ctx: Any, method: str, prefix: str) -> list[dict]:
    return [e for e in ctx.journal.entries()
            if e["method"] == method and e["path"].startswith(prefix)]


async def submit_and_collect(svc: Docparse, ctx: Any, docs: list[SourceDocument],
                             workdirs: dict[int, Path]) -> tuple[dict, dict, int]:
    """Submit, then poll (advancing the mock clock) until every document is answered."""
    submitted = await svc.submit_batch(docs, workdirs, Store())
    current = {d.job_id: with_remote(d, dict(submitted[d.job_id].remote)) for d in docs
               if isinstance(submitted[d.job_id], Accepted)}
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
                out = {d.job_id: await _poll_one(svc, d, workdirs) for d in group}
            else:
                out = await svc.poll_batch(group, workdirs, Store())
            for job_id, o in out.items():
                if isinstance(o, Accepted):
                    current[job_id] = with_remote(current[job_id], dict(o.remote))
                else:
                    final[job_id] = o
                    del current[job_id]
    await svc.aclose()
    return submitted, final, rounds


async def _poll_one(svc: Docparse, doc: SourceDocument, workdirs: dict[int, Path]) -> Any:
    try:
        return await svc.poll(doc, workdirs[doc.job_id])
    except Exception as exc:
        return exc


def test_one_file_goes_as_a_single_task_fetched_from_the_file_server(
        tmp_path: Path, mock_server: Any, files: Any) -> None:
    server, jobs, looked_up = files
    doc = make_doc(tmp_path, 11)
    jobs[11] = doc.path
    svc = Docparse(settings(mock_server.url), files=server)
    submitted, final, _ = asyncio.run(
        submit_and_collect(svc, mock_server.ctx, [doc], {11: tmp_path / "w"}))
    assert isinstance(submitted[11], Accepted) and submitted[11].remote["task_id"]
    assert 11 in looked_up  # the parser really fetched the signed URL
    assert len(journal(mock_server.ctx, "POST", "/api/v1/extract/task")) == 1
    assert isinstance(final[11], Received), final
    result = svc.normalize(tmp_path / "w" / "raw", with_remote(doc, dict(final[11].remote)))
    assert "Fecha: 23/12/2025" in result.markdown
    assert result.remote["task_id"] == submitted[11].remote["task_id"]


def test_several_files_go_as_one_batch_polled_once_per_round(
        tmp_path: Path, mock_server: Any, files: Any) -> None:
    server, jobs, _ = files
    docs = [make_doc(tmp_path, 20 + i, multipage_pdf(i + 1)) for i in range(3)]
    for d in docs:
        jobs[d.job_id] = d.path
    svc = Docparse(settings(mock_server.url), files=server)
    assert len({svc.batch_key(d) for d in docs}) == 1
    workdirs = {d.job_id: tmp_path / f"w{d.job_id}" for d in docs}
    submitted, final, rounds = asyncio.run(
        submit_and_collect(svc, mock_server.ctx, docs, workdirs))
    assert len(journal(mock_server.ctx, "POST", "/api/v1/extract/task/batch")) == 1
    assert len({s.remote["batch_id"] for s in submitted.values()}) == 1
    assert all(isinstance(o, Received) for o in final.values()), final
    polls = journal(mock_server.ctx, "GET", "/api/v1/extract-results/batch/")
    assert len(polls) == rounds  # one GET per batch per round, never one per document
    assert all((w / "raw" / "full.md").is_file() for w in workdirs.values())


def test_a_file_the_server_no_longer_serves_is_retryable_with_a_new_submission(
        tmp_path: Path, mock_server: Any, files: Any) -> None:
    server, _jobs, looked_up = files  # the job is not in flight: lookup says None
    doc = make_doc(tmp_path, 30)
    svc = Docparse(settings(mock_server.url), files=server)
    _, final, _ = asyncio.run(
        submit_and_collect(svc, mock_server.ctx, [doc], {30: tmp_path / "w"}))
    err = final[30]
    assert 30 in looked_up
    assert isinstance(err, TransientError) and err.remote_code == "-60008", err
    assert getattr(err, "resubmit", False) and "files_url" in err.hint


@pytest.mark.parametrize(("token", "code"), [("nope", "-20002"),
                                             ("mock-docparse-token-expired", "-20011")])
def test_bad_token_is_credentials_error(tmp_path: Path, mock_server: Any, files: Any,
                                        token: str, code: str) -> None:
    server, jobs, _ = files
    doc = make_doc(tmp_path, 40)
    jobs[40] = doc.path

    async def go() -> Any:
        svc = Docparse(settings(mock_server.url, token), files=server)
        try:
            return await svc.submit_batch([doc], {40: tmp_path}, Store())
        finally:
            await svc.aclose()

    err = asyncio.run(go())[40]
    assert isinstance(err, CredentialsError) and err.remote_code == code


def test_request_fields_are_camel_case_and_links_go_as_they_are(tmp_path: Path,
                                                                files: Any) -> None:
    server, _jobs, _ = files
    bodies: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append((request.url.path, json.loads(request.content)))
        if request.url.path.endswith("/batch"):
            return httpx.Response(200, json={"code": 0, "msg": "ok", "data": {"batch_id": "b"}})
        return httpx.Response(200, json={"code": 0, "message": "ok",
                                         "data": {"taskId": "t-1"}, "timestamp": 1})

    svc = Docparse(settings("http://parser"), transport=httpx.MockTransport(handler),
                   files=server)
    svc.callback_url, svc.seed = "http://me/callbacks/docparse", "s_1"
    opts = {"is_ocr": True, "enable_formula": False, "page_ranges": "1-2",
            "model_version": "vlm", "extra_formats": ["html"]}
    link = make_doc(tmp_path, 50, url="https://example.com/x.pdf", options=opts)
    f1, f2 = make_doc(tmp_path, 51, options=opts), make_doc(tmp_path, 52, options=opts)
    out = asyncio.run(svc.submit_batch([link], {50: tmp_path}, Store()))
    store = Store()
    out2 = asyncio.run(svc.submit_batch([f1, f2], {51: tmp_path, 52: tmp_path}, store))
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
    assert batch["files"][0]["url"].startswith(f"{server.url}/files/51/")
    assert batch["files"][0]["url"].endswith("/recibo.pdf")
    assert store.remote[51]["batch_id"] == "b" and out2[52].remote["batch_id"] == "b"


def test_checkpointed_task_is_not_sent_again(tmp_path: Path, files: Any) -> None:
    server, _jobs, _ = files
    calls: list[httpx.Request] = []
    svc = Docparse(settings("http://parser"), files=server,
                   transport=httpx.MockTransport(lambda r: calls.append(r) or
                                                 httpx.Response(500)))
    doc = make_doc(tmp_path, 60, remote={"task_id": "t-7", "data_id": "d"})
    out = asyncio.run(svc.submit_batch([doc], {60: tmp_path}, Store()))[60]
    assert isinstance(out, Accepted) and out.remote["task_id"] == "t-7"
    assert calls == []
