"""Fixtures shared by the whole suite (helpers live in tests/helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder with an empty inbox, for a config written by ``helpers.write_config``."""
    (tmp_path / "inbox").mkdir()
    return tmp_path
