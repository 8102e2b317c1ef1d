"""Watching that breaks while docinbox runs is noticed, said, and repaired.

The inotify watch limit (a real one, lowered for a child process alone in its own user
namespace, and a fake one at watchdog's libc call), the inbox deleted, moved away or
replaced, a symbolic link as the inbox, an observer that dies.  Every test turns the
periodic rescan off, so a file found proves the repaired watching found it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import watchdog.observers.inotify_c as inotify_c
from watchdog.observers.inotify import InotifyObserver

import daemon.watcher.inotify as inotify_helpers
from daemon.watcher import InboxWatcher
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


class Recorder:
    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        self.lock = threading.Lock()
        self.names: list[str] = []

    def __call__(self, paths: list[Path]) -> None:
        with self.lock:
            self.names += [p.relative_to(self.inbox).as_posix() for p in paths]

    def has(self, name: str) -> bool:
        with self.lock:
            return name in self.names


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[Any]:
    watchers: list[InboxWatcher] = []

    def start(**kwargs: Any) -> tuple[InboxWatcher, Recorder]:
        inbox = kwargs.pop("inbox", tmp_path / "inbox")
        rec = Recorder(inbox)
        kwargs.setdefault("quiet_seconds", 0.05)
        kwargs.setdefault("settle_seconds", 0.3)
        kwargs.setdefault("rescan_seconds", 0)  # no safety net: only the watching counts
        w = InboxWatcher(inbox, rec, **kwargs)
        w.start()
        watchers.append(w)
        return w, rec

    yield start
    for w in watchers:
        w.stop()


def drop(tmp_path: Path, target: Path, data: bytes = b"%PDF-1.4 done") -> None:
    """As a careful writer does: written aside, renamed in."""
    aside = tmp_path / f".{target.name}.part"
    aside.write_bytes(data)
    os.rename(aside, target)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- the inotify watch limit --------------------------------------------------------------


def test_watch_limit_on_a_subfolder_falls_back_to_polling_and_says_so(
    tmp_path: Path, watch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """watchdog skips a subfolder it cannot watch without a word (only the top folder's
    error reaches the caller); the kernel's ENOSPC is faked at watchdog's libc call."""
    inbox = tmp_path / "inbox"
    (inbox / "full" / "deeper").mkdir(parents=True)
    real = inotify_c.inotify_add_watch

    def limited(fd: int, path: bytes, mask: int) -> int:
        if b"/full" in path:
            ctypes.set_errno(errno.ENOSPC)
            return -1
        return int(real(fd, path, mask))

    monkeypatch.setattr(inotify_c, "inotify_add_watch", limited)
    monkeypatch.setattr(
        inotify_helpers, "probe", lambda folder: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    )
    caplog.set_level(logging.INFO, "docinbox.watcher")
    w, rec = watch()
    assert w.active_mode == "polling (inotify watch limit reached)"
    [warning] = warnings(caplog)
    assert "inotify watch limit reached" in warning
    assert "fs.inotify.max_user_watches" in warning and "sudo sysctl" in warning
    drop(tmp_path, inbox / "full" / "deeper" / "x.pdf")
    wait_for(lambda: rec.has("full/deeper/x.pdf"), timeout=5, message="found by polling")


def test_watch_limit_reached_by_a_folder_created_later(
    tmp_path: Path, watch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    real = inotify_c.inotify_add_watch

    def limited(fd: int, path: bytes, mask: int) -> int:
        if b"/later" in path:
            ctypes.set_errno(errno.ENOSPC)
            return -1
        return int(real(fd, path, mask))

    monkeypatch.setattr(inotify_c, "inotify_add_watch", limited)
    monkeypatch.setattr(
        inotify_helpers, "probe", lambda folder: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    )
    w, rec = watch()
    assert w.active_mode == "native"
    (inbox / "later").mkdir()
    wait_for(lambda: w.active_mode.startswith("polling ("), timeout=5, message="fallback")
    assert any("max_user_watches" in m for m in warnings(caplog))
    drop(tmp_path, inbox / "later" / "x.pdf")
    wait_for(lambda: rec.has("later/x.pdf"), timeout=5, message="found by polling")


#: A watcher in a child process, alone in a user namespace whose inotify watch limit it
#: sets (/proc/sys/user/max_inotify_watches is per user namespace, so the machine's own
#: fs.inotify.max_user_watches stays untouched).
LIMITED = r"""
import logging, sys
from pathlib import Path
LIMIT = Path("/proc/sys/user/max_inotify_watches")
LIMIT.write_text(sys.argv[2])
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(levelname)s %(message)s")
from daemon.watcher import InboxWatcher
inbox = Path(sys.argv[1])
def ready(paths):
    for p in paths:
        print("READY", p.relative_to(inbox).as_posix(), flush=True)
