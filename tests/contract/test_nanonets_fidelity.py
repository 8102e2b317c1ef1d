"""What Nanonets does beyond seed 000 (issue 15), against the mock in every variant its
sources disagree on and, with ``NANONETS_API_KEY`` + ``NANONETS_MODEL_ID``, against
https://app.nanonets.com (``-m real``).

Sources per behaviour: mockserver/nanonets/__init__.py (quoted in
/work/notes/fidelity.md §1–§2).  Beside each shape the test checks that docinbox's
reading of it holds (``daemon.services.nanonets``).
"""

from __future__ import annotations

import calendar
import os
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from daemon.services.nanonets import flatten, listed_pages, pages_as_results, parse_predictions
from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID
from mockserver.samples import multipage_pdf, receipt_pdf

from .conftest import real_or_mock, use_variant, variant_id
from .test_nanonets_contract import REAL_URL, Target

VARIANTS = {
    "original",
    "original_compressed",
    "thumbnail",
    "acw_rotate_90",
    "acw_rotate_180",
    "acw_rotate_270",
    "original_with_long_expiry",
}


@pytest.fixture(params=real_or_mock("NANONETS_API_KEY", "NANONETS_MODEL_ID"))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "mock":
        server = request.getfixturevalue("mock_server")
        yield Target("mock", server.url, NANONETS_API_KEY, NANONETS_MODEL_ID, server.ctx)
    else:
        yield Target(
            "real", REAL_URL, os.environ["NANONETS_API_KEY"], os.environ["NANONETS_MODEL_ID"], None
        )


