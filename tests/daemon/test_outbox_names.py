"""Names in the archive, failed and outbox folders: collisions between files and folders,
names at the file system's length limit, undecodable names, and moves that never unlink
an original whose new place does not provably hold it."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from daemon.errors import HostError
from daemon.outbox import OutboxWriter, archive_original, fail_original

ERROR = {"error": "rejected", "message": "no", "attempts": 1}


def size(name: str) -> int:
    """Bytes the name takes on disk."""
    return len(os.fsencode(name))


def name_max(folder: Path) -> int:
    return os.pathconf(folder, "PC_NAME_MAX")


def drop(inbox: Path, rel: str, data: bytes = b"%PDF-1.4 doc") -> Path:
    path = inbox / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def files(folder: Path) -> list[str]:
    """Every entry under *folder*, hidden ones too, as relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_a_folder_whose_name_an_archived_file_has_gets_a_numbered_name(tmp_path: Path) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    archive_original(drop(inbox, "2024", b"a file called 2024"), "2024", archive)
    moved = archive_original(drop(inbox, "2024/inner.pdf", b"inner"), "2024/inner.pdf", archive)
    assert moved == archive / "2024 (2)" / "inner.pdf"
    assert moved.read_bytes() == b"inner"
    assert (archive / "2024").read_bytes() == b"a file called 2024"
    # the next document of that folder goes into the same numbered folder
    shutil.rmtree(inbox / "2024")
    again = archive_original(drop(inbox, "2024/two.pdf"), "2024/two.pdf", archive)
    assert again == archive / "2024 (2)" / "two.pdf"


def test_a_file_whose_name_an_archived_folder_has_gets_a_numbered_name(tmp_path: Path) -> None:
    inbox, archive, failed = tmp_path / "inbox", tmp_path / "archive", tmp_path / "failed"
    archive_original(drop(inbox, "report/a.pdf"), "report/a.pdf", archive)
    shutil.rmtree(inbox / "report")
    moved = archive_original(drop(inbox, "report", b"file"), "report", archive)
    assert moved == archive / "report (2)" and moved.read_bytes() == b"file"
    # the same in failed/, where the error file must not collide either
    fail_original(drop(inbox, "x.pdf/in.pdf"), "x.pdf/in.pdf", failed, ERROR)
    shutil.rmtree(inbox / "x.pdf")
    target = fail_original(drop(inbox, "x.pdf", b"file"), "x.pdf", failed, ERROR)
    assert target == failed / "x (2).pdf" and target.read_bytes() == b"file"
    assert (failed / "x (2).pdf.error.json").is_file()


def test_a_folder_in_failed_that_is_a_file_there_never_raises_file_exists(tmp_path: Path) -> None:
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    fail_original(drop(inbox, "2024"), "2024", failed, ERROR)
    target = fail_original(drop(inbox, "2024/inner.pdf", b"in"), "2024/inner.pdf", failed, ERROR)
    assert target == failed / "2024 (2)" / "inner.pdf" and target.read_bytes() == b"in"
    assert (failed / "2024 (2)" / "inner.pdf.error.json").is_file()
    assert not (inbox / "2024" / "inner.pdf").exists()


def test_a_name_too_long_for_its_error_file_is_shortened(tmp_path: Path) -> None:
    """245+ bytes: ``.error.json`` would not fit beside it; the name is shortened (its
    extension kept, a hash of the whole name added) so both fit."""
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    name = "factura-" + "x" * 240 + ".pdf"  # 252 bytes
    assert size(name) <= name_max(tmp_path) < size(name + ".error.json")
    target = fail_original(drop(inbox, name, b"long"), name, failed, ERROR)
    assert target.read_bytes() == b"long" and not (inbox / name).exists()
    assert target.name.startswith("factura-xxx") and target.name.endswith(".pdf")
    sidecar = target.with_name(target.name + ".error.json")
    assert json.loads(sidecar.read_text("utf-8"))["error"] == "rejected"
    assert size(sidecar.name) <= name_max(failed)
    assert files(failed) == sorted([target.name, sidecar.name])


