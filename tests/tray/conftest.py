"""Fixtures for the tray's tests: a real X server (Xvfb) with a tray host (trayer).

Started by the tests themselves; scripts/setup installs them (scripts/apt-packages.txt).
If they cannot start, the x11 tests fail rather than skip.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.tray.tray_xhelpers import ARTIFACTS, XProbe, start_tray_host, start_xvfb, stop


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    proc, name = start_xvfb(ARTIFACTS / "xvfb.log")
    try:
        yield name
    finally:
        stop(proc)


@pytest.fixture(scope="session")
def tray_host(xdisplay: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = start_tray_host(xdisplay, ARTIFACTS / "trayer.log")
    try:
        yield proc
    finally:
        stop(proc)


@pytest.fixture
def x11(
    xdisplay: str, tray_host: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> Iterator[XProbe]:
    """DISPLAY set for this test, and a probe to look at the screen."""
    assert tray_host.poll() is None, "the tray host died"
    monkeypatch.setenv("DISPLAY", xdisplay)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("PYSTRAY_BACKEND", raising=False)
    probe = XProbe(xdisplay)
    try:
        yield probe
    finally:
        probe.close()