w = InboxWatcher(inbox, ready, quiet_seconds=0.05, settle_seconds=0.3, rescan_seconds=0)
w.start()
print("MODE", w.active_mode, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == "limit":
        LIMIT.write_text(cmd[1])
    print("MODE", w.active_mode, flush=True)
w.stop()
"""


class Child:
    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(
                    f"no {prefix!r} within {timeout}s; the child said:\n" + "\n".join(self.seen)
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_a_real_watch_limit_then_raised(tmp_path: Path) -> None:
    if subprocess.run(["unshare", "--user", "--map-root-user", "true"]).returncode != 0:
        pytest.skip(
            "user namespaces are disabled on this kernel (they lower the limit "
            "for one process only)"
        )
    inbox = tmp_path / "inbox"
    deep = inbox / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    # five folders, three watches: the top folder and two below get one, c and d none
    child = Child(
        ["unshare", "--user", "--map-root-user", sys.executable, "-c", LIMITED, str(inbox), "3"]
    )
    try:
        assert child.expect("MODE") == "MODE polling (inotify watch limit reached)"
        assert any("WARNING" in line and "max_user_watches" in line for line in child.seen)
        drop(tmp_path, deep / "x.pdf")
        assert child.expect("READY", timeout=5) == "READY a/b/c/d/x.pdf"
        child.send("limit 1000")  # the user raises the limit: native again, no restart
        deadline = time.monotonic() + 10
        while child.expect("MODE") != "MODE native":
            assert time.monotonic() < deadline, "did not go back to native watching"
            time.sleep(0.2)  # the child's own pace of checking the limit (each second)
            child.send("mode")
        # The log line and the mode answer come from two threads: either may be first.
        deadline = time.monotonic() + 5
        while not any("natively again" in line for line in child.seen):
            assert time.monotonic() < deadline, "no log line about native watching"
            child.send("mode")
            child.expect("MODE")
        drop(tmp_path, deep / "y.pdf")
        # Going back to native watching rescans the inbox, which may hand x.pdf over once
        # more (the watcher's promise is "at least once"; admission skips what it knows).
        ready = child.expect("READY", timeout=5)
        while ready == "READY a/b/c/d/x.pdf":
            ready = child.expect("READY", timeout=5)
        assert ready == "READY a/b/c/d/y.pdf"
    finally:
        child.stop()


def test_the_top_folder_over_the_limit_falls_back_at_start(
    tmp_path: Path, watch: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import daemon.watcher.observers as module

    def exhausted() -> InotifyObserver:
        raise OSError(errno.EMFILE, "inotify instance limit reached")

    monkeypatch.setattr(module, "_native_observer", exhausted)
    w, rec = watch()
    assert w.active_mode == "polling (inotify instance limit reached)"
    assert any("fs.inotify.max_user_instances" in m for m in warnings(caplog))
    drop(tmp_path, tmp_path / "inbox" / "x.pdf")
    wait_for(lambda: rec.has("x.pdf"), timeout=5, message="x.pdf via polling")


# --- the inbox itself ------------------------------------------------------------------------


def test_inbox_deleted_and_created_again_by_the_user(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    w, rec = watch(settle_seconds=2.0)  # the grace before docinbox would create it itself
    shutil.rmtree(inbox)
    wait_for(lambda: w.active_mode == "none (inbox missing)", timeout=5, message="noticed")
    inbox.mkdir()
    wait_for(lambda: w.active_mode == "native", timeout=5, message="watching again")
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    [warning] = warnings(caplog)
    assert "was deleted and created again" in warning


def test_inbox_deleted_is_created_again(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    w, rec = watch()
    shutil.rmtree(inbox)
    wait_for(inbox.is_dir, timeout=5, message="the inbox created again")
    wait_for(lambda: w.active_mode == "native", timeout=5, message="watching again")
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    [warning] = warnings(caplog)
    assert "docinbox created it again" in warning


def test_inbox_moved_away_to_the_trash(tmp_path: Path, watch: Any) -> None:
    """A file manager's delete is a rename: inotify keeps watching the folder in the
    trash and says nothing.  Files written there are not the inbox's."""
    inbox = tmp_path / "inbox"
    trash = tmp_path / "Trash"
    trash.mkdir()
    w, rec = watch()
    os.rename(inbox, trash / "inbox")
    wait_for(inbox.is_dir, timeout=5, message="the inbox created again")
    wait_for(lambda: w.active_mode == "native", timeout=5, message="watching again")
    drop(tmp_path, trash / "inbox" / "in-the-trash.pdf")
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    assert rec.names == ["after.pdf"]


def test_inbox_replaced_between_two_looks(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    _w, rec = watch()
    os.rename(inbox, tmp_path / "old")
    inbox.mkdir()  # at once: the folder is never seen missing
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    assert any("was replaced by another folder" in m for m in warnings(caplog))


def test_inbox_on_a_drive_that_went_away(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The inbox's parent is gone too (an unplugged drive): nothing is created in its
    place; when it is back, watching resumes."""
    drive = tmp_path / "drive"
    inbox = drive / "inbox"
    inbox.mkdir(parents=True)
    caplog.set_level(logging.INFO, "docinbox.watcher")
    w, rec = watch(inbox=inbox)
    os.rename(drive, tmp_path / "unplugged")
    wait_for(lambda: warnings(caplog), timeout=5, message="a warning")
    assert "a disconnected drive or share" in warnings(caplog)[0]
    assert not drive.exists()
    os.rename(tmp_path / "unplugged", drive)  # plugged in again
    wait_for(lambda: w.active_mode == "native", timeout=5, message="watching again")
    assert any("is back" in r.getMessage() for r in caplog.records)
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    assert len(warnings(caplog)) == 1


def test_inbox_that_is_a_symbolic_link(tmp_path: Path, watch: Any) -> None:
    """inotify would watch the link itself (watchdog adds IN_DONT_FOLLOW), and nothing
    dropped through it would ever be seen."""
    (tmp_path / "real").mkdir()
    (tmp_path / "inbox").symlink_to(tmp_path / "real")
    w, rec = watch()
    assert w.active_mode == "native"
    drop(tmp_path, tmp_path / "inbox" / "a.pdf")
    wait_for(lambda: rec.has("a.pdf"), timeout=5, message="a.pdf through the link")


def test_an_observer_that_dies_is_restarted(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    observers: list[InotifyObserver] = []

    def factory() -> InotifyObserver:
        observers.append(InotifyObserver(generate_full_events=True))
        return observers[-1]

    _w, rec = watch(observer_factory=factory)
    observers[0].stop()  # as if its thread had died
    wait_for(lambda: len(observers) == 2, timeout=5, message="restarted")
    assert any("stopped unexpectedly" in m for m in warnings(caplog))
    drop(tmp_path, tmp_path / "inbox" / "a.pdf")
    wait_for(lambda: rec.has("a.pdf"), timeout=5, message="picked up")


# --- on_attached: the daemon re-takes what it held on the old folder ---------------------------


class Attached:
    """Records each on_attached call: the path, the thread, and whether the recorder had
    been handed a file of the new folder already."""

    def __init__(self, watch_for: str, fail: bool = False) -> None:
        self.watch_for = watch_for
        self.fail = fail
        self.rec: Recorder | None = None
        self.calls: list[tuple[Path, str, bool]] = []

    def __call__(self, path: Path) -> None:
        seen = self.rec is not None and self.rec.has(self.watch_for)
        self.calls.append((path, threading.current_thread().name, seen))
        if self.fail:
            raise RuntimeError("cannot lock the new inbox")


def test_on_attached_runs_for_a_replaced_inbox_before_its_files_are_handed_over(
    tmp_path: Path, watch: Any
) -> None:
    inbox = tmp_path / "inbox"
    attached = Attached(watch_for="waiting.pdf")
    _w, rec = watch(on_attached=attached)
    attached.rec = rec
    assert attached.calls == []  # not for the first start
    replacement = tmp_path / "replacement"
    replacement.mkdir()
    (replacement / "waiting.pdf").write_bytes(b"%PDF-1.4 already there")
    os.rename(inbox, tmp_path / "old")
    os.rename(replacement, inbox)
    wait_for(lambda: rec.has("waiting.pdf"), timeout=5, message="the new folder scanned")
    assert attached.calls == [(inbox, "docinbox-watcher", False)]


def test_on_attached_runs_when_the_inbox_is_created_again(tmp_path: Path, watch: Any) -> None:
    inbox = tmp_path / "inbox"
    attached = Attached(watch_for="after.pdf")
    w, rec = watch(on_attached=attached)
    shutil.rmtree(inbox)
    wait_for(lambda: attached.calls, timeout=5, message="on_attached")
    assert w.active_mode == "native"
    drop(tmp_path, inbox / "after.pdf")
    wait_for(lambda: rec.has("after.pdf"), timeout=5, message="picked up")
    assert [path for path, _thread, _seen in attached.calls] == [inbox]


def test_on_attached_not_for_an_observer_restarted_on_the_same_folder(
    tmp_path: Path, watch: Any
) -> None:
    observers: list[InotifyObserver] = []

    def factory() -> InotifyObserver:
        observers.append(InotifyObserver(generate_full_events=True))
        return observers[-1]

    attached = Attached(watch_for="a.pdf")
    _w, rec = watch(observer_factory=factory, on_attached=attached)
    observers[0].stop()  # as if its thread had died
    wait_for(lambda: len(observers) == 2, timeout=5, message="restarted")
    drop(tmp_path, tmp_path / "inbox" / "a.pdf")
    wait_for(lambda: rec.has("a.pdf"), timeout=5, message="picked up")
    assert attached.calls == []


def test_on_attached_failing_is_logged_and_watching_goes_on(
    tmp_path: Path, watch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = tmp_path / "inbox"
    attached = Attached(watch_for="waiting.pdf", fail=True)
    _w, rec = watch(on_attached=attached)
    replacement = tmp_path / "replacement"
    replacement.mkdir()
    (replacement / "waiting.pdf").write_bytes(b"%PDF-1.4 already there")
    os.rename(inbox, tmp_path / "old")
    os.rename(replacement, inbox)
    # found only by the scan that follows on_attached (the rescan is off)
    wait_for(lambda: rec.has("waiting.pdf"), timeout=5, message="the new folder scanned")
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert f"watching {inbox} again" in error.getMessage()
    assert error.exc_info is not None and "cannot lock the new inbox" in str(error.exc_info[1])
