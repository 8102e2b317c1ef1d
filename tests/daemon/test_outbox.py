from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.outbox import OutboxWriter, archive_original, fail_original
from daemon.outbox.markdown import render_extraction


def test_write_is_atomic_and_never_over_another_folder(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "response.json").write_text("{}")
    (raw / "images" / "a.png").write_bytes(b"png")
    writer = OutboxWriter(tmp_path / "outbox")
    result = {"source": {"sha256": "abc"}}
    target = writer.write("recibo", 1, result, "# hi\n", raw)
    assert json.loads((target / "result.json").read_text()) == result
    assert (target / "document.md").read_text() == "# hi\n"
    assert (target / "raw" / "images" / "a.png").read_bytes() == b"png"
    assert writer.written("recibo", "abc") and not writer.written("recibo", "other")
    with pytest.raises(FileExistsError):
        writer.write("recibo", 2, {"x": 1}, "", None)
    assert json.loads((target / "result.json").read_text()) == result
    assert writer.free_name("recibo", set()) == "recibo (2)"
    assert writer.free_name("recibo", {"recibo (2)"}) == "recibo (3)"
    assert not list((tmp_path / "outbox").glob(".docinbox-tmp-*"))


def test_symlinks_in_raw_output_are_not_copied(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "evil").symlink_to("/etc/passwd")
    target = OutboxWriter(tmp_path / "out").write("d", 1, {}, "", raw)
    assert not (target / "raw" / "evil").exists()


def test_archive_and_fail_keep_names_unique(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "sub").mkdir(parents=True)
    for _ in range(2):
        (inbox / "sub" / "a.pdf").write_bytes(b"x")
        archive_original(inbox / "sub" / "a.pdf", "sub/a.pdf", tmp_path / "archive")
    assert sorted(p.name for p in (tmp_path / "archive" / "sub").iterdir()) == ["a (2).pdf",
                                                                               "a.pdf"]
    (inbox / "b.pdf").write_bytes(b"y")
    assert archive_original(inbox / "b.pdf", "b.pdf", None) is None  # archive = "" deletes
    assert not (inbox / "b.pdf").exists()
    (inbox / "c.pdf").write_bytes(b"z")
    moved = fail_original(inbox / "c.pdf", "c.pdf", tmp_path / "failed",
                          {"error": "corrupt_document", "message": "m", "attempts": 1})
    assert moved.read_bytes() == b"z"
    err = json.loads((tmp_path / "failed" / "c.pdf.error.json").read_text())
    assert err["error"] == "corrupt_document"


def test_markdown_escapes_table_cells() -> None:
    md = render_extraction("a|b.pdf", [{"label": "total", "text": "4|5", "score": 0.5,
                                        "page": 0}], [])
    assert "4\\|5" in md and "| total |" in md


def test_move_interrupted_after_the_link_is_finished_without_a_copy(tmp_path: Path) -> None:
    """A crash between linking into the archive and unlinking the original: archiving
    again reuses the link instead of making "a (2).pdf"."""
    import os

    src = tmp_path / "inbox" / "a.pdf"
    src.parent.mkdir()
    src.write_bytes(b"doc")
    (tmp_path / "archive").mkdir()
    os.link(src, tmp_path / "archive" / "a.pdf")  # the crash came after this
    target = archive_original(src, "a.pdf", tmp_path / "archive")
    assert target == tmp_path / "archive" / "a.pdf"
    assert [p.name for p in (tmp_path / "archive").iterdir()] == ["a.pdf"]
    assert not src.exists()
