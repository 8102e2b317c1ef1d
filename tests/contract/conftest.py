"""The contract tests use the plugin's real mock server (or the real service, by env)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from mockserver.core import MockContext
from mockserver.loopback import FileServer
from mockserver.pytest_plugin import (  # noqa: F401  (fixtures, if the entry point is absent)
    mock_ctx,
    mock_server,
    mock_server_session,
    mock_url,
)


def real_or_mock(*env: str) -> list[object]:
    """A ``target`` fixture's params: the mock always; the real service (``-m real``)
    only when every variable in *env* is set."""
    reason = f"{' and '.join(env)} {'are' if len(env) > 1 else 'is'} not set"
    real = pytest.param(
        "real",
        marks=[
            pytest.mark.real,
            pytest.mark.skipif(not all(os.environ.get(name) for name in env), reason=reason),
        ],
    )
    return ["mock", real]


@dataclass
class TaskTarget:
    """A MinerU-family API (MinerU v4, docparse v1) under test: the mock or the real one."""

    name: str
    base_url: str
    token: str
    ctx: MockContext | None  # None: the real service
    files: FileServer | None = None

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "*/*"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=120)

    def wait(self, client: httpx.Client, path: str, done: Any, timeout: float = 600) -> Any:
        """Poll *path* until *done(data)*; on the mock, move its clock instead of waiting."""
        deadline = time.monotonic() + timeout
        while True:
            body = client.get(path).json()
            assert body["code"] == 0, body
            if done(body["data"]):
                return body["data"]
            assert time.monotonic() < deadline, body
            if self.ctx is not None:
                self.ctx.clock.advance(1.0)
            else:
                time.sleep(5)  # the real service: nothing to wait on but time


def use_variant(ctx: MockContext | None, service: str, settings: dict[str, Any]) -> None:
    """Put the mock in one of the variants its sources disagree on (``POST /__admin/config``
    does the same over HTTP).  The real service answers as it does: a test of another
    variant than its default is the mock's alone and is skipped there."""
    if ctx is None:
        if settings:
            pytest.skip("a variant of the mock; the real service answers as it does")
        return
    if settings:
        ctx.configure({service: settings})


def variant_id(settings: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in settings.items()) or "default"
