"""Running against the mock that ships with docinbox: start it in-process and point
every service at it, with the mock's own credentials (a real key never reaches it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .config import Secret, Settings
from .errors import ConfigError


def start_mock(settings: Settings) -> tuple[Any, Settings]:
    """Start the embedded mock; returns the server (call ``.stop()``) and rebased settings."""
    from mockserver import defaults
    from mockserver.server import MockServer

    server = MockServer(host=settings.mock.host, port=settings.mock.port,
                        speed=settings.mock.speed)
    try:
        server.start()
    except OSError as exc:
        raise ConfigError(
            f"the embedded mock cannot listen on {settings.mock.host}:{settings.mock.port}: {exc}",
            hint="Set [mock] port to a free port (0 picks one), or stop what uses it.",
        ) from exc
    return server, rebase(settings, server.url, defaults)


def rebase(settings: Settings, url: str, defaults: Any) -> Settings:
    credentials = {
        "nanonets": defaults.NANONETS_API_KEY,
        "mineru": defaults.MINERU_TOKEN,
        "docparse": defaults.DOCPARSE_TOKEN,
    }
    services = {}
    for name, s in settings.services.items():
        changes: dict[str, Any] = {"base_url": url,
                                   "credential": Secret(credentials[name], "mock")}
        if name == "nanonets":
            changes["model_id"] = defaults.NANONETS_MODEL_ID
        if name in ("mineru", "docparse"):
            changes["uid"] = defaults.MOCK_UID
        if name == "docparse":
            # the mock fetches documents from this machine: serve them on loopback only
            changes["files_listen"] = f"{settings.mock.host}:0"
            changes["files_url"] = ""  # filled in once the file server knows its port
        services[name] = dataclasses.replace(s, **changes)
    return dataclasses.replace(settings, services=services)
