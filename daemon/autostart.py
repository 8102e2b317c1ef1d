"""``docinbox autostart install|remove``: start docinbox with the user's session.

One entry per platform, written where that platform looks for it:

- Linux with systemd: a user unit, ``$XDG_CONFIG_HOME/systemd/user/docinbox.service``
  (default ``~/.config``), bound to ``graphical-session.target`` because docinbox is a
  tray program: it starts with the desktop and stops at logout.
- Linux without systemd, or a desktop that never starts ``graphical-session.target``: an
  XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/docinbox.desktop``.
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/net.docinbox.daemon.plist``, registered
  with ``launchctl bootstrap gui/<uid>``.
- Windows: a ``docinbox`` value under ``HKCU\\...\\CurrentVersion\\Run`` that runs the
  ``docinboxw.exe`` GUI launcher, so no console window opens.  A Startup-folder entry
  would need a ``.cmd`` (opens a console), a ``.vbs`` (VBScript is being removed from
  Windows) or a ``.pyw`` (only works where the py launcher owns that extension); the
  Run key needs none of them and shows in Task Manager's Startup apps like a shortcut.

Every entry runs the absolute ``docinbox`` of the installing environment as
``run -c <absolute config>``.  Everything that touches the machine (the platform, home,
environment, the commands that register an entry, the Windows registry) comes in through
a :class:`Host`, so tests drive each path with fakes and a temporary home.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from .errors import ConfigError, DocinboxError

UNIT_NAME = "docinbox.service"
DESKTOP_NAME = "docinbox.desktop"
LAUNCH_AGENT_LABEL = "net.docinbox.daemon"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "docinbox"
#: What earlier versions wrote into the Windows Startup folder (removed on sight).
LEGACY_STARTUP_SCRIPT = "docinbox.cmd"
#: ``docinbox run`` exit codes that a restart cannot cure: configuration (2), state
#: database or another daemon in the way (3).  See daemon/cli.py.
NO_RESTART_EXIT_CODES = (2, 3)

Kind = Literal["systemd", "xdg", "launchd", "windows"]
Method = Literal["auto", "systemd", "xdg"]
Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]

ENABLE_COMMAND = f"systemctl --user daemon-reload && systemctl --user enable --now {UNIT_NAME}"


class RunRegistry(Protocol):
    """The per-user Windows ``Run`` key (``HKEY_CURRENT_USER``)."""

    def set(self, name: str, command: str) -> None: ...

    def delete(self, name: str) -> bool: ...


class WinRegistry:
    """:class:`RunRegistry` on the real registry (Windows only)."""

    def set(self, name: str, command: str) -> None:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, command)

    def delete(self, name: str) -> bool:
        if sys.platform != "win32":
            raise OSError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return False
        return True


def default_runner(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a registration command; its outcome is returned, never raised."""
    try:
        return subprocess.run(
            list(command), capture_output=True, text=True, timeout=60, check=False
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(command), 127, "", f"{command[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            list(command), 124, "", f"{command[0]}: no answer within 60 s"
        )


def normalize_platform(name: str) -> str:
    if name.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return "linux"  # the XDG / systemd side
    if name in ("darwin", "win32"):
        return name
    raise DocinboxError(
        f"autostart is not supported on {name!r}",
        hint="Start `docinbox run` from your session's own autostart.",
    )


@dataclass
class Host:
    """The machine as autostart sees it; tests build one with fakes."""

    platform: str
    home: Path
    environ: Mapping[str, str]
    cwd: Path
    #: Runs registration commands; None writes the entry only (``--no-enable``).
    run: Runner | None = default_runner
    #: systemd is the service manager here (sd_booted(3): /run/systemd/system exists).
    systemd: bool = False
    uid: int = 0
    registry: RunRegistry | None = None
    sleep: Callable[[float], None] = time.sleep
    #: The platform's configuration file (``docinbox init`` writes it); None: this
    #: machine's (:func:`daemon.config.user_dirs`).
    config_file: Path | None = None

    @classmethod
    def current(cls, *, enable: bool = True) -> Host:
        platform = normalize_platform(sys.platform)
        return cls(
            platform=platform,
            home=Path.home(),
            environ=dict(os.environ),
            cwd=Path.cwd(),
            run=default_runner if enable else None,
            systemd=(
                platform == "linux"
                and Path("/run/systemd/system").is_dir()
                and shutil.which("systemctl") is not None
            ),
            uid=os.getuid() if hasattr(os, "getuid") else 0,
            registry=WinRegistry() if platform == "win32" and enable else None,
        )


