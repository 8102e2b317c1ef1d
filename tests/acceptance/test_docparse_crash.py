"""docparse fetches the document while it handles the submission: a daemon killed in that
request must not send the document twice (issue 12, item 10)."""

from __future__ import annotations

import signal

from mockserver import defaults
from tests.acceptance.conftest import MockProcess, Workspace, free_port, receipt, wait_for

TASK = "/api/v1/extract/task"


def posts(mock: MockProcess) -> list[dict]:
    return [r for r in mock.requests() if r["method"] == "POST" and r["path"] == TASK]


def test_killed_while_the_parser_answers_the_document_is_not_sent_twice(
    workspace: Workspace,
) -> None:
    mock = MockProcess()
    files = free_port()
    try:
        workspace.use_mock(mock.url)
        workspace.set_key("services.docparse", "uid", f'"{defaults.MOCK_UID}"')
        workspace.set_key("services.docparse", "files_listen", f'"127.0.0.1:{files}"')
        workspace.set_key("callbacks", "public_url", f'"http://127.0.0.1:{files}"')
        # The parser takes the task, fetches the file, then answers slowly: the window in
        # which a crash loses the task id.
        mock.post(
            "faults",
            {"method": "POST", "path": TASK, "fault": "dribble", "seconds": 20, "times": 1},
        )
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("private/contrato.pdf", receipt())
        wait_for(
            lambda: any(t["service"] == "docparse" for t in mock.tasks()),
            30,
            "the parser to have the document",
        )
        assert posts(mock), "the submission is under way"
        daemon.send(signal.SIGKILL)
        daemon.proc.wait(10)

        again = workspace.start()
        again.wait_ready()
        wait_for(lambda: workspace.counts().get("done") == 1, 120, "the result after restart")
        assert len(posts(mock)) == 1  # never sent again
        assert [t["service"] for t in mock.tasks()].count("docparse") == 1
        result = workspace.result("contrato")
        assert result["service"] == "docparse"
        assert "Gasoil" in (workspace.outbox / "contrato" / "document.md").read_text()
        assert again.stop() == 0
    finally:
        mock.stop()
