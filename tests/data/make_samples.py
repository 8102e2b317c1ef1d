"""Regenerates the sample documents in this folder (run by hand; the tests read the files).

    .venv/bin/python tests/data/make_samples.py

``certificate-encrypted.pdf`` needs the ``openssl`` command; the legacy Office samples
need LibreOffice (``soffice``). Each file is written only when its tool is found.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from mockserver.samples import receipt_lines  # noqa: E402


def rc4(key: bytes, data: bytes) -> bytes:
    s = list(range(256))
    j = 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def certificate_encrypted_pdf(target: Path) -> None:
    """A one-page receipt encrypted for one recipient's certificate, the way Acrobat's
    "Encrypt with Certificate" does it (PDF 1.7, 7.6.4 Public-Key Security Handlers:
    /Filter /Adobe.PubSec, /SubFilter /adbe.pkcs7.s4, RC4 128-bit; the file key is
    SHA-1 of the 20-byte seed and the recipient's PKCS#7 envelope)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                work / "key.pem",
                "-out",
                work / "cert.pem",
                "-subj",
                "/CN=docinbox test recipient",
                "-days",
                "36500",
            ],
            check=True,
            capture_output=True,
        )
        seed = hashlib.sha256(b"docinbox sample seed").digest()[:20]
        permissions = (0xFFFFFFFC).to_bytes(4, "little")
        (work / "seed.bin").write_bytes(seed + permissions)
        subprocess.run(
            [
                "openssl",
                "smime",
                "-encrypt",
                "-binary",
                "-aes128",
                "-outform",
                "DER",
                "-in",
                work / "seed.bin",
                "-out",
                work / "envelope.der",
                work / "cert.pem",
            ],
            check=True,
            capture_output=True,
        )
        envelope = (work / "envelope.der").read_bytes()
    file_key = hashlib.sha1(seed + envelope).digest()[:16]

    def object_key(number: int) -> bytes:
        return hashlib.md5(file_key + number.to_bytes(3, "little") + b"\0\0").digest()[:16]

    ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 770 Td"]
    ops += [b"(" + line.encode("latin-1") + b") Tj T*" for line in receipt_lines()]
    ops.append(b"ET")
    content = rc4(object_key(4), b"\n".join(ops))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        4: b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        5: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        6: b"<< /Filter /Adobe.PubSec /SubFilter /adbe.pkcs7.s4 /V 2 /Length 128 "
        b"/Recipients [<" + envelope.hex().encode() + b">] >>",
    }
    out = bytearray(b"%PDF-1.6\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number, body in objects.items():
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offsets[n] for n in sorted(objects))
    file_id = hashlib.md5(bytes(out)).hexdigest().encode()
    out += (
        b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 6 0 R /ID [<%s> <%s>] >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (len(objects) + 1, file_id, file_id, xref)
    )
    target.write_bytes(bytes(out))


def legacy_office(target_dir: Path) -> None:
    """A small Word 97 and Excel 97 file, converted by LibreOffice. (Its PowerPoint 97
    export carries ~450 KB of masters and fonts even for one slide, so the PowerPoint case
    is a synthetic container made by the tests.)"""
    soffice = shutil.which("soffice")
    if soffice is None:
        print("soffice not found: legacy Office samples not regenerated")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        text = "\n".join(receipt_lines())
        (work / "receipt.txt").write_text(text, encoding="utf-8")
        (work / "receipt.csv").write_text(
            "descripcion,cantidad\nGasoil,50L\nAceite,1L\n", encoding="utf-8"
        )
        env_home = ["-env:UserInstallation=file://" + str(work / "profile")]
        for source, fmt, name in (
            ("receipt.txt", "doc:MS Word 97", "receipt.doc"),
            ("receipt.csv", "xls:MS Excel 97", "receipt.xls"),
        ):
            subprocess.run(
                [
                    soffice,
                    *env_home,
                    "--headless",
                    "--convert-to",
                    fmt,
                    "--outdir",
                    work,
                    work / source,
                ],
                check=True,
                capture_output=True,
            )
            shutil.copyfile(
                work / Path(source).with_suffix(Path(name).suffix).name, target_dir / name
            )


if __name__ == "__main__":
    if shutil.which("openssl"):
        certificate_encrypted_pdf(HERE / "certificate-encrypted.pdf")
    else:
        print("openssl not found: certificate-encrypted.pdf not regenerated")
    legacy_office(HERE)