@dataclass(frozen=True)
class Entry:
    kind: Kind
    location: str

    def describe(self) -> str:
        what = {
            "systemd": "systemd user unit",
            "xdg": "XDG autostart entry",
            "launchd": "LaunchAgent",
            "windows": "Windows Run entry",
        }[self.kind]
        return f"{what} {self.location}"


@dataclass
class Report:
    """What install/remove did, for the CLI to tell the user."""

    entries: list[Entry] = field(default_factory=list)
    #: Facts and next steps (stdout).
    notes: list[str] = field(default_factory=list)
    #: Something could not be done now; each says what to run instead (stderr).
    warnings: list[str] = field(default_factory=list)


# --- where things live ---------------------------------------------------------------------


def config_home(host: Host) -> Path:
    """``$XDG_CONFIG_HOME``, else ``~/.config`` (XDG Base Directory spec: a relative value
    is invalid and ignored).  systemd's user manager and desktops read the same."""
    xdg = host.environ.get("XDG_CONFIG_HOME", "")
    return Path(xdg) if xdg and os.path.isabs(xdg) else host.home / ".config"


def default_config(host: Host) -> Path:
    """The configuration docinbox uses when no ``-c`` is given (SPEC "Commands", one rule
    for every command: :func:`daemon.config.locate`)."""
    from . import config

    return config.locate(environ=host.environ, cwd=host.cwd, platform_file=host.config_file)


def absolute(path: Path, host: Host) -> Path:
    """Absolute and normalised, symlinks kept (a linked config stays linked)."""
    path = path.expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else host.cwd / path))


def systemd_unit_path(host: Host) -> Path:
    return config_home(host) / "systemd" / "user" / UNIT_NAME


def desktop_entry_path(host: Host) -> Path:
    return config_home(host) / "autostart" / DESKTOP_NAME


def launch_agent_path(host: Host) -> Path:
    return host.home / "Library" / "LaunchAgents" / f"{LAUNCH_AGENT_LABEL}.plist"


def legacy_startup_script(host: Host) -> Path:
    appdata = host.environ.get("APPDATA")
    roaming = Path(appdata) if appdata else host.home / "AppData" / "Roaming"
    return (
        roaming
        / "Microsoft"
        / "Windows"
        / "Start Menu"
        / "Programs"
        / "Startup"
        / LEGACY_STARTUP_SCRIPT
    )


def launcher(host: Host, executable: Path | None = None) -> list[str]:
    """The command that starts docinbox from this environment, before ``run -c ...``.

    On Windows the ``docinboxw.exe`` GUI launcher ([project.gui-scripts]) so that no
    console opens, else ``pythonw.exe -m daemon``; elsewhere the ``docinbox`` script.
    """
    if executable is not None:
        return [str(executable)]
    bindir = Path(sys.executable).parent
    folders = (bindir, bindir / "Scripts")
    names = ("docinboxw.exe",) if host.platform == "win32" else ("docinbox",)
    for folder in folders:
        for name in names:
            if (folder / name).is_file():
                return [os.path.abspath(folder / name)]
    if host.platform == "win32":
        for folder in folders:
            if (folder / "pythonw.exe").is_file():
                return [os.path.abspath(folder / "pythonw.exe"), "-m", "daemon"]
    else:
        found = shutil.which("docinbox")
        if found:
            return [os.path.abspath(found)]
    raise DocinboxError(
        f"no docinbox launcher beside {sys.executable}",
        hint="Install docinbox into this environment first "
        "(pip install -e .), then run this command again.",
    )


# --- the files -----------------------------------------------------------------------------

_CONTROL = {chr(c) for c in range(0x20)} | {"\x7f"}


def _utf8(text: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"{what} is not valid UTF-8: {text!r}",
            hint="Move it to a folder whose name is valid UTF-8.",
        ) from exc
    return text


