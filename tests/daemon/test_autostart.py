"""``docinbox autostart``: each generated file and each command, with a fake runner.

The files themselves are checked by the real tools (systemd-analyze, a systemd user
manager, desktop-file-validate) in tests/acceptance/test_autostart.py; macOS and
Windows cannot run here, so their files and commands are only checked in this module.
"""

from __future__ import annotations

import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon import autostart, cli
from daemon.autostart import Host
from daemon.errors import ConfigError, DocinboxError

EXE = Path("/opt/docinbox venv/bin/docinbox")
UNIT = "docinbox.service"


def done(
    cmd: Sequence[str], code: int = 0, out: str = "", err: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(list(cmd), code, out, err)


class Systemctl:
    """A user manager as ``systemctl --user`` sees it; records every command."""

    def __init__(
        self, *, reachable: bool = True, session: bool = False, fail: dict[str, str] | None = None
    ) -> None:
        self.reachable, self.session, self.fail = reachable, session, fail or {}
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(cmd))
        assert list(cmd[:2]) == ["systemctl", "--user"], cmd
        if not self.reachable:
            return done(cmd, 1, err="Failed to connect to bus: No medium found")
        verb = cmd[2]
        if verb in self.fail:
            return done(cmd, 1, err=self.fail[verb])
        if list(cmd[2:]) == ["is-active", "graphical-session.target"]:
            return done(cmd, 0, "active\n") if self.session else done(cmd, 3, "inactive\n")
        return done(cmd)

    def verbs(self) -> list[list[str]]:
        return [c[2:] for c in self.calls]


def linux(
    tmp_path: Path, run: autostart.Runner | None = None, *, systemd: bool = True, **environ: str
) -> Host:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return Host(
        platform="linux", home=home, environ=environ, cwd=tmp_path, run=run, systemd=systemd
    )


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "my docs ü"  # a space and non-ASCII, to check quoting
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text("[folders]\ninbox = 'inbox'\n")
    return path


def unit_text(host: Host) -> str:
    return autostart.systemd_unit_path(host).read_text("utf-8")


def setting(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]


# --- the systemd unit ----------------------------------------------------------------------


def test_working_directory_is_a_plain_absolute_path(tmp_path: Path, config: Path) -> None:
    # systemd takes WorkingDirectory= raw: a quoted value "is not absolute" and the unit
    # does not start (systemd-analyze verify said so of the old unit).
    host = linux(tmp_path)
    autostart.install(config, host=host, executable=EXE)
    assert setting(unit_text(host), "WorkingDirectory") == [str(config.parent)]


def test_exec_start_quotes_each_argument_by_systemds_rules() -> None:
    # Checked against systemd 252 itself in the acceptance test (systemctl show).
    assert autostart.systemd_exec_word("/a b/ü") == '"/a b/ü"'
    assert autostart.systemd_exec_word('/1"2\\3') == '"/1\\"2\\\\3"'
    assert autostart.systemd_exec_word("/100%/$HOME") == '"/100%%/$$HOME"'
    assert autostart.systemd_exec_word("/a\nb\tc") == '"/a\\x0ab\\x09c"'


def test_exec_start_runs_this_environments_docinbox_with_the_absolute_config(
    tmp_path: Path, config: Path
) -> None:
    host = linux(tmp_path)
    autostart.install(config, host=host, executable=EXE)
    assert setting(unit_text(host), "ExecStart") == [f'"{EXE}" "run" "-c" "{config}"']


@pytest.mark.parametrize("name", ["trailing blank ", "new\nline", "back\\"])
def test_working_directory_is_left_out_where_a_unit_cannot_carry_it(
    tmp_path: Path, name: str
) -> None:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.toml").write_text("")
    text = autostart.systemd_unit([str(EXE)], folder / "config.toml")
    assert setting(text, "WorkingDirectory") == []  # -c is absolute: the cwd is not needed


