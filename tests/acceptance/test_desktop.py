"""docinbox as a desktop tool (issue 18), as a user meets it on Linux with only pip.

A desktop session is played by real programs: a session bus (dbus-daemon), an X server
(Xvfb), a real notification daemon (dunst, which records every notification it shows
through a rule script and performs a notification's action through ``dunstctl``), and a
StatusNotifierWatcher with a host (tests/tray/sni_host.py, the part a panel provides),
through which the test reads the tray's menu and clicks it.  The file manager is a
stand-in ``xdg-open`` on PATH that writes down what it was asked to open.

docinbox itself is a wheel installed into a fresh virtual environment (what ``pipx
install`` does), run from an empty folder with ``HOME`` pointing at a temporary home:
``docinbox init``, then ``docinbox run`` with no flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import REPO, Workspace, receipt, wait_for
from tests.tray.sni_host import HostView, find, labels, start_session_bus, start_watcher
from tests.tray.tray_xhelpers import start_xvfb, stop

pytestmark = pytest.mark.x11

RECORDER = """#!/bin/sh
# dunst runs this for every notification it shows: appname summary body icon urgency
printf '%s\\t%s\\t%s\\n' "$1" "$2" "$3" >> "{log}"
"""
DUNSTRC = """
[global]
    font = Monospace 8
