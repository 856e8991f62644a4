"""Heartbeat: each worker process keeps its record fresh and obeys control commands.

The record (host, pid, queues, concurrency, counts, current tasks, and
``held``: waiting messages this process holds unacknowledged, see
:mod:`pipeline.holds`) expires
a few heartbeats after the process stops refreshing it, so a killed worker
disappears by itself. The same thread trims expired entries from the task
indexes in small batches, which keeps list pages free of dead entries
without any scan on a request path.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from typing import Callable

import redis
from dramatiq.middleware import Middleware

from pipeline.delivery import outcome_of
from pipeline.state import StateStore, WorkerRegistry

logger = logging.getLogger("pipeline.heartbeat")
TRIM_BATCH = 1000


class Heartbeat(Middleware):
    def __init__(
        self,
        registry: WorkerRegistry,
        store: StateStore,
        *,
        worker_id: str,
        node: str,
        queues: list[str],
        threads: int,
        interval: float,
        on_command: Callable[[str], None],
    ):
        self.registry = registry
        self.store = store
        self.worker_id = worker_id
        self.interval = interval
        self.on_command = on_command
        self.lock = threading.Lock()
        self.current: set[str] = set()
        self.processed = 0
        self.failed = 0
        self.stopping = threading.Event()
        self.worker = None
        self.static = {
            "id": worker_id,
            "node": node,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "queues": queues,
            "threads": threads,
            "concurrency": threads,
            "started_at": f"{time.time():.3f}",
        }

    def after_worker_boot(self, broker, worker):
        self.worker = worker
        # Listen before being listed: a command sent as soon as this worker
        # appears (pub/sub keeps nothing for late subscribers) must reach it.
        control = self._subscribe()
        self._beat()
        threading.Thread(target=self._beat_loop, name="claw-heartbeat", daemon=True).start()
        threading.Thread(target=self._control_loop, args=(control,), name="claw-control", daemon=True).start()

    def before_worker_shutdown(self, broker, worker):
        self.stopping.set()

    def after_worker_shutdown(self, broker, worker):
        try:
            self.registry.remove(self.worker_id)
        except redis.RedisError:
            logger.warning("Could not remove worker record %s; it will expire.", self.worker_id)

    def before_process_message(self, broker, message):
        with self.lock:
            self.current.add(message.message_id)

    def after_process_message(self, broker, message, *, result=None, exception=None):
        with self.lock:
            self.current.discard(message.message_id)
            self.processed += 1
            if exception is not None and outcome_of(message) != "RETRY":
                self.failed += 1

    def after_skip_message(self, broker, message):
        with self.lock:
            self.current.discard(message.message_id)

    def _beat(self) -> None:
        with self.lock:
            record = {**self.static, "processed": self.processed, "failed": self.failed, "current_tasks": sorted(self.current)}
        record["held"] = self._held()
        self.registry.beat(record)

    def _held(self) -> int:
        """Delayed messages in this process's delay consumers, each held unacked until its hop ends."""
        consumers = list(self.worker.consumers.values()) if self.worker is not None else []
        return sum(consumer.delay_queue.qsize() for consumer in consumers)

    def _beat_loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self._beat()
                self.store.trim_expired(TRIM_BATCH)
            except redis.RedisError as exc:
                logger.warning("Heartbeat failed (%s); will retry.", exc)

    def _subscribe(self, confirm_within: float = 5.0):
        """A pub/sub connection subscribed to the control channel, once Redis has confirmed it."""
        pubsub = self.registry.redis.pubsub()
        pubsub.subscribe(self.registry.keys.control_channel)
        deadline = time.monotonic() + confirm_within
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message and message["type"] == "subscribe":
                break
        return pubsub

    def _control_loop(self, pubsub) -> None:
        while not self.stopping.is_set():
            try:
                pubsub = pubsub or self._subscribe()
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message["type"] == "message":
                        self._handle(message["data"])
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                logger.warning("Control listener lost Redis (%s); reconnecting.", exc)
                pubsub = None
                time.sleep(1)

    def _handle(self, data: str) -> None:
        try:
            command = json.loads(data)
        except ValueError:
            return
        if command.get("worker") in ("*", self.worker_id, self.static["node"]):
            logger.info("Worker %s received %s.", self.worker_id, command.get("command"))
            self.on_command(command.get("command", ""))

