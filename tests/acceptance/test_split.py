"""Issue 16 as a user meets it: a 1,000-page PDF (copies of a real manual) dropped into
the inbox comes out as one result folder, though MinerU and docparse take 200 pages per
file — split, sent, merged — and a daemon killed between its parts finishes it after a
restart without sending any part twice.

The mock runs as its own process where the daemon is killed (an embedded one would die
with it), with its realistic defaults; only its clock is moved on (a 200-page part takes
200 s of its time) and, for docparse, its page limit set to 200 like MinerU's."""

from __future__ import annotations

import collections
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests import splitdoc
from tests.acceptance.conftest import (
    Daemon,
    MockAdmin,
    MockProcess,
    Workspace,
    free_port,
    wait_for,
)

PAGES = 1000


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The 1,000-page document, built once."""
    path = tmp_path_factory.mktemp("split") / "book.pdf"
    return splitdoc.build(path, PAGES).read_bytes()


def document(ws: Workspace, name: str) -> dict[str, Any]:
    docs = [d for d in ws.status()["documents"] if d["name"] == name]
    assert len(docs) == 1, ws.status()["documents"]
    return docs[0]


def part_states(ws: Workspace, name: str) -> list[str]:
    return [p["state"] for p in document(ws, name).get("parts", [])]


def advance(mock: MockAdmin, seconds: float) -> None:
    mock.post("clock/advance", {"seconds": seconds})


def tasks_of(mock: MockAdmin, service: str) -> list[dict[str, Any]]:
    return [t for t in mock.tasks() if t["service"] == service]


def check_result(ws: Workspace, stem: str, parts: int) -> dict[str, Any]:
    """One folder, as if parsed whole: every page's text once and in order, page_idx over
    the whole document, each part's raw output in its own folder."""
    folder = ws.outbox / stem
    result = ws.result(stem)
    assert result["source"]["pages"] == PAGES
    per = PAGES // parts
    assert [p["pages"] for p in result["source"]["parts"]] == [
        [first, first + per - 1] for first in range(1, PAGES + 1, per)
    ]
    assert all(p["remote"].get("data_id") for p in result["source"]["parts"])
    splitdoc.check_markdown((folder / "document.md").read_text("utf-8"), PAGES)
    content = json.loads((folder / "raw" / "merged_content_list.json").read_text("utf-8"))
    assert {e["page_idx"] for e in content} == set(range(PAGES))
    indices = [e["page_idx"] for e in content]
    assert indices == sorted(indices)
    assert sorted(p.name for p in (folder / "raw").iterdir() if p.is_dir()) == [
        f"part-{n:03d}" for n in range(1, parts + 1)
    ]
    assert (ws.archive / f"{stem}.pdf").exists() or any(ws.archive.rglob(f"{stem}.pdf"))
    return result


def kill(daemon: Daemon) -> None:
    daemon.send(signal.SIGKILL)
    daemon.proc.wait(10)


def test_a_1000_page_pdf_through_mineru_is_one_result_after_a_kill_between_parts(
    workspace: Workspace, book: bytes
) -> None:
    mock = MockProcess()
    try:
        workspace.use_mock(mock.url)
        # Two of the five uploads arrive a minute late: those parts finish a minute of
        # the mock's time after the others, the window the daemon is killed in.
        mock.post("faults", {"method": "PUT", "fault": "delay", "seconds": 60, "times": 2})
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("book.pdf", book)
        wait_for(
            lambda: part_states(workspace, "book.pdf") == ["submitted"] * 5,
            240,
            "five parts sent to MinerU",
        )
        assert document(workspace, "book.pdf")["parts_progress"].startswith("part 1 of 5, ")

        def some_done() -> bool:
            states = [t["state"] for t in tasks_of(mock, "mineru")]
            if "done" in states:
                return True
            advance(mock, 10)  # the parts' 203 s, ten at a time: never past the window
            return False

        wait_for(some_done, 120, "the first parts parsed", interval=0.2)
        wait_for(lambda: "received" in part_states(workspace, "book.pdf"), 60, "a part received")
        kill(daemon)
        states = [t["state"] for t in tasks_of(mock, "mineru")]
        assert states.count("done") < 5, "killed between parts"
        received = part_states(workspace, "book.pdf").count("received")
        assert 0 < received < 5

        again = workspace.start()
        again.wait_ready()
        advance(mock, 120)
        wait_for(lambda: workspace.counts() == {"done": 1}, 180, "the merged result")
        check_result(workspace, "book", parts=5)
        # No part was sent twice: one batch of five files, each uploaded once.
        names = collections.Counter(t["name"] for t in tasks_of(mock, "mineru"))
        assert names == {f"book.part-{n:03d}.pdf": 1 for n in range(1, 6)}
        requests = mock.requests()
        assert [r["path"] for r in requests if r["method"] == "POST"].count(
            "/api/v4/file-urls/batch"
        ) == 1
        assert len([r for r in requests if r["method"] == "PUT"]) == 5
        assert again.problems() == []
        assert again.stop() == 0
    finally:
        mock.stop()


