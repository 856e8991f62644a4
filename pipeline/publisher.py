"""Publishing many messages with one broker round trip.

Dramatiq's ``enqueue`` waits for a publisher confirm per message (~1 ms
each). For bulk submissions the messages are published inside one AMQP
transaction instead: ``tx.commit-ok`` arrives only once RabbitMQ has taken
every message, so a batch is either all accepted or reported as failed.

RabbitMQ reads each slice of the batch (:data:`SLICE` messages) while the
next is being encoded. pika has no pipelined publish on a BlockingConnection,
and publishing through its asynchronous channel costs more CPU per message
than everything else a bulk submission does: it marshals the same method
frame and properties again for every message and hands each of the three
frames to the socket in a send of its own. :class:`BatchFrames` builds the
same bytes with pika's frame and spec classes, the constant parts once, and
each slice goes out in one write.
"""

from __future__ import annotations

import struct
import time
from typing import Optional, Sequence

import pika
from pika import frame, spec
from dramatiq import Message
from dramatiq.common import dq_name, q_name
from dramatiq.errors import BrokerError

from pipeline.errors import BrokerUnavailable
from pipeline.holds import hop

#: Messages whose frames go to RabbitMQ in one write: large enough to make
#: sends rare, small enough that RabbitMQ reads a batch while it is encoded.
SLICE = 100
#: pika's own errors, and Dramatiq's wrapping of them (declare_queue raises ConnectionClosed).
AMQP_ERRORS = (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError, BrokerError)


def publish_batch(broker, messages: Sequence[tuple[Message, Optional[int]]], attempts: int = 3) -> None:
    """Publish (message, delay_ms) pairs atomically; raise BrokerUnavailable if RabbitMQ refuses."""
    prepared = [_prepare(message, delay, broker.max_hold_ms) for message, delay in messages]
    for attempt in range(1, attempts + 1):
        try:
            for queue in {q_name(m.queue_name) for m, _ in prepared}:
                broker.declare_queue(queue, ensure=True)
            for message, delay in prepared:
                broker.emit_before("enqueue", message, delay)
            connection = broker.connection
            channel = connection.channel()
            try:
                channel.tx_select()
                frames = BatchFrames(channel._impl)
                for start in range(0, len(prepared), SLICE):
                    if not channel.is_open:
                        raise pika.exceptions.ChannelWrongStateError("channel closed during the batch")
                    frames.send([frames.publish(m.queue_name, m.encode(), m.options.get("broker_priority"))
                                 for m, _ in prepared[start:start + SLICE]])
                    connection.process_data_events(time_limit=0)
                channel.tx_commit()
            finally:
                if channel.is_open:
                    channel.close()
            for message, delay in prepared:
                broker.emit_after("enqueue", message, delay)
            return
        except AMQP_ERRORS as exc:
            del broker.connection
            if attempt == attempts:
                raise BrokerUnavailable(f"RabbitMQ did not accept the batch: {type(exc).__name__}") from None


class BatchFrames:
    """The AMQP frames of persistent publishes to the default exchange on one channel.

    Byte for byte what pika's ``Channel.basic_publish`` sends, built with
    pika's own classes, but the method frame is marshaled once per queue and
    the properties once per priority.
    """

    def __init__(self, channel: pika.channel.Channel):
        self.connection = channel.connection
        self.number = channel.channel_number
        self._methods: dict[str, bytes] = {}
        self._properties: dict[Optional[int], bytes] = {}

    def publish(self, routing_key: str, body: bytes, priority: Optional[int]) -> bytes:
        method = self._methods.get(routing_key)
        if method is None:
            method = frame.Method(self.number, spec.Basic.Publish(exchange="", routing_key=routing_key)).marshal()
            self._methods[routing_key] = method
        properties = self._properties.get(priority)
        if properties is None:
            properties = b"".join(pika.BasicProperties(delivery_mode=2, priority=priority).encode())
            self._properties[priority] = properties
        pieces = [method, self._frame(spec.FRAME_HEADER, struct.pack(">HxxQ", spec.BasicProperties.INDEX, len(body)) + properties)]
        step = self.connection._body_max_length
        pieces += [self._frame(spec.FRAME_BODY, body[start:start + step]) for start in range(0, len(body), step)]
        return b"".join(pieces)

    def send(self, publishes: list[bytes]) -> None:
        """Queue the publishes on the connection as one write (the next I/O loop sends it)."""
        self.connection._output_marshaled_frames([b"".join(publishes)])

    def _frame(self, kind: int, payload: bytes) -> bytes:
        return struct.pack(">BHI", kind, self.number, len(payload)) + payload + _FRAME_END


_FRAME_END = bytes((spec.FRAME_END,))


def _prepare(message: Message, delay: Optional[int], max_hold_ms: int) -> tuple[Message, Optional[int]]:
    """What ``broker.enqueue`` would publish: a delayed message goes to the delay queue, in hops."""
    message, delay = hop(message, delay, max_hold_ms)
    if delay is None:
        return message, None
    eta = int(time.time() * 1000) + delay
    return message.copy(queue_name=dq_name(message.queue_name), options={"eta": eta}), delay
