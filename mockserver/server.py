"""Run the mock on a real socket in a background thread (daemon embedding, tests, benches)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType, TracebackType

import uvicorn
from starlette.types import ASGIApp

from .app import create_app
from .core.context import MockContext

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class PortInUseError(OSError):
    """The port asked for is taken (by another mock, or anything else)."""


class _Server(uvicorn.Server):
    """uvicorn that tells a waiting thread when it is accepting connections, stops at once
    when asked from any thread, and otherwise wakes once a second (uvicorn's own loop
    wakes ten times a second to look at ``should_exit``: most of an idle mock's CPU)."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self._on_ready = on_ready
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()
            if self._on_ready is not None:
                self._on_ready()

    async def main_loop(self) -> None:
        self._exit = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):  # every tenth count refreshes the Date header
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)

    def request_exit(self) -> None:
        """Stop serving; from any thread, or a signal handler."""
        self.should_exit = True
        loop, event = self._loop, self._exit
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(event.set)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop the mock, which then exits normally (uvicorn's own handler
        raises the signal again once it has stopped); a second Ctrl-C forces it."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.request_exit()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; :class:`PortInUseError` with a clear message when taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                exc.errno, f"cannot start the mock: {host}:{port} is already in use"
            ) from exc
        raise
    sock.set_inheritable(True)
    return sock


def uvicorn_config(
    app: ASGIApp, *, log_level: str = "warning", access_log: bool = False
) -> uvicorn.Config:
    """Quiet, fast settings: no access log; uvloop/httptools only if installed ("auto")."""
    return uvicorn.Config(
        app,
        loop="auto",
        http="auto",
        lifespan="off",
        log_level=log_level,
        access_log=access_log,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        server_header=False,
        date_header=True,
    )


class MockServer:
    """The mock on ``host:port`` (0: a free port) in a background thread.

    ``start()`` returns once the socket accepts connections; ``url``/``port``
    tell where. Use as a context manager, or ``start()``/``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        speed: float = 1.0,
        ctx: MockContext | None = None,
        log_level: str = "warning",
        access_log: bool = False,
    ) -> None:
        self.host = host
        self._asked_port = port
        self.ctx = ctx if ctx is not None else MockContext(speed=speed)
        self.app = create_app(self.ctx)
        self._log_level = log_level
        self._access_log = access_log
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self.port = port

    def _config(self) -> uvicorn.Config:
        return uvicorn_config(self.app, log_level=self._log_level, access_log=self._access_log)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = START_TIMEOUT) -> MockServer:
        if self._thread is not None:
            raise RuntimeError("the mock server is already started")
        self._socket = bind_socket(self.host, self._asked_port)
        self.port = self._socket.getsockname()[1]
        self.ctx.closing.clear()
        self._server = _Server(self._config())
        self._thread = threading.Thread(target=self._run, name=f"mock:{self.port}", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(timeout) or self._error is not None:
            self.stop()
            raise RuntimeError(f"the mock server did not start: {self._error!r}")
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._server.ready.set()

    def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Serve in the calling (main) thread until SIGINT/SIGTERM (uvicorn's handlers)."""
        self._socket = bind_socket(self.host, self._asked_port)
        self.port = self._socket.getsockname()[1]
        self._server = _Server(self._config(), on_ready)
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.ctx.closing.set()
            with contextlib.suppress(OSError):
                self._socket.close()
            self._server = None
            self._socket = None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop serving; hung requests are let go. Safe to call twice."""
        self.ctx.closing.set()
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logging.getLogger("mockserver").warning("mock server thread did not stop")
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._thread = None
        self._server = None
        self._socket = None

    def close(self) -> None:
        """Stop and remove the context's temporary files."""
        self.stop()
        self.ctx.close()

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
