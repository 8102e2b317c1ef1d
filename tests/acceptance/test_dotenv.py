"""Keys in a ``.env`` beside the config, written the ways dotenv files are written, read
by the installed daemon against a mock started by hand (``[mock] embedded = false``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.acceptance.conftest import Daemon, MockAdmin, Workspace, receipt, wait_for
from tests.acceptance.test_network import standalone_mock, use_mock, wait_done

#: the mock's own credentials, in the common dotenv forms
DOTENV = """\
# docinbox keys (copied from the dashboards)
NANONETS_API_KEY=mock-nanonets-key  # from the dashboard
export MINERU_API_KEY='mock-mineru-token'
DOCPARSE_API_KEY = "mock-docparse-token"
"""


@pytest.fixture
def mock(workspace: Workspace) -> Iterator[MockAdmin]:
    with standalone_mock("127.0.0.1", workspace) as admin:
        yield admin


def start(workspace: Workspace, mock: MockAdmin, dotenv: str) -> Daemon:
    """The shipped config against *mock*, the keys only in a ``.env`` beside it."""
    (workspace.root / ".env").write_text(dotenv, encoding="utf-8")
    use_mock(workspace, mock.url)
    daemon = workspace.start("--no-tray")  # no keys in its environment
    daemon.wait_ready()
    return daemon


def test_keys_from_a_dotenv_file_are_read_right(workspace: Workspace, mock: MockAdmin) -> None:
    daemon = start(workspace, mock, DOTENV)
    workspace.drop("recibo.pdf", receipt())
    fields = {f["label"]: f["text"] for f in wait_done(workspace, "recibo")["fields"]}
    assert fields == {"fecha": "23/12/2025", "total": "45.99"}
    # every command reads the same .env: status works from a shell without the keys
    assert workspace.counts() == {"done": 1}
    assert daemon.stop() == 0
    assert daemon.problems() == []


def paused_nanonets(ws: Workspace) -> dict[str, object]:
    def paused() -> dict[str, object] | None:
        services = {s["name"]: s for s in ws.status()["services"]}
        nanonets = services.get("nanonets")
        return nanonets if nanonets and nanonets["condition"] == "paused" else None

    return wait_for(paused, 30, "nanonets paused in docinbox status")


def test_a_rejected_key_pauses_the_service_and_loses_nothing(
    workspace: Workspace, mock: MockAdmin
) -> None:
    daemon = start(
        workspace, mock, DOTENV.replace("mock-nanonets-key", "a-key-nanonets-never-issued")
    )
    workspace.drop("recibo.pdf", receipt())
    health = paused_nanonets(workspace)
    assert health["error"] == "credentials"
    assert "rejected the API key" in str(health["reason"])
    assert "a-key-nanonets-never-issued" not in workspace.docinbox("status").stdout
    assert workspace.counts() == {"queued": 1}  # waiting for a right key, not failed
    assert (workspace.inbox / "recibo.pdf").exists()
    assert daemon.stop() == 0


def test_status_names_the_variable_and_the_dotenv_file_of_a_rejected_key(
    workspace: Workspace, mock: MockAdmin
) -> None:
    daemon = start(
        workspace, mock, DOTENV.replace("mock-nanonets-key", "a-key-nanonets-never-issued")
    )
    workspace.drop("recibo.pdf", receipt())
    paused_nanonets(workspace)
    status = workspace.docinbox("status")
    assert f"NANONETS_API_KEY from {workspace.root / '.env'}" in status.stdout
    assert daemon.stop() == 0
