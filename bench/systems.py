"""Parts 1-3 of the benchmark: the three systems, queued-then-drained throughput,
one-at-a-time latency, and bulk enqueue against raw pika with pipelined confirms.

claw-pipeline runs with everything on by default (state records, results,
retries, time limits, heartbeats, recycling); raw Dramatiq 2 with the same
broker settings and no extra middleware; Celery 5 with a prefork pool. All
use the same worker concurrency and the queues of this run (``bench.common``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pika

from bench.cpu import CpuMeter
from bench.common import BROKER_URL, QUEUE_PREFIX, REDIS_URL, ROOT, namespace, purge_queues, stop

PROCESSES, THREADS = 2, 8


def start_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m module args`` in the checkout, its output discarded: a system's worker."""
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                            env=env or {**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def ready_count(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        connection.close()


def drain_rate(queue: str, n: int, worker_pid: int, timeout: float = 600) -> tuple[float, dict[str, float]]:
    """With a worker just started on a full queue: msg/s from the last poll that saw the queue
    full to the first that saw it empty, and the CPU per message spent meanwhile.

    Worker start-up is excluded (it differs by system and is paid once). The
    interval is an upper bound on the drain time (by up to two polls, ~20 ms),
    so a tiny N that drains between two polls is never credited a flattering
    rate; the last prefetched messages (at most 16 per process) finish within ms.
    The CPU meter starts at the first poll that sees messages taken (the
    worker processes are up by then).
    """
    deadline = time.monotonic() + timeout
    last_full = time.perf_counter()
    meter = None
    while time.monotonic() < deadline:
        depth = ready_count(queue)
        now = time.perf_counter()
        if depth >= n:
            last_full = now
        elif meter is None:
            meter = CpuMeter(worker_pid).start()
        if depth == 0:
            return n / (now - last_full), meter.stop(n)
        time.sleep(0.01)
    raise RuntimeError(f"{queue} did not drain within {timeout}s")


class Claw:
    name = "claw-pipeline"
    queue = QUEUE_PREFIX + "bench_claw"

    def __init__(self) -> None:
        from pipeline.engine import make_engine
        from pipeline.settings import load_settings

        self.namespace = namespace("claw")
        self.env = {**os.environ, "CLAW_NAMESPACE": self.namespace, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX,
                    "CLAW_TASK_MODULES": "bench.tasks", "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": REDIS_URL,
                    "PYTHONPATH": str(ROOT)}
        self.engine = make_engine(load_settings(namespace=self.namespace, queue_prefix=QUEUE_PREFIX,
                                                task_modules=["bench.tasks"], broker_url=BROKER_URL, redis_url=REDIS_URL))

    def enqueue(self, i: int) -> None:
        from pipeline import client

        client.submit("bench_noop", kwargs={"i": i}, engine=self.engine)

    def start_worker(self) -> subprocess.Popen:
        return start_module("pipeline.cli", "worker", "-p", str(PROCESSES), "-t", str(THREADS), "-Q", "bench_claw",
                            env=self.env)

    def round_trip(self, i: int, timeout: float = 10) -> float:
        """Submit, then wait for SUCCESS on the task's event channel (what the SSE endpoint streams)."""
        from pipeline import client
        from pipeline.state import new_task_id

        task_id = new_task_id()
        pubsub = self.engine.store.redis.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.engine.store.keys.events_channel(task_id))
        start = time.perf_counter()
        client.submit("bench_noop", kwargs={"i": i}, engine=self.engine, task_id=task_id)
        deadline = start + timeout
        while time.perf_counter() < deadline:
            event = pubsub.get_message(timeout=1)
            if event is not None and '"SUCCESS"' in event["data"]:
                elapsed = time.perf_counter() - start
                pubsub.close()
                return elapsed
        raise RuntimeError(f"no SUCCESS event within {timeout} s")

    def verify(self, n: int) -> None:
        counts = self.engine.store.count_by_state(["bench_noop"], [])["actors"]["bench_noop"]
        if counts["SUCCESS"] < n:
            raise RuntimeError(f"only {counts['SUCCESS']} of {n} tasks recorded SUCCESS: {counts}")

    def cleanup(self) -> None:  # keys and queues go with the run's (common.clean_run)
        self.engine.close()


class _Reference:
    """A system claw-pipeline is compared with: its app, queue and tasks in a module of bench/ (imported
    when the system is), timed from the call to its result; it keeps no records to verify."""

    def __init__(self, module) -> None:
        self.module = module
        self.queue = module.QUEUE

    def round_trip(self, i: int, timeout: float = 10) -> float:
        start = time.perf_counter()
        self.call(i, timeout)
        return time.perf_counter() - start

    def verify(self, n: int) -> None:
        pass


class RawDramatiq(_Reference):
    name = "raw Dramatiq"

    def __init__(self) -> None:
        import bench.raw_dramatiq as module

        super().__init__(module)

    def enqueue(self, i: int) -> None:
        self.module.noop.send(i)

    def start_worker(self) -> subprocess.Popen:
        return start_module("dramatiq", "bench.raw_dramatiq", "-p", str(PROCESSES), "-t", str(THREADS), "-Q", self.queue)

    def call(self, i: int, timeout: float) -> None:
        message = self.module.noop_result.send(i)
        message.get_result(backend=self.module.backend, block=True, timeout=int(timeout * 1000))

    def cleanup(self) -> None:
        self.module.broker.close()


class CeleryBench(_Reference):
    name = "Celery"

    def __init__(self) -> None:
        import bench.celery_app as module

        super().__init__(module)

    def enqueue(self, i: int) -> None:
        self.module.noop.delay(i)

    def start_worker(self) -> subprocess.Popen:
        return start_module("celery", "-A", "bench.celery_app", "worker", "-c", str(PROCESSES), "-P", "prefork",
                            "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning")

    def call(self, i: int, timeout: float) -> None:
        self.module.noop.delay(i).get(timeout=timeout)

    def cleanup(self) -> None:
        pass


def measure_throughput(system, n: int) -> dict:
    """Enqueue and process msg/s, and CPU microseconds per message by part in each phase."""
    purge_queues(system.queue)
    meter = CpuMeter().start()
    started = time.perf_counter()
    for i in range(n):
        system.enqueue(i)
    enqueue_rate = n / (time.perf_counter() - started)
    enqueue_cpu = meter.stop(n)
    worker = system.start_worker()
    try:
        process_rate, process_cpu = drain_rate(system.queue, n, worker.pid)
        time.sleep(0.5)
    finally:
        stop(worker)
    system.verify(n)
    return {"enqueue": enqueue_rate, "process": process_rate,
            **{f"enqueue_cpu_{part}": value for part, value in enqueue_cpu.items() if part != "workers"},
            **{f"process_cpu_{part}": value for part, value in process_cpu.items() if part != "client"}}


def measure_latency(system, count: int) -> dict[str, float]:
    purge_queues(system.queue)
    worker = system.start_worker()
    try:
        system.round_trip(-1, timeout=90)  # waits for the worker to come up
        samples = sorted(system.round_trip(i) for i in range(count))
    finally:
        stop(worker)
    return {"p50_ms": samples[len(samples) // 2] * 1000, "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000}


def raw_pika_pipelined(n: int, window: int = 1000) -> float:
    """msg/s publishing persistent messages with up to *window* unconfirmed (SelectConnection)."""
    queue = QUEUE_PREFIX + "pika"
    body = json.dumps({"queue_name": queue, "actor_name": "noop", "args": [0], "kwargs": {}, "options": {},
                       "message_id": str(uuid.uuid4()), "message_timestamp": 0}).encode()
    state = {"published": 0, "confirmed": 0, "start": 0.0, "elapsed": 0.0}

    def publish_more(channel):
        while state["published"] < n and state["published"] - state["confirmed"] < window:
            channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, priority=0))
            state["published"] += 1

    def on_confirm(frame):
        state["confirmed"] = max(state["confirmed"], frame.method.delivery_tag)
        if state["confirmed"] >= n:
            state["elapsed"] = time.perf_counter() - state["start"]
            connection.close()
        else:
            publish_more(channel_box[0])

    channel_box = []

    def on_confirm_mode(_frame):
        state["start"] = time.perf_counter()
        publish_more(channel_box[0])

    def on_declared(_frame):
        channel_box[0].confirm_delivery(on_confirm, callback=on_confirm_mode)

    def on_channel(channel):
        channel_box.append(channel)
        channel.queue_declare(queue, durable=True, arguments={"x-max-priority": 9}, callback=on_declared)

    connection = pika.SelectConnection(
        pika.URLParameters(BROKER_URL),
        on_open_callback=lambda conn: conn.channel(on_open_callback=on_channel),
        on_close_callback=lambda conn, reason: conn.ioloop.stop(),
    )
    connection.ioloop.start()
    purge_queues(queue, delete=True)
    return n / state["elapsed"]


def claw_bulk(claw: Claw, n: int) -> float:
    """msg/s through ``client.submit_many`` in batches of 1,000 (records pipelined, confirms pipelined)."""
    from pipeline import client

    purge_queues(claw.queue)
    started = time.perf_counter()
    for offset in range(0, n, 1000):
        client.submit_many([{"actor": "bench_noop", "kwargs": {"i": i}} for i in range(offset, min(n, offset + 1000))],
                           engine=claw.engine)
    rate = n / (time.perf_counter() - started)
    purge_queues(claw.queue)
    return rate
