"""Real processes on loopback: the mock as ``docinbox-mock``, the daemon as ``docinbox``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


class MockProcess:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def admin(self, method: str, path: str, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def]
        response = self.http.request(method, f"/__admin/{path}", **kwargs)
        response.raise_for_status()
        return response

    def requests(self) -> list[dict]:
        return self.admin("GET", "requests").json()["requests"]

    def tasks(self) -> list[dict]:
        return self.admin("GET", "tasks").json()["tasks"]


@pytest.fixture
def mock_process(request: pytest.FixtureRequest) -> Iterator[MockProcess]:
    """``docinbox-mock --port 0`` in its own process; the URL read from its ready line.

    ``@pytest.mark.mock_speed(50)`` runs its clock faster (MinerU processing, queues)."""
    marker = request.node.get_closest_marker("mock_speed")
    speed = str(marker.args[0]) if marker else "1"
    proc = subprocess.Popen(
        [str(BIN / "docinbox-mock"), "--port", "0", "--speed", speed],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the mock says it listens (or exits)
    match = re.search(r"listening on (http://\S+)", line)
    if not match:
        proc.kill()
        pytest.fail(f"docinbox-mock did not start: {line!r} {proc.stderr.read()!r}")  # type: ignore[union-attr]
    mock = MockProcess(proc, match.group(1))
    try:
        yield mock
    finally:
        mock.http.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def docinbox(
    *args: str, cwd: Path | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [str(BIN / "docinbox"), *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"docinbox {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def start_daemon(config: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(BIN / "docinbox"), "run", "--no-tray", "-c", str(config), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
