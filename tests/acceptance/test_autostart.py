"""``docinbox autostart install|remove`` as users meet it, checked by the real tools.

Each command is the installed console script, run in the workspace folder.  Whether
systemd is the machine's service manager is what sd_booted(3) checks: does
``/run/systemd/system`` exist.  The tests run the commands in a private mount namespace
(``unshare``, needs root as in CI) whose ``/run`` says so either way, so they see the same
machine everywhere.  A real systemd user manager, started in that namespace with its own
runtime folder, plays the user's session: ``systemctl --user`` talks to it as it would on
a desktop, and a stand-in desktop target starts and stops ``graphical-session.target``
as GNOME or Plasma do at login and logout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.acceptance.conftest import BIN, Workspace, wait_for

UNIT = "docinbox.service"
ENABLE = "systemctl --user daemon-reload && systemctl --user enable --now docinbox.service"
SYSTEMD = next(
    (p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.access(p, os.X_OK)),
    "/lib/systemd/systemd",
)


def machine(argv: list[str], *, systemd: bool) -> list[str]:
    """*argv* on a machine whose service manager is systemd or not (sd_booted(3))."""
    mkdir = " && mkdir -p /run/systemd/system" if systemd else ""
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount -t tmpfs tmpfs /run{mkdir} && exec "$@"',
        "sh",
        *argv,
    ]


@pytest.fixture
def spaced(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace in a folder with a space and a non-ASCII letter in its name."""
    ws = Workspace(tmp_path / "mis documentos ü")
    try:
        yield ws
    finally:
        ws.close()


