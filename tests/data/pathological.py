"""Hostile and odd documents made on the fly: PDFs built to exhaust readers, and legacy
Office (OLE compound file) containers. Small on disk; the tests make them in tmp_path."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping

PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"
CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"


def pdf(objects: Mapping[int, bytes], *, xref: bool = True, trailer: bytes = b"") -> bytes:
    """A PDF with these numbered objects (1 is the catalog). Without *xref* the
    cross-reference table is left out and ``startxref`` points nowhere, so a reader has
    to rebuild it by scanning every object."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    size = max(objects) + 1
    if not xref:
        out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n123\n%%%%EOF\n" % size
        return bytes(out)
    start = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (
            b"%010d 00000 n \n" % offsets[number] if number in offsets else b"0000000000 65535 f \n"
        )
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        size,
        trailer,
        start,
    )
    return bytes(out)


def pages_pdf(count: int) -> bytes:
    objects = {1: CATALOG}
    kids = []
    for i in range(count):
        objects[3 + i] = PAGE
        kids.append(b"%d 0 R" % (3 + i))
    objects[2] = b"<< /Type /Pages /Kids [" + b" ".join(kids) + b"] /Count %d >>" % count
    return pdf(objects)


def deep_page_tree(depth: int = 2000) -> bytes:
    """Page-tree nodes nested *depth* levels (pypdf stops at 100)."""
    objects = {1: CATALOG}
    for level in range(depth):
        objects[2 + level] = b"<< /Type /Pages /Kids [%d 0 R] >>" % (3 + level)
    objects[2 + depth] = b"<< /Type /Page /MediaBox [0 0 1 1] >>"
    return pdf(objects)


