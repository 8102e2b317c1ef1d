"""The watcher on a real folder with the real observers (inotify here, and polling)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from daemon.watcher import IgnoreRules, InboxWatcher
from tests.helpers import wait_for


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[tuple[str, int]] = []  # (relative path, size when handed over)
        self.inbox: Path | None = None

    def __call__(self, paths: list[Path]) -> None:
        with self.lock:
            for p in paths:
                assert self.inbox is not None
                self.events.append((p.relative_to(self.inbox).as_posix(), p.stat().st_size))

    def names(self) -> list[str]:
        with self.lock:
            return [n for n, _ in self.events]


@pytest.fixture
def watch(tmp_path: Path):  # type: ignore[no-untyped-def]
    watchers: list[InboxWatcher] = []

    def start(**kwargs) -> tuple[InboxWatcher, Recorder]:  # type: ignore[no-untyped-def]
        rec = Recorder()
        rec.inbox = tmp_path / "inbox"
        kwargs.setdefault("quiet_seconds", 0.05)
        kwargs.setdefault("settle_seconds", 0.3)
        w = InboxWatcher(tmp_path / "inbox", rec, **kwargs)
        w.start()
        watchers.append(w)
        return w, rec

    yield start
    for w in watchers:
        w.stop()


def test_rename_into_the_inbox_is_taken_at_once(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    # a settle window far beyond the deadline: only the rename itself can make it ready
    w, rec = watch(settle_seconds=60)
    assert w.active_mode == "native"
    (tmp_path / "elsewhere.pdf").write_bytes(b"%PDF-1.4 done")
    os.rename(tmp_path / "elsewhere.pdf", tmp_path / "inbox" / "a.pdf")
    wait_for(lambda: rec.names() == ["a.pdf"], message="a.pdf handed over")


def test_a_file_being_written_is_not_taken_until_closed(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    # pauses between pages far longer than the settle window: still never taken half-written
    w, rec = watch(settle_seconds=0.05)
    path = tmp_path / "inbox" / "scan.pdf"
    with path.open("wb") as fh:  # a scanner writing page by page, file kept open
        for page in range(6):
            fh.write(b"page %d " % page * 2000)
            fh.flush()
            # wait until the watcher has certainly seen this write (it tracks the file)
            wait_for(lambda: w.pending_count() == 1, message="write seen")
            time.sleep(0.1)  # the writer's own pace (longer than the quiet period)
            assert rec.names() == []
    final = path.stat().st_size
    wait_for(lambda: rec.events, message="handed over after close")
    assert rec.events == [("scan.pdf", final)]


def test_written_again_after_close_waits_for_the_last_close(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    _w, rec = watch(quiet_seconds=0.5)
    path = tmp_path / "inbox" / "b.pdf"
    path.write_bytes(b"first part ")
    with path.open("ab") as fh:  # reopened within the quiet period
        fh.write(b"second part")
    wait_for(lambda: rec.events, message="handed over")
    assert rec.events == [("b.pdf", len(b"first part second part"))]


def test_ignored_files_and_folders(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    _w, rec = watch(ignore=IgnoreRules(["*.bak"]))
    inbox = tmp_path / "inbox"
    for name in (
        "a.pdf.part",
        "b.crdownload",
        "~$c.docx",
        ".hidden.pdf",
        "Thumbs.db",
        "d.bak",
        "e.tmp",
        "desktop.ini",
    ):
        (inbox / name).write_bytes(b"x")
    (inbox / "@eaDir").mkdir()
    (inbox / "@eaDir" / "f.pdf").write_bytes(b"x")
    (inbox / "ok.pdf").write_bytes(b"x")
    wait_for(lambda: "ok.pdf" in rec.names(), message="ok.pdf")
    # the partial download finishing (renamed to its real name) is taken
    os.rename(inbox / "a.pdf.part", inbox / "a.pdf")
    wait_for(lambda: "a.pdf" in rec.names(), message="a.pdf")
    assert sorted(rec.names()) == ["a.pdf", "ok.pdf"]


def test_start_up_scan_and_subfolders(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    inbox = tmp_path / "inbox"
    (inbox / "sub" / "deeper").mkdir(parents=True)
    old = inbox / "sub" / "deeper" / "old.pdf"
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    _w, rec = watch()
    # files that were there before start are handed over during start()
    assert rec.names() == ["sub/deeper/old.pdf"]
    folder = tmp_path / "incoming"
    (folder / "x").mkdir(parents=True)
    (folder / "x" / "new.pdf").write_bytes(b"new")
    os.rename(folder, inbox / "moved-in")  # a whole folder dropped at once
    wait_for(lambda: "moved-in/x/new.pdf" in rec.names(), message="file in moved folder")


def test_polling_mode_uses_the_settle_window(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    w, rec = watch(mode="polling", settle_seconds=0.4)
    assert w.active_mode == "polling"
    (tmp_path / "inbox" / "share.pdf").write_bytes(b"from a network share")
    wait_for(lambda: rec.names() == ["share.pdf"], message="share.pdf")


def test_falls_back_to_polling_when_inotify_cannot_start(
    tmp_path: Path,
    watch,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import daemon.watcher.observers as module

    native = module._native_observer

    def exhausted() -> module.BaseObserver:
        observer = native()

        def start() -> None:
            raise OSError(28, "inotify watch limit reached")

        observer.start = start  # type: ignore[method-assign]
        return observer

    monkeypatch.setattr(module, "_native_observer", exhausted)
    w, rec = watch(settle_seconds=0.3)
    # the log and the mode say so, and what to do about it
    assert w.active_mode == "polling (inotify watch limit reached)"
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "sudo sysctl fs.inotify.max_user_watches=" in warning
    (tmp_path / "inbox" / "x.pdf").write_bytes(b"x")
    wait_for(lambda: rec.names() == ["x.pdf"], message="x.pdf via polling")


def test_periodic_rescan_catches_missed_events(tmp_path: Path, watch) -> None:  # type: ignore[no-untyped-def]
    class Deaf:  # an observer that never reports anything
        def schedule(self, *a, **k) -> None: ...  # type: ignore[no-untyped-def]
        def start(self) -> None: ...
        def stop(self) -> None: ...
        def join(self, timeout: float | None = None) -> None: ...

    _w, rec = watch(observer_factory=Deaf, rescan_seconds=0.2, settle_seconds=0.2)
    (tmp_path / "inbox" / "missed.pdf").write_bytes(b"x")
    # every rescan offers it again (the engine drops known files): found at least once
    wait_for(lambda: "missed.pdf" in rec.names(), message="found by rescan")
    assert set(rec.names()) == {"missed.pdf"}
