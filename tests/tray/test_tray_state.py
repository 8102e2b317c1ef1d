"""The pure state logic: snapshot → icon kind, badge, tooltip, menu model."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.control import (
    FOREVER,
    BudgetUse,
    DocumentSummary,
    Pace,
    Progress,
    ServiceHealth,
    StatusSnapshot,
)
from daemon.notify.problems import TOOLTIP_MAX, problems_of
from daemon.tray.state import RECENT_MAX, Kind, MenuEntry, derive

NOW = 1_000_000.0


def texts(entries: tuple[MenuEntry, ...]) -> list[str]:
    return [e.text for e in entries if not e.separator]


def entry(entries: tuple[MenuEntry, ...], prefix: str) -> MenuEntry:
    return next(e for e in entries if e.text.startswith(prefix))


def test_idle() -> None:
    s = derive(StatusSnapshot(counts={"done": 12}), now=NOW)
    assert s.kind is Kind.IDLE
    assert s.badge is None
    assert s.tooltip == "docinbox: idle – 12 done"
    assert s.status_line == "Idle – 12 done"


def test_working_counts_queued_and_in_flight_with_activity() -> None:
    snap = StatusSnapshot(
        counts={"queued": 3, "submitting": 1, "received": 1, "done": 4},
        activity="uploading invoice.pdf",
    )
    s = derive(snap, now=NOW)
    assert s.kind is Kind.WORKING
    assert s.badge == "5"
    assert s.tooltip == "docinbox: 3 queued, 2 in progress – uploading invoice.pdf"


def test_unknown_non_terminal_state_counts_as_working() -> None:
    s = derive(StatusSnapshot(counts={"splitting": 2, "done": 1}), now=NOW)
    assert s.kind is Kind.WORKING
    assert s.badge == "2"
    assert "2 in progress" in s.tooltip


def test_large_counts_fit_the_badge() -> None:
    assert derive(StatusSnapshot(counts={"queued": 150}), now=NOW).badge == "99+"


def test_paused_until_resumed_offers_resume_not_pause() -> None:
    s = derive(StatusSnapshot(counts={"queued": 2}, paused_until=FOREVER), now=NOW)
    assert s.kind is Kind.PAUSED
    assert s.tooltip == "docinbox: paused until resumed (2 waiting)"
    assert "Resume" in texts(s.menu)
    assert "Pause" not in texts(s.menu)


def test_timed_pause_shows_time_left() -> None:
    s = derive(StatusSnapshot(paused_until=NOW + 29 * 60 + 10), now=NOW)
    assert s.tooltip == "docinbox: paused – 30 min left"
    s = derive(StatusSnapshot(paused_until=NOW + 3600 + 5 * 60), now=NOW)
    assert s.tooltip == "docinbox: paused – 1 h 05 min left"


def test_running_offers_three_pause_choices() -> None:
    s = derive(StatusSnapshot(), now=NOW)
    pause = entry(s.menu, "Pause")
    assert [(c.text, c.action) for c in pause.children] == [
        ("For 30 minutes", ("pause", 1800)),
        ("For 1 hour", ("pause", 3600)),
        ("Until resumed", ("pause", None)),
    ]
    assert "Resume" not in texts(s.menu)


def test_retrying_names_the_service() -> None:
    snap = StatusSnapshot(
        counts={"submitted": 1},
        services=(
            ServiceHealth("mineru", "retrying", reason="connection reset"),
            ServiceHealth("nanonets"),
        ),
    )
    s = derive(snap, now=NOW)
    assert s.kind is Kind.RETRYING
    assert s.tooltip == "docinbox: mineru: connection reset, retrying (1 waiting)"
    assert s.badge == "1"


def test_attention_when_idle_with_failures() -> None:
    s = derive(StatusSnapshot(counts={"done": 3, "failed": 2}), now=NOW)
    assert s.kind is Kind.ATTENTION
    assert s.badge == "2"
    assert s.tooltip == "docinbox: 2 documents failed"
    assert entry(s.menu, "Retry failed").text == "Retry failed (2)"
    assert entry(s.menu, "Retry failed").action == ("retry_failed",)


def test_retry_failed_hidden_without_failures() -> None:
    s = derive(StatusSnapshot(counts={"done": 3}), now=NOW)
    assert not any(t.startswith("Retry") for t in texts(s.menu))


def test_working_beats_attention_but_keeps_the_failure_count() -> None:
    s = derive(StatusSnapshot(counts={"queued": 1, "failed": 2}), now=NOW)
    assert s.kind is Kind.WORKING
    assert s.tooltip == "docinbox: 1 queued (2 failed)"


@pytest.mark.parametrize(
    ("snap", "message"),
    [
        (
            StatusSnapshot(
                services=(
                    ServiceHealth("nanonets", "paused", reason="invalid API key", error="auth"),
                )
            ),
            "nanonets: invalid API key",
        ),
        (
            StatusSnapshot(
                services=(
                    ServiceHealth(
                        "mineru", "paused", reason="quota exhausted (402)", error="quota"
                    ),
                )
            ),
            "mineru: quota exhausted (402)",
        ),
        (
            StatusSnapshot(problem="config.toml: unknown key 'foldrs'"),
            "config.toml: unknown key 'foldrs'",
        ),
    ],
)
def test_error_states(snap: StatusSnapshot, message: str) -> None:
    s = derive(snap, now=NOW)
    assert s.kind is Kind.ERROR
    assert s.badge == "!"
    assert s.tooltip == f"docinbox: {message}"
    assert [p.message for p in s.problems] == [message]


def test_priority_error_paused_retrying_working_attention() -> None:
    held = ServiceHealth("nanonets", "paused", reason="invalid API key")
    down = ServiceHealth("mineru", "retrying")
    base = StatusSnapshot(
        counts={"queued": 1, "failed": 1}, paused_until=FOREVER, services=(held, down)
    )
    assert derive(base, now=NOW).kind is Kind.ERROR
    no_held = StatusSnapshot(counts=base.counts, paused_until=FOREVER, services=(down,))
    assert derive(no_held, now=NOW).kind is Kind.PAUSED
    running = StatusSnapshot(counts=base.counts, services=(down,))
    assert derive(running, now=NOW).kind is Kind.RETRYING
    assert derive(StatusSnapshot(counts=base.counts), now=NOW).kind is Kind.WORKING


def test_problem_keys_are_stable_per_problem() -> None:
    a = ServiceHealth("nanonets", "paused", reason="invalid API key", error="auth")
    b = ServiceHealth("mineru", "paused", reason="quota exhausted", error="quota")
    keys1 = {p.key for p in problems_of(StatusSnapshot(services=(a,)))}
    keys2 = {p.key for p in problems_of(StatusSnapshot(services=(a, b), counts={"queued": 4}))}
    assert keys1 < keys2
    assert len(keys2) == 2


def test_tooltip_is_bounded() -> None:
    snap = StatusSnapshot(counts={"queued": 1}, activity="uploading " + "x" * 300 + ".pdf")
    s = derive(snap, now=NOW)
    assert len(s.tooltip) == TOOLTIP_MAX
    assert s.tooltip.endswith("…")


def test_menu_order_and_default() -> None:
    snap = StatusSnapshot(
        counts={"done": 1, "failed": 1},
        recent=(DocumentSummary(1, "a.pdf", "done", result_dir=Path("/o/a")),),
    )
    s = derive(snap, now=NOW)
    assert texts(s.menu) == [
        s.status_line,
        "Open inbox",
        "Open outbox",
        "Recent documents",
        "Pause",
        "Retry failed (1)",
        "Open log",
        "Quit",
    ]
    assert [e.text for e in s.menu if e.default] == ["Open inbox"]
    assert not s.menu[0].enabled  # the status line is a label
    no_log = derive(snap, now=NOW, log_available=False)
    assert "Open log" not in texts(no_log.menu)


def test_recent_documents_marks_failures_and_opens_results() -> None:
    docs = [
        DocumentSummary(i, f"doc{i}.pdf", "done", result_dir=Path(f"/out/doc{i}"))
        for i in range(12)
    ]
    docs[0] = DocumentSummary(
        0, "broken.pdf", "failed", error="quota_exceeded", message="quota exhausted"
    )
    s = derive(StatusSnapshot(counts={"done": 11, "failed": 1}, recent=tuple(docs)), now=NOW)
    recent = entry(s.menu, "Recent documents").children
    assert len(recent) == RECENT_MAX
    assert recent[0].text == "✗ broken.pdf — quota exhausted"
    assert recent[0].action is None and not recent[0].enabled  # nothing to open
    assert recent[1].text == "✓ doc1.pdf"
    assert recent[1].action == ("open_path", Path("/out/doc1"))


def test_a_failure_opens_its_error_file() -> None:
    doc = DocumentSummary(
        3,
        "cut.pdf",
        "failed",
        error="corrupt_document",
        message="not a readable PDF",
        error_file=Path("/failed/cut.pdf.error.json"),
    )
    s = derive(StatusSnapshot(counts={"failed": 1}, recent=(doc,)), now=NOW)
    [item] = entry(s.menu, "Recent documents").children
    assert item.action == ("open_path", Path("/failed/cut.pdf.error.json"))


def test_no_recent_submenu_when_nothing_finished() -> None:
    assert "Recent documents" not in texts(derive(StatusSnapshot(), now=NOW).menu)


def test_stopping() -> None:
    s = derive(StatusSnapshot(counts={"queued": 3}), now=NOW, stopping=True)
    assert s.tooltip == "docinbox: stopping…"


def test_starting_is_a_normal_state_not_a_problem() -> None:
    """DaemonControl answers starting=True until the daemon's state is open."""
    snap = StatusSnapshot(starting=True)
    assert problems_of(snap) == ()
    s = derive(snap, now=NOW)
    assert s.kind is Kind.WORKING
    assert s.badge is None
    assert s.tooltip == "docinbox: starting…"
    # nothing that needs a started daemon (pause, retry) is offered yet
    assert texts(s.menu) == ["Starting…", "Open inbox", "Open outbox", "Open log", "Quit"]


