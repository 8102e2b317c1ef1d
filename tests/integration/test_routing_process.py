"""Large documents, the self-hosted parser and links, through real processes."""

from __future__ import annotations

import http.server
import io
import json
import signal
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mockserver.samples import multipage_pdf, receipt_pdf
from tests.helpers import drop, read_json, service_sections, wait_for, write_config

from .conftest import MockProcess, docinbox, start_daemon

pytestmark = pytest.mark.integration

ROUTES = """
[[routes]]
folder = "private/**"
service = "docparse"

[[routes]]
service = "nanonets"
max_pages = 3
types = ["pdf", "png", "jpg"]

[[routes]]
service = "mineru"
"""


def config_for(workdir: Path, url: str, routes: str = ROUTES) -> Path:
    return write_config(workdir, url, routes=service_sections(url) + routes)


def status(config: Path) -> dict:
    return json.loads(docinbox("status", "--json", "-c", str(config), check=True).stdout)


def docx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document><w:t>Carta</w:t></w:document>")
    return buf.getvalue()


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """A plain web server on loopback holding a PDF, for dropped links."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "paper.pdf").write_bytes(multipage_pdf(2, words="Paper"))
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(root), **k
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.mock_speed(50)
def test_mixed_drops_each_go_to_the_right_service(
    workdir: Path, mock_process: MockProcess, web_server: str
) -> None:
    config = config_for(workdir, mock_process.url)
    inbox = workdir / "inbox"
    drop(inbox, "recibo.pdf", receipt_pdf())
    drop(inbox, "book.pdf", multipage_pdf(40))
    drop(inbox, "letter.docx", docx())
    drop(inbox, "private/payslip.pdf", receipt_pdf(total="1999.00"))
    drop(inbox, "paper.url", f"[InternetShortcut]\nURL={web_server}/paper.pdf\n".encode())
    result = docinbox("run", "--once", "-c", str(config), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    services = {d["path"]: d["service"] for d in status(config)["documents"]}
    assert services == {
        "recibo.pdf": "nanonets",
        "book.pdf": "mineru",
        "letter.docx": "mineru",
        "private/payslip.pdf": "docparse",
        "paper.url": "mineru",
    }
    out = workdir / "outbox"
    book = read_json(out / "book" / "result.json")
    assert book["service"] == "mineru" and book["source"]["pages"] == 40
    assert book["remote"]["batch_id"]
    assert "Page 40" in (out / "book" / "document.md").read_text()
    assert list((out / "book" / "raw").glob("*_content_list.json"))
    payslip = read_json(out / "payslip" / "result.json")
    assert payslip["service"] == "docparse"
    assert "1999.00" in (out / "payslip" / "document.md").read_text()
    assert "Paper 2" in (out / "paper" / "document.md").read_text()
    requests = mock_process.requests()
    # the two MinerU files shared one batch; the link was its own URL task
    assert len([r for r in requests if r["path"] == "/api/v4/file-urls/batch"]) == 1
    assert len([r for r in requests if r["path"] == "/api/v4/extract/task"]) == 1
    # the parser fetched the payslip from the daemon's file server (a real fetch)
    assert [t for t in mock_process.tasks() if t["service"] == "docparse"]


@pytest.mark.mock_speed(200)
def test_250_documents_go_in_five_batches(workdir: Path, mock_process: MockProcess) -> None:
    """MinerU takes 50 files per file-urls/batch request (the limit docinbox assumes)."""
    config = config_for(
        workdir,
        mock_process.url,
        routes=ROUTES.replace(
            'max_pages = 3\ntypes = ["pdf", "png", "jpg"]', 'folder = "nowhere/**"'
        ),
    )
    for n in range(250):
        (workdir / "inbox" / f"d{n:03}.pdf").write_bytes(receipt_pdf(total=f"{n}.00"))
    result = docinbox("run", "--once", "-c", str(config), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert status(config)["counts"] == {"done": 250}
    requests = mock_process.requests()
    batches = [r for r in requests if r["path"] == "/api/v4/file-urls/batch"]
    assert len(batches) == 5
    polls = [r for r in requests if r["path"].startswith("/api/v4/extract-results/batch/")]
    assert len(polls) < 250 * 0.2  # one poll per batch, never one per document
    ids = {read_json(p)["remote"]["batch_id"] for p in (workdir / "outbox").glob("*/result.json")}
    assert len(ids) == 5


def kill_mid_upload(workdir: Path, mock_process: MockProcess) -> tuple[Path, str]:
    """A 10-page PDF to MinerU whose PUT hangs; the daemon is SIGKILLed once the upload URL
    is checkpointed (before the PUT starts).  Returns the config and that URL."""
    config = config_for(workdir, mock_process.url)
    mock_process.admin(
        "POST",
        "faults",
        json={"method": "PUT", "path": "/__oss/.*", "fault": "hang", "seconds": 60},
    )
    drop(workdir / "inbox", "book.pdf", multipage_pdf(10))
    daemon = start_daemon(config)
    try:
        wait_for(
            lambda: (
                status(config)["documents"]
                and status(config)["documents"][0]["remote"].get("upload_url")
            ),
            timeout=60,
            message="upload URL checkpointed",
        )
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.communicate(timeout=30)
    mock_process.admin("DELETE", "faults")
    return config, status(config)["documents"][0]["remote"]["upload_url"]


def finish(config: Path, mock_process: MockProcess) -> list[dict]:
    result = docinbox("run", "--once", "-c", str(config), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (config.parent / "outbox" / "book" / "result.json").exists()
    return mock_process.requests()


@pytest.mark.mock_speed(20)
def test_killed_mid_upload_puts_again_to_the_same_url(
    workdir: Path, mock_process: MockProcess
) -> None:
    config, url = kill_mid_upload(workdir, mock_process)
    requests = finish(config, mock_process)
    assert len([r for r in requests if r["path"] == "/api/v4/file-urls/batch"]) == 1
    puts = [r for r in requests if r["method"] == "PUT"]
    assert puts[-1]["status"] == 200
    assert url.split("?")[0].endswith(puts[-1]["path"])  # the same presigned URL again


@pytest.mark.mock_speed(20)
def test_expired_upload_url_is_renewed(workdir: Path, mock_process: MockProcess) -> None:
    config, _url = kill_mid_upload(workdir, mock_process)
    mock_process.admin("POST", "clock/advance", json={"seconds": 25 * 3600})  # past 24 h
    requests = finish(config, mock_process)
    assert len([r for r in requests if r["path"] == "/api/v4/file-urls/batch"]) == 2


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MINERU_ONLY = """
[services.mineru]
base_url = "{url}"
token = "mock-mineru-token"
uid = "mock-user-0001"

