"""Full and read-only disks under the outbox, archive and failed folders — real ones: a
small tmpfs filled to the last byte, and a read-only bind mount.

Whatever the disk says, nothing dropped is lost and nothing half-written stays behind:
each function either finishes or raises HostError (which the engine retries for as long
as it takes) with everything as it was.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.errors import HostError
from daemon.outbox import OutboxWriter, archive_original, fail_original

ERROR = {"error": "rejected", "message": "no", "attempts": 1}


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        # Mounting needs root (CAP_SYS_ADMIN); the same paths are covered with injected
        # failures in test_outbox_names.py.
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "64k", inodes: int | None = None) -> Iterator[Path]:
    """A small file system of its own at *path*."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    _mount("-t", "tmpfs", "-o", options, "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """*path* made read-only in place (a read-only bind mount over it)."""
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield path
    finally:
        _umount(path)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill *folder*'s file system up (but for about *leave* bytes); the filler's path."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    finally:
        os.close(fd)
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def everything(folder: Path) -> list[str]:
    """Every entry under *folder*, hidden ones too, as relative paths."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_every_disk_full_fails_a_document_all_or_nothing(tmp_path: Path) -> None:
    """inbox, failed/ (and state) on one full disk: no failed/x.pdf without its error file,
    no temporary files, and once there is room, exactly one move and one error file."""
    with tmpfs(tmp_path / "disk") as disk:
        inbox, failed = disk / "inbox", disk / "failed"
        inbox.mkdir()
        failed.mkdir()
        original = inbox / "x.pdf"
        original.write_bytes(b"%PDF-1.4 " + b"x" * 3000)
        filler = fill(disk)
        for _ in range(3):  # the engine tries again, and again
            with pytest.raises(HostError, match="disk is full") as info:
                fail_original(original, "x.pdf", failed, ERROR)
            assert isinstance(info.value.__cause__, OSError)
            assert str(failed) in info.value.message and "Free space" in info.value.hint
            assert original.read_bytes().startswith(b"%PDF") and os.stat(original).st_nlink == 1
            assert everything(failed) == []
            assert everything(inbox) == ["x.pdf"]
        filler.unlink()
        target = fail_original(original, "x.pdf", failed, ERROR)
        assert target == failed / "x.pdf" and not original.exists()
        assert everything(failed) == ["x.pdf", "x.pdf.error.json"]
        assert json.loads((failed / "x.pdf.error.json").read_text())["error"] == "rejected"


def test_a_full_failed_folder_on_another_disk_gets_no_partial_copy(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    original = inbox / "sub" / "big.pdf"
    original.parent.mkdir()
    original.write_bytes(os.urandom(40_000))
    with tmpfs(tmp_path / "failed") as failed:
        filler = fill(failed, leave=16_000)  # room for part of the copy only
        for _ in range(3):
            with pytest.raises(HostError, match="disk is full"):
                fail_original(original, "sub/big.pdf", failed, ERROR)
            assert everything(failed) == ["filler"]
        assert original.stat().st_size == 40_000
        filler.unlink()
        target = fail_original(original, "sub/big.pdf", failed, ERROR)
        assert target == failed / "sub" / "big.pdf" and target.stat().st_size == 40_000
        assert everything(failed) == ["sub", "sub/big.pdf", "sub/big.pdf.error.json"]
        assert not original.exists()


def test_a_full_archive_on_another_disk_keeps_the_original_and_no_junk(tmp_path: Path) -> None:
    """The archive on its own small disk, nearly full: each attempt copies part of the file
    and must take that part away again (no "a.pdf", "a (2).pdf", ... of partial copies)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    data = [os.urandom(24_000), os.urandom(24_000)]
    originals = [inbox / "a.pdf", inbox / "b.pdf"]
    for path, content in zip(originals, data, strict=True):
        path.write_bytes(content)
    with tmpfs(tmp_path / "archive") as archive:
        filler = fill(archive, leave=12_000)
        for _ in range(10):
            for path in originals:
                with pytest.raises(HostError, match="disk is full"):
                    archive_original(path, path.name, archive)
        assert everything(archive) == ["filler"]
        assert [p.read_bytes() for p in originals] == data
        filler.unlink()
        for path in originals:
            assert archive_original(path, path.name, archive) == archive / path.name
        assert [(archive / p.name).read_bytes() for p in originals] == data
        assert everything(inbox) == []


