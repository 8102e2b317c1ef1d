"""pytest fixtures for the mock (entry point ``pytest11: docinbox_mock``).

- ``mock_server_session`` — one :class:`~mockserver.server.MockServer` on a free
  loopback port for the whole session (starting uvicorn per test would cost more
  than most tests).
- ``mock_server`` — that server, **reset before each test** (``ctx.reset()``:
  empty journal and ledger, no faults, default settings, clock at real time, speed 1).
  Tests that change the speed or settings get a fresh mock in the next test.
- ``mock_url`` — its base URL, e.g. ``http://127.0.0.1:41234``.
- ``mock_ctx`` — its :class:`~mockserver.core.MockContext` (clock, journal, faults ...).

Tests that must not share a server (e.g. they stop it) make their own
``MockServer()`` as a context manager.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .core.context import MockContext
from .server import MockServer


@pytest.fixture(scope="session")
def mock_server_session() -> Iterator[MockServer]:
    """One real mock server for the session."""
    server = MockServer("127.0.0.1", 0)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def mock_server(mock_server_session: MockServer) -> MockServer:
    """The session's mock server, reset to a fresh mock for this test."""
    mock_server_session.ctx.reset(speed=1.0)
    return mock_server_session


@pytest.fixture
def mock_url(mock_server: MockServer) -> str:
    """Base URL of a freshly reset mock server."""
    return mock_server.url


@pytest.fixture
def mock_ctx(mock_server: MockServer) -> MockContext:
    """The reset mock server's context."""
    return mock_server.ctx