[callbacks]
public_url = "{public}"
listen = "127.0.0.1:{port}"

[[routes]]
service = "mineru"
"""


@pytest.mark.mock_speed(20)
def test_callbacks_wake_the_poll(workdir: Path, mock_process: MockProcess) -> None:
    port = free_port()
    config = write_config(
        workdir,
        mock_process.url,
        routes=MINERU_ONLY.format(
            url=mock_process.url, public=f"http://127.0.0.1:{port}", port=port
        ),
    )
    drop(workdir / "inbox", "book.pdf", multipage_pdf(6))
    result = docinbox("run", "--once", "-c", str(config), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    log = (workdir / "state" / "docinbox.log").read_text()
    assert "callback from mineru" in log and "1 job(s) to poll now" in log
    assert (workdir / "outbox" / "book" / "result.json").exists()


@pytest.mark.mock_speed(20)
def test_without_callbacks_arriving_polling_still_finishes(
    workdir: Path, mock_process: MockProcess
) -> None:
    port = free_port()
    dead = free_port()  # nothing listens there: every push fails
    config = write_config(
        workdir,
        mock_process.url,
        routes=MINERU_ONLY.format(
            url=mock_process.url, public=f"http://127.0.0.1:{dead}", port=port
        ),
    )
    drop(workdir / "inbox", "book.pdf", multipage_pdf(6))
    result = docinbox("run", "--once", "-c", str(config), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "callback from mineru" not in (workdir / "state" / "docinbox.log").read_text()
    assert (workdir / "outbox" / "book" / "result.json").exists()


def test_forged_callback_is_refused(workdir: Path) -> None:
    """A callback with a wrong checksum is answered 403 and changes nothing."""
    import threading

    import httpx

    from daemon import config as config_module
    from daemon.lifecycle import Daemon

    port = free_port()
    cfg = write_config(
        workdir,
        "http://127.0.0.1:9",
        routes=MINERU_ONLY.format(
            url="http://127.0.0.1:9", public=f"http://127.0.0.1:{port}", port=port
        ),
    )
    daemon = Daemon(config_module.load(cfg), start_mock=False)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        wait_for(
            lambda: daemon.files is not None and daemon.files.port == port,
            message="the callback server",
        )
        response = httpx.post(
            f"http://127.0.0.1:{port}/callbacks/mineru",
            json={"checksum": "0" * 64, "content": '{"data_id": "docinbox-1-x"}'},
        )
        assert response.status_code == 403
    finally:
        daemon.stop()
        thread.join(30)
        daemon.close()
