"""A full disk, as a user meets it: the archive, the failed folder or the outbox on a
small disk of its own that fills up.  Documents wait — status shows them waiting, not
failed, and the log says what to do — nothing is lost, no half-copied files appear, and
once there is room again they finish on their own.

The small disks are real: a tmpfs mounted over the folder (mounting needs root).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.acceptance.conftest import Workspace, receipt, wait_for
from tests.helpers import fill, small_disk

LABEL_FILE = "/api/v2/OCR/Model/.*/LabelFile/"


def everything(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def documents(ws: Workspace) -> dict[str, dict[str, object]]:
    return {d["name"]: d for d in ws.status()["documents"]}


def settled(ws: Workspace, name: str) -> dict[str, object] | None:
    """The document once it waits on the disk (error "host") or has finished, else None."""
    doc = documents(ws).get(name)
    if doc is None or (doc["error"] != "host" and doc["state"] not in ("done", "failed")):
        return None
    return doc


def test_a_full_archive_makes_documents_wait_and_loses_nothing(workspace: Workspace) -> None:
    ws = workspace
    with small_disk(ws.archive) as archive:
        filler = fill(archive)
        daemon = ws.start()
        daemon.wait_ready()
        originals = {"enero.pdf": receipt("12.50"), "febrero.pdf": receipt("80.00")}
        for name, data in originals.items():
            ws.drop(name, data)

        def waiting_on_the_disk() -> bool:
            docs = documents(ws)
            return len(docs) == 2 and all(d["error"] == "host" for d in docs.values())

        wait_for(waiting_on_the_disk, 60, "both documents waiting on the full archive")
        # The results are written; the originals wait in the inbox, not failed.
        assert (ws.outbox / "enero" / "result.json").exists()
        assert (ws.outbox / "febrero" / "result.json").exists()
        assert sorted(p.name for p in ws.inbox.iterdir()) == sorted(originals)
        counts = ws.counts()
        assert counts.get("failed", 0) == 0 and counts.get("done", 0) == 0, counts
        text = ws.docinbox("status").stdout
        assert text.count("the disk is full") == 2 and "failed" not in text, text
        daemon.wait_for_line(
            r"the disk is full; trying again in \d+ s\. Free space on the disk that holds "
            + re.escape(str(archive))
        )
        # ... and it keeps trying, without leaving a partial copy behind on any attempt.
        wait_for(
            lambda: daemon.output().count("the disk is full") >= 4,
            60,
            "more attempts on the full disk",
        )
        assert everything(archive) == [filler.name]

        filler.unlink()  # the user frees space
        wait_for(lambda: ws.counts().get("done") == 2, 120, "both documents done")
        assert everything(archive) == sorted(originals)
        for name, data in originals.items():
            assert (archive / name).read_bytes() == data
        assert not any(ws.inbox.iterdir())
        assert ws.counts().get("failed", 0) == 0
        assert daemon.stop() == 0


def test_a_full_failed_folder_loses_nothing(workspace: Workspace) -> None:
    """The service refuses a document while failed/ is full: the original stays whole in
    the inbox (never half in failed/, never an error file without it); once there is room
    it moves to failed/ with its error file."""
    ws = workspace
    with small_disk(ws.failed) as failed:
        filler = fill(failed)
        daemon = ws.start()
        daemon.wait_ready()
        daemon.mock().post("faults", {"method": "POST", "path": LABEL_FILE, "status": 400})
        original = receipt()
        ws.drop("recibo.pdf", original)

        def retried_or_broken() -> bool:
            out = daemon.output()
            return out.count("the disk is full; trying again") >= 3 or "Traceback" in out

        wait_for(retried_or_broken, 60, "attempts to move it to the full failed folder")
        assert "Traceback" not in daemon.output(), daemon.output()
        daemon.wait_for_line(r"Free space on the disk that holds " + re.escape(str(failed)))
        assert everything(failed) == [filler.name]
        assert (ws.inbox / "recibo.pdf").read_bytes() == original
        assert documents(ws)["recibo.pdf"]["state"] != "failed"

        filler.unlink()
        wait_for(lambda: (failed / "recibo.pdf.error.json").exists(), 120, "the error file")
        wait_for(lambda: ws.counts().get("failed") == 1, 30, "the document failed")
        assert everything(failed) == ["recibo.pdf", "recibo.pdf.error.json"]
        assert (failed / "recibo.pdf").read_bytes() == original
        error = json.loads((failed / "recibo.pdf.error.json").read_text("utf-8"))
        assert error["error"] == "rejected"
        assert not (ws.inbox / "recibo.pdf").exists()
        assert daemon.stop() == 0


def test_a_full_outbox_makes_documents_wait_and_loses_nothing(workspace: Workspace) -> None:
    """The outbox's disk fills up: the result cannot be written, so the original stays in
    the inbox and the document waits (never "done" without its result folder); once there
    is room, the result is written and the original archived."""
    ws = workspace
    with small_disk(ws.outbox, size="256k") as outbox:
        daemon = ws.start()
        daemon.wait_ready()
        filler = fill(outbox)
        original = receipt("33.10")
        ws.drop("marzo.pdf", original)
        marzo = wait_for(lambda: settled(ws, "marzo.pdf"), 60, "marzo.pdf waiting or finished")
        assert marzo["state"] == "received", marzo  # never done without its result
        daemon.wait_for_line(
            r"the disk is full; trying again in \d+ s\. Free space on the disk that holds "
            + re.escape(str(outbox))
        )
        wait_for(lambda: daemon.output().count("the disk is full") >= 3, 60, "more attempts")
        assert everything(outbox) == sorted([filler.name, *_lock_files(outbox)])
        assert (ws.inbox / "marzo.pdf").read_bytes() == original
        assert ws.counts().get("done", 0) == 0 and ws.counts().get("failed", 0) == 0

        filler.unlink()
        wait_for(lambda: ws.counts().get("done") == 1, 120, "the document done")
        assert ws.result("marzo")["source"]["name"] == "marzo.pdf"
        assert (ws.archive / "marzo.pdf").read_bytes() == original
        assert not [p for p in outbox.iterdir() if p.name.startswith(".docinbox-tmp-")]
        assert daemon.stop() == 0


def _lock_files(folder: Path) -> list[str]:
    """The daemon's own lock file, where a file system cannot lock a folder itself."""
    return [p.name for p in folder.iterdir() if p.name == ".docinbox.lock"]
