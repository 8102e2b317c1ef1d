"""Reading dropped files safely (special files, permissions, files that change while read)
and keeping names that are not UTF-8."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import socket
import sqlite3
import threading
import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon import docfile
from daemon.docfile import display_name, from_storable, open_document, sha256_of, storable
from daemon.errors import (
    DocumentChanging,
    DocumentVanished,
    UnreadableDocument,
    UnsupportedDocument,
)


def test_a_regular_file_opens_blocking_and_buffered(tmp_path: Path) -> None:
    doc = tmp_path / "a.pdf"
    doc.write_bytes(b"%PDF-1.4 hello")
    with open_document(doc) as fh:
        assert os.get_blocking(fh.fileno())  # O_NONBLOCK was only for the open
        assert fh.read(5) == b"%PDF-" and fh.seekable()


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "queued.pdf"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(outcome, open_document, fifo), daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        _unblock(fifo)
        pytest.fail("open_document blocked on a FIFO")
    assert isinstance(outcome[0], UnsupportedDocument)
    assert "a FIFO" in str(outcome[0])


def test_a_fifo_swapped_in_after_the_check_is_caught_on_the_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stat before opening saw a regular file; by the open it is a FIFO. O_NONBLOCK
    keeps the open from blocking and the fstat of the descriptor refuses it."""
    fifo = tmp_path / "swapped.pdf"
    os.mkfifo(fifo)
    (tmp_path / "regular").write_bytes(b"x")
    regular = os.stat(tmp_path / "regular")
    _patch_os(monkeypatch, stat=lambda path, *args, **kwargs: regular)
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _capture(outcome, open_document, fifo), daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        _unblock(fifo)
        pytest.fail("open_document blocked on a FIFO")
    assert isinstance(outcome[0], UnsupportedDocument) and "a FIFO" in str(outcome[0])


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.mkdir(), "a folder"),
        (lambda p: p.symlink_to("/dev/null"), "a device"),
        (lambda p: _bind_socket(p), "a socket"),
    ],
)
def test_special_files_are_named(tmp_path: Path, make, words: str) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "special.pdf"
    make(target)
    with pytest.raises(UnsupportedDocument, match=words):
        open_document(target)


def test_os_errors_become_document_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DocumentVanished, match="removed"):
        open_document(tmp_path / "gone.pdf")
    loop = tmp_path / "loop.pdf"
    loop.symlink_to(loop)
    with pytest.raises(UnsupportedDocument, match="loops"):
        open_document(loop)
    doc = tmp_path / "secret.pdf"
    doc.write_bytes(b"%PDF-")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(errno.EACCES, "Permission denied")

    _patch_os(monkeypatch, open=denied)  # tests may run as root, who reads everything
    with pytest.raises(UnreadableDocument, match="cannot be read: permission denied") as info:
        open_document(doc)
    assert "permission" in info.value.hint


def test_sha256_of_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * docfile.HASH_CHUNK + 17)
    doc = tmp_path / "a.pdf"
    doc.write_bytes(data)
    digest, size, mtime_ns = sha256_of(doc)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (size, mtime_ns) == (len(data), doc.stat().st_mtime_ns)


def test_a_file_written_while_hashed_is_still_changing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "growing.pdf"
    doc.write_bytes(b"a" * (2 * docfile.HASH_CHUNK))

    class AppendsOnFirstUpdate:
        """hashlib.sha256 whose first update is when the writer adds a block."""

        def __init__(self) -> None:
            self.h = hashlib.sha256()
            self.updates = 0

        def update(self, data: bytes) -> None:
            if self.updates == 0:
                with doc.open("ab") as fh:
                    fh.write(b"more")
            self.updates += 1
            self.h.update(data)

        def hexdigest(self) -> str:
            return self.h.hexdigest()

    monkeypatch.setattr(docfile, "hashlib", types.SimpleNamespace(sha256=AppendsOnFirstUpdate))
    with pytest.raises(DocumentChanging):
        sha256_of(doc)


# --- names that are not UTF-8 ---------------------------------------------------------------


def test_display_name_of_a_cp1252_name() -> None:
    name = os.fsdecode(b"Factura_\xf1.pdf")
    assert name == "Factura_\udcf1.pdf"
    assert display_name(name) == "Factura_ñ.pdf"
    assert display_name(os.fsdecode(b"a\xc3\xb1o_\xf1.pdf")) == "año_ñ.pdf"  # mixed: per byte
    assert display_name(os.fsdecode(b"\x81.pdf")) == "\ufffd.pdf"  # undefined in cp1252
    assert display_name("recibo_ñandú_€.pdf") == "recibo_ñandú_€.pdf"


def test_a_non_utf8_name_is_stored_losslessly_in_sqlite(tmp_path: Path) -> None:
    name = os.fsdecode(b"inbox/Factura_\xf1.pdf")
    db = sqlite3.connect(tmp_path / "t.db")
    db.execute("CREATE TABLE jobs (location TEXT NOT NULL)")
    with pytest.raises(UnicodeEncodeError):  # what the store did with the name before
        db.execute("INSERT INTO jobs VALUES (?)", (name,))
    db.execute("INSERT INTO jobs VALUES (?)", (storable(name),))
    db.execute("INSERT INTO jobs VALUES (?)", (storable("inbox/plain.pdf"),))
    rows = [from_storable(v) for (v,) in db.execute("SELECT location FROM jobs")]
    assert rows == [name, "inbox/plain.pdf"]
    assert db.execute("SELECT typeof(location) FROM jobs").fetchall() == [("blob",), ("text",)]
    found = db.execute("SELECT count(*) FROM jobs WHERE location = ?", (storable(name),))
    assert found.fetchone() == (1,)


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"/" not in b and b"\0" not in b))
def test_any_name_displays_and_round_trips(raw: bytes) -> None:
    name = os.fsdecode(raw)
    shown = display_name(name)
    assert not any("\ud800" <= ch <= "\udfff" for ch in shown)
    shown.encode("utf-8")  # writable into JSON, logs, folder names
    assert from_storable(storable(name)) == name
    with contextlib.suppress(UnicodeDecodeError):  # a valid UTF-8 name shows as itself
        assert shown == raw.decode("utf-8")


def _capture(outcome: list[BaseException], fn, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*args).close()
    except BaseException as exc:
        outcome.append(exc)


def _unblock(fifo: Path) -> None:
    """Open the writing end so that a reader stuck in open() returns."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def _patch_os(monkeypatch: pytest.MonkeyPatch, **overrides: object) -> None:
    """docfile sees an ``os`` with these functions replaced; the rest of the process
    (pytest included) keeps the real ones."""
    fake = types.SimpleNamespace(**{n: getattr(os, n) for n in dir(os) if not n.startswith("__")})
    for name, value in overrides.items():
        setattr(fake, name, value)
    monkeypatch.setattr(docfile, "os", fake)


def _bind_socket(path: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(path))
    sock.close()