def label(target: Target, c: httpx.Client, data: bytes, name: str, query: str = "") -> dict:
    r = c.post(
        target.model + f"/LabelFile/{query}", files={"file": (name, data, "application/pdf")}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def predictions(target: Target, c: httpx.Client, rid: str) -> httpx.Response:
    return c.get(f"{target.inferences}/InferenceRequestFiles/GetPredictions/{rid}")


def finished(body: dict) -> bool:
    """docinbox's test: pages listed, every one with status success (any case)."""
    pages = listed_pages(body)
    return bool(pages) and all(str(p.get("status")).lower() == "success" for p in pages)


def wait_done(target: Target, c: httpx.Client, url: str) -> dict:
    if target.ctx is not None:
        target.ctx.clock.advance(3600)
    deadline = time.monotonic() + (600 if target.ctx is None else 5)
    while True:
        r = c.get(url)
        assert r.status_code == 200, r.text
        if finished(r.json()):
            return dict(r.json())
        assert time.monotonic() < deadline, "never finished"
        time.sleep(5)  # only against the real service


# ------------------------------------------------------------------ 1. the polling path


@pytest.mark.parametrize(
    "variant",
    [{}, {"poll_paths": "documented"}, {"poll_paths": "seed"}, {"async_ack": "flat"}],
    ids=variant_id,
)
def test_async_then_poll_the_documented_path_or_fall_back(target: Target, variant: dict) -> None:
    """GetPredictions (docs.nanonets.com) first, the seed's getFile when it is a 404 —
    what docinbox does; on the real service GetPredictions must answer."""
    use_variant(target.ctx, "nanonets", variant)
    with target.client() as c:
        ack = label(target, c, multipage_pdf(4), "largo.pdf", "?async=true")
        pages = flatten(ack["result"])  # docs: nested twice; seed: flat
        rid = pages[0]["request_file_id"]
        assert rid and all(p["processing_type"] == "async" for p in pages)
        documented = f"{target.inferences}/InferenceRequestFiles/GetPredictions/{rid}"
        seed = f"{target.model}/getFile/{rid}/"
        first = c.get(documented)
        if target.ctx is None or variant.get("poll_paths") != "seed":
            assert first.status_code == 200, first.text
            url = documented
        else:
            assert first.status_code == 404
            url = seed
        if variant.get("poll_paths") == "documented":
            assert c.get(seed).status_code == 404
        done = wait_done(target, c, url)
    assert all(p["request_file_id"] == rid for p in listed_pages(done))
    if target.ctx is not None:
        assert len(listed_pages(done)) == 4


def test_the_page_endpoint(target: Target) -> None:
    """GET /api/v2/Inferences/Model/{id}/ImageLevelInferences/{page_id}
    (docs.nanonets.com ocrmodelgetpredictionfilebypageid)."""
    with target.client() as c:
        body = label(target, c, receipt_pdf(), "recibo.pdf")
        page_id = body["result"][0]["id"]
        r = c.get(f"{target.inferences}/ImageLevelInferences/{page_id}")
    assert r.status_code == 200, r.text
    page = r.json()
    assert {"message", "result", "signed_urls"} <= set(page)
    [entry] = page["result"]
    assert {"prediction", "predicted_boxes", "moderated_boxes", "raw_ocr"} <= set(entry)


# ------------------------------------------------------------------ 2. page records


@pytest.mark.parametrize(
    "variant",
    [{}, {"status_spelling": "Success"}, {"signed_urls": "flat", "sync_processing_type": ""}],
    ids=variant_id,
)
def test_page_records_and_signed_urls(target: Target, variant: dict) -> None:
    use_variant(target.ctx, "nanonets", variant)
    started = time.time()
    with target.client() as c:
        sync = label(target, c, receipt_pdf(), "recibo.pdf")
        entry = sync["result"][0]
        body = predictions(target, c, entry["request_file_id"]).json()
    # LabelFile's records: filepath + file_url, items with page_no (real 2023/2024 captures)
    assert {"filepath", "file_url", "id", "page", "request_file_id"} <= set(entry)
    assert entry["processing_type"] in ("sync", "")
    for item in entry["prediction"]:
        assert "page_no" in item
    # GetPredictions' records: status, url + file_url, original_file_name, boxes with page
    [page] = listed_pages(body)
    assert str(page["status"]).lower() == "success" and finished(body)
    assert page["original_file_name"] == "recibo.pdf" and "uploaded_file_name" not in page
    assert {"url", "file_url", "predicted_boxes", "moderated_boxes"} <= set(page)
    for box in page["predicted_boxes"] + page["moderated_boxes"]:
        assert "page" in box
    fields, _ = parse_predictions(pages_as_results(body))
    assert all(f["page"] == 0 for f in fields)
    signed = body["signed_urls"]
    if variant.get("signed_urls") == "flat":
        assert set(signed) == {"original", "original_with_long_expiry"}
        return
    assert page["url"] in signed and page["file_url"] in signed  # keyed by storage path
    assert set(signed[page["url"]]) == VARIANTS
    raw = signed[page["file_url"]]
    assert raw["original"] and raw["thumbnail"] == ""
    # docs: original valid 4 h, original_with_long_expiry 180 days
    now = target.ctx.clock.now() if target.ctx is not None else started
    assert abs(expires(signed[page["url"]]["original"]) - (now + 4 * 3600)) < 600
    long = expires(signed[page["url"]]["original_with_long_expiry"])
    assert abs(long - (now + 180 * 86400)) < 600


def expires(url: str) -> float:
    """The expiry a signed URL carries: ``expires=`` (imgix, the mock) or S3's
    ``X-Amz-Date`` + ``X-Amz-Expires``."""
    query = parse_qs(urlsplit(url).query)
    if "expires" in query:
        return float(query["expires"][0])
    date = time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ")
    return calendar.timegm(date) + float(query["X-Amz-Expires"][0])


@pytest.mark.parametrize("variant", [{}, {"pending_view": "empty"}], ids=variant_id)
def test_a_prediction_in_progress_is_not_finished(target: Target, variant: dict) -> None:
    """The async docs: file status success | pending | failure.  Pages may be listed
    before they are done; docinbox waits for every page's success."""
    use_variant(target.ctx, "nanonets", variant)
    with target.client() as c:
        ack = label(target, c, multipage_pdf(4), "largo.pdf", "?async=true")
        rid = flatten(ack["result"])[0]["request_file_id"]
        body = predictions(target, c, rid).json()
    statuses = {str(p.get("status")).lower() for p in listed_pages(body)}
    assert statuses <= {"pending", "success", "failure", "failed"}
    if target.ctx is not None:
        assert not finished(body)
        assert statuses == (set() if variant else {"pending"})


def test_a_failed_file(target: Target) -> None:
    if target.ctx is None:
        pytest.skip("the real service cannot be made to fail a file")
    use_variant(target.ctx, "nanonets", {"fail_files": ["roto*"]})
    with target.client() as c:
        ack = label(target, c, multipage_pdf(2), "roto.pdf", "?async=true")
        rid = flatten(ack["result"])[0]["request_file_id"]
        target.ctx.clock.advance(3600)
        body = predictions(target, c, rid).json()
    assert {p["status"] for p in listed_pages(body)} == {"failure"} and not finished(body)


def test_a_poll_for_an_unknown_file_is_404(target: Target) -> None:
    """What docinbox reads as "this file is unknown" (never as the model missing)."""
    with target.client() as c:
        r = predictions(target, c, "00000000-0000-0000-0000-000000000000")
    assert r.status_code == 404


# ------------------------------------------------------------------ review (the mock's)


def test_documented_review_endpoints(target: Target) -> None:
    """Verify / UnVerify and PATCH ImageLevelInference (docs.nanonets.com file-review-api,
    update-fields-via-api).  Against the real service they would change the account's
    review state, so they run on the mock only."""
    if target.ctx is None:
        pytest.skip("changes the real account's review state")
    with target.client() as c:
        rid = label(target, c, receipt_pdf(), "recibo.pdf")["result"][0]["request_file_id"]
        [page] = listed_pages(predictions(target, c, rid).json())
        boxes: list[dict[str, Any]] = page["moderated_boxes"]
        boxes[0]["ocr_text"] = "editado"
        r = c.patch(
            f"{target.inferences}/ImageLevelInference",
            params={"use_ui_version": "true"},
            json={"moderated_boxes": boxes},
        )
        assert r.status_code == 200
        assert c.post(f"{target.inferences}/ImageLevelInferences/Verify/{rid}").status_code == 200
        body = predictions(target, c, rid).json()
    assert body["moderated_images_count"] == 1
    assert body["moderated_images"][0]["moderated_boxes"][0]["ocr_text"] == "editado"
