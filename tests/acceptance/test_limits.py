"""Issue 14 as a user meets it: docinbox at the services' limits, through ``docinbox run``
on the shipped config, with the mock at its realistic defaults (Nanonets: 10 requests a
second, bursts of 20; MinerU's queue, its pages a second and its ``extract_progress``), and
what ``docinbox status`` says about it: the pace learned, the budgets counted, the
progress of a long document."""

from __future__ import annotations

import re
from typing import Any

from mockserver.samples import multipage_pdf
from tests.acceptance.conftest import Daemon, Workspace, receipt, wait_for

LABEL_FILE = re.compile(r"^/api/v2/OCR/Model/[^/]+/LabelFile/$")


def drop_together(ws: Workspace, names: list[str], data: dict[str, bytes]) -> None:
    """Written aside, then renamed into the inbox one after the other: a burst."""
    staging = ws.root / "staging"
    staging.mkdir(exist_ok=True)
    for name in names:
        (staging / name.replace("/", "_")).write_bytes(data[name])
    for name in names:
        target = ws.inbox / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (staging / name.replace("/", "_")).rename(target)


def receipts(first: int, count: int, folder: str = "") -> dict[str, bytes]:
    return {f"{folder}r{i:03d}.pdf": receipt(f"{i}.50") for i in range(first, first + count)}


def finished(ws: Workspace, n: int) -> bool:
    counts = ws.counts()
    return counts.get("done", 0) + counts.get("failed", 0) >= n


def service(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["services"] if s["name"] == name)


def uploads(daemon: Daemon) -> list[dict[str, Any]]:
    return [r for r in daemon.mock().requests() if LABEL_FILE.match(r["path"])]


def test_receipts_at_nanonets_limit_none_fails_none_spends_a_budget_a_restart_resumes(
    workspace: Workspace,
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    batch = receipts(0, 60)
    drop_together(workspace, sorted(batch), batch)
    wait_for(lambda: finished(workspace, 60), 120, "60 receipts")

    status = workspace.status()
    assert status["counts"] == {"done": 60}
    # A 429 is the service's state: no document was tried twice for it.
    assert all(doc["attempts"] == 1 for doc in status["documents"]), status["documents"]
    sent = uploads(daemon)
    refused = [r for r in sent if r["status"] == 429]
    assert sum(1 for r in sent if r["status"] == 200) == 60  # nothing sent twice
    # Learning the limit on a first contact costs a few 429s (before: 4 per document).
    assert len(sent) / 60 <= 1.15, f"{len(refused)} answers of 429"
    nanonets = service(status, "nanonets")
    assert nanonets["condition"] == "ok"
    assert 5.0 <= nanonets["pace"]["rate"] <= 10.5  # the mock allows 10 a second
    assert nanonets["pace"]["refusals"] == len(refused)
    [calls] = nanonets["budgets"]
    assert (calls["name"], calls["used"], calls["policy"]) == ("calls", 60, "wait")
    assert calls["renews_at"] is not None
    text = workspace.docinbox("status").stdout
    assert "prediction calls: 60 calls" in text
    assert re.search(r"pace: [\d.]+ requests/s, the most it sustains", text), text
    assert daemon.problems() == []

    # A restart starts where it left off: no first contact again.
    assert daemon.stop() == 0
    again = workspace.start()
    again.wait_ready()
    more = receipts(60, 40)
    drop_together(workspace, sorted(more), more)
    wait_for(lambda: finished(workspace, 100), 120, "40 more receipts")
    assert workspace.counts() == {"done": 100}
    sent = uploads(again)  # the embedded mock started afresh with the daemon
    assert len(sent) <= 41, [r["status"] for r in sent]
    assert again.problems() == []


def test_a_long_mineru_document_shows_its_progress(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("informe.pdf", multipage_pdf(12, words="Informe"))

    def running() -> dict[str, Any] | None:
        [doc] = workspace.status()["documents"]
        progress = doc["progress"]
        if progress and progress["state"] == "running" and 0 < progress["pages_done"] < 12:
            return dict(progress)
        return None

    progress = wait_for(running, 60, "MinerU's extract_progress in docinbox status --json")
    assert progress["pages"] == 12
    text = workspace.docinbox("status").stdout
    assert re.search(r"informe\.pdf +\(mineru: running, \d+ of 12 pages\)", text), text
    wait_for(lambda: finished(workspace, 1), 60, "the long document")
    [doc] = workspace.status()["documents"]
    assert doc["state"] == "done" and doc["progress"] is None
    mineru = service(workspace.status(), "mineru")
    assert {b["name"]: b["used"] for b in mineru["budgets"]} == {"files": 1, "priority_pages": 12}
    assert {lane["name"] for lane in mineru["pace"]["lanes"]} == {"submit", "query"}
    assert daemon.problems() == []


def both_routes(ws: Workspace, *, files_per_day: int, policy: str) -> None:
    """``inbox/both/`` goes to MinerU first, then to Nanonets; MinerU's daily files are few."""
    ws.set_key("services.mineru", "files_per_day", str(files_per_day))
    ws.set_key("services.mineru", "when_exhausted", f'"{policy}"')
    first = '[[routes]]\nfolder  = "both/**"\nservice = "mineru"\n\n'
    then = '[[routes]]\nfolder  = "both/**"\nservice = "nanonets"\n\n'
    ws.edit_config(
        lambda text: re.sub(r"(?m)^\[\[routes\]\]", lambda m: first + then + m[0], text, count=1)
    )


def test_a_spent_budget_sends_documents_to_the_next_route(workspace: Workspace) -> None:
    both_routes(workspace, files_per_day=2, policy="next_route")
    daemon = workspace.start()
    daemon.wait_ready()
    batch = receipts(0, 4, folder="both/")
    drop_together(workspace, sorted(batch), batch)
    wait_for(lambda: finished(workspace, 4), 120, "4 receipts")

    assert workspace.counts() == {"done": 4}
    services = sorted(workspace.result(f"r{i:03d}")["service"] for i in range(4))
    assert services == ["mineru", "mineru", "nanonets", "nanonets"]
    mineru = service(workspace.status(), "mineru")
    files = next(b for b in mineru["budgets"] if b["name"] == "files")
    assert (files["used"], files["limit"]) == (2, 2)
    assert mineru["condition"] == "paused" and "next route" in mineru["reason"]
    assert daemon.problems() == []


def test_a_spent_budget_waits_for_renewal_by_default(workspace: Workspace) -> None:
    both_routes(workspace, files_per_day=1, policy="wait")
    daemon = workspace.start()
    daemon.wait_ready()
    batch = receipts(0, 2, folder="both/")
    drop_together(workspace, sorted(batch), batch)
    wait_for(lambda: workspace.counts().get("done") == 1, 60, "the one file the day allows")

    status = workspace.status()
    assert status["counts"] == {"done": 1, "queued": 1}
    mineru = service(status, "mineru")
    assert mineru["condition"] == "paused" and "waits until it renews" in mineru["reason"]
    files = next(b for b in mineru["budgets"] if b["name"] == "files")
    assert (files["used"], files["limit"]) == (1, 1)
    assert mineru["until"] == files["renews_at"]
    text = workspace.docinbox("status").stdout
    assert "files a day: 1 of 1 files, renews" in text, text
    assert daemon.problems() == []
