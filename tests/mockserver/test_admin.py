"""The admin API and the fault types that need no socket, in-process."""

from __future__ import annotations

import httpx
import pytest

from mockserver.core import MockContext
from mockserver.core.faultreplies import InjectedDisconnect
from mockserver.defaults import NANONETS_API_KEY, NANONETS_MODEL_ID

AUTH = (NANONETS_API_KEY, "")
MODEL = f"/api/v2/OCR/Model/{NANONETS_MODEL_ID}"

pytestmark = pytest.mark.anyio


async def test_journal_records_requests_in_order_with_masked_auth(
    client: httpx.AsyncClient,
) -> None:
    await client.get(MODEL + "/getFile/nope/", auth=AUTH, params={"x": "1"})
    await client.get("/api/v4/whatever", headers={"Authorization": "Bearer topsecret"})
    await client.get("/__admin/tasks")  # admin calls are not journaled
    body = (await client.get("/__admin/requests")).json()
    entries = body["requests"]
    assert [e["path"] for e in entries] == [MODEL + "/getFile/nope/", "/api/v4/whatever"]
    assert entries[0]["query"] == "x=1"
    assert entries[0]["status"] == 404
    assert entries[0]["headers"]["authorization"] == "Basic ****"
    assert entries[1]["headers"]["authorization"] == "Bearer ****"
    assert "topsecret" not in str(body)
    assert isinstance(entries[0]["at"], float) and entries[0]["at"] <= entries[1]["at"]


async def test_journal_filters(client: httpx.AsyncClient) -> None:
    for path in ("/a", "/b", "/a"):
        await client.get(path)
    only_a = (await client.get("/__admin/requests", params={"path": "/a"})).json()["requests"]
    assert [e["seq"] for e in only_a] == [1, 3]
    since = (await client.get("/__admin/requests", params={"since": 1})).json()["requests"]
    assert [e["path"] for e in since] == ["/b", "/a"]
    assert (await client.get("/__admin/requests", params={"path": "("})).status_code == 400


async def test_fault_crud_and_validation(client: httpx.AsyncClient) -> None:
    bad = await client.post("/__admin/faults", json={"fault": "explode"})
    assert bad.status_code == 400 and "fault must be one of" in bad.json()["error"]
    made = await client.post("/__admin/faults", json={"status": 503, "path": "/x"})
    assert made.status_code == 201
    rule = made.json()
    assert rule["fault"] == "status" and rule["matched"] == 0
    listed = (await client.get("/__admin/faults")).json()["faults"]
    assert [r["id"] for r in listed] == [rule["id"]]
    assert (await client.delete(f"/__admin/faults/{rule['id']}")).status_code == 200
    assert (await client.delete(f"/__admin/faults/{rule['id']}")).status_code == 404
    await client.post("/__admin/faults", json={"status": 503})
    await client.delete("/__admin/faults")
    assert (await client.get("/__admin/faults")).json()["faults"] == []


async def test_status_fault_with_retry_after_then_spent(client: httpx.AsyncClient) -> None:
    await client.post(
        "/__admin/faults",
        json={"method": "GET", "path": MODEL + "/getFile/.*", "status": 429, "retry_after": 2,
              "times": 1},
    )  # fmt: skip
    first = await client.get(MODEL + "/getFile/abc/", auth=AUTH)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "2"
    second = await client.get(MODEL + "/getFile/abc/", auth=AUTH)
    assert second.status_code == 404  # the rule is spent: the service answers
    journal = (await client.get("/__admin/requests")).json()["requests"]
    assert [e["fault"] for e in journal] == ["status", None]
    assert [e["status"] for e in journal] == [429, 404]


async def test_retry_after_http_date_is_passed_verbatim(client: httpx.AsyncClient) -> None:
    date = "Wed, 21 Oct 2026 07:28:00 GMT"
    await client.post("/__admin/faults", json={"status": 503, "retry_after": date})
    assert (await client.get("/anything")).headers["retry-after"] == date


