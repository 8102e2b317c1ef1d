"""Small, real documents for tests, demos and benchmarks.

A tiny PDF writer (Helvetica text, one content stream per page) so the suite can
make documents with a genuine text layer without a PDF library: pypdf reads the
text back exactly as the mock's demo model expects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _latin1(text: str) -> bytes:
    return text.encode("latin-1", errors="replace")


def pdf_bytes(
    pages: Sequence[Sequence[str]], *, title: str | None = None, padding: int = 0
) -> bytes:
    """A PDF with one page per item of *pages*, each a list of text lines.

    *padding* adds that many bytes of comment after the header: a valid PDF of any size,
    for limit tests."""
    if not pages:
        raise ValueError("a PDF needs at least one page")
    objects: list[bytes] = []  # object n is objects[n - 1]

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled once the page tree is known
    tree = add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    kids = []
    for lines in pages:
        ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 770 Td"]
        for line in lines:
            ops.append(b"(" + _latin1(_escape(line)) + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (tree, font, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    info = add(b"<< /Title (" + _latin1(_escape(title)) + b") >>") if title else None
    return _serialize(objects, catalog, info, padding)


def table_pdf(
    rows: Sequence[Sequence[str]] = (
        ("Producto", "Unidades", "Precio"),
        ("Gasoil", "50", "1.45"),
        ("AdBlue", "10", "0.80"),
    ),
    *,
    before: Sequence[str] = ("Informe de consumo", "Tabla 1: Consumo por producto"),
    after: Sequence[str] = ("Fin del informe",),
    pages_before: int = 0,
) -> bytes:
    """A PDF whose last page holds a real table layout: each cell drawn as its own text
    run at its column's x on the row's baseline (as a table exported to PDF is), between
    the lines *before* and *after*; *pages_before* plain pages come first.  The first row
    is the header.  The MinerU mock finds the table in it (``type: table`` in the
    content list, an HTML ``table_body``)."""
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog, tree = add(b""), add(b"")
    font = add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    contents: list[bytes] = []
    for n in range(1, pages_before + 1):
        contents.append(b"BT /F1 12 Tf 72 770 Td (Page %d) Tj ET" % n)
    contents.append(_table_page(rows, before, after))
    kids = []
    for stream in contents:
        content = add(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
        kids.append(
            add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                % (tree, font, content)
            )
        )
    objects[catalog - 1] = b"<< /Type /Catalog /Pages %d 0 R >>" % tree
    objects[tree - 1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    return _serialize(objects, catalog, None, 0)


def _table_page(
    rows: Sequence[Sequence[str]], before: Sequence[str], after: Sequence[str]
) -> bytes:
    """The table page's content stream: one text run per cell, placed by its own text
    matrix, so that the columns exist only as x positions, as in an exported table."""
    ops = [b"BT", b"/F1 12 Tf"]
    y = 770
    for line in before:
        ops.append(b"1 0 0 1 72 %d Tm (%s) Tj" % (y, _latin1(_escape(line))))
        y -= 20
    for row in rows:
        for col, cell in enumerate(row):
            ops.append(b"1 0 0 1 %d %d Tm (%s) Tj" % (72 + 150 * col, y, _latin1(_escape(cell))))
        y -= 20
    y -= 10
    for line in after:
        ops.append(b"1 0 0 1 72 %d Tm (%s) Tj" % (y, _latin1(_escape(line))))
        y -= 20
    ops.append(b"ET")
    return b"\n".join(ops)


def _serialize(objects: list[bytes], catalog: int, info: int | None, padding: int) -> bytes:
    """The file: header, the numbered objects, the cross-reference table, the trailer."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    if padding > 0:
        out += b"%" + b" " * max(0, padding - 2) + b"\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer = b"<< /Size %d /Root %d 0 R" % (len(objects) + 1, catalog)
    if info:
        trailer += b" /Info %d 0 R" % info
    out += b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def receipt_lines(
    fecha: str = "23/12/2025",
    total: str = "45.99",
    lineas: Iterable[tuple[str, str]] = (("Gasoil", "50L"),),
    *,
    vendor: str = "Estacion de Servicio Demo",
) -> list[str]:
    lines = [vendor, f"Fecha: {fecha}", "lineas_detalle"]
    lines += [f"{desc} {qty}" for desc, qty in lineas]
    lines.append(f"Total: {total}")
    return lines


def receipt_pdf(
    fecha: str = "23/12/2025",
    total: str = "45.99",
    lineas: Iterable[tuple[str, str]] = (("Gasoil", "50L"),),
    *,
    vendor: str = "Estacion de Servicio Demo",
) -> bytes:
    """The one-page fuel receipt the demo model knows how to read."""
    return pdf_bytes([receipt_lines(fecha, total, lineas, vendor=vendor)], title="recibo")


def multipage_pdf(pages: int, *, words: str = "Page") -> bytes:
    """A document of *pages* pages, each with a heading and a line of text."""
    return pdf_bytes(
        [[f"{words} {n}", f"This is page {n} of {pages}."] for n in range(1, pages + 1)]
    )
