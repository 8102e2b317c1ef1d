"""What the tray shows, derived from a :class:`~daemon.control.StatusSnapshot`.

Pure functions and immutable values only: no pystray, no Pillow, no clock of its
own (``now`` is passed in), so every rule here is unit-tested without a display.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from daemon.control import FOREVER, DocumentSummary, StatusSnapshot
from daemon.notify.problems import Problem, problems_of, truncate
from daemon.status import progress_text, service_lines

#: How many finished documents the "Recent documents" submenu lists.
RECENT_MAX = 8

TERMINAL_STATES = frozenset({"done", "failed"})

#: Pause choices offered by the menu: (label, seconds; None = until resumed).
PAUSE_CHOICES: tuple[tuple[str, float | None], ...] = (
    ("For 30 minutes", 30 * 60),
    ("For 1 hour", 60 * 60),
    ("Until resumed", None),
)


class Kind(str, Enum):
    """The icon's state, most urgent first (see :func:`derive`)."""

    ERROR = "error"  # credentials, quota or configuration: the user must act
    PAUSED = "paused"  # the user paused docinbox
    RETRYING = "retrying"  # a service is unreachable; docinbox retries on its own
    WORKING = "working"  # documents in flight
    ATTENTION = "attention"  # idle, but some documents failed
    IDLE = "idle"


@dataclass(frozen=True)
class MenuEntry:
    """One line of the menu model; ``action`` is a key that :mod:`daemon.tray.menu` dispatches.

    Actions: ``("open_inbox",)``, ``("open_outbox",)``, ``("open_dashboard",)``,
    ``("open_path", Path)``,
    ``("pause", seconds | None)``, ``("resume",)``, ``("retry_failed",)``,
    ``("open_log",)``, ``("quit",)``; ``None`` for a plain label.  ``children``
    makes a submenu; ``separator`` a separator line.
    """

    text: str = ""
    action: tuple[object, ...] | None = None
    enabled: bool = True
    default: bool = False
    children: tuple[MenuEntry, ...] = ()
    separator: bool = False


SEPARATOR = MenuEntry(separator=True)


@dataclass(frozen=True)
class TrayState:
    kind: Kind
    badge: str | None  # short text drawn on the icon ("3", "99+", "!"), or None
    tooltip: str  # ≤ TOOLTIP_MAX characters
    status_line: str  # the first (disabled) menu line
    menu: tuple[MenuEntry, ...]
    problems: tuple[Problem, ...] = ()


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def badge_count(n: int) -> str:
    """A count that fits in a 16-px badge."""
    return str(n) if n < 100 else "99+"


def _minutes_left(until: float, now: float) -> str:
    left = max(0.0, until - now)
    if left >= 3600:
        hours, minutes = divmod(math.ceil(left / 60), 60)
        return f"{hours} h {minutes:02d} min left"
    return f"{max(1, math.ceil(left / 60))} min left"


def _work_summary(snap: StatusSnapshot) -> str:
    """'3 queued, 2 in progress' — unknown non-terminal states count as in progress."""
    queued = snap.counts.get("queued", 0)
    working = sum(n for s, n in snap.counts.items() if s not in TERMINAL_STATES and s != "queued")
    parts = []
    if queued:
        parts.append(f"{queued} queued")
    if working:
        parts.append(f"{working} in progress")
    return ", ".join(parts)


def _just_finished(snap: StatusSnapshot) -> str:
    """'recibo.pdf processed': what the icon shows while it holds the working state."""
    if not snap.recent:
        return "working…"
    doc = snap.recent[0]
    return f"{truncate(doc.name, 60)} {'failed' if doc.state == 'failed' else 'processed'}"


def _summary(
    kind: Kind, snap: StatusSnapshot, problems: Sequence[Problem], now: float, stopping: bool
) -> str:
    """One line, shared by the tooltip and the menu's status line."""
    if stopping:
        return "stopping…"
    if snap.starting:
        return "starting…"
    pending = snap.pending
    failed = snap.failed
    tail: list[str] = []
    if kind is Kind.ERROR:
        head = problems[0].message if problems else "error"
        if len(problems) > 1:
            head += f" (+{len(problems) - 1} more)"
        if pending:
            tail.append(f"{pending} waiting")
    elif kind is Kind.PAUSED:
        assert snap.paused_until is not None
        if snap.paused_until == FOREVER:
            head = "paused until resumed"
        else:
            head = f"paused – {_minutes_left(snap.paused_until, now)}"
        if pending:
            tail.append(f"{pending} waiting")
    elif kind is Kind.RETRYING:
        names = [s.name for s in snap.services if s.condition == "retrying"]
        reasons = [s.reason for s in snap.services if s.condition == "retrying" and s.reason]
        head = f"{', '.join(names)} unreachable, retrying"
        if reasons:
            head = f"{', '.join(names)}: {reasons[0]}, retrying"
        if pending:
            tail.append(f"{pending} waiting")
    elif kind is Kind.WORKING:
        head = _work_summary(snap) or _just_finished(snap)
        if snap.activity and snap.pending:  # the daemon keeps its last activity when idle
            head += f" – {snap.activity}"
    elif kind is Kind.ATTENTION:
        head = f"{_plural(failed, 'document')} failed"
    else:
        done = snap.counts.get("done", 0)
        head = f"idle – {done} done" if done else "idle – drop documents into the inbox"
    if failed and kind is not Kind.ATTENTION:
        tail.append(f"{failed} failed")
    return head + (f" ({', '.join(tail)})" if tail else "")


