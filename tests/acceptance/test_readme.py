"""The README's "Try it", step by step, as a new user types it."""

from __future__ import annotations

from tests.acceptance.conftest import Workspace, receipt, wait_for


def test_try_it_receipt_comes_out_and_status_says_done(workspace: Workspace) -> None:
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())

    result = wait_for(
        lambda: (
            (workspace.outbox / "recibo" / "result.json").exists() and workspace.result("recibo")
        ),
        30,
        "outbox/recibo/result.json",
    )
    fields = {f["label"]: f["text"] for f in result["fields"]}
    assert fields == {"fecha": "23/12/2025", "total": "45.99"}
    assert result["tables"][0]["rows"] == [["Gasoil", "50L"]]
    assert (workspace.archive / "recibo.pdf").exists()

    status = workspace.docinbox("status")
    assert status.returncode == 0
    assert "1 document — 1 done" in status.stdout

    assert daemon.stop() == 0
    assert daemon.problems() == []