def systemd_exec_word(arg: str) -> str:
    """One argument of ``ExecStart=``, double-quoted.

    systemd.syntax(7) "Quoting": inside double quotes C-style escapes apply, so ``\\`` and
    ``"`` are escaped and control characters become ``\\xNN``; systemd.service(5)
    "Command lines": ``%`` specifiers and ``$`` variables are expanded after unquoting,
    so they are written ``%%`` and ``$$``.
    """
    out = []
    for ch in _utf8(arg, "this path"):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "$":
            out.append("$$")
        elif ch in _CONTROL:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_path_value(path: str) -> str | None:
    """A path for ``WorkingDirectory=``, or None where the unit file cannot carry it.

    That setting takes the raw value (no quotes, no escapes; systemd.exec(5), and
    config_parse_working_directory in systemd's load-fragment.c), expanding only ``%``
    specifiers.  The unit-file parser strips trailing blanks and joins a line that ends in
    a backslash with the next, and a line cannot hold a control character.
    """
    _utf8(path, "this path")
    if any(ch in _CONTROL for ch in path) or path != path.rstrip() or path.endswith("\\"):
        return None
    return path.replace("%", "%%")


def systemd_unit(command: Sequence[str], config: Path) -> str:
    """The user unit: part of the graphical session, restarted after a crash only."""
    workdir = systemd_path_value(str(config.parent))
    codes = " ".join(str(c) for c in NO_RESTART_EXIT_CODES)
    return "\n".join(
        [
            "# Written by `docinbox autostart install`; remove with `docinbox autostart remove`.",
            "[Unit]",
            "Description=docinbox hot-folder document parser (tray)",
            # A tray program belongs to the graphical session (systemd.special(7),
            # graphical-session.target): started with it, stopped with it at logout.
            "PartOf=graphical-session.target",
            "After=graphical-session.target",
            # A crash is retried 5 times in 5 minutes, then the unit stays failed.
            "StartLimitIntervalSec=300",
            "StartLimitBurst=5",
            "",
            "[Service]",
            # exec: `systemctl start` fails when the executable is gone (deleted venv).
            "Type=exec",
            *([f"WorkingDirectory={workdir}"] if workdir is not None else []),
            "ExecStart="
            + " ".join(systemd_exec_word(a) for a in [*command, "run", "-c", str(config)]),
            # A plain stop (SIGTERM) exits 0, a clean exit; configuration errors (2) and
            # "already running" (3) are not cured by a restart.
            "Restart=on-failure",
            "RestartSec=10",
            f"RestartPreventExitStatus={codes}",
            "Environment=PYTHONUNBUFFERED=1",
            "",
            "[Install]",
            "WantedBy=graphical-session.target",
            "",
        ]
    )


def desktop_string(value: str) -> str:
    """A value of type string in a desktop entry (Desktop Entry spec, "Possible value
    types"): ``\\`` is ``\\\\``; a leading blank, tab, newline and return are escaped."""
    out = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    out = out.replace("\r", "\\r")
    return "\\s" + out[1:] if out.startswith(" ") else out


def desktop_exec_word(arg: str) -> str:
    """One argument of ``Exec=`` (Desktop Entry spec, "The Exec key").

    Quoted in double quotes with ``"`` `` ` `` ``$`` ``\\`` backslash-escaped; ``%`` is a
    field code, so a literal one is ``%%``; then the whole value is escaped as a string
    (so a backslash is written four times).  A control character cannot be quoted.
    """
    if any(ch in _CONTROL for ch in _utf8(arg, "this path")):
        raise ConfigError(
            f"a desktop entry cannot run a path with control characters: {arg!r}",
            hint="Move it to a folder with a plain name.",
        )
    quoted = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg.replace("%", "%%"))
    return desktop_string(f'"{quoted}"')


def desktop_entry(command: Sequence[str], config: Path) -> str:
    """The XDG autostart entry (Desktop Application Autostart spec)."""
    workdir = str(config.parent)
    lines = [
        "# Written by `docinbox autostart install`; remove with `docinbox autostart remove`.",
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.0",
        "Name=docinbox",
        "Comment=Hot-folder document parser (tray)",
        "Exec=" + " ".join(desktop_exec_word(a) for a in [*command, "run", "-c", str(config)]),
        # Skipped, not failed, once the environment it points to is gone.
        f"TryExec={desktop_string(command[0])}",
        "Terminal=false",
        "NoDisplay=true",
    ]
    if not any(ch in _CONTROL for ch in workdir):
        lines.insert(-2, f"Path={desktop_string(workdir)}")
    return "\n".join(lines) + "\n"


