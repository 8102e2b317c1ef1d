"""A scanner that writes its PDF a page at a time, reopening the file for each page (issue
12, item 5): the document comes out once, whole — no fragments in failed/."""

from __future__ import annotations

import subprocess
import sys

from tests.acceptance.conftest import Workspace, receipt, wait_for

WRITER = r"""
import sys, time
path, data, pieces, pause = sys.argv[1], open(sys.argv[2], "rb").read(), 3, float(sys.argv[3])
size = -(-len(data) // pieces)
for i in range(pieces):
    with open(path, "ab") as fh:        # open, append a page, close: like some scanners
        fh.write(data[i * size:(i + 1) * size])
    if i < pieces - 1:
        time.sleep(pause)
"""


def test_a_scanner_reopening_its_file_per_page_gives_one_whole_result(
    workspace: Workspace,
) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    source = workspace.root / "scan.bin"
    source.write_bytes(receipt(total="31.41"))
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(workspace.inbox / "scan.pdf"), str(source), "3"]
    )
    assert writer.wait(60) == 0
    wait_for(lambda: workspace.counts().get("done") == 1, 60, "the scan's result")
    result = workspace.result("scan")
    assert {f["label"]: f["text"] for f in result["fields"]}["total"] == "31.41"
    assert result["source"]["bytes"] == source.stat().st_size
    assert not workspace.failed.exists() or not any(workspace.failed.iterdir())
    assert workspace.counts() == {"done": 1}
    sent = [r for r in daemon.mock().requests() if r["path"].endswith("/LabelFile/")]
    assert len(sent) == 1
    assert daemon.stop() == 0
