"""The in-app inbox ("system" channel), kept in Redis per user.

Keys (all under ``<namespace>:notify:inbox:<user_id>:``):

* ``items``  — hash id -> JSON item (title, body, data, created_at)
* ``unread`` — sorted set id -> created time (ms)
* ``read``   — sorted set id -> created time (ms)
* ``readat`` — hash id -> ISO time it was marked read

Listing is unread first (newest first), then read (newest first), paged by
offset/limit. Adding is idempotent per item id (the delivery token), in one Lua
script: a redelivered notification finds its item and adds nothing, so this
channel has no duplicate window at all. Each inbox keeps at most
``notify_inbox_max_items`` (the oldest read items go first, then the oldest
unread) and expires ``notify_inbox_ttl_seconds`` after its last new item.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Optional

import redis as redis_lib

from pipeline.errors import TransientError
from pipeline.notifications.channels.base import log, now_iso, receipt, register
from pipeline.notifications.config import NotificationSettings
from pipeline.notifications.registry import USER_ID_RE
from pipeline.state.keys import Keys

_ADD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local excess = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[4])
local k = 3
while excess > 0 and k >= 2 do
  local old = redis.call('ZRANGE', KEYS[k], 0, excess - 1)
  for _, id in ipairs(old) do
    redis.call('ZREM', KEYS[k], id)
    redis.call('HDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[4], id)
  end
  excess = excess - #old
  k = k - 1
end
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
return 1
"""

_LIST = """
local off = tonumber(ARGV[1])
local lim = tonumber(ARGV[2])
local nu = redis.call('ZCARD', KEYS[2])
local nr = redis.call('ZCARD', KEYS[3])
local unread_ids = {}
local read_ids = {}
if off < nu then
  unread_ids = redis.call('ZREVRANGE', KEYS[2], off, off + lim - 1)
end
if ARGV[3] ~= '1' and #unread_ids < lim then
  local roff = off - nu
  if roff < 0 then roff = 0 end
  read_ids = redis.call('ZREVRANGE', KEYS[3], roff, roff + (lim - #unread_ids) - 1)
end
local items = {}
local readat = {}
local ids = {}
for _, id in ipairs(unread_ids) do ids[#ids + 1] = id end
for _, id in ipairs(read_ids) do ids[#ids + 1] = id end
if #ids > 0 then items = redis.call('HMGET', KEYS[1], unpack(ids)) end
if #read_ids > 0 then readat = redis.call('HMGET', KEYS[4], unpack(read_ids)) end
return {nu, nr, unread_ids, read_ids, items, readat}
"""

_MARK = """
local ids
if ARGV[2] == '1' then
  ids = redis.call('ZRANGE', KEYS[2], 0, -1)
else
  ids = {}
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local n = 0
for _, id in ipairs(ids) do
  local score = redis.call('ZSCORE', KEYS[2], id)
  if score then
    redis.call('ZREM', KEYS[2], id)
    redis.call('ZADD', KEYS[3], score, id)
    redis.call('HSET', KEYS[4], id, ARGV[1])
    n = n + 1
  end
end
return {n, redis.call('ZCARD', KEYS[2])}
"""

MAX_PAGE = 100


class Inbox:
    """A user's in-app notifications. Takes an explicit Redis client (decode_responses=True) and namespace."""

    def __init__(self, redis: redis_lib.Redis, namespace: str, *, max_items: int = 500, ttl_seconds: int = 90 * 86400):
        self.redis = redis
        self.namespace = namespace
        self.max_items = max_items
        self.ttl_seconds = ttl_seconds
        self._add = redis.register_script(_ADD)
        self._list = redis.register_script(_LIST)
        self._mark = redis.register_script(_MARK)

    @classmethod
    def from_settings(cls, redis: redis_lib.Redis, namespace: str, settings: NotificationSettings) -> "Inbox":
        return cls(redis, namespace, max_items=settings.notify_inbox_max_items, ttl_seconds=settings.notify_inbox_ttl_seconds)

    def keys(self, user_id: str) -> list[str]:
        if not USER_ID_RE.match(user_id or ""):
            raise ValueError("user_id must be letters, digits, _ . @ : - (at most 128 characters)")
        return Keys(self.namespace).inbox(user_id)

    def add(self, user_id: str, item_id: str, *, title: str = "", body: str, data: Optional[dict] = None) -> tuple[dict, bool]:
        """Store an item unless one with ``item_id`` exists; returns (item, created)."""
        created_ms = int(time.time() * 1000)
        # The item names its owner: the inbox it is in is the only one it is shown from.
        item = {"id": item_id, "user_id": user_id, "title": title, "body": body, "data": data or {}, "created_at": now_iso()}
        created = self._add(
            keys=self.keys(user_id),
            args=[item_id, json.dumps(item, ensure_ascii=False), created_ms, self.max_items, self.ttl_seconds],
        )
        return item, bool(created)

    def list(self, user_id: str, *, offset: int = 0, limit: int = 20, unread_only: bool = False) -> dict:
        """One page: unread newest first, then read newest first."""
        offset = max(0, int(offset))
        limit = max(1, min(MAX_PAGE, int(limit)))
        nu, nr, unread_ids, read_ids, raw, readat = self._list(
            keys=self.keys(user_id), args=[offset, limit, "1" if unread_only else "0"]
        )
        read_when = dict(zip(read_ids, readat))
        items = []
        for item_id, text in zip(list(unread_ids) + list(read_ids), raw):
            if text is None:  # removed between calls; cannot happen inside the script, kept for safety
                continue
            item = json.loads(text)
            item["read"] = item_id in read_when
            item["read_at"] = read_when.get(item_id)
            items.append(item)
        total = nu if unread_only else nu + nr
        next_offset = offset + limit if offset + limit < total else None
        return {"items": items, "unread": nu, "total": total, "offset": offset, "limit": limit, "next_offset": next_offset}

    def mark_read(self, user_id: str, ids: Optional[Iterable[str]] = None, *, all: bool = False) -> dict:
        """Mark some items (or all) read; returns how many changed and how many stay unread."""
        if not all and ids is None:
            raise ValueError("give ids or all=True")
        ids = [] if all else [str(i) for i in ids]  # type: ignore[union-attr]
        marked, unread = self._mark(keys=self.keys(user_id), args=[now_iso(), "1" if all else "0", *ids])
        return {"marked": int(marked), "unread": int(unread)}

    def unread_count(self, user_id: str) -> int:
        return int(self.redis.zcard(self.keys(user_id)[1]))

    def delete(self, user_id: str) -> None:
        self.redis.delete(*self.keys(user_id))


@register
class InboxSystem:
    channel = "system"
    provider = "inbox"

    def __init__(self, settings: NotificationSettings, *, redis: redis_lib.Redis, namespace: str, **_: Any):
        self.settings = settings
        self.inbox = Inbox.from_settings(redis, namespace, settings)

    def send(self, notification: Any, dedup_key: str) -> dict:
        try:
            item, created = self.inbox.add(
                notification.recipient, dedup_key, title=notification.subject, body=notification.body, data=notification.data
            )
        except redis_lib.RedisError as exc:
            raise TransientError(f"system/inbox: Redis failed: {type(exc).__name__}") from None
        log.info("inbox item %s for user=%s (%s)", dedup_key, notification.recipient, "new" if created else "exists")
        return receipt(self.channel, self.provider, notification.recipient, dedup_key, [], inbox_id=item["id"], created=created)
