"""Hostile answers met by the real services and the daemon, in-process: a full disk while
a MinerU result arrives is the host's trouble (the documents wait), never an internal
error for the whole batch; a service that echoes its key back leaves no trace of it in
an error, the error file or the state database."""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daemon import config, redact
from daemon.errors import CredentialsError, HostError, RemoteRejected
from daemon.lifecycle import Daemon
from daemon.services.base import Accepted, Received, ServiceContext, SourceDocument, alone
from daemon.services.mineru import Mineru, MineruSettings
from daemon.services.nanonets import Nanonets, NanonetsSettings
from daemon.settings import Secret
from mockserver import defaults
from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.samples import receipt_pdf
from tests.helpers import write_config


def make_doc(tmp_path: Path, job_id: int) -> SourceDocument:
    data = receipt_pdf()
    path = tmp_path / f"in-{job_id}.pdf"
    path.write_bytes(data)
    return SourceDocument(
        job_id=job_id,
        path=path,
        name=f"recibo-{job_id}.pdf",
        kind="pdf",
        pages=1,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        workdir=tmp_path / f"w{job_id}",
    )


def with_remote(doc: SourceDocument, remote: dict[str, Any]) -> SourceDocument:
    return SourceDocument(**{**doc.__dict__, "remote": dict(remote)})


@pytest.fixture
def ctx() -> Iterator[MockContext]:
    c = MockContext()
    yield c
    c.close()


def mineru(ctx: MockContext) -> Mineru:
    settings = MineruSettings(
        name="mineru",
        base_url="http://mock",
        credential=Secret(defaults.MINERU_TOKEN, "inline"),
        timeout=10,
    )
    return Mineru(settings, ServiceContext(transport=httpx.ASGITransport(app=create_app(ctx))))


async def until_answered(m: Mineru, ctx: MockContext, docs: list[SourceDocument]) -> dict[int, Any]:
    """Submit, then poll the batch (the mock's clock advanced, never slept) until every
    document has an answer other than 'later'."""
    out = await m.submit(docs, lambda _j, _r: None)
    current = {d.job_id: with_remote(d, dict(out[d.job_id].remote)) for d in docs}
    final: dict[int, Any] = {}
    for _ in range(30):
        ctx.clock.advance(3)
        for job_id, o in (await m.poll(list(current.values()), lambda _j, _r: None)).items():
            if isinstance(o, Accepted):
                current[job_id] = with_remote(current[job_id], dict(o.remote))
            else:
                final[job_id] = o
                current.pop(job_id)
        if not current:
            break
    await m.aclose()
    return final


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_while_a_result_zip_arrives_is_that_documents_host_error(
    tmp_path: Path, ctx: MockContext
) -> None:
    """Before: ENOSPC escaped ``poll`` as a plain OSError and the whole batch was recorded
    as a docinbox bug.  Now the document whose result met the full disk gets a HostError
    (it waits and tries again) and the others of the batch are received."""
    docs = [make_doc(tmp_path, 1), make_doc(tmp_path, 2)]
    (tmp_path / "w1").mkdir()
    (tmp_path / "w1" / "result.zip.part").symlink_to("/dev/full")  # a real ENOSPC
    final = asyncio.run(until_answered(mineru(ctx), ctx, docs))
    assert isinstance(final[1], HostError), final
    assert f"in {tmp_path / 'w1'}: the disk is full" in final[1].message
    assert isinstance(final[2], Received), final
    assert list((tmp_path / "w1").iterdir()) == []  # no .part, no zip, no half folder


