"""Reading task records: lookups, pages, counts, runtimes and throughput.

Every request-path read here is O(1) or O(page) in Redis round trips,
whatever the number of stored tasks: counts are ZCARDs of the indexes, lists
are ZREVRANGEBYSCORE pages, lookups are pipelined HGETALLs.

With several shards (:mod:`pipeline.state.keys`) a count is the sum of the
shards' ZCARDs and a page merges the shards' pages by (score, id), in one
pipelined round trip either way: the order (and so the cursor) is the one a
single index would give.
"""

from __future__ import annotations

import base64
import heapq
import json
import time
from typing import Any, Iterable, Optional

import redis
import redis.asyncio

from pipeline.state.keys import FINAL_STATES, STATES
from pipeline.state.lua import script

#: Record fields holding JSON documents (decoded on read).
JSON_FIELDS = ("args", "kwargs", "error", "result", "progress", "options")
INT_FIELDS = ("priority", "attempts", "max_retries", "runtime_ms", "wf_index")
FLOAT_FIELDS = ("enqueued_at", "started_at", "finished_at", "eta", "cancel_requested")
#: Fields kept for the engine's own use and never shown.
PRIVATE_FIELDS = ("payload", "score", "unpublished", "delivery", "seq", "history")

# Finished counts per final state over the last minute (6 buckets of 10 s) and
# hour (360), summed in Redis: one reply instead of 360.
# ARGV: P, current_bucket
THROUGHPUT = script(r"""
local current = tonumber(ARGV[2])
local states = {""" + ", ".join(f"'{state}'" for state in FINAL_STATES) + r"""}
local minute, hour = {}, {}
for i = 1, #states do minute[i], hour[i] = 0, 0 end
for age = 0, 359 do
  local values = redis.call('HMGET', throughput_key(current - age), unpack(states))
  for i = 1, #states do
    local n = tonumber(values[i] or '0') or 0
    hour[i] = hour[i] + n
    if age < 6 then minute[i] = minute[i] + n end
  end
end
return {minute, hour}
""")

# p50 / p95 / sample count of each actor's last 500 runtimes (ms), sorted in Redis (one shard).
# ARGV: P, actor, actor, ...
RUNTIMES = script(r"""
local out = {}
for i = 2, #ARGV do
  local samples = redis.call('LRANGE', runtimes_key(ARGV[i]), 0, 499)
  local n = #samples
  if n == 0 then
    out[#out + 1] = {'', '', 0}
  else
    for j = 1, n do samples[j] = tonumber(samples[j]) end
    table.sort(samples)
    local function at(q) return samples[math.min(n, math.floor(q * (n - 1) + 0.5) + 1)] end
    out[#out + 1] = {tostring(at(0.5)), tostring(at(0.95)), n}
  end
end
return out
""")


# ZCARD of each name of one shard (ARGV: the names), for counts over many shards: one call per
# shard instead of one command per index and shard. KEYS: a name of the shard (names its slot).
ZCARDS = r"""
local out = {}
for i = 1, #ARGV do out[i] = redis.call('ZCARD', ARGV[i]) end
return out
"""


