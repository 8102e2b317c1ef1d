"""The desk's API on a real daemon in this process (embedded mock, real HTTP on the
loopback): the guard, the review loop end to end, retries and restarts of approvals,
search, pages, events, export, and hostile requests."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook

from daemon import config
from daemon.lifecycle import Daemon
from daemon.store import State, open_store
from mockserver import defaults
from mockserver.samples import receipt_pdf
from tests.helpers import drop, read_json, service_sections, wait_for, write_config

#: A body over the desk's cap.
BIG = "x" * 300_000
TOTAL = {"fields": [{"label": "total", "text": "46.99"}]}
REVIEW = '\n[review]\nmin_score = 0.93\n\n[dashboard]\nlisten = "127.0.0.1:0"\n'
MINERU_ROUTES = """
[[routes]]
folder = "informes/**"
service = "mineru"

[[routes]]
service = "nanonets"
"""


class Running:
    """``docinbox run`` in a thread of this process, and an HTTP client for its desk."""

    def __init__(
        self, workdir: Path, *, routes: str | None = None, mock_url: str | None = None
    ) -> None:
        """*mock_url*: a mock that outlives this daemon (else the embedded one)."""
        sections = service_sections(mock_url or "http://127.0.0.1:9", docparse=False)
        extra = REVIEW + (sections if routes else "")
        self.workdir = workdir
        self.settings = config.load(write_config(workdir, mock_url, extra=extra, routes=routes))
        self.daemon = Daemon(self.settings, fsync=False)
        self.thread = threading.Thread(target=self.daemon.run, name="daemon", daemon=True)
        self.thread.start()
        url = wait_for(self.daemon.control.dashboard_url, 30, message="the desk")
        self.base, _, token = url.partition("/?token=")
        self.token = token
        self.http = httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {token}"}, trust_env=False
        )
        self.csrf = self.http.get("/api/session").json()["csrf"]
        url = mock_url or self.daemon.mock.url
        self.mock = httpx.Client(base_url=url, trust_env=False)

    def change(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=body, headers={"X-CSRF-Token": self.csrf})

    def documents(self, **params: str) -> list[dict[str, Any]]:
        response = self.http.get("/api/documents", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["documents"])

    def done(self, name: str, timeout: float = 30) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            docs = [d for d in self.documents() if d["name"] == name and d["state"] == "done"]
            return docs[0] if docs and docs[0]["review"] is not None else None

        return wait_for(found, timeout, message=f"{name} done")

    def journal(self) -> list[str]:
        requests = self.mock.get("/__admin/requests").json()["requests"]
        return [f"{r['method']} {r['path']}" for r in requests]

    def stop(self) -> None:
        self.daemon.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the daemon did not stop"
        self.http.close()
        self.mock.close()
        self.daemon.close()


@pytest.fixture
def running(workdir: Path) -> Iterator[Running]:
    r = Running(workdir)
    try:
        yield r
    finally:
        r.stop()


def _approved(r: Running, job_id: int) -> dict[str, Any]:
    def state() -> dict[str, Any] | None:
        doc = r.http.get(f"/api/documents/{job_id}").json()
        return doc if (doc.get("review") or {}).get("state") == "approved" else None

    return wait_for(state, 30, message="the approval")


# --- the guard ------------------------------------------------------------------------------


def test_the_guard_wants_the_key_the_host_and_the_csrf_token(running: Running) -> None:
    bare = httpx.Client(base_url=running.base, trust_env=False)
    assert bare.get("/api/documents").status_code == 401
    assert bare.get("/").status_code == 401
    assert bare.get("/?token=wrong").status_code == 403
    assert bare.get("/api/documents", headers={"Authorization": "Bearer wrong"}).status_code == 401
    # the key once in the URL: a cookie, and off to the address without it
    login = bare.get(f"/?token={running.token}")
    assert login.status_code == 303 and login.headers["location"] == "/"
    cookie = login.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and running.token in cookie
    assert bare.get("/api/documents").status_code == 200  # the cookie now
    page = bare.get("/")
    assert page.status_code == 200 and "review desk" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # DNS rebinding: the right key, but another site's name
    port = running.base.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", f"127.0.0.1:{int(port) + 1}", "127.0.0.1"):
        assert running.http.get("/api/documents", headers={"Host": host}).status_code == 403
    assert running.http.get("/api/documents", headers={"Host": f"localhost:{port}"}).is_success
    # a change needs the CSRF token, and no foreign Origin
    assert running.http.post("/api/documents/1/approve").status_code == 403
    refused = running.http.post(
        "/api/documents/1/approve",
        headers={"X-CSRF-Token": running.csrf, "Origin": "http://evil.example"},
    )
    assert refused.status_code == 403
    assert bare.post("/api/documents/1/dismiss", headers={"X-CSRF-Token": "x"}).status_code == 403
    bare.close()


# --- the review loop ------------------------------------------------------------------------


def test_a_receipt_under_review_is_corrected_approved_and_sent(running: Running) -> None:
    drop(running.settings.folders.inbox, "recibo.pdf", receipt_pdf())
    doc = running.done("recibo.pdf")
    assert doc["review"] == {"state": "pending", "fields": ["total"]}  # 0.92 < 0.93
    assert running.documents(review="pending")[0]["id"] == doc["id"]
    detail = running.http.get(f"/api/documents/{doc['id']}").json()
    assert {f["label"]: f["text"] for f in detail["fields"]} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    assert detail["tables"][0]["rows"] == [["Gasoil", "50L"]]
    assert [h["to"] for h in detail["history"]][-1] == "done"
    assert detail["route"]["service"] == "nanonets" and detail["page_images"] is True
    folder = Path(detail["result"])
    assert read_json(folder / "result.json")["review"] == {"state": "pending", "fields": ["total"]}

    saved = running.change("PATCH", f"/api/documents/{doc['id']}/fields", TOTAL)
    assert saved.status_code == 200 and saved.json()["approval"]["state"] == "editing"
    assert "UpdateFile" not in " ".join(running.journal())  # kept until approval
    assert running.change("POST", f"/api/documents/{doc['id']}/approve").status_code == 202
    approved = _approved(running, doc["id"])

    calls = [c for c in running.journal() if "UpdateFile" in c or "ApproveFile" in c]
    rfid = approved["remote"]["request_file_id"]
    assert calls == [
        f"PATCH /api/v2/OCR/Model/{defaults.NANONETS_MODEL_ID}/UpdateFile/{rfid}/",
        f"POST /api/v2/OCR/Model/{defaults.NANONETS_MODEL_ID}/ApproveFile/{rfid}/",
    ]
    got = running.mock.get(
        f"/api/v2/OCR/Model/{defaults.NANONETS_MODEL_ID}/getFile/{rfid}/",
        auth=(defaults.NANONETS_API_KEY, ""),
    ).json()
    boxes = [b for p in got["moderated_images"] for b in p["moderated_boxes"]]
    fields = {b["label"]: b["ocr_text"] for b in boxes if b.get("type") == "field"}
    assert fields["total"] == "46.99"

    result = read_json(folder / "result.json")
    total = {f["label"]: f for f in result["fields"]}["total"]
    assert total["text"] == "46.99" and total["original"] == "45.99"
    assert result["review"]["state"] == "approved" and result["review"]["by"] == "dashboard"
    assert result["review"]["sent"] is True and isinstance(result["review"]["at"], float)
    markdown = (folder / "document.md").read_text("utf-8")
    assert "46.99" in markdown and "45.99" not in markdown
    assert b"45.99" in (folder / "raw" / "response.json").read_bytes()  # the model's, kept
    assert [d["id"] for d in running.documents(q="46.99")] == [doc["id"]]
    assert running.documents(q="45.99") == []
    assert running.documents(review="pending") == []


def test_an_approval_rides_out_an_outage(running: Running) -> None:
    drop(running.settings.folders.inbox, "recibo.pdf", receipt_pdf())
    doc = running.done("recibo.pdf")
    running.mock.post(
        "/__admin/faults", json={"path": ".*/UpdateFile/.*", "status": 503, "times": 2}
    ).raise_for_status()
    running.change("PATCH", f"/api/documents/{doc['id']}/fields", TOTAL)
    running.change("POST", f"/api/documents/{doc['id']}/approve")
    _approved(running, doc["id"])
    calls = [c.split("/")[-3] for c in running.journal() if "eFile/" in c and "Label" not in c]
    assert calls == ["UpdateFile", "UpdateFile", "UpdateFile", "ApproveFile"]


def test_an_approval_left_under_way_is_finished_at_the_next_start(
    workdir: Path, mock_url: str
) -> None:
    first = Running(workdir, mock_url=mock_url)
    try:
        drop(first.settings.folders.inbox, "recibo.pdf", receipt_pdf())
        job_id = first.done("recibo.pdf")["id"]
    finally:
        first.stop()
    # what a power cut right after the intent leaves: approving, nothing sent
    store = open_store(first.settings.folders.state)
    store.save_corrections(job_id, [{"label": "total", "text": "46.99"}])
    store.request_approval(job_id, "dashboard")
    store.close()
    second = Running(workdir, mock_url=mock_url)
    try:
        approved = _approved(second, job_id)
        assert {f["label"]: f["text"] for f in approved["fields"]}["total"] == "46.99"
        calls = [c for c in second.journal() if "UpdateFile" in c or "ApproveFile" in c]
        assert [c.split("/")[-3] for c in calls] == ["UpdateFile", "ApproveFile"]
    finally:
        second.stop()


def test_a_service_without_a_review_api_is_corrected_locally(workdir: Path) -> None:
    r = Running(workdir, routes=MINERU_ROUTES)
    try:
        drop(r.settings.folders.inbox, "informes/recibo.pdf", receipt_pdf())
        doc = r.done("recibo.pdf", timeout=60)
        assert doc["service"] == "mineru"
        r.change("PATCH", f"/api/documents/{doc['id']}/fields", TOTAL)
        r.change("POST", f"/api/documents/{doc['id']}/approve")
        approved = _approved(r, doc["id"])
        review = approved["review"]
        assert review["sent"] is False and "corrected locally only" in review["note"]
        assert {f["label"]: f["text"] for f in approved["fields"]}["total"] == "46.99"
        assert not [c for c in r.journal() if "UpdateFile" in c or "ApproveFile" in c]
        # MinerU's Markdown is the document's own text: left as the service wrote it
        assert "45.99" in approved["markdown"]
    finally:
        r.stop()


# --- failures, pages, events, export, hostile requests ---------------------------------------


def test_a_failed_document_is_retried_or_dismissed(running: Running) -> None:
    drop(running.settings.folders.inbox, "vacio.pdf", b"%PDF-1.4\n%%EOF\n")
    failed = wait_for(lambda: running.documents(state="failed"), 30, message="a failure")
    job_id = failed[0]["id"]
    assert running.change("POST", f"/api/documents/{job_id}/dismiss").json() == {
        "dismissed": [job_id]
    }
    store = open_store(running.settings.folders.state, readonly=True)
    try:
        assert store.counts().get("failed", 0) == 0  # out of the tray's count and status
    finally:
        store.close()
    assert (running.settings.folders.failed / "vacio.pdf").exists()  # its files stay
    assert running.documents(state="failed")[0]["dismissed"] is True
    assert running.change("POST", f"/api/documents/{job_id}/retry").json() == {"retried": [job_id]}
    wait_for(lambda: running.documents(state="failed"), 30, message="the failure again")
    assert running.documents(state="failed")[0]["dismissed"] is False
    # a document that did not fail can be neither
    assert running.change("POST", "/api/documents/999/retry").status_code == 404


def test_pages_come_only_from_the_archive_and_the_failed_folder(running: Running) -> None:
    drop(running.settings.folders.inbox, "recibo.pdf", receipt_pdf())
    doc = running.done("recibo.pdf")
    page = running.http.get(f"/api/documents/{doc['id']}/pages/1.png")
    assert page.status_code == 200 and page.content.startswith(b"\x89PNG")
    assert page.headers["content-type"] == "image/png"
    assert running.http.get(f"/api/documents/{doc['id']}/pages/2.png").status_code == 404
    assert running.http.get(f"/api/documents/{doc['id']}/pages/0.png").status_code == 404
    # a row that points elsewhere (a tampered database) shows nothing of it
    secret = running.workdir / "secret.png"
    secret.write_bytes((running.settings.folders.archive / "recibo.pdf").read_bytes())
    store = open_store(running.settings.folders.state)
    other = store.add(rel_path="x.pdf", location=str(secret), sha256="x", size=1, mtime_ns=1)
    store.transition(other.id, State.QUEUED, State.FAILING, error="x", message="m", kind="pdf")
    store.transition(other.id, State.FAILING, State.FAILED)
    store.close()
    assert running.http.get(f"/api/documents/{other.id}/pages/1.png").status_code == 404
    for path in ("/api/documents/1/pages/..%2F..%2Fetc%2Fpasswd.png", "/static/../config.toml"):
        assert running.http.get(path).status_code == 404


def test_events_tell_of_every_change(running: Running) -> None:
    seen: list[dict[str, Any]] = []
    with running.http.stream("GET", "/api/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        for line in lines:
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if len(seen) == 1:
                    drop(running.settings.folders.inbox, "recibo.pdf", receipt_pdf())
                if seen[-1]["counts"].get("done"):
                    break
    assert seen[0]["counts"] == {} and seen[-1]["counts"] == {"done": 1}
    assert seen[-1]["under_review"] == 1


def test_the_export_downloads(running: Running) -> None:
    drop(running.settings.folders.inbox, "recibo.pdf", receipt_pdf())
    running.done("recibo.pdf")
    xlsx = running.http.get("/api/export", params={"format": "xlsx"})
    assert xlsx.status_code == 200 and "attachment" in xlsx.headers["content-disposition"]
    rows = list(load_workbook(io.BytesIO(xlsx.content))["Documents"].iter_rows(values_only=True))
    assert rows[0][-2:] == ("fecha", "total") and rows[1][-1] == 45.99
    csv = running.http.get("/api/export", params={"format": "csv", "part": "tables"})
    assert csv.content.decode("utf-8-sig").splitlines()[1].endswith("Gasoil,50L")
    assert running.http.get("/api/export", params={"format": "ods"}).status_code == 400
    assert running.http.get("/api/export", params={"state": "approved"}).text.count("\n") == 1


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/documents/abc", None, 404),
        ("GET", "/api/documents/99999999999999999999999", None, 404),
        ("GET", "/api/documents?limit=x", None, 400),
        ("GET", "/api/documents?since=yesterday", None, 400),
        ("GET", "/api/search", None, 400),
        ("GET", "/api/search?q=%22%2A%29+OR", None, 200),
        ("PATCH", "/api/documents/1/fields", "not json", 400),
        ("PATCH", "/api/documents/1/fields", {"fields": [{"label": 1}]}, 400),
        ("PATCH", "/api/documents/1/fields", {"fields": [{"label": "t", "text": BIG}]}, 413),
        ("PATCH", "/api/documents/999/fields", {"fields": [{"label": "t", "text": "1"}]}, 404),
        ("POST", "/api/documents/999/approve", None, 404),
        ("DELETE", "/api/documents/1", None, 405),
    ],
)
def test_hostile_requests_get_a_clear_no(
    running: Running, method: str, path: str, body: Any, status: int
) -> None:
    content = body if isinstance(body, str) else json.dumps(body) if body is not None else None
    response = running.http.request(
        method, path, content=content, headers={"X-CSRF-Token": running.csrf}
    )
    assert response.status_code == status, response.text
