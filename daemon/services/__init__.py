"""One module per remote service, behind the small interface of ``base.Service``."""

from __future__ import annotations

import httpx

from ..config import Settings
from ..fileserver import FileServer
from .base import Accepted, Normalized, Received, Service, SourceDocument
from .docparse import Docparse
from .mineru import Mineru
from .nanonets import Nanonets

#: Service name → class.  A service that no route names is never built.
REGISTRY: dict[str, type[Service]] = {"nanonets": Nanonets, "mineru": Mineru,
                                      "docparse": Docparse}


def needed(settings: Settings) -> set[str]:
    return {r.service for r in settings.routes}


def build(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
          files: FileServer | None = None) -> dict[str, Service]:
    services: dict[str, Service] = {}
    for name in sorted(needed(settings)):
        if name == "docparse":
            if files is None:
                raise ValueError("docparse needs the daemon's file server")
            services[name] = Docparse(settings.services[name], transport=transport, files=files)
        else:
            services[name] = REGISTRY[name](settings.services[name],  # type: ignore[call-arg]
                                            transport=transport)
    return services


__all__ = ["REGISTRY", "Accepted", "Normalized", "Received", "Service", "SourceDocument",
           "build", "needed"]
