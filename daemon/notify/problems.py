"""What the user has to fix, read from a status snapshot: shared by the tray (its error
state) and the notifications (announced once each)."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.control import StatusSnapshot

#: Windows truncates a tray tooltip at 127 characters (plus NUL); keep under it everywhere.
TOOLTIP_MAX = 127
#: A service held for an exhausted quota (errors.QuotaExceeded.code): its own title.
BUDGET_ERROR = "quota"


@dataclass(frozen=True)
class Problem:
    """A credentials/quota/configuration problem worth one notification."""

    key: str  # stable identity: the same problem keeps the same key
    message: str
    #: "paused" (a key, a model: the user must act), "budget" (a quota used up: it
    #: renews), or "problem" (configuration, start-up).
    kind: str = "problem"


def truncate(text: str, limit: int = TOOLTIP_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def problems_of(snap: StatusSnapshot) -> tuple[Problem, ...]:
    """Problems the user has to fix: a start-up/config problem or a held service.

    A service in condition ``paused`` is held back by the daemon (bad credentials,
    exhausted quota) and will not recover by itself, unlike ``retrying``.
    """
    found: list[Problem] = []
    if snap.problem:
        found.append(Problem(key=f"problem:{snap.problem}", message=snap.problem))
    for svc in snap.services:
        if svc.condition == "paused":
            why = svc.reason or svc.error or "needs attention"
            found.append(
                Problem(
                    key=f"{svc.name}:{svc.error or svc.reason}",
                    message=f"{svc.name}: {why}",
                    kind="budget" if svc.error == BUDGET_ERROR else "paused",
                )
            )
    return tuple(found)
