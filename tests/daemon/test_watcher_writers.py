"""Files still being written by another process are never handed over half-written.

Each writer here is a real child process, the way a scanner or a copy writes: one that
holds the file open and adds a page at a time, and one that reopens the file for every
page.  The watcher runs on a real folder with the real observers.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.watcher import InboxWatcher
from daemon.watcher.writers import procfs_writers
from tests.helpers import wait_for

#: A writer process.  "hold": opens the file once and writes a page every `period`
#: seconds; at `gate` pages it may back-date the file (`age`) and waits for a line on
#: stdin.  "reopen": open-append, write one page, close, pause, for every page.
WRITER = r"""
import json, os, sys, time
path, spec = sys.argv[1], json.loads(sys.argv[2])
pages, size, period = spec["pages"], spec["page_size"], spec["period"]

def say(*words):
    print(*words, flush=True)

def page(i):
    return (b"%%page %d " % i).ljust(size, b".")

if spec["mode"] == "hold":
    fh = open(path, "wb")
    for i in range(pages):
        if i == spec.get("gate"):
            if spec.get("age"):
                os.utime(path, (time.time() - spec["age"],) * 2)
            say("waiting", fh.tell())
            sys.stdin.readline()
        fh.write(page(i))
        fh.flush()
        say("page", i + 1, fh.tell())
        if i + 1 < pages:
            time.sleep(period)
    fh.close()
    say("closed", pages * size)
else:
    for i in range(pages):
        with open(path, "ab") as fh:
            fh.write(page(i))
        say("page", i + 1, (i + 1) * size)
        if i + 1 < pages:
            time.sleep(period)
    say("closed", pages * size)
