"""Fixtures for the mock's own tests: in-process clients and the plugin's real server.

In-process tests are ``async`` (anyio's pytest plugin, asyncio backend) and talk to
the app through ``httpx.ASGITransport``: fast, no socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from mockserver.app import create_app
from mockserver.core import MockContext
from mockserver.pytest_plugin import (  # noqa: F401  (fixtures, if the entry point is absent)
    mock_ctx,
    mock_server,
    mock_server_session,
    mock_url,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def ctx() -> Iterator[MockContext]:
    """A fresh in-process mock context (own temp dir, removed afterwards)."""
    context = MockContext()
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
async def client(ctx: MockContext) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client bound in-process to a fresh app on *ctx*."""
    transport = httpx.ASGITransport(create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://mock.test") as c:
        yield c


@pytest.fixture
async def mock() -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    """A client bound in-process to a fresh app (own context), and that app's context."""
    app = create_app()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as client:
        yield client, app.mock
    app.mock.reset()
    app.mock.close()
