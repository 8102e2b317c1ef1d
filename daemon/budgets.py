"""What each service's quotas count, kept in the store: MinerU's files and priority pages
a day, Nanonets' prediction calls a month, docparse's page balance (each service declares
its own: ``Service.budgets``, with limits from its settings).

A document a service accepted adds its use (``Service.usage``); the counts are written
at most once a second (a crash loses at most that second's counts — they are docinbox's
estimate of the service's own counter anyway).  A quota error (402, -60018, docparse's
-60017) marks the allowance it names used up until it renews, whatever the count says.

When an allowance is used up, the service's ``when_exhausted`` decides:

- ``wait`` (the default, except for MinerU and docparse): nothing more is sent to that
  service until it renews (polls go on: those documents are paid for);
- ``next_route``: documents take the next route that accepts them — the queued ones too;
  a document no other route takes waits;
- ``low_priority`` (MinerU's and docparse's default): a *soft* allowance (their priority
  pages: past them the queue is only slower) is passed; a hard one waits, as the service
  would refuse.

``docinbox status`` and the tray read the table (:func:`rows`) from any process.
"""

from __future__ import annotations

import datetime
import logging
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .clock import Clock
from .errors import DocinboxError, ServiceError
from .services import Service
from .services.base import Budget
from .store import Store

log = logging.getLogger("docinbox")

#: Counts go to the store at most this often.
FLUSH_EVERY = 1.0
#: A "used up" whose renewal is unknown (a balance) is looked at again after this.
RECHECK = 3600.0


def period_of(kind: str, now: float) -> tuple[str, float | None]:
    """(the period *now* falls in, when it ends) for a budget's ``period``."""
    if kind.startswith("day"):
        hours = int(kind[3:] or 0)
        zone = datetime.timezone(datetime.timedelta(hours=hours))
        local = datetime.datetime.fromtimestamp(now, zone)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        return local.strftime("%Y-%m-%d"), (start + datetime.timedelta(days=1)).timestamp()
    if kind == "month":
        utc = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        first = utc.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (first + datetime.timedelta(days=32)).replace(day=1)
        return utc.strftime("%Y-%m"), following.timestamp()
    return "balance", None


@dataclass
class Count:
    """One allowance now: its declaration, its period, what is used, and whether the
    service said it is used up (until when)."""

    service: str
    budget: Budget
    period: str
    renews_at: float | None
    used: float = 0.0
    spent_until: float | None = None

    def out(self, now: float) -> bool:
        """Used up: the service said so, or the count reached a known limit of an
        allowance that renews (a balance's limit is shown, the service's word decides)."""
        if self.spent_until is not None and self.spent_until > now:
            return True
        limit = self.budget.limit
        return bool(limit) and self.renews_at is not None and self.used >= limit

    def until(self, now: float) -> float:
        """When it renews (or the service's "used up" ends; a balance: looked at again)."""
        if self.spent_until is not None and self.spent_until > now:
            return self.spent_until
        return self.renews_at if self.renews_at is not None else now + RECHECK