"""


class Writer:
    """A writer process and its progress lines."""

    def __init__(self, path: Path, **spec: Any) -> None:
        spec.setdefault("page_size", 1000)
        self.size = spec["pages"] * spec["page_size"]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, word: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"the writer did not say {word!r} within {timeout}s")
            if line.startswith(word):
                return line

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


class Recorder:
    def __init__(self, inbox: Path) -> None:
        self.inbox = inbox
        self.lock = threading.Lock()
        self.events: list[tuple[str, int]] = []  # (relative path, size when handed over)

    def __call__(self, paths: list[Path]) -> None:
        with self.lock:
            for p in paths:
                self.events.append((p.relative_to(self.inbox).as_posix(), p.stat().st_size))

    def sizes(self, name: str) -> list[int]:
        with self.lock:
            return [size for n, size in self.events if n == name]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, Any]]:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    made: dict[str, Any] = {"inbox": inbox, "watchers": [], "writers": []}

    def watch(**kwargs: Any) -> tuple[InboxWatcher, Recorder]:
        rec = Recorder(inbox)
        kwargs.setdefault("quiet_seconds", 0.05)
        kwargs.setdefault("settle_seconds", 0.2)
        kwargs.setdefault("rescan_seconds", 0)
        w = InboxWatcher(inbox, rec, **kwargs)
        w.start()
        made["watchers"].append(w)
        return w, rec

    def writer(name: str, *, folder: Path = inbox, **spec: Any) -> Writer:
        wr = Writer(folder / name, **spec)
        made["writers"].append(wr)
        return wr

    made["watch"], made["writer"] = watch, writer
    yield made
    for wr in made["writers"]:
        wr.stop()
    for w in made["watchers"]:
        w.stop()


def test_start_up_scan_leaves_a_file_a_process_is_still_writing(env: dict[str, Any]) -> None:
    """Item 5: docinbox starting while a scanner is mid-document.  The file's mtime is an
    hour old, so by age alone it is long settled; but the scanner still has it open."""
    scanner = env["writer"]("scan.pdf", mode="hold", pages=4, period=0.2, gate=1, age=3600)
    scanner.expect("waiting")
    w, rec = env["watch"]()
    assert rec.events == [], "a file open for writing was handed over by the start-up scan"
    assert w.pending_count() == 1
    scanner.go()
    scanner.expect("closed")
    wait_for(lambda: rec.events, message="handed over once closed")
    assert rec.events == [("scan.pdf", scanner.size)]


def test_start_up_scan_in_polling_mode_too(env: dict[str, Any]) -> None:
    scanner = env["writer"]("scan.pdf", mode="hold", pages=3, period=0.3, gate=1, age=3600)
    scanner.expect("waiting")
    w, rec = env["watch"](mode="polling")
    assert w.active_mode == "polling"
    assert rec.events == []
    scanner.go()
    scanner.expect("closed")
    wait_for(lambda: rec.events, message="handed over once closed")
    assert rec.events == [("scan.pdf", scanner.size)]


def test_polling_never_takes_a_file_held_open_between_pages(env: dict[str, Any]) -> None:
    """Live events without close events (polling: network shares, or the fallback when
    inotify cannot watch): pauses between pages longer than the settle window."""
    _w, rec = env["watch"](mode="polling", settle_seconds=0.2)
    scanner = env["writer"]("scan.pdf", mode="hold", pages=5, period=0.6)
    scanner.expect("closed")
    wait_for(lambda: rec.events, message="handed over once closed")
    assert rec.events == [("scan.pdf", scanner.size)]


def test_native_never_takes_a_file_held_open_between_pages(env: dict[str, Any]) -> None:
    _w, rec = env["watch"](settle_seconds=0.1)
    scanner = env["writer"]("scan.pdf", mode="hold", pages=5, period=0.3)
    scanner.expect("closed")
    wait_for(lambda: rec.events, message="handed over once closed")
    assert rec.events == [("scan.pdf", scanner.size)]


def test_the_rescan_never_takes_a_file_held_open(env: dict[str, Any]) -> None:
    """Files only a rescan finds (missed events): the same guard."""

    class Deaf:  # an observer that never reports anything
        def schedule(self, *a: Any, **k: Any) -> None: ...
        def start(self) -> None: ...
        def stop(self) -> None: ...
        def join(self, timeout: float | None = None) -> None: ...

    w, rec = env["watch"](observer_factory=Deaf, rescan_seconds=0.1)
    # written outside, back-dated, then moved in while its writer still holds it open
    outside = env["inbox"].parent
    scanner = env["writer"](
        "missed.pdf", folder=outside, mode="hold", pages=3, period=0.1, gate=1, age=3600
    )
    scanner.expect("waiting")
    os.rename(outside / "missed.pdf", env["inbox"] / "missed.pdf")
    wait_for(lambda: rec.events or w.pending_count() == 1, message="found by a rescan")
    assert rec.events == [], "a rescan handed over a file open for writing"
    scanner.go()
    scanner.expect("closed")
    wait_for(lambda: rec.events, message="handed over once closed")
    assert rec.sizes("missed.pdf")[0] == scanner.size  # (later rescans offer it again)


def test_a_writer_that_reopens_the_file_per_page(env: dict[str, Any]) -> None:
    """open-append, write a page, close, pause.  Each close looks final; the watcher hands
    the file over after the first page (0.05 s quiet), then learns: every later version
    is handed over again, never a torn one, and after each close it now waits the settle
    window, so the pages that follow come out as one more hand-over, not one each."""
    _w, rec = env["watch"](quiet_seconds=0.05, settle_seconds=1.0)
    scanner = env["writer"]("scan.pdf", mode="reopen", pages=6, period=0.2)
    scanner.expect("closed")
    wait_for(lambda: scanner.size in rec.sizes("scan.pdf"), message="the whole file")
    sizes = rec.sizes("scan.pdf")
    assert all(size % 1000 == 0 for size in sizes), f"a torn page was handed over: {sizes}"
    assert sizes == sorted(sizes) and sizes[-1] == scanner.size
    assert len(sizes) < 6, f"handed over after every page: {sizes}"


def test_procfs_check_sees_writers_and_only_writers(tmp_path: Path) -> None:
    """The Linux check on its own, against real processes."""
    held = tmp_path / "held.pdf"
    read = tmp_path / "read.pdf"
    idle = tmp_path / "idle.pdf"
    for p in (held, read, idle):
        p.write_bytes(b"x")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; a = open(sys.argv[1], 'ab'); b = open(sys.argv[2], 'rb'); "
            "print('open', flush=True); sys.stdin.readline()",
            str(held),
            str(read),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        files = {p: os.lstat(p) for p in (held, read, idle)}
        writers = procfs_writers(files)
        assert writers.open == {held}
        assert writers.writing(held) is True
        assert writers.writing(read) is (False if writers.complete else None)
    finally:
        holder.kill()
        holder.wait()
    assert procfs_writers({p: os.lstat(p) for p in (held, read, idle)}).open == frozenset()


def test_procfs_check_cost_with_10000_candidates(tmp_path: Path) -> None:
    """One pass over /proc serves a whole batch: its cost depends on the descriptors open
    on the machine, not on the number of candidates.  Printed for the record (-s)."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(10_000):
        (folder / f"{i:05d}.pdf").write_bytes(b"")
    files = {p: os.lstat(p) for p in folder.iterdir()}
    fds = sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in _readable_pids())
    procfs_writers(files)  # warm
    runs = 5
    started = time.perf_counter()
    for _ in range(runs):
        procfs_writers(files)
    per_scan = (time.perf_counter() - started) / runs
    print(f"\n/proc writer check: {per_scan * 1000:.1f} ms for 10,000 candidates, {fds} fds")
    assert per_scan < 1.0


def _readable_pids() -> list[str]:
    pids = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                os.listdir(f"/proc/{pid}/fd")
                pids.append(pid)
            except OSError:
                continue
    return pids