def test_no_inode_left_for_the_archive_s_folders(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    (inbox / "a" / "b").mkdir(parents=True)
    original = inbox / "a" / "b" / "c.pdf"
    original.write_bytes(b"doc")
    with tmpfs(tmp_path / "archive", inodes=3) as archive:  # the root and two more
        (archive / "taken").mkdir()
        with pytest.raises(HostError, match="archive"):
            archive_original(original, "a/b/c.pdf", archive)
        assert everything(archive) == ["taken"]  # the folder it made on the way is gone
        assert original.read_bytes() == b"doc"


def test_a_read_only_archive_and_failed_folder(tmp_path: Path) -> None:
    inbox, archive, failed = tmp_path / "inbox", tmp_path / "archive", tmp_path / "failed"
    for folder in (inbox, archive, failed):
        folder.mkdir()
    original = inbox / "r.pdf"
    original.write_bytes(b"doc")
    with read_only(archive), read_only(failed):
        with pytest.raises(HostError, match="read-only") as info:
            archive_original(original, "r.pdf", archive)
        assert "writable" in info.value.hint
        with pytest.raises(HostError, match="read-only"):
            fail_original(original, "r.pdf", failed, ERROR)
        assert original.read_bytes() == b"doc"
    assert everything(archive) == [] and everything(failed) == []


def test_a_read_only_inbox_undoes_the_archive_copy(tmp_path: Path) -> None:
    """The original cannot leave a read-only inbox: its archived copy goes again, so
    there are never two of it."""
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir()
    original = inbox / "r.pdf"
    original.write_bytes(b"doc")
    with read_only(inbox):
        with pytest.raises(HostError, match="read-only") as info:
            archive_original(original, "r.pdf", archive)
        assert str(inbox) in info.value.message
        with pytest.raises(HostError, match="read-only"):
            archive_original(original, "r.pdf", None)  # archive = "": delete
    assert original.read_bytes() == b"doc"
    assert everything(archive) == []


def _raw(folder: Path, size: int = 20_000) -> Path:
    raw = folder / "raw"
    (raw / "images").mkdir(parents=True)
    (raw / "response.json").write_text('{"ok": true}')
    (raw / "images" / "p1.png").write_bytes(os.urandom(size))
    return raw


def _folder(name: str, job_id: int, raw: Path | None, lines: int = 1):  # type: ignore[no-untyped-def]
    from daemon.outbox.writer import Folder

    return Folder(name, job_id, {"source": {"name": name}}, "# doc\n" * lines, raw)


def test_a_full_outbox_puts_the_service_output_back(tmp_path: Path) -> None:
    """Service output on the outbox's disk (moved in) and on another disk (copied): the
    disk fills while staging; each folder gets a HostError, its output is where it was,
    and no staging folder stays."""
    with tmpfs(tmp_path / "disk", size="256k") as disk:
        outbox = disk / "outbox"
        same = _raw(disk / "work" / "1")
        other = _raw(tmp_path / "work" / "2", size=60_000)
        filler = fill(disk, leave=4_000)
        writer = OutboxWriter(outbox)
        for _ in range(2):
            # "one" fills the disk with its Markdown, "two" while copying its output
            out = writer.write_many([_folder("one", 1, same, 2000), _folder("two", 2, other)])
            assert [type(o) for o in out] == [HostError, HostError], out
            assert all("disk is full" in str(o) and str(outbox) in str(o) for o in out)
            assert everything(outbox) == []
            assert (same / "response.json").exists() and (other / "images" / "p1.png").exists()
        filler.unlink()
        out = writer.write_many([_folder("one", 1, same, 2000), _folder("two", 2, other)])
        writer.close()
        assert out == [outbox / "one", outbox / "two"]
        assert (outbox / "two" / "raw" / "images" / "p1.png").stat().st_size == 60_000


def test_a_read_only_outbox_is_a_host_error_per_folder(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    raw = _raw(tmp_path / "work" / "1")
    with read_only(outbox):
        out = OutboxWriter(outbox).write_many([_folder("one", 1, raw), _folder("two", 2, None)])
        assert [type(o) for o in out] == [HostError, HostError]
        assert "read-only" in str(out[0]) and "writable" in out[0].hint  # type: ignore[union-attr]
    assert everything(outbox) == []
    assert (raw / "response.json").exists()


def test_an_outbox_that_cannot_be_made_is_a_host_error_not_an_exception(
    tmp_path: Path,
) -> None:
    parent = tmp_path / "mnt"
    parent.mkdir()
    with read_only(parent):
        out = OutboxWriter(parent / "outbox").write_many([_folder("one", 1, None)])
    assert len(out) == 1 and isinstance(out[0], HostError)
