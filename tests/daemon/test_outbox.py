from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.errors import HostError
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
    assert sorted(p.name for p in (tmp_path / "archive" / "sub").iterdir()) == [
        "a (2).pdf",
        "a.pdf",
    ]
    (inbox / "b.pdf").write_bytes(b"y")
    assert archive_original(inbox / "b.pdf", "b.pdf", None) is None  # archive = "" deletes
    assert not (inbox / "b.pdf").exists()
    (inbox / "c.pdf").write_bytes(b"z")
    moved = fail_original(
        inbox / "c.pdf",
        "c.pdf",
        tmp_path / "failed",
        {"error": "corrupt_document", "message": "m", "attempts": 1},
    )
    assert moved.read_bytes() == b"z"
    err = json.loads((tmp_path / "failed" / "c.pdf.error.json").read_text())
    assert err["error"] == "corrupt_document"


def test_markdown_escapes_table_cells() -> None:
    md = render_extraction(
        "a|b.pdf", [{"label": "total", "text": "4|5", "score": 0.5, "page": 0}], []
    )
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


def test_write_many_writes_a_batch_and_keeps_one_folder_s_trouble_to_itself(tmp_path: Path) -> None:
    from daemon.outbox.writer import Folder

    outbox = tmp_path / "outbox"
    (outbox / "taken").mkdir(parents=True)
    (outbox / "taken" / "x").write_text("someone else's")
    raws = []
    for i in range(3):
        raw = tmp_path / "work" / str(i) / "raw"
        raw.mkdir(parents=True)
        (raw / "response.json").write_text(f'{{"n": {i}}}')
        raws.append(raw)
    writer = OutboxWriter(outbox)
    out = writer.write_many(
        [
            Folder("one", 1, {"n": 1}, "# one\n", raws[0]),
            Folder("taken", 2, {"n": 2}, "# two\n", raws[1]),
            Folder("three", 3, {"n": 3}, "# three\n", raws[2]),
        ]
    )
    writer.close()
    assert out[0] == outbox / "one" and out[2] == outbox / "three"
    assert isinstance(out[1], FileExistsError)
    assert (outbox / "three" / "raw" / "response.json").read_text() == '{"n": 2}'
    assert not raws[0].exists()  # moved in, not copied
    # the refused folder left nothing behind, and its service output is where it was
    assert (outbox / "taken" / "x").read_text() == "someone else's"
    assert (raws[1] / "response.json").read_text() == '{"n": 1}'
    assert not list(outbox.glob(".docinbox-tmp-*"))


def test_a_failed_rename_puts_the_service_output_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    raw = tmp_path / "work" / "7" / "raw"
    raw.mkdir(parents=True)
    (raw / "response.json").write_text("{}")
    real_rename = os.rename

    def rename(src, dst):  # type: ignore[no-untyped-def]
        if str(dst).endswith("/outbox/d"):
            raise OSError(errno.EROFS, "Read-only file system")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(HostError, match="read-only"):
        OutboxWriter(tmp_path / "outbox").write("d", 7, {}, "", raw)
    assert (raw / "response.json").read_text() == "{}"
    assert not (tmp_path / "outbox" / "d").exists()
    assert not list((tmp_path / "outbox").glob(".docinbox-tmp-*"))


def test_recovery_puts_back_output_a_crash_left_in_a_temporary_folder(tmp_path: Path) -> None:
    tmp = tmp_path / "outbox" / ".docinbox-tmp-7"
    (tmp / "raw").mkdir(parents=True)
    (tmp / "raw" / "response.json").write_text("{}")
    raw = tmp_path / "work" / "7" / "raw"
    OutboxWriter.recover_raw(tmp, raw)
    assert (raw / "response.json").read_text() == "{}"