@pytest.fixture
def runtime() -> Iterator[Path]:
    """An ``XDG_RUNTIME_DIR``: short, as sockets live there (108 bytes per path)."""
    path = Path(tempfile.mkdtemp(prefix="docinbox-rt-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def autostart(
    ws: Workspace,
    *args: str,
    systemd: bool,
    env: Mapping[str, str] | None = None,
    enter: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``docinbox autostart ARGS`` typed in the workspace folder; *enter*: in the mount
    namespace of that process (the user manager's machine) instead of a new one."""
    argv = [str(BIN / "docinbox"), "autostart", *args]
    if enter is not None:
        argv = ["nsenter", f"--target={enter}", "--mount", f"--wd={ws.root}", "--", *argv]
    else:
        argv = machine(argv, systemd=systemd)
    return subprocess.run(
        argv, cwd=ws.root, env=ws.env(env), text=True, capture_output=True, timeout=60
    )


def verify(unit: Path, env: Mapping[str, str], runtime: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze --user verify``: loads the unit as the user manager would
    (it needs a runtime folder, not a running manager) and reports every problem."""
    return subprocess.run(
        ["systemd-analyze", "--user", "--man=no", "verify", str(unit)],
        env={**env, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_LEVEL": "notice"},
        text=True,
        capture_output=True,
        timeout=60,
    )


def xdg_env(ws: Workspace, xdg: bool) -> dict[str, str]:
    return {"XDG_CONFIG_HOME": str(ws.root / "xdg config")} if xdg else {}


def config_home(ws: Workspace, xdg: bool) -> Path:
    return ws.root / "xdg config" if xdg else ws.home / ".config"


# --- no session bus: SSH, su, CI -----------------------------------------------------------


@pytest.mark.parametrize("xdg", [False, True], ids=["default", "XDG_CONFIG_HOME"])
def test_without_a_reachable_user_manager_the_unit_is_written_and_the_user_told(
    spaced: Workspace, runtime: Path, xdg: bool
) -> None:
    ws = spaced
    env = xdg_env(ws, xdg)
    unit = config_home(ws, xdg) / "systemd" / "user" / UNIT
    result = autostart(ws, "install", systemd=True, env=env)
    assert result.returncode == 0, result.stderr
    assert f"autostart installed: systemd user unit {unit}" in result.stdout
    assert "could not enable it now: the systemd user manager is not reachable" in result.stderr
    assert ENABLE in result.stderr
    assert "Traceback" not in result.stderr

    checked = verify(unit, ws.env(env), runtime)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    text = unit.read_text("utf-8")
    assert f"WorkingDirectory={ws.root}\n" in text
    assert f'"-c" "{ws.config}"' in text

    result = autostart(ws, "remove", systemd=True, env=env)
    assert result.returncode == 0, result.stderr
    assert f"autostart removed: systemd user unit {unit}" in result.stdout
    assert "systemctl --user stop docinbox.service" in result.stderr
    assert not unit.exists()


# --- no systemd: the XDG autostart entry ---------------------------------------------------


@pytest.mark.parametrize("xdg", [False, True], ids=["default", "XDG_CONFIG_HOME"])
def test_without_systemd_it_is_a_valid_xdg_autostart_entry(spaced: Workspace, xdg: bool) -> None:
    ws = spaced
    env = xdg_env(ws, xdg)
    entry = config_home(ws, xdg) / "autostart" / "docinbox.desktop"
    result = autostart(ws, "install", systemd=False, env=env)
    assert result.returncode == 0, result.stderr
    assert f"autostart installed: XDG autostart entry {entry}" in result.stdout
    assert result.stderr == ""
    checked = subprocess.run(["desktop-file-validate", str(entry)], text=True, capture_output=True)
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
    assert f'Exec="{BIN / "docinbox"}" "run" "-c" "{ws.config}"' in entry.read_text("utf-8")
    assert not (config_home(ws, xdg) / "systemd").exists()

    result = autostart(ws, "remove", systemd=False, env=env)
    assert result.returncode == 0, result.stderr
    assert f"autostart removed: XDG autostart entry {entry}" in result.stdout
    assert not entry.exists()
    again = autostart(ws, "remove", systemd=False, env=env)
    assert again.stdout == "docinbox: no autostart entry to remove\n"


def test_a_broken_config_is_refused_before_anything_is_written(workspace: Workspace) -> None:
    workspace.set_key("watcher", "no_such_key", "1")
    result = autostart(workspace, "install", systemd=False)
    assert result.returncode == 2
    assert "configuration error" in result.stderr
    assert not (workspace.home / ".config").exists()


# --- a real user manager -------------------------------------------------------------------


class Session:
    """A systemd user manager in its own mount namespace, and a desktop to log in to."""

    def __init__(self, ws: Workspace, env: Mapping[str, str], runtime: Path) -> None:
        self.ws = ws
        self.runtime = runtime
        #: What the user's shell has on top of the workspace's environment.
        self.extra = {**env, "XDG_RUNTIME_DIR": str(runtime)}
        self.env = ws.env(self.extra)
        # What GNOME or Plasma do: a session target that binds graphical-session.target.
        units = self.runtime / "systemd" / "user"
        units.mkdir(parents=True)
        (units / "desktop.target").write_text(
            "[Unit]\nDescription=stand-in desktop session\n"
            "BindsTo=graphical-session.target\nBefore=graphical-session.target\n"
        )
        self.log = (ws.root / "manager.log").open("wb")
        self.proc = subprocess.Popen(
            machine([SYSTEMD, "--user"], systemd=True),
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: self.systemctl("is-system-running").stdout.strip() in ("running", "degraded"),
            30,
            "the user manager",
        )

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["nsenter", f"--target={self.proc.pid}", "--mount", "--", "systemctl", "--user", *args],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=60,
        )

    def show(self, *props: str) -> dict[str, str]:
        out = self.systemctl("show", UNIT, *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def docinbox(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``docinbox ARGS`` typed in a terminal of this session."""
        return autostart(
            self.ws,
            *args,
            systemd=True,
            enter=self.proc.pid,
            env={**self.extra, **(env or {})},
        )

    def log_in(self) -> None:
        result = self.systemctl("start", "desktop.target")
        assert result.returncode == 0, result.stderr

    def log_out(self) -> None:
        result = self.systemctl("stop", "desktop.target")
        assert result.returncode == 0, result.stderr

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a user manager stops its units, exits
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(params=[False, True], ids=["default", "XDG_CONFIG_HOME"])
def session(request: pytest.FixtureRequest, spaced: Workspace, runtime: Path) -> Iterator[Session]:
    assert shutil.which("nsenter") and shutil.which("unshare"), "util-linux is missing"
    s = Session(spaced, xdg_env(spaced, request.param), runtime)
    try:
        yield s
    finally:
        s.close()


def state(session: Session) -> tuple[str, str]:
    props = session.show("ActiveState", "SubState")
    return props["ActiveState"], props["SubState"]


def test_it_starts_with_the_graphical_session_and_stops_with_it(session: Session) -> None:
    ws = session.ws
    result = session.docinbox("install")
    assert result.returncode == 0, result.stderr
    assert "autostart installed: systemd user unit" in result.stdout
    assert "it starts with your next graphical session" in result.stdout
    assert result.stderr == ""
    assert session.systemctl("is-enabled", UNIT).stdout.strip() == "enabled"
    # What systemd itself made of the quoting: the exact arguments and folder.
    props = session.show("ExecStart", "WorkingDirectory", "LoadState")
    assert props["LoadState"] == "loaded"
    assert f"argv[]={BIN / 'docinbox'} run -c {ws.config} ;" in props["ExecStart"]
    assert props["WorkingDirectory"] == str(ws.root)
    assert state(session) == ("inactive", "dead")  # no desktop yet: not started

    session.log_in()
    wait_for(
        lambda: ws.log.exists() and "watching " in ws.log.read_text("utf-8"),
        60,
        "docinbox started by the user manager",
    )
    assert state(session) == ("active", "running")
    assert ws.docinbox("status").returncode == 0

    session.log_out()  # PartOf=: the session's end stops it, with SIGTERM
    wait_for(lambda: state(session) == ("inactive", "dead"), 30, "docinbox stopped")
    props = session.show("Result", "ExecMainStatus", "NRestarts")
    assert props == {"Result": "success", "ExecMainStatus": "0", "NRestarts": "0"}

    result = session.docinbox("remove")
    assert result.returncode == 0, result.stderr
    assert "autostart removed: systemd user unit" in result.stdout
    assert session.show("LoadState")["LoadState"] == "not-found"
    assert not list((ws.root).rglob("*.wants/docinbox.service"))
    assert not list(ws.home.rglob("docinbox.service"))


def test_in_a_running_session_it_starts_now_and_a_stop_is_not_a_failure(session: Session) -> None:
    session.log_in()
    result = session.docinbox("install")
    assert result.returncode == 0, result.stderr
    assert "enabled and started" in result.stdout
    wait_for(lambda: state(session) == ("active", "running"), 30, "docinbox running")
    wait_for(
        lambda: session.ws.log.exists() and "watching " in session.ws.log.read_text("utf-8"),
        60,
        "docinbox ready",
    )
    assert session.systemctl("stop", UNIT).returncode == 0  # a plain stop: SIGTERM
    wait_for(lambda: state(session) == ("inactive", "dead"), 30, "docinbox stopped")
    assert session.show("Result", "ExecMainStatus") == {"Result": "success", "ExecMainStatus": "0"}
    assert session.systemctl("is-failed", UNIT).stdout.strip() == "inactive"


def test_a_configuration_error_is_not_restarted_forever(session: Session) -> None:
    ws = session.ws
    assert session.docinbox("install").returncode == 0
    ws.set_key("watcher", "no_such_key", "1")  # docinbox run now exits 2
    session.log_in()
    wait_for(lambda: state(session)[0] == "failed", 30, "the unit to fail")
    # Restart=on-failure alone would show "activating auto-restart" here, every 10 s.
    assert state(session) == ("failed", "failed")
    assert session.show("ExecMainStatus", "NRestarts") == {"ExecMainStatus": "2", "NRestarts": "0"}


def test_another_docinbox_already_running_is_not_restarted_forever(session: Session) -> None:
    ws = session.ws
    assert session.docinbox("install").returncode == 0
    by_hand = ws.start("--no-tray")  # the user started one in a terminal
    by_hand.wait_ready()
    session.log_in()
    wait_for(lambda: state(session)[0] == "failed", 30, "the unit to fail")
    assert state(session) == ("failed", "failed")
    assert session.show("ExecMainStatus", "NRestarts") == {"ExecMainStatus": "3", "NRestarts": "0"}
    assert by_hand.stop() == 0


def test_a_desktop_without_graphical_session_target_gets_an_xdg_entry(session: Session) -> None:
    # Xfce, MATE, window managers: systemd runs, but nothing starts the session target.
    result = session.docinbox("install", env={"DISPLAY": ":0"})
    assert result.returncode == 0, result.stderr
    assert "autostart installed: XDG autostart entry" in result.stdout
    assert "does not start systemd's graphical-session.target" in result.stdout
    assert session.show("LoadState")["LoadState"] == "not-found"
    assert session.docinbox("remove").returncode == 0
