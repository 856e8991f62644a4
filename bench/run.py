"""``make bench``: claw-pipeline against raw Dramatiq 2 and Celery 5, in one run.

Same RabbitMQ and Redis for all, systems alternated (A B C A B C ...) so
drift on the machine hits each equally; medians with min-max. Prints a table
and writes it to ``bench/results/`` (Markdown + JSON).

    python -m bench.run [--n 10000] [--reps 3] [--latency 200] [--api] [--vectorize]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable

import pika
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BROKER_URL = os.environ.get("CLAW_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("CLAW_REDIS_URL", "redis://127.0.0.1:6379/0")
PROCESSES, THREADS = 2, 8
console = Console()


def ready_count(queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker:
        return 0
    finally:
        connection.close()


def purge_queues(*names: str, delete: bool = False) -> None:
    """Empty (or at the end, delete) the benchmark queues.

    Queues are purged, not deleted, between runs: Celery's producer caches
    its queue declarations and would publish into a deleted queue's void.
    """
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    for name in names:
        for suffix in ("", ".DQ", ".XQ"):
            channel = connection.channel()
            try:
                channel.queue_delete(name + suffix) if delete else channel.queue_purge(name + suffix)
            except pika.exceptions.ChannelClosedByBroker:
                continue  # not declared yet
            channel.close()
    connection.close()


def drain_rate(queue: str, n: int, start_worker: Callable[[], subprocess.Popen], timeout: float = 600) -> tuple[float, subprocess.Popen]:
    """Start the worker on a full queue; msg/s from the first message taken until the queue is empty.

    Worker start-up is excluded (it differs by system and is paid once); the
    last prefetched messages (at most 16 per process) finish within ms.
    """
    worker = start_worker()
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        depth = ready_count(queue)
        now = time.perf_counter()
        if first is None and depth < n:
            first = now
        if depth == 0 and first is not None:
            return n / max(now - first, 1e-6), worker
        time.sleep(0.01)
    raise RuntimeError(f"{queue} did not drain within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Claw:
    name = "claw-pipeline"
    queue = "bench_claw"

    def __init__(self) -> None:
        from pipeline.engine import make_engine
        from pipeline.settings import load_settings

        self.namespace = f"bench-{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "CLAW_NAMESPACE": self.namespace, "CLAW_TASK_MODULES": "bench.tasks",
                    "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": REDIS_URL, "PYTHONPATH": str(ROOT)}
        self.engine = make_engine(load_settings(namespace=self.namespace, task_modules=["bench.tasks"],
                                                broker_url=BROKER_URL, redis_url=REDIS_URL))

    def enqueue(self, i: int) -> None:
        from pipeline import client

        client.submit("bench_noop", kwargs={"i": i}, engine=self.engine)

    def start_worker(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", "-p", str(PROCESSES), "-t", str(THREADS), "-Q", self.queue],
            env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def round_trip(self, i: int, timeout: float = 10) -> float:
        """Submit, then wait for SUCCESS on the task's event channel (what the SSE endpoint streams)."""
        from pipeline import client
        from pipeline.state.store import new_task_id

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

    def cleanup(self) -> None:
        client = self.engine.store.redis
        for key in client.scan_iter(f"{self.namespace}:*", count=5000):
            client.unlink(key)
        self.engine.close()


class RawDramatiq:
    name = "raw Dramatiq"
    queue = "bench_raw"

    def __init__(self) -> None:
        import bench.raw_dramatiq as module

        self.module = module

    def enqueue(self, i: int) -> None:
        self.module.noop.send(i)

    def start_worker(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "dramatiq", "bench.raw_dramatiq", "-p", str(PROCESSES), "-t", str(THREADS), "-Q", self.queue],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def round_trip(self, i: int, timeout: float = 10) -> float:
        start = time.perf_counter()
        message = self.module.noop_result.send(i)
        message.get_result(backend=self.module.backend, block=True, timeout=int(timeout * 1000))
        return time.perf_counter() - start

    def verify(self, n: int) -> None:
        pass

    def cleanup(self) -> None:
        self.module.broker.close()


