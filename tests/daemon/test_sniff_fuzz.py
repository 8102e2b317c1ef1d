"""Fuzzing intake and inspection: every input gets an outcome, in bounded time, and a good
document beside it is admitted and inspected as if it were alone.

Inputs: real documents mutated the ways damaged files come (byte flips, truncations,
deleted ranges, PDF tokens dropped in, objects spliced from another file), random bytes
behind each known magic number, and inbox entries of every kind under arbitrary
(non-UTF-8) names. Hypothesis runs derandomized (a fixed seed) with bounded examples,
so CI sees the same inputs every time, in seconds.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import time
from pathlib import Path

import pypdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon import sniff
from daemon.admission import Admitted, Refused, admit
from daemon.errors import DocumentError, InternalDocumentError
from daemon.sniff import DocumentInfo
from daemon.watcher import IgnoreRules
from mockserver.samples import multipage_pdf, pdf_bytes, receipt_pdf
from tests.data import pathological

DATA = Path(__file__).resolve().parents[1] / "data"
IGNORE = IgnoreRules()
#: No single input may take longer than this in-process (the helper's own ceiling is
#: tested in test_sniff_router); the slowest mutated input seen takes well under 1 s.
BOUND = 10.0

FUZZ = settings(
    derandomize=True,  # a fixed seed: the same inputs in every run
    database=None,
    deadline=None,  # time is asserted per input, against BOUND
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)


def _rewritten(data: bytes, *, password: str | None = None) -> bytes:
    writer = pypdf.PdfWriter(clone_from=io.BytesIO(data))
    for page in writer.pages:
        page.compress_content_streams()  # FlateDecode streams to mutate
    if password is not None:
        writer.encrypt(user_password=password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


SEEDS: list[bytes] = [
    receipt_pdf(),
    multipage_pdf(3),
    pdf_bytes([["Fecha 01/02/2026", "Total 12.00"]], title="Factura (copia)"),
    _rewritten(multipage_pdf(2)),
    _rewritten(receipt_pdf(), password=""),  # owner password only: opens
    pathological.xref_stream_pdf(
        {
            1: pathological.CATALOG,
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: pathological.PAGE,
        }
    ),
    (DATA / "certificate-encrypted.pdf").read_bytes(),
    (DATA / "receipt.doc").read_bytes(),
    (DATA / "receipt.xls").read_bytes(),
    pathological.cfb(["Current User", "PowerPoint Document"]),
]
TOKENS = [
    b"R",
    b"0",
    b"-1",
    b"99999999999",
    b"<<",
    b">>",
    b"[",
    b"]",
    b"/Count",
    b"/Kids",
    b"/Pages",
    b"/Type /Pages",
    b"obj",
    b"endobj",
    b"stream",
    b"endstream",
    b"(",
    b")",
    b"xref",
    b"trailer",
    b"startxref",
    b"%%EOF",
    b"/Filter /FlateDecode",
    b"/Length 0",
    b"/Encrypt 1 0 R",
    b"/ObjStm",
    b"/Prev 0",
    b"1 0 R",
    b"3 0 obj",
    b"\\",
]
MAGIC = [
    b"%PDF-1.7\n",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
    b"PK\x03\x04",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"II*\x00",
    b"MM\x00*",
    b"GIF89a",
    b"BM",
    b"RIFF\0\0\0\0WEBP",
    b"[InternetShortcut]\n",
    b"bplist00",
    b"<?xml version='1.0'?><plist>",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        if len(data) < 2:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "truncate", "delete", "token", "splice", "repeat"]))
        if op == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[at:]
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif op == "token":
            data[at:at] = b" " + draw(st.sampled_from(TOKENS)) + b" "
        elif op == "splice":  # an object (or any slice) from another file dropped in
            other = draw(st.sampled_from(SEEDS))
            start = draw(st.integers(0, len(other) - 1))
            data[at:at] = other[start : start + draw(st.integers(1, 400))]
        else:  # a range repeated: duplicated objects, doubled tables
            chunk = data[at : at + draw(st.integers(1, 200))]
            data[at:at] = chunk * draw(st.integers(1, 20))
    return bytes(data)


random_documents = st.builds(
    lambda magic, tail: magic + tail, st.sampled_from(MAGIC), st.binary(max_size=3000)
)


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "inbox"
    folder.mkdir()
    return folder


GOOD = receipt_pdf(total="77.70")
GOOD_SHA = hashlib.sha256(GOOD).hexdigest()


def _outcome_of_inspect(path: Path) -> DocumentInfo | DocumentError:
    started = time.monotonic()
    try:
        outcome: DocumentInfo | DocumentError = sniff.inspect(path)
    except DocumentError as exc:  # anything else fails the test: it would escape the engine
        outcome = exc
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"inspect took {elapsed:.1f} s"
    assert not isinstance(outcome, InternalDocumentError), outcome.message  # a bug of ours
    if isinstance(outcome, DocumentError):
        outcome.message.encode("utf-8")
        assert outcome.hint
    return outcome


def _check(inbox: Path, data: bytes, name: str = "fuzzed.pdf") -> None:
    """The fuzzed file and a good document side by side, as in one admission batch."""
    for entry in inbox.iterdir():
        entry.unlink()
    bad, good = inbox / name, inbox / "good.pdf"
    bad.write_bytes(data)
    good.write_bytes(GOOD)
    outcomes = [admit(path, inbox, IGNORE) for path in (bad, good)]
    assert isinstance(outcomes[0], Admitted)  # a readable regular file is always admitted
    assert outcomes[0].sha256 == hashlib.sha256(data).hexdigest()
    assert outcomes[1] == Admitted(
        "good.pdf", str(good), GOOD_SHA, len(GOOD), good.stat().st_mtime_ns
    )
    _outcome_of_inspect(bad)
    assert _outcome_of_inspect(good) == DocumentInfo("pdf", 1)


@settings(FUZZ, max_examples=1000)
@given(data=mutated())
def test_mutated_documents(inbox: Path, data: bytes) -> None:
    _check(inbox, data)


@settings(FUZZ, max_examples=300)
@given(data=random_documents)
def test_random_bytes_behind_every_magic_number(inbox: Path, data: bytes) -> None:
    _check(inbox, data, name="random.bin")


ENTRY_KINDS = ["file", "empty", "fifo", "dangling", "loop", "outside", "inside", "folder", "device"]
names = st.binary(min_size=1, max_size=30).filter(
    lambda b: (
        b"/" not in b and b"\0" not in b and not b.startswith(b".") and b not in (b"good.pdf",)
    )
)


@settings(FUZZ, max_examples=200)
@given(kind=st.sampled_from(ENTRY_KINDS), raw=names)
def test_any_entry_under_any_name(
    tmp_path_factory: pytest.TempPathFactory, kind: str, raw: bytes
) -> None:
    root = tmp_path_factory.mktemp("entries")
    inbox = root / "inbox"
    inbox.mkdir()
    good = inbox / "good.pdf"
    good.write_bytes(GOOD)
    entry = Path(os.fsdecode(os.fsencode(inbox) + b"/" + raw))
    if kind == "file":
        entry.write_bytes(receipt_pdf())
    elif kind == "empty":
        entry.write_bytes(b"")
    elif kind == "fifo":
        os.mkfifo(entry)
    elif kind == "dangling":
        entry.symlink_to(inbox / "missing")
    elif kind == "loop":
        entry.symlink_to(entry)
    elif kind == "outside":
        (root / "secret.pdf").write_bytes(b"%PDF-1.4 secret")
        entry.symlink_to(root / "secret.pdf")
    elif kind == "inside":
        entry.symlink_to(good)
    elif kind == "folder":
        entry.mkdir()
    else:
        entry.symlink_to("/dev/null")

    started = time.monotonic()
    outcome = admit(entry, inbox, IGNORE)
    assert time.monotonic() - started < BOUND
    ignored = IGNORE.ignored(entry.relative_to(inbox).as_posix())
    if ignored or kind == "folder":
        assert outcome is None
    elif kind in ("file", "empty", "inside"):
        assert isinstance(outcome, Admitted)
        assert outcome.location == str(entry) and outcome.display.encode("utf-8")
        info = _outcome_of_inspect(Path(outcome.location))
        assert info == DocumentInfo("pdf", 1) or kind == "empty"
    else:
        assert isinstance(outcome, Refused), (kind, outcome)
        assert not isinstance(outcome.error, InternalDocumentError)
        outcome.error.message.encode("utf-8")
        assert outcome.display.encode("utf-8")
    assert admit(good, inbox, IGNORE) == Admitted(
        "good.pdf", str(good), GOOD_SHA, len(GOOD), good.stat().st_mtime_ns
    )
    shutil.rmtree(root)


def test_fuzzed_documents_through_the_helper(tmp_path: Path) -> None:
    """The same kind of inputs through the inspection helper: each answer is a
    DocumentInfo or a DocumentError, the good document between them is always read
    right, and the helper is not restarted by anything but a ceiling."""
    rng = random.Random(20260112)
    good = tmp_path / "good.pdf"
    good.write_bytes(GOOD)
    with sniff.Inspector(timeout=BOUND) as inspector:
        for i in range(100):
            data = bytearray(rng.choice(SEEDS))
            for _ in range(rng.randint(1, 5)):
                at = rng.randrange(len(data))
                if rng.random() < 0.6:
                    data[at] ^= rng.randrange(1, 256)
                elif rng.random() < 0.5:
                    del data[at : at + rng.randint(1, 64)]
                else:
                    data[at:at] = b" " + rng.choice(TOKENS) + b" "
            doc = tmp_path / f"fuzzed-{i}.pdf"
            doc.write_bytes(bytes(data))
            try:
                outcome: object = inspector.inspect(doc)
            except DocumentError as exc:
                outcome = exc
            assert isinstance(outcome, DocumentInfo | DocumentError)
            assert not isinstance(outcome, InternalDocumentError), outcome
            assert inspector.inspect(good) == DocumentInfo("pdf", 1)
        assert inspector.starts <= 3
