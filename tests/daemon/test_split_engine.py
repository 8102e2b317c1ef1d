"""A split document through the daemon itself (in process, the mock over ASGI): parts
share a MinerU batch, a crash between a part's last move and its document's is settled
at start, and a part whose stored answer is lost is sent again alone."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from daemon import config, sniff
from daemon.lifecycle import Daemon as Engine
from daemon.store import State, open_store
from mockserver.app import create_app
from mockserver.core import MockContext
from tests import splitdoc
from tests.helpers import read_json, service_sections, write_config


def routes(mineru: str = "") -> str:
    """MinerU for everything; *mineru*: more keys of its table."""
    return (
        service_sections("http://mock", docparse=False)
        + mineru
        + ('\n[[routes]]\nservice = "mineru"\n')
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    return tmp_path


def run_once(workdir: Path, mock: MockContext, mineru: str = "") -> int:
    settings = config.load(write_config(workdir, "http://mock", routes=routes(mineru)))
    engine = Engine(
        settings, transport=httpx.ASGITransport(app=create_app(mock)), start_mock=False, fsync=False
    )
    try:
        return engine.run(once=True)
    finally:
        engine.close()


def test_the_parts_of_a_document_share_one_batch(workdir: Path) -> None:
    mock = MockContext(speed=200.0)
    splitdoc.build(workdir / "inbox" / "book.pdf", 450)
    assert run_once(workdir, mock, "split_by_page_ranges = false\n") == 0
    result = read_json(workdir / "outbox" / "book" / "result.json")
    assert [p["pages"] for p in result["source"]["parts"]] == [[1, 200], [201, 400], [401, 450]]
    batches = {p["remote"]["batch_id"] for p in result["source"]["parts"]}
    assert len(batches) == 1
    splitdoc.check_markdown((workdir / "outbox" / "book" / "document.md").read_text(), 450)
    assert (workdir / "archive" / "book.pdf").exists()
    assert not (workdir / "state" / "work").exists() or not any(
        (workdir / "state" / "work").iterdir()
    )


def _prepared(workdir: Path, *, lost: bool) -> tuple[int, list[int]]:
    """As a crash left it: book.pdf split in two file parts, both received — part 1's
    answer stored, part 2's (with *lost*) gone and the service unable to give it again —
    and the document still ``split``."""
    source = splitdoc.build(workdir / "inbox" / "book.pdf", 40)
    st = source.stat()
    store = open_store(workdir / "state" / "docinbox.db")
    doc = store.add(
        rel_path="book.pdf",
        location=str(source),
        sha256=hashlib.sha256(source.read_bytes()).hexdigest(),
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
    )
    assert doc is not None
    parts = []
    for n, (first, last) in enumerate([(1, 20), (21, 40)], 1):
        target = workdir / "state" / "work" / str(doc.id) / "parts" / f"part-{n:03d}.pdf"
        target.parent.mkdir(parents=True, exist_ok=True)
        made = sniff.write_pdf_part(source, first, last, target)
        parts.append(
            {
                "rel_path": f"book.part-{n:03d}.pdf",
                "location": str(target),
                "sha256": made.sha256,
                "size": made.size,
                "mtime_ns": made.mtime_ns,
                "pages": made.pages,
                "first_page": first,
                "last_page": last,
                "options": {},
            }
        )
    made_parts = store.split_into(
        doc.id, sha256=doc.sha256, kind="pdf", pages=40, service="mineru", options={}, parts=parts
    )
    for part in made_parts:
        store.transition(part.id, State.QUEUED, State.SUBMITTING, attempts=1)
        store.transition(part.id, State.SUBMITTING, State.RECEIVED)
        raw = workdir / "state" / "work" / str(part.id) / "raw"
        if lost and part.part == 2:
            continue
        raw.mkdir(parents=True)
        first = part.first_page or 1
        text = "\n\n".join(
            splitdoc.stamp_text(p, 40) for p in range(first, (part.last_page or 0) + 1)
        )
        (raw / "full.md").write_text(text)
    store.close()
    return doc.id, [p.id for p in made_parts]


def test_a_crash_after_the_last_part_arrived_is_settled_at_start(workdir: Path) -> None:
    mock = MockContext(speed=200.0)
    _prepared(workdir, lost=False)
    assert run_once(workdir, mock) == 0
    markdown = (workdir / "outbox" / "book" / "document.md").read_text()
    stamps = [int(m.group(1)) for m in splitdoc.STAMP.finditer(markdown)]
    assert stamps == list(range(1, 41))
    assert mock.journal.entries() == []  # nothing asked of the service again
    assert sorted(os.listdir(workdir / "outbox" / "book" / "raw")) == ["part-001", "part-002"]


def test_a_lost_part_answer_is_sent_again_alone(workdir: Path) -> None:
    mock = MockContext(speed=200.0)
    doc_id, part_ids = _prepared(workdir, lost=True)
    assert run_once(workdir, mock) == 0
    result = read_json(workdir / "outbox" / "book" / "result.json")
    assert result["source"]["parts"][1]["remote"]["batch_id"]  # part 2 came from MinerU
    assert not result["source"]["parts"][0]["remote"]  # part 1 kept what it had
    tasks = [t["name"] for t in mock.ledger.entries()]
    assert tasks == ["book.part-002.pdf"]
    markdown = (workdir / "outbox" / "book" / "document.md").read_text()
    stamps = [int(m.group(1)) for m in splitdoc.STAMP.finditer(markdown)]
    assert stamps == list(range(1, 41))
    store = open_store(workdir / "state" / "docinbox.db")
    notes = [h["note"] for h in store.history(doc_id)]
    assert any(n and n.startswith(f"part {part_ids[1]}: raw_output_lost") for n in notes)