def test_percent_in_working_directory_is_not_a_specifier(tmp_path: Path) -> None:
    folder = tmp_path / "100%h"
    folder.mkdir()
    (folder / "config.toml").write_text("")
    text = autostart.systemd_unit([str(EXE)], folder / "config.toml")
    assert setting(text, "WorkingDirectory") == [f"{tmp_path}/100%%h"]


def test_unit_belongs_to_the_graphical_session(tmp_path: Path, config: Path) -> None:
    text = autostart.systemd_unit([str(EXE)], config)
    assert setting(text, "PartOf") == ["graphical-session.target"]
    assert setting(text, "After") == ["graphical-session.target"]
    assert setting(text, "WantedBy") == ["graphical-session.target"]
    assert "default.target" not in text and "network-online" not in text


def test_unit_restarts_after_a_crash_only(config: Path) -> None:
    text = autostart.systemd_unit([str(EXE)], config)
    assert setting(text, "Restart") == ["on-failure"]  # exit 0 (SIGTERM, Quit) is a stop
    assert setting(text, "RestartPreventExitStatus") == ["2 3"]
    assert setting(text, "RestartSec") == ["10"]
    assert setting(text, "StartLimitBurst") == ["5"]
    assert setting(text, "StartLimitIntervalSec") == ["300"]
    # The codes that must not restart are the CLI's own.
    assert autostart.NO_RESTART_EXIT_CODES == (cli.EXIT_USAGE, cli.EXIT_STORE)


# --- where the files go: install and remove agree ------------------------------------------


def test_install_and_remove_agree_without_xdg_config_home(tmp_path: Path, config: Path) -> None:
    host = linux(tmp_path, Systemctl())
    report = autostart.install(config, host=host, executable=EXE)
    path = host.home / ".config/systemd/user/docinbox.service"
    assert [e.location for e in report.entries] == [str(path)]
    assert path.is_file()
    removed = autostart.remove(host=host)  # raised TypeError before
    assert [e.location for e in removed.entries] == [str(path)]
    assert not path.exists()
    assert autostart.remove(host=host).entries == []


def test_install_and_remove_agree_with_xdg_config_home(tmp_path: Path, config: Path) -> None:
    xdg = tmp_path / "xdg config"
    host = linux(tmp_path, Systemctl(), XDG_CONFIG_HOME=str(xdg))
    autostart.install(config, host=host, executable=EXE)
    path = xdg / "systemd/user/docinbox.service"
    assert path.is_file()
    assert not (host.home / ".config").exists()
    assert [e.location for e in autostart.remove(host=host).entries] == [str(path)]
    assert not path.exists()


def test_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    # XDG Base Directory spec: relative paths are invalid and must be ignored.
    host = linux(tmp_path, XDG_CONFIG_HOME="relative/dir")
    assert autostart.config_home(host) == host.home / ".config"


# --- talking to the user manager -----------------------------------------------------------


def test_in_a_running_graphical_session_it_is_enabled_and_started(
    tmp_path: Path, config: Path
) -> None:
    systemctl = Systemctl(session=True)
    report = autostart.install(config, host=linux(tmp_path, systemctl), executable=EXE)
    assert systemctl.verbs() == [
        ["is-active", "graphical-session.target"],
        ["daemon-reload"],
        ["enable", UNIT],
        ["restart", UNIT],
    ]
    assert report.warnings == []
    assert any("started" in n for n in report.notes)


def test_outside_a_graphical_session_it_is_enabled_for_the_next_one(
    tmp_path: Path, config: Path
) -> None:
    systemctl = Systemctl(session=False)
    report = autostart.install(config, host=linux(tmp_path, systemctl), executable=EXE)
    assert systemctl.verbs() == [
        ["is-active", "graphical-session.target"],
        ["daemon-reload"],
        ["enable", UNIT],
    ]
    assert any("next graphical session" in n for n in report.notes)


