"""The Nanonets mock's documented paths and shapes (docs.nanonets.com, real captures), and
the settings that serve the seed's variants instead (see mockserver/nanonets/__init__)."""

from __future__ import annotations

import httpx
import pytest

from mockserver.core import MockContext
from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from mockserver.samples import multipage_pdf, receipt_pdf

pytestmark = pytest.mark.anyio

AUTH = (NANONETS_API_KEY, "")
SEED = f"/api/v2/OCR/Model/{NANONETS_MODEL_ID}"
INF = f"/api/v2/Inferences/Model/{NANONETS_MODEL_ID}"


async def upload(
    client: httpx.AsyncClient, data: bytes | None = None, name: str = "recibo.pdf"
) -> dict:
    files = {"file": (name, receipt_pdf() if data is None else data, "application/pdf")}
    response = await client.post(f"{SEED}/LabelFile/", auth=AUTH, files=files)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def predictions(client: httpx.AsyncClient, rid: str) -> httpx.Response:
    return await client.get(f"{INF}/InferenceRequestFiles/GetPredictions/{rid}", auth=AUTH)


async def test_get_predictions_page_records(client: httpx.AsyncClient) -> None:
    rid = (await upload(client))["result"][0]["request_file_id"]
    body = (await predictions(client, rid)).json()
    assert set(body) == {
        "moderated_images_count",
        "unmoderated_images_count",
        "moderated_images",
        "unmoderated_images",
        "signed_urls",
    }
    [page] = body["unmoderated_images"]
    assert page["status"] == "success"  # a real capture (the docs' example: "Success")
    assert page["original_file_name"] == "recibo.pdf"
    assert "uploaded_file_name" not in page
    assert page["url"] == f"uploadedfiles/{NANONETS_MODEL_ID}/PredictionImages/{page['id']}.jpeg"
    assert page["file_url"] == f"uploadedfiles/{NANONETS_MODEL_ID}/RawPredictions/{rid}.pdf"
    assert "filepath" not in page  # only LabelFile's records carry it
    assert set(body["signed_urls"]) == {page["url"], page["file_url"]}
    for box in page["predicted_boxes"] + page["moderated_boxes"]:
        assert "page" in box and "page_no" not in box  # boxes of page records: page
        assert box["page"] == 0
    assert {b["label"] for b in page["raw_ocr"]} == {"fecha", "total"}
    assert all("type" not in b for b in page["raw_ocr"])


async def test_status_spelling_and_failures(client: httpx.AsyncClient) -> None:
    await client.post(
        "/__admin/config",
        json={"nanonets": {"status_spelling": "Success", "fail_files": ["roto*"]}},
    )
    ok = (await upload(client))["result"][0]["request_file_id"]
    bad = (await upload(client, name="roto.pdf"))["result"][0]["request_file_id"]
    assert (await predictions(client, ok)).json()["unmoderated_images"][0]["status"] == "Success"
    [page] = (await predictions(client, bad)).json()["unmoderated_images"]
    assert page["status"] == "failure" and page["predicted_boxes"] == []


@pytest.mark.parametrize(
    ("served", "documented", "seed"),
    [("both", 200, 200), ("documented", 200, 404), ("seed", 404, 200)],
)
async def test_poll_paths_setting(
    client: httpx.AsyncClient, served: str, documented: int, seed: int
) -> None:
    await client.post("/__admin/config", json={"nanonets": {"poll_paths": served}})
    rid = (await upload(client))["result"][0]["request_file_id"]
    assert (await predictions(client, rid)).status_code == documented
    assert (await client.get(f"{SEED}/getFile/{rid}/", auth=AUTH)).status_code == seed


async def test_unknown_file_or_model_is_404_on_both_paths(client: httpx.AsyncClient) -> None:
    assert (await predictions(client, "00000000-dead")).status_code == 404
    other = "/api/v2/Inferences/Model/11111111-1111-1111-1111-111111111111"
    rid = (await upload(client))["result"][0]["request_file_id"]
    r = await client.get(f"{other}/InferenceRequestFiles/GetPredictions/{rid}", auth=AUTH)
    assert r.status_code == 404


