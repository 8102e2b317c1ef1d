"""httpx, imported when a request is first made, not when a service is declared.

Every command reads the configuration, and the configuration reads each service's
declared settings (:data:`daemon.services.REGISTRY`); importing httpx there made
``docinbox status`` (and every other command) pay for httpx, httpcore and what httpcore
imports when it finds it installed (trio, attrs): about 0.8 of a 0.9 s start
(``python -X importtime -c "import daemon.cli"``).  The standard library's lazy loader
(https://docs.python.org/3/library/importlib.html#implementing-lazy-imports) runs the
module at its first attribute access instead.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import TYPE_CHECKING


def lazy(name: str) -> ModuleType:
    """*name*, run at its first attribute access (at once if already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import httpx as httpx
else:
    httpx = lazy("httpx")

__all__ = ["httpx", "lazy"]
