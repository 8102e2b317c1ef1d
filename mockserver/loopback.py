"""Tiny loopback HTTP servers for exercising the mock's outbound side.

The MinerU and docparse mocks *fetch* the URLs they are given and *POST* callbacks.
Tests (and demos) need something on the other end: :class:`FileServer` serves bytes at
chosen paths, :class:`CallbackReceiver` records callbacks and answers with scripted
statuses. Both are stdlib ``ThreadingHTTPServer`` on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class _Server(ThreadingHTTPServer):
    """A stdlib server that knows the helper it serves for (handlers read its state)."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: _Base) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.owner = owner


def _owner(handler: BaseHTTPRequestHandler) -> _Base:
    server = handler.server
    assert isinstance(server, _Server)
    return server.owner


class _Base:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = _Server(handler, self)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.cond = threading.Condition()

    @property
    def url(self) -> str:
        host, port = self.server.socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Any:
        self.thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


class _FileHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        owner = _owner(self)
        assert isinstance(owner, FileServer)
        path = self.path.split("?", 1)[0]
        with owner.cond:
            owner.hits.append(self.path)
            owner.cond.notify_all()
        entry = owner.files.get(path)
        if entry is None:
            self.send_error(404)
            return
        body, headers = entry
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


class FileServer(_Base):
    """Serves ``files[path] = (bytes, headers)``; ``hits`` records requested paths."""

    def __init__(self) -> None:
        super().__init__(_FileHandler)
        self.files: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.hits: list[str] = []

    def add(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> str:
        """Serve *body* at *path*; returns the full URL."""
        self.files[path.split("?", 1)[0]] = (body, headers or {})
        return self.url + path


class _CallbackHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        owner = _owner(self)
        assert isinstance(owner, CallbackReceiver)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with owner.cond:
            index = len(owner.calls)
            status = owner.statuses[index] if index < len(owner.statuses) else owner.default
            owner.calls.append(
                {
                    "path": self.path,
                    "headers": dict(self.headers.items()),
                    "body": json.loads(raw) if raw else None,
                    "status": status,
                    "at": time.time(),
                }
            )
            owner.cond.notify_all()
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


class CallbackReceiver(_Base):
    """Answers the n-th POST with ``statuses[n]`` (then *default*); records every call."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        super().__init__(_CallbackHandler)
        self.statuses = list(statuses or [])
        self.default = default
        self.calls: list[dict[str, Any]] = []

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> bool:
        """Block until *predicate(calls)* holds or *timeout* real seconds pass."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate(self.calls):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))  # predicates may watch other state
            return True
