"""Issue 15 as a user meets it: the real services' behaviour beyond the seeds, with the mock
at its realistic defaults (mineru.net's 50 files per batch request, Nanonets' documented
GetPredictions polling and page status), through ``docinbox run`` as the README says."""

from __future__ import annotations

import collections
import json
import re

from mockserver.samples import multipage_pdf, pdf_bytes, receipt_lines
from tests.acceptance.conftest import Daemon, Workspace, wait_for

GET_PREDICTIONS = re.compile(
    r"^/api/v2/Inferences/Model/[^/]+/InferenceRequestFiles/GetPredictions/"
)
FILE_URLS = "/api/v4/file-urls/batch"


def services_ok(ws: Workspace) -> bool:
    return all(s["condition"] == "ok" for s in ws.status()["services"])


def test_a_five_page_pdf_via_nanonets_async_completes_through_get_predictions(
    workspace: Workspace,
) -> None:
    """Today a 404 on the seed's getFile path paused Nanonets for every document over 3
    pages; the documented path is what docinbox polls now."""
    # The user routes PDFs up to 10 pages to Nanonets (the shipped config says 3).
    workspace.edit_config(
        lambda text: text.replace(
            'service   = "nanonets"\nmax_pages = 3', 'service   = "nanonets"\nmax_pages = 10'
        )
    )
    assert "max_pages = 10" in workspace.config.read_text()
    daemon = workspace.start()
    daemon.wait_ready()
    pages = [receipt_lines()] + [[f"Anexo {n}", f"Pagina {n} de 5"] for n in range(2, 6)]
    workspace.drop("expediente.pdf", pdf_bytes(pages))

    result_file = workspace.outbox / "expediente" / "result.json"
    wait_for(result_file.exists, 120, "the asynchronous prediction's result")
    result = workspace.result("expediente")
    assert result["service"] == "nanonets"
    assert result["source"]["pages"] == 5
    assert {f["label"]: f["text"] for f in result["fields"]} == {
        "fecha": "23/12/2025",
        "total": "45.99",
    }
    assert result["tables"][0]["rows"] == [["Gasoil", "50L"]]

    requests = daemon.mock().requests()
    uploads = [r for r in requests if r["path"].endswith("/LabelFile/")]
    assert [u["query"] for u in uploads] == ["async=true"]
    polls = [r for r in requests if r["method"] == "GET" and "/api/v2/" in r["path"]]
    assert polls and all(GET_PREDICTIONS.match(p["path"]) for p in polls), polls
    assert all(p["status"] == 200 for p in polls)
    assert not any("/getFile/" in r["path"] for r in requests)
    # While the pages were still "pending" docinbox kept waiting: it stored only the
    # finished prediction (every page's status success).
    raw = json.loads((workspace.outbox / "expediente" / "raw" / "response.json").read_bytes())
    assert [p["status"] for p in raw["unmoderated_images"]] == ["success"] * 5
    assert services_ok(workspace)  # never paused
    assert daemon.problems() == []
    assert daemon.stop() == 0


def drop_long_documents(ws: Workspace, count: int) -> list[str]:
    """*count* distinct 4-page PDFs (the shipped routes send them to MinerU)."""
    names = []
    for n in range(count):
        name = f"informe-{n:03d}.pdf"
        ws.drop(name, multipage_pdf(4, words=f"Informe {n:03d} pagina"))
        names.append(name)
    return names


def batches_of(daemon: Daemon) -> list[int]:
    """How many documents each MinerU batch carried (the mock's record of its tasks)."""
    sizes = collections.Counter(
        t["batch_id"] for t in daemon.mock().tasks() if t["service"] == "mineru"
    )
    return sorted(sizes.values())


def test_sixty_documents_for_mineru_go_out_in_batches_it_accepts(workspace: Workspace) -> None:
    """mineru.net takes at most 50 files per file-urls/batch request (its endpoint notes);
    docinbox's default is that: 60 documents go out as 50 + 10, none refused."""
    daemon = workspace.start()
    daemon.wait_ready()
    names = drop_long_documents(workspace, 60)

    def done() -> bool:
        return all((workspace.outbox / n[:-4] / "result.json").exists() for n in names)

    wait_for(done, 180, "60 MinerU results")
    assert batches_of(daemon) and max(batches_of(daemon)) <= 50
    assert sum(batches_of(daemon)) == 60 and len(batches_of(daemon)) >= 2
    requests = [r for r in daemon.mock().requests() if r["path"] == FILE_URLS]
    assert requests and all(r["status"] == 200 for r in requests)  # never refused
    assert workspace.counts() == {"done": 60}
    assert services_ok(workspace)
    assert daemon.problems() == []
    assert daemon.stop() == 0


def test_a_batch_size_above_the_services_is_split_not_failed(workspace: Workspace) -> None:
    """The user raised ``max_files_per_batch`` to the comparison table's 200; the service
    refuses the 60-document request (HTTP 400, "cannot exceed 50") and docinbox sends it
    again in batches of 50: nothing fails."""
    workspace.set_key("services.mineru", "max_files_per_batch", "200")
    daemon = workspace.start()
    daemon.wait_ready()
    names = drop_long_documents(workspace, 60)

    def done() -> bool:
        return all((workspace.outbox / n[:-4] / "result.json").exists() for n in names)

    wait_for(done, 180, "60 MinerU results")
    statuses = [r["status"] for r in daemon.mock().requests() if r["path"] == FILE_URLS]
    assert 400 in statuses and statuses.count(200) >= 2
    assert max(batches_of(daemon)) <= 50 and sum(batches_of(daemon)) == 60
    assert workspace.counts() == {"done": 60}
    assert not workspace.failed.exists() or not any(workspace.failed.iterdir())
    assert "refused a batch of" in daemon.output()  # said once, at info level
    assert daemon.problems() == []
    assert daemon.stop() == 0
