"""Helpers for the test suite: configs written into a temp folder, waiting on conditions,
dropping files the way real writers do."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from mockserver import defaults

T = TypeVar("T")


class Startable(Protocol):
    """A server that runs on the event loop it is started from."""

    async def start(self) -> Any: ...

    async def stop(self) -> None: ...


S = TypeVar("S", bound=Startable)


def wait_for(
    condition: Callable[[], T],
    timeout: float = 15.0,
    interval: float = 0.02,
    message: str = "condition",
) -> T:
    """Poll *condition* until it is truthy; fail the test at the deadline (never a bare sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def write_config(
    folder: Path,
    base_url: str | None = None,
    *,
    extra: str = "",
    routes: str | None = None,
    watcher: str = "",
    retry: str = "",
    archive: str = "archive",
) -> Path:
    """A config.toml in *folder*: against *base_url* with the mock's credentials, or the
    embedded mock on a free port when *base_url* is None."""
    embedded = base_url is None
    url = base_url or "http://127.0.0.1:9"
    text = f"""
[folders]
inbox = "inbox"
outbox = "outbox"
archive = "{archive}"
failed = "failed"
state = "state/docinbox.db"

[watcher]
quiet_seconds = 0.05
settle_seconds = 0.3
{watcher}

[mock]
embedded = {str(embedded).lower()}
port = 0

[services.nanonets]
base_url = "{url}"
api_key = "{defaults.NANONETS_API_KEY}"
model_id = "{defaults.NANONETS_MODEL_ID}"

[retry]
base_seconds = 0.05
cap_seconds = 0.5
{retry}

[log]
file = "state/docinbox.log"
level = "debug"
{extra}
"""
    text += (
        routes
        if routes is not None
        else """
[[routes]]
service = "nanonets"
"""
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text)
    return path


def drop(inbox: Path, name: str, data: bytes) -> Path:
    """Drop a finished file the way well-behaved writers do: write aside, rename in."""
    target = inbox / name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.part"
    tmp.write_bytes(data)
    tmp.rename(target)
    return target


def read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text("utf-8"))


def service_sections(url: str, *, docparse: bool = True) -> str:
    """The [services.mineru] (and [services.docparse]) tables for a mock at *url*, with the
    mock's credentials; write_config already writes [services.nanonets]."""
    text = f'\n[services.mineru]\nbase_url = "{url}"\ntoken = "{defaults.MINERU_TOKEN}"\n'
    if docparse:
        text += (
            f'\n[services.docparse]\nbase_url = "{url}"\n'
            f'token = "{defaults.DOCPARSE_TOKEN}"\nfiles_listen = "127.0.0.1:0"\n'
        )
    return text


@contextlib.asynccontextmanager
async def running(server: S) -> AsyncIterator[S]:
    """*server* started on the running event loop for the block, stopped after it (also
    when the block fails): ``async with running(FileServer(...)) as files: ...``."""
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


class LoopThread:
    """An event loop in a thread of its own, for a server that lives on a loop while the
    test talks to it with blocking clients: ``with LoopThread() as loop:
    loop.run(server.start())``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """*coro* run on the thread's loop; its result, or its exception re-raised here."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __exit__(self, *exc: object) -> None:
        self.run(self._drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)
        if self._thread.is_alive():
            pytest.fail("the test's event loop thread did not stop")
        self.loop.close()

    @staticmethod
    async def _drain() -> None:
        """Cancel what is left on the loop (a server the test did not stop), and wait."""
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        await asyncio.get_running_loop().shutdown_asyncgens()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "64k") -> Iterator[Path]:
    """A tmpfs of *size* mounted at *path* (made empty), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a small disk needs root: {done.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> Path:
    """Fill *folder*'s disk to the last byte, as a big download would; the filler's path."""
    filler = folder / "big-download.iso"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while True:
            try:
                os.write(fd, b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                return filler
    finally:
        os.close(fd)


class PacerTime:
    """The pacer's time for a ServiceContext (``monotonic=t.monotonic, sleep=t.sleep``): a
    service's waits (a 429's Retry-After) pass at once, recorded in ``slept``."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
