"""Issue 16's pieces on their own: planning parts, the router's decision, writing a part,
merging parts into one result, and how a split document's progress reads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pypdf
import pytest

from daemon import router, sniff
from daemon.errors import CorruptDocument, DocumentTooComplex, DocumentTooLarge, TooManyPages
from daemon.outbox import merge
from daemon.outbox.writer import OutboxWriter
from daemon.pipeline.split import Span, compact, part_name, part_options, plan
from daemon.services import mineru_result
from daemon.services.base import PartOutput, SourceDocument
from daemon.settings import Route
from daemon.status import parts_progress
from daemon.store import Job, State
from mockserver.samples import pdf_bytes
from tests import splitdoc

MB = 1024 * 1024


# --- planning ---------------------------------------------------------------------------


def test_parts_have_the_part_size_and_the_last_one_the_rest() -> None:
    spans = plan(1000, 10 * MB, part_pages=200, max_bytes=200 * MB)
    assert [(s.first, s.last) for s in spans] == [
        (1, 200),
        (201, 400),
        (401, 600),
        (601, 800),
        (801, 1000),
    ]
    assert plan(1001, MB, part_pages=200, max_bytes=None)[-1] == Span(1001, 1001)


def test_a_file_over_the_byte_limit_gets_fewer_pages_per_part() -> None:
    """A 300 MB scan of 10 pages, 200 MB per file: 6 pages (~180 MB) per part."""
    spans = plan(10, 300 * MB, part_pages=200, max_bytes=200 * MB)
    assert [(s.first, s.last) for s in spans] == [(1, 6), (7, 10)]
    assert plan(2, 900 * MB, part_pages=200, max_bytes=200 * MB) == [Span(1, 1), Span(2, 2)]


def test_part_options_select_the_parts_pages() -> None:
    span = Span(401, 600)
    assert part_options({"is_ocr": True}, span, 1000, whole=False) == {"is_ocr": True}
    assert part_options({}, span, 1000, whole=True) == {"page_ranges": "401-600"}
    # A route's own selection is narrowed to the part, in the numbering of what is sent.
    route = {"page_ranges": "1-10,500-510,990--1"}
    assert part_options(route, span, 1000, whole=True) == {"page_ranges": "500-510"}
    assert part_options(route, span, 1000, whole=False) == {"page_ranges": "100-110"}
    assert part_options(route, Span(201, 400), 1000, whole=True) is None  # nothing in it


def test_compact_and_part_names() -> None:
    assert compact([7, 1, 2, 3, 3, 9, 10]) == "1-3,7,9-10"
    assert part_name("scans/2026/book.pdf", 2) == "scans/2026/book.part-002.pdf"


# --- routing ----------------------------------------------------------------------------

ROUTES = (Route(service="nanonets", max_pages=3), Route(service="mineru"))


def _limits(service: str) -> tuple[int | None, int | None]:
    return (200 * MB, 200) if service == "mineru" else (None, None)


def _route(info: sniff.DocumentInfo, size: int = 1000) -> router.Decision:
    return router.route(
        ROUTES, "book.pdf", size, info, lambda s, k: True, _limits, splittable=sniff.SPLITTABLE
    )


def test_a_pdf_over_the_limit_is_routed_in_parts() -> None:
    decision = _route(sniff.DocumentInfo("pdf", 1000))
    assert decision.service == "mineru" and decision.split
    assert not _route(sniff.DocumentInfo("pdf", 200)).split
    assert _route(sniff.DocumentInfo("pdf", 5), 201 * MB).split  # over the bytes: by size


def test_a_route_that_takes_it_whole_wins_over_splitting() -> None:
    routes = (Route(service="mineru"), Route(service="docparse"))
    decision = router.route(
        routes,
        "book.pdf",
        1000,
        sniff.DocumentInfo("pdf", 500),
        lambda s, k: True,
        lambda s: (None, 200 if s == "mineru" else 600),
        splittable=sniff.SPLITTABLE,
    )
    assert decision.service == "docparse" and not decision.split


@pytest.mark.parametrize(
    ("info", "size", "error", "limit"),
    [
        (sniff.DocumentInfo("docx"), 201 * MB, DocumentTooLarge, "200 MB"),
        (sniff.DocumentInfo("pptx"), 300 * MB, DocumentTooLarge, "200 MB"),
        (sniff.DocumentInfo("tiff", 500), 1000, TooManyPages, "200 per file"),
    ],
)
def test_what_cannot_be_split_fails_naming_the_limit_and_what_to_do(
    info: sniff.DocumentInfo, size: int, error: type[Exception], limit: str
) -> None:
    with pytest.raises(error) as caught:
        _route(info, size)
    assert limit in str(caught.value) and "cannot be split without converting it" in str(
        caught.value
    )
    assert "as PDF" in caught.value.hint  # type: ignore[attr-defined]


# --- writing a part -----------------------------------------------------------------------


def test_a_part_holds_exactly_its_pages(tmp_path: Path) -> None:
    source = splitdoc.build(tmp_path / "book.pdf", 80)
    made = sniff.write_pdf_part(source, 37, 72, tmp_path / "part.pdf")
    assert made.pages == 36 and made.size == (tmp_path / "part.pdf").stat().st_size
    reader = pypdf.PdfReader(tmp_path / "part.pdf")
    stamps = [splitdoc.STAMP.search(p.extract_text()) for p in reader.pages]
    assert [int(m.group(1)) for m in stamps if m] == list(range(37, 73))
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(CorruptDocument, match="has 80 pages"):
        sniff.write_pdf_part(source, 70, 90, tmp_path / "x.pdf")


def test_the_helper_writes_parts_within_its_time_limit(tmp_path: Path) -> None:
    source = tmp_path / "doc.pdf"
    source.write_bytes(pdf_bytes([[f"page {n}"] for n in range(1, 11)]))
    with sniff.Inspector() as inspector:
        made = inspector.split_part(source, 3, 4, tmp_path / "p.pdf")
        assert made.pages == 2 and inspector.starts == 1
        assert sniff.inspect(tmp_path / "p.pdf").pages == 2
        with pytest.raises(DocumentTooComplex, match="could not be split within"):
            inspector.split_part(_slow_pdf(tmp_path), 1, 1, tmp_path / "q.pdf", timeout=0.5)
        assert inspector.split_part(source, 1, 1, tmp_path / "r.pdf").pages == 1  # a new helper


def _slow_pdf(tmp_path: Path) -> Path:
    """A PDF without cross references and 100,000 objects: pypdf parses each of them
    before it finds the page (seconds, not half of one)."""
    from tests.data import pathological

    path = tmp_path / "slow.pdf"
    path.write_bytes(pathological.many_objects_without_xref(100_000))
    return path


# --- merging ------------------------------------------------------------------------------


def _job(**values: Any) -> Job:
    base: dict[str, Any] = {
        "id": 1,
        "rel_path": "book.pdf",
        "location": "/in/book.pdf",
        "sha256": "s",
        "size": 1,
        "mtime_ns": 1,
        "state": State.SPLIT,
    }
    return Job(**{**base, **values})


def _doc(job: Job, tmp: Path, pages: int, options: dict[str, Any] | None = None) -> SourceDocument:
    return SourceDocument(
        job_id=job.id,
        path=Path(job.location),
        name=job.name,
        kind="pdf",
        pages=pages,
        size=1,
        sha256=job.sha256,
        workdir=tmp / str(job.id),
        options=options or {},
    )


def test_links_into_a_parts_output_point_at_its_folder() -> None:
    md = "![](raw/images/a.jpg) and <img src='raw/images/b.jpg'> and [x](https://e/raw/x)"
    assert merge.rebase(md, "part-002") == (
        "![](raw/part-002/images/a.jpg) and <img src='raw/part-002/images/b.jpg'> and "
        "[x](https://e/raw/x)"
    )


def test_a_part_numbers_its_pages_from_the_documents(tmp_path: Path) -> None:
    file_part = merge.Part(
        _job(id=2, parent_id=1, part=2, first_page=201, last_page=400),
        _doc(_job(id=2), tmp_path, 200),
        tmp_path,
        True,
    )
    assert file_part.offset == 200 and file_part.folder == "part-002"
    ranged = merge.Part(
        _job(id=3, parent_id=1, part=3, first_page=401, last_page=600),
        _doc(_job(id=3), tmp_path, 1000, {"page_ranges": "401-600"}),
        tmp_path,
        True,
    )
    assert ranged.offset == 0  # the whole file: its page numbers are the document's


def _content(folder: Path, entries: list[dict[str, Any]]) -> None:
    folder.mkdir(parents=True)
    (folder / "x_content_list.json").write_text(json.dumps(entries))
    (folder / "full.md").write_text("text")


def test_content_lists_merge_into_the_originals_numbering(tmp_path: Path) -> None:
    target = tmp_path / "raw"
    _content(
        target / "part-001",
        [
            {"type": "text", "text": "a", "page_idx": 0},
            {"type": "image", "img_path": "images/i.jpg", "page_idx": 1},
        ],
    )
    # Part 2 was the whole file under page_ranges "3-4", numbered from 0 by the service.
    _content(target / "part-002", [{"type": "text", "text": "b", "page_idx": 1}])
    (target / "part-002" / "layout.json").write_text(
        json.dumps({"pdf_info": [{"page_idx": 0}, {"page_idx": 1}]})
    )
    one = _job(id=2, part=1, first_page=1, last_page=2)
    two = _job(id=3, part=2, first_page=3, last_page=4)
    parts = [
        PartOutput(target / "part-001", "part-001", _doc(one, tmp_path, 2), 0),
        PartOutput(
            target / "part-002", "part-002", _doc(two, tmp_path, 4, {"page_ranges": "3-4"}), 0
        ),
    ]
    assert mineru_result.merge_content_lists(parts, target) == ["merged_content_list.json"]
    merged = json.loads((target / "merged_content_list.json").read_text())
    assert [(e.get("text"), e["page_idx"]) for e in merged] == [("a", 0), (None, 1), ("b", 3)]
    assert merged[1]["img_path"] == "part-001/images/i.jpg"


def test_a_missing_part_answer_is_fetched_again_not_failed(tmp_path: Path) -> None:
    parent = _job(parts=2)
    part = _job(id=2, parent_id=1, part=1, first_page=1, last_page=2, service="mineru")
    lost = merge.Part(part, _doc(part, tmp_path, 2), tmp_path / "nowhere", can_refetch=True)
    with pytest.raises(merge.PartOutputLost) as caught:
        merge.gather(tmp_path / "stage", [lost], parent)
    assert caught.value.part_id == 2 and not caught.value.resubmit and caught.value.retryable
    assert "part 1 of 2 (pages 1-2) is missing" in caught.value.message


def test_gather_moves_each_answer_once_and_a_newer_copy_wins(tmp_path: Path) -> None:
    stored = tmp_path / "work" / "2" / "raw"
    stored.mkdir(parents=True)
    (stored / "full.md").write_text("old")
    part = _job(id=2, parent_id=1, part=1, first_page=1, last_page=2)
    item = merge.Part(part, _doc(part, tmp_path, 2), stored, True)
    stage = tmp_path / "stage"
    merge.gather(stage, [item], _job())
    assert not stored.exists() and (stage / "part-001" / "full.md").read_text() == "old"
    merge.gather(stage, [item], _job())  # after a crash: already there
    stored.mkdir(parents=True)
    (stored / "full.md").write_text("fetched again")
    merge.gather(stage, [item], _job())
    assert (stage / "part-001" / "full.md").read_text() == "fetched again"


class _Mineru:
    """The two things the merge asks of a service, as MinerU does them."""

    name = "mineru"

    def normalize(self, raw: Path, doc: SourceDocument) -> Any:
        return mineru_result.normalize(raw, {"batch_id": f"b{doc.job_id}"})

    def merged_raw(self, parts: list[PartOutput], target: Path) -> list[str]:
        return mineru_result.merge_content_lists(parts, target)


def test_a_merged_document_is_written_part_by_part_and_can_be_merged_again(
    tmp_path: Path,
) -> None:
    """document.md is streamed to a file beside the staged answers (one part's text in
    memory at a time) and moved in; a write that fails leaves every part staged, so the
    next attempt merges again to the same folder."""
    parent = _job(parts=3, service="mineru")
    items = []
    for n, text in enumerate(["\n# one\n![](raw/images/a.jpg)\n", "two \udcff", "\n\nthree"], 1):
        job = _job(id=10 + n, parent_id=1, part=n, first_page=n, last_page=n, service="mineru")
        stored = tmp_path / "work" / str(job.id) / "raw"
        _content(stored, [{"type": "text", "text": f"p{n}", "page_idx": 0}])
        (stored / "full.md").write_text(text, errors="surrogateescape")
        items.append(merge.Part(job, _doc(job, tmp_path, 1), stored, True))
    stage = tmp_path / "work" / "1" / "raw"
    expected = "# one\n![](raw/part-001/images/a.jpg)\n\ntwo \ufffd\n\nthree\n"
    writer = OutboxWriter(tmp_path / "outbox", fsync=False)
    (tmp_path / "outbox" / "book").mkdir(parents=True)  # the name was taken meanwhile
    folder = merge.folder("book", parent, {"name": "book.pdf"}, _Mineru(), items, stage)
    assert isinstance(folder.markdown, Path)
    assert folder.markdown.read_text() == expected
    (taken,) = writer.write_many([folder])
    assert isinstance(taken, FileExistsError) and (stage / "part-003" / "full.md").is_file()
    again = merge.folder("book (2)", parent, {"name": "book.pdf"}, _Mineru(), items, stage)
    (written,) = writer.write_many([again])
    assert written == tmp_path / "outbox" / "book (2)"
    assert (written / "document.md").read_text() == expected
    assert [
        p["raw"] for p in json.loads((written / "result.json").read_text())["source"]["parts"]
    ] == [
        "raw/part-001",
        "raw/part-002",
        "raw/part-003",
    ]
    assert (
        json.loads((written / "raw" / "merged_content_list.json").read_text())[2]["page_idx"] == 2
    )
    assert not list((tmp_path / "work" / "1").iterdir())  # nothing left behind


# --- progress -----------------------------------------------------------------------------


def test_progress_counts_parts_and_pages() -> None:
    doc = _job(pages=600, parts=3)
    parts = [
        _job(id=2, parent_id=1, part=1, first_page=1, last_page=200, state=State.RECEIVED),
        _job(
            id=3,
            parent_id=1,
            part=2,
            first_page=201,
            last_page=400,
            state=State.SUBMITTED,
            remote={"service_state": {"state": "running", "pages_done": 140}},
        ),
        _job(id=4, parent_id=1, part=3, first_page=401, last_page=600, state=State.QUEUED),
    ]
    p = parts_progress(doc, parts)
    assert p is not None and p.text == "part 2 of 3, 340 of 600 pages"
    assert (p.parts, p.received, p.pages_done) == (3, 1, 340)
    assert parts_progress(doc, []) is None


def test_status_shows_parts_as_progress_of_their_document(tmp_path: Path) -> None:
    from daemon.status import build_snapshot
    from daemon.store import open_store

    store = open_store(tmp_path / "s.db")
    doc = store.add(rel_path="book.pdf", location="/in/b", sha256="s", size=1, mtime_ns=1)
    assert doc is not None
    store.split_into(
        doc.id,
        sha256="s",
        kind="pdf",
        pages=400,
        service="mineru",
        options={},
        parts=[
            {
                "rel_path": f"book.part-00{n}.pdf",
                "location": "/w",
                "sha256": f"p{n}",
                "size": 1,
                "mtime_ns": 1,
                "pages": 200,
                "first_page": 200 * n - 199,
                "last_page": 200 * n,
                "options": {},
            }
            for n in (1, 2)
        ],
    )
    snap = build_snapshot(store, time.time())
    assert snap.counts == {"split": 1}
    [active] = snap.active
    assert active.name == "book.pdf" and active.parts == 2
    assert active.parts_text == "part 1 of 2, 0 of 400 pages"
