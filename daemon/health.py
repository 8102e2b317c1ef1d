"""Each service's health: fine, paused, or unreachable — and when to look again.

- **paused**: bad credentials or a missing model (until the user acts: ``docinbox retry``
  or a restart), or an exhausted quota (until it renews, or an hour when the service
  does not say);
- **unreachable** (shown as ``retrying``): connections refused, DNS, timeouts, a gateway
  saying the service is down.  Its documents wait; a probe looks again after 2, 4, 8,
  16 and then every 30 s, and the first answer resumes the service.

An outage is the service's state, not the document's: it never spends a document's
retry budget.  But a document that keeps meeting such an error while the service
answers others is itself the trouble (an upload that always times out); see
:meth:`Health.documents_fault`.

The records live in the store's ``meta`` table (``service:<name>``), so ``docinbox
status`` in another process shows them and a quota pause survives a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .clock import Clock
from .errors import CredentialsError, DocinboxError, QuotaExceeded, ServiceError, TransientError
from .store import Job, Store

log = logging.getLogger("docinbox")

PREFIX = "service:"
#: An unreachable service is looked at again after 2 s, then 4, 8, 16 and every 30 s: a
#: replugged cable or a restarted parser is noticed within half a minute.
PROBE_FIRST, PROBE_CAP = 2.0, 30.0
#: A quota pause whose renewal time the service did not give is tried again after this.
QUOTA_PROBE = 3600.0
#: The conditions (see daemon.control.ServiceHealth).
PAUSED, RETRYING = "paused", "retrying"


def probe_delay(probes: int) -> float:
    """Seconds before probe number *probes* (1-based)."""
    return float(min(PROBE_CAP, PROBE_FIRST * 2 ** max(0, probes - 1)))


def reason_of(err: DocinboxError) -> str:
    """The message without the service's name in front (the status line names it)."""
    prefix = f"{err.service}: "
    if err.service and err.message.startswith(prefix):
        return err.message[len(prefix) :]
    return err.message


def records(store: Store) -> dict[str, dict[str, Any]]:
    return {name: h for name, h in store.meta_prefixed(PREFIX).items() if isinstance(h, dict)}


def paused_for_settings(store: Store) -> dict[str, str]:
    """Services paused for something only the user can fix (a key, a model id): name →
    why.  A retry alone does not help them while the daemon runs on the old settings."""
    return {
        name: str(h.get("reason") or h.get("error"))
        for name, h in records(store).items()
        if h.get("condition") == PAUSED and h.get("until") is None
    }


def clear(store: Store, *, only_user_fixable: bool = False) -> None:
    """Forget pauses: all of them (the user said retry: a "used up" a service said of a
    budget too), or those only the user can end (a restart is such an act; a quota's
    renewal time stays)."""
    if not only_user_fixable:
        store.clear_budgets_spent()
    for name, h in records(store).items():
        if not only_user_fixable or (h.get("condition") == PAUSED and h.get("until") is None):
            store.delete_meta(PREFIX + name)


class Health:
    """The daemon's view of its services' health; the loop owns it."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        #: When each service last answered, and when each job last found its service
        #: unreachable (see documents_fault).
        self._answered_at: dict[str, float] = {}
        self._unreachable_at: dict[int, float] = {}

    def blocked(self) -> dict[str, dict[str, Any]]:
        """Services not to send to now: paused until a time or a user action, or
        unreachable (until a probe finds them back, whatever the time)."""
        now = self.clock.now()
        return {
            name: h
            for name, h in records(self.store).items()
            if h.get("until") is None or float(h["until"]) > now or h.get("condition") == RETRYING
        }

    def answered(self, service: str, job_id: int | None = None) -> None:
        self._answered_at[service] = self.clock.now()
        if job_id is not None:
            self._unreachable_at.pop(job_id, None)

    def documents_fault(self, job: Job, err: DocinboxError) -> bool:
        """A service-wide transient error is the document's only when the service answered
        since this document last met one: then the service is up and this document is
        what keeps failing, so it spends its own retry budget instead of pausing
        everyone, forever."""
        if not (err.retryable and isinstance(err, TransientError)):
            return False
        previous = self._unreachable_at.get(job.id)
        self._unreachable_at[job.id] = self.clock.now()
        answered = self._answered_at.get(job.service or "")
        return previous is not None and answered is not None and answered > previous

    def pause(self, name: str, err: DocinboxError, *, credential: str | None = None) -> None:
        """Hold *name* back; *credential* says where its key came from, so a rejected key's
        pause names the variable and the file to fix."""
        now = self.clock.now()
        if err.retryable and isinstance(err, TransientError):
            current = self.store.meta(PREFIX + name)
            if isinstance(current, dict) and current.get("condition") == RETRYING:
                return  # probes lengthen the wait; the documents that met the outage don't
            wait = probe_delay(1)
            self._set(name, RETRYING, err, until=now + wait, probes=0)
            log.warning(
                "%s cannot be reached (%s); its documents wait, and docinbox tries again in %.0f s",
                name,
                reason_of(err),
                wait,
            )
            return
        retry_after = err.retry_after if isinstance(err, ServiceError) else None
        if retry_after is None and isinstance(err, QuotaExceeded):
            retry_after = QUOTA_PROBE  # the renewal time is unknown: look again later
        reason = err.message
        if isinstance(err, CredentialsError) and credential:
            reason = f"{err.message}; the key is {credential}"
        self._set(
            name, PAUSED, err, until=now + retry_after if retry_after else None, reason=reason
        )
        log.error("%s paused: %s. %s", name, reason, err.hint)

    def due_probes(self) -> dict[str, int]:
        """Unreachable services whose next look is due: name → probes so far."""
        now = self.clock.now()
        return {
            name: int(h.get("probes") or 0)
            for name, h in records(self.store).items()
            if h.get("condition") == RETRYING and float(h.get("until") or 0) <= now
        }

    def next_probe(self) -> float | None:
        times = [
            float(h.get("until") or 0)
            for h in records(self.store).values()
            if h.get("condition") == RETRYING
        ]
        return min(times) if times else None

    def still_unreachable(self, name: str, probes: int, err: DocinboxError) -> None:
        wait = probe_delay(probes + 1)
        self._set(name, RETRYING, err, until=self.clock.now() + wait, probes=probes)
        log.info("%s still cannot be reached (%s); next try in %.0f s", name, reason_of(err), wait)

    def resumed(self, name: str) -> None:
        self.answered(name)
        self.store.delete_meta(PREFIX + name)
        log.info("%s answers again; its documents go on", name)

    def _set(
        self,
        name: str,
        condition: str,
        err: DocinboxError,
        *,
        until: float | None,
        probes: int | None = None,
        reason: str | None = None,
    ) -> None:
        record: Mapping[str, Any] = {
            "condition": condition,
            "error": err.code,
            "reason": reason or (reason_of(err) if condition == RETRYING else err.message),
            "hint": err.hint,
            "until": until,
            **({"probes": probes} if probes is not None else {}),
        }
        self.store.set_meta(PREFIX + name, dict(record))
