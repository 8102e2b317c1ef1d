"""The tray's "Open dashboard": shown once the daemon serves the desk, and it opens the
desk's address (key included) in the browser."""

from __future__ import annotations

from pathlib import Path

from daemon.actions import DaemonControl
from daemon.control import StatusSnapshot
from daemon.tray.menu import Actions, dashboard_of
from daemon.tray.state import derive
from daemon.tray.testing import FakeControl

NOW = 1_700_000_000.0


def test_open_dashboard_is_offered_once_the_desk_is_served() -> None:
    snap = StatusSnapshot(counts={"done": 1})
    texts = [e.text for e in derive(snap, now=NOW, dashboard=True).menu]
    assert texts[texts.index("Open outbox") + 1] == "Open dashboard"
    assert "Open dashboard" not in [e.text for e in derive(snap, now=NOW).menu]
    starting = derive(StatusSnapshot(starting=True), now=NOW, dashboard=True)
    assert "Open dashboard" not in [e.text for e in starting.menu]


def test_open_dashboard_opens_the_desk_in_the_browser(tmp_path: Path) -> None:
    control = DaemonControl(tmp_path / "in", tmp_path / "out", None, lambda: None)
    opened: list[str] = []
    actions = Actions(control, browser=opened.append)
    assert dashboard_of(control) is None
    actions.perform(("open_dashboard",))  # no desk yet: nothing opens, nothing breaks
    control.set_dashboard("http://127.0.0.1:8767/?token=abc")
    actions.perform(("open_dashboard",))
    assert opened == ["http://127.0.0.1:8767/?token=abc"]
    # a control that serves no desk at all (the tray's fake) is no error either
    fake = Actions(FakeControl(tmp_path), browser=opened.append)
    fake.perform(("open_dashboard",))
    assert dashboard_of(FakeControl(tmp_path)) is None and len(opened) == 1