def launch_agent(command: Sequence[str], config: Path, home: Path) -> bytes:
    """The LaunchAgent (launchd.plist(5))."""
    logs = home / "Library" / "Logs"
    return plistlib.dumps(
        {
            "Label": LAUNCH_AGENT_LABEL,
            "ProgramArguments": [*command, "run", "-c", str(config)],
            "WorkingDirectory": str(config.parent),
            "RunAtLoad": True,
            # Restarted after a non-zero exit (a crash), not after a plain stop (Quit,
            # SIGTERM: exit 0).  launchd cannot exempt exit codes 2 and 3 the way systemd's
            # RestartPreventExitStatus= does; ThrottleInterval spaces the retries instead.
            "KeepAlive": {"SuccessfulExit": False},
            "ThrottleInterval": 30,
            "ProcessType": "Interactive",  # it owns a menu-bar icon
            "LimitLoadToSessionType": "Aqua",
            "StandardOutPath": str(logs / "docinbox.log"),
            "StandardErrorPath": str(logs / "docinbox.log"),
        }
    )


def windows_command_line(args: Sequence[str]) -> str:
    """Join arguments for CreateProcess as the Microsoft C runtime splits them again
    ("Parsing C command-line arguments", Microsoft Learn): each in double quotes; a
    quote is ``\\"``; backslashes are doubled only where they precede a quote."""
    words = []
    for arg in args:
        out, backslashes = [], 0
        for ch in arg:
            if ch == "\\":
                backslashes += 1
                continue
            if ch == '"':
                out.append("\\" * (2 * backslashes + 1) + '"')
            else:
                out.append("\\" * backslashes + ch)
            backslashes = 0
        out.append("\\" * (2 * backslashes))
        words.append('"' + "".join(out) + '"')
    return " ".join(words)


# --- install / remove ----------------------------------------------------------------------


def install(
    config: Path, *, host: Host, method: Method = "auto", executable: Path | None = None
) -> Report:
    """Write the autostart entry that runs *config* (absolute, existing) and enable it.

    Whatever a missing session bus or GUI domain prevents is reported in
    ``Report.warnings`` with the command to run instead; the entry is written anyway.
    """
    if method != "auto" and host.platform != "linux":
        raise ConfigError(f"--method {method} applies to Linux only")
    if not config.is_absolute() or not config.is_file():
        raise ConfigError(f"configuration file not found: {config}")
    command = launcher(host, executable)
    if host.platform == "darwin":
        return _install_launchd(command, config, host)
    if host.platform == "win32":
        return _install_windows(command, config, host)
    return _install_linux(command, config, host, method)


def remove(*, host: Host) -> Report:
    """Remove whichever entries exist (both on Linux, where both may)."""
    if host.platform == "darwin":
        return _remove_launchd(host)
    if host.platform == "win32":
        return _remove_windows(host)
    report = Report()
    _remove_systemd(host, report)
    _remove_desktop_entry(host, report)
    return report


# --- Linux ---------------------------------------------------------------------------------