def test_a_1000_page_pdf_through_docparse_is_one_result_after_a_kill(
    workspace: Workspace, book: bytes
) -> None:
    mock = MockProcess()
    try:
        workspace.use_mock(mock.url)
        workspace.set_key("services.docparse", "files_listen", f'"127.0.0.1:{free_port()}"')
        # This parser was set up with MinerU's 200 pages per file; docinbox is told so.
        mock.post("config", {"docparse": {"max_pages": 200}})
        workspace.set_key("services.docparse", "max_pages_per_file", "200")
        daemon = workspace.start()
        daemon.wait_ready()
        workspace.drop("private/book.pdf", book)
        wait_for(
            lambda: part_states(workspace, "book.pdf") == ["submitted"] * 5,
            240,
            "five parts sent to docparse",
        )
        kill(daemon)  # every part in the parser's hands, none back yet

        again = workspace.start()
        again.wait_ready()
        advance(mock, 400)
        wait_for(lambda: workspace.counts() == {"done": 1}, 180, "the merged result")
        result = check_result(workspace, "book", parts=5)
        assert result["service"] == "docparse"
        names = collections.Counter(t["name"] for t in tasks_of(mock, "docparse"))
        assert sorted(names.values()) == [1] * 5, names
        batches = [
            r
            for r in mock.requests()
            if r["method"] == "POST" and r["path"].startswith("/api/v1/extract/task")
        ]
        assert len(batches) == 1  # one batch request, never again after the restart
        assert again.problems() == []
        assert again.stop() == 0
    finally:
        mock.stop()


def short_book(tmp: Path, pages: int = 300) -> bytes:
    return splitdoc.build(tmp / f"book-{pages}.pdf", pages).read_bytes()


def finish_parts(ws: Workspace, mock: MockAdmin, name: str, parts: int) -> None:
    """Once every part is with the service, move its clock past their parsing."""
    wait_for(
        lambda: part_states(ws, name).count("submitted") == parts,
        180,
        f"{parts} parts of {name} sent",
    )
    advance(mock, 400)


def test_a_small_file_goes_whole_with_a_page_range_per_part(
    workspace: Workspace, tmp_path: Path
) -> None:
    """Sending the whole file once per part costs less than writing parts when the file
    is small; this MinerU counts its page limit on the pages a range selects."""
    data = short_book(tmp_path)
    daemon = workspace.start()
    daemon.wait_ready()
    mock = daemon.mock()
    mock.post("config", {"mineru": {"page_limit_counts": "selection"}})
    workspace.drop("book.pdf", data)
    finish_parts(workspace, mock, "book.pdf", 2)
    wait_for(lambda: workspace.counts() == {"done": 1}, 120, "the merged result")
    result = workspace.result("book")
    assert [p["pages"] for p in result["source"]["parts"]] == [[1, 200], [201, 300]]
    tasks = tasks_of(mock, "mineru")
    assert len(tasks) == 2 and {t["sha256"] for t in tasks} == {result["source"]["sha256"]}
    folder = workspace.outbox / "book"
    splitdoc.check_markdown((folder / "document.md").read_text("utf-8"), 300)
    content = json.loads((folder / "raw" / "merged_content_list.json").read_text("utf-8"))
    # The mock numbers a range's pages from 0 (as the open-source engine does): docinbox
    # maps them back to the original's.
    assert {e["page_idx"] for e in content} == set(range(300))
    assert "the whole file with a page range each" in daemon.output()
    assert daemon.problems() == []
    assert daemon.stop() == 0


