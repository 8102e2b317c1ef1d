"""Running against the mock that ships with docinbox: start it in-process and point
every service at it, with the mock's own credentials (a real key never reaches it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ConfigError
from .services import REGISTRY
from .settings import Settings


def start_mock(settings: Settings) -> tuple[Any, Settings]:
    """Start the embedded mock; returns the server (call ``.stop()``) and rebased settings."""
    from mockserver import defaults
    from mockserver.server import MockServer

    server = MockServer(host=settings.mock.host, port=settings.mock.port, speed=settings.mock.speed)
    try:
        server.start()
    except OSError as exc:
        raise ConfigError(
            f"the embedded mock cannot listen on {settings.mock.host}:{settings.mock.port}: {exc}",
            hint="Set [mock] port to a free port (0 picks one), or stop what uses it.",
        ) from exc
    return server, rebase(settings, server.url, vars(defaults))


def rebase(settings: Settings, url: str, values: dict[str, Any]) -> Settings:
    """Every service pointed at the mock at *url*, each as its declaration says."""
    services = {
        name: REGISTRY[name].for_mock(s, url, settings.mock.host, values)
        for name, s in settings.services.items()
    }
    return dataclasses.replace(settings, services=services)
