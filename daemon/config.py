"""config.toml → typed, validated :class:`Settings`.

Validation happens once, here, so the rest of the daemon can trust its settings:
an unknown key or a bad value stops start-up with a message naming it
(``routes[2].max_pages: expected a positive integer, got "three"``).
Relative paths resolve against the folder that holds the config file, and
``env:NAME`` secrets come from the environment or a ``.env`` beside the config (the
environment wins).  Each :class:`Secret` knows where its value came from, so a message
about a missing or rejected key can name the variable and the file.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import sys
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .services import REGISTRY
from .services.proxies import check_proxy
from .settings import (
    DEFAULT_ROUTES,
    DOCUMENT_TYPES,
    CallbackSettings,
    DaemonSettings,
    DashboardSettings,
    Folders,
    LogSettings,
    MockSettings,
    RetrySettings,
    ReviewSettings,
    Route,
    Secret,
    ServiceSettings,
    Settings,
    WatcherSettings,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: The variable that names the configuration file (SPEC "Commands").
CONFIG_ENV = "DOCINBOX_CONFIG"
#: The commented default configuration, shipped in the package: identical to the
#: repository's ``config.toml`` (tests/daemon/test_config.py checks it).
TEMPLATE = "default-config.toml"
#: Where ``docinbox init`` puts the folders: under the user's home, the same on every
#: platform, easy to find in a file manager.
HOME_FOLDER = "docinbox"
_APP = "docinbox"


@dataclass(frozen=True)
class UserDirs:
    """The platform's folders for docinbox (platformdirs): ``config`` holds config.toml,
    ``state`` the job database and the log."""

    config: Path
    state: Path

    @property
    def config_file(self) -> Path:
        return self.config / "config.toml"


def user_dirs() -> UserDirs:
    """This platform's folders for docinbox, as platformdirs names them.

    Linux ``$XDG_CONFIG_HOME/docinbox`` (``~/.config``) and ``$XDG_STATE_HOME/docinbox``
    (``~/.local/state``); macOS ``~/Library/Application Support/docinbox`` for both;
    Windows ``%APPDATA%\\docinbox`` (roaming: settings follow the user) and
    ``%LOCALAPPDATA%\\docinbox`` (the database stays on this machine).
    """
    import platformdirs

    config = platformdirs.PlatformDirs(_APP, appauthor=False, roaming=True)
    state = platformdirs.PlatformDirs(_APP, appauthor=False, roaming=False)
    return UserDirs(config=Path(config.user_config_dir), state=Path(state.user_state_dir))


def locate(
    explicit: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    platform_file: Path | None = None,
) -> Path:
    """The configuration every command uses (SPEC "Commands"): *explicit* (``-c``), else
    ``$DOCINBOX_CONFIG``, else ``./config.toml`` when it exists, else the platform's file
    (``docinbox init`` writes it).  Absolute, symlinks kept; it may not exist (the caller
    says so: :func:`load_located`)."""
    environ = os.environ if environ is None else environ
    cwd = Path.cwd() if cwd is None else cwd
    chosen: Path
    if explicit:
        chosen = Path(explicit)
    elif environ.get(CONFIG_ENV):
        chosen = Path(environ[CONFIG_ENV])
    elif (cwd / "config.toml").is_file():
        chosen = cwd / "config.toml"
    else:
        chosen = platform_file or user_dirs().config_file
    chosen = chosen.expanduser()
    return Path(os.path.normpath(chosen if chosen.is_absolute() else cwd / chosen))


def missing(path: Path, *, explicit: bool) -> ConfigError:
    """The error for a configuration that is not there, saying where docinbox looked."""
    if explicit:
        return ConfigError(f"configuration file not found: {path}")
    return ConfigError(
        f"no configuration: not in ${CONFIG_ENV}, ./config.toml or {path}",
        hint="Run `docinbox init` to write the default one there, or pass -c CONFIG.",
    )


def load_located(
    explicit: str | os.PathLike[str] | None = None, *, environ: Mapping[str, str] | None = None
) -> Settings:
    """:func:`locate`, then :func:`load`; a missing file says where docinbox looked."""
    path = locate(explicit, environ=environ)
    if not path.is_file():
        raise missing(
            path, explicit=bool(explicit) or bool((environ or os.environ).get(CONFIG_ENV))
        )
    return load(path, environ=environ)


def template() -> str:
    """The shipped default configuration, comments and all."""
    from importlib.resources import files

    return files(__package__ or "daemon").joinpath(TEMPLATE).read_text(encoding="utf-8")


def _home_relative(path: Path, home: Path) -> str:
    """``~/x`` when *path* is under *home* (the file survives a renamed home), else as is;
    forward slashes (TOML-safe on Windows, where Python accepts them)."""
    try:
        return "~/" + path.relative_to(home).as_posix()
    except ValueError:
        return path.as_posix()


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_user_config(home: Path, dirs: UserDirs) -> str:
    """The template with the folders under ``~/docinbox`` and the database and log in the
    platform's state folder; comments and everything else as shipped."""
    folder = home / HOME_FOLDER
    values = {
        ("folders", "inbox"): folder / "inbox",
        ("folders", "outbox"): folder / "outbox",
        ("folders", "archive"): folder / "archive",
        ("folders", "failed"): folder / "failed",
        ("folders", "state"): dirs.state / "docinbox.db",
        ("log", "file"): dirs.state / "docinbox.log",
    }
    written = {where: _home_relative(value, home) for where, value in values.items()}
    text = template()
    for (section, key), value in written.items():
        text = _set_value(text, section, key, _toml_string(value))
    state = _home_relative(dirs.state, home)
    header = (
        "# Written by `docinbox init`: documents go to ~/docinbox/inbox, results to\n"
        f"# ~/docinbox/outbox; the job database and the log live in {state}.\n"
    )
    text = header + text
    data = tomllib.loads(text)  # what was meant is what was written
    for (section, key), value in written.items():
        if data[section][key] != value:
            raise ConfigError(f"the default configuration has no {section}.{key} line to set")
    return text


