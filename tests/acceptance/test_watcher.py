"""The inbox watcher as a user meets it: a scanner still writing when docinbox starts, the
inbox folder deleted under a running daemon, a machine out of inotify watches.

``docinbox run --no-tray`` (a headless machine) is the installed console script on a copy
of the shipped config (settle window 2 s, rescan every 60 s); the writer is a separate
process.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time

import pytest

from tests.acceptance.conftest import Daemon, Workspace, receipt, wait_for

#: A scanner writing a document in chunks into the inbox, holding the file open: the first
#: chunk, then (on a line on stdin) the rest, a chunk every `pause` seconds, then close.
SCANNER = r"""
import sys, time
path, chunks, pause = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
data = sys.stdin.buffer.read(int(sys.argv[4]))
step = -(-len(data) // chunks)
with open(path, "wb") as fh:
    fh.write(data[:step])
    fh.flush()
    print("first chunk", flush=True)
    sys.stdin.buffer.readline()
    for k in range(step, len(data), step):
        time.sleep(pause)
        fh.write(data[k:k + step])
        fh.flush()
print("closed", flush=True)
"""


def test_a_scanner_still_writing_when_docinbox_starts(workspace: Workspace) -> None:
    data = receipt()
    target = workspace.inbox / "recibo.pdf"
    target.parent.mkdir(parents=True, exist_ok=True)
    scanner = subprocess.Popen(
        [sys.executable, "-c", SCANNER, str(target), "4", "0.5", str(len(data))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert scanner.stdin is not None and scanner.stdout is not None
        scanner.stdin.write(data)
        scanner.stdin.flush()
        assert scanner.stdout.readline() == b"first chunk\n"
        # The scanner waits for its next page longer than the settle window (2 s): by its
        # mtime alone the half-written file looks finished.
        wait_for(lambda: time.time() - target.stat().st_mtime > 2.5, 10, "an old mtime")
        daemon = workspace.start("--no-tray")
        daemon.wait_ready()  # the start-up scan is over
        scanner.stdin.write(b"go\n")
        scanner.stdin.flush()
        assert scanner.stdout.readline() == b"closed\n"
        assert scanner.wait(10) == 0
    finally:
        if scanner.poll() is None:
            scanner.kill()
    counts = wait_for(lambda: _finished(workspace), 60, "the receipt done or failed")
    assert counts.get("failed", 0) == 0, "taken half-written: " + str(counts)
    assert counts.get("done") == 1
    source = workspace.result("recibo")["source"]
    assert source["sha256"] == hashlib.sha256(data).hexdigest()
    assert source["bytes"] == len(data)
    assert not workspace.failed.exists() or list(workspace.failed.iterdir()) == []
    assert daemon.problems() == []
    assert daemon.stop() == 0


def test_inbox_deleted_and_created_again_while_running(workspace: Workspace) -> None:
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    shutil.rmtree(workspace.inbox)  # `rm -r inbox; mkdir inbox`, as a user tidies up
    workspace.inbox.mkdir()
    dropped = time.monotonic()
    workspace.drop("recibo.pdf", receipt())
    wait_for(lambda: workspace.counts().get("done") == 1, 30, "the receipt done")
    assert time.monotonic() - dropped < 15, "found by the 60 s rescan, not by watching"
    assert workspace.result("recibo")["source"]["name"] == "recibo.pdf"
    [line] = daemon.problems()
    assert "WARNING" in line and str(workspace.inbox) in line
    assert "was deleted and created again" in line or "was replaced" in line
    assert daemon.stop() == 0


def test_inbox_deleted_while_running_is_created_again(workspace: Workspace) -> None:
    daemon = workspace.start("--no-tray")
    daemon.wait_ready()
    shutil.rmtree(workspace.inbox)
    wait_for(workspace.inbox.is_dir, 15, "the inbox created again")
    daemon.wait_for_line(r"docinbox created it again", 15)
    dropped = time.monotonic()
    workspace.drop("recibo.pdf", receipt())
    wait_for(lambda: workspace.counts().get("done") == 1, 30, "the receipt done")
    assert time.monotonic() - dropped < 15
    assert len(daemon.problems()) == 1
    assert daemon.stop() == 0


def test_out_of_inotify_watches(workspace: Workspace) -> None:
    """A machine whose inotify watches are used up (IDEs and sync clients take thousands):
    docinbox says so once, with the fix, and still picks up files in every subfolder
    within seconds.  The limit is lowered for the daemon alone, in its own user namespace
    (``/proc/sys/user/max_inotify_watches``); the machine's setting stays untouched."""
    if subprocess.run(["unshare", "--user", "--map-root-user", "true"]).returncode != 0:
        pytest.skip("user namespaces are disabled on this kernel")
    deep = workspace.inbox / "2025" / "03" / "receipts"
    deep.mkdir(parents=True)
    output = workspace.root / "run-limited.out"
    # four folders, two watches
    command = 'echo 2 > /proc/sys/user/max_inotify_watches && exec "$0" run --no-tray'
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [
                "unshare",
                "--user",
                "--map-root-user",
                "sh",
                "-c",
                command,
                str(workspace.bin / "docinbox"),
            ],
            cwd=workspace.root,
            env=workspace.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Daemon(proc, output)
    try:
        daemon.wait_ready()
        assert "(polling (inotify watch limit reached) mode)" in daemon.output()
        [warning] = daemon.problems()
        assert "sudo sysctl fs.inotify.max_user_watches=" in warning
        dropped = time.monotonic()
        workspace.drop("2025/03/receipts/recibo.pdf", receipt())
        wait_for(lambda: workspace.counts().get("done") == 1, 30, "the receipt done")
        assert time.monotonic() - dropped < 15, "found by the 60 s rescan, not by polling"
        status = json.loads(workspace.docinbox("status", "--json").stdout)
        assert [d["name"] for d in status["documents"]] == ["recibo.pdf"]
        assert daemon.stop() == 0
    finally:
        daemon.kill()


def _finished(workspace: Workspace) -> dict[str, int]:
    """The counts once a document ended (done or failed); empty before."""
    counts = workspace.counts()
    return counts if counts.get("done") or counts.get("failed") else {}
