"""Deleting failed tasks: their dead-lettered messages first, then their records.

A failed task lives twice: its FAILURE record in Redis and, usually, its
message in RabbitMQ's ``<queue>.XQ``. Deleting only the record would leave a
message that a later "requeue all" revives as an unknown task and runs
again, so the message goes first, in one AMQP transaction, and the record
after it. If Redis then fails, the record is still FAILURE with no message
left, and deleting it again finishes the job.

The message is found by reading the dead-letter queue (as
:func:`pipeline.queues.requeue_dead` does), so this costs one ``basic_get``
per dead-lettered message of that queue.
"""

from __future__ import annotations

from typing import Iterable

from pipeline.client import result_key
from pipeline.queues import _channel, _drain
from pipeline.state import scripts

# Remove a FAILURE record, its index entries, its expiry entry and its result.
# Any other state is left alone (the task was requeued or retried meanwhile).
# ARGV: P, id, result_key
DELETE_FAILED = scripts.PRELUDE + r"""
local id = ARGV[2]
local key = P..':t:'..id
local r = redis.call('HMGET', key, 'state', 'actor', 'queue')
if r[1] ~= 'FAILURE' then return 0 end
for _, k in ipairs(state_keys('FAILURE', r[2], r[3])) do redis.call('ZREM', k, id) end
for _, k in ipairs({P..':i:all', P..':i:a:'..r[2], P..':i:q:'..r[3]}) do redis.call('ZREM', k, id) end
redis.call('ZREM', P..':exp', id..'\31'..r[2]..'\31'..r[3]..'\31FAILURE')
redis.call('DEL', key, ARGV[3])
return 1
"""


def delete_failed(engine, queue: str, task_ids: Iterable[str]) -> int:
    """Delete the FAILURE tasks *task_ids* of *queue*; returns how many records were removed."""
    wanted = set(task_ids)
    if not wanted:
        return 0
    discard_dead_messages(engine, queue, wanted)
    script = engine.store.redis.register_script(DELETE_FAILED)
    removed = 0
    for record in engine.store.get_many(sorted(wanted)):
        if record is not None and record["queue"] == queue:
            removed += script(args=[engine.store.namespace, record["task_id"], result_key(engine, record)])
    return removed


def discard_dead_messages(engine, queue: str, task_ids: set[str]) -> int:
    """Ack (drop) the dead-lettered messages of *task_ids*; every other message is put back."""
    channel = _channel(engine, queue)
    try:
        channel.tx_select()
        depth = channel.queue_declare(f"{queue}.XQ", passive=True).method.message_count
        selected, others = _drain(channel, f"{queue}.XQ", depth, task_ids)
        for message in selected:
            channel.basic_ack(message.tag)
        for tag in others:
            channel.basic_nack(tag, requeue=True)
        channel.tx_commit()
        return len(selected)
    finally:
        if channel.is_open:
            channel.close()
