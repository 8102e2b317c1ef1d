from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon import config
from daemon.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_runs_offline_without_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NANONETS_API_KEY", "MINERU_API_KEY", "DOCPARSE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = config.load(ROOT / "config.toml")
    assert settings.mock.embedded is True
    assert settings.folders.inbox == ROOT / "inbox"
    assert settings.folders.state == ROOT / "state" / "docinbox.db"
    assert [r.service for r in settings.routes] == ["docparse", "nanonets", "mineru"]
    assert settings.routes[0].folder == "private/**"
    assert settings.routes[1].max_pages == 3


def _load(tmp_path: Path, text: str, **env: str) -> config.Settings:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return config.load(path, environ=env)


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'folders\.inboks'"):
        _load(tmp_path, '[folders]\ninboks = "x"\n')
    with pytest.raises(ConfigError, match=r"'routes\[0\]\.max_pagez'"):
        _load(tmp_path, '[[routes]]\nservice = "nanonets"\nmax_pagez = 3\n')
    with pytest.raises(ConfigError, match=r"'colour'"):
        _load(tmp_path, 'colour = "blue"\n')


def test_bad_values_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"routes\[0\]\.max_pages.*'three'"):
        _load(tmp_path, '[[routes]]\nservice = "nanonets"\nmax_pages = "three"\n')
    with pytest.raises(ConfigError, match=r"routes\[0\]\.service.*'ocrmagic'"):
        _load(tmp_path, '[[routes]]\nservice = "ocrmagic"\n')
    with pytest.raises(ConfigError, match=r"watcher\.mode"):
        _load(tmp_path, '[watcher]\nmode = "psychic"\n')
    with pytest.raises(ConfigError, match=r"routes\[0\]\.types: unknown type 'exe'"):
        _load(tmp_path, '[[routes]]\nservice = "mineru"\ntypes = ["exe"]\n')
    with pytest.raises(ConfigError, match="not valid TOML"):
        _load(tmp_path, "[folders\n")


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    s = _load(tmp_path, '[folders]\ninbox = "in"\narchive = ""\n')
    assert s.folders.inbox == tmp_path / "in"
    assert s.folders.archive is None  # "" deletes originals after success
    assert s.log.file == tmp_path / "state" / "docinbox.log"


def test_outbox_inside_inbox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="inside the inbox"):
        _load(tmp_path, '[folders]\ninbox = "in"\noutbox = "in/out"\n')
    with pytest.raises(ConfigError, match=r"folders.failed .* inside the inbox"):
        _load(tmp_path, '[folders]\ninbox = "in"\nfailed = "in"\n')


REAL = """
[mock]
embedded = false
[services.nanonets]
api_key = "env:NANONETS_API_KEY"
model_id = "m-1"
[[routes]]
service = "nanonets"
"""


def test_secret_from_env_or_dotenv(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match="NANONETS_API_KEY is set neither in the environment"
        " nor in " + re.escape(str(tmp_path / ".env")),
    ):
        _load(tmp_path, REAL)
    s = _load(tmp_path, REAL, NANONETS_API_KEY="k-env")
    assert s.services["nanonets"].credential.value == "k-env"
    (tmp_path / ".env").write_text('# keys\nexport NANONETS_API_KEY="k-dotenv"\n')
    s = _load(tmp_path, REAL)
    assert s.services["nanonets"].credential.value == "k-dotenv"
    # the environment wins over the .env file
    assert (
        _load(tmp_path, REAL, NANONETS_API_KEY="k-env").services["nanonets"].credential.value
        == "k-env"
    )


def test_secret_never_shows_in_repr(tmp_path: Path) -> None:
    s = _load(tmp_path, REAL, NANONETS_API_KEY="sekrit-value-123")
    assert "sekrit-value-123" not in repr(s)
    assert s.secrets() == ["sekrit-value-123"]


def test_unrouted_service_needs_no_section(tmp_path: Path) -> None:
    s = _load(tmp_path, REAL, NANONETS_API_KEY="k")
    assert set(s.services) == {"nanonets"}