def test_unreachable_user_manager_writes_the_unit_and_says_what_to_run(
    tmp_path: Path, config: Path
) -> None:
    # CI, `su`, SSH without a session bus: `systemctl --user` cannot connect.
    systemctl = Systemctl(reachable=False)
    host = linux(tmp_path, systemctl)
    report = autostart.install(config, host=host, executable=EXE)  # raised before
    assert autostart.systemd_unit_path(host).is_file()
    assert systemctl.verbs() == [["is-active", "graphical-session.target"]]
    [warning] = report.warnings
    assert "could not enable it now" in warning
    assert "Failed to connect to bus: No medium found" in warning
    assert (
        "systemctl --user daemon-reload && systemctl --user enable --now docinbox.service"
    ) in warning


def test_a_failing_systemctl_is_a_clear_error(tmp_path: Path, config: Path) -> None:
    systemctl = Systemctl(fail={"enable": "Unit file docinbox.service does not exist."})
    with pytest.raises(DocinboxError, match=r"enable docinbox\.service failed: Unit file"):
        autostart.install(config, host=linux(tmp_path, systemctl), executable=EXE)


def test_no_enable_writes_the_unit_only(tmp_path: Path, config: Path) -> None:
    host = linux(tmp_path, None)
    report = autostart.install(config, host=host, executable=EXE)
    assert autostart.systemd_unit_path(host).is_file()
    assert any(autostart.ENABLE_COMMAND in n for n in report.notes)


def test_reinstall_drops_links_of_older_units(tmp_path: Path, config: Path) -> None:
    # Older versions were WantedBy=default.target; `enable` would keep that link too.
    host = linux(tmp_path, Systemctl())
    units = autostart.config_home(host) / "systemd/user"
    (units / "default.target.wants").mkdir(parents=True)
    old = units / "default.target.wants" / UNIT
    old.symlink_to("../docinbox.service")
    autostart.install(config, host=host, executable=EXE)
    assert not old.is_symlink()


def test_remove_disables_stops_and_reloads(tmp_path: Path, config: Path) -> None:
    systemctl = Systemctl()
    host = linux(tmp_path, systemctl)
    autostart.install(config, host=host, executable=EXE)
    systemctl.calls.clear()
    autostart.remove(host=host)
    assert systemctl.verbs() == [
        ["is-active", "graphical-session.target"],
        ["disable", "--now", UNIT],
        ["daemon-reload"],
    ]


def test_remove_without_the_user_manager_still_removes_the_unit_and_its_links(
    tmp_path: Path, config: Path
) -> None:
    host = linux(tmp_path, Systemctl(reachable=False))
    autostart.install(config, host=host, executable=EXE)
    wants = autostart.config_home(host) / "systemd/user/graphical-session.target.wants"
    wants.mkdir()
    (wants / UNIT).symlink_to("../docinbox.service")  # as `enable` made it
    report = autostart.remove(host=host)
    assert not autostart.systemd_unit_path(host).exists()
    assert not (wants / UNIT).is_symlink()
    [warning] = report.warnings
    assert "systemctl --user stop docinbox.service" in warning


# --- the XDG autostart fallback ------------------------------------------------------------


def test_without_systemd_it_is_an_xdg_autostart_entry(tmp_path: Path, config: Path) -> None:
    run = Systemctl()
    host = linux(tmp_path, run, systemd=False)
    report = autostart.install(config, host=host, executable=EXE)
    path = host.home / ".config/autostart/docinbox.desktop"
    assert [(e.kind, e.location) for e in report.entries] == [("xdg", str(path))]
    assert run.calls == []
    assert not autostart.systemd_unit_path(host).exists()
    assert [e.kind for e in autostart.remove(host=host).entries] == ["xdg"]
    assert not path.exists()


def test_xdg_entry_honours_xdg_config_home(tmp_path: Path, config: Path) -> None:
    host = linux(tmp_path, None, systemd=False, XDG_CONFIG_HOME=str(tmp_path / "x"))
    autostart.install(config, host=host, executable=EXE)
    assert (tmp_path / "x/autostart/docinbox.desktop").is_file()
    assert autostart.remove(host=host).entries
    assert not (tmp_path / "x/autostart/docinbox.desktop").exists()


