"""Reloading a running daemon's configuration (daemon/reload.py): what changes live, what
needs a restart, and a configuration that does not load changes nothing.  The daemon runs
in-process on the embedded mock; ``docinbox reload`` as users run it is in
tests/acceptance/test_desktop.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon import actions, config, reload
from daemon.lifecycle import Daemon
from tests.helpers import write_config


@pytest.fixture
def running(workdir: Path) -> Iterator[Daemon]:
    daemon = Daemon(config.load(write_config(workdir)), fsync=False)
    thread = threading.Thread(target=daemon.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while daemon.loops is None or daemon.watcher is None:
        assert time.monotonic() < deadline, "the daemon did not start"
        time.sleep(0.02)
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(20)
        daemon.close()


def ask(daemon: Daemon) -> dict[str, Any]:
    """What ``docinbox reload`` does: a request in the store, the daemon's answer."""
    from daemon.store import open_store

    store = open_store(daemon.settings.folders.state, create=False)
    try:
        holder = actions.running(daemon.settings.folders.state)
        ident = actions.request_reload(store, holder)
        result = actions.wait_until(lambda: actions.reload_result(store, ident), 10)
    finally:
        store.close()
    assert result is not None, "no answer to the reload request"
    return dict(result)


def edit(daemon: Daemon, old: str, new: str) -> None:
    path = daemon.settings.config_path
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_live_parts_are_applied_and_services_rebuilt(running: Daemon) -> None:
    assert running.rt is not None
    before = running.rt.services["nanonets"]
    edit(running, "cap_seconds = 0.5", "cap_seconds = 7")
    edit(running, 'level = "debug"', 'level = "info"')
    edit(running, "[services.nanonets]", "[services.nanonets]\nconcurrency = 3")
    result = ask(running)
    assert result["applied"] == ["services", "retry", "log.level"]
    assert result["restart"] == [] and result["error"] is None
    assert running.rt.retry.settings.cap_seconds == 7
    assert running.rt.services["nanonets"] is not before
    assert running.rt.services["nanonets"].settings.concurrency == 3
    # the embedded mock's address and credentials stay in force
    assert running.rt.services["nanonets"].settings.base_url == running.mock.url


def test_what_needs_a_restart_is_named_and_kept(running: Daemon) -> None:
    assert running.rt is not None
    inbox = running.rt.folders.inbox
    edit(running, 'inbox = "inbox"', 'inbox = "elsewhere"')
    edit(running, "quiet_seconds = 0.05", "quiet_seconds = 0.1")
    result = ask(running)
    assert result["restart"] == ["folders", "watcher"]
    assert running.rt.folders.inbox == inbox


def test_a_configuration_that_does_not_load_changes_nothing(running: Daemon) -> None:
    assert running.rt is not None
    settings = running.rt.settings
    edit(running, "[retry]", "[retry]\nmax_attempts = 0")
    result = ask(running)
    assert "retry.max_attempts" in result["error"]
    assert running.rt.settings is settings


def test_a_stale_request_never_reaches_a_later_daemon(workdir: Path) -> None:
    from daemon.lock import Holder
    from daemon.store import open_store

    settings = config.load(write_config(workdir))
    settings.folders.state.parent.mkdir(parents=True)
    store = open_store(settings.folders.state)
    actions.request_stop(store, Holder(pid=1, config="", since=0))
    stopped: list[bool] = []
    requests = actions.Requests(store, 2, stop=lambda: stopped.append(True), reload=_never)
    requests.forget_stale()
    assert store.meta(actions.STOP_KEY) is None
    store.close()
    assert stopped == []


async def _never() -> dict[str, Any]:
    raise AssertionError("no reload expected")


def test_differences_by_part(workdir: Path) -> None:
    old = config.load(write_config(workdir))
    new = config.load(
        write_config(workdir, retry="max_attempts = 2", extra='[daemon]\nduplicates = "process"')
    )
    assert reload.differences(old, new) == (["retry", "daemon"], [])


def test_review_rules_apply_live_and_the_desk_address_waits_for_a_restart(
    workdir: Path,
) -> None:
    old = config.load(write_config(workdir))
    new = config.load(
        write_config(
            workdir,
            extra='[review]\nrequired = ["total"]\n[dashboard]\nlisten = "127.0.0.1:9999"',
        )
    )
    assert reload.differences(old, new) == (["review"], ["dashboard"])
    kept = reload.keep_restart_parts(old, new)
    assert kept.dashboard == old.dashboard and kept.review == new.review
