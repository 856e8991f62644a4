"""The audit log: who did what, when, to what, and how it ended; a capped Redis stream.

Admin actions (cancel, retry, requeue, delete, worker commands, schedule
changes, user-token minting; from the API, the dashboard and the CLI) and
every refused authentication are appended; the stream keeps the newest
``CLAW_AUDIT_MAX_ENTRIES`` (trimmed approximately, which is O(1) per append)
and is read newest first at ``GET /api/v1/audit`` and on the dashboard.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import redis
import redis.asyncio

#: The entry's fields; ``detail`` is a JSON object (short).
FIELDS = ("at", "who", "action", "target", "outcome", "address", "detail")
DEFAULT_MAX_ENTRIES = 100_000
MAX_FIELD_CHARS = 500


def audit_fields(who: str, action: str, *, target: str = "", outcome: str = "", address: str = "",
                 detail: Optional[dict[str, Any]] = None, at: Optional[float] = None) -> dict[str, str]:
    """One entry as the stream stores it (every field a bounded string)."""
    values = {"at": f"{time.time() if at is None else at:.3f}", "who": who, "action": action, "target": target,
              "outcome": outcome, "address": address, "detail": json.dumps(detail or {}, ensure_ascii=False, default=str)}
    return {name: value[:MAX_FIELD_CHARS] for name, value in values.items()}


def is_stream_id(text: str) -> bool:
    """``<ms>-<seq>``, each a 64-bit unsigned number: an id Redis accepts in a range."""
    ms, dash, seq = text.partition("-")
    return bool(dash) and ms.isdigit() and seq.isdigit() and int(ms) < 2**64 and int(seq) < 2**64


def decode_entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": entry_id, **{name: fields.get(name, "") for name in FIELDS}}
    entry["at"] = float(entry["at"] or 0)
    try:
        entry["detail"] = json.loads(entry["detail"] or "{}")
    except ValueError:  # cut at MAX_FIELD_CHARS
        entry["detail"] = {"text": entry["detail"]}
    return entry


class Audit:
    """The audit log: a part of :class:`pipeline.state.store.StateStore` (``redis``, ``keys``, ``audit_max_entries``)."""

    def audit(self, who: str, action: str, **entry: Any) -> str:
        """Append an entry; returns its id."""
        return self.redis.xadd(self.keys.audit, audit_fields(who, action, **entry),
                               maxlen=self.audit_max_entries, approximate=True)

    async def audit_async(self, client: "redis.asyncio.Redis", who: str, action: str, **entry: Any) -> str:
        """:meth:`audit` on an asyncio client (the API's event loop)."""
        return await client.xadd(self.keys.audit, audit_fields(who, action, **entry),
                                 maxlen=self.audit_max_entries, approximate=True)

    def audit_page(self, limit: int = 100, before: Optional[str] = None,
                   action: Optional[str] = None) -> tuple[list[dict[str, Any]], Optional[str]]:
        """Entries newest first (older than the entry id *before*); the id to pass for the next page.

        With *action*, only entries whose action starts with it (read in
        chunks of the page size, so a rare action costs a few round trips).
        """
        found: list[dict[str, Any]] = []
        high = f"({before}" if before else "+"
        while len(found) < limit:
            chunk = self.redis.xrevrange(self.keys.audit, max=high, min="-", count=limit)
            if not chunk:
                return found, None
            for entry_id, fields in chunk:
                if action is None or fields.get("action", "").startswith(action):
                    found.append(decode_entry(entry_id, fields))
                    if len(found) == limit:
                        return found, entry_id
            high = f"({chunk[-1][0]}"
            if len(chunk) < limit:
                return found, None
        return found, found[-1]["id"] if found else None
