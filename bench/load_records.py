"""Load many task records straight into Redis, in the store's exact format, for API benchmarks.

Records are built by :meth:`pipeline.state.NewTask.fields` and indexed
under :class:`pipeline.state.keys.Keys`, exactly as the store's CREATE/START/
FINISH scripts leave them, but written with large pipelines (about 100k
records a second) instead of one script call per task.

    python -m bench.load_records --namespace bench-x --count 1000000
    python -m bench.load_records --namespace bench-x --delete

Use a throwaway namespace and delete it afterwards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import defaultdict

import redis

from bench.common import delete_namespace
from pipeline.encoder import to_json
from pipeline.state import Keys, NewTask

ACTORS = ("generate_ai_response", "vectorize_document", "send_notification", "update_knowledge_base")
QUEUES = {"generate_ai_response": "ai_high_priority", "vectorize_document": "knowledge_default",
          "send_notification": "notification_default", "update_knowledge_base": "knowledge_default"}
#: State mix of a busy deployment: mostly finished tasks.
STATE_CYCLE = ("SUCCESS",) * 14 + ("FAILURE", "CANCELLED", "PENDING", "STARTED", "RETRY", "SUCCESS")
BATCH = 5_000


def record(index: int, now: float, queue_prefix: str = "") -> tuple[str, dict[str, str]]:
    actor = ACTORS[index % len(ACTORS)]
    state = STATE_CYCLE[index % len(STATE_CYCLE)]
    enqueued = now - index * 0.001  # one task per millisecond, newest first
    task = NewTask(
        task_id=str(uuid.uuid4()), actor=actor, queue=queue_prefix + QUEUES[actor], priority=index % 10, max_retries=3,
        args=[], kwargs={"conversation_id": f"c{index}", "user_message": "hello " * 8},
    )
    fields = task.fields(enqueued)
    fields["state"] = state
    if state != "PENDING":
        fields.update(attempts="1", started_at=f"{enqueued + 0.05:.6f}", worker="bench:1")
    if state in ("SUCCESS", "FAILURE", "CANCELLED"):
        fields.update(finished_at=f"{enqueued + 0.5:.6f}", runtime_ms="450")
    if state == "SUCCESS":
        fields["result"] = to_json({"reply": "hi " * 20, "usage": {"tokens": 42}})
    if state == "FAILURE":
        fields["error"] = to_json({"type": "ValueError", "message": "boom", "traceback": "Traceback ...\n" * 5})
    return task.task_id, fields


def load(client: redis.Redis, namespace: str, count: int, queue_prefix: str = "", shards: int = 1,
         first: int = 0, now: float | None = None) -> list[str]:
    """Write records *first*..*count*-1 (of a store with *shards* shards; a cluster client for a
    cluster); returns a sample of 1,000 ids (for lookups).

    Index entries are grouped per sorted set: one ZADD per index and batch.
    """
    keys, now, sample = Keys(namespace, shards), time.time() if now is None else now, []
    for start in range(first, count, BATCH):
        indexes: dict[str, dict[str, str]] = defaultdict(dict)
        with client.pipeline(transaction=False) as pipe:
            for index in range(start, min(start + BATCH, count)):
                task_id, fields = record(index, now, queue_prefix)
                if len(sample) < 1000 and index % max(1, (count - first) // 1000) == 0:
                    sample.append(task_id)
                score, actor, queue, state = fields["score"], fields["actor"], fields["queue"], fields["state"]
                pipe.hset(keys.task(task_id), mapping=fields)
                for key in keys.of(task_id).indexes(actor, queue, state):
                    indexes[key][task_id] = score
            for key, members in indexes.items():
                pipe.zadd(key, members)
            pipe.execute()
    return sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--namespace", required=True, help="a throwaway namespace (never a live one)")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--queue-prefix", default="", help="as CLAW_QUEUE_PREFIX of the API under test")
    parser.add_argument("--ids-file", help="write a sample of the loaded ids here (JSON list)")
    parser.add_argument("--delete", action="store_true", help="delete every key of the namespace and stop")
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(args.redis_url, decode_responses=True)
    if args.delete:
        print(f"deleted {delete_namespace(client, args.namespace)} keys", file=sys.stderr)
        return 0
    started = time.monotonic()
    sample = load(client, args.namespace, args.count, args.queue_prefix)
    elapsed = time.monotonic() - started
    print(f"loaded {args.count} records in {elapsed:.1f}s ({args.count / elapsed:,.0f}/s)", file=sys.stderr)
    if args.ids_file:
        with open(args.ids_file, "w") as out:
            json.dump(sample, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
