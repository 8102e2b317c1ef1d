"""What a configuration says, as typed values: the rest of the daemon trusts them.

:mod:`daemon.config` reads ``config.toml`` into these.  Each service declares its own
keys (a :class:`ServiceSettings` subclass, described by a :class:`ServiceSpec`) in its
module under ``daemon/services/``; validation is driven by those declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCUMENT_TYPES = (
    "pdf",
    "png",
    "jpg",
    "tiff",
    "gif",
    "bmp",
    "webp",
    "docx",
    "doc",
    "pptx",
    "ppt",
    "xlsx",
    "xls",
    "link",
)


class Secret:
    """A credential that never shows itself in a repr, a log line or a traceback.

    ``origin`` says where the value came from (or was looked for), in words a message
    can end with: ``NANONETS_API_KEY from /home/ana/docinbox/.env``, ``NANONETS_API_KEY
    from the environment``, ``services.mineru.token in /home/ana/docinbox/config.toml``.
    """

    __slots__ = ("origin", "source", "value")

    def __init__(self, value: str | None, source: str, origin: str = "") -> None:
        self.value = value
        self.source = source  # "env:NAME", "inline" or "mock"
        self.origin = origin or _ORIGINS.get(source, source)

    def __repr__(self) -> str:
        return f"Secret({self.source!r})"

    def __bool__(self) -> bool:
        return bool(self.value)


_ORIGINS = {"mock": "the embedded mock's own credential", "inline": "the configuration file"}


@dataclass(frozen=True)
class Folders:
    inbox: Path
    outbox: Path
    archive: Path | None  # None: delete originals once their result is written
    failed: Path
    state: Path  # the SQLite database


@dataclass(frozen=True)
class WatcherSettings:
    mode: str = "auto"  # auto | native | polling
    quiet_seconds: float = 0.2  # after close-after-write, no further events for this long
    settle_seconds: float = 2.0  # polling: size and mtime unchanged this long
    rescan_seconds: float = 60.0  # safety-net rescan of the whole inbox
    ignore: tuple[str, ...] = ()  # user patterns, on top of the built-in ones


@dataclass(frozen=True)
class MockSettings:
    embedded: bool = True
    host: str = "127.0.0.1"
    port: int = 8765
    speed: float = 1.0


@dataclass(frozen=True)
class ServiceSettings:
    """What every service's ``[services.NAME]`` table holds; a service adds its own keys
    in a subclass (see :class:`ServiceSpec`)."""

    name: str
    base_url: str
    credential: Secret
    concurrency: int = 4
    rate_per_second: float = 0.0  # requests per second to this service; 0: no limit
    timeout: float = 120.0
    #: [network] proxy: "" = the environment's (HTTPS_PROXY, ...), "direct" = none, or a
    #: proxy URL that wins over the environment (daemon/services/http.py applies it).
    proxy: str = ""


def key(*, minimum: float | None = None, required: bool = False, help: str = "") -> dict[str, Any]:
    """A service's own setting, declared as a dataclass field's metadata: the bounds the
    configuration must respect, and whether a real (not embedded-mock) run needs it."""
    return {"minimum": minimum, "required": required, "help": help}


@dataclass(frozen=True)
class ServiceSpec:
    """How a service declares itself to the configuration (``Service.spec``).

    *settings*: its ServiceSettings subclass (own keys are its extra fields, declared
    with :func:`key`); *credential_key* and *credential_env*: the key that holds the
    secret and the variable it defaults to (``api_key = "env:NANONETS_API_KEY"``);
    *base_url*, *concurrency*: defaults; *route_options*: what a ``[[routes]]`` entry may
    set for it (the API's own names and types); *mock*: setting → name of the embedded
    mock's value in ``mockserver.defaults`` (its credential, demo model, ...).
    """

    settings: type[ServiceSettings]
    credential_key: str
    credential_env: str
    base_url: str
    concurrency: int = 4
    route_options: Mapping[str, type | tuple[type, ...]] = field(default_factory=dict)
    mock: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    service: str
    folder: str | None = None
    max_pages: int | None = None
    max_bytes: int | None = None
    types: tuple[str, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 8
    max_seconds: float = 6 * 3600.0
    base_seconds: float = 1.0
    cap_seconds: float = 300.0


@dataclass(frozen=True)
class CallbackSettings:
    """Results pushed by the services instead of (as well as) polled."""

    public_url: str = ""  # where the services reach the daemon; "" = poll only
    listen: str = "0.0.0.0:8768"  # unless a routed service fetches documents: its own
    # (8767 is the review desk's, [dashboard] listen)


@dataclass(frozen=True)
class DaemonSettings:
    #: The same content dropped again under another name: "reuse" gives it a copy of the
    #: earlier result without asking the service again; "process" sends it again.
    duplicates: str = "reuse"


@dataclass(frozen=True)
class DashboardSettings:
    """The review desk (daemon/desk/): where the daemon serves it; "" serves none."""

    listen: str = "127.0.0.1:8767"  # loopback unless the user means otherwise


@dataclass(frozen=True)
class ReviewSettings:
    """Which results need a person's look before they count (daemon/review.py)."""

    min_score: float = 0.8  # a field scored under this needs review
    required: tuple[str, ...] = ()  # labels that must be found


@dataclass(frozen=True)
class LogSettings:
    file: Path | None
    level: str = "info"


@dataclass(frozen=True)
class Settings:
    config_path: Path
    folders: Folders
    watcher: WatcherSettings
    mock: MockSettings
    services: Mapping[str, ServiceSettings]
    routes: tuple[Route, ...]
    retry: RetrySettings
    log: LogSettings
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)
    dashboard: DashboardSettings = field(default_factory=DashboardSettings)
    review: ReviewSettings = field(default_factory=ReviewSettings)

    def secrets(self) -> list[str]:
        """Every credential value, so logs and files can be scrubbed of them."""
        return [s.credential.value for s in self.services.values() if s.credential.value]


DEFAULT_ROUTES = (
    Route(service="nanonets", max_pages=3, types=("pdf", "png", "jpg", "tiff")),
    Route(service="mineru"),
)