def test_two_long_names_alike_in_their_first_bytes_stay_apart(tmp_path: Path) -> None:
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    a, b = "a" * 248 + "-1.pdf", "a" * 248 + "-2.pdf"
    ta = fail_original(drop(inbox, a, b"1"), a, failed, ERROR)
    tb = fail_original(drop(inbox, b, b"2"), b, failed, ERROR)
    assert ta != tb and " (2)" not in tb.name  # apart by their hash, not by a number
    assert ta.read_bytes() == b"1" and tb.read_bytes() == b"2"


def test_a_255_byte_name_that_needs_a_number(tmp_path: Path) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    name = "y" * 251 + ".pdf"  # 255 bytes: the longest name there is
    first = archive_original(drop(inbox, name, b"1"), name, archive)
    second = archive_original(drop(inbox, name, b"2"), name, archive)
    assert first == archive / name
    assert second is not None and second.name.endswith(" (2).pdf")
    assert size(second.name) <= 255 and second.read_bytes() == b"2"
    # and the outbox folder of such a document
    writer = OutboxWriter(tmp_path / "outbox", fsync=False)
    stem = "y" * 251
    writer.write(writer.free_name(stem, set()), 1, {}, "", None)
    name2 = writer.free_name(stem, set())
    assert size(name2) <= 255 and name2.endswith(" (2)")
    assert writer.write(name2, 2, {"n": 2}, "", None).is_dir()


def test_multibyte_names_are_cut_between_characters(tmp_path: Path) -> None:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    name = "é" * 125 + ".pdf"  # 254 bytes, 129 characters
    archive_original(drop(inbox, name), name, archive)
    second = archive_original(drop(inbox, name), name, archive)
    assert second is not None and size(second.name) <= 255
    second.name.encode("utf-8")  # whole characters only: no surrogates, nothing cut in half
    assert second.name.startswith("é" * 50) and second.name.endswith(" (2).pdf")


def test_undecodable_long_names_count_their_bytes_and_keep_the_name(tmp_path: Path) -> None:
    """A name that is not UTF-8 (surrogate escapes in Python) counts one byte per byte,
    and its error file records the name in a form that reads back to it."""
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    name = os.fsdecode(b"\xff\xfe" * 120 + b"-scan.pdf")  # 249 bytes on disk
    assert size(name) == 249
    target = fail_original(drop(inbox, name, b"raw"), name, failed, {**ERROR, "document": name})
    assert target.read_bytes() == b"raw" and not (inbox / name).exists()
    sidecar = target.with_name(target.name + ".error.json")
    assert json.loads(sidecar.read_bytes())["document"] == name
    assert size(sidecar.name) <= 255


def test_numbered_keeps_the_extension_and_fits() -> None:
    from daemon.outbox.names import numbered

    assert numbered("a.pdf", 1, limit=255) == "a.pdf"
    assert numbered("a.pdf", 3, limit=255) == "a (3).pdf"
    assert numbered("2024", 2, limit=255, folder=True) == "2024 (2)"
    long = "n" * 300 + ".tar.gz"
    for n in (1, 2, 99_999):
        cut = numbered(long, n, limit=255, reserve=11)
        assert size(cut) + 11 <= 255 and cut.endswith(".gz")
    assert numbered(long, 1, limit=255) != numbered("n" * 300 + "!.tar.gz", 1, limit=255)


