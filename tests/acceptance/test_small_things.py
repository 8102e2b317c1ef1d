"""Small things a user trips on in the first hour: `status` in a pipe and whether a daemon
runs, a second daemon on the same folders, folder permissions of MinerU results."""

from __future__ import annotations

import json
import os
import stat
import subprocess

from mockserver.samples import multipage_pdf
from tests.acceptance.conftest import BIN, Workspace, receipt, wait_for


def test_status_into_a_closed_pipe_prints_no_traceback(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    read, write = os.pipe()
    os.close(read)  # like `| head -1` once head has its line: every write meets EPIPE
    try:
        result = subprocess.run(
            [str(BIN / "docinbox"), "status"],
            cwd=workspace.root,
            env=workspace.env(),
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)
    assert result.stderr == ""
    assert result.returncode == 0
    assert daemon.stop() == 0


def test_status_says_whether_a_daemon_runs_and_limit_zero_lists_none(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())
    wait_for(lambda: workspace.counts().get("done") == 1, 30, "the receipt")

    text = workspace.docinbox("status").stdout
    assert f"daemon running (process {daemon.proc.pid}" in text
    assert str(workspace.config) in text
    assert "recibo.pdf" in text
    assert json.loads(workspace.docinbox("status", "--json").stdout)["daemon"]["running"]

    quiet = workspace.docinbox("status", "--limit", "0").stdout
    assert "recibo.pdf" not in quiet and "1 done" in quiet
    bad = workspace.docinbox("status", "--limit", "-1")
    assert bad.returncode == 2 and "0 or more" in bad.stderr

    assert daemon.stop() == 0
    after = workspace.docinbox("status")
    assert "no daemon is running" in after.stdout
    assert not json.loads(workspace.docinbox("status", "--json").stdout)["daemon"]["running"]


def test_a_second_daemon_is_refused_and_leaves_the_first_ones_log_alone(
    workspace: Workspace,
) -> None:
    first = workspace.start()
    first.wait_ready()
    log_before = workspace.log.read_text()

    second = workspace.docinbox("run", timeout=30)
    assert second.returncode == 3
    assert "already uses" in second.stderr
    assert workspace.log.read_text() == log_before  # no "stopped" in the running one's log
    assert first.proc.poll() is None
    assert first.stop() == 0


def test_two_configurations_sharing_one_inbox_cannot_both_run(
    workspace: Workspace, tmp_path_factory: object
) -> None:
    first = workspace.start()
    first.wait_ready()
    other = Workspace(workspace.root / "other")
    other.set_key("folders", "inbox", json.dumps(str(workspace.inbox)))
    second = other.docinbox("run", timeout=30)
    assert second.returncode == 3, second.stdout + second.stderr
    assert str(workspace.inbox) in second.stderr
    assert first.stop() == 0


def test_mineru_results_are_readable_like_every_other_folder(workspace: Workspace) -> None:
    daemon = workspace.start()
    daemon.wait_ready()
    workspace.drop("report.pdf", multipage_pdf(5))  # over 3 pages: the shipped route to MinerU
    wait_for(
        lambda: (workspace.outbox / "report" / "result.json").exists(), 120, "the MinerU result"
    )
    assert workspace.result("report")["service"] == "mineru"
    expected = stat.S_IMODE((workspace.outbox / "report").stat().st_mode)
    for folder in [
        workspace.outbox / "report" / "raw",
        *(p for p in (workspace.outbox / "report" / "raw").rglob("*") if p.is_dir()),
    ]:
        assert stat.S_IMODE(folder.stat().st_mode) == expected, folder
    assert daemon.stop() == 0


def test_a_re_created_inbox_is_locked_again(workspace: Workspace) -> None:
    import shutil

    first = workspace.start()
    first.wait_ready()
    shutil.rmtree(workspace.inbox)  # deleted by hand; docinbox makes it again and watches it
    first.wait_for_line(r"was deleted; docinbox created it again", 30)
    other = Workspace(workspace.root / "other")
    other.set_key("folders", "inbox", json.dumps(str(workspace.inbox)))
    second = other.docinbox("run", timeout=30)
    assert second.returncode == 3, second.stdout + second.stderr
    assert str(workspace.inbox) in second.stderr
    assert first.stop() == 0
