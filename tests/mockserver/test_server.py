"""The mock on a real socket: faults that need one, MockServer and the CLI process."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core.context import MockContext
from mockserver.defaults import NANONETS_API_KEY
from mockserver.server import MockServer, PortInUseError, _Server, bind_socket, uvicorn_config

pytestmark = pytest.mark.integration

AUTH = (NANONETS_API_KEY, "")
MODELS = "/api/v2/OCR/Model/"
REPO = Path(__file__).resolve().parents[2]


def add_fault(url: str, **rule: object) -> None:
    response = httpx.post(url + "/__admin/faults", json=rule)
    assert response.status_code == 201, response.text


def raw_request(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return sock


def test_reset_sends_a_tcp_rst(mock_url: str, mock_server: MockServer) -> None:
    add_fault(mock_url, path="/boom", fault="reset")
    sock = raw_request(mock_server.port, "/boom")
    with sock, pytest.raises(ConnectionResetError):
        sock.recv(1024)  # a FIN would give b"" instead
    with pytest.raises(httpx.ReadError):
        httpx.get(mock_url + "/boom")
    entry = httpx.get(mock_url + "/__admin/requests").json()["requests"][-1]
    assert entry["fault"] == "reset" and entry["status"] is None


def test_hang_until_the_client_gives_up(mock_url: str) -> None:
    add_fault(mock_url, path=MODELS, fault="hang", times=1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(mock_url + MODELS, auth=AUTH, timeout=0.3)
    assert httpx.get(mock_url + MODELS, auth=AUTH).status_code == 200


def test_hang_for_seconds_then_hang_up(mock_url: str) -> None:
    add_fault(mock_url, path=MODELS, fault="hang", seconds=0.2)
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(mock_url + MODELS, auth=AUTH, timeout=5)
    assert time.monotonic() - started >= 0.15


def test_dribble_sends_the_real_body_slowly(mock_url: str) -> None:
    normal = httpx.get(mock_url + MODELS, auth=AUTH)
    add_fault(mock_url, path=MODELS, fault="dribble", seconds=0.5)
    chunks: list[bytes] = []
    started = time.monotonic()
    with httpx.stream("GET", mock_url + MODELS, auth=AUTH) as response:
        for chunk in response.iter_raw():
            chunks.append(chunk)
    assert time.monotonic() - started >= 0.4
    assert b"".join(chunks) == normal.content
    assert len(chunks) > 3


def test_truncate_cuts_the_body_short(mock_url: str) -> None:
    full = httpx.get(mock_url + MODELS, auth=AUTH).content
    add_fault(mock_url, path=MODELS, fault="truncate")
    with pytest.raises(httpx.RemoteProtocolError, match=r"incomplete|complete message"):
        httpx.get(mock_url + MODELS, auth=AUTH)
    got = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        httpx.stream("GET", mock_url + MODELS, auth=AUTH) as response,
    ):
        assert int(response.headers["content-length"]) == len(full)
        for chunk in response.iter_raw():
            got += chunk
    assert 0 < len(got) < len(full)


def test_delay_postpones_the_real_answer(mock_url: str) -> None:
    add_fault(mock_url, path=MODELS, fault="delay", seconds=0.3)
    started = time.monotonic()
    response = httpx.get(mock_url + MODELS, auth=AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.25


def test_port_in_use_is_a_clear_error() -> None:
    with MockServer() as first:
        with pytest.raises(PortInUseError, match="already in use"):
            MockServer(port=first.port).start()
        assert httpx.get(first.url + "/__admin/health").json()["ok"] is True


def test_stop_lets_go_of_a_hung_request() -> None:
    server = MockServer().start()
    add_fault(server.url, fault="hang", path="/h")
    errors: list[BaseException] = []

    def hang() -> None:
        try:
            httpx.get(server.url + "/h", timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    worker = threading.Thread(target=hang)
    worker.start()
    deadline = time.monotonic() + 5
    while not server.ctx.journal.entries() and time.monotonic() < deadline:
        threading.Event().wait(0.01)  # poll the journal for the hung request's arrival
    started = time.monotonic()
    server.close()
    worker.join(10)
    assert time.monotonic() - started < 5
    assert errors and not worker.is_alive()


def test_an_idle_server_ticks_once_a_second_and_stops_as_soon_as_asked() -> None:
    """uvicorn's own loop wakes ten times a second to look for a stop (most of an idle
    mock's CPU); the mock's wakes once a second (the Date header's resolution) and ends
    the moment another thread asks it to."""
    ctx = MockContext()
    server = _Server(uvicorn_config(create_app(ctx)))
    ticks: list[int] = []

    async def on_tick(counter: int) -> bool:
        ticks.append(counter)
        return server.should_exit

    server.on_tick = on_tick  # type: ignore[method-assign]

    async def scenario() -> float:
        loop = asyncio.get_running_loop()
        task = asyncio.create_task(server.main_loop())
        await asyncio.sleep(0.35)  # an idle moment (what is measured): uvicorn's would tick 3 times
        assert ticks == [0]
        asked = loop.time()
        threading.Thread(target=server.request_exit).start()  # as stop() does
        await asyncio.wait_for(task, 5)
        return loop.time() - asked

    try:
        took = asyncio.run(scenario())
    finally:
        ctx.close()
    assert ticks == [0, 10]  # one more: the Date header is refreshed every tenth count
    assert took < 0.9  # at once, not at the next second's tick


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise TimeoutError("the mock printed nothing")
    return proc.stdout.readline()


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-m", "mockserver", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    proc = _spawn("--port", "0", "--speed", "5")
    try:
        line = _read_line(proc, 20)
        assert line.startswith("docinbox-mock listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert httpx.get(url + "/__admin/clock").json()["speed"] == 5
        proc.send_signal(sig)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_reports_a_taken_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        proc = _spawn("--port", str(holder.getsockname()[1]))
        _out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "already in use" in err


def test_responses_are_not_held_back_by_delayed_acks(mock_url: str) -> None:
    """Regression: without TCP_NODELAY each keep-alive response took ~40 ms."""
    with httpx.Client(base_url=mock_url) as client:
        client.get("/__admin/health")
        started = time.monotonic()
        for _ in range(30):
            client.get("/__admin/health")
        assert time.monotonic() - started < 0.9  # ~1 ms each normally; 1.3 s with the bug


def test_bound_socket_is_tcp() -> None:
    sock = bind_socket("127.0.0.1", 0)
    with sock:
        assert sock.proto == socket.IPPROTO_TCP
