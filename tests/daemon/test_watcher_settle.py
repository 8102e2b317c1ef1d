"""The settle tracker alone: no threads, no files, no sleeps; time is a number we pass."""

from __future__ import annotations

import math
from pathlib import Path

from daemon.watcher.settle import FileState, Look, SettleTracker

A = Path("/inbox/a.pdf")
B = Path("/inbox/b.pdf")
S1 = FileState(size=100, mtime_ns=1, ino=7)
S2 = FileState(size=200, mtime_ns=2, ino=7)


def tracker(**kw: object) -> SettleTracker:
    args: dict[str, object] = {"quiet": 0.2, "settle": 2.0, "close_events": True}
    args.update(kw)
    return SettleTracker(**args)  # type: ignore[arg-type]


def step(t: SettleTracker, now: float, looks: dict[Path, Look] | None = None) -> list[Path]:
    """One turn of the watcher's timer: look at what is due (as *looks* says, else
    unchanged and not open for writing) and return what is ready."""
    due = t.due(now)
    looks = looks or {}
    return t.looked(now, {p: looks.get(p, Look(S1, False)) for p in due})


def test_a_rename_into_the_inbox_is_ready_at_once_without_asking_for_writers() -> None:
    t = tracker()
    t.arrived(A, S1, now=10.0)
    assert t.next_check() == 10.0
    assert t.due(10.0) == [A]
    assert not t.wants_writers(A)
    assert t.looked(10.0, {A: Look(S1, None)}) == [A]
    assert t.pending() == 0
    assert t.next_check() is None


def test_a_close_is_ready_after_the_quiet_period_not_before() -> None:
    t = tracker()
    t.written(A, S1, now=0.0)
    t.closed(A, S1, now=1.0)
    assert t.next_check() == 1.2
    assert step(t, 1.19) == []
    assert t.due(1.2) == [A]
    assert t.wants_writers(A)
    assert t.looked(1.2, {A: Look(S1, None)}) == [A]


def test_written_again_within_the_quiet_period_waits_again() -> None:
    t = tracker(close_events=True)
    t.closed(A, S1, now=0.0)
    t.written(A, S2, now=0.1)  # reopened at once (append)
    assert step(t, 0.2, {A: Look(S2, None)}) == []  # the old deadline no longer counts
    t.closed(A, S2, now=0.3)
    assert step(t, 0.49, {A: Look(S2, None)}) == []
    assert step(t, 0.5, {A: Look(S2, None)}) == [A]


def test_a_file_open_for_writing_is_never_ready_whatever_its_age() -> None:
    t = tracker()
    t.found(A, S1, age=3600.0, now=100.0)  # an hour old: a scan would take it at once
    assert t.due(100.0) == [A] and t.wants_writers(A)
    assert t.looked(100.0, {A: Look(S1, True)}) == []
    assert t.next_check() == 102.0  # looked at again a settle window later
    assert step(t, 102.0, {A: Look(S1, True)}) == []
    # the writer closes: with close events, the quiet period after it
    t.closed(A, S2, now=103.0)
    assert step(t, 103.2, {A: Look(S2, False)}) == [A]


def test_after_a_close_a_second_descriptor_still_writing_holds_it() -> None:
    t = tracker()
    t.closed(A, S1, now=0.0)
    assert step(t, 0.2, {A: Look(S1, True)}) == []
    assert step(t, 2.2, {A: Look(S1, False)}) == [A]


def test_start_up_scan_old_file_nobody_writes_is_ready_at_once() -> None:
    t = tracker()
    t.found(A, S1, age=30.0, now=5.0)
    assert step(t, 5.0, {A: Look(S1, False)}) == [A]


def test_start_up_scan_young_file_waits_out_the_settle_window_from_its_mtime() -> None:
    t = tracker()
    t.found(A, S1, age=0.5, now=5.0)
    assert t.next_check() == 6.5
    assert step(t, 6.4) == []
    assert step(t, 6.5, {A: Look(S1, None)}) == [A]  # no writer seen, unchanged: settled


