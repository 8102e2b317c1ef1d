"""When things go wrong, as a user meets it: a refused document and `docinbox retry`, and a
service that cannot be reached for a minute."""

from __future__ import annotations

import json
import time

from tests.acceptance.conftest import MockProcess, Workspace, receipt, wait_for

LABEL_FILE = "/api/v2/OCR/Model/.*/LabelFile/"


def failed_files(ws: Workspace) -> list[str]:
    return sorted(p.name for p in ws.failed.iterdir()) if ws.failed.exists() else []


def test_retry_of_a_document_that_fails_again_keeps_the_original(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    mock = daemon.mock()
    mock.post("faults", {"method": "POST", "path": LABEL_FILE, "status": 400})
    original = receipt()
    workspace.drop("recibo.pdf", original)

    wait_for(lambda: workspace.counts().get("failed") == 1, 30, "the document to fail")
    assert failed_files(workspace) == ["recibo.pdf", "recibo.pdf.error.json"]

    # The user retries; the service still refuses it.
    retried = workspace.docinbox("retry", "--failed")
    assert retried.returncode == 0, retried.stderr
    wait_for(
        lambda: sum(1 for r in mock.requests() if r["path"].endswith("/LabelFile/")) == 2,
        30,
        "the second attempt",
    )
    wait_for(lambda: workspace.counts().get("failed") == 1, 30, "the document to fail again")
    assert failed_files(workspace) == ["recibo.pdf", "recibo.pdf.error.json"]
    assert (workspace.failed / "recibo.pdf").read_bytes() == original
    error = json.loads((workspace.failed / "recibo.pdf.error.json").read_text())
    assert error["error"] == "rejected"

    # Once the service takes it, the original moves on to the archive, the error file goes.
    workspace_mock_clear(mock)
    assert workspace.docinbox("retry", "--failed").returncode == 0
    wait_for(lambda: (workspace.outbox / "recibo" / "result.json").exists(), 30, "the result")
    wait_for(lambda: workspace.counts() == {"done": 1}, 30, "the document done")
    assert (workspace.archive / "recibo.pdf").read_bytes() == original
    assert failed_files(workspace) == []
    assert daemon.stop() == 0


def workspace_mock_clear(mock: MockProcess | object) -> None:
    http = mock.http  # type: ignore[attr-defined]
    http.delete("/__admin/faults").raise_for_status()


def test_a_minute_long_outage_fails_nothing(workspace: Workspace) -> None:
    """The shipped [retry] settings, the mock's default limits; the service's port stops
    answering for 60 s while documents arrive."""
    mock = MockProcess()
    port = mock.port
    workspace.use_mock(mock.url)
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("before.pdf", receipt())
    wait_for(lambda: (workspace.outbox / "before" / "result.json").exists(), 30, "a first result")

    mock.stop()
    names = [f"recibo-{i}.pdf" for i in range(3)]
    for i, name in enumerate(names):
        workspace.drop(name, receipt(total=f"4{i}.99"))  # other content: no reused result

    def paused() -> bool:
        services = {s["name"]: s for s in workspace.status()["services"]}
        return services.get("nanonets", {}).get("condition") == "retrying"

    wait_for(paused, 30, "nanonets shown as retrying in status")
    text = workspace.docinbox("status").stdout
    assert "nanonets: retrying" in text, text
    outage_end = time.monotonic() + 60
    while time.monotonic() < outage_end:  # the outage itself, watched every second
        assert workspace.counts().get("failed", 0) == 0, workspace.docinbox("status").stdout
        time.sleep(1)

    mock = MockProcess(port)  # the service is back on the same address
    try:
        wait_for(
            lambda: workspace.counts().get("done") == 4, 90, "every document done after the outage"
        )
        assert workspace.counts().get("failed", 0) == 0
        services = workspace.status()["services"]  # each with its pace and allowances
        assert [s["condition"] for s in services] == ["ok"], services
        sent = [r for r in mock.requests() if r["path"].endswith("/LabelFile/")]
        assert len(sent) == len(names)  # each sent once it could be, none twice
        assert not any(workspace.failed.glob("*")) if workspace.failed.exists() else True
        assert daemon.stop() == 0
    finally:
        mock.stop()
