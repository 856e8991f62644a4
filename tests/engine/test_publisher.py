"""Bulk publishing (pipeline.publisher) against the real RabbitMQ."""

from __future__ import annotations

import os

import dramatiq
import pika

from pipeline import client
from pipeline.publisher import BatchFrames
from tests import sample_tasks


def test_batch_frames_are_the_bytes_pika_would_send(engine):
    channel = engine.broker.connection.channel()
    impl = channel._impl
    frames = BatchFrames(impl)
    big = os.urandom(3 * impl.connection._body_max_length + 17)  # four body frames
    try:
        for queue, body, priority in [("q.one", b"{}", None), ("q.one", b"x" * 1000, 0), ("q.two", big, 9), ("q.two", b"", 5)]:
            sent: list[bytes] = []
            impl.connection._output_marshaled_frames = sent.extend  # capture what pika would write
            try:
                impl.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, priority=priority))
            finally:
                del impl.connection._output_marshaled_frames
            assert frames.publish(queue, body, priority) == b"".join(sent), (queue, len(body), priority)
    finally:
        channel.close()


def test_bulk_submission_of_multi_frame_messages_arrives_whole_and_in_order(engine):
    # Incompressible values keep each gzip-compressed body above pika's frame size.
    values = [os.urandom(150_000).hex() for _ in range(3)] + ["small"] * 250
    ids = client.submit_many([{"actor": "echo", "kwargs": {"value": value}} for value in values])
    queue = engine.settings.queue_prefix + sample_tasks.QUEUE
    channel = engine.broker.connection.channel()
    try:
        received = []
        while True:
            method, _properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            received.append(dramatiq.get_encoder().decode(body))
    finally:
        channel.close()
    assert [m["message_id"] for m in received] == ids
    assert [m["kwargs"]["value"] for m in received] == values
    assert all(engine.store.get(task_id)["state"] == "PENDING" for task_id in ids)
