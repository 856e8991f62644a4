"""One Redis pub/sub connection per API process, shared by every open event stream.

A stream needs the messages of one channel (its task's). Giving each stream a
Redis connection of its own would cost a connection (and a Redis client
slot) per open browser tab; instead the hub subscribes each channel once,
however many streams follow it, and a reader task puts every message into
the queue of each stream of that channel.

:meth:`EventHub.subscribe` returns only once Redis has confirmed the
subscription, so a stream that then reads the task's record can miss no
event published after that read. When the hub's connection fails, every
subscription ends (:data:`END`): the clients reconnect with Last-Event-ID
and the record's history gives them what they missed; the next subscription
opens a new connection.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import defaultdict
from typing import Optional

import redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from pipeline.redis_client import make_async_redis

logger = logging.getLogger("api.streams")

#: Put into a subscription's queue when it must end (hub connection lost, server stopping, queue overflow).
END = object()
#: Messages a slow stream may have waiting before it is ended (the client resumes with Last-Event-ID).
QUEUE_LIMIT = 1000

_hubs: "weakref.WeakSet[EventHub]" = weakref.WeakSet()


def end_all_streams() -> None:
    """End every open stream of this process (the server is stopping: clients reconnect elsewhere)."""
    for hub in list(_hubs):
        hub.end_all()


class Subscription:
    """The messages of one channel for one stream: ``await next_message(timeout)``."""

    def __init__(self, hub: "EventHub", channel: bytes):
        self.hub = hub
        self.channel = channel
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_LIMIT)
        self.closed = False

    def put(self, item: object) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:  # the client reads slower than its task publishes: end, it resumes
            self.end()

    def end(self) -> None:
        """Make the stream's next read return END (idempotent)."""
        if not self.closed:
            self.closed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(END)

    async def next_message(self, timeout: float) -> Optional[object]:
        """The next message (bytes), END, or None when *timeout* passes first."""
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def release(self) -> None:
        """End the stream and give its place back now (the client left; its generator may close later)."""
        self.end()
        self.hub.detach(self)

    async def close(self) -> None:
        self.end()
        await self.hub.unsubscribe(self)


class EventHub:
    """The pub/sub connection of this process and the streams following each channel."""

    def __init__(self, redis_url: str):
        self.redis_url = redis_url
        self.streams: dict[bytes, set[Subscription]] = defaultdict(set)
        self._client: Optional[redis.asyncio.Redis] = None
        self._pubsub = None
        self._reader: Optional[asyncio.Task] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        # Subscribe confirmations still expected per channel, and who waits for them.
        self._pending: dict[bytes, int] = defaultdict(int)
        self._confirmed: dict[bytes, asyncio.Future] = {}
        self._connecting: Optional[asyncio.Lock] = None
        _hubs.add(self)

    @property
    def open_streams(self) -> int:
        return sum(len(subs) for subs in self.streams.values())

    async def subscribe(self, channel: str) -> Subscription:
        await self._connect()
        name = channel.encode()
        subscription = Subscription(self, name)
        first = not self.streams[name]
        self.streams[name].add(subscription)
        if first:
            confirmed = self._confirmed.get(name)
            if confirmed is None or confirmed.done():
                confirmed = self._confirmed[name] = asyncio.get_running_loop().create_future()
            self._pending[name] += 1
            try:
                await self._pubsub.execute_command("SUBSCRIBE", name)
            except Exception:
                await self.unsubscribe(subscription)
                raise
        confirmed = self._confirmed.get(name)
        if confirmed is not None and not confirmed.done():
            await asyncio.shield(confirmed)
        if subscription.closed:  # the connection failed while we waited
            raise redis.ConnectionError("the event hub lost its Redis connection")
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        if self.detach(subscription, unsubscribe=False):
            await self._unsubscribe(subscription.channel)

    def detach(self, subscription: Subscription, unsubscribe: bool = True) -> bool:
        """Forget *subscription*; True when it was its channel's last (UNSUBSCRIBE is then sent or due)."""
        followers = self.streams.get(subscription.channel)
        if followers is None or subscription not in followers:
            return False
        followers.discard(subscription)
        if followers:
            return False
        del self.streams[subscription.channel]
        if unsubscribe:
            asyncio.get_running_loop().create_task(self._unsubscribe(subscription.channel))
        return True

    async def _unsubscribe(self, channel: bytes) -> None:
        if channel in self.streams or self._pubsub is None or self._reader is None or self._reader.done():
            return  # followed again meanwhile, or the connection is gone anyway
        try:
            await self._pubsub.execute_command("UNSUBSCRIBE", channel)
        except Exception:  # the reader notices a broken connection and ends every stream
            pass

    def end_all(self) -> None:
        """End every open stream (the server is stopping, or the connection failed)."""
        for followers in list(self.streams.values()):
            for subscription in list(followers):
                subscription.end()
        self.streams.clear()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests run several): start afresh
            self._reset()
            self._loop = loop
            self._connecting = asyncio.Lock()
        if self._reader is not None and not self._reader.done():
            return
        async with self._connecting:
            if self._reader is not None and not self._reader.done():
                return
            # No silent reconnect: it would re-subscribe none of the streams' channels. A failure ends them instead.
            # Bytes (channel names are compared as sent), and no read time-out: the connection waits for messages.
            self._client = make_async_redis(self.redis_url, retry=Retry(NoBackoff(), 0), decode_responses=False,
                                            socket_timeout=None, socket_keepalive=True, health_check_interval=0)
            self._pubsub = self._client.pubsub()
            # The connection is made by a first subscribe (to the hub's own channel) before the reader starts.
            await self._pubsub.subscribe("claw:api-event-hub")
            self._reader = loop.create_task(self._read())

    def _reset(self) -> None:
        self.end_all()
        self._pending.clear()
        for future in self._confirmed.values():
            if not future.done():
                future.cancel()
        self._confirmed.clear()
        self._reader = self._pubsub = self._client = None

    async def _read(self) -> None:
        pubsub = self._pubsub
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=None)
                if message is None:
                    continue
                kind, channel = message["type"], message["channel"]
                if kind == "message":
                    for subscription in self.streams.get(channel, ()):
                        subscription.put(message["data"])
                elif kind == "subscribe" and channel in self._pending:
                    self._pending[channel] -= 1
                    if self._pending[channel] <= 0:
                        del self._pending[channel]
                        confirmed = self._confirmed.pop(channel, None)
                        if confirmed is not None and not confirmed.done():
                            confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("Event hub: Redis pub/sub connection lost (%s); open streams end and reconnect", exc)
        finally:
            self._reset_after_failure(pubsub)

    def _reset_after_failure(self, pubsub) -> None:
        self.end_all()
        self._pending.clear()
        for future in self._confirmed.values():
            if not future.done():
                future.set_result(None)  # the waiting subscribers see their subscription ended
        self._confirmed.clear()
        if self._pubsub is pubsub:
            self._reader = None
            try:
                asyncio.get_running_loop().create_task(_close_quietly(pubsub, self._client))
            except RuntimeError:  # the loop itself is gone (a test's loop closing): nothing left to close on
                pass
            self._pubsub = self._client = None


async def _close_quietly(pubsub, client) -> None:
    try:
        await pubsub.aclose()
        await client.aclose()
    except Exception:
        pass
