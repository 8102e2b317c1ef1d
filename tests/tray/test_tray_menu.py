"""The pystray menu built from the model; every action goes through Control."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from daemon.control import FOREVER, DocumentSummary, StatusSnapshot
from daemon.tray import backend
from daemon.tray.menu import Actions, build_menu, find_item
from daemon.tray.state import derive
from daemon.tray.testing import FakeControl


@pytest.fixture
def control(tmp_path: Path) -> FakeControl:
    return FakeControl(
        tmp_path,
        StatusSnapshot(
            counts={"done": 1, "failed": 2},
            recent=(DocumentSummary(1, "a.pdf", "done", result_dir=tmp_path / "outbox" / "a"),),
        ),
        log_path=tmp_path / "docinbox.log",
    )


class Harness:
    def __init__(self, control: FakeControl) -> None:
        self.control = control
        self.opened: list[Path] = []
        self.quits = 0
        self.changes = 0
        self.actions = Actions(
            control, opener=self.opened.append, on_quit=self._quit, on_change=self._change
        )
        self.icon = backend.load("dummy").Icon("docinbox-test")

    def _quit(self) -> None:
        self.quits += 1

    def _change(self) -> None:
        self.changes += 1

    def menu(self):  # type: ignore[no-untyped-def]
        state = derive(self.control.snapshot(), now=0.0)
        return build_menu(state.menu, self.actions.perform)

    def click(self, *path: str) -> None:
        find_item(self.menu(), *path)(self.icon)


def test_default_action_opens_the_inbox(control: FakeControl) -> None:
    h = Harness(control)
    menu = h.menu()
    menu(h.icon)  # what a click on the icon does: the default item
    assert h.opened == [control.inbox]
    h.click("Open outbox")
    assert h.opened[-1] == control.outbox


def test_pause_choices_and_resume(control: FakeControl) -> None:
    h = Harness(control)
    h.click("Pause", "For 30 minutes")
    assert control.calls[-1] == ("pause", 1800)
    control.resume()
    h.click("Pause", "For 1 hour")
    assert control.calls[-1] == ("pause", 3600)
    control.resume()
    h.click("Pause", "Until resumed")
    assert control.calls[-1] == ("pause", None)
    assert control.snapshot().paused_until == FOREVER
    texts = [item.text for item in h.menu()]
    assert "Pause" not in texts  # gone while paused
    assert texts[0] == "Paused until resumed (2 failed)"
    h.click("Resume")
    assert control.calls[-1] == ("resume",)
    assert control.snapshot().paused_until is None
    assert h.changes == 4


def test_retry_failed_shown_only_with_failures(control: FakeControl) -> None:
    h = Harness(control)
    h.click("Retry failed (2)")
    assert control.calls == [("retry_failed",)]
    with pytest.raises(KeyError):
        h.click("Retry failed")


def test_recent_document_opens_its_result(control: FakeControl, tmp_path: Path) -> None:
    h = Harness(control)
    h.click("Recent documents", "✓ a.pdf")
    assert h.opened == [tmp_path / "outbox" / "a"]


def test_open_log_and_quit(control: FakeControl) -> None:
    h = Harness(control)
    h.click("Open log")
    assert h.opened == [control.log_path]
    h.click("Quit")
    assert h.quits == 1
    assert control.calls[-1] == ("stop",)
    assert control.stopped.is_set()


def test_status_line_is_a_disabled_label(control: FakeControl) -> None:
    h = Harness(control)
    first = next(iter(h.menu()))
    assert not first.enabled
    assert first.text.startswith("2 documents failed")


def test_a_failing_action_is_logged_not_raised(
    control: FakeControl, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_opener(path: Path) -> None:
        raise OSError("xdg-open: not found")

    actions = Actions(control, opener=broken_opener)
    with caplog.at_level(logging.WARNING, logger="docinbox.tray"):
        actions.perform(("open_inbox",))
    assert "open_inbox failed: xdg-open: not found" in caplog.text