def test_desktop_that_never_starts_graphical_session_target_gets_an_xdg_entry(
    tmp_path: Path, config: Path
) -> None:
    # Xfce, MATE, plain window managers: systemd runs, the session target never starts.
    systemctl = Systemctl(session=False)
    host = linux(tmp_path, systemctl, DISPLAY=":0")
    report = autostart.install(config, host=host, executable=EXE)
    assert [e.kind for e in report.entries] == ["xdg"]
    assert not autostart.systemd_unit_path(host).exists()
    assert systemctl.verbs() == [["is-active", "graphical-session.target"]]


def test_choosing_one_kind_removes_the_other(tmp_path: Path, config: Path) -> None:
    systemctl = Systemctl()
    host = linux(tmp_path, systemctl)
    autostart.install(config, host=host, executable=EXE)
    report = autostart.install(config, host=host, method="xdg", executable=EXE)
    assert ["disable", "--now", UNIT] in systemctl.verbs()
    assert not autostart.systemd_unit_path(host).exists()
    assert autostart.desktop_entry_path(host).is_file()
    assert any("removed the systemd user unit" in n for n in report.notes)
    autostart.install(config, host=host, method="systemd", executable=EXE)
    assert not autostart.desktop_entry_path(host).exists()
    assert autostart.systemd_unit_path(host).is_file()


def test_remove_removes_both_kinds(tmp_path: Path, config: Path) -> None:
    host = linux(tmp_path, None)
    autostart.install(config, host=host, executable=EXE)
    path = autostart.desktop_entry_path(host)
    path.parent.mkdir(parents=True)
    path.write_text(autostart.desktop_entry([str(EXE)], config))
    report = autostart.remove(host=host)
    assert sorted(e.kind for e in report.entries) == ["systemd", "xdg"]


def test_desktop_entry_exec_follows_the_desktop_entry_spec(config: Path) -> None:
    text = autostart.desktop_entry([str(EXE)], config)
    assert setting(text, "Exec") == [f'"{EXE}" "run" "-c" "{config}"']
    assert setting(text, "TryExec") == [str(EXE)]
    assert setting(text, "Path") == [str(config.parent)]
    assert setting(text, "Type") == ["Application"]
    # Reserved characters quoted and escaped, then escaped again as a string value.
    assert autostart.desktop_exec_word('/a$b`c"d\\e') == '"/a\\\\$b\\\\`c\\\\"d\\\\\\\\e"'
    assert autostart.desktop_exec_word("/100%") == '"/100%%"'
    with pytest.raises(ConfigError, match="control characters"):
        autostart.desktop_exec_word("/a\nb")


# --- macOS ---------------------------------------------------------------------------------


class Launchctl:
    def __init__(
        self, *, loaded: bool = False, bootstrap_error: str = "", lingers: int = 0
    ) -> None:
        self.loaded, self.bootstrap_error, self.lingers = loaded, bootstrap_error, lingers
        self.calls: list[list[str]] = []

    def __call__(self, cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(list(cmd))
        verb = cmd[1]
        if verb == "bootout":
            was, self.loaded = self.loaded, False
            return done(cmd) if was else done(cmd, 3, err="Boot-out failed: 3: No such process")
        if verb == "print":  # launchd lets go of the label a little after bootout
            self.lingers -= 1
            return done(cmd) if self.lingers >= 0 else done(cmd, 113)
        if verb == "bootstrap" and self.bootstrap_error:
            return done(cmd, 5, err=self.bootstrap_error)
        return done(cmd)


def mac(tmp_path: Path, run: autostart.Runner) -> Host:
    return Host(
        platform="darwin",
        home=tmp_path,
        environ={},
        cwd=tmp_path,
        run=run,
        uid=501,
        sleep=lambda _s: None,
    )


def test_macos_launch_agent(tmp_path: Path, config: Path) -> None:
    launchctl = Launchctl()
    report = autostart.install(config, host=mac(tmp_path, launchctl), executable=EXE)
    path = tmp_path / "Library/LaunchAgents/net.docinbox.daemon.plist"
    assert [e.location for e in report.entries] == [str(path)]
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "net.docinbox.daemon"
    assert plist["ProgramArguments"] == [str(EXE), "run", "-c", str(config)]
    assert plist["WorkingDirectory"] == str(config.parent)
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}  # not restarted after Quit
    assert launchctl.calls == [
        ["launchctl", "bootout", "gui/501/net.docinbox.daemon"],
        ["launchctl", "enable", "gui/501/net.docinbox.daemon"],
        ["launchctl", "bootstrap", "gui/501", str(path)],
    ]
    assert report.warnings == []

    launchctl.calls.clear()
    assert [e.location for e in autostart.remove(host=mac(tmp_path, launchctl)).entries] == [
        str(path)
    ]
    assert launchctl.calls == [["launchctl", "bootout", "gui/501/net.docinbox.daemon"]]
    assert not path.exists()


