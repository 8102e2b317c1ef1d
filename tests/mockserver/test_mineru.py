"""MinerU v4 mock in-process: lifecycle on the mock clock, errors, limits, result zip."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from mockserver import defaults, samples
from mockserver.documents import docmodel
from mockserver.loopback import FileServer

H = {"Authorization": f"Bearer {defaults.MINERU_TOKEN}"}
H2 = {"Authorization": "Bearer mock-mineru-token-2"}

pytestmark = pytest.mark.anyio


async def upload_batch(
    client: httpx.AsyncClient, files: list[dict[str, Any]], **extra: Any
) -> tuple[str, list[str]]:
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": files, **extra})
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0, body
    return body["data"]["batch_id"], body["data"]["file_urls"]


async def results(client: httpx.AsyncClient, batch_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/api/v4/extract-results/batch/{batch_id}", headers=H)
    body = r.json()
    assert body["code"] == 0, body
    assert body["data"]["batch_id"] == batch_id
    return body["data"]["extract_result"]


async def test_upload_lifecycle_states_and_progress(mock: Any) -> None:
    client, ctx = mock
    batch_id, urls = await upload_batch(
        client, [{"name": "informe.pdf", "data_id": "doc-1.a_b"}], enable_table=True
    )
    assert urls[0].startswith("http://mock/__oss/mineru/api-upload/")
    assert "OSSAccessKeyId=" in urls[0] and "Expires=" in urls[0] and "Signature=" in urls[0]
    [entry] = await results(client, batch_id)
    assert entry == {
        "file_name": "informe.pdf",
        "state": "waiting-file",
        "err_msg": "",
        "data_id": "doc-1.a_b",
        "err_code": "",
    }

    put = await client.put(urls[0], content=samples.multipage_pdf(4))
    assert put.status_code == 200
    [entry] = await results(client, batch_id)
    assert entry["state"] == "pending"

    ctx.clock.advance(3.0 + 1.5)  # queue 3 s, then 1 s/page: 1 page done, 2nd running
    [entry] = await results(client, batch_id)
    assert entry["state"] == "running"
    progress = entry["extract_progress"]
    assert progress["total_pages"] == 4
    assert progress["extracted_pages"] in (1, 2)
    assert len(progress["start_time"]) == len("2025-01-20 11:43:20")

    ctx.clock.advance(3.0)
    [entry] = await results(client, batch_id)
    assert entry["state"] == "done"
    assert "extract_progress" not in entry
    assert entry["full_zip_url"].startswith("http://mock/__cdn/mineru/pdf/")
    assert entry["full_zip_url"].endswith(".zip")
    tasks = (await client.get("/__admin/tasks")).json()["tasks"]
    assert [(t["service"], t["name"], t["state"]) for t in tasks] == [
        ("mineru", "informe.pdf", "done")
    ]


async def test_result_zip_layout_and_content_list(mock: Any) -> None:
    client, ctx = mock
    pdf = samples.receipt_pdf()
    batch_id, urls = await upload_batch(client, [{"name": "recibo.pdf"}])
    await client.put(urls[0], content=pdf)
    ctx.clock.advance(60)
    [entry] = await results(client, batch_id)
    zip_response = await client.get(entry["full_zip_url"])  # no Authorization needed
    assert zip_response.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(zip_response.content))
    names = set(zf.namelist())
    task_id = next(
        n[: -len("_content_list.json")] for n in names if n.endswith("_content_list.json")
    )
    assert {
        "full.md",
        "layout.json",
        f"{task_id}_content_list.json",
        f"{task_id}_model.json",
        f"{task_id}_origin.pdf",
    } <= names
    assert zf.read(f"{task_id}_origin.pdf") == pdf
    content = json.loads(zf.read(f"{task_id}_content_list.json"))
    assert [b["text"] for b in content] == samples.receipt_lines()
    assert content[0]["text_level"] == 1
    assert all("text_level" not in b for b in content[1:])
    for block in content:
        assert block["type"] == "text" and block["page_idx"] == 0
        x0, y0, x1, y1 = block["bbox"]
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 1000
    ys = [b["bbox"][1] for b in content]
    assert ys == sorted(ys)  # reading order is top to bottom
    md = zf.read("full.md").decode()
    assert md.startswith("# Estacion de Servicio Demo\n\nFecha: 23/12/2025")
    layout = json.loads(zf.read("layout.json"))
    assert layout["pdf_info"][0]["page_size"] == [612.0, 792.0]
    model = json.loads(zf.read(f"{task_id}_model.json"))
    assert model[0]["page_info"]["page_no"] == 0 and len(model[0]["layout_dets"]) == 5


async def test_extra_formats_add_converting_and_files(mock: Any) -> None:
    client, ctx = mock
    batch_id, urls = await upload_batch(
        client, [{"name": "a.pdf"}], extra_formats=["docx", "html", "latex"]
    )
    await client.put(urls[0], content=samples.multipage_pdf(1))
    ctx.clock.advance(3 + 1 + 1)  # queue + 1 page + into converting
    [entry] = await results(client, batch_id)
    assert entry["state"] == "converting"
    ctx.clock.advance(5)
    [entry] = await results(client, batch_id)
    assert entry["state"] == "done"
    zf = zipfile.ZipFile(io.BytesIO((await client.get(entry["full_zip_url"])).content))
    assert {"full.docx", "full.html", "full.tex"} <= set(zf.namelist())
    assert "<h1>Page 1</h1>" in zf.read("full.html").decode()
    docx = zipfile.ZipFile(io.BytesIO(zf.read("full.docx")))
    assert "This is page 1 of 1." in docx.read("word/document.xml").decode()


@pytest.mark.parametrize(
    ("numbering", "indices"), [("original", [1, 2, 3]), ("restart", [0, 1, 2])]
)
async def test_page_ranges_second_to_last(mock: Any, numbering: str, indices: list[int]) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"page_idx": numbering}})
    batch_id, urls = await upload_batch(client, [{"name": "a.pdf", "page_ranges": "2--2"}])
    await client.put(urls[0], content=samples.multipage_pdf(5))
    ctx.clock.advance(3.5)
    [entry] = await results(client, batch_id)
    assert entry["extract_progress"]["total_pages"] == 3  # pages 2, 3, 4
    ctx.clock.advance(10)
    [entry] = await results(client, batch_id)
    zf = zipfile.ZipFile(io.BytesIO((await client.get(entry["full_zip_url"])).content))
    name = next(n for n in zf.namelist() if n.endswith("_content_list.json"))
    content = json.loads(zf.read(name))
    assert [b["text"] for b in content if b.get("text_level")] == ["Page 2", "Page 3", "Page 4"]
    assert sorted({b["page_idx"] for b in content}) == indices
    layout = json.loads(zf.read("layout.json"))
    assert [p["page_idx"] for p in layout["pdf_info"]] == indices


@pytest.mark.parametrize(
    ("body", "err"),
    [
        (b"", -60004),
        (b"%PDF-1.4\n this is not really a pdf", -60003),
        (b"\x00" * 2048, -60003),
        (samples.multipage_pdf(201), -60006),
    ],
)
async def test_bad_uploads_fail_the_task(mock: Any, body: bytes, err: int) -> None:
    from mockserver.documents.docmodel import MESSAGES_EN

    client, ctx = mock
    batch_id, urls = await upload_batch(client, [{"name": "bad.pdf"}])
    assert (await client.put(urls[0], content=body)).status_code == 200
    [entry] = await results(client, batch_id)
    assert entry["state"] == "pending"
    ctx.clock.advance(4)
    [entry] = await results(client, batch_id)
    assert entry["state"] == "failed"
    assert entry["err_msg"] == MESSAGES_EN[err].replace("{max_pages}", "200")
    assert entry["err_code"] == err
    assert "full_zip_url" not in entry


async def test_images_and_office_files(mock: Any) -> None:
    client, ctx = mock
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x08\x08\x02"
        b"\x00\x00\x00\x00\x00\x00\x00"
    )
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as zf:
        zf.writestr(
            "word/document.xml",
            '<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>Hola</w:t></w:r></w:p>'
            '<w:p><w:r><w:t>mundo</w:t></w:r><w:r><w:t xml:space="preserve"> feliz</w:t>'
            "</w:r></w:p></w:body></w:document>",
        )
    batch_id, urls = await upload_batch(client, [{"name": "foto.PNG"}, {"name": "carta.docx"}])
    await client.put(urls[0], content=png)
    await client.put(urls[1], content=docx.getvalue())
    ctx.clock.advance(10)
    image, office = await results(client, batch_id)
    assert image["state"] == office["state"] == "done"
    zf = zipfile.ZipFile(io.BytesIO((await client.get(image["full_zip_url"])).content))
    content = json.loads(zf.read(next(n for n in zf.namelist() if "content_list" in n)))
    assert content[0]["type"] == "image" and content[0]["img_path"].startswith("images/")
    assert zf.read(content[0]["img_path"]) == png
    zf = zipfile.ZipFile(io.BytesIO((await client.get(office["full_zip_url"])).content))
    assert zf.read("full.md").decode() == "# Hola\n\nmundo feliz\n"


async def test_auth_errors_are_http_401_with_msgcode(mock: Any) -> None:
    client, _ = mock
    for headers, code in [
        ({}, "A0202"),
        ({"Authorization": "mock-mineru-token"}, "A0202"),  # no "Bearer "
        ({"Authorization": "Bearer nope"}, "A0202"),
        ({"Authorization": "Bearer mock-mineru-token-expired"}, "A0211"),
    ]:
        r = await client.post("/api/v4/file-urls/batch", headers=headers, json={"files": []})
        assert r.status_code == 401
        assert r.json()["msgCode"] == code


async def test_tasks_are_private_to_their_token(mock: Any) -> None:
    client, _ = mock
    batch_id, _urls = await upload_batch(client, [{"name": "a.pdf"}])
    r = await client.get(f"/api/v4/extract-results/batch/{batch_id}", headers=H2)
    assert r.status_code == 200 and r.json()["code"] == -60013 and r.json()["data"] is None
    r = await client.get("/api/v4/extract-results/batch/nope", headers=H)
    assert r.json()["code"] == -60012
    r = await client.get("/api/v4/extract/task/nope", headers=H)
    assert r.json()["code"] == -60012


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"files": [{"name": "a.txt"}]}, -60002),
        ({"files": [{"name": "a.pdf", "data_id": "no spaces"}]}, -10002),
        ({"files": [{"name": "a.pdf", "data_id": "x" * 129}]}, -10002),
        ({"files": [{"name": "a.pdf", "page_ranges": "1-a"}]}, -10002),
        ({"files": [{"name": "a.pdf"}], "callback": "http://127.0.0.1/cb"}, -10002),
        ({"files": [{"name": "a.pdf"}], "callback": "http://x/cb", "seed": "bad seed"}, -10002),
        ({"files": [{"name": "a.pdf"}], "extra_formats": ["pdf"]}, -10002),
        ({"files": [{"name": "a.pdf"}], "model_version": "v9"}, -10002),
        ({"files": [{"name": "a.pdf", "is_ocr": "yes"}]}, -500),
        ({"files": []}, -10002),
        ({"files": [{"name": f"{i}.pdf"} for i in range(51)]}, -10002),
    ],
)
async def test_request_validation(mock: Any, payload: dict[str, Any], code: int) -> None:
    client, ctx = mock
    if code != -60002:  # a parameter error: HTTP 400, msg {"en", "zh"} (MinerU#1826)
        r = await client.post("/api/v4/file-urls/batch", headers=H, json=payload)
        assert r.status_code == 400
        body = r.json()
        assert set(body) == {"code", "msg"} and body["code"] == code
        assert set(body["msg"]) == {"en", "zh"} and all(body["msg"].values())
    ctx.configure({"mineru": {"param_errors": "envelope"}})  # the seed's way
    r = await client.post("/api/v4/file-urls/batch", headers=H, json=payload)
    assert r.status_code == 200
    body = r.json()
    assert body["code"] == code and body["data"] is None and body["msg"]
    assert isinstance(body["msg"], str)
    assert len(body["trace_id"]) == 32


async def test_non_json_body_is_minus_500(mock: Any) -> None:
    client, _ = mock
    r = await client.post(
        "/api/v4/extract/task", headers={**H, "Content-Type": "text/plain"}, content=b"url=x"
    )
    assert r.status_code == 400 and r.json()["code"] == -500


async def test_fifty_files_per_request_or_as_configured(mock: Any) -> None:
    client, ctx = mock
    _batch, urls = await upload_batch(client, [{"name": f"{i}.pdf"} for i in range(50)])
    assert len(urls) == 50 and len(set(urls)) == 50
    r = await client.post(
        "/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "x.pdf"}] * 51}
    )
    assert r.status_code == 400 and "50" in r.json()["msg"]["en"] and "50" in r.json()["msg"]["zh"]
    ctx.configure({"mineru": {"max_files": 200}})  # the comparison table's value
    _batch, urls = await upload_batch(client, [{"name": f"{i}.pdf"} for i in range(200)])
    assert len(urls) == 200


async def test_queue_full(mock: Any) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"max_pending": 1}})
    _b, urls = await upload_batch(client, [{"name": "a.pdf"}])
    await client.put(urls[0], content=samples.multipage_pdf(1))
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "b.pdf"}]})
    assert r.json()["code"] == -60009
    ctx.clock.advance(4)  # the first task leaves the queue
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "b.pdf"}]})
    assert r.json()["code"] == 0


async def test_files_per_day_is_minus_60018_until_midnight_in_beijing(mock: Any) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"files_per_day": 3}})
    now = ctx.clock.now()
    # Put the clock at 10:00 in Beijing (02:00 UTC) so the day has 14 hours left.
    ctx.clock.advance((2 * 3600 - now) % 86400)
    await upload_batch(client, [{"name": "a.pdf"}, {"name": "b.pdf"}])
    r = await client.post(
        "/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "c.pdf"}] * 2}
    )
    assert r.status_code == 200 and r.json()["code"] == -60018
    assert "daily" in r.json()["msg"]
    await upload_batch(client, [{"name": "c.pdf"}])  # the third file still fits
    ctx.clock.advance(13 * 3600)  # 23:00 in Beijing: still the same day
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "d.pdf"}]})
    assert r.json()["code"] == -60018
    ctx.clock.advance(3600 + 1)  # midnight in Beijing: a new day
    await upload_batch(client, [{"name": "d.pdf"}])


async def test_rate_limits_are_http_429(mock: Any) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"submit_per_minute": 2, "query_per_minute": 3}})
    batch_id, _ = await upload_batch(client, [{"name": "a.pdf"}])
    await upload_batch(client, [{"name": "b.pdf"}])
    r = await client.post("/api/v4/file-urls/batch", headers=H, json={"files": [{"name": "c.pdf"}]})
    assert r.status_code == 429
    for _ in range(3):
        await results(client, batch_id)
    r = await client.get(f"/api/v4/extract-results/batch/{batch_id}", headers=H)
    assert r.status_code == 429
    ctx.clock.advance(60)  # a minute later both allowances are back
    await upload_batch(client, [{"name": "c.pdf"}])
    await results(client, batch_id)


@pytest.mark.parametrize(
    ("code", "en"),
    [
        (-60017, "retry limit reached (5 attempts), please replace the file."),
        (-60020, "file split failed"),
        (-60021, "failed to read the page count"),
        (-60022, "web page read failed"),
    ],
)
async def test_fail_tasks_fails_with_the_code_and_its_message(
    mock: Any, code: int, en: str
) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"fail_tasks": {"broken*": code}}})
    batch_id, urls = await upload_batch(client, [{"name": "broken.pdf"}, {"name": "ok.pdf"}])
    for url in urls:
        await client.put(url, content=samples.multipage_pdf(1))
    ctx.clock.advance(30)
    broken, fine = await results(client, batch_id)
    assert fine["state"] == "done" and fine["err_code"] == ""
    assert broken["state"] == "failed" and broken["err_msg"].startswith(en)
    # the CLI log shows an empty err_code for "retry limit reached"
    assert broken["err_code"] == ("" if code == -60017 else code)
    ctx.configure({"mineru": {"err_msg_language": "zh", "err_code_blank_for": []}})
    broken, _fine = await results(client, batch_id)
    assert broken["err_code"] == code
    assert broken["err_msg"] == docmodel.message(code, service="mineru")
    assert not broken["err_msg"].isascii()


async def test_priority_quota_slows_the_queue(mock: Any) -> None:
    client, ctx = mock
    ctx.configure({"mineru": {"priority_pages_per_day": 2, "low_priority_factor": 10}})
    batch_id, urls = await upload_batch(client, [{"name": "a.pdf"}, {"name": "b.pdf"}])
    await client.put(urls[0], content=samples.multipage_pdf(2))
    await client.put(urls[1], content=samples.multipage_pdf(2))
    ctx.clock.advance(10)
    first, second = await results(client, batch_id)
    assert first["state"] == "done"
    assert second["state"] == "pending"  # 30 s of queue for the low-priority pages
    ctx.clock.advance(30)
    assert (await results(client, batch_id))[1]["state"] == "done"


async def test_url_task_fetches_the_url(mock: Any) -> None:
    client, ctx = mock
    with FileServer() as files:
        url = files.add("/docs/recibo.pdf?sig=abc", samples.receipt_pdf())
        r = await client.post(
            "/api/v4/extract/task",
            headers=H,
            json={"url": url, "is_ocr": True, "data_id": "abcd", "enable_formula": False},
        )
        body = r.json()
        assert body["code"] == 0 and body["msg"] == "ok", body
        assert files.hits == ["/docs/recibo.pdf?sig=abc"]
    task_id = body["data"]["task_id"]
    r = await client.get(f"/api/v4/extract/task/{task_id}", headers=H)
    assert r.json()["data"] == {
        "task_id": task_id,
        "data_id": "abcd",
        "state": "pending",
        "err_msg": "",
        "err_code": "",
    }
    ctx.clock.advance(10)
    data = (await client.get(f"/api/v4/extract/task/{task_id}", headers=H)).json()["data"]
    assert data["state"] == "done"
    zf = zipfile.ZipFile(io.BytesIO((await client.get(data["full_zip_url"])).content))
    assert "Total: 45.99" in zf.read("full.md").decode()
    r = await client.get(f"/api/v4/extract/task/{task_id}", headers=H2)
    assert r.json()["code"] == -60013


async def test_url_task_errors(mock: Any) -> None:
    client, ctx = mock
    with FileServer() as files:
        cases = {
            files.add("/notes.txt", b"hello"): -60002,
            files.add("/empty.pdf", b""): -60004,
            files.add("/long.pdf", samples.multipage_pdf(201)): -60006,
        }
        for url, code in cases.items():
            r = await client.post("/api/v4/extract/task", headers=H, json={"url": url})
            assert r.json()["code"] == code, url
        # unreadable content and unfetchable URLs are accepted, then fail
        broken = files.add("/broken.pdf", b"%PDF-1.7 garbage")
        missing = files.url + "/missing.pdf"
        ids = []
        for url in (broken, missing):
            r = await client.post("/api/v4/extract/task", headers=H, json={"url": url})
            assert r.json()["code"] == 0
            ids.append(r.json()["data"]["task_id"])
    ctx.clock.advance(5)
    errs = []
    for task_id in ids:
        data = (await client.get(f"/api/v4/extract/task/{task_id}", headers=H)).json()["data"]
        assert data["state"] == "failed"
        errs.append(data["err_msg"])
    assert errs[0].startswith("failed to read file") and errs[1].startswith("file read timeout")


async def test_url_batch(mock: Any) -> None:
    client, ctx = mock
    with FileServer() as files:
        good = files.add("/a.pdf", samples.multipage_pdf(2))
        bad = files.add("/b.txt", b"text")
        r = await client.post(
            "/api/v4/extract/task/batch",
            headers=H,
            json={"files": [{"url": good, "data_id": "g"}, {"url": bad}], "language": "en"},
        )
    body = r.json()
    assert body["code"] == 0 and set(body["data"]) == {"batch_id"}
    ctx.clock.advance(10)
    first, second = await results(client, body["data"]["batch_id"])
    assert first["file_name"] == "a.pdf" and first["state"] == "done" and first["data_id"] == "g"
    assert second["file_name"] == "b.txt" and second["state"] == "failed"
    assert second["err_msg"].startswith("file format not supported")
    assert second["err_code"] == -60002


async def test_zip_link_expires(mock: Any) -> None:
    client, ctx = mock
    batch_id, urls = await upload_batch(client, [{"name": "a.pdf"}])
    await client.put(urls[0], content=samples.multipage_pdf(1))
    ctx.clock.advance(10)
    [entry] = await results(client, batch_id)
    assert (await client.get(entry["full_zip_url"])).status_code == 200
    ctx.clock.advance(7 * 86400)
    r = await client.get(entry["full_zip_url"])
    assert r.status_code == 403 and b"Request has expired." in r.content
    r = await client.get("/__cdn/mineru/pdf/00000000-0000-0000-0000-000000000000.zip")
    assert r.status_code == 404 and b"NoSuchKey" in r.content


async def test_concurrent_polls_agree(mock: Any) -> None:
    client, ctx = mock
    batch_id, urls = await upload_batch(client, [{"name": "a.pdf"}])
    await client.put(urls[0], content=samples.multipage_pdf(3))
    ctx.clock.set_speed(1e-9)  # freeze real time so only advance() moves the mock clock
    ctx.clock.advance(4.5)
    polls = await asyncio.gather(*(results(client, batch_id) for _ in range(30)))
    states = {json.dumps(p[0], sort_keys=True) for p in polls}
    assert len(states) == 1
    assert polls[0][0]["extract_progress"]["extracted_pages"] == 1


async def test_reset_forgets_tasks(mock: Any) -> None:
    client, _ctx = mock
    batch_id, _urls = await upload_batch(client, [{"name": "a.pdf"}])
    assert (await client.post("/__admin/reset")).status_code == 200
    r = await client.get(f"/api/v4/extract-results/batch/{batch_id}", headers=H)
    assert r.json()["code"] == -60012
