from __future__ import annotations

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
    with pytest.raises(ConfigError, match="NANONETS_API_KEY is not set"):
        _load(tmp_path, REAL)
    s = _load(tmp_path, REAL, NANONETS_API_KEY="k-env")
    assert s.services["nanonets"].credential.value == "k-env"
    (tmp_path / ".env").write_text('# keys\nexport NANONETS_API_KEY="k-dotenv"\n')
    s = _load(tmp_path, REAL)
    assert s.services["nanonets"].credential.value == "k-dotenv"
    # the environment wins over the .env file
    assert _load(tmp_path, REAL, NANONETS_API_KEY="k-env").services["nanonets"] \
        .credential.value == "k-env"


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