def test_macos_reinstall_waits_for_launchd_to_let_go(tmp_path: Path, config: Path) -> None:
    launchctl = Launchctl(loaded=True, lingers=2)
    autostart.install(config, host=mac(tmp_path, launchctl), executable=EXE)
    verbs = [c[1] for c in launchctl.calls]
    assert verbs == ["bootout", "print", "print", "print", "enable", "bootstrap"]


def test_macos_without_a_gui_domain_keeps_the_agent_and_says_what_to_run(
    tmp_path: Path, config: Path
) -> None:
    launchctl = Launchctl(
        bootstrap_error="Bootstrap failed: 125: Domain does not support specified action"
    )
    report = autostart.install(config, host=mac(tmp_path, launchctl), executable=EXE)
    path = tmp_path / "Library/LaunchAgents/net.docinbox.daemon.plist"
    assert path.is_file()
    [warning] = report.warnings
    assert "Bootstrap failed: 125" in warning
    assert f"launchctl bootstrap gui/501 '{path}'" in warning


# --- Windows -------------------------------------------------------------------------------


class Registry:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, name: str, command: str) -> None:
        self.values[name] = command

    def delete(self, name: str) -> bool:
        return self.values.pop(name, None) is not None


def windows(tmp_path: Path, registry: Registry | None) -> Host:
    return Host(
        platform="win32",
        home=tmp_path,
        environ={"APPDATA": str(tmp_path / "Roam")},
        cwd=tmp_path,
        run=None,
        registry=registry,
    )