def _set_value(text: str, section: str, key: str, value: str) -> str:
    """Replace ``key = "..."`` inside ``[section]``, keeping its comment."""
    import re

    block = re.search(rf"(?ms)^\[{re.escape(section)}\]\n(.*?)(?=^\[|\Z)", text)
    if block is None:
        return text
    body = re.sub(
        rf'(?m)^({re.escape(key)}\s*=\s*)"[^"]*"[ \t]*(#.*)?$',
        lambda m: m.group(1) + value + (f"  {m.group(2)}" if m.group(2) else ""),
        block.group(1),
        count=1,
    )
    return text[: block.start(1)] + body + text[block.end(1) :]


def init(
    *,
    home: Path | None = None,
    dirs: UserDirs | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Path, bool]:
    """``docinbox init``: write the default configuration to the platform's config folder
    unless one is there; returns (path, written).  The inbox is made, so there is
    somewhere to drop a document at once."""
    home = Path.home() if home is None else home
    dirs = dirs or user_dirs()
    path = dirs.config_file
    if path.exists():
        return path, False
    text = render_user_config(home, dirs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        os.replace(tmp, path)
        (home / HOME_FOLDER / "inbox").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}",
            hint="Check that the folder is yours and writable, or write a config.toml "
            "by hand and pass it with -c.",
        ) from exc
    load(path, environ=environ)  # the written file must be one docinbox runs
    return path, True


# ------------------------------------------------------------------------------------------


def load(
    path: str | os.PathLike[str] = "config.toml", *, environ: Mapping[str, str] | None = None
) -> Settings:
    config_path = Path(path).expanduser().resolve()
    try:
        with config_path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"configuration file not found: {config_path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    dotenv_path = config_path.parent / ".env"
    return parse(
        data,
        config_path=config_path,
        environ=os.environ if environ is None else environ,
        dotenv=read_dotenv(dotenv_path),
        dotenv_path=dotenv_path,
    )


