"""One module per remote service behind the interface of ``base.Service``, and the
registry that names them.  Adding a service: a module here, a package in
``mockserver/``, and one line in :data:`REGISTRY`."""

from __future__ import annotations

from ..settings import Settings
from .base import (
    Accepted,
    BatchOutcome,
    Callbacks,
    Checkpoint,
    Normalized,
    Received,
    Service,
    ServiceContext,
    SourceDocument,
)
from .docparse import Docparse
from .mineru import Mineru
from .nanonets import Nanonets
from .parsio import Parsio

#: Service name → class.  A service that no route names is never built.
REGISTRY: dict[str, type[Service]] = {cls.name: cls for cls in (Nanonets, Mineru, Docparse, Parsio)}


def needed(settings: Settings) -> set[str]:
    return {r.service for r in settings.routes}


def fetches_documents(settings: Settings) -> bool:
    """Whether a routed service fetches documents from the daemon's file server."""
    return any(REGISTRY[name].fetches_documents for name in needed(settings))


def build(settings: Settings, ctx: ServiceContext) -> dict[str, Service]:
    return {name: REGISTRY[name](settings.services[name], ctx) for name in sorted(needed(settings))}


__all__ = [
    "REGISTRY",
    "Accepted",
    "BatchOutcome",
    "Callbacks",
    "Checkpoint",
    "Normalized",
    "Received",
    "Service",
    "ServiceContext",
    "SourceDocument",
    "build",
    "fetches_documents",
    "needed",
]
