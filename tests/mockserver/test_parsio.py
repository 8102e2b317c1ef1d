"""Parsio mock behaviour, in-process (ASGI): auth, mailboxes, uploads, documents, credits,
listings, limits, and the shared journal, ledger and faults."""

from __future__ import annotations

import io
import json
import time
import zipfile
from typing import Any

import anyio
import httpx
import pytest

from mockserver.core import MockContext
from mockserver.defaults import PARSIO_API_KEY, PARSIO_MAILBOX_ID
from mockserver.samples import multipage_pdf, receipt_pdf

pytestmark = pytest.mark.anyio

KEY = {"X-API-Key": PARSIO_API_KEY}
MB = f"/mailboxes/{PARSIO_MAILBOX_ID}"
RECEIPT = {
    "fecha": "23/12/2025",
    "total": "45.99",
    "lineas_detalle": [{"descripcion": "Gasoil", "cantidad": "50L"}],
}


def fast(ctx: MockContext, **changes: Any) -> None:
    """Parsing over in no time unless a test says otherwise."""
    ctx.configure(
        {"parsio": {"queue_seconds": 0, "parse_seconds": 0, "seconds_per_page": 0, **changes}}
    )


async def upload(
    client: httpx.AsyncClient,
    data: bytes | None = None,
    *,
    sync: bool = True,
    name: str = "recibo.pdf",
    meta: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        f"{MB}/{'upload-sync' if sync else 'upload'}",
        headers=KEY if headers is None else headers,
        files={"file": (name, receipt_pdf() if data is None else data, "application/pdf")},
        data={"meta": meta} if meta is not None else None,
    )


async def test_every_route_wants_the_api_key(client: httpx.AsyncClient) -> None:
    routes = [
        ("GET", "/mailboxes"),
        ("GET", MB),
        ("GET", f"{MB}/tableFields"),
        ("POST", f"{MB}/upload-sync"),
        ("POST", f"{MB}/upload"),
        ("GET", f"{MB}/docs"),
        ("GET", f"{MB}/parsed"),
        ("GET", "/docs/0123456789abcdef01234567"),
    ]
    for headers in (
        {},
        {"X-API-Key": "not-the-key"},
        {"Authorization": f"Bearer {PARSIO_API_KEY}"},
    ):
        for method, path in routes:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"statusCode": 401, "message": "Unauthorized"}