class _Unparsed(logging.Filter):
    """python-dotenv reports a line it cannot parse as a log warning without the file's
    name; collected here to become one clear ConfigError instead."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not parse" in record.getMessage():
            self.lines.append(str(record.args[0] if record.args else "?"))  # type: ignore[index]
            return False
        return True


def read_dotenv(path: Path) -> dict[str, str]:
    """A ``.env`` file as python-dotenv reads it (``export``, quotes, ``# comments`` after
    values, multi-line quoted values); a missing file is empty.

    Values are taken literally (no ``${VAR}`` expansion: a key is never rewritten), and
    a name without ``=`` is skipped.  A line python-dotenv cannot parse is an error
    naming the file and the line: it may be the very key docinbox needs.
    """
    from dotenv import dotenv_values

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot be read: {exc}", hint="Save the .env file as UTF-8 text, or remove it."
        ) from exc
    unparsed = _Unparsed()
    dotenv_logger = logging.getLogger("dotenv.main")
    dotenv_logger.addFilter(unparsed)
    try:
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    finally:
        dotenv_logger.removeFilter(unparsed)
    if unparsed.lines:
        where = ", ".join(unparsed.lines)
        raise ConfigError(
            f"{path}: line {where} is not NAME=value",
            hint="Write each setting as NAME=value (quote a value that holds "
            "spaces or #, and close every quote), or remove the line.",
        )
    return {key: value for key, value in values.items() if value is not None}


#: The tables a configuration may hold.
SECTIONS = {
    "folders",
    "watcher",
    "mock",
    "services",
    "routes",
    "retry",
    "log",
    "daemon",
    "callbacks",
    "network",
    "dashboard",
    "review",
}


def parse(
    data: Mapping[str, Any],
    *,
    config_path: Path,
    environ: Mapping[str, str],
    dotenv: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Settings:
    """Settings from parsed TOML.  *environ* (the real environment) wins over *dotenv*
    (the ``.env`` beside the config) for ``env:NAME`` secrets."""
    base = config_path.parent
    _only(data, "", SECTIONS)
    mock = _mock(_table(data, "mock"))
    n = _table(data, "network")
    _only(n, "network", {"proxy"})
    proxy = check_proxy(_get(n, "network", "proxy", str, ""), "network.proxy")
    routes = _routes(data)
    secrets = _SecretSource(environ, dotenv or {}, dotenv_path or base / ".env", config_path)
    services = _services(
        _table(data, "services"), {r.service for r in routes}, mock, secrets, proxy
    )
    return Settings(
        config_path=config_path,
        folders=_folders(_table(data, "folders"), base),
        watcher=_watcher(_table(data, "watcher")),
        mock=mock,
        services=services,
        routes=routes,
        retry=_retry(_table(data, "retry")),
        log=_log(_table(data, "log"), base),
        daemon=_daemon(_table(data, "daemon")),
        callbacks=_callbacks(_table(data, "callbacks")),
        dashboard=_dashboard(_table(data, "dashboard")),
        review=_review(_table(data, "review")),
    )


def _folders(f: Mapping[str, Any], base: Path) -> Folders:
    _only(f, "folders", {"inbox", "outbox", "archive", "failed", "state"})

    def folder(key: str, default: str) -> Path:
        value = _get(f, "folders", key, str, default)
        if value == "":
            raise ConfigError(f"folders.{key}: must not be empty")
        return (base / Path(value).expanduser()).resolve()

    archive = _get(f, "folders", "archive", str, "archive")
    folders = Folders(
        inbox=folder("inbox", "inbox"),
        outbox=folder("outbox", "outbox"),
        archive=(base / Path(archive).expanduser()).resolve() if archive else None,
        failed=folder("failed", "failed"),
        state=folder("state", "state/docinbox.db"),
    )
    _check_folders(folders)
    return folders


def _watcher(w: Mapping[str, Any]) -> WatcherSettings:
    _only(w, "watcher", {"mode", "quiet_seconds", "settle_seconds", "rescan_seconds", "ignore"})
    return WatcherSettings(
        mode=_choice(w, "watcher", "mode", ("auto", "native", "polling"), "auto"),
        quiet_seconds=_number(w, "watcher", "quiet_seconds", 0.2, minimum=0.0),
        settle_seconds=_number(w, "watcher", "settle_seconds", 2.0, minimum=0.0),
        rescan_seconds=_number(w, "watcher", "rescan_seconds", 60.0, minimum=0.0),
        ignore=tuple(_str_list(w, "watcher", "ignore", [])),
    )


def _mock(m: Mapping[str, Any]) -> MockSettings:
    _only(m, "mock", {"embedded", "host", "port", "speed"})
    return MockSettings(
        embedded=_get(m, "mock", "embedded", bool, True),
        host=_get(m, "mock", "host", str, "127.0.0.1"),
        port=_int(m, "mock", "port", 8765, minimum=0, maximum=65535),
        speed=_number(m, "mock", "speed", 1.0, minimum=1e-6),
    )


def _retry(r: Mapping[str, Any]) -> RetrySettings:
    _only(r, "retry", {"max_attempts", "max_seconds", "base_seconds", "cap_seconds"})
    return RetrySettings(
        max_attempts=_int(r, "retry", "max_attempts", 8, minimum=1),
        max_seconds=_number(r, "retry", "max_seconds", 6 * 3600.0, minimum=0.0),
        base_seconds=_number(r, "retry", "base_seconds", 1.0, minimum=0.0),
        cap_seconds=_number(r, "retry", "cap_seconds", 300.0, minimum=0.0),
    )


def _daemon(d: Mapping[str, Any]) -> DaemonSettings:
    _only(d, "daemon", {"duplicates"})
    return DaemonSettings(
        duplicates=_choice(d, "daemon", "duplicates", ("reuse", "process"), "reuse")
    )


def _callbacks(cb: Mapping[str, Any]) -> CallbackSettings:
    _only(cb, "callbacks", {"public_url", "listen"})
    callbacks = CallbackSettings(
        public_url=_get(cb, "callbacks", "public_url", str, "").rstrip("/"),
        listen=_get(cb, "callbacks", "listen", str, "0.0.0.0:8768"),
    )
    if callbacks.public_url and not callbacks.public_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"callbacks.public_url: expected an http(s) URL, got {callbacks.public_url!r}"
        )
    return callbacks


def _dashboard(d: Mapping[str, Any]) -> DashboardSettings:
    _only(d, "dashboard", {"listen"})
    listen = _get(d, "dashboard", "listen", str, "127.0.0.1:8767").strip()
    if listen:
        host, sep, port = listen.rpartition(":")
        if not sep or not host.strip("[]") or not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                f"dashboard.listen: expected host:port (e.g. 127.0.0.1:8767), got {listen!r}",
                hint='Use "" to serve no dashboard.',
            )
    return DashboardSettings(listen=listen)


def _review(r: Mapping[str, Any]) -> ReviewSettings:
    _only(r, "review", {"min_score", "required"})
    min_score = _number(r, "review", "min_score", 0.8, minimum=0.0)
    if min_score > 1:
        raise ConfigError(f"review.min_score: expected a score from 0 to 1, got {min_score:g}")
    required = _str_list(r, "review", "required", [])
    return ReviewSettings(min_score=min_score, required=tuple(dict.fromkeys(required)))


def _log(lg: Mapping[str, Any], base: Path) -> LogSettings:
    _only(lg, "log", {"file", "level"})
    log_file = _get(lg, "log", "file", str, "state/docinbox.log")
    return LogSettings(
        file=(base / Path(log_file).expanduser()).resolve() if log_file else None,
        level=_choice(lg, "log", "level", ("debug", "info", "warning", "error"), "info"),
    )


def _check_folders(folders: Folders) -> None:
    inbox = folders.inbox
    for key in ("outbox", "archive", "failed"):
        other: Path | None = getattr(folders, key)
        if other is None:
            continue
        if other == inbox or other.is_relative_to(inbox):
            raise ConfigError(
                f"folders.{key} ({other}) is inside the inbox ({inbox}); docinbox would "
                "process its own results. Move it out of the inbox."
            )
        if inbox.is_relative_to(other):
            raise ConfigError(f"folders.inbox ({inbox}) is inside folders.{key} ({other})")
    if folders.state.is_relative_to(inbox):
        raise ConfigError(f"folders.state ({folders.state}) is inside the inbox ({inbox})")


def _routes(data: Mapping[str, Any]) -> tuple[Route, ...]:
    raw = data.get("routes")
    if raw is None:
        return DEFAULT_ROUTES
    if not isinstance(raw, list) or not all(isinstance(x, dict) for x in raw):
        raise ConfigError("routes: expected [[routes]] tables")
    routes = []
    for i, item in enumerate(raw):
        where = f"routes[{i}]"
        service = _choice(item, where, "service", tuple(REGISTRY), None)
        allowed = REGISTRY[service].spec.route_options
        _only(item, where, {"service", "folder", "max_pages", "max_bytes", "types", *allowed})
        types = item.get("types")
        if types is not None:
            types = tuple(_str_list(item, where, "types", []))
            for t in types:
                if t not in DOCUMENT_TYPES:
                    raise ConfigError(
                        f"{where}.types: unknown type {t!r} (known: {', '.join(DOCUMENT_TYPES)})"
                    )
        options = {}
        for key, kind in allowed.items():
            if key in item:
                value = item[key]
                if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                    raise ConfigError(
                        f"{where}.{key}: expected {_kind_name(kind)}, got {item[key]!r}"
                    )
                options[key] = item[key]
        routes.append(
            Route(
                service=service,
                folder=_get(item, where, "folder", str, None),
                max_pages=_int(item, where, "max_pages", None, minimum=1),
                max_bytes=_int(item, where, "max_bytes", None, minimum=1),
                types=types,
                options=options,
            )
        )
    return tuple(routes)


#: Keys every [services.NAME] table may hold (the credential's key is the service's own).
_COMMON_KEYS = {"base_url", "concurrency", "rate_per_second", "timeout"}


def _services(
    table: Mapping[str, Any],
    needed: set[str],
    mock: MockSettings,
    secrets: _SecretSource,
    proxy: str,
) -> dict[str, ServiceSettings]:
    """Each service's table, checked against what the service declares (``spec``): its
    own keys, their types and bounds, and what a real run requires."""
    _only(table, "services", set(REGISTRY))
    out: dict[str, ServiceSettings] = {}
    for name, service in REGISTRY.items():
        if name not in table and name not in needed:
            continue
        s = table.get(name, {})
        where = f"services.{name}"
        if not isinstance(s, dict):
            raise ConfigError(f"{where}: expected a table")
        spec = service.spec
        own = _own_fields(spec.settings)
        _only(s, where, _COMMON_KEYS | {spec.credential_key} | set(own))
        real = name in needed and not mock.embedded
        raw_cred = _get(s, where, spec.credential_key, str, f"env:{spec.credential_env}")
        credential = secrets.get(raw_cred, f"{where}.{spec.credential_key}")
        if real and not credential:
            variable = raw_cred.removeprefix("env:")
            raise ConfigError(
                f"{where}.{spec.credential_key}: {credential.origin}",
                hint=f"Set {variable} in the environment, or add a line "
                f"{variable}=... to {secrets.dotenv_path}.",
            )
        base_url = _get(s, where, "base_url", str, spec.base_url).rstrip("/")
        if real and not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.base_url: expected an http(s) URL, got {base_url!r}")
        values = _own_values(s, where, own, real=real)
        out[name] = spec.settings(
            name=name,
            base_url=base_url,
            credential=credential,
            concurrency=_int(s, where, "concurrency", spec.concurrency, minimum=1),
            rate_per_second=_number(s, where, "rate_per_second", 0.0, minimum=0.0),
            timeout=_number(s, where, "timeout", 120.0, minimum=0.1),
            proxy=proxy,
            **values,
        )
    return out


def _own_values(
    s: Mapping[str, Any],
    where: str,
    own: Mapping[str, tuple[type, dataclasses.Field[Any]]],
    *,
    real: bool,
) -> dict[str, Any]:
    """A service's own keys, each checked by its declared type and bounds; a required one
    must be set for a real run."""
    values: dict[str, Any] = {}
    for key, (kind, f) in own.items():
        meta = f.metadata
        default: Any = None if f.default is dataclasses.MISSING else f.default
        if kind is int:
            value = _int(s, where, key, default, minimum=meta.get("minimum"))
        elif kind is float:
            value = _number(s, where, key, default, minimum=meta.get("minimum") or 0.0)
        else:
            value = _get(s, where, key, kind, default)
        if real and meta.get("required") and not value:
            raise ConfigError(f"{where}.{key}: required ({meta.get('help') or 'no default'})")
        values[key] = value
    return values


def _own_fields(cls: type[ServiceSettings]) -> dict[str, tuple[type, dataclasses.Field[Any]]]:
    """A service's own keys: the fields its settings class adds, with their types."""
    common = {f.name for f in dataclasses.fields(ServiceSettings)}
    hints = typing.get_type_hints(cls)
    return {f.name: (hints[f.name], f) for f in dataclasses.fields(cls) if f.name not in common}