def test_an_mtime_in_the_future_counts_as_now() -> None:
    t = tracker()
    t.found(A, S1, age=-86400.0, now=5.0)
    assert t.next_check() == 7.0


def test_a_change_seen_only_at_the_look_restarts_the_window() -> None:
    t = tracker(close_events=False)
    t.written(A, S1, now=0.0)
    assert step(t, 2.0, {A: Look(S2, False)}) == []
    assert t.next_check() == 4.0
    assert step(t, 4.0, {A: Look(S2, False)}) == [A]


def test_a_scan_that_sees_the_same_file_again_changes_nothing() -> None:
    t = tracker()
    t.found(A, S1, age=0.0, now=0.0)
    t.found(A, S1, age=1.0, now=1.0)
    assert t.next_check() == 2.0
    t.found(A, S2, age=0.0, now=1.5)  # but a changed one starts over
    assert step(t, 2.0, {A: Look(S2, False)}) == []
    assert step(t, 3.5, {A: Look(S2, False)}) == [A]


def test_polling_mode_settles_on_size_and_mtime_when_nobody_can_tell_about_writers() -> None:
    t = tracker(close_events=False)
    t.written(A, S1, now=0.0)
    assert step(t, 1.9) == []
    assert step(t, 2.0, {A: Look(S1, None)}) == [A]


def test_polling_mode_still_waits_for_a_writer_it_can_see() -> None:
    t = tracker(close_events=False)
    t.written(A, S1, now=0.0)
    for now in (2.0, 4.0, 6.0):
        assert step(t, now, {A: Look(S1, True)}) == []
    assert step(t, 8.0, {A: Look(S1, False)}) == [A]


def test_with_close_events_an_unclosed_write_waits_for_its_close() -> None:
    t = tracker(close_events=True, patience=60.0)
    t.written(A, S1, now=0.0)
    # nobody can tell whether it is still open (a writer /proc hides): wait for the close
    assert step(t, 2.0, {A: Look(S1, None)}) == []
    assert t.next_check() == 60.0
    t.closed(A, S1, now=30.0)
    assert step(t, 30.2, {A: Look(S1, None)}) == [A]


def test_with_close_events_a_lost_close_is_recovered() -> None:
    t = tracker(close_events=True, patience=60.0)
    t.written(A, S1, now=0.0)
    # known not open (a complete check): the close event was lost; take it
    assert step(t, 2.0, {A: Look(S1, False)}) == [A]
    t.written(B, S1, now=0.0)
    assert step(t, 2.0, {B: Look(S1, None)}) == []
    assert step(t, 60.0, {B: Look(S1, None)}) == [B]  # after patience, even unknown


def test_no_patience_means_only_the_close_event_counts() -> None:
    t = tracker(close_events=True, patience=math.inf)
    t.written(A, S1, now=0.0)
    assert step(t, 2.0, {A: Look(S1, None)}) == []
    assert t.next_check() is None
    assert t.pending() == 1


def test_a_file_written_again_after_it_was_handed_over_is_handed_over_again() -> None:
    # a writer that reopens the file for each page: open-append, write, close, pause
    t = tracker(close_events=True)
    t.written(A, S1, now=0.0)
    t.closed(A, S1, now=0.0)
    assert step(t, 0.2, {A: Look(S1, False)}) == [A]  # page 1: looked finished
    assert not t.is_pending(A)
    t.written(A, S2, now=3.0)  # page 2
    assert t.is_pending(A)
    t.closed(A, S2, now=3.0)
    # known to reopen: after each close it now waits the settle window, not the quiet one
    assert step(t, 3.2, {A: Look(S2, False)}) == []
    assert step(t, 5.0, {A: Look(S2, False)}) == [A]


