"""A message body that inflates past CLAW_MAX_MESSAGE_BYTES (a gzip bomb) is never inflated:
workers record it as undecodable and dead-letter it, the dead-letter requeue leaves it where it is."""

from __future__ import annotations

import zlib

import pika
import pytest
from dramatiq.errors import DecodeError

from pipeline import client
from pipeline.dead_letters import requeue_dead
from pipeline.encoder import CompressedJSONEncoder
from tests import sample_tasks
from tests.conftest import BROKER_URL, QUEUE_PREFIX, queue_depth, wait_for_state, wait_until

LIMIT = 1024 * 1024
#: 64 MiB of JSON-looking text that gzips to about 64 KiB.
BOMB_BYTES = 64 * 1024 * 1024


@pytest.fixture
def env(env):
    return {**env, "CLAW_MAX_MESSAGE_BYTES": str(LIMIT)}


@pytest.fixture(scope="module")
def bomb() -> bytes:
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    body = b'{"message_id": "' + b"0" * BOMB_BYTES + b'"}'
    return deflater.compress(body) + deflater.flush()


def publish(queue: str, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    connection.channel().basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2))
    connection.close()


def test_the_decoder_refuses_a_body_that_inflates_past_the_limit_and_reads_one_under_it(bomb):
    seen = []
    encoder = CompressedJSONEncoder(threshold=100, on_decode_error=lambda body, reason: seen.append(reason), max_bytes=LIMIT)
    assert len(bomb) < 100_000
    with pytest.raises(DecodeError):
        encoder.decode(bomb)
    assert "CLAW_MAX_MESSAGE_BYTES" in seen[0]
    near_limit = {"message_id": "1", "v": "x" * (LIMIT - 100)}
    assert encoder.decode(encoder.encode(near_limit)) == near_limit
    for broken in (bomb[: len(bomb) // 2], encoder.encode(near_limit) + b"more"):
        with pytest.raises(DecodeError):
            encoder.decode(broken)


def test_a_worker_dead_letters_a_gzip_bomb_and_goes_on_working(engine, start_worker, bomb):
    start_worker()
    publish(QUEUE_PREFIX + sample_tasks.QUEUE, bomb)
    wait_until(lambda: queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1, 30, message="the bomb dead-lettered")
    recorded = wait_until(lambda: engine.store.undecodable(), 5, message="the undecodable record")
    assert recorded[0]["size"] == len(bomb) and "CLAW_MAX_MESSAGE_BYTES" in recorded[0]["reason"]
    assert wait_for_state(engine, client.submit("echo", kwargs={"value": 1}), "SUCCESS")


def test_the_dead_letter_requeue_leaves_a_gzip_bomb_in_the_dead_letter_queue(engine, bomb):
    queue = QUEUE_PREFIX + sample_tasks.QUEUE
    engine.broker.declare_queue(queue, ensure=True)
    publish(f"{queue}.XQ", bomb)
    assert requeue_dead(engine, queue) == 0
    assert queue_depth(f"{sample_tasks.QUEUE}.XQ") == 1 and queue_depth(sample_tasks.QUEUE) == 0