def test_a_full_disk_while_the_result_unpacks_is_a_host_error(
    tmp_path: Path, ctx: MockContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = Path.open

    def opening(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "x" in mode and self.parent.name.startswith(".raw."):  # a member being unpacked
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", opening)
    final = asyncio.run(until_answered(mineru(ctx), ctx, [make_doc(tmp_path, 1)]))
    assert isinstance(final[1], HostError), final
    assert "cannot unpack the result in" in final[1].message
    assert list((tmp_path / "w1").iterdir()) == []


# --- a service that echoes its key -------------------------------------------------------------

KEY = defaults.NANONETS_API_KEY


def echoes(key_source: str) -> str:
    """An error text quoting the credential back in every form a server might."""
    return json.dumps(
        {
            "message": f"invalid credentials {key_source}",
            "raw": KEY,
            "basic": "Basic " + base64.b64encode(f"{KEY}:".encode()).decode(),
            "bearer": f"Bearer {KEY}",
            "query": "api_key=" + urllib.parse.quote_plus(KEY),
        }
    )


def echoing(status: int) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        body = echoes(request.headers.get("authorization", ""))
        return httpx.Response(
            status, content=body.encode(), headers={"Content-Type": "application/json"}
        )

    return httpx.MockTransport(handler)


def leaks(text: str) -> list[str]:
    forms = {KEY, base64.b64encode(f"{KEY}:".encode()).decode(), urllib.parse.quote_plus(KEY)}
    return sorted(f for f in forms if f in text)


@pytest.fixture
def key_registered() -> Iterator[None]:
    """What ``docinbox run`` does at start (logs.setup registers the config's secrets)."""
    with redact.only([KEY, defaults.MINERU_TOKEN]):
        yield


@pytest.mark.usefixtures("key_registered")
@pytest.mark.parametrize("status", [400, 401])
def test_nanonets_echoing_its_key_leaves_it_out_of_the_error(tmp_path: Path, status: int) -> None:
    settings = NanonetsSettings(
        name="nanonets",
        base_url="http://svc",
        credential=Secret(KEY, "inline"),
        timeout=10,
        model_id=defaults.NANONETS_MODEL_ID,
    )
    n = Nanonets(settings, ServiceContext(transport=echoing(status)))
    with pytest.raises((RemoteRejected, CredentialsError)) as info:
        asyncio.run(alone(n.submit, make_doc(tmp_path, 1)))
    assert "invalid credentials" in info.value.message
    assert leaks(info.value.message) == []
    assert leaks(str(info.value)) == []


@pytest.mark.usefixtures("key_registered")
def test_mineru_echoing_its_token_leaves_it_out_of_the_pause(tmp_path: Path) -> None:
    settings = MineruSettings(
        name="mineru",
        base_url="http://svc",
        credential=Secret(defaults.MINERU_TOKEN, "inline"),
        timeout=10,
    )

    def handler(request: httpx.Request) -> httpx.Response:
        said = request.headers["authorization"]
        return httpx.Response(401, json={"msgCode": "A0202", "msg": f"token {said} invalid"})

    m = Mineru(settings, ServiceContext(transport=httpx.MockTransport(handler)))
    outcome = asyncio.run(m.submit([make_doc(tmp_path, 1)], lambda _j, _r: None))[1]
    assert isinstance(outcome, CredentialsError)
    assert "token Bearer ****" in outcome.message
    assert defaults.MINERU_TOKEN not in outcome.message


@pytest.mark.usefixtures("key_registered")
def test_the_daemon_stores_no_echoed_key(workdir: Path) -> None:
    """The error file, the state database and the log of a document whose service
    answered with the key in its error text."""
    (workdir / "inbox" / "recibo.pdf").write_bytes(receipt_pdf())
    settings = config.load(write_config(workdir, "http://svc"))
    daemon = Daemon(settings, transport=echoing(400), start_mock=False, fsync=False)
    try:
        assert daemon.run(once=True) == 1
    finally:
        daemon.close()
    error_file = workdir / "failed" / "recibo.pdf.error.json"
    error = json.loads(error_file.read_text("utf-8"))
    assert error["error"] == "rejected" and "invalid credentials" in error["message"]
    assert leaks(error_file.read_text("utf-8")) == []
    for name in ("docinbox.db", "docinbox.db-wal"):
        path = workdir / "state" / name
        if path.exists():
            assert leaks(path.read_bytes().decode("latin-1")) == [], name
