"""The small ``meta`` table: service health, the user's pause, persisted secrets."""

from __future__ import annotations

import json
from typing import Any

from .base import Connection


class Meta(Connection):
    def meta(self, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else default

    def meta_prefixed(self, prefix: str) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM meta WHERE key LIKE ?", (prefix + "%",))
        return {r["key"][len(prefix) :]: json.loads(r["value"]) for r in rows}

    def set_meta(self, key: str, value: Any) -> None:
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value)),
            )

    def delete_meta(self, key: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- reading --------------------------------------------------------------------------
