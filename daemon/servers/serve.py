"""An ASGI app served by uvicorn as a task on the daemon's own event loop.

No thread of its own: handlers run on the loop that owns the store, so they read it
directly.  The socket is bound here (port 0 picks a free one) before uvicorn starts, so
the caller knows the port at once and a port in use is an ``OSError`` it can report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger("docinbox")

#: A stopping server gives open connections this long to finish.
GRACE_SECONDS = 2.0


class _Server(uvicorn.Server):
    """uvicorn that says when it listens and leaves signals to the daemon."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()
        self.exit_requested = asyncio.Event()

    async def main_loop(self) -> None:
        """uvicorn's own loop wakes ten times a second to look at ``should_exit``; three
        servers made that most of an idle daemon's wake-ups.  This one ticks once a
        second (the Date header's resolution: ``on_tick`` refreshes it every tenth
        count) and at once when :meth:`Served.stop` asks."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000
            with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
                await asyncio.wait_for(self.exit_requested.wait(), 1.0)

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29
        return

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn ≥ 0.29 takes SIGINT/SIGTERM for itself while it serves (on the main
        thread) and stops that server first, long connections (the desk's event
        streams) waiting out its grace; the daemon stops its servers itself, in order."""
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class Served:
    """A running server: its port, and how to stop it."""

    def __init__(self, server: _Server, task: asyncio.Task[None], sock: socket.socket) -> None:
        self._server = server
        self._task = task
        self._socket = sock
        self.port: int = sock.getsockname()[1]

    async def stop(self) -> None:
        self._server.should_exit = True
        self._server.exit_requested.set()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._task), GRACE_SECONDS + 3)
        if not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        with contextlib.suppress(OSError):
            self._socket.close()


async def serve(app: ASGIApp, host: str, port: int, *, name: str) -> Served:
    """Listen on *host*:*port* and serve *app* from a task; returns once it accepts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=int(GRACE_SECONDS),
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name=f"server:{name}")
    ready = asyncio.create_task(server.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if not server.ready.is_set():
        ready.cancel()
        sock.close()
        task.result()  # raises what stopped it
        raise OSError(f"the {name} server stopped before it listened")
    return Served(server, task, sock)