async def test_admin_paths_are_never_faulted(client: httpx.AsyncClient) -> None:
    await client.post("/__admin/faults", json={"path": ".*", "status": 500})
    assert (await client.get("/__admin/health")).status_code == 200
    assert (await client.get("/elsewhere")).status_code == 500


async def test_html502_malformed_and_expire(client: httpx.AsyncClient) -> None:
    await client.post("/__admin/faults", json={"path": "/gw", "fault": "html502"})
    await client.post("/__admin/faults", json={"path": "/bad", "fault": "malformed"})
    await client.post("/__admin/faults", json={"path": "/zip", "fault": "expire"})
    gw = await client.get("/gw")
    assert gw.status_code == 502 and gw.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in gw.text
    bad = await client.get("/bad")
    assert bad.status_code == 200 and bad.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        bad.json()
    expired = await client.get("/zip")
    assert expired.status_code == 403
    assert expired.headers["content-type"] == "application/xml"
    assert "<Code>AccessDenied</Code>" in expired.text
    assert "<Message>Request has expired.</Message>" in expired.text


async def test_socket_faults_raise_in_process(client: httpx.AsyncClient) -> None:
    await client.post("/__admin/faults", json={"path": "/r", "fault": "reset"})
    with pytest.raises(InjectedDisconnect):
        await client.get("/r")


async def test_clock_advance_and_speed(client: httpx.AsyncClient, ctx: MockContext) -> None:
    before = (await client.get("/__admin/clock")).json()["now"]
    moved = (await client.post("/__admin/clock/advance", json={"seconds": 3600})).json()
    assert moved["now"] >= before + 3600
    assert (await client.post("/__admin/clock/advance", json={"seconds": -1})).status_code == 400
    assert (await client.post("/__admin/clock/advance", json={})).status_code == 400
    sped = (await client.post("/__admin/clock/speed", json={"speed": 50})).json()
    assert sped["speed"] == 50 and ctx.clock.speed == 50


async def test_config_and_reset(client: httpx.AsyncClient, ctx: MockContext) -> None:
    config = (await client.get("/__admin/config")).json()
    assert config["nanonets"]["free_quota"] == 10_000
    changed = await client.post("/__admin/config", json={"nanonets": {"free_quota": 1}})
    assert changed.json()["nanonets"]["free_quota"] == 1
    assert (await client.post("/__admin/config", json={"nanonets": {"x": 1}})).status_code == 400
    await client.get("/journaled")
    await client.post("/__admin/faults", json={"status": 500, "path": "/f"})
    ctx.ledger.add("nanonets", "t", "n", "s", "done")
    reset = await client.post("/__admin/reset", json={"config": {"nanonets": {"rate_burst": 3}}})
    assert reset.status_code == 200
    assert (await client.get("/__admin/requests")).json()["requests"] == []
    assert (await client.get("/__admin/tasks")).json()["tasks"] == []
    assert (await client.get("/__admin/faults")).json()["faults"] == []
    config = (await client.get("/__admin/config")).json()["nanonets"]
    assert config["free_quota"] == 10_000 and config["rate_burst"] == 3


async def test_openapi_lists_every_service_route(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/__admin/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    for path in (
        "/api/v2/OCR/Model/{model_id}/LabelFile/",
        "/api/v2/OCR/Model/{model_id}/getFile/{file_id}/",
        "/api/v2/OCR/Model/{model_id}/UpdateFile/{file_id}/",
        "/__admin/faults",
    ):
        assert path in paths
    assert "patch" in paths["/api/v2/OCR/Model/{model_id}/UpdateFile/{file_id}/"]
    label_file = paths["/api/v2/OCR/Model/{model_id}/LabelFile/"]["post"]
    assert label_file["tags"] == ["nanonets"]
    assert label_file["parameters"][0]["name"] == "model_id"
    ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(ids) == len(set(ids))


async def test_health_lists_mounted_services(client: httpx.AsyncClient) -> None:
    health = (await client.get("/__admin/health")).json()
    assert health["ok"] is True and "nanonets" in health["services"]