def test_route_options_are_checked_per_service(tmp_path: Path) -> None:
    s = _load(tmp_path, '[[routes]]\nservice = "mineru"\nis_ocr = true\nlanguage = "en"\n')
    assert dict(s.routes[0].options) == {"is_ocr": True, "language": "en"}
    with pytest.raises(ConfigError, match=r"routes\[0\]\.is_ocr"):
        _load(tmp_path, '[[routes]]\nservice = "nanonets"\nis_ocr = true\n')
    with pytest.raises(ConfigError, match=r"routes\[0\]\.is_ocr: expected true or false"):
        _load(tmp_path, '[[routes]]\nservice = "mineru"\nis_ocr = "yes"\n')


# --- .env as the dotenv tools write it -------------------------------------------------------

DOTENV = """\
# keys from the dashboard
NANONETS_API_KEY=abc  # from the dashboard
export MINERU_API_KEY='single quoted # not a comment'
DOCPARSE_API_KEY = "double \\"quoted\\""
SPACED   =   padded value
EMPTY=
EMPTY_QUOTED=""
HASH_INSIDE=abc#def
DOLLAR=pa$$word${HOME}
MULTI="line one
line two"
NAME_ONLY
"""


def test_dotenv_forms(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(DOTENV, encoding="utf-8")
    values = config.read_dotenv(path)
    assert values == {
        "NANONETS_API_KEY": "abc",  # comment after the value dropped
        "MINERU_API_KEY": "single quoted # not a comment",  # export, single quotes
        "DOCPARSE_API_KEY": 'double "quoted"',  # spaces around =, escapes
        "SPACED": "padded value",
        "EMPTY": "",
        "EMPTY_QUOTED": "",
        "HASH_INSIDE": "abc#def",  # no space before #: part of it
        "DOLLAR": "pa$$word${HOME}",  # taken literally, never expanded
        "MULTI": "line one\nline two",  # a quoted value over two lines
    }  # NAME_ONLY: no value, skipped
    assert config.read_dotenv(tmp_path / "absent") == {}


def test_a_dotenv_line_that_cannot_be_parsed_is_an_error_naming_file_and_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / ".env"
    path.write_text('GOOD=1\nNANONETS_API_KEY="abc\n', encoding="utf-8")  # quote never closed
    with pytest.raises(ConfigError, match=re.escape(f"{path}: line 2 is not NAME=value")):
        config.read_dotenv(path)
    path.write_bytes(b"KEY=\xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        config.read_dotenv(path)


def test_secret_origin_names_the_variable_and_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NANONETS_API_KEY=from-file  # dashboard\n")
    credential = _load(tmp_path, REAL).services["nanonets"].credential
    assert credential.value == "from-file"
    assert credential.origin == f"NANONETS_API_KEY from {tmp_path / '.env'}"
    credential = _load(tmp_path, REAL, NANONETS_API_KEY="from-env").services["nanonets"].credential
    assert credential.origin == "NANONETS_API_KEY from the environment"
    # an empty variable counts as unset: the .env's value is used
    assert (
        _load(tmp_path, REAL, NANONETS_API_KEY="")
        .services["nanonets"]
        .credential.origin.endswith(".env")
    )
    inline = _load(tmp_path, REAL.replace('"env:NANONETS_API_KEY"', '"k-inline"'))
    assert (
        inline.services["nanonets"].credential.origin
        == f"services.nanonets.api_key in {tmp_path / 'c.toml'}"
    )
    assert config.Secret("x", "mock").origin == "the embedded mock's own credential"
    assert "from-file" not in repr(credential) and "from-env" not in repr(credential)


def test_a_missing_key_names_the_variable_and_the_dotenv_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, REAL)
    assert caught.value.message == (
        f"services.nanonets.api_key: NANONETS_API_KEY is set neither in the environment "
        f"nor in {tmp_path / '.env'}"
    )
    assert caught.value.hint == (
        f"Set NANONETS_API_KEY in the environment, or add a line "
        f"NANONETS_API_KEY=... to {tmp_path / '.env'}."
    )


# --- [network] proxy -------------------------------------------------------------------------


def test_network_proxy(tmp_path: Path) -> None:
    assert _load(tmp_path, REAL, NANONETS_API_KEY="k").services["nanonets"].proxy == ""
    s = _load(tmp_path, '[network]\nproxy = "proxy.corp:3128"\n' + REAL, NANONETS_API_KEY="k")
    assert s.services["nanonets"].proxy == "http://proxy.corp:3128"
    s = _load(tmp_path, '[network]\nproxy = "direct"\n' + REAL, NANONETS_API_KEY="k")
    assert s.services["nanonets"].proxy == "direct"
    with pytest.raises(ConfigError, match=r"network\.proxy: 'ftp://u:\*\*\*@p:21' is not a"):
        _load(tmp_path, '[network]\nproxy = "ftp://u:pw@p:21"\n' + REAL, NANONETS_API_KEY="k")
    with pytest.raises(ConfigError, match=r"network\.proxy: 'http://p:port' is not a proxy URL"):
        _load(tmp_path, '[network]\nproxy = "http://p:port"\n' + REAL, NANONETS_API_KEY="k")
    with pytest.raises(ConfigError, match=r"unknown configuration key 'network\.proxies'"):
        _load(tmp_path, '[network]\nproxies = "x"\n' + REAL, NANONETS_API_KEY="k")


# --- where the configuration is, and `docinbox init` (issue 18) ------------------------------


def test_the_package_ships_the_repository_config_unchanged() -> None:
    """One source: what `docinbox init` starts from is ./config.toml, byte for byte."""
    assert config.template() == (ROOT / "config.toml").read_text("utf-8")


def test_locate_follows_the_spec(tmp_path: Path) -> None:
    platform = tmp_path / "platform/config.toml"
    cwd = tmp_path / "here"
    cwd.mkdir()
    where = {"cwd": cwd, "platform_file": platform}
    assert config.locate(environ={}, **where) == platform
    (cwd / "config.toml").write_text("")
    assert config.locate(environ={}, **where) == cwd / "config.toml"
    env = {"DOCINBOX_CONFIG": "../other.toml"}
    assert config.locate(environ=env, **where) == tmp_path / "other.toml"
    assert config.locate("mine.toml", environ=env, **where) == cwd / "mine.toml"


def test_the_platform_folders_follow_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(name, raising=False)
    dirs = config.user_dirs()
    assert dirs.config_file == tmp_path / ".config/docinbox/config.toml"
    assert dirs.state == tmp_path / ".local/state/docinbox"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "c"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "s"))
    assert config.user_dirs() == config.UserDirs(tmp_path / "c/docinbox", tmp_path / "s/docinbox")


