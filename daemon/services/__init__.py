"""One module per remote service, behind the small interface of ``base.Service``."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from ..config import Settings
from .base import Accepted, Normalized, Received, Service, SourceDocument
from .nanonets import Nanonets

#: Service name → class.  A service that no route names is never built.
REGISTRY: dict[str, type[Service]] = {"nanonets": Nanonets}


def build(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
          ) -> dict[str, Service]:
    needed = {r.service for r in settings.routes}
    services: dict[str, Service] = {}
    for name in sorted(needed):
        cls = REGISTRY.get(name)
        if cls is None:
            continue  # routes to it fail with a clear error (see Engine._decide)
        services[name] = cls(settings.services[name], transport=transport)  # type: ignore[call-arg]
    return services


def available(services: Mapping[str, Service]) -> list[str]:
    return sorted(services)


__all__ = ["REGISTRY", "Accepted", "Normalized", "Received", "Service", "SourceDocument",
           "available", "build"]
