"""The CLI's side of the control commands: parsing, and the messages and exit codes
when there is nothing to control.  Against a running daemon:
tests/acceptance/test_desktop.py."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from daemon import cli
from tests.helpers import write_config


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2d", 172800), ("45", 2700)],
)
def test_durations(text: str, seconds: float) -> None:
    assert cli._duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "soon", "1x", "1h junk"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration"):
        cli._duration(text)


@pytest.mark.parametrize("command", ["pause", "resume", "stop", "reload"])
def test_no_daemon_is_a_clear_error(
    command: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(workdir)
    assert cli.main([command, "-c", str(config)]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert "no docinbox daemon is running on this configuration" in err
    assert "docinbox run" in err


def test_verbose_and_quiet_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli._parser()
    for command in ("run", "status", "init", "pause", "resume", "stop", "reload"):
        assert parser.parse_args([command, "-q"]).quiet
        assert parser.parse_args(["-v", command]).verbose_first
    assert parser.parse_args(["retry", "--failed", "-v"]).verbose
    assert parser.parse_args(["autostart", "remove", "-q"]).quiet
    with pytest.raises(SystemExit):
        cli.main(["-v", "status", "-q"])
    assert "contradict" in capsys.readouterr().err


def test_init_says_where_everything_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    assert cli.main(["init"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}/.config/docinbox/config.toml" in out
    assert f"drop documents into {tmp_path}/docinbox/inbox" in out
    assert cli.main(["init"]) == 0
    assert "already exists; left as it is" in capsys.readouterr().out
