"""``docinbox autostart install|remove``: start docinbox at login.

One file per platform, written where that platform looks for it:

- Linux: a systemd *user* unit, ``~/.config/systemd/user/docinbox.service``
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/net.docinbox.daemon.plist``
- Windows: ``docinbox.cmd`` in the Startup folder

All of them run the absolute ``docinbox`` executable of the current environment
with ``run -c <absolute config>``, so the autostarted daemon uses the same
virtualenv and configuration as the shell that installed it.  ``home`` and
``platform`` are parameters so tests write into a temporary directory, and the
commands that register the file (``systemctl --user ...``, ``launchctl ...``) are
returned / run through an injectable *runner*.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

UNIT_NAME = "docinbox.service"
LAUNCH_AGENT_LABEL = "net.docinbox.daemon"
STARTUP_SCRIPT = "docinbox.cmd"

Runner = Callable[[Sequence[str]], object]


def _platform(platform: str | None) -> str:
    p = platform or sys.platform
    if p.startswith("linux") or p.startswith("freebsd"):
        return "linux"
    if p in ("darwin", "win32"):
        return p
    raise ValueError(f"autostart is not supported on {p!r}")


def find_executable(platform: str | None = None) -> Path:
    """The ``docinbox`` console script beside the running interpreter (else on PATH)."""
    plat = _platform(platform)
    bindir = Path(sys.executable).parent
    names = ["docinbox.exe", "docinbox"] if plat == "win32" else ["docinbox"]
    for folder in (bindir, bindir / "Scripts"):
        for name in names:
            if (folder / name).is_file():
                return (folder / name).absolute()
    found = shutil.which("docinbox")
    if found:
        return Path(found).absolute()
    raise FileNotFoundError(
        f"no docinbox executable beside {sys.executable} or on PATH; "
        "install docinbox (pip install -e .) first")


def unit_path(platform: str | None = None, home: Path | None = None) -> Path:
    """Where the autostart file for *platform* lives."""
    plat = _platform(platform)
    if plat == "linux":
        # An explicit home wins (tests); otherwise honour $XDG_CONFIG_HOME like systemd does.
        xdg = os.environ.get("XDG_CONFIG_HOME")
        config_home = Path(home) / ".config" if home is not None or not xdg else Path(xdg)
        return config_home / "systemd" / "user" / UNIT_NAME
    home = Path(home) if home is not None else Path.home()
    if plat == "darwin":
        return home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"
    appdata = home / "AppData" / "Roaming"
    return appdata / "Microsoft" / "Windows" / "Start Menu" / "Programs" / "Startup" / \
        STARTUP_SCRIPT


def _systemd_quote(arg: str) -> str:
    """Quote one ExecStart argument: systemd splits on spaces and expands % specifiers."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"'


def systemd_unit(executable: Path, config: Path) -> str:
    command = " ".join(_systemd_quote(a) for a in (str(executable), "run", "-c", str(config)))
    return (
        "# Written by `docinbox autostart install`; remove with `docinbox autostart remove`.\n"
        "[Unit]\n"
        "Description=docinbox hot-folder document parser\n"
        "After=network-online.target graphical-session.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"WorkingDirectory={_systemd_quote(str(config.parent))}\n"
        f"ExecStart={command}\n"
        "Restart=on-failure\n"
        "RestartSec=10\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        "\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def launch_agent(executable: Path, config: Path, home: Path) -> bytes:
    logs = home / "Library" / "Logs"
    return plistlib.dumps({
        "Label": LAUNCH_AGENT_LABEL,
        "ProgramArguments": [str(executable), "run", "-c", str(config)],
        "WorkingDirectory": str(config.parent),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after Quit
        "ProcessType": "Interactive",             # it owns a menu-bar icon
        "LimitLoadToSessionType": "Aqua",
        "StandardOutPath": str(logs / "docinbox.log"),
        "StandardErrorPath": str(logs / "docinbox.log"),
    })


def startup_script(executable: Path, config: Path) -> str:
    # `start ""` detaches, so the login does not wait; /min keeps the console out of the way.
    return ("@echo off\r\n"
            "rem Written by `docinbox autostart install`; remove with "
            "`docinbox autostart remove`.\r\n"
            f'cd /d "{config.parent}"\r\n'
            f'start "docinbox" /min "{executable}" run -c "{config}"\r\n')


def activate_commands(path: Path, platform: str | None = None) -> list[list[str]]:
    """Commands that make the freshly written file take effect now."""
    plat = _platform(platform)
    if plat == "linux":
        return [["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", "--now", UNIT_NAME]]
    if plat == "darwin":
        return [["launchctl", "load", "-w", str(path)]]
    return []  # Windows runs the Startup folder at the next login


def deactivate_commands(path: Path, platform: str | None = None) -> list[list[str]]:
    plat = _platform(platform)
    if plat == "linux":
        return [["systemctl", "--user", "disable", "--now", UNIT_NAME]]
    if plat == "darwin":
        return [["launchctl", "unload", "-w", str(path)]]
    return []


def install(config_path: Path, *, platform: str | None = None, home: Path | None = None,
            executable: Path | None = None, runner: Runner | None = None) -> Path:
    """Write the autostart file for *config_path*; return its path.

    With a *runner* (e.g. ``lambda cmd: subprocess.run(cmd, check=True)``) also enable it
    now (``systemctl --user daemon-reload`` + ``enable --now``, or ``launchctl load``).
    """
    plat = _platform(platform)
    home = Path(home) if home is not None else Path.home()
    config = Path(config_path).expanduser().absolute()
    if not config.is_file():
        raise FileNotFoundError(f"no configuration at {config}")
    exe = Path(executable) if executable is not None else find_executable(plat)
    path = unit_path(plat, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    if plat == "linux":
        path.write_text(systemd_unit(exe, config), encoding="utf-8")
    elif plat == "darwin":
        path.write_bytes(launch_agent(exe, config, home))
    else:
        path.write_text(startup_script(exe, config), encoding="utf-8", newline="")
    if runner is not None:
        for command in activate_commands(path, plat):
            runner(command)
    return path


def remove(*, platform: str | None = None, home: Path | None = None,
           runner: Runner | None = None) -> Path | None:
    """Delete the autostart file; return its path, or None if there was none."""
    plat = _platform(platform)
    path = unit_path(plat, home)
    if not path.exists():
        return None
    if runner is not None:
        for command in deactivate_commands(path, plat):
            runner(command)
    path.unlink()
    if runner is not None and plat == "linux":
        runner(["systemctl", "--user", "daemon-reload"])
    return path


def default_runner(command: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
    """Run a registration command, raising if it fails."""
    return subprocess.run(list(command), check=True)