def page_tree_loop() -> bytes:
    """A page-tree node that is its own kid, and no usable /Count."""
    return pdf({1: CATALOG, 2: b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count /Oops >>", 3: PAGE})


def self_reference() -> bytes:
    """The page tree is an indirect reference to itself."""
    return pdf({1: CATALOG, 2: b"2 0 R"})


def fan_out(width: int = 3000, depth: int = 2) -> bytes:
    """Each node lists the same child *width* times: width**depth pages by reference."""
    objects = {1: CATALOG}
    for level in range(depth):
        objects[2 + level] = (
            b"<< /Type /Pages /Kids [" + b" ".join([b"%d 0 R" % (3 + level)] * width) + b"] >>"
        )
    objects[2 + depth] = PAGE
    return pdf(objects)


def xref_stream_pdf(
    objects: Mapping[int, bytes],
    compressed: Mapping[int, tuple[int, int]] = {},
    *,
    widths: tuple[int, ...] = (1, 4, 2),
) -> bytes:
    """A PDF 1.5 file whose cross references are a stream (/W *widths*); *compressed*
    maps an object number to (object stream number, index) for objects stored inside an
    object stream."""
    out = bytearray(b"%PDF-1.7\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref_number = max([*objects, *compressed]) + 1
    rows = bytearray()
    pack = ">" + "".join({1: "B", 2: "H", 4: "I"}[w] for w in widths)
    for number in range(xref_number + 1):
        if number in offsets:
            fields = (1, offsets[number], 0)
        elif number in compressed:
            fields = (2, *compressed[number])
        elif number == xref_number:
            fields = (1, len(out), 0)
        else:
            fields = (0, 0, 0)
        rows += struct.pack(pack, *fields[: len(widths)])
    start = len(out)
    out += (
        b"%d 0 obj\n<< /Type /XRef /Size %d /W [%s] /Root 1 0 R /Length %d >>\nstream\n"
        % (xref_number, xref_number + 1, b" ".join(b"%d" % w for w in widths), len(rows))
        + rows
        + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % start
    )
    return bytes(out)


def object_stream_bomb(megabytes: int = 200) -> bytes:
    """The page tree sits in an object stream that inflates to *megabytes* (1 MB on disk
    per 1,000 MB); pypdf stops at 75 MB."""
    squeeze = zlib.compressobj(9)
    head = b"2 0 "
    data = squeeze.compress(head + b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    data += b"".join(squeeze.compress(b" " * (1 << 20)) for _ in range(megabytes))
    data += squeeze.flush()
    stream = (
        b"<< /Type /ObjStm /N 1 /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(head), len(data))
        + data
        + b"\nendstream"
    )
    return xref_stream_pdf({1: CATALOG, 3: PAGE, 4: stream}, {2: (4, 0)})


def xref_stream_short_widths() -> bytes:
    """A cross-reference stream with two field widths instead of three (pypdf asserts)."""
    return xref_stream_pdf(
        {1: CATALOG, 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", 3: PAGE}, widths=(1, 4)
    )


def compressed_in_a_non_object_stream() -> bytes:
    """The page tree is said to live in object 4's object stream, but object 4 is a page."""
    return xref_stream_pdf({1: CATALOG, 3: PAGE, 4: PAGE}, {2: (4, 0)})


def many_objects_without_xref(count: int = 100_000) -> bytes:
    """No cross-reference table and *count* tiny objects: pypdf rebuilds the table by
    parsing every one of them, in pure Python (~25 µs each)."""
    objects = {1: CATALOG, 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", 3: PAGE}
    for i in range(count):
        objects[4 + i] = b"<< /A 1 >>"
    return pdf(objects, xref=False)


def no_eof_marker(megabytes: int = 50) -> bytes:
    """A PDF header and then nothing a reader can use (a download cut short)."""
    return b"%PDF-1.4\n" + bytes(range(256)) * (megabytes * 4096)


PATHOLOGICAL = {
    "deep page tree": deep_page_tree,
    "page tree loop": page_tree_loop,
    "self reference": self_reference,
    "fan-out": fan_out,
    "object stream bomb": object_stream_bomb,
    "short xref widths": xref_stream_short_widths,
    "bad object stream": compressed_in_a_non_object_stream,
    "no end marker": no_eof_marker,
}


# --- OLE compound files ([MS-CFB]) ----------------------------------------------------------

FREESECT, ENDOFCHAIN, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def _entry(
    name: str, kind: int, left: int = NOSTREAM, right: int = NOSTREAM, child: int = NOSTREAM
) -> bytes:
    encoded = name.encode("utf-16-le") + b"\0\0"
    return (
        encoded.ljust(64, b"\0")
        + struct.pack("<HBB", len(encoded), kind, 1)
        + struct.pack("<III", left, right, child)
        + b"\0" * 36
        + struct.pack("<IQ", ENDOFCHAIN, 0)
    )


def cfb(
    streams: Iterable[str],
    *,
    storages: Iterable[str] = (),
    shift: int = 9,
    dir_loop: bool = False,
    sibling_loop: bool = False,
) -> bytes:
    """A minimal, valid compound file whose root holds empty streams (and storages) with
    these names: what Word, Excel and PowerPoint files are told apart by. Sector 0 is the
    FAT; the directory follows. Damaged variants: *dir_loop* chains the directory's last
    sector back to its first and points the last sibling past the end (a reader must
    follow the loop to find it); *sibling_loop* points the last sibling back at the first.
    """
    sector = 1 << shift
    names = [(n, 2) for n in streams] + [(n, 1) for n in storages]
    entries = [b""]  # the root, filled below
    # Root's children as a right-leaning chain of siblings (a valid, if unbalanced, tree).
    for i, (name, kind) in enumerate(names, start=1):
        last = i == len(names)
        right = i + 1 if not last else NOSTREAM
        if last and dir_loop:
            right = len(names) + 64
        elif last and sibling_loop:
            right = 1
        entries.append(_entry(name, kind, right=right))
    entries[0] = _entry("Root Entry", 5, child=1 if names else NOSTREAM)
    directory = b"".join(entries)
    directory += b"\0" * (-len(directory) % sector)
    dir_sectors = len(directory) // sector
    fat = [FATSECT]
    for i in range(dir_sectors):
        fat.append(2 + i if i + 1 < dir_sectors else ENDOFCHAIN)
    if dir_loop:
        fat[dir_sectors] = 1  # the last directory sector chains back to the first
    fat += [FREESECT] * (sector // 4 - len(fat))
    header = bytearray(512)
    header[0:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3 if shift == 9 else 4, 0xFFFE, shift, 6)
    struct.pack_into("<IIIIIIII", header, 0x2C, 1, 1, 0, 0x1000, ENDOFCHAIN, 0, ENDOFCHAIN, 0)
    difat = [0] + [FREESECT] * 108
    struct.pack_into("<109I", header, 0x4C, *difat)
    out = bytes(header).ljust(sector, b"\0")
    return out + struct.pack(f"<{sector // 4}I", *fat) + directory
