"""The review desk from a terminal, as the README says: ``docinbox dashboard
--print-url``, the desk's API with the key it prints, ``docinbox export`` and
``docinbox search`` — the installed console scripts against a real ``docinbox run``."""

from __future__ import annotations

import csv
import io
import json

import httpx
from openpyxl import load_workbook

from tests.acceptance.conftest import Workspace, receipt, wait_for


def _desk(workspace: Workspace) -> tuple[str, httpx.Client]:
    """The URL ``docinbox dashboard --print-url`` prints, opened as a browser would."""
    printed = wait_for(
        lambda: (r := workspace.docinbox("dashboard", "--print-url")).returncode == 0 and r,
        30,
        "docinbox dashboard --print-url",
    )
    url = printed.stdout.strip()
    assert url.startswith("http://127.0.0.1:") and "?token=" in url
    client = httpx.Client(trust_env=False, follow_redirects=True)
    page = client.get(url)  # sets the cookie, lands on the page without the key
    assert page.status_code == 200 and "review desk" in page.text
    assert "token" not in str(page.url)
    return url.split("?")[0], client


def _done(workspace: Workspace, n: int) -> dict[str, int]:
    return wait_for(
        lambda: (c := workspace.counts()).get("done", 0) + c.get("failed", 0) >= n and c,
        60,
        f"{n} documents finished",
    )


def test_the_desk_is_reached_with_the_printed_url_and_dismisses_failures(
    workspace: Workspace,
) -> None:
    refused = workspace.docinbox("dashboard", "--print-url")
    assert refused.returncode == 1 and "no docinbox daemon is running" in refused.stderr
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    base, client = _desk(workspace)
    workspace.drop("recibo.pdf", receipt())
    workspace.drop("roto.pdf", b"%PDF-1.4\n%%EOF\n")
    assert _done(workspace, 2) == {"done": 1, "failed": 1}

    docs = client.get(f"{base}api/documents").json()["documents"]
    by_name = {d["name"]: d for d in docs}
    assert by_name["recibo.pdf"]["review"] == {"state": "none"}  # scores ≥ 0.8 as shipped
    assert by_name["recibo.pdf"]["result"] == str(workspace.outbox / "recibo")
    csrf = client.get(f"{base}api/session").json()["csrf"]
    failed = by_name["roto.pdf"]["id"]
    dismissed = client.post(f"{base}api/documents/{failed}/dismiss", headers={"X-CSRF-Token": csrf})
    assert dismissed.status_code == 200
    # out of `docinbox status`, its files kept
    status = workspace.status()
    assert status["counts"] == {"done": 1}
    assert [d["name"] for d in status["documents"]] == ["recibo.pdf"]
    assert (workspace.failed / "roto.pdf").exists()
    assert (workspace.failed / "roto.pdf.error.json").exists()
    assert daemon.stop() == 0
    assert [p for p in daemon.problems() if "roto.pdf: failed (corrupt_document)" not in p] == []


def test_export_writes_what_a_spreadsheet_opens(workspace: Workspace) -> None:
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())
    workspace.drop("facturas/coma.pdf", receipt("45,99"))
    _done(workspace, 2)

    made = workspace.docinbox("export", "--format", "csv", "-o", "todo.csv")
    assert made.returncode == 0, made.stderr
    data = (workspace.root / "todo.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {r["source"]: r["total"] for r in rows} == {"recibo.pdf": "45.99", "coma.pdf": "45.99"}
    assert {r["source"]: r["folder"] for r in rows} == {"recibo.pdf": "", "coma.pdf": "facturas"}
    tables = (workspace.root / "todo-tables.csv").read_text("utf-8-sig").splitlines()
    assert tables[0] == "source,table,page,row,descripcion,cantidad"
    assert len(tables) == 3

    made = workspace.docinbox("export", "--format", "xlsx", "-o", "todo.xlsx")
    assert made.returncode == 0, made.stderr
    book = load_workbook(workspace.root / "todo.xlsx")
    sheet = [list(r) for r in book["Documents"].iter_rows(values_only=True)]
    totals = {r[0]: r[sheet[0].index("total")] for r in sheet[1:]}
    assert totals == {"recibo.pdf": 45.99, "coma.pdf": 45.99}  # numbers, both ways of writing

    lines = workspace.docinbox("export", "--format", "jsonl", "--folder", "facturas/**")
    assert lines.returncode == 0, lines.stderr
    (only,) = [json.loads(line) for line in lines.stdout.splitlines()]
    assert only["source"] == "coma.pdf" and only["fields"]["total"] == 45.99
    for args in (("--state", "approved"), ("--since", "2999-01-01")):
        none = workspace.docinbox("export", "--format", "jsonl", *args)
        assert none.returncode == 0 and none.stdout == ""
    bad = workspace.docinbox("export", "--format", "csv", "--since", "ayer")
    assert bad.returncode == 1 and "--since" in bad.stderr
    assert daemon.stop() == 0
    assert daemon.problems() == []


def test_search_from_a_terminal_and_the_index_rebuilt(workspace: Workspace) -> None:
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt("51.20"))
    _done(workspace, 1)
    found = workspace.docinbox("search", "51.20")
    assert found.returncode == 0 and "recibo.pdf" in found.stdout
    assert "[51 20]" in found.stdout or "[51.20]" in found.stdout
    assert workspace.docinbox("search", "inexistente").returncode == 1
    rebuilt = workspace.docinbox("search", "--rebuild")
    assert rebuilt.returncode == 0 and "1 result" in rebuilt.stdout
    assert workspace.docinbox("search", "gasoil").returncode == 0
    assert daemon.stop() == 0
    assert daemon.problems() == []
