"""Nanonets v2 mock behaviour, in-process (plus LabelUrls through a real server)."""

from __future__ import annotations

import base64

import anyio
import httpx
import pytest

from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from mockserver.samples import multipage_pdf, pdf_bytes, receipt_pdf

pytestmark = pytest.mark.anyio

AUTH = (NANONETS_API_KEY, "")
VARIANTS = {
    "original",
    "original_compressed",
    "thumbnail",
    "acw_rotate_90",
    "acw_rotate_180",
    "acw_rotate_270",
    "original_with_long_expiry",
}
MODEL = f"/api/v2/OCR/Model/{NANONETS_MODEL_ID}"


def pdf_file(data: bytes | None = None, name: str = "recibo.pdf") -> dict:
    return {"file": (name, receipt_pdf() if data is None else data, "application/pdf")}


async def label_file(client: httpx.AsyncClient, data: bytes | None = None, *, query: str = "",
                     **form: str) -> httpx.Response:  # fmt: skip
    return await client.post(
        f"{MODEL}/LabelFile/{query}", auth=AUTH, files=pdf_file(data), data=form or None
    )


def ack_pages(body: dict) -> list[dict]:
    """The page entries of an async acknowledgement, nested twice as the docs show it."""
    return [page for file in body["result"] for page in file["result"]]


def raw_key(body: dict) -> str:
    """The RawPredictions key of ``signed_urls`` (the uploaded original)."""
    return next(k for k in body["signed_urls"] if "/RawPredictions/" in k)


async def test_sync_prediction_matches_the_receipt(client: httpx.AsyncClient) -> None:
    response = await label_file(client, request_metadata='{"matricula": "1234-ABC"}')
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Success"
    (entry,) = body["result"]
    assert entry["message"] == "Success"
    assert entry["input"] == "recibo.pdf"
    assert entry["page"] == 0 and entry["processing_type"] == "sync"  # a real capture
    assert (
        entry["filepath"]
        == f"uploadedfiles/{NANONETS_MODEL_ID}/PredictionImages/{entry['id']}.jpeg"
    )
    assert entry["file_url"] == (
        f"uploadedfiles/{NANONETS_MODEL_ID}/RawPredictions/{entry['request_file_id']}.pdf"
    )
    assert entry["request_metadata"] == '{"matricula": "1234-ABC"}'
    fields = {p["label"]: p for p in entry["prediction"] if p["type"] == "field"}
    assert fields["fecha"]["ocr_text"] == "23/12/2025"
    assert fields["total"]["ocr_text"] == "45.99"
    for field in fields.values():
        assert set(field) >= {"id", "label", "xmin", "ymin", "xmax", "ymax", "score",
                              "ocr_text", "type", "status", "page_no", "label_id"}  # fmt: skip
        assert all(isinstance(field[k], int) for k in ("xmin", "ymin", "xmax", "ymax"))
        assert field["xmin"] < field["xmax"] and field["ymin"] < field["ymax"]
        assert field["page_no"] == 0 and field["status"] == "correctly_predicted"
    assert fields["fecha"]["ymax"] <= fields["total"]["ymin"]  # the date line is above
    (table,) = [p for p in entry["prediction"] if p["type"] == "table"]
    assert table["label"] == "lineas_detalle"
    assert [(c["row"], c["col"], c["label"], c["text"]) for c in table["cells"]] == [
        (1, 1, "descripcion", "Gasoil"),
        (1, 2, "cantidad", "50L"),
    ]
    # keyed by storage path (real captures): the page image and the raw file
    assert set(body["signed_urls"]) == {entry["filepath"], entry["file_url"]}
    variants = body["signed_urls"][entry["filepath"]]
    assert set(variants) == VARIANTS
    raw = body["signed_urls"][entry["file_url"]]
    assert raw["original"].startswith("http") and raw["thumbnail"] == ""


async def test_the_seeds_flat_signed_urls_and_processing_type(
    client: httpx.AsyncClient,
) -> None:
    await client.post(
        "/__admin/config",
        json={"nanonets": {"signed_urls": "flat", "sync_processing_type": ""}},
    )
    body = (await label_file(client)).json()
    assert set(body["signed_urls"]) == {"original", "original_with_long_expiry"}
    assert body["result"][0]["processing_type"] == ""