def _systemctl(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    assert host.run is not None
    return host.run(["systemctl", "--user", *args])


def _why(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stderr or result.stdout or "").strip().splitlines()
    return text[-1] if text else f"exit status {result.returncode}"


def _graphical_session(host: Host) -> tuple[bool | None, str]:
    """Is graphical-session.target active?  None: the user manager is out of reach
    (no ``XDG_RUNTIME_DIR`` / session bus: CI, ``su``, some SSH logins)."""
    result = _systemctl(host, "is-active", "graphical-session.target")
    # systemctl(1) "is-active": 0 when active, 3 for any other state of a known manager.
    if result.returncode == 0:
        return True, ""
    if result.returncode == 3:
        return False, ""
    return None, _why(result)


def _enablement_links(host: Host) -> Iterator[Path]:
    """The symlinks ``systemctl enable`` made (in any ``*.wants``/``*.requires``)."""
    units = config_home(host) / "systemd" / "user"
    for pattern in ("*.wants", "*.requires"):
        for folder in units.glob(pattern):
            link = folder / UNIT_NAME
            if link.is_symlink():
                yield link


def _install_linux(command: list[str], config: Path, host: Host, method: Method) -> Report:
    report = Report()
    if method == "xdg" or (method == "auto" and not host.systemd):
        if method == "auto":
            report.notes.append("systemd is not this system's service manager here.")
        return _write_desktop_entry(command, config, host, report)

    session = reason = None
    if host.run is not None:
        session, reason = _graphical_session(host)
    if (
        method == "auto"
        and session is False
        and (host.environ.get("DISPLAY") or host.environ.get("WAYLAND_DISPLAY"))
    ):
        # In a desktop that does not start graphical-session.target (Xfce, MATE, many
        # window managers) a unit wanted by it would never start: that desktop runs
        # XDG autostart entries instead.
        report.notes.append(
            "your desktop does not start systemd's graphical-session."
            "target, so docinbox starts from an XDG autostart entry."
        )
        return _write_desktop_entry(command, config, host, report)

    _write_systemd_unit(command, config, host, report)
    if host.run is None:
        report.notes.append(f"not enabled (--no-enable); to enable it: {ENABLE_COMMAND}")
        return report
    return _enable_unit(host, session, reason, report)


def _write_systemd_unit(command: list[str], config: Path, host: Host, report: Report) -> None:
    """The unit written in place of any earlier way of starting docinbox, so that it
    never starts twice."""
    path = systemd_unit_path(host)
    for link in _enablement_links(host):  # e.g. WantedBy=default.target of old versions
        link.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, systemd_unit(command, config))
    report.entries.append(Entry("systemd", str(path)))
    if _remove_desktop_entry(host, Report()):
        report.notes.append(f"removed the XDG autostart entry {desktop_entry_path(host)}")


def _enable_unit(host: Host, session: bool | None, reason: str | None, report: Report) -> Report:
    """Enabled (and started, inside a graphical session) when the user manager can be
    reached; from elsewhere the user is told the command to run in the session."""
    if session is None:
        report.warnings.append(
            "could not enable it now: the systemd user manager is not reachable from "
            f"this shell ({reason}). In a terminal of your graphical session, run:\n"
            f"    {ENABLE_COMMAND}"
        )
        return report
    for args in (("daemon-reload",), ("enable", UNIT_NAME)):
        _check(host, args)
    if session:
        _check(host, ("restart", UNIT_NAME))
        report.notes.append("enabled and started: it runs with your graphical session.")
    else:
        report.notes.append(
            "enabled: it starts with your next graphical session "
            "(desktops that start systemd's graphical-session.target; "
            "on others use --method xdg from the desktop's terminal)."
        )
    return report


def _check(host: Host, args: Sequence[str]) -> None:
    result = _systemctl(host, *args)
    if result.returncode != 0:
        raise DocinboxError(
            f"systemctl --user {' '.join(args)} failed: {_why(result)}",
            hint=f"The unit is at {systemd_unit_path(host)}; fix what "
            "systemctl says and run the install again.",
        )


def _write_desktop_entry(command: list[str], config: Path, host: Host, report: Report) -> Report:
    path = desktop_entry_path(host)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_text(path, desktop_entry(command, config))
    report.entries.append(Entry("xdg", str(path)))
    report.notes.append("it starts at your next login to the desktop.")
    # One entry only: two would start two daemons, and the second exits "already running".
    if _remove_systemd(host, report, replaced=True):
        report.notes.append(f"removed the systemd user unit {systemd_unit_path(host)}")
    return report


def _remove_systemd(host: Host, report: Report, *, replaced: bool = False) -> bool:
    """Disable, stop and delete the unit; True if there was one.  *replaced*: the
    caller reports it (the removal is a side note of installing the other kind)."""
    path = systemd_unit_path(host)
    links = list(_enablement_links(host))
    if not path.exists() and not links:
        return False
    session = reason = None
    if host.run is not None and host.systemd:
        session, reason = _graphical_session(host)
        if session is not None:
            result = _systemctl(host, "disable", "--now", UNIT_NAME)
            if result.returncode != 0:
                report.warnings.append(f"systemctl --user disable --now failed: {_why(result)}")
    for link in _enablement_links(host):
        link.unlink()
    if path.exists():
        path.unlink()
    if session is not None:
        _systemctl(host, "daemon-reload")
    elif host.run is not None and host.systemd:
        report.warnings.append(
            "the systemd user manager is not reachable from this shell "
            f"({reason}): docinbox will not start at your next login, but one running now "
            "keeps running. To stop it, Quit it from the tray, or in a terminal of your "
            f"graphical session run:\n    systemctl --user stop {UNIT_NAME}; "
            "systemctl --user daemon-reload"
        )
    if not replaced:
        report.entries.append(Entry("systemd", str(path)))
    return True


