"""`docinbox autostart install|remove` writes the right file for each platform."""

from __future__ import annotations

import plistlib
import shlex
from collections.abc import Sequence
from pathlib import Path

import pytest

from daemon import autostart


@pytest.fixture
def config(tmp_path: Path) -> Path:
    folder = tmp_path / "my docs"  # a space, to check quoting
    folder.mkdir()
    path = folder / "config.toml"
    path.write_text("[folders]\ninbox = 'inbox'\n")
    return path


EXE = Path("/opt/docinbox venv/bin/docinbox")


def test_systemd_user_unit(tmp_path: Path, config: Path) -> None:
    home = tmp_path / "home"
    commands: list[Sequence[str]] = []
    path = autostart.install(config, platform="linux", home=home, executable=EXE,
                             runner=commands.append)
    assert path == home / ".config/systemd/user/docinbox.service"
    text = path.read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_start.removeprefix("ExecStart=")) == [
        str(EXE), "run", "-c", str(config)]
    assert "WantedBy=default.target" in text
    assert "Restart=on-failure" in text
    assert commands == [["systemctl", "--user", "daemon-reload"],
                        ["systemctl", "--user", "enable", "--now", "docinbox.service"]]
    commands.clear()
    assert autostart.remove(platform="linux", home=home, runner=commands.append) == path
    assert not path.exists()
    assert commands == [["systemctl", "--user", "disable", "--now", "docinbox.service"],
                        ["systemctl", "--user", "daemon-reload"]]
    assert autostart.remove(platform="linux", home=home) is None


def test_relative_config_becomes_absolute(tmp_path: Path, config: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(config.parent)
    path = autostart.install(Path("config.toml"), platform="linux", home=tmp_path,
                             executable=EXE)
    assert f'"-c" "{config}"' in path.read_text()


def test_percent_signs_are_escaped_for_systemd(tmp_path: Path) -> None:
    folder = tmp_path / "100%"
    folder.mkdir()
    (folder / "config.toml").write_text("")
    path = autostart.install(folder / "config.toml", platform="linux", home=tmp_path,
                             executable=EXE)
    assert "100%%/config.toml" in path.read_text()


def test_macos_launch_agent(tmp_path: Path, config: Path) -> None:
    commands: list[Sequence[str]] = []
    path = autostart.install(config, platform="darwin", home=tmp_path, executable=EXE,
                             runner=commands.append)
    assert path == tmp_path / "Library/LaunchAgents/net.docinbox.daemon.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["ProgramArguments"] == [str(EXE), "run", "-c", str(config)]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert commands == [["launchctl", "load", "-w", str(path)]]
    assert autostart.remove(platform="darwin", home=tmp_path) == path
    assert not path.exists()


def test_windows_startup_folder(tmp_path: Path, config: Path) -> None:
    path = autostart.install(config, platform="win32", home=tmp_path, executable=EXE,
                             runner=lambda _cmd: pytest.fail("nothing to run on Windows"))
    assert path == (tmp_path / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs"
                    / "Startup/docinbox.cmd")
    data = path.read_bytes()
    assert b"\r\n" in data
    assert f'"{EXE}" run -c "{config}"'.encode() in data
    assert autostart.remove(platform="win32", home=tmp_path) == path


def test_missing_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no configuration"):
        autostart.install(tmp_path / "nope.toml", platform="linux", home=tmp_path,
                          executable=EXE)
    assert not (tmp_path / ".config").exists()


def test_default_executable_is_this_environments(tmp_path: Path, config: Path) -> None:
    exe = autostart.find_executable("linux")
    assert exe.is_absolute()
    assert exe.name == "docinbox"