async def test_several_files_in_one_request(client: httpx.AsyncClient) -> None:
    files = [
        ("file", ("a.pdf", receipt_pdf(), "application/pdf")),
        ("file", ("b.pdf", receipt_pdf(total="1.00"), "application/pdf")),
    ]
    body = (await client.post(f"{MODEL}/LabelFile/", auth=AUTH, files=files)).json()
    assert [e["input"] for e in body["result"]] == ["a.pdf", "b.pdf"]
    paths = {e["filepath"] for e in body["result"]} | {e["file_url"] for e in body["result"]}
    assert set(body["signed_urls"]) == paths and len(paths) == 4
    await client.post("/__admin/config", json={"nanonets": {"signed_urls": "flat"}})
    body = (await client.post(f"{MODEL}/LabelFile/", auth=AUTH, files=files)).json()
    ids = {e["request_file_id"] for e in body["result"]}
    assert set(body["signed_urls"]) == ids
    assert all(set(v) == {"original", "original_with_long_expiry"}
               for v in body["signed_urls"].values())  # fmt: skip


async def test_predictions_are_deterministic_in_the_bytes(client: httpx.AsyncClient) -> None:
    first = (await label_file(client)).json()["result"][0]
    second = (await label_file(client)).json()["result"][0]
    assert first["request_file_id"] != second["request_file_id"]
    assert first["prediction"] == second["prediction"]
    other = (await label_file(client, receipt_pdf(total="10.00"))).json()["result"][0]
    totals = [p["ocr_text"] for p in other["prediction"] if p["label"] == "total"]
    assert totals == ["10.00"]


async def test_table_rows_and_one_entry_per_page(client: httpx.AsyncClient) -> None:
    pages = [
        ["Fecha: 01/02/2026", "lineas_detalle", "Gasoil 50L", "AdBlue 10L", "Total: 80.10"],
        ["Nothing to see here"],
    ]
    body = (await label_file(client, pdf_bytes(pages))).json()
    assert [e["page"] for e in body["result"]] == [0, 1]
    table = next(p for p in body["result"][0]["prediction"] if p["type"] == "table")
    rows = {(c["row"], c["col"]): c["text"] for c in table["cells"]}
    assert rows == {(1, 1): "Gasoil", (1, 2): "50L", (2, 1): "AdBlue", (2, 2): "10L"}
    assert body["result"][1]["prediction"] == []


async def test_pages_to_process_selects_pages(client: httpx.AsyncClient) -> None:
    body = (await label_file(client, multipage_pdf(5), pages_to_process="2,4")).json()
    assert [e["page"] for e in body["result"]] == [1, 3]
    bad = await label_file(client, multipage_pdf(2), pages_to_process="zero")
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["GetPredictions", "getFile"])
async def test_async_then_polling_processing_then_done(
    client: httpx.AsyncClient, ctx: MockContext, path: str
) -> None:
    response = await client.post(
        f"{MODEL}/LabelFile/?async=true",
        auth=AUTH,
        files=pdf_file(multipage_pdf(4), name="documento.pdf"),
    )
    assert response.status_code == 200
    body = response.json()
    # the docs nest result twice (nanonets.readme.io ocrmodellabelfileasyncbymodelidpost)
    (file_entry,) = body["result"]
    assert file_entry["message"] == "Success"
    pages = ack_pages(body)
    assert [p["page"] for p in pages] == [0, 1, 2, 3]
    assert all(p["prediction"] == [] and p["processing_type"] == "async" for p in pages)
    rid = pages[0]["request_file_id"]
    url = (
        f"/api/v2/Inferences/Model/{NANONETS_MODEL_ID}/InferenceRequestFiles/GetPredictions/{rid}"
        if path == "GetPredictions"
        else f"{MODEL}/getFile/{rid}/"
    )
    pending = (await client.get(url, auth=AUTH)).json()
    # while processing: the pages, each with status "pending" and no boxes yet
    assert pending["unmoderated_images_count"] == 4
    assert {p["status"] for p in pending["unmoderated_images"]} == {"pending"}
    assert all(p["predicted_boxes"] == [] for p in pending["unmoderated_images"])
    tasks = (await client.get("/__admin/tasks")).json()["tasks"]
    assert [t["state"] for t in tasks] == ["processing"]
    ctx.clock.advance(5 + 4 * 2 - 0.5)
    still = (await client.get(url, auth=AUTH)).json()
    assert {p["status"] for p in still["unmoderated_images"]} == {"pending"}
    await client.post("/__admin/clock/advance", json={"seconds": 1})
    done = (await client.get(url, auth=AUTH)).json()
    assert done["unmoderated_images_count"] == 4
    assert [p["page"] for p in done["unmoderated_images"]] == [0, 1, 2, 3]
    page = done["unmoderated_images"][0]
    assert page["status"] == "success" and page["original_file_name"] == "documento.pdf"
    assert page["request_file_id"] == rid and page["is_moderated"] is False
    assert page["predicted_boxes"] == page["moderated_boxes"]
    assert (await client.get("/__admin/tasks")).json()["tasks"][0]["state"] == "done"