class Budgets:
    """The daemon's counts; the scheduler and the outcomes share one (:func:`shared`)."""

    def __init__(self, store: Store, services: Mapping[str, Service], clock: Clock) -> None:
        self.store = store
        self.services = services
        self.clock = clock
        self._counts: dict[tuple[str, str], Count] = {}
        self._pending: dict[tuple[str, str], float] = {}
        self._flushed = -math.inf
        self._announced: set[tuple[str, str, str]] = set()
        self._fresh: set[str] = set()
        self._load()

    def _load(self) -> None:
        now = self.clock.now()
        stored = {(r["service"], r["name"]): r for r in self.store.budgets()}
        for name, service in self.services.items():
            for budget in service.budgets():
                period, renews = period_of(budget.period, now)
                count = Count(name, budget, period, renews)
                row = stored.get((name, budget.name))
                if row is not None and row["period"] == period:
                    count.used, count.spent_until = float(row["used"]), row["spent_until"]
                self._counts[(name, budget.name)] = count

    def _count(self, service: str, name: str) -> Count | None:
        """The count for the current period (a new period starts it again)."""
        count = self._counts.get((service, name))
        if count is None:
            return None
        now = self.clock.now()
        if count.renews_at is None or now < count.renews_at:
            return count
        period, renews = period_of(count.budget.period, now)
        if period != count.period:
            count.period, count.renews_at, count.used, count.spent_until = period, renews, 0, None
        return count

    # --- what happened ----------------------------------------------------------------------

    def spend(self, service: str, kind: str | None, pages: int | None) -> None:
        """A document *service* accepted: its use, counted (written at the next flush)."""
        svc = self.services.get(service)
        if svc is None:
            return
        for name, amount in svc.usage(kind or "", pages).items():
            count = self._count(service, name)
            if count is not None and amount:
                count.used += amount
                self._pending[(service, name)] = self._pending.get((service, name), 0) + amount

    def said_spent(self, service: str, err: DocinboxError) -> str | None:
        """A quota error: the allowance it names is used up until it renews (or until the
        service's Retry-After).  Returns that allowance's name, if any."""
        svc = self.services.get(service)
        name = svc.spent(err) if svc is not None else None
        count = self._count(service, name) if name else None
        if count is None or name is None:
            return None
        now = self.clock.now()
        asked = err.retry_after if isinstance(err, ServiceError) else None
        count.spent_until = now + asked if asked else count.until(now + 1)
        self.store.set_budget_spent(self._row(count, 0), count.spent_until)
        return name

    def flush(self, *, force: bool = False) -> None:
        now = self.clock.monotonic()
        if not self._pending or (not force and now - self._flushed < FLUSH_EVERY):
            return
        rows = [self._row(self._counts[key], used) for key, used in self._pending.items()]
        self._pending.clear()
        self._flushed = now
        self.store.add_usage(rows)

    def _row(self, count: Count, used: float) -> dict[str, Any]:
        b = count.budget
        return {
            "service": count.service,
            "name": b.name,
            "period": count.period,
            "used": used,
            "allowance": b.limit,
            "renews_at": count.renews_at,
            "detail": {
                "label": b.label or b.name,
                "unit": b.unit,
                "soft": b.soft,
                "every": b.period,
                "policy": self.services[count.service].when_exhausted,
            },
        }

    # --- what the scheduler and the router ask ------------------------------------------------

    def _recheck(self) -> None:
        """A "used up" the service said may have been forgotten by ``docinbox retry`` (in
        another process, or the tray's): while one holds, the store is asked again (a
        handful of rows)."""
        stored = {(r["service"], r["name"]): r["spent_until"] for r in self.store.budgets()}
        for key, count in self._counts.items():
            if count.spent_until is not None:
                count.spent_until = stored.get(key)

    def closed(self, service: str) -> float | None:
        """Until when nothing new goes to *service* (None: it takes documents)."""
        svc = self.services.get(service)
        if svc is None:
            return None
        if any(c.spent_until is not None for c in self._counts.values()):
            self._recheck()
        now, until = self.clock.now(), None
        for budget in svc.budgets():
            count = self._count(service, budget.name)
            if count is None or not count.out(now):
                continue
            if budget.soft and svc.when_exhausted == "low_priority":
                continue
            self._announce(count, now)
            until = max(until or 0.0, count.until(now))
        return until

    def room(self, service: str) -> int | None:
        """How many more documents *service* may be sent in this period (one file or call
        each), or None when no such allowance limits it."""
        rooms = [
            int(count.budget.limit - count.used)
            for (name, _), count in self._counts.items()
            if name == service and count.budget.unit in ("files", "calls") and count.budget.limit
        ]
        return max(0, min(rooms)) if rooms else None

    def avoided(self) -> set[str]:
        """Services whose documents take the next route now (``next_route``, used up)."""
        return {
            name
            for name, svc in self.services.items()
            if svc.when_exhausted == "next_route" and self.closed(name) is not None
        }

    def newly_closed(self) -> set[str]:
        """Services that ran out since the last call and send their documents elsewhere
        (their queued documents are routed again)."""
        fresh, self._fresh = self._fresh, set()
        return fresh

    def _announce(self, count: Count, now: float) -> None:
        key = (count.service, count.budget.name, count.period)
        if key in self._announced:
            return
        self._announced.add(key)
        svc = self.services[count.service]
        policy = svc.when_exhausted
        what = (
            "documents go to the next route" if policy == "next_route" else "nothing more is sent"
        )
        when = datetime.datetime.fromtimestamp(count.until(now)).strftime("%Y-%m-%d %H:%M")
        limit = f" of {count.budget.limit:,}" if count.budget.limit else ""
        log.info(
            "%s: %s%s %s used (%s); %s until %s",
            count.service,
            f"{count.used:,.0f}",
            limit,
            count.budget.label or count.budget.name,
            "the service says so" if count.spent_until else "docinbox's count",
            what,
            when,
        )
        if policy == "next_route":
            self._fresh.add(count.service)


_SHARED: weakref.WeakKeyDictionary[Any, Budgets] = weakref.WeakKeyDictionary()


def shared(store: Store, services: Mapping[str, Service], clock: Clock) -> Budgets:
    """The one :class:`Budgets` of the daemon running on *store* (the scheduler, the
    outcomes and the router all count in it)."""
    budgets = _SHARED.get(store)
    if budgets is None or budgets.services is not services:
        budgets = _SHARED[store] = Budgets(store, services, clock)
    return budgets


def rows(store: Store, now: float) -> list[dict[str, Any]]:
    """Every allowance's use for the status, from any process (a period that ended since
    the row was written shows the new period's zero)."""
    out = []
    for row in store.budgets():
        detail = row["detail"]
        used, spent, renews = float(row["used"]), row["spent_until"], row["renews_at"]
        if renews is not None and now >= float(renews):
            used, spent = 0.0, None
            renews = period_of(str(detail.get("every", "")), now)[1]
        out.append(
            {
                "service": row["service"],
                "name": row["name"],
                "label": detail.get("label", row["name"]),
                "unit": detail.get("unit", ""),
                "used": used,
                "limit": int(row["allowance"] or 0) or None,
                "renews_at": renews,
                "spent_until": spent if spent is not None and float(spent) > now else None,
                "soft": bool(detail.get("soft")),
                "policy": detail.get("policy", "wait"),
            }
        )
    return out
