"""The buckets of one mock context: where objects are stored and who hears of uploads."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..core.clock import MockClock
from ..core.context import MockContext
from .signing import PUT_URL_VALIDITY, presign


@dataclass
class StoredObject:
    """An object that finished uploading."""

    bucket: str
    key: str
    path: Path
    size: int
    md5: str  # hex
    sha256: str  # hex


UploadListener = Callable[[StoredObject], None]


class Bucket:
    """One OSS bucket of the mock: presigns URLs and knows where its objects live."""

    def __init__(self, name: str, root: Callable[[], Path], clock: MockClock) -> None:
        self.name = name
        self._root = root
        self.clock = clock
        self._listeners: list[UploadListener] = []
        self._lock = threading.Lock()

    def on_upload(self, listener: UploadListener) -> None:
        """Call *listener* (in a worker thread) after every complete, verified PUT."""
        self._listeners.append(listener)

    def listeners(self) -> list[UploadListener]:
        return list(self._listeners)

    def presign_put(self, base_url: str, key: str, validity: float = PUT_URL_VALIDITY) -> str:
        expires = int(self.clock.now() + validity)
        return presign(base_url, self.name, key, expires)

    def object_path(self, key: str) -> Path:
        safe = key.replace("..", "_").lstrip("/")
        return self._root() / self.name / safe


class Oss:
    """All buckets of one mock context (shared between the services that issue URLs)."""

    def __init__(self, ctx: MockContext) -> None:
        self.ctx = ctx
        self.buckets: dict[str, Bucket] = {}
        self._root: Path | None = None
        self._lock = threading.Lock()
        ctx.on_reset(self._reset)

    def _reset(self) -> None:
        with self._lock:
            self._root = None  # the context wiped data_dir; make a fresh one lazily

    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.exists():
                self._root = self.ctx.new_dir("oss-")
            return self._root

    def bucket(self, name: str) -> Bucket:
        with self._lock:
            if name not in self.buckets:
                self.buckets[name] = Bucket(name, self.root, self.ctx.clock)
            return self.buckets[name]


_registry: weakref.WeakKeyDictionary[MockContext, Oss] = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()


def for_context(ctx: MockContext) -> Oss:
    """The one :class:`Oss` of *ctx* (created on first use), shared by every service."""
    with _registry_lock:
        oss = _registry.get(ctx)
        if oss is None:
            oss = _registry[ctx] = Oss(ctx)
        return oss
