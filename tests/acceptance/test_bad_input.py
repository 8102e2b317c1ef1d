"""One bad file never stops the rest (issue 12): hostile and odd inputs dropped beside a
good receipt into a running `docinbox run`."""

from __future__ import annotations

import json
import os

from tests.acceptance.conftest import REPO, Workspace, receipt, wait_for

DATA = REPO / "tests" / "data"


def error_of(ws: Workspace, name: str) -> dict:
    return dict(json.loads((ws.failed / f"{name}.error.json").read_text("utf-8")))


def test_hostile_inputs_fail_alone_and_the_receipt_beside_them_is_done(
    workspace: Workspace,
) -> None:
    ws = workspace
    daemon = ws.start()
    daemon.wait_ready()
    ws.inbox.mkdir(exist_ok=True)
    ws.drop("certificado.pdf", (DATA / "certificate-encrypted.pdf").read_bytes())
    os.mkfifo(ws.inbox / "tubo.pdf")  # a FIFO named like a document
    os.symlink("bucle.pdf", ws.inbox / "bucle.pdf")  # a link to itself
    latin1 = os.fsencode(str(ws.inbox)) + b"/Factura_\xf1.pdf"  # from an old USB stick
    with open(latin1, "wb") as fh:
        fh.write(receipt(total="12.34"))
    ws.drop("recibo.pdf", receipt())

    wait_for(lambda: (ws.outbox / "recibo" / "result.json").exists(), 60, "the good receipt")
    wait_for(
        lambda: (ws.outbox / "Factura_ñ" / "result.json").exists(),
        60,
        "the receipt with a name that is not UTF-8",
    )
    assert ws.result("Factura_ñ")["source"]["name"] == "Factura_ñ.pdf"
    # The original leaves the inbox once its result is in place: a moment after.
    archived = os.fsencode(str(ws.archive)) + b"/Factura_\xf1.pdf"  # its bytes kept
    wait_for(lambda: os.path.exists(archived), 30, "the original archived under its own name")

    wait_for(lambda: ws.counts().get("failed") == 3, 60, "three refusals")
    assert error_of(ws, "certificado.pdf")["error"] == "encrypted_pdf"
    assert "certificate" in error_of(ws, "certificado.pdf")["message"]
    assert error_of(ws, "tubo.pdf")["error"] == "unsupported_type"
    assert "FIFO" in error_of(ws, "tubo.pdf")["message"]
    assert error_of(ws, "bucle.pdf")["error"] == "unsupported_type"
    assert not any(
        p.name in ("tubo.pdf", "bucle.pdf", "certificado.pdf") for p in ws.inbox.iterdir()
    )
    assert ws.counts() == {"done": 2, "failed": 3}
    assert daemon.stop() == 0
    assert not [line for line in daemon.problems() if "Traceback" in line]