def split_windows(line: str) -> list[str]:
    """The Microsoft C runtime's argument splitting ("Parsing C command-line arguments")."""
    args, cur, i, quoted, started = [], [], 0, False, False
    while i < len(line):
        ch = line[i]
        if ch == "\\":
            n = len(line) - i - len(line[i:].lstrip("\\"))
            if i + n < len(line) and line[i + n] == '"':
                cur.append("\\" * (n // 2))
                if n % 2:
                    cur.append('"')
                    i += n + 1
                else:
                    i += n
                started = True
                continue
            cur.append("\\" * n)
            i += n
            started = True
            continue
        if ch == '"':
            quoted, started = not quoted, True
        elif ch in " \t" and not quoted:
            if started:
                args.append("".join(cur))
            cur, started = [], False
        else:
            cur.append(ch)
            started = True
        i += 1
    if started:
        args.append("".join(cur))
    return args


@pytest.mark.parametrize(
    "args",
    [
        [r"C:\Program Files\venv\Scripts\docinboxw.exe", "run", "-c", r"C:\Users\ü\my docs\c.toml"],
        ["a\\\\b\\", 'q"uote', "", "tail\\"],
    ],
)
def test_windows_command_line_splits_back_to_the_arguments(args: list[str]) -> None:
    assert split_windows(autostart.windows_command_line(args)) == args


def test_windows_run_entry_starts_the_gui_launcher(
    tmp_path: Path, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripts = tmp_path / "venv" / "Scripts"
    scripts.mkdir(parents=True)
    (scripts / "python.exe").write_bytes(b"")
    (scripts / "docinboxw.exe").write_bytes(b"")  # from [project.gui-scripts]
    (scripts / "docinbox.exe").write_bytes(b"")
    monkeypatch.setattr(sys, "executable", str(scripts / "python.exe"))
    legacy = autostart.legacy_startup_script(windows(tmp_path, None))
    legacy.parent.mkdir(parents=True)
    legacy.write_text("@echo off\r\n")  # what older versions wrote (opens a console)

    registry = Registry()
    report = autostart.install(config, host=windows(tmp_path, registry))
    assert split_windows(registry.values["docinbox"]) == [
        str(scripts / "docinboxw.exe"),
        "run",
        "-c",
        str(config),
    ]
    assert [e.location for e in report.entries] == [
        r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\docinbox"
    ]
    assert not legacy.exists()
    assert autostart.remove(host=windows(tmp_path, registry)).entries
    assert registry.values == {}


def test_windows_falls_back_to_pythonw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "Scripts"
    scripts.mkdir()
    (scripts / "python.exe").write_bytes(b"")
    (scripts / "pythonw.exe").write_bytes(b"")
    monkeypatch.setattr(sys, "executable", str(scripts / "python.exe"))
    assert autostart.launcher(windows(tmp_path, None)) == [
        str(scripts / "pythonw.exe"),
        "-m",
        "daemon",
    ]


def test_gui_launcher_is_declared_and_installed() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert project["project"]["gui-scripts"]["docinboxw"] == "daemon.cli:main"
    assert (Path(sys.executable).parent / "docinboxw").is_file()  # pip made it here too


# --- which configuration ---------------------------------------------------------------------


def test_default_config_follows_the_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup every command uses (daemon.config.locate); the platform's file is
    platformdirs' on this machine, and whatever a Host of another platform names."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    host = linux(tmp_path)
    assert autostart.default_config(host) == tmp_path / ".config/docinbox/config.toml"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    assert autostart.default_config(host) == tmp_path / "x/docinbox/config.toml"
    (tmp_path / "config.toml").write_text("")
    assert autostart.default_config(host) == tmp_path / "config.toml"
    host = linux(tmp_path, DOCINBOX_CONFIG="elsewhere/c.toml")
    assert autostart.default_config(host) == tmp_path / "elsewhere/c.toml"
    mac = tmp_path / "m/Library/Application Support/docinbox/config.toml"
    mac_host = Host(platform="darwin", home=tmp_path / "m", environ={}, cwd=tmp_path / "m")
    mac_host.config_file = mac
    assert autostart.default_config(mac_host) == mac


def test_missing_config_is_refused(tmp_path: Path) -> None:
    host = linux(tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        autostart.install(tmp_path / "nope.toml", host=host, executable=EXE)
    assert not (host.home / ".config").exists()


def test_cli_refuses_a_broken_config_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    bad = tmp_path / "config.toml"
    bad.write_text("[folders\n")
    assert cli.main(["autostart", "install", "--no-enable", "-c", str(bad)]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / ".config").exists()


def test_cli_says_where_it_looked_for_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    for name in ("XDG_CONFIG_HOME", "DOCINBOX_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["autostart", "install", "--no-enable"]) == 2
    err = capsys.readouterr().err
    assert "$DOCINBOX_CONFIG, ./config.toml or " in err
    assert str(tmp_path / ".config/docinbox/config.toml") in err
    assert "docinbox init" in err and "pass -c CONFIG" in err


def test_default_executable_is_this_environments() -> None:
    [exe] = autostart.launcher(Host(platform="linux", home=Path("/"), environ={}, cwd=Path("/")))
    assert Path(exe).is_absolute()
    assert Path(exe).name == "docinbox"
    assert Path(exe).parent == Path(sys.executable).parent


def test_unsupported_platform_is_a_clear_error() -> None:
    with pytest.raises(DocinboxError, match="not supported"):
        autostart.normalize_platform("sunos5")
