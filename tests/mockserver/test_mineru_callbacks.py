"""MinerU callbacks: POST {checksum, content}, checksum = sha256(uid + seed + content),
pushed again (at most 5 more times) until the receiver answers 200."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from mockserver import defaults, samples
from mockserver.loopback import CallbackReceiver, FileServer

H = {"Authorization": f"Bearer {defaults.MINERU_TOKEN}"}

pytestmark = pytest.mark.anyio


async def test_callback_retried_until_200_with_checksum(mock: Any) -> None:
    client, ctx = mock
    with CallbackReceiver(statuses=[500, 500]) as receiver:
        r = await client.post(
            "/api/v4/file-urls/batch",
            headers=H,
            json={
                "files": [{"name": "a.pdf", "data_id": "d1"}],
                "callback": receiver.url + "/hook",
                "seed": "s33d_x",
            },
        )
        url = r.json()["data"]["file_urls"][0]
        await client.put(url, content=samples.multipage_pdf(2))
        ctx.clock.advance(3 + 2 + 0.5)  # done
        assert receiver.wait_for(lambda calls: len(calls) >= 1)
        ctx.clock.advance(5)  # first retry delay
        assert receiver.wait_for(lambda calls: len(calls) >= 2)
        ctx.clock.advance(10)  # second retry delay
        assert receiver.wait_for(lambda calls: len(calls) >= 3)
        assert [c["status"] for c in receiver.calls] == [500, 500, 200]
        engine = ctx.state["mineru"].engine
        ctx.clock.advance(1000)
        engine.tick()
        assert len(receiver.calls) == 3  # delivered: no more pushes
        for call in receiver.calls:
            assert call["path"] == "/hook"
            assert call["headers"]["Content-Type"].startswith("application/json")
            body = call["body"]
            assert set(body) == {"checksum", "content"}
            expected = hashlib.sha256(
                (defaults.MOCK_UID + "s33d_x" + body["content"]).encode()
            ).hexdigest()
            assert body["checksum"] == expected
            content = json.loads(body["content"])
            assert content["state"] == "done" and content["data_id"] == "d1"
            assert content["full_zip_url"].startswith("http://mock/__cdn/mineru/pdf/")
            assert set(content) == {
                "task_id",
                "data_id",
                "state",
                "full_zip_url",
                "err_msg",
                "err_code",
            }


async def test_callback_gives_up_after_five_retries(mock: Any) -> None:
    client, ctx = mock
    with CallbackReceiver(default=503) as receiver, FileServer() as files:
        r = await client.post(
            "/api/v4/extract/task",
            headers=H,
            json={
                "url": files.add("/x.pdf", b"%PDF-1.4 broken"),
                "callback": receiver.url,
                "seed": "abc",
            },
        )
        assert r.json()["code"] == 0
        ctx.clock.advance(4)  # fails after the queue
        for n in range(1, 7):
            assert receiver.wait_for(lambda calls, n=n: len(calls) >= n), n
            ctx.clock.advance(100)
        task = next(iter(ctx.state["mineru"].engine.tasks.values()))
        assert receiver.wait_for(lambda calls: task.callback_done)
        ctx.state["mineru"].engine.tick()
        assert len(receiver.calls) == 6
        content = json.loads(receiver.calls[-1]["body"]["content"])
        assert content["state"] == "failed" and content["err_code"] == -60003
        assert content["err_msg"].startswith("failed to read file")