async def test_mailboxes(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/mailboxes/", headers=KEY)).json()
    assert isinstance(listed, list) and [m["_id"] for m in listed] == [PARSIO_MAILBOX_ID]
    assert {"_id", "name", "email_prefix", "process_attachments"} <= set(listed[0])
    assert (await client.get(MB, headers=KEY)).json() == listed[0]
    missing = await client.get("/mailboxes/0123456789abcdef01234567", headers=KEY)
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404
    tables = (await client.get(f"{MB}/tableFields", headers=KEY)).json()
    assert [t["name"] for t in tables] == ["lineas_detalle"] and tables[0]["_id"]


async def test_upload_sync_answers_the_parsed_receipt_with_meta(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    fast(ctx)
    response = await upload(client, meta=json.dumps({"orderId": "123"}))
    assert response.status_code == 201
    doc = response.json()
    assert doc["status"] == "parsed" and doc["parsing_in_progress"] is False
    assert doc["_id"] == doc["doc_id"] and len(doc["doc_id"]) == 24
    assert doc["name"] == "recibo.pdf" and doc["content_type"] == "application/pdf"
    assert doc["json"] == {**RECEIPT, "__meta__": {"orderId": "123"}}
    assert doc["credits"] == 1
    # The same document, later.
    again = (await client.get(f"/docs/{doc['doc_id']}", headers=KEY)).json()
    assert again == doc
    # What the shared runtime saw: the request (key masked) and the accepted document.
    [entry] = [e for e in ctx.journal.entries() if e["path"] == f"{MB}/upload-sync"]
    assert entry["headers"]["x-api-key"] == "****" and entry["status"] == 201
    [task] = ctx.ledger.entries("parsio")
    assert task["id"] == doc["doc_id"] and task["state"] == "parsed" and task["mode"] == "sync"


async def test_meta_forms(client: httpx.AsyncClient, ctx: MockContext) -> None:
    fast(ctx)
    plain = (await upload(client, meta="not json")).json()
    assert plain["json"]["__meta__"] == "not json"
    none = (await upload(client)).json()
    assert "__meta__" not in none["json"]
    bracketed = await client.post(
        f"{MB}/upload-sync",
        headers=KEY,
        files={"file": ("r.pdf", receipt_pdf(), "application/pdf")},
        data={"meta[orderId]": "7"},
    )
    assert bracketed.json()["json"]["__meta__"] == {"orderId": "7"}


async def test_sync_timeout_answers_the_id_and_parsing_goes_on(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    ctx.configure(
        {"parsio": {"sync_timeout_seconds": 0.2, "queue_seconds": 0, "parse_seconds": 3600}}
    )
    started = time.monotonic()
    response = await upload(client)
    assert time.monotonic() - started < 5
    body = response.json()
    assert body == {"doc_id": body["doc_id"], "parsing_in_progress": True, "status": "parsing"}
    doc = (await client.get(f"/docs/{body['doc_id']}", headers=KEY)).json()
    assert doc["status"] == "parsing" and "json" not in doc and doc["processedAt"] is None
    ctx.clock.advance(3601)  # + 1 s for its page
    doc = (await client.get(f"/docs/{body['doc_id']}", headers=KEY)).json()
    assert doc["status"] == "parsed" and doc["json"] == RECEIPT and doc["processedAt"]


async def test_upload_is_asynchronous_new_parsing_parsed(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    response = await upload(client, multipage_pdf(2), sync=False)
    assert response.status_code == 201
    doc = response.json()
    assert doc["status"] == "new" and doc["parsing_in_progress"] is True
    url = f"/docs/{doc['doc_id']}"
    # Defaults: 0.5 s queued, then 2 s + 1 s a page.
    ctx.clock.advance(1)
    assert (await client.get(url, headers=KEY)).json()["status"] == "parsing"
    ctx.clock.advance(3.6)
    done = (await client.get(url, headers=KEY)).json()
    assert done["status"] == "parsed" and done["credits"] == 2
    # A document without the receipt's lines: every field of the schema, empty.
    assert done["json"] == {"fecha": None, "total": None, "lineas_detalle": []}


async def test_a_zip_upload_makes_one_document_per_file(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    fast(ctx)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("a/uno.pdf", receipt_pdf())
        archive.writestr("dos.pdf", receipt_pdf(total="1.00"))
        archive.writestr("folder/", b"")
    response = await upload(client, buf.getvalue(), sync=False, name="lote.zip", meta='{"b": 1}')
    docs = response.json()
    assert isinstance(docs, list) and [d["name"] for d in docs] == ["uno.pdf", "dos.pdf"]
    totals = [
        (await client.get(f"/docs/{d['doc_id']}", headers=KEY)).json()["json"]["total"]
        for d in docs
    ]
    assert totals == ["45.99", "1.00"]
    refused = await upload(client, buf.getvalue(), name="lote.zip")
    assert refused.status_code == 400  # ZIPs go to /upload only
    broken = await upload(client, b"PK\x03\x04 not really", sync=False, name="x.zip")
    assert broken.status_code == 400
    # A small archive that inflates past the upload limit is refused, not unpacked.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for n in range(3):
            archive.writestr(f"{n}.pdf", b"\0" * 4000)
    fast(ctx, max_bytes=10_000)
    assert (await upload(client, bomb.getvalue(), sync=False, name="b.zip")).status_code == 413


async def test_unreadable_files_fail_without_credits(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    fast(ctx)
    doc = (await upload(client, b"%PDF-1.7\nbroken", name="roto.pdf")).json()
    assert doc["status"] == "fail" and "json" not in doc and doc["credits"] == 0
    assert (await upload(client, b"")).status_code == 400
    missing = await client.post(f"{MB}/upload-sync", headers=KEY, data={"meta": "{}"})
    assert missing.status_code == 400 and missing.json()["error"] == "Bad Request"


async def test_credits_run_out_documents_wait_in_quota_then_resume(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    fast(ctx, monthly_credits=2)
    first = (await upload(client, multipage_pdf(2))).json()
    assert first["status"] == "parsed"
    waiting = (await upload(client)).json()  # upload-sync answers at once
    assert waiting["status"] == "quota" and "json" not in waiting
    later = (await upload(client, sync=False)).json()
    assert later["status"] == "quota"
    assert [t["state"] for t in ctx.ledger.entries("parsio")] == ["parsed", "quota", "quota"]
    listed = (await client.get(f"{MB}/docs", headers=KEY, params={"status": "quota"})).json()
    assert listed["totalDocs"] == 2
    # The next period: both start, oldest first.
    ctx.clock.advance(30 * 86400)
    for doc in (waiting, later):
        assert (await client.get(f"/docs/{doc['doc_id']}", headers=KEY)).json()["status"] == (
            "parsed"
        )
    # Or the plan is raised: a waiting document starts at once.
    fast(ctx, monthly_credits=3)
    ctx.clock.advance(30 * 86400)
    await upload(client, multipage_pdf(3))  # uses the period's 3 credits
    stuck = (await upload(client)).json()
    assert stuck["status"] == "quota"
    ctx.configure({"parsio": {"monthly_credits": None}})
    assert (await client.get(f"/docs/{stuck['doc_id']}", headers=KEY)).json()["status"] == "parsed"


async def test_listing_filters_and_pages(client: httpx.AsyncClient, ctx: MockContext) -> None:
    fast(ctx)
    ids = [(await upload(client, name=f"recibo-{n}.pdf")).json()["doc_id"] for n in range(3)]
    await upload(client, b"%PDF-1.7\nbroken", name="otro.pdf")
    page = (await client.get(f"{MB}/docs", headers=KEY, params={"per_page": 2})).json()
    assert set(page) >= {"docs", "totalDocs", "limit", "page", "totalPages", "pagingCounter",
                         "hasPrevPage", "hasNextPage"}  # fmt: skip
    assert page["totalDocs"] == 4 and page["totalPages"] == 2 and page["hasNextPage"] is True
    assert {"_id", "name", "status", "createdAt", "mailboxId"} <= set(page["docs"][0])
    assert "json" not in page["docs"][0]
    second = await client.get(f"{MB}/docs", headers=KEY, params={"per_page": 2, "page": 2})
    assert second.json()["pagingCounter"] == 3 and second.json()["hasNextPage"] is False
    found = (await client.get(f"{MB}/docs", headers=KEY, params={"q": "RECIBO-1"})).json()
    assert [d["_id"] for d in found["docs"]] == [ids[1]]
    failed = (await client.get(f"{MB}/docs?status=fail,quota", headers=KEY)).json()
    assert [d["name"] for d in failed["docs"]] == ["otro.pdf"]
    today = time.strftime("%Y-%m-%d", time.gmtime(ctx.clock.now()))
    dated = (await client.get(f"{MB}/docs", headers=KEY, params={"from": today})).json()
    assert dated["totalDocs"] == 4
    before = (await client.get(f"{MB}/docs", headers=KEY, params={"to": "2000-01-01"})).json()
    assert before["totalDocs"] == 0
    for bad in ({"from": "07/05/2026"}, {"to": "2026-02-30"}, {"page": "0"}, {"per_page": "x"}):
        response = await client.get(f"{MB}/docs", headers=KEY, params=bad)
        assert response.status_code == 400, bad
        assert isinstance(response.json()["message"], list)


async def test_parsed_listing(client: httpx.AsyncClient, ctx: MockContext) -> None:
    fast(ctx)
    doc = (await upload(client, meta='{"k": 1}')).json()
    await upload(client, b"%PDF-1.7\nbroken", name="otro.pdf")
    body = (await client.get(f"{MB}/parsed", headers=KEY)).json()
    assert body["docIds"] == [doc["doc_id"]] and body["totalDocs"] == 1
    [row] = body["docs"]
    assert row["total"] == "45.99" and row["__meta__"] == {"k": 1}
    assert row["received_at_datetime"].endswith("Z")


async def test_size_limits(client: httpx.AsyncClient, ctx: MockContext) -> None:
    fast(ctx, sync_max_bytes=100, max_bytes=len(receipt_pdf()))
    response = await upload(client)
    assert response.status_code == 413 and response.json()["message"] == "File too large"
    assert (await upload(client, sync=False)).status_code == 201
    assert (await upload(client, receipt_pdf() + b" " * 10, sync=False)).status_code == 413
    assert ctx.ledger.entries("parsio")[0]["mode"] == "async"


async def test_rate_limit_when_asked_for(client: httpx.AsyncClient, ctx: MockContext) -> None:
    ctx.configure({"parsio": {"rate_per_second": 1, "rate_burst": 1}})
    assert (await client.get("/mailboxes", headers=KEY)).status_code == 200
    limited = await client.get("/mailboxes", headers=KEY)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"


async def test_faults_apply_to_parsio_paths(client: httpx.AsyncClient, ctx: MockContext) -> None:
    ctx.faults.add({"path": f"{MB}/upload-sync", "status": 503, "times": 1})
    assert (await upload(client)).status_code == 503
    assert ctx.ledger.entries("parsio") == []  # the fault answered before the service


async def test_unknown_document_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/0123456789abcdef01234567", headers=KEY)
    assert response.status_code == 404 and response.json()["error"] == "Not Found"


async def test_a_slow_sync_upload_is_answered_when_the_clock_moves(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    """upload-sync waits on the mock clock: an advance ends the wait (tests never sleep)."""
    ctx.configure({"parsio": {"parse_seconds": 3000}})
    answers: list[dict[str, Any]] = []

    async def send() -> None:
        answers.append((await upload(client)).json())

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        while not ctx.ledger.entries("parsio"):
            await anyio.sleep(0.01)
        ctx.clock.advance(3600)
    assert answers[0]["status"] == "parsed"


async def test_reset_forgets_documents_and_credits(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    fast(ctx, monthly_credits=1)
    doc = (await upload(client)).json()
    ctx.reset()
    fast(ctx, monthly_credits=1)
    assert (await client.get(f"/docs/{doc['doc_id']}", headers=KEY)).status_code == 404
    assert (await upload(client)).json()["status"] == "parsed"