[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[record]
    summary = "*"
    script = {script}
"""
OPENER = """#!/bin/sh
# a stand-in file manager: what docinbox asked to open
printf '%s\\n' "$1" >> "{log}"
"""


class Desktop:
    """The session's programs and what they saw."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.shown = root / "notifications.tsv"
        self.opened = root / "opened.txt"
        self.bin = root / "bin"
        self.bin.mkdir(exist_ok=True)
        self.procs: list[subprocess.Popen[Any]] = []
        bus, address = start_session_bus()
        self.procs.append(bus)
        xvfb, display = start_xvfb(root / "xvfb.log")
        self.procs.append(xvfb)
        self.env = {"DBUS_SESSION_BUS_ADDRESS": address, "DISPLAY": display}
        script = root / "record.sh"
        script.write_text(RECORDER.format(log=self.shown))
        script.chmod(0o755)
        opener = self.bin / "xdg-open"
        opener.write_text(OPENER.format(log=self.opened))
        opener.chmod(0o755)
        (root / "dunstrc").write_text(DUNSTRC.format(script=script))
        self.procs.append(
            subprocess.Popen(
                ["dunst", "-config", str(root / "dunstrc")],
                env={**os.environ, **self.env},
                stdout=(root / "dunst.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        self.procs.append(start_watcher(self.env))
        wait_for(self._dunst_owns_the_service, 20, "dunst on the session bus")

    def _dunst_owns_the_service(self) -> bool:
        out = subprocess.run(
            ["dunstctl", "count", "displayed"],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
        )
        return out.returncode == 0

    def notifications(self) -> list[tuple[str, str, str]]:
        if not self.shown.exists():
            return []
        return [
            tuple(line.split("\t", 2))  # type: ignore[misc]
            for line in self.shown.read_text("utf-8").splitlines()
        ]

    def dunstctl(self, *args: str) -> str:
        return subprocess.run(
            ["dunstctl", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
            timeout=20,
        ).stdout

    def user_env(self, ws: Workspace) -> dict[str, str]:
        """What docinbox gets in this session: the bus, the display, the file manager."""
        return {**self.env, "PATH": f"{self.bin}{os.pathsep}{ws.env()['PATH']}"}

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    d = Desktop(tmp_path / "session")
    try:
        yield d
    finally:
        d.close()


@pytest.fixture(scope="module")
def pipx_venv() -> Iterator[Path]:
    """The wheel in a fresh virtual environment: what ``pipx install .`` makes."""
    with tempfile.TemporaryDirectory(prefix="docinbox-pipx-") as tmp:
        dist, venv = Path(tmp) / "dist", Path(tmp) / "venv"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        install = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *dist.glob("*.whl")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert install.returncode == 0, install.stderr
        yield venv / "bin"


def sni(desktop: Desktop, coro: Any) -> Any:
    """A panel's look at the registered item(s)."""

    async def run() -> Any:
        view = await HostView.connect(desktop.env["DBUS_SESSION_BUS_ADDRESS"])
        try:
            for _ in range(400):
                items = await view.items()
                if items:
                    return await coro(view, items[0])
                await asyncio.sleep(0.05)
            raise AssertionError("no item registered with the StatusNotifierWatcher")
        finally:
            view.bus.disconnect()

    return asyncio.run(run())


def free_ports(config: Path) -> None:
    """The one edit the tests make: free ports, so tests side by side do not collide."""
    text = config.read_text("utf-8")
    text = re.sub(r"(?m)^port *= *\d+", "port = 0", text)
    text = re.sub(r'(?m)^files_listen *= *"[^"]*"', 'files_listen = "127.0.0.1:0"', text)
    text = re.sub(r'(?m)^listen *= *"[^"]*"', 'listen = "127.0.0.1:0"', text)  # the desk's
    config.write_text(text, "utf-8")


def test_pip_install_init_run_icon_menu_and_notifications(
    tmp_path: Path, pipx_venv: Path, desktop: Desktop
) -> None:
    ws = Workspace(tmp_path / "empty", bin_dir=pipx_venv)
    ws.config.unlink()  # an empty folder: nothing but what the user types
    env = desktop.user_env(ws)

    first = ws.docinbox("run", env=env)
    assert first.returncode == 2
    assert "docinbox init" in first.stderr
    init = ws.docinbox("init", env=env)
    assert init.returncode == 0, init.stderr
    config = ws.home / ".config/docinbox/config.toml"
    assert f"wrote {config}" in init.stdout
    assert (ws.home / "docinbox/inbox").is_dir()
    free_ports(config)

    daemon = ws.start(env=env)  # `docinbox run`, no flags
    daemon.wait_ready()
    assert f"watching {ws.home / 'docinbox/inbox'}" in daemon.output()

    async def menu(view: HostView, item: str) -> list[str]:
        return labels((await view.layout(item))["root"])

    wait_for(lambda: "Pause" in sni(desktop, menu), 30, "the tray's menu with Pause")

    drop = ws.home / "docinbox/inbox/recibo.pdf"
    drop.write_bytes(receipt())
    result = ws.home / "docinbox/outbox/recibo"
    wait_for(lambda: (result / "result.json").exists(), 60, "the receipt's result")
    wait_for(desktop.notifications, 30, "a notification shown by dunst")
    assert desktop.notifications() == [("docinbox", "docinbox", "recibo.pdf processed")]

    async def services(view: HostView, item: str) -> list[str]:
        root = (await view.layout(item))["root"]
        return labels(find(root, "Services")) if "Services" in labels(root) else []

    # what Nanonets' pacer learned and its allowance, as `docinbox status` says them
    shown = wait_for(lambda: sni(desktop, services), 30, "the Services submenu")
    assert shown[0] == "nanonets: ok", shown
    assert any(line.startswith("pace: ") for line in shown), shown
    assert any(
        line.startswith("prediction calls: 1 call (no limit set), renews ") for line in shown
    ), shown

    desktop.dunstctl("action", "0")  # the notification's action: open the result
    wait_for(desktop.opened.exists, 20, "the result folder opened")
    assert desktop.opened.read_text().splitlines() == [str(result)]

    async def pause(view: HostView, item: str) -> None:
        await view.click(item, find((await view.layout(item))["root"], "Pause", "For 1 hour")["id"])

    sni(desktop, pause)
    wait_for(lambda: ws.status()["paused_until"], 10, "paused, as docinbox status says")
    wait_for(lambda: "Resume" in sni(desktop, menu), 10, "Resume in the menu")
    resumed = ws.docinbox("resume", env=env)
    assert (resumed.returncode, resumed.stdout) == (0, "docinbox: resumed\n")
    wait_for(lambda: "Pause" in sni(desktop, menu), 10, "Pause back in the menu")

    stopped = ws.docinbox("stop", env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert daemon.proc.wait(10) == 0
    assert daemon.problems() == []
    state = ws.home / ".local/state/docinbox"
    assert (state / "docinbox.db").exists() and (state / "docinbox.log").exists()


def test_notifications_without_a_tray(workspace: Workspace, desktop: Desktop) -> None:
    """``--no-tray`` (or a desktop without a tray): the notifications still come."""
    env = desktop.user_env(workspace)
    daemon = workspace.start("--no-tray", env=env)
    daemon.wait_ready()
    workspace.drop("recibo.pdf", receipt())
    workspace.drop("empty.pdf", b"")

    def told() -> str:
        return " | ".join(f"{summary}: {body}" for _app, summary, body in desktop.notifications())

    wait_for(lambda: "processed" in told() and "failed" in told(), 60, "both announced")
    assert {app for app, _s, _b in desktop.notifications()} == {"docinbox"}
    # one batch, or two when the failure took longer than the quiet spell
    assert told() in (
        "docinbox: some documents failed: 1 document processed, 1 failed",
        "docinbox: recibo.pdf processed | docinbox: a document failed: empty.pdf "
        "(empty.pdf is empty) failed",
    ), told()
    assert daemon.stop() == 0
    assert [re.sub(r"^\S+ \S+ ", "", p) for p in daemon.problems()] == [
        "ERROR   docinbox: empty.pdf: failed (empty_file): empty.pdf is empty"
    ]
    assert "tray" not in daemon.output()


def test_pause_resume_reload_stop_from_a_shell(workspace: Workspace) -> None:
    nobody = workspace.docinbox("pause")
    assert nobody.returncode == 1
    assert "no docinbox daemon is running" in nobody.stderr
    daemon = workspace.start()
    daemon.wait_ready()

    paused = workspace.docinbox("pause", "--for", "1h")
    assert paused.returncode == 0, paused.stderr
    assert re.fullmatch(r"docinbox: paused until \d\d:\d\d; .*\n", paused.stdout)
    workspace.drop("recibo.pdf", receipt())
    wait_for(lambda: workspace.counts().get("queued"), 20, "the receipt queued")
    assert not (workspace.outbox / "recibo").exists()  # nothing is sent while paused
    assert workspace.docinbox("-q", "resume").stdout == ""
    wait_for(lambda: workspace.counts().get("done"), 30, "the receipt done after resume")

    workspace.set_key("retry", "max_attempts", "3")
    workspace.set_key("folders", "outbox", '"results"')
    reloaded = workspace.docinbox("reload")
    assert reloaded.returncode == 0, reloaded.stderr
    assert reloaded.stdout == (
        "docinbox: reloaded; applied: retry\n"
        "  needs a restart to apply: folders (docinbox stop; docinbox run)\n"
    )
    workspace.set_key("retry", "max_attempts", "0")
    broken = workspace.docinbox("reload")
    assert broken.returncode == 2
    assert "retry.max_attempts" in broken.stderr and "runs on as it was" in broken.stderr
    daemon.send(signal.SIGHUP)  # the daemon's own check of a broken file
    daemon.wait_for_line(r"reload: retry\.max_attempts: .*runs on with the configuration it had")
    workspace.set_key("retry", "max_attempts", "3")
    daemon.send(signal.SIGHUP)
    daemon.wait_for_line(r"configuration reloaded from .*: nothing to apply")

    assert workspace.docinbox("stop").returncode == 0
    assert daemon.proc.wait(10) == 0
    again = workspace.docinbox("stop")
    assert again.returncode == 1 and "no docinbox daemon is running" in again.stderr
    # what the user was told, and nothing else worth a warning: the folders still need
    # the restart at the last reload too
    restart = (
        "WARNING docinbox: reload: folders changed; that needs a restart (docinbox stop, "
        "then docinbox run)"
    )
    assert [re.sub(r"^\S+ \S+ ", "", p) for p in daemon.problems()] == [
        restart,
        "ERROR   docinbox: reload: retry.max_attempts: expected an integer at least 1, got 0; "
        "docinbox runs on with the configuration it had",
        restart,
    ]


def test_init_then_autostart_runs_the_platform_configuration(workspace: Workspace) -> None:
    workspace.config.unlink()
    assert workspace.docinbox("init").returncode == 0
    installed = workspace.docinbox("autostart", "install", "--method", "systemd", "--no-enable")
    assert installed.returncode == 0, installed.stderr
    config = workspace.home / ".config/docinbox/config.toml"
    unit = workspace.home / ".config/systemd/user/docinbox.service"
    assert f'"-c" "{config}"' in unit.read_text("utf-8")
    with tempfile.TemporaryDirectory(prefix="docinbox-rt-") as runtime:
        checked = subprocess.run(
            ["systemd-analyze", "--user", "--man=no", "verify", str(unit)],
            env={**workspace.env(), "XDG_RUNTIME_DIR": runtime, "SYSTEMD_LOG_LEVEL": "notice"},
            text=True,
            capture_output=True,
            timeout=60,
        )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    status = json.loads(workspace.docinbox("status", "--json").stdout)
    assert status["daemon"] == {"running": False}