def derive(
    snap: StatusSnapshot,
    *,
    now: float,
    stopping: bool = False,
    log_available: bool = True,
    busy: bool = False,
    dashboard: bool = False,
) -> TrayState:
    """Map a snapshot to what the icon, tooltip and menu show.

    Priority: error > paused > retrying > working > attention > idle.  Working beats
    attention so progress stays visible; the failure count stays in the tooltip and
    the menu ("Retry failed (N)") until the user acts.  A daemon still starting shows
    as working, without a count: it is busy, and nothing is wrong.  *busy* holds the
    working state a moment after the work ended (the caller decides how long), so a
    document done in 100 ms still shows on the icon.
    """
    problems = problems_of(snap)
    kind = _kind(snap, problems, busy=busy)
    badge = _badge(kind, snap)
    line = _summary(kind, snap, problems, now, stopping)
    tooltip = truncate(f"docinbox: {line}")
    status_line = truncate(line[:1].upper() + line[1:], 80)
    menu = build_menu_model(snap, status_line, log_available=log_available, dashboard=dashboard)
    return TrayState(
        kind=kind,
        badge=badge,
        tooltip=tooltip,
        status_line=status_line,
        menu=menu,
        problems=problems,
    )


def _kind(snap: StatusSnapshot, problems: Sequence[Problem], *, busy: bool) -> Kind:
    """The icon's state, by the priority :func:`derive` states."""
    if snap.starting:
        return Kind.WORKING
    if problems:
        return Kind.ERROR
    if snap.paused_until is not None:
        return Kind.PAUSED
    if any(s.condition == "retrying" for s in snap.services):
        return Kind.RETRYING
    if snap.pending or busy:
        return Kind.WORKING
    if snap.failed:
        return Kind.ATTENTION
    return Kind.IDLE


def _badge(kind: Kind, snap: StatusSnapshot) -> str | None:
    """The count drawn on the icon: what waits, what failed, or "!" for an error."""
    if kind is Kind.ERROR:
        return "!"
    if kind is Kind.WORKING:
        return badge_count(snap.pending) if snap.pending else None
    if kind is Kind.ATTENTION:
        return badge_count(snap.failed)
    if kind in (Kind.RETRYING, Kind.PAUSED) and snap.pending:
        return badge_count(snap.pending)
    return None


def recent_entry(doc: DocumentSummary) -> MenuEntry:
    """A finished document: ✓ opens its result folder; ✗ failures are marked, explained, and
    open their ``.error.json``."""
    name = truncate(doc.name, 48)
    if doc.state == "failed":
        why = doc.message or doc.error
        text = f"✗ {name}" + (f" — {truncate(why, 40)}" if why else "")
    elif doc.state == "done":
        text = f"✓ {name}"
    else:
        text = f"… {name}"
    target = doc.result_dir or doc.error_file
    if target is not None:
        return MenuEntry(text, ("open_path", Path(target)))
    return MenuEntry(text, None, enabled=False)


def _details(snap: StatusSnapshot) -> list[MenuEntry]:
    """Submenus of what is under way: each document in flight with how far its service
    is (MinerU's pages done of how many), each service's condition, pace and allowances
    (use against limit, when it renews) — the same lines as ``docinbox status`` — and
    the last finished documents."""
    out: list[MenuEntry] = []
    working = []
    for doc in snap.active[:RECENT_MAX]:
        text = truncate(doc.name, 48)
        if doc.progress is not None:
            text += f" — {doc.service}: {progress_text(doc.progress)}"
        elif doc.service:
            text += f" — {doc.state} ({doc.service})"
        else:
            text += f" — {doc.state}"
        working.append(MenuEntry(text, None, enabled=False))
    if working:
        out.append(MenuEntry("In progress", None, children=tuple(working)))
    services = [
        MenuEntry(truncate(line.strip(), 100), None, enabled=False)
        for s in snap.services
        for line in service_lines(s)
    ]
    if services:
        out.append(MenuEntry("Services", None, children=tuple(services)))
    recent = tuple(recent_entry(d) for d in snap.recent[:RECENT_MAX])
    if recent:
        out.append(MenuEntry("Recent documents", None, children=recent))
    return out


def build_menu_model(
    snap: StatusSnapshot,
    status_line: str,
    *,
    log_available: bool = True,
    dashboard: bool = False,
) -> tuple[MenuEntry, ...]:
    """The menu, top to bottom; items that do not apply are left out, not greyed (while
    the daemon starts, pausing and retrying do not apply yet; "Open dashboard" once the
    daemon serves the review desk)."""
    entries: list[MenuEntry] = [
        MenuEntry(status_line, None, enabled=False),
        SEPARATOR,
        MenuEntry("Open inbox", ("open_inbox",), default=True),
        MenuEntry("Open outbox", ("open_outbox",)),
    ]
    if dashboard and not snap.starting:
        entries.append(MenuEntry("Open dashboard", ("open_dashboard",)))
    if snap.starting:
        if log_available:
            entries.append(MenuEntry("Open log", ("open_log",)))
        return (*entries, SEPARATOR, MenuEntry("Quit", ("quit",)))
    entries += _details(snap)
    entries.append(SEPARATOR)
    if snap.paused_until is None:
        entries.append(
            MenuEntry(
                "Pause",
                None,
                children=tuple(
                    MenuEntry(label, ("pause", seconds)) for label, seconds in PAUSE_CHOICES
                ),
            )
        )
    else:
        entries.append(MenuEntry("Resume", ("resume",)))
    if snap.failed:
        entries.append(MenuEntry(f"Retry failed ({snap.failed})", ("retry_failed",)))
    if log_available:
        entries.append(MenuEntry("Open log", ("open_log",)))
    entries += [SEPARATOR, MenuEntry("Quit", ("quit",))]
    return tuple(entries)
