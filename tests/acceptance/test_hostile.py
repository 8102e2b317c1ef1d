"""Hostile answers, as a user meets them with ``docinbox run``: an answer that trickles in
is cut and the document retried (not stuck for as long as the server likes), and a
service that echoes the key it was sent leaves no trace of the key anywhere docinbox
writes or shows."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mockserver.samples import multipage_pdf
from tests.acceptance.conftest import Workspace, receipt, wait_for

LABEL_FILE = "/api/v2/OCR/Model/.*/LabelFile/"


def uploads(requests: list[dict[str, Any]]) -> int:
    return sum(1 for r in requests if r["method"] == "POST" and r["path"].endswith("/LabelFile/"))


def test_an_answer_that_trickles_is_cut_and_the_document_retried(workspace: Workspace) -> None:
    """The mock dribbles its answer over 40 s, a piece every 2 s: inside the 3 s timeout
    of every single read, so before the deadline docinbox waited out all 40 s (twice).
    Now the exchange is cut after ~4 s, ``docinbox status`` says the document is being
    retried, and the third attempt (the fault spent) brings the result."""
    workspace.set_key("services.nanonets", "timeout", "3")
    daemon = workspace.start()
    daemon.wait_ready()
    mock = daemon.mock()
    mock.post(
        "faults",
        {"method": "POST", "path": LABEL_FILE, "fault": "dribble", "seconds": 40, "times": 2},
    )
    dropped = time.monotonic()
    workspace.drop("recibo.pdf", receipt())

    def retrying() -> dict[str, Any] | None:
        status = workspace.status()
        docs = [d for d in status["documents"] if d["error"] == "too_slow"]
        services = [s for s in status["services"] if s.get("error") == "too_slow"]
        return status if docs or services else None

    seen = wait_for(retrying, 30, "docinbox status to show the document being retried")
    doc = seen["documents"][0]
    assert doc["state"] in ("queued", "submitting"), doc
    assert doc["result"] is None

    wait_for(lambda: (workspace.outbox / "recibo" / "result.json").exists(), 40, "the result")
    elapsed = time.monotonic() - dropped
    assert elapsed < 38, elapsed  # not even one dribble waited out
    assert {f["label"]: f["text"] for f in workspace.result("recibo")["fields"]}["total"] == "45.99"
    assert uploads(mock.requests()) == 3
    log = workspace.log.read_text("utf-8")
    # the timeout, one second of grace, the upload at 32 KiB/s: about 4 s
    assert re.search(r"the answer to POST \S+LabelFile\S* did not complete within 4\.\d s", log), (
        log
    )
    status = workspace.status()
    assert status["counts"] == {"done": 1}
    assert daemon.stop() == 0


# --- a service that echoes its key -------------------------------------------------------------

NANONETS_KEY = "sk-nano+Key/7Qx=Zt9"
MINERU_KEY = "mu-tok+Key/3Rz=Wb8"


def forms(key: str) -> dict[str, str]:
    """Every form of *key* that must not appear anywhere."""
    return {
        "raw": key,
        "basic": base64.b64encode(f"{key}:".encode()).decode(),
        "url-encoded": urllib.parse.quote(key, safe=""),
        "form-encoded": urllib.parse.quote_plus(key),
    }


class FakeService:
    """A tiny HTTP server on loopback answering every request with *answer(method, path,
    headers)* → (status, JSON body): a stand-in for a real service's misbehaviour that
    the mock cannot play."""

    def __init__(self, answer: Callable[[str, str, dict[str, str]], tuple[int, Any]]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, body = answer(self.command, self.path, dict(self.headers.items()))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                outer.requests.append((self.command, self.path))

            do_GET = do_POST = do_PUT = _reply

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.requests: list[tuple[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[FakeService]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def echo_the_key(method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    """Nanonets refuses the document quoting the Basic credentials it got (and the key in
    every other form); MinerU refuses the token quoting its Bearer header."""
    said = headers.get("Authorization", "")
    if path.endswith("/LabelFile/"):
        f = forms(NANONETS_KEY)
        return 400, {
            "message": f"bad key {f['raw']} ({said}) api_key={f['form-encoded']} "
            f"k={f['url-encoded']}",
            "code": "invalid_request",
        }
    if path.startswith("/api/v4/"):
        return 401, {
            "msgCode": "A0202",
            "msg": f"token invalid: {said} / {MINERU_KEY}",
            "success": False,
        }
    return 404, {"message": "not found"}


def test_a_service_echoing_its_key_leaves_no_trace(workspace: Workspace) -> None:
    with FakeService(echo_the_key).running() as fake:
        workspace.use_mock(fake.url)
        workspace.user_env.update({"NANONETS_API_KEY": NANONETS_KEY, "MINERU_API_KEY": MINERU_KEY})
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("recibo.pdf", receipt())  # one page: Nanonets
        workspace.drop("informe.pdf", multipage_pdf(5))  # five pages: MinerU

        wait_for(
            lambda: (workspace.failed / "recibo.pdf.error.json").exists(),
            30,
            "the refused document's error file",
        )

        def mineru_paused() -> dict[str, Any] | None:
            status = workspace.status()
            paused = [s for s in status["services"] if s["name"] == "mineru"]
            return status if paused else None

        status = wait_for(mineru_paused, 30, "MinerU paused for its token")
        error = json.loads((workspace.failed / "recibo.pdf.error.json").read_text("utf-8"))
        assert error["error"] == "rejected" and "bad key ****" in error["message"], error
        assert "Basic ****" in error["message"], error
        (paused,) = [s for s in status["services"] if s["name"] == "mineru"]
        assert "Bearer ****" in paused["reason"], paused
        text_status = workspace.docinbox("status")
        assert text_status.returncode == 0
        assert "rejected: nanonets refused the document" in text_status.stdout
        assert daemon.stop() == 0

    shown = {
        "the log": workspace.log.read_text("utf-8"),
        "docinbox run's output": daemon.output(),
        "the error file": (workspace.failed / "recibo.pdf.error.json").read_text("utf-8"),
        "docinbox status --json": workspace.docinbox("status", "--json").stdout,
        "docinbox status": workspace.docinbox("status").stdout,
    }
    for name in ("docinbox.db", "docinbox.db-wal"):
        path = workspace.root / "state" / name
        if path.exists():
            shown[name] = path.read_bytes().decode("latin-1")
    assert "bad key" in shown["the log"]  # what the service said was recorded...
    for where, text in shown.items():  # ... without the key, in any form
        for key in (NANONETS_KEY, MINERU_KEY):
            for form, value in forms(key).items():
                assert value not in text, f"{form} form of {key} in {where}"