class CeleryBench:
    name = "Celery"
    queue = "bench_celery"

    def __init__(self) -> None:
        import bench.celery_app as module

        self.module = module

    def enqueue(self, i: int) -> None:
        self.module.noop.delay(i)

    def start_worker(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "-c", str(PROCESSES), "-P", "prefork",
             "-Q", self.queue, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def round_trip(self, i: int, timeout: float = 10) -> float:
        start = time.perf_counter()
        self.module.noop.delay(i).get(timeout=timeout)
        return time.perf_counter() - start

    def verify(self, n: int) -> None:
        pass

    def cleanup(self) -> None:
        pass


def measure_throughput(system, n: int) -> dict[str, float]:
    purge_queues(system.queue)
    started = time.perf_counter()
    for i in range(n):
        system.enqueue(i)
    enqueue_rate = n / (time.perf_counter() - started)
    process_rate, worker = drain_rate(system.queue, n, system.start_worker)
    time.sleep(0.5)
    stop(worker)
    system.verify(n)
    return {"enqueue": enqueue_rate, "process": process_rate}


def measure_latency(system, count: int) -> dict[str, float]:
    purge_queues(system.queue)
    worker = system.start_worker()
    try:
        system.round_trip(-1, timeout=90)  # waits for the worker to come up
        samples = sorted(system.round_trip(i) for i in range(count))
    finally:
        stop(worker)
    return {"p50_ms": samples[len(samples) // 2] * 1000, "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))] * 1000}


def raw_pika_pipelined(n: int, queue: str = "bench_pika", window: int = 1000) -> float:
    """msg/s publishing persistent messages with up to *window* unconfirmed (SelectConnection)."""
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
    from pipeline import client

    purge_queues(claw.queue)
    started = time.perf_counter()
    for offset in range(0, n, 1000):
        client.submit_many([{"actor": "bench_noop", "kwargs": {"i": i}} for i in range(offset, min(n, offset + 1000))],
                           engine=claw.engine)
    rate = n / (time.perf_counter() - started)
    purge_queues(claw.queue)
    return rate


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}


def fmt(stat: dict[str, float], digits: int = 0) -> str:
    return f"{stat['median']:,.{digits}f} ({stat['min']:,.{digits}f}–{stat['max']:,.{digits}f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="tasks per throughput run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per system (alternated)")
    parser.add_argument("--latency", type=int, default=200, help="round trips per latency run")
    parser.add_argument("--out", default=str(RESULTS), help="results folder")
    args = parser.parse_args(argv)

    systems = [Claw(), RawDramatiq(), CeleryBench()]
    raw: dict[str, dict[str, list[float]]] = {s.name: {"enqueue": [], "process": [], "p50_ms": [], "p99_ms": []} for s in systems}
    bulk = {"claw bulk (Python API)": [], "raw pika, pipelined confirms": []}
    try:
        for rep in range(args.reps):
            for system in systems:
                console.print(f"[bold]rep {rep + 1}/{args.reps}[/] {system.name}: throughput, N={args.n}")
                for key, value in measure_throughput(system, args.n).items():
                    raw[system.name][key].append(value)
            for system in systems:
                console.print(f"[bold]rep {rep + 1}/{args.reps}[/] {system.name}: latency x{args.latency}")
                for key, value in measure_latency(system, args.latency).items():
                    raw[system.name][key].append(value)
            console.print(f"[bold]rep {rep + 1}/{args.reps}[/] bulk enqueue, N={args.n}")
            bulk["claw bulk (Python API)"].append(claw_bulk(systems[0], args.n))
            bulk["raw pika, pipelined confirms"].append(raw_pika_pipelined(args.n))
    finally:
        for system in systems:
            system.cleanup()
        purge_queues(*(s.queue for s in systems), delete=True)

    stats = {name: {k: summary(v) for k, v in metrics.items()} for name, metrics in raw.items()}
    bulk_stats = {name: summary(v) for name, v in bulk.items()}
    claw, dram, cel = (stats[s.name] for s in systems)
    ratios = {
        "process claw/raw-Dramatiq (target >= 0.85)": claw["process"]["median"] / dram["process"]["median"],
        "process claw/Celery (target >= 1.5)": claw["process"]["median"] / cel["process"]["median"],
        "enqueue claw/raw-Dramatiq (target >= 0.9)": claw["enqueue"]["median"] / dram["enqueue"]["median"],
        "enqueue claw/Celery": claw["enqueue"]["median"] / cel["enqueue"]["median"],
        "bulk claw/raw-pika (target >= 0.6)": bulk_stats["claw bulk (Python API)"]["median"] / bulk_stats["raw pika, pipelined confirms"]["median"],
    }
    report(stats, bulk_stats, ratios, args)
    return 0


def report(stats, bulk_stats, ratios, args) -> None:
    table = Table(title=f"Throughput (N={args.n}, {PROCESSES} processes x {THREADS} threads; Celery prefork {PROCESSES}) and latency")
    for column in ("system", "enqueue msg/s", "process msg/s", "latency p50 ms", "latency p99 ms"):
        table.add_column(column)
    for name, s in stats.items():
        table.add_row(name, fmt(s["enqueue"]), fmt(s["process"]), fmt(s["p50_ms"], 2), fmt(s["p99_ms"], 2))
    bulk_table = Table(title="Bulk enqueue msg/s")
    bulk_table.add_column("path")
    bulk_table.add_column("msg/s")
    for name, s in bulk_stats.items():
        bulk_table.add_row(name, fmt(s))
    ratio_table = Table(title="Ratios (medians)")
    ratio_table.add_column("ratio")
    ratio_table.add_column("value")
    for name, value in ratios.items():
        ratio_table.add_row(name, f"{value:.2f}")
    for t in (table, bulk_table, ratio_table):
        console.print(t)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    payload = {"when": stamp, "n": args.n, "reps": args.reps, "latency_round_trips": args.latency,
               "systems": stats, "bulk": bulk_stats, "ratios": ratios, "load_average": os.getloadavg()}
    (out / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
    lines = [f"# Benchmark {stamp} (N={args.n}, reps={args.reps}, load average {os.getloadavg()[0]:.2f})", "",
             "| system | enqueue msg/s | process msg/s | latency p50 ms | latency p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {fmt(s['enqueue'])} | {fmt(s['process'])} | {fmt(s['p50_ms'], 2)} | {fmt(s['p99_ms'], 2)} |" for n, s in stats.items()]
    lines += ["", "| bulk path | msg/s |", "|---|---|"] + [f"| {n} | {fmt(s)} |" for n, s in bulk_stats.items()]
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {n} | {v:.2f} |" for n, v in ratios.items()]
    (out / "latest.md").write_text("\n".join(lines) + "\n")
    console.print(f"written to {out / 'latest.md'} and {out / (stamp + '.json')}")


if __name__ == "__main__":
    sys.exit(main())