def test_a_service_that_refuses_ranges_past_its_limit_gets_files(
    workspace: Workspace, tmp_path: Path
) -> None:
    """The mock's MinerU counts the whole file against its 200 pages even under a page
    range: each refused part is sent as a file of its own, and the next long document
    goes as files straight away."""
    daemon = workspace.start()
    daemon.wait_ready()
    mock = daemon.mock()
    workspace.drop("first.pdf", short_book(tmp_path, 300))
    wait_for(
        lambda: (
            len(tasks_of(mock, "mineru")) == 4
            and part_states(workspace, "first.pdf").count("submitted") == 2
        ),
        180,
        "the parts sent again as files",
    )
    advance(mock, 400)
    wait_for(lambda: workspace.counts() == {"done": 1}, 120, "the first result")
    splitdoc.check_markdown((workspace.outbox / "first" / "document.md").read_text(), 300)
    refused = [t for t in tasks_of(mock, "mineru") if t["state"] == "failed"]
    assert len(refused) == 2  # each page range once; then files
    assert "refuses a page range of a file over its limit" in daemon.output()

    workspace.drop("second.pdf", short_book(tmp_path, 250))
    finish_parts(workspace, mock, "second.pdf", 2)
    wait_for(lambda: workspace.counts() == {"done": 2}, 120, "the second result")
    assert len([t for t in tasks_of(mock, "mineru") if t["state"] == "failed"]) == 2
    assert daemon.output().count("files of their own") == 1  # the second document
    assert daemon.problems() == []
    assert daemon.stop() == 0


def test_a_failed_part_fails_its_document_and_retry_sends_only_that_part(
    workspace: Workspace, tmp_path: Path
) -> None:
    workspace.set_key("services.mineru", "split_by_page_ranges", "false")
    daemon = workspace.start()
    daemon.wait_ready()
    mock = daemon.mock()
    mock.post("config", {"mineru": {"fail_tasks": {"book.part-002.pdf": -60003}}})
    workspace.drop("book.pdf", short_book(tmp_path, 300))
    finish_parts(workspace, mock, "book.pdf", 2)
    error_file = workspace.failed / "book.pdf.error.json"
    wait_for(error_file.exists, 120, "the document failed")
    error = json.loads(error_file.read_text())
    assert error["error"] == "corrupt_document"
    assert "part 2 of 2 (pages 201-300)" in error["message"]
    assert part_states(workspace, "book.pdf") == ["received", "failed"]
    assert document(workspace, "book.pdf")["parts_progress"] == "1 of 2 parts failed"

    mock.post("config", {"mineru": {"fail_tasks": {}}})  # the service is fixed
    retried = workspace.docinbox("retry", "--failed")
    assert retried.returncode == 0, retried.stderr
    finish_parts(workspace, mock, "book.pdf", 1)
    wait_for(lambda: workspace.counts() == {"done": 1}, 120, "the result after retry")
    splitdoc.check_markdown((workspace.outbox / "book" / "document.md").read_text(), 300)
    names = collections.Counter(t["name"] for t in tasks_of(mock, "mineru"))
    assert names == {"book.part-001.pdf": 1, "book.part-002.pdf": 2}  # only the failed one
    assert (workspace.archive / "book.pdf").exists()
    assert not error_file.exists()
    assert daemon.stop() == 0


def test_an_office_file_over_the_limit_fails_saying_what_to_do(workspace: Workspace) -> None:
    """docinbox splits PDFs only: a Word file over MinerU's 200 MB fails at once, naming
    the limit and how to get it through, and nothing is sent."""
    import zipfile

    big = workspace.root / "informe.docx"
    with zipfile.ZipFile(big, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
        with zf.open("word/media/scan.bin", "w", force_zip64=True) as fh:
            chunk = b"\0" * (1 << 20)
            for _ in range(201):
                fh.write(chunk)
    daemon = workspace.start()
    daemon.wait_ready()
    big.rename(workspace.inbox / "informe.docx")
    error_file = workspace.failed / "informe.docx.error.json"
    wait_for(error_file.exists, 60, "the refusal")
    error = json.loads(error_file.read_text())
    assert error["error"] == "too_large"
    assert "takes at most 200 MB per file" in error["message"]
    assert "cannot be split without converting it" in error["message"]
    assert "as PDF" in error["hint"]
    assert not [r for r in daemon.mock().requests() if r["path"].startswith("/api/")]
    assert daemon.stop() == 0