@dataclass(frozen=True)
class _SecretSource:
    environ: Mapping[str, str]
    dotenv: Mapping[str, str]
    dotenv_path: Path
    config_path: Path

    def get(self, raw: str, key: str) -> Secret:
        """``env:NAME``: the environment's value, else the ``.env``'s (an empty value counts
        as unset); anything else is the secret itself, written in the config."""
        if not raw.startswith("env:"):
            return Secret(raw or None, "inline", f"{key} in {self.config_path}")
        name = raw[4:]
        if self.environ.get(name):
            return Secret(self.environ[name], raw, f"{name} from the environment")
        if self.dotenv.get(name):
            return Secret(self.dotenv[name], raw, f"{name} from {self.dotenv_path}")
        return Secret(
            None, raw, f"{name} is set neither in the environment nor in {self.dotenv_path}"
        )


# --- small validators ------------------------------------------------------------------------


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a [{key}] table")
    return value


def _only(table: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise ConfigError(
                f"unknown configuration key {name!r} (known here: {', '.join(sorted(allowed))})"
            )


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "a string",
        bool: "true or false",
        int: "an integer",
        float: "a number",
        list: "a list",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _get(table: Mapping[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    if key not in table:
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _int(
    table: Mapping[str, Any],
    where: str,
    key: str,
    default: int | None,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> Any:
    value = _get(table, where, key, int, default)
    if value is None:
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f"at least {minimum}" if maximum is None else f"{minimum}..{maximum}"
        raise ConfigError(f"{where}.{key}: expected an integer {bounds}, got {value!r}")
    return value


def _number(
    table: Mapping[str, Any], where: str, key: str, default: float, *, minimum: float
) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}.{key}: expected a number ≥ {minimum}, got {value!r}")
    return float(value)


def _choice(
    table: Mapping[str, Any], where: str, key: str, choices: tuple[str, ...], default: str | None
) -> Any:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{where}.{key}: required (one of {', '.join(choices)})")
    if value not in choices:
        raise ConfigError(f"{where}.{key}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def _str_list(table: Mapping[str, Any], where: str, key: str, default: list[str]) -> list[str]:
    value = table.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}: expected a list of strings, got {value!r}")
    return value