class RecordQueries:
    """Reading records: a part of :class:`pipeline.state.store.StateStore`."""

    def _register_query_scripts(self) -> None:
        self._throughput = self._register(THROUGHPUT)
        self._runtimes = self._register(RUNTIMES)
        self._zcards = self._register(ZCARDS)

    def ping(self) -> float:
        """Seconds Redis took to answer a PING (raises when it does not answer)."""
        started = time.perf_counter()
        self.redis.ping()
        return time.perf_counter() - started

    def get(self, task_id: str) -> Optional[dict]:
        return decode_record(self.redis.hgetall(self.keys.task(task_id)))

    async def get_async(self, client: "redis.asyncio.Redis", task_id: str) -> Optional[dict]:
        """:meth:`get` on an asyncio client (the API's event loop: the hottest lookup without a thread hop)."""
        return decode_record(await client.hgetall(self.keys.task(task_id)))

    def get_with_history(self, task_id: str) -> tuple[Optional[dict], list[dict]]:
        """The record and its numbered state changes (``{"type": "state", "state", "at", "seq"}``, oldest first)."""
        raw = self.redis.hgetall(self.keys.task(task_id))
        return decode_record(raw), state_history(raw.get("history"))

    def get_many(self, task_ids: list[str]) -> list[Optional[dict]]:
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hgetall(self.keys.task(task_id))
            return [decode_record(raw) for raw in pipe.execute()]

    def payload(self, task_id: str) -> Optional[dict]:
        """The task's arguments as submitted (the record shows them redacted)."""
        payload, args, kwargs = self.redis.hmget(self.keys.task(task_id), "payload", "args", "kwargs")
        if payload:
            return json.loads(payload)
        if args is None and kwargs is None:
            return None
        return {"args": json.loads(args or "[]"), "kwargs": json.loads(kwargs or "{}")}

    def unpublished_since(self, task_id: str) -> Optional[float]:
        value = self.redis.hget(self.keys.task(task_id), "unpublished")
        return float(value) if value else None

    def list(
        self,
        *,
        state: Optional[str] = None,
        actor: Optional[str] = None,
        queue: Optional[str] = None,
        since: Optional[float] = None,
        until: Optional[float] = None,
        limit: int = 50,
        cursor: Optional[str] = None,
        user_id: Optional[str] = None,
    ) -> tuple[list[dict], Optional[str]]:
        """One page of tasks, newest first, and the cursor of the next page.

        The cursor is (score, ties): the last score seen and how many entries
        with that score were already returned, so equal timestamps never make
        a page repeat or skip a task. With *user_id*, the page comes from that
        user's own index (by state, if given): O(page) however many tasks others
        have; an actor or queue filter then applies to that page.
        """
        if user_id is not None:
            def key(keys):
                return keys.index_owner_state(user_id, state) if state else keys.index_owner(user_id)
        else:
            def key(keys):
                return keys.index(state=state, actor=actor, queue=None if actor else queue)
        high = f"{int(until * 1_000_000)}" if until is not None else "+inf"
        low = f"{int(since * 1_000_000)}" if since is not None else "-inf"
        offset = 0
        if cursor:
            cursor_score, offset = decode_cursor(cursor)
            high = str(cursor_score)
        entries = self._page(key, high, low, offset, limit)
        records = [r for r in self.get_many([task_id for task_id, _ in entries]) if r is not None]
        if user_id is not None and (actor or queue):
            records = [r for r in records if r["actor"] == (actor or r["actor"]) and r["queue"] == (queue or r["queue"])]
        elif actor and queue:
            records = [r for r in records if r["queue"] == queue]
        if len(entries) < limit:
            return records, None
        last = int(entries[-1][1])
        ties = sum(1 for _, score in entries if int(score) == last)
        if cursor and last == cursor_score:
            ties += offset
        return records, encode_cursor(last, ties)

    def _page(self, key, high: str, low: str, offset: int, limit: int) -> list[tuple[str, float]]:
        """Entries *offset*..*offset*+*limit* of the index *key* (a function of a shard's Keys) between
        *high* and *low*, newest first: with several shards, each shard's first offset+limit, merged
        in the order one sorted set would give (score, then id, descending)."""
        shards = self.keys.all_shards()
        if len(shards) == 1:
            return self.redis.zrevrangebyscore(key(shards[0]), high, low, start=offset, num=limit, withscores=True)
        with self.redis.pipeline(transaction=False) as pipe:
            for keys in shards:
                pipe.zrevrangebyscore(key(keys), high, low, start=0, num=offset + limit, withscores=True)
            pages = pipe.execute()
        merged = heapq.merge(*pages, key=lambda entry: (entry[1], entry[0]), reverse=True)
        return list(merged)[offset:offset + limit]

    def _sum_over_shards(self, names: list) -> list[int]:
        """ZCARD of each name (functions of a shard's Keys), summed over the shards, in one round trip."""
        shards = self.keys.all_shards()
        with self.redis.pipeline(transaction=False) as pipe:
            if len(shards) == 1:
                for name in names:
                    pipe.zcard(name(shards[0]))
                return pipe.execute()
            for keys in shards:
                self._zcards(keys=[keys.expiry], args=[name(keys) for name in names], client=pipe)
            per_shard = pipe.execute()
        return [sum(counts[i] for counts in per_shard) for i in range(len(names))]

    def count_by_state(self, actors: Iterable[str], queues: Iterable[str]) -> dict[str, Any]:
        """Task counts per state, per actor and state, and per queue and state."""
        actors, queues = list(actors), list(queues)
        names = [lambda keys, state=state: keys.index_state(state) for state in STATES]
        for actor in actors:
            names += [lambda keys, state=state, actor=actor: keys.index_state_actor(state, actor) for state in STATES]
        for queue in queues:
            names += [lambda keys, state=state, queue=queue: keys.index_state_queue(state, queue) for state in STATES]
        counts = iter(self._sum_over_shards(names))
        per_state = {state: next(counts) for state in STATES}
        per_actor = {actor: {state: next(counts) for state in STATES} for actor in actors}
        per_queue = {queue: {state: next(counts) for state in STATES} for queue in queues}
        return {"states": per_state, "actors": per_actor, "queues": per_queue}

    def count_for_owner(self, user_id: str) -> dict[str, int]:
        """One user's task counts per state (ZCARDs of the user's indexes)."""
        names = [lambda keys, state=state: keys.index_owner_state(user_id, state) for state in STATES]
        return dict(zip(STATES, self._sum_over_shards(names)))

    def runtimes(self, actors: Iterable[str]) -> dict[str, dict[str, Optional[float]]]:
        """p50/p95 runtime (ms) per actor over its last 500 finished tasks (sorted in Redis)."""
        actors = list(actors)
        if not actors:
            return {}
        shards = self.keys.all_shards()
        if len(shards) > 1:
            return self._runtimes_over_shards(actors, shards)
        rows = self._runtimes(args=[shards[0].prefix, *actors])
        return {
            actor: {"p50": float(p50) if p50 else None, "p95": float(p95) if p95 else None, "samples": int(n)}
            for actor, (p50, p95, n) in zip(actors, rows)
        }

    def _runtimes_over_shards(self, actors: list[str], shards) -> dict[str, dict[str, Optional[float]]]:
        """:meth:`runtimes` over several shards: each shard's latest share of the 500 samples, sorted here."""
        share = -(-500 // len(shards))
        with self.redis.pipeline(transaction=False) as pipe:
            for actor in actors:
                for keys in shards:
                    pipe.lrange(keys.runtimes(actor), 0, share - 1)
            replies = pipe.execute()
        out = {}
        for i, actor in enumerate(actors):
            samples = sorted(float(v) for reply in replies[i * len(shards):(i + 1) * len(shards)] for v in reply)
            n = len(samples)

            def at(q: float) -> float:
                return samples[min(n - 1, int(q * (n - 1) + 0.5))]

            out[actor] = {"p50": at(0.5) if n else None, "p95": at(0.95) if n else None, "samples": n}
        return out

    def throughput(self, now: Optional[float] = None) -> dict[str, dict[str, int]]:
        """Finished tasks per final state over the last minute and the last hour (10 s buckets)."""
        current = int((time.time() if now is None else now) // 10)
        minute, hour = [0] * len(FINAL_STATES), [0] * len(FINAL_STATES)
        with self.redis.pipeline(transaction=False) as pipe:
            for keys in self.keys.all_shards():
                # The bucket names the shard (its slot) for a cluster client.
                self._throughput(keys=[keys.throughput(current)], args=[keys.prefix, current], client=pipe)
            for shard_minute, shard_hour in pipe.execute():
                minute = [a + int(b) for a, b in zip(minute, shard_minute)]
                hour = [a + int(b) for a, b in zip(hour, shard_hour)]
        return {"last_minute": dict(zip(FINAL_STATES, minute)), "last_hour": dict(zip(FINAL_STATES, hour))}

    def throughput_series(self, minutes: int = 60, now: Optional[float] = None) -> list[dict[str, Any]]:
        """Per-minute finished counts for charts (oldest first)."""
        current = int((time.time() if now is None else now) // 10)
        first = current - minutes * 6 + 1
        shards = self.keys.all_shards()
        with self.redis.pipeline(transaction=False) as pipe:
            for bucket in range(first, current + 1):
                for keys in shards:
                    pipe.hmget(keys.throughput(bucket), FINAL_STATES)
            buckets = pipe.execute()
        series = []
        for minute in range(minutes):
            chunk = buckets[minute * 6 * len(shards) : (minute * 6 + 6) * len(shards)]
            point = {"t": (first + minute * 6) * 10}
            for i, state in enumerate(FINAL_STATES):
                point[state] = sum(int(values[i] or 0) for values in chunk)
            series.append(point)
        return series

    # -- for the health check (a maintenance job, not a request path) ---------------------

    def oldest_pending(self, queues: list[str], lookahead: int) -> dict[str, tuple[int, list[tuple[str, float]]]]:
        """Per queue: how many tasks are PENDING, and the *lookahead* oldest (id, score in µs)."""
        shards = self.keys.all_shards()
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in queues:
                for keys in shards:
                    pipe.zcard(keys.index_state_queue("PENDING", queue))
                    pipe.zrange(keys.index_state_queue("PENDING", queue), 0, lookahead - 1, withscores=True)
            replies = pipe.execute()
        out = {}
        for i, queue in enumerate(queues):
            mine = replies[i * 2 * len(shards):(i + 1) * 2 * len(shards)]
            oldest = list(heapq.merge(*mine[1::2], key=lambda entry: (entry[1], entry[0])))[:lookahead]
            out[queue] = (sum(mine[0::2]), oldest)
        return out

    def etas(self, task_ids: list[str]) -> list[Optional[float]]:
        """Each task's eta (None where it has none)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in task_ids:
                pipe.hget(self.keys.task(task_id), "eta")
            return [float(eta) if eta else None for eta in pipe.execute()]

    def finished_since(self, actors: list[str], since: float) -> dict[str, tuple[int, int]]:
        """Per actor: (FAILURE, SUCCESS) counts of tasks enqueued since *since*."""
        low = int(since * 1_000_000)
        shards = self.keys.all_shards()
        with self.redis.pipeline(transaction=False) as pipe:
            for actor in actors:
                for keys in shards:
                    pipe.zcount(keys.index_state_actor("FAILURE", actor), low, "+inf")
                    pipe.zcount(keys.index_state_actor("SUCCESS", actor), low, "+inf")
            counts = pipe.execute()
        out = {}
        for i, actor in enumerate(actors):
            mine = counts[i * 2 * len(shards):(i + 1) * 2 * len(shards)]
            out[actor] = (sum(mine[0::2]), sum(mine[1::2]))
        return out

    def started_records(self, page: int = 500) -> list[dict[str, Any]]:
        """Every STARTED record (as many as the workers' total concurrency, so a few pages at most)."""
        records = []
        for keys in self.keys.all_shards():
            index, offset = keys.index_state("STARTED"), 0
            while ids := self.redis.zrange(index, offset, offset + page - 1):
                records += [r for r in self.get_many(ids) if r is not None and r["state"] == "STARTED"]
                offset += len(ids)
        return records


def decode_record(raw: dict[str, str]) -> Optional[dict]:
    if not raw:
        return None
    return decode_hash({k: v for k, v in raw.items() if k not in PRIVATE_FIELDS}, JSON_FIELDS, INT_FIELDS, FLOAT_FIELDS)


def decode_hash(raw: dict[str, str], json_fields: Iterable[str], int_fields: Iterable[str],
                float_fields: Iterable[str]) -> dict[str, Any]:
    """A Redis hash with its JSON, integer and float fields decoded (empty floats left as they are)."""
    record: dict[str, Any] = dict(raw)
    for name in json_fields:
        if name in record:
            record[name] = json.loads(record[name])
    for name in int_fields:
        if name in record:
            record[name] = int(record[name])
    for name in float_fields:
        if name in record and record[name] != "":
            record[name] = float(record[name])
    return record


def state_history(history: Optional[str]) -> list[dict]:
    """The state events of a record's ``history`` field, as they were published, numbered from 1."""
    events = []
    for seq, entry in enumerate((history or "").split(), start=1):
        state, _, at = entry.partition("@")
        events.append({"type": "state", "state": state, "at": float(at), "seq": seq})
    return events


def encode_cursor(score: int, ties: int) -> str:
    return base64.urlsafe_b64encode(f"{score}:{ties}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    """Raise ValueError for anything that is not a cursor this store made."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        score, ties = text.split(":")
        score_value, ties_value = int(score), int(ties)
    except Exception:
        raise ValueError("cursor is not one returned by this API") from None
    if ties_value < 0 or ties_value > 100_000:
        raise ValueError("cursor is not one returned by this API")
    return score_value, ties_value
