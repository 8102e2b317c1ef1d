"""Parsio as a user turns it on: the shipped config.toml's commented Parsio section and
example route uncommented, ``docinbox run``, a receipt dropped into ``inbox/parsio/``."""

from __future__ import annotations

import json
import re
import signal
from typing import Any

from mockserver import defaults
from tests.acceptance.conftest import MockProcess, Workspace, receipt, wait_for

UPLOAD = re.compile(r"/mailboxes/[^/]+/upload(-sync)?")


def uncomment_parsio(workspace: Workspace) -> None:
    """What the shipped config's comments tell a user to do: uncomment ``[services.parsio]``
    and the example route that sends ``inbox/parsio/`` to it."""

    def change(text: str) -> str:
        lines = text.splitlines()
        out = []
        active = False
        for line in lines:
            if line.startswith(("# [services.parsio]", "# [[routes]]")):
                active = True
            elif not line.startswith("# ") or line.startswith("# Routes:"):
                active = False
            out.append(line[2:] if active else line)
        changed = "\n".join(out) + "\n"
        assert changed.count("[services.parsio]") == 1 and 'service = "parsio"' in changed
        return changed

    workspace.edit_config(change)


def results(workspace: Workspace) -> dict[str, dict[str, Any]]:
    """Every result in the outbox, by the service that made it."""
    found = {}
    for path in workspace.outbox.glob("*/result.json"):
        result = json.loads(path.read_text("utf-8"))
        found[result["service"]] = result
    return found


def uploads(mock: MockProcess) -> list[dict[str, Any]]:
    return [r for r in mock.requests() if r["method"] == "POST" and UPLOAD.fullmatch(r["path"])]


def test_a_receipt_through_parsio_has_the_fields_nanonets_finds(workspace: Workspace) -> None:
    uncomment_parsio(workspace)
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())  # the shipped routes: Nanonets
    workspace.drop("parsio/recibo.pdf", receipt())  # the uncommented route: Parsio

    wait_for(lambda: workspace.counts().get("done") == 2, 60, "both results")
    by_service = results(workspace)
    assert set(by_service) == {"nanonets", "parsio"}
    parsio, nanonets = by_service["parsio"], by_service["nanonets"]
    assert [(f["label"], f["text"]) for f in parsio["fields"]] == [
        (f["label"], f["text"]) for f in nanonets["fields"]
    ]
    assert [(f["label"], f["text"]) for f in parsio["fields"]] == [
        ("fecha", "23/12/2025"),
        ("total", "45.99"),
    ]
    assert [(t["label"], t["columns"], t["rows"]) for t in parsio["tables"]] == [
        (t["label"], t["columns"], t["rows"]) for t in nanonets["tables"]
    ]
    assert parsio["source"]["path"] == "parsio/recibo.pdf"
    assert parsio["remote"]["mailbox_id"] == defaults.PARSIO_MAILBOX_ID
    folder = next(p.parent for p in workspace.outbox.glob("*/result.json") if p.read_text(
        "utf-8").count('"service": "parsio"'))  # fmt: skip
    assert "| Gasoil | 50L |" in (folder / "document.md").read_text("utf-8")
    assert json.loads((folder / "raw" / "document.json").read_text("utf-8"))["status"] == "parsed"

    mock = daemon.mock()
    [sent] = uploads(mock)  # type: ignore[arg-type]
    assert sent["path"] == f"/mailboxes/{defaults.PARSIO_MAILBOX_ID}/upload-sync"
    assert sent["headers"]["x-api-key"] == "****"  # the mock's own key, masked
    [task] = [t for t in mock.tasks() if t["service"] == "parsio"]
    assert task["state"] == "parsed" and task["sha256"] == parsio["source"]["sha256"]
    assert (workspace.archive / "parsio" / "recibo.pdf").exists()
    assert daemon.stop() == 0
    assert daemon.problems() == []


def test_killed_between_upload_and_answer_the_receipt_is_uploaded_once(
    workspace: Workspace,
) -> None:
    mock = MockProcess()
    try:
        workspace.use_mock(mock.url)
        uncomment_parsio(workspace)
        workspace.set_key("services.parsio", "base_url", f'"{mock.url}"')
        workspace.set_key("services.parsio", "mailbox_id", f'"{defaults.PARSIO_MAILBOX_ID}"')
        workspace.user_env["PARSIO_API_KEY"] = defaults.PARSIO_API_KEY
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("parsio/recibo.pdf", receipt())
        # Parsio has the document and is parsing it (3.5 s by the mock's defaults): the
        # upload-sync request waits for its answer.
        wait_for(
            lambda: any(t["service"] == "parsio" for t in mock.tasks()),
            30,
            "Parsio to have the document",
        )
        daemon.send(signal.SIGKILL)
        daemon.proc.wait(10)
        assert workspace.counts() == {"submitting": 1}  # killed before the answer

        again = workspace.start()
        again.wait_ready()
        wait_for(lambda: workspace.counts().get("done") == 1, 120, "the result after restart")
        assert len(uploads(mock)) == 1  # found again by its __meta__, never sent twice
        assert [t["service"] for t in mock.tasks()].count("parsio") == 1
        looked = [r for r in mock.requests() if r["path"].endswith("/docs")]
        assert looked and "q=recibo.pdf" in looked[0]["query"]
        result = results(workspace)["parsio"]
        assert {f["label"]: f["text"] for f in result["fields"]} == {
            "fecha": "23/12/2025",
            "total": "45.99",
        }
        assert "the service already has it" in again.output()
        assert again.stop() == 0
        assert again.problems() == []
    finally:
        mock.stop()


def test_out_of_credits_parsio_pauses_and_the_receipt_waits_in_the_mailbox(
    workspace: Workspace,
) -> None:
    """Credits used up: the document waits in Parsio with status quota, docinbox pauses
    the service and says so; more credits and ``docinbox retry`` finish it, with one
    upload."""
    mock = MockProcess()
    try:
        workspace.use_mock(mock.url)
        uncomment_parsio(workspace)
        workspace.set_key("services.parsio", "base_url", f'"{mock.url}"')
        workspace.set_key("services.parsio", "mailbox_id", f'"{defaults.PARSIO_MAILBOX_ID}"')
        workspace.user_env["PARSIO_API_KEY"] = defaults.PARSIO_API_KEY
        mock.post("config", {"parsio": {"monthly_credits": 0}})
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("parsio/recibo.pdf", receipt())

        def paused() -> dict[str, Any] | None:
            services = workspace.status()["services"]
            return next((s for s in services if s.get("name") == "parsio" and s.get(
                "condition") == "paused"), None)  # fmt: skip

        service = wait_for(paused, 60, "parsio paused")
        assert "quota" in json.dumps(service)
        assert [t["state"] for t in mock.tasks() if t["service"] == "parsio"] == ["quota"]
        assert workspace.counts().get("done") is None

        mock.post("config", {"parsio": {"monthly_credits": None}})  # the plan is upgraded
        retried = workspace.docinbox("retry", "--failed")
        assert retried.returncode == 0, retried.stderr
        wait_for(lambda: workspace.counts().get("done") == 1, 60, "the result after retry")
        assert len(uploads(mock)) == 1
        assert daemon.stop() == 0
        # The pause is what a user should see: one error line naming the quota.
        problems = daemon.problems()
        assert problems and all("parsio paused" in line for line in problems), problems
    finally:
        mock.stop()
