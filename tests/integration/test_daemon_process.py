"""docinbox as a user runs it: real processes, a real folder, the mock on loopback."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from mockserver import defaults
from mockserver.samples import receipt_pdf
from tests.helpers import drop, read_json, wait_for, write_config

from .conftest import MockProcess, docinbox, start_daemon

pytestmark = pytest.mark.integration


def status(config: Path) -> dict:
    return json.loads(docinbox("status", "--json", "-c", str(config), check=True).stdout)


def test_receipt_through_real_processes(workdir: Path, mock_process: MockProcess) -> None:
    config = write_config(workdir, mock_process.url)
    drop(workdir / "inbox", "recibo.pdf", receipt_pdf())
    result = docinbox("run", "--once", "-c", str(config))
    assert result.returncode == 0, result.stderr
    doc = read_json(workdir / "outbox" / "recibo" / "result.json")
    assert {f["label"]: f["text"] for f in doc["fields"]} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    assert doc["tables"][0]["columns"] == ["descripcion", "cantidad"]
    assert doc["tables"][0]["rows"] == [["Gasoil", "50L"]]
    assert (workdir / "archive" / "recibo.pdf").exists()
    st = status(config)
    assert st["counts"] == {"done": 1}
    assert st["documents"][0]["state"] == "done"
    [upload] = [r for r in mock_process.requests() if r["path"].endswith("/LabelFile/")]
    assert upload["headers"]["authorization"].startswith("Basic ")
    assert defaults.NANONETS_API_KEY not in json.dumps(upload)  # the journal masks it


def test_embedded_mock_needs_nothing_else(workdir: Path) -> None:
    config = write_config(workdir)  # [mock] embedded = true, port 0
    drop(workdir / "inbox", "recibo.pdf", receipt_pdf())
    result = docinbox("run", "--once", "-c", str(config))
    assert result.returncode == 0, result.stderr
    assert read_json(workdir / "outbox/recibo/result.json")["fields"][0]["text"] == "23/12/2025"


def test_daemon_picks_up_drops_and_stops_on_sigterm(
    workdir: Path, mock_process: MockProcess
) -> None:
    config = write_config(workdir, mock_process.url)
    daemon = start_daemon(config)
    try:
        wait_for(lambda: (workdir / "state" / "docinbox.db.lock").exists(), message="started")
        for n in range(3):
            drop(workdir / "inbox", f"r{n}.pdf", receipt_pdf(total=f"{n}.00"))
        wait_for(lambda: status(config)["counts"].get("done") == 3, message="3 done")
        # a second daemon on the same folders refuses to start
        second = docinbox("run", "--no-tray", "-c", str(config), timeout=30)
        assert second.returncode == 3 and "already uses" in second.stderr
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, out
    assert "stopped" in out
    assert sorted(p.name for p in (workdir / "outbox").iterdir()) == ["r0", "r1", "r2"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_restart_with_work_pending_loses_nothing_and_repeats_nothing(
    workdir: Path, mock_process: MockProcess, stop: signal.Signals
) -> None:
    config = write_config(workdir, mock_process.url)
    # the service hangs: every upload stays in flight
    mock_process.admin(
        "POST",
        "faults",
        json={"method": "POST", "path": ".*/LabelFile/", "fault": "hang", "seconds": 60},
    )
    names = [f"r{n}.pdf" for n in range(5)]
    for n, name in enumerate(names):
        drop(workdir / "inbox", name, receipt_pdf(total=f"{n}.50"))
    daemon = start_daemon(config)
    try:
        wait_for(
            lambda: status(config)["counts"].get("submitting") == 5,
            timeout=30,
            message="5 uploads in flight",
        )
    finally:
        daemon.send_signal(stop)
        daemon.communicate(timeout=30)
    counts = status(config)["counts"]
    assert counts.get("done", 0) == 0 and sum(counts.values()) == 5
    mock_process.admin("DELETE", "faults")
    result = docinbox("run", "--once", "-c", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    st = status(config)
    assert st["counts"] == {"done": 5}
    assert sorted(p.name for p in (workdir / "outbox").iterdir()) == [n[:-4] for n in names]
    assert sorted(p.name for p in (workdir / "archive").iterdir()) == names
    assert not list((workdir / "inbox").iterdir())
    # each document was accepted by the service exactly once: the hung requests never
    # were, so the restart's single resubmission is the only one that counts
    accepted = [t for t in mock_process.tasks() if t["service"] == "nanonets"]
    assert len(accepted) == 5 and len({t["sha256"] for t in accepted}) == 5


def test_no_secret_in_logs_state_outbox_or_error_files(
    workdir: Path, mock_process: MockProcess
) -> None:
    config = write_config(workdir, mock_process.url)
    drop(workdir / "inbox", "recibo.pdf", receipt_pdf())
    drop(workdir / "inbox", "broken.pdf", b"%PDF-1.4 nothing else")
    mock_process.admin("POST", "faults", json={"path": ".*/LabelFile/", "status": 401, "times": 1})
    result = docinbox("run", "--once", "-c", str(config))
    assert result.returncode == 1  # broken.pdf fails (and the 401 is reported)
    assert (workdir / "failed" / "broken.pdf.error.json").exists()
    key = defaults.NANONETS_API_KEY.encode()
    files = [p for p in workdir.rglob("*") if p.is_file() and p.name != "config.toml"]
    assert any(p.name == "docinbox.log" for p in files)
    leaks = [str(p) for p in files if key in p.read_bytes()]
    assert leaks == []
    assert key.decode() not in result.stdout + result.stderr


def test_bad_config_names_the_key(workdir: Path) -> None:
    config = workdir / "config.toml"
    config.write_text('[folders]\ninbox = "in"\n[watcher]\nsettle = 3\n')
    result = docinbox("run", "--once", "-c", str(config))
    assert result.returncode == 2
    assert "'watcher.settle'" in result.stderr


def test_retry_puts_failed_documents_back(workdir: Path, mock_process: MockProcess) -> None:
    config = write_config(workdir, mock_process.url)
    drop(workdir / "inbox", "recibo.pdf", receipt_pdf())
    mock_process.admin("POST", "faults", json={"path": ".*/LabelFile/", "status": 401, "times": 1})
    assert docinbox("run", "--once", "-c", str(config)).returncode == 1
    failed = status(config)["documents"][0]
    assert failed["state"] == "failed" and failed["error"] == "credentials"
    assert (workdir / "failed" / "recibo.pdf").exists()
    out = docinbox("retry", "--failed", "-c", str(config), check=True).stdout
    assert "1 document back in line" in out
    assert status(config)["counts"] == {"queued": 1}
    assert docinbox("run", "--once", "-c", str(config)).returncode == 0
    assert status(config)["counts"] == {"done": 1}
    assert (workdir / "outbox" / "recibo" / "result.json").exists()
    assert (workdir / "archive" / "recibo.pdf").exists()
    assert not (workdir / "failed" / "recibo.pdf").exists()
    assert not (workdir / "failed" / "recibo.pdf.error.json").exists()
    assert docinbox("retry", "--failed", "-c", str(config)).returncode == 0  # nothing to do
    assert docinbox("retry", "42", "-c", str(config)).returncode == 1  # no such failed doc