async def test_documented_page_endpoint(client: httpx.AsyncClient) -> None:
    body = await upload(client, multipage_pdf(2))
    page_id = body["result"][1]["id"]
    r = await client.get(f"{INF}/ImageLevelInferences/{page_id}", auth=AUTH)
    assert r.status_code == 200
    page = r.json()
    assert page["message"] == "Success" and isinstance(page["signed_urls"], dict)
    [entry] = page["result"]
    assert entry["message"] == "success" and entry["input"] == "recibo.pdf"
    assert {"prediction", "predicted_boxes", "moderated_boxes", "raw_ocr"} <= set(entry)
    assert entry["id"] == page_id and entry["page"] == 1
    missing = await client.get(f"{INF}/ImageLevelInferences/nope", auth=AUTH)
    assert missing.status_code == 404


async def test_listing_takes_days_since_the_epoch(
    client: httpx.AsyncClient, ctx: MockContext
) -> None:
    await upload(client, multipage_pdf(2))
    today = int(ctx.clock.now() // 86400)
    params = {"start_day_interval": today - 1, "current_batch_day": today}
    listing = (await client.get(f"{INF}/ImageLevelInferences", auth=AUTH, params=params)).json()
    assert listing["unmoderated_images_count"] == 2
    earlier = {"start_day_interval": today - 30, "current_batch_day": today - 1}
    none = (await client.get(f"{INF}/ImageLevelInferences", auth=AUTH, params=earlier)).json()
    assert none["unmoderated_images_count"] == 0


async def test_documented_review_endpoints(client: httpx.AsyncClient) -> None:
    rid = (await upload(client))["result"][0]["request_file_id"]
    [page] = (await predictions(client, rid)).json()["unmoderated_images"]
    boxes = [b for b in page["moderated_boxes"] if b["label"] != "total"]  # delete total
    for box in boxes:
        if box["label"] == "fecha":
            box.update(ocr_text="2025-12-23", status="moderated")
    boxes.append({"label": "total", "ocr_text": "50.00", "type": "field", "page": 0,
                  "is_new": True, "xmin": 1, "ymin": 1, "xmax": 2, "ymax": 2})  # fmt: skip
    patch = await client.patch(
        f"{INF}/ImageLevelInference",
        params={"use_ui_version": "true"},
        auth=AUTH,
        json={"moderated_boxes": boxes},
    )
    assert patch.status_code == 200, patch.text
    [page] = (await predictions(client, rid)).json()["unmoderated_images"]
    moderated = {b["label"]: b for b in page["moderated_boxes"]}
    assert moderated["fecha"]["ocr_text"] == "2025-12-23"
    assert moderated["total"]["ocr_text"] == "50.00" and moderated["total"]["id"]
    assert moderated["total"]["page"] == 0
    assert {b["label"] for b in page["predicted_boxes"]} >= {"fecha", "total"}
    bad = await client.patch(
        f"{INF}/ImageLevelInference", auth=AUTH, json={"moderated_boxes": [{"id": "nope"}]}
    )
    assert bad.status_code == 400

    verify = await client.post(f"{INF}/ImageLevelInferences/Verify/{rid}", auth=AUTH)
    assert verify.status_code == 200
    assert (await predictions(client, rid)).json()["moderated_images_count"] == 1
    unverify = await client.post(f"{INF}/ImageLevelInferences/UnVerify/{rid}", auth=AUTH)
    assert unverify.status_code == 200
    assert (await predictions(client, rid)).json()["moderated_images_count"] == 0
    heading = f"/api/v2/ImageLevelInferences/Model/{NANONETS_MODEL_ID}/Verify/{rid}"
    assert (await client.post(heading, auth=AUTH)).status_code == 200
    assert (await predictions(client, rid)).json()["moderated_images_count"] == 1

    gone = await client.delete(f"{INF}/InferenceRequestFiles/{rid}", auth=AUTH)
    assert gone.status_code == 200
    assert (await predictions(client, rid)).status_code == 404


async def test_seed_review_endpoints_stay(client: httpx.AsyncClient) -> None:
    """Kept for docinbox's review desk although no public source has them."""
    rid = (await upload(client))["result"][0]["request_file_id"]
    edit = await client.patch(
        f"{SEED}/UpdateFile/{rid}/",
        auth=AUTH,
        json={"fields": [{"label": "fecha", "ocr_text": "2025-12-23"}]},
    )
    assert edit.status_code == 200
    [page] = (await predictions(client, rid)).json()["unmoderated_images"]
    fecha = next(b for b in page["moderated_boxes"] if b["label"] == "fecha")
    assert fecha["ocr_text"] == "2025-12-23" and fecha["page"] == 0
    assert (await client.post(f"{SEED}/ApproveFile/{rid}/", auth=AUTH)).status_code == 200
