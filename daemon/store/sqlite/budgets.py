"""The ``budgets`` table: what each service's quotas count (see daemon/budgets.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .base import Connection


class Budgets(Connection):
    def add_usage(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Add ``used`` to each (service, name) row in one transaction; a row counting an
        earlier period starts again from this use (and forgets that period's "spent").
        Each row: service, name, period, used, allowance, renews_at, detail."""
        now = self.clock.now()
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO budgets (service, name, period, used, allowance, renews_at, "
                "detail, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (service, name) DO UPDATE SET "
                "used = CASE WHEN period = excluded.period THEN used + excluded.used "
                "ELSE excluded.used END, "
                "spent_until = CASE WHEN period = excluded.period THEN spent_until END, "
                "period = excluded.period, allowance = excluded.allowance, "
                "renews_at = excluded.renews_at, detail = excluded.detail, "
                "updated_at = excluded.updated_at",
                [_values(r, now) for r in rows],
            )

    def set_budget_spent(self, row: Mapping[str, Any], until: float | None) -> None:
        """The service said this allowance is used up (until *until*; None: forget it)."""
        self.add_usage([{**row, "used": 0}])
        with self._tx() as conn:
            conn.execute(
                "UPDATE budgets SET spent_until = ?, updated_at = ? WHERE service = ? AND name = ?",
                (until, self.clock.now(), row["service"], row["name"]),
            )

    def clear_budgets_spent(self) -> int:
        """Forget every "used up" the services said (the user acted: ``docinbox retry``)."""
        with self._tx() as conn:
            return conn.execute(
                "UPDATE budgets SET spent_until = NULL WHERE spent_until IS NOT NULL"
            ).rowcount

    def budgets(self) -> list[dict[str, Any]]:
        if not self.has_table("budgets"):  # `docinbox status` before the new daemon ran
            return []
        rows = self._query("SELECT * FROM budgets ORDER BY service, name")
        return [{**dict(r), "detail": json.loads(r["detail"] or "{}")} for r in rows]


def _values(row: Mapping[str, Any], now: float) -> tuple[Any, ...]:
    return (
        row["service"],
        row["name"],
        row["period"],
        float(row["used"]),
        int(row.get("allowance") or 0),
        row.get("renews_at"),
        json.dumps(dict(row.get("detail") or {}), sort_keys=True),
        now,
    )