def test_a_new_file_renamed_over_a_handed_over_one_is_not_a_reopen() -> None:
    t = tracker()
    t.closed(A, S1, now=0.0)
    assert step(t, 0.2) == [A]
    t.arrived(A, S2, now=1.0)
    assert step(t, 1.0, {A: Look(S2, None)}) == [A]


def test_handed_over_files_are_forgotten_after_a_while() -> None:
    t = tracker(remember=60.0)
    t.closed(A, S1, now=0.0)
    assert step(t, 0.2) == [A]
    assert t.last_change(A, now=10.0) == 0.0
    assert t.last_change(A, now=61.0) is None
    t.written(A, S2, now=100.0)  # long after: a new document, fast again
    t.closed(A, S2, now=100.0)
    assert step(t, 100.2, {A: Look(S2, False)}) == [A]


def test_last_change_while_pending() -> None:
    t = tracker()
    assert t.last_change(A, now=0.0) is None
    t.written(A, S1, now=4.0)
    assert t.last_change(A, now=5.0) == 4.0
    t.found(B, S1, age=10.0, now=20.0)
    assert t.last_change(B, now=20.0) == 10.0


def test_gone_forgets_a_file_or_a_whole_folder() -> None:
    t = tracker()
    sub = Path("/inbox/sub")
    t.written(A, S1, now=0.0)
    t.written(sub / "x.pdf", S1, now=0.0)
    t.written(sub / "deeper" / "y.pdf", S1, now=0.0)
    t.gone(sub, folder=True)
    assert t.pending() == 1
    t.gone(A)
    assert t.pending() == 0
    assert t.due(100.0) == []
    assert t.next_check() is None


def test_vanished_at_the_look_is_forgotten() -> None:
    t = tracker()
    t.arrived(A, S1, now=0.0)
    assert step(t, 0.0, {A: Look(None, None)}) == []
    assert t.pending() == 0


def test_an_event_during_a_look_makes_that_look_stale() -> None:
    t = tracker()
    t.closed(A, S1, now=0.0)
    assert t.due(0.2) == [A]
    t.written(A, S2, now=0.25)  # the watchdog thread, while the timer thread looked
    assert t.looked(0.3, {A: Look(S1, False)}) == []
    assert t.is_pending(A)
    assert t.next_check() == 2.25


def test_due_returns_each_file_once_in_deadline_order_and_skips_stale_items() -> None:
    t = tracker()
    t.written(A, S1, now=0.0)  # deadline 2.0
    t.closed(A, S1, now=0.5)  # earlier: 0.7; the 2.0 item goes stale
    t.closed(B, S1, now=0.0)  # 0.2
    assert t.next_check() == 0.2
    assert t.due(5.0) == [B, A]
    assert t.due(5.0) == []


def test_a_later_deadline_keeps_the_earlier_item_and_reschedules_lazily() -> None:
    t = tracker()
    t.closed(A, S1, now=0.0)  # 0.2
    t.written(A, S1, now=0.1)  # 2.1: the 0.2 item stays in the heap
    assert t.next_check() == 0.2  # an early wake-up is harmless...
    assert t.due(0.2) == []  # ...nothing is due, and the entry moved to its real deadline
    assert t.next_check() == 2.1


def test_many_events_on_one_file_do_not_pile_up() -> None:
    t = tracker()
    for i in range(10_000):  # a large copy: one modify event per write
        t.written(A, FileState(i, i, 7), now=i * 0.0001)
    assert len(t._heap) == 1
    t.closed(A, FileState(9_999, 9_999, 7), now=1.0)
    assert len(t._heap) == 2


def test_clear_forgets_everything() -> None:
    t = tracker()
    t.written(A, S1, now=0.0)
    t.closed(B, S1, now=0.0)
    assert step(t, 0.2, {B: Look(S1, None)}) == [B]
    t.clear()
    assert t.pending() == 0 and t.next_check() is None
    assert t.last_change(B, now=1.0) is None