async def test_the_seeds_empty_view_while_processing_and_flat_ack(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    await client.post(
        "/__admin/config", json={"nanonets": {"pending_view": "empty", "async_ack": "flat"}}
    )
    response = await label_file(client, multipage_pdf(4), query="?async=true")
    (entry,) = response.json()["result"]
    assert entry["prediction"] == [] and entry["processing_type"] == "async"
    rid = entry["request_file_id"]
    pending = (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).json()
    assert pending["moderated_images_count"] == 0 and pending["unmoderated_images_count"] == 0
    assert pending["unmoderated_images"] == []
    ctx.clock.advance(5 + 4 * 2 + 1)
    done = (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).json()
    assert done["unmoderated_images_count"] == 4


async def test_async_timing_is_configurable(client: httpx.AsyncClient, ctx: MockContext) -> None:
    await client.post(
        "/__admin/config",
        json={"nanonets": {"async_queue_seconds": 0, "async_seconds_per_page": 0}},
    )
    rid = ack_pages((await label_file(client, query="?async=true")).json())[0]["request_file_id"]
    done = (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).json()
    assert done["unmoderated_images_count"] == 1
    assert done["unmoderated_images"][0]["status"] == "success"


async def test_update_approve_export_delete(client: httpx.AsyncClient) -> None:
    rid = (await label_file(client)).json()["result"][0]["request_file_id"]
    edit = await client.patch(
        f"{MODEL}/UpdateFile/{rid}/",
        auth=AUTH,
        json={"fields": [{"label": "fecha", "ocr_text": "2025-12-23"}]},
    )
    assert edit.status_code == 200
    page = (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).json()["unmoderated_images"][0]
    moderated = {b["label"]: b for b in page["moderated_boxes"]}
    predicted = {b["label"]: b for b in page["predicted_boxes"]}
    assert moderated["fecha"]["ocr_text"] == "2025-12-23"
    assert moderated["fecha"]["status"] == "moderated"
    assert predicted["fecha"]["ocr_text"] == "23/12/2025"
    unknown = await client.patch(
        f"{MODEL}/UpdateFile/{rid}/",
        auth=AUTH,
        json={"fields": [{"label": "iva", "ocr_text": "1"}]},
    )
    assert unknown.status_code == 400
    assert (await client.post(f"{MODEL}/ApproveFile/{rid}/", auth=AUTH)).status_code == 200
    approved = (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).json()
    assert approved["moderated_images_count"] == 1 and approved["unmoderated_images_count"] == 0
    assert approved["moderated_images"][0]["is_moderated"] is True
    assert (await client.post(f"{MODEL}/ExportFile/{rid}/", auth=AUTH)).status_code == 200
    assert (await client.delete(f"{MODEL}/DeleteFile/{rid}/", auth=AUTH)).status_code == 200
    assert (await client.get(f"{MODEL}/getFile/{rid}/", auth=AUTH)).status_code == 404
    assert (await client.get("/__admin/tasks")).json()["tasks"][0]["state"] == "deleted"


async def test_approving_a_file_the_bounded_ledger_dropped_still_works() -> None:
    ctx = MockContext(ledger_size=1)  # the second upload pushes the first out of the ledger
    transport = httpx.ASGITransport(create_app(ctx))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as client:
            first = (await label_file(client)).json()["result"][0]["request_file_id"]
            await label_file(client)
            approve = await client.post(f"{MODEL}/ApproveFile/{first}/", auth=AUTH)
            assert approve.status_code == 200
            approved = (await client.get(f"{MODEL}/getFile/{first}/", auth=AUTH)).json()
            assert approved["moderated_images_count"] == 1
    finally:
        ctx.close()


async def test_image_level_inferences_and_model_images(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    body = (await label_file(client, multipage_pdf(2))).json()
    page_id = body["result"][1]["id"]
    one = (await client.get(f"{MODEL}/ImageLevelInferences/{page_id}/", auth=AUTH)).json()
    assert [p["id"] for p in one["unmoderated_images"]] == [page_id]
    missing = await client.get(f"{MODEL}/ImageLevelInferences/nope/", auth=AUTH)
    assert missing.status_code == 404
    params = {"start_day_interval": 30, "current_batch_day": 0}
    listing = (await client.get(f"{MODEL}/getModelImages/", auth=AUTH, params=params)).json()
    assert listing["unmoderated_images_count"] == 2
    ctx.clock.advance(40 * 86400)
    later = (await client.get(f"{MODEL}/getModelImages/", auth=AUTH, params=params)).json()
    assert later["unmoderated_images_count"] == 0
    day = int(ctx.clock.now() // 86400)
    absolute = {"start_day_interval": day - 41, "current_batch_day": day}
    by_day = (await client.get(f"{MODEL}/getModelImages/", auth=AUTH, params=absolute)).json()
    assert by_day["unmoderated_images_count"] == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": f"Bearer {NANONETS_API_KEY}"},
        {"Authorization": "Basic " + base64.b64encode(f":{NANONETS_API_KEY}".encode()).decode()},
        {"Authorization": "Basic " + base64.b64encode(b"wrong-key:").decode()},
        {"Authorization": "Basic not-base64!!"},
    ],
    ids=["missing", "bearer", "key-as-password", "wrong-key", "garbage"],
)
async def test_401_for_anything_but_the_key_as_user(
    client: httpx.AsyncClient, headers: dict
) -> None:
    response = await client.get(f"{MODEL}/getFile/x/", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert response.json() == {"message": "The API key was missing or invalid"}


async def test_key_with_a_password_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/OCR/Model/", auth=(NANONETS_API_KEY, "ignored"))
    assert response.status_code == 200
    assert response.json()[0]["model_id"] == NANONETS_MODEL_ID


async def test_404_for_an_unknown_model(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v2/OCR/Model/11111111-1111-1111-1111-111111111111/LabelFile/",
        auth=AUTH,
        files=pdf_file(),
    )
    assert response.status_code == 404
    assert "Model does not exists" in response.json()["message"]


async def test_400s(client: httpx.AsyncClient) -> None:
    missing = await client.post(f"{MODEL}/LabelFile/", auth=AUTH, data={"x": "1"})
    assert missing.status_code == 400 and "File missing" in missing.json()["message"]
    text = await client.post(
        f"{MODEL}/LabelFile/", auth=AUTH, files={"file": ("a.txt", b"hello", "text/plain")}
    )
    assert text.status_code == 400 and "Incorrect image" in text.json()["message"]
    broken = await label_file(client, b"%PDF-1.4 broken")
    assert broken.status_code == 400
    no_urls = await client.post(f"{MODEL}/LabelUrls/", auth=AUTH, json={"urls": []})
    assert no_urls.status_code == 400
    assert (await client.get("/__admin/tasks")).json()["tasks"] == []


async def test_402_when_the_free_quota_is_spent(client: httpx.AsyncClient) -> None:
    await client.post("/__admin/config", json={"nanonets": {"free_quota": 2}})
    assert (await label_file(client, b"junk")).status_code == 400  # refused: not billed
    assert [(await label_file(client)).status_code for _ in range(3)] == [200, 200, 402]
    quota = await label_file(client)
    assert "Exhausted Free API Calls" in quota.json()["message"]
    # reading results is not a prediction call
    assert (await client.get("/api/v2/OCR/Model/", auth=AUTH)).status_code == 200


async def test_429_with_retry_after_on_the_mock_clock(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    await client.post("/__admin/config", json={"nanonets": {"rate_per_second": 0.5,
                                                            "rate_burst": 2}})  # fmt: skip
    codes = [(await client.get("/api/v2/OCR/Model/", auth=AUTH)).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = await client.get("/api/v2/OCR/Model/", auth=AUTH)
    assert limited.headers["retry-after"] == "2"
    ctx.clock.advance(2)
    assert (await client.get("/api/v2/OCR/Model/", auth=AUTH)).status_code == 200


async def test_sync_long_document_waits_on_the_mock_clock(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    results: list[httpx.Response] = []

    async def call() -> None:
        results.append(await label_file(client, multipage_pdf(6)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        with anyio.fail_after(5):
            while not ctx.ledger.entries():
                await anyio.sleep(0.01)  # yield until the upload is registered
        assert results == []  # 3 extra pages x 2 s: still waiting
        ctx.clock.advance(6)
    assert results[0].status_code == 200
    assert len(results[0].json()["result"]) == 6


async def test_sync_too_long_is_a_gateway_timeout_but_still_processed(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    await client.post("/__admin/config", json={"nanonets": {"sync_timeout_seconds": 1}})
    ctx.clock.set_speed(1000)  # the 1 mock second passes in a millisecond
    response = await label_file(client, multipage_pdf(5))
    assert response.status_code == 504 and "Gateway" in response.text
    (task,) = (await client.get("/__admin/tasks")).json()["tasks"]
    ctx.clock.advance(10)
    done = (await client.get(f"{MODEL}/getFile/{task['id']}/", auth=AUTH)).json()
    assert done["unmoderated_images_count"] == 5


async def test_signed_original_download_and_expiry(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    data = receipt_pdf()
    body = (await label_file(client, data)).json()
    entry = body["result"][0]
    urls = body["signed_urls"][entry["filepath"]]
    assert (await client.get(urls["original"])).content == data
    assert (await client.get(body["signed_urls"][raw_key(body)]["original"])).content == data
    tampered = urls["original"].replace("sig=", "sig=0")
    assert (await client.get(tampered)).status_code == 403
    ctx.clock.advance(4 * 3600 - 5)  # docs: "original expiry urls are valid for 4 hrs"
    assert (await client.get(urls["original"])).status_code == 200
    ctx.clock.advance(10)
    expired = await client.get(urls["original"])
    assert expired.status_code == 403 and "expired" in expired.text
    ctx.clock.advance(179 * 86400)  # "... original with long expiry ... 180 days"
    assert (await client.get(urls["original_with_long_expiry"])).status_code == 200
    ctx.clock.advance(86400)
    assert (await client.get(urls["original_with_long_expiry"])).status_code == 403


async def test_training_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{MODEL}/Train/", auth=AUTH)).status_code == 400
    up = await client.post(f"{MODEL}/UploadFile/", auth=AUTH, files=pdf_file())
    assert up.status_code == 200 and up.json()["result"][0]["file"] == "recibo.pdf"
    trained = await client.post(f"{MODEL}/Train/", auth=AUTH)
    assert trained.status_code == 200 and trained.json()["training_images"] == 1
    assert (await client.post(f"{MODEL}/UploadUrls/", auth=AUTH, json={})).status_code == 400


async def test_get_model_lists_the_demo_labels(client: httpx.AsyncClient) -> None:
    model = (await client.get(f"{MODEL}/", auth=AUTH)).json()
    names = {c["name"]: c for c in model["categories"]}
    assert set(names) == {"fecha", "total", "lineas_detalle"}
    assert names["lineas_detalle"]["columns"] == ["descripcion", "cantidad"]


@pytest.mark.integration
def test_label_urls_fetches_the_document(mock_url: str) -> None:
    with httpx.Client(base_url=mock_url, auth=AUTH) as c:
        first = c.post(f"{MODEL}/LabelFile/", files=pdf_file()).json()
        url = first["signed_urls"][raw_key(first)]["original"]
        response = c.post(f"{MODEL}/LabelUrls/", json={"urls": [url]})
        assert response.status_code == 200
        (entry,) = response.json()["result"]
        assert entry["input"] == "recibo.pdf"
        assert {p["label"] for p in entry["prediction"]} == {"fecha", "total", "lineas_detalle"}
        partial = c.post(f"{MODEL}/LabelUrls/", json={"urls": [url, mock_url + "/missing.pdf"]})
        assert partial.status_code == 206
        bad = c.post(f"{MODEL}/LabelUrls/", json={"urls": [mock_url + "/missing.pdf"]})
        assert bad.status_code == 400
        queued = c.post(f"{MODEL}/LabelUrls/?async=true", data={"urls": url})
        # the docs show LabelUrls' async answer flat (ocrmodellabelurlsasyncbymodelidpost-1)
        assert queued.json()["result"][0]["processing_type"] == "async"