def _remove_desktop_entry(host: Host, report: Report) -> bool:
    path = desktop_entry_path(host)
    if not path.exists():
        return False
    path.unlink()
    report.entries.append(Entry("xdg", str(path)))
    report.notes.append(
        "a docinbox started from it keeps running until you Quit it from the tray or log out."
    )
    return True


def _write_text(path: Path, text: str) -> None:
    """Whole or not at all: a unit cut short by a full disk would still be loaded."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8", newline="\n")
    os.replace(tmp, path)


# --- macOS ---------------------------------------------------------------------------------


def _launchctl(host: Host, *args: str) -> subprocess.CompletedProcess[str]:
    assert host.run is not None
    return host.run(["launchctl", *args])


def _install_launchd(command: list[str], config: Path, host: Host) -> Report:
    report = Report()
    path = launch_agent_path(host)
    domain, service = f"gui/{host.uid}", f"gui/{host.uid}/{LAUNCH_AGENT_LABEL}"
    if host.run is not None and _launchctl(host, "bootout", service).returncode == 0:
        # bootout returns before launchd has let go of the label; bootstrapping before
        # then fails with "5: Input/output error".  Wait (bounded) until it is gone.
        for _ in range(50):
            if _launchctl(host, "print", service).returncode != 0:
                break
            host.sleep(0.1)
    path.parent.mkdir(parents=True, exist_ok=True)
    (host.home / "Library" / "Logs").mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(launch_agent(command, config, host.home))
    os.replace(tmp, path)
    report.entries.append(Entry("launchd", str(path)))
    bootstrap = f"launchctl enable {service} && launchctl bootstrap {domain} '{path}'"
    if host.run is None:
        report.notes.append(f"not loaded (--no-enable); to load it: {bootstrap}")
        return report
    # `enable` clears a "disabled" override left by `launchctl unload -w` (older docinbox).
    _launchctl(host, "enable", service)
    result = _launchctl(host, "bootstrap", domain, str(path))
    if result.returncode != 0:
        report.warnings.append(
            f"could not load it now ({_why(result)}); it loads at your next login. To "
            f"start it now, in Terminal in your desktop session run:\n    {bootstrap}"
        )
    else:
        report.notes.append("loaded and started: it runs whenever you are logged in.")
    return report


def _remove_launchd(host: Host) -> Report:
    report = Report()
    path = launch_agent_path(host)
    if not path.exists():
        return report
    if host.run is not None:
        # Fails when it is not loaded, which is fine: the file is what brings it back.
        _launchctl(host, "bootout", f"gui/{host.uid}/{LAUNCH_AGENT_LABEL}")
    path.unlink()
    report.entries.append(Entry("launchd", str(path)))
    return report


# --- Windows -------------------------------------------------------------------------------


def _install_windows(command: list[str], config: Path, host: Host) -> Report:
    report = Report()
    line = windows_command_line([*command, "run", "-c", str(config)])
    location = f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"
    legacy = legacy_startup_script(host)
    if legacy.exists():
        legacy.unlink()
        report.notes.append(f"removed {legacy} (it opened a console window)")
    if host.registry is None:
        report.notes.append(f"not written (--no-enable); the value would be: {line}")
        return report
    host.registry.set(RUN_VALUE, line)
    report.entries.append(Entry("windows", location))
    report.notes.append("it starts at your next login, without a console window.")
    return report


def _remove_windows(host: Host) -> Report:
    report = Report()
    legacy = legacy_startup_script(host)
    if legacy.exists():
        legacy.unlink()
        report.entries.append(Entry("windows", str(legacy)))
    if host.registry is not None and host.registry.delete(RUN_VALUE):
        report.entries.append(Entry("windows", f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"))
    return report