def test_init_writes_the_commented_default_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    dirs = config.UserDirs(tmp_path / ".config/docinbox", tmp_path / ".local/state/docinbox")
    path, written = config.init(home=tmp_path, dirs=dirs, environ={})
    assert (path, written) == (dirs.config_file, True)
    text = path.read_text("utf-8")
    assert text.startswith("# Written by `docinbox init`")
    assert "# drop documents here (subfolders too)" in text  # the comments came along
    settings = config.load(path, environ={})
    assert settings.folders.inbox == tmp_path / "docinbox/inbox"
    assert settings.folders.archive == tmp_path / "docinbox/archive"
    assert settings.folders.state == tmp_path / ".local/state/docinbox/docinbox.db"
    assert settings.log.file == tmp_path / ".local/state/docinbox/docinbox.log"
    assert settings.mock.embedded is True
    assert (tmp_path / "docinbox/inbox").is_dir()
    path.write_text(text + "# mine\n")
    assert config.init(home=tmp_path, dirs=dirs, environ={}) == (path, False)
    assert path.read_text("utf-8").endswith("# mine\n")  # never overwritten


def test_a_missing_configuration_says_where_it_was_looked_for(tmp_path: Path) -> None:
    error = config.missing(tmp_path / "c.toml", explicit=False)
    assert "$DOCINBOX_CONFIG, ./config.toml or " in error.message
    assert "docinbox init" in error.hint
    assert config.missing(tmp_path / "c.toml", explicit=True).message.startswith(
        "configuration file not found"
    )


def test_the_log_file_may_be_under_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    s = _load(tmp_path, '[log]\nfile = "~/logs/d.log"\n')
    assert s.log.file == tmp_path / "h/logs/d.log"
