"""admit(): each offered file gets its own outcome; nothing in one path can raise into the
batch it came with."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
import types
from pathlib import Path

import pytest

from daemon import admission, docfile
from daemon.admission import Admitted, Refused, admit
from daemon.docfile import display_name, from_storable, storable
from daemon.errors import (
    InternalDocumentError,
    UnreadableDocument,
    UnsupportedDocument,
)
from daemon.watcher import IgnoreRules
from mockserver.samples import receipt_pdf

IGNORE = IgnoreRules()


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_a_document_is_admitted_with_its_hash(inbox: Path) -> None:
    data = receipt_pdf()
    (inbox / "march").mkdir()
    doc = inbox / "march" / "recibo.pdf"
    doc.write_bytes(data)
    outcome = admit(doc, inbox, IGNORE)
    assert outcome == Admitted(
        "march/recibo.pdf",
        str(doc),
        hashlib.sha256(data).hexdigest(),
        len(data),
        doc.stat().st_mtime_ns,
    )


def test_a_non_utf8_name_is_admitted(inbox: Path) -> None:
    """b'Factura_\\xf1.pdf' (cp1252, from an old zip or USB stick) is a document like any
    other: admitted under its real name, shown readably, storable in SQLite."""
    raw = os.fsencode(inbox) + b"/Factura_\xf1.pdf"
    with open(raw, "wb") as fh:
        fh.write(receipt_pdf())
    offered = Path(os.fsdecode(raw))  # what the watcher hands over
    outcome = admit(offered, inbox, IGNORE)
    assert isinstance(outcome, Admitted)
    assert outcome.rel_path == "Factura_\udcf1.pdf" and outcome.display == "Factura_ñ.pdf"
    assert os.fsencode(outcome.location) == raw  # opens the very file
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE jobs (rel_path TEXT, location TEXT)")
    db.execute(
        "INSERT INTO jobs VALUES (?, ?)", (storable(outcome.rel_path), storable(outcome.location))
    )
    ((rel, loc),) = db.execute("SELECT rel_path, location FROM jobs")
    assert (from_storable(rel), from_storable(loc)) == (outcome.rel_path, outcome.location)


def test_one_batch_of_strange_entries_each_gets_its_own_outcome(
    inbox: Path, tmp_path: Path
) -> None:
    good = inbox / "good.pdf"
    good.write_bytes(receipt_pdf())
    outside = tmp_path / "private.pdf"
    outside.write_bytes(b"%PDF- secret")
    (inbox / "loop.pdf").symlink_to(inbox / "loop.pdf")
    (inbox / "ping.pdf").symlink_to(inbox / "pong.pdf")
    (inbox / "pong.pdf").symlink_to(inbox / "ping.pdf")
    (inbox / "dangling.pdf").symlink_to(inbox / "nothing-here.pdf")
    (inbox / "escape.pdf").symlink_to(outside)
    (inbox / "inside.pdf").symlink_to(good)
    (inbox / "to-folder.pdf").symlink_to(tmp_path)
    (inbox / "null.pdf").symlink_to("/dev/null")
    os.mkfifo(inbox / "fifo.pdf")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.fspath(inbox / "socket.pdf"))
    sock.close()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "b.pdf").write_bytes(b"%PDF- secret too")
    (inbox / "linked-folder").symlink_to(tmp_path / "elsewhere")
    (inbox / "sub").mkdir()
    (inbox / "~$lock.docx").write_bytes(b"owner")

    names = [
        "good.pdf",
        "loop.pdf",
        "ping.pdf",
        "dangling.pdf",
        "escape.pdf",
        "inside.pdf",
        "to-folder.pdf",
        "null.pdf",
        "fifo.pdf",
        "socket.pdf",
        "linked-folder/b.pdf",
        "sub",
        "~$lock.docx",
        "gone.pdf",
    ]
    outcomes = {name: admit(inbox / name, inbox, IGNORE) for name in names}

    assert isinstance(outcomes["good.pdf"], Admitted)
    inside = outcomes["inside.pdf"]
    assert isinstance(inside, Admitted) and inside.sha256 == outcomes["good.pdf"].sha256
    expected = {
        "loop.pdf": "a symbolic link that loops",
        "ping.pdf": "a symbolic link that loops",
        "dangling.pdf": "a symbolic link to something that does not exist",
        "escape.pdf": "leads outside the inbox",
        "to-folder.pdf": "a symbolic link to a folder",
        "null.pdf": "is a device",
        "fifo.pdf": "is a FIFO",
        "socket.pdf": "is a socket",
        "linked-folder/b.pdf": "leads outside the inbox",
    }
    for name, words in expected.items():
        outcome = outcomes[name]
        assert isinstance(outcome, Refused), name
        assert isinstance(outcome.error, UnsupportedDocument), name
        assert words in outcome.error.message, (name, outcome.error.message)
        assert outcome.rel_path == name and outcome.location == str(inbox / name)
    assert outcomes["sub"] is None and outcomes["~$lock.docx"] is None
    assert outcomes["gone.pdf"] is None


def test_a_refused_link_keeps_the_link_s_own_size_and_time(inbox: Path) -> None:
    (inbox / "dangling.pdf").symlink_to(inbox / "nothing.pdf")
    outcome = admit(inbox / "dangling.pdf", inbox, IGNORE)
    st = os.lstat(inbox / "dangling.pdf")
    assert isinstance(outcome, Refused)
    assert (outcome.size, outcome.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_an_unreadable_file_is_refused(inbox: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = inbox / "locked.pdf"
    doc.write_bytes(receipt_pdf())

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    fake_os = types.SimpleNamespace(
        **{n: getattr(os, n) for n in dir(os) if not n.startswith("__")}
    )
    fake_os.open = denied  # tests may run as root, who can read anything
    monkeypatch.setattr(docfile, "os", fake_os)
    outcome = admit(doc, inbox, IGNORE)
    assert isinstance(outcome, Refused) and isinstance(outcome.error, UnreadableDocument)
    assert "permission denied" in outcome.error.message
    assert outcome.size == len(receipt_pdf())


def test_a_file_still_being_written_is_left_for_later(
    inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = inbox / "scan.pdf"
    doc.write_bytes(b"%PDF-" + b"x" * (2 * docfile.HASH_CHUNK))
    real = hashlib.sha256

    def sha256_while_the_scanner_writes() -> object:
        with doc.open("ab") as fh:
            fh.write(b"next page")
        return real()

    monkeypatch.setattr(
        docfile, "hashlib", types.SimpleNamespace(sha256=sha256_while_the_scanner_writes)
    )
    assert admit(doc, inbox, IGNORE) is None


def test_an_unexpected_exception_refuses_only_that_file(
    inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = os.fsdecode(b"bug_\xf1.pdf")
    (inbox / name).write_bytes(b"%PDF-")

    def broken(path: object) -> tuple[str, int, int]:
        raise RuntimeError(f"unexpected trouble with {path}")

    monkeypatch.setattr(admission, "sha256_of", broken)
    outcome = admit(inbox / name, inbox, IGNORE)
    assert isinstance(outcome, Refused)
    assert isinstance(outcome.error, InternalDocumentError)
    assert outcome.error.code == "internal" and "bug" in outcome.error.hint
    assert outcome.rel_path == name
    assert "bug_ñ.pdf" in outcome.error.message and "RuntimeError" in outcome.error.message
    outcome.error.message.encode("utf-8")  # no surrogates reach the error file


def test_paths_outside_the_inbox_and_ignored_names(inbox: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.pdf"
    other.write_bytes(b"%PDF-")
    assert admit(other, inbox, IGNORE) is None
    (inbox / ".hidden.pdf").write_bytes(b"%PDF-")
    (inbox / "a.pdf.part").write_bytes(b"%PDF-")
    assert admit(inbox / ".hidden.pdf", inbox, IGNORE) is None
    assert admit(inbox / "a.pdf.part", inbox, IGNORE) is None


def test_display_of_outcomes() -> None:
    name = os.fsdecode(b"x_\xe9.pdf")
    refused = Refused(name, "/inbox/" + name, 0, 0, UnsupportedDocument("no"))
    assert refused.display == display_name(name) == "x_é.pdf"