def test_a_copy_that_comes_out_short_never_costs_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Across file systems the original is unlinked only after a complete, fsynced copy is
    in place: a copy that comes out short leaves the original and no partial file."""
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    src = drop(inbox, "a.pdf", b"0123456789")

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def short_copy(src: Path, dst: Path, **kwargs: object) -> None:
        Path(dst).write_bytes(Path(src).read_bytes()[:4])

    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(shutil, "copyfile", short_copy)
    with pytest.raises(HostError):
        archive_original(src, "a.pdf", archive)
    assert src.read_bytes() == b"0123456789"
    assert files(archive) == []


def test_a_failed_fsync_leaves_the_original_where_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    src = drop(inbox, "a.pdf", b"doc")

    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(HostError, match="input/output error") as info:
        fail_original(src, "a.pdf", failed, ERROR)
    assert isinstance(info.value.__cause__, OSError)
    assert "Check the disk" in info.value.hint
    assert src.read_bytes() == b"doc" and os.stat(src).st_nlink == 1
    assert files(failed) == []


def test_a_retried_document_failing_again_stays_where_it_is(tmp_path: Path) -> None:
    inbox, failed = tmp_path / "inbox", tmp_path / "failed"
    first = fail_original(drop(inbox, "a.pdf", b"doc"), "a.pdf", failed, ERROR)
    again = fail_original(first, "a.pdf", failed, {**ERROR, "attempts": 2})
    assert again == first and first.read_bytes() == b"doc"
    assert json.loads((failed / "a.pdf.error.json").read_text())["attempts"] == 2
    assert files(failed) == ["a.pdf", "a.pdf.error.json"]


def test_a_vanished_original_gets_only_its_error_file(tmp_path: Path) -> None:
    failed = tmp_path / "failed"
    target = fail_original(tmp_path / "inbox" / "gone.pdf", "gone.pdf", failed, ERROR)
    assert target == failed / "gone.pdf" and not target.exists()
    assert files(failed) == ["gone.pdf.error.json"]


def test_recovery_keeps_a_staging_folder_whose_output_cannot_go_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outbox = tmp_path / "outbox"
    (outbox / ".docinbox-tmp-7" / "raw").mkdir(parents=True)
    (outbox / ".docinbox-tmp-7" / "raw" / "r.json").write_text("{}")
    (outbox / ".docinbox-tmp-8").mkdir()  # nothing of value in it
    real = os.rename

    def rename(src: object, dst: object) -> None:
        if str(src).endswith("tmp-7/raw"):
            raise OSError(errno.EIO, "Input/output error")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "rename", rename)
    problems = OutboxWriter(outbox).recover(lambda job: tmp_path / "work" / str(job) / "raw")
    assert len(problems) == 1 and isinstance(problems[0], HostError)
    assert (outbox / ".docinbox-tmp-7" / "raw" / "r.json").exists()
    assert not (outbox / ".docinbox-tmp-8").exists()
    monkeypatch.setattr(os, "rename", real)
    assert OutboxWriter(outbox).recover(lambda job: tmp_path / "work" / str(job) / "raw") == []
    assert (tmp_path / "work" / "7" / "raw" / "r.json").exists()
    assert files(outbox) == []


def test_a_reserved_name_too_long_for_the_outbox_asks_for_another(tmp_path: Path) -> None:
    """A name reserved before it was known not to fit: FileExistsError (pick another)
    rather than an error that would repeat forever."""
    writer = OutboxWriter(tmp_path / "outbox", fsync=False)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "r.json").write_text("{}")
    (out,) = writer.write_many([_folder("z" * 300, raw)])
    assert isinstance(out, FileExistsError)
    assert (raw / "r.json").exists() and files(tmp_path / "outbox") == []


def _folder(name: str, raw: Path | None = None):  # type: ignore[no-untyped-def]
    from daemon.outbox.writer import Folder

    return Folder(name, 1, {"source": {"name": name}}, "# doc\n", raw)


def test_results_of_undecodable_names_are_written(tmp_path: Path) -> None:
    name = os.fsdecode(b"scan-\xff")
    writer = OutboxWriter(tmp_path / "outbox", fsync=False)
    target = writer.write(name, 1, {"source": {"name": name + ".pdf"}}, f"# {name}\n", None)
    assert json.loads((target / "result.json").read_bytes())["source"]["name"] == name + ".pdf"