def test_busy_holds_the_working_state_after_the_work() -> None:
    done = DocumentSummary(4, "recibo.pdf", "done")
    snap = StatusSnapshot(counts={"done": 4}, recent=(done,), activity="writing recibo.pdf")
    s = derive(snap, now=NOW, busy=True)
    assert (s.kind, s.badge, s.tooltip) == (Kind.WORKING, None, "docinbox: recibo.pdf processed")
    bad = DocumentSummary(5, "scan.png", "failed", error="unreadable")
    s = derive(StatusSnapshot(counts={"done": 4, "failed": 1}, recent=(bad,)), now=NOW, busy=True)
    assert (s.kind, s.tooltip) == (Kind.WORKING, "docinbox: scan.png failed (1 failed)")
    held = ServiceHealth("mineru", "paused", reason="quota exhausted", error="quota")
    assert derive(StatusSnapshot(services=(held,)), now=NOW, busy=True).kind is Kind.ERROR


def test_documents_in_flight_show_how_far_their_service_is() -> None:
    """Issue 14: a 36-page document is no longer just "submitted" for a minute."""
    snap = StatusSnapshot(
        counts={"submitted": 1, "queued": 1},
        active=(
            DocumentSummary(
                1, "informe.pdf", "submitted", "mineru", progress=Progress("running", 12, 36)
            ),
            DocumentSummary(2, "recibo.pdf", "queued"),
        ),
    )
    lines = texts(entry(derive(snap, now=NOW).menu, "In progress").children)
    assert lines == ["informe.pdf — mineru: running, 12 of 36 pages", "recibo.pdf — queued"]
    assert all(not e.enabled for e in entry(derive(snap, now=NOW).menu, "In progress").children)
    assert "In progress" not in texts(derive(StatusSnapshot(), now=NOW).menu)


def test_each_service_shows_its_pace_and_its_allowances() -> None:
    """Issue 14: the tray shows use against limit and when it renews, as status does."""
    files = BudgetUse("files", "files a day", "files", 120, 10_000, renews_at=NOW + 3600)
    mineru = ServiceHealth("mineru", budgets=(files,), pace=Pace(rate=4.95, concurrency=8))
    snap = StatusSnapshot(counts={"done": 3}, services=(mineru,))
    lines = texts(entry(derive(snap, now=NOW).menu, "Services").children)
    assert lines[0] == "mineru: ok"
    assert lines[1].startswith("pace: 4.95 requests/s, the most it sustains")
    assert lines[2].startswith("files a day: 120 of 10,000 files, renews ")
