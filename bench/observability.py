"""What request ids, log context and tracing cost: submissions and worker throughput, alternated in one run.

    python -m bench.observability [--baseline ../checkout-before] [--tasks 2000] [--reps 3]

Sides, each rep running every side in turn so load from elsewhere hits them alike:

* ``baseline`` (with ``--baseline``): another checkout (the commit before this work), served with this
  checkout's virtualenv, its own code first on ``PYTHONPATH``;
* ``off``: this checkout, tracing off (no ``OTEL_EXPORTER_OTLP_ENDPOINT``): what every deployment pays;
* ``on``: this checkout exporting every span over OTLP/HTTP to a local receiver that discards them; each
  submission runs inside a SERVER span, as it would in an API request.

Per side and rep: a client process of that checkout submits ``--tasks`` no-op tasks one by one
(``pipeline.client.submit``: record, message, publisher confirm) and reports submissions per second; then one
worker process (4 threads) of that checkout runs them, and its throughput is the tasks over the span from the
first start to the last finish in their records (the warm-up submissions run too, before). Prints the medians and the ratios to ``off``; writes ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis

from pipeline.state.keys import Keys

from bench.common import QUEUE_PREFIX, REDIS_URL, ROOT, clean_run, console, delete_namespace, namespace, purge_queues, stop

QUEUE = "bench_claw"
SUBMIT = """
import json, sys, time
from pipeline import client
from pipeline.engine import get_engine
tracer = None
if sys.argv[2] == "on":
    from pipeline.observability import tracing
    assert tracing.setup("bench")
    from opentelemetry import trace
    tracer = trace.get_tracer("bench")
engine = get_engine()
n = int(sys.argv[1])

def submit(i):
    if tracer is None:
        return client.submit("bench_noop", kwargs={"i": i}, engine=engine)
    with tracer.start_as_current_span("POST /submit", kind=trace.SpanKind.SERVER):
        return client.submit("bench_noop", kwargs={"i": i}, engine=engine)

for i in range(100):  # warm-up: connections, first declarations
    submit(i)
ids = []
started = time.perf_counter()
for i in range(n):
    ids.append(submit(i))
seconds = time.perf_counter() - started
if sys.argv[2] == "on":
    tracing.shutdown()
print(json.dumps({"rate": n / seconds, "ids": ids}))
"""


class Sink(ThreadingHTTPServer):
    """An OTLP/HTTP endpoint that accepts and discards (what a collector costs the sender, without one)."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _SinkHandler)
        self.requests = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _SinkHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests += 1
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


def side_env(side: str, root: Path, ns: str, sink: Sink) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAW_", "OTEL_"))}
    env.update({
        "CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_REDIS_URL": REDIS_URL,
        "CLAW_TASK_MODULES": "bench.tasks", "CLAW_AUTH_DISABLED": "true", "CLAW_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "CLAW_MAX_TASKS_PER_CHILD": "0", "PYTHONPATH": str(root),
    })
    if side == "on":
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
                    "OTEL_SERVICE_NAME": "bench"})
    return env


def run_side(side: str, root: Path, tasks: int, sink: Sink, client: redis.Redis) -> dict[str, float]:
    ns = namespace(f"obs-{side}")
    keys = Keys(ns)
    env = side_env(side, root, ns, sink)
    purge_queues(QUEUE_PREFIX + QUEUE)
    # Submissions first, into the queue (no worker yet): the two figures do not pace each other.
    submitted = subprocess.run([sys.executable, "-c", SUBMIT, str(tasks), "on" if side == "on" else "off"], cwd=root,
                               env=env, capture_output=True, text=True, timeout=600)
    if submitted.returncode != 0:
        raise RuntimeError(f"{side}: {submitted.stderr[-2000:]}")
    outcome = json.loads(submitted.stdout.strip().splitlines()[-1])
    worker = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker", "--queues", QUEUE, "--processes", "1",
                               "--threads", "4"], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        ids = outcome["ids"]
        deadline = time.monotonic() + 600
        while True:
            with client.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hmget(keys.task(task_id), "state", "started_at", "finished_at")
                rows = pipe.execute()
            if all(row[0] == "SUCCESS" for row in rows):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{side}: tasks did not finish")
            time.sleep(0.5)
        first = min(float(row[1]) for row in rows)
        last = max(float(row[2]) for row in rows)
        return {"submit_per_s": outcome["rate"], "worker_per_s": len(ids) / (last - first)}
    finally:
        stop(worker)
        delete_namespace(client, ns)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="a checkout of the commit before (optional)")
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "observability.md")
    args = parser.parse_args(argv)
    sides = {**({"baseline": args.baseline.resolve()} if args.baseline else {}), "off": ROOT, "on": ROOT}
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    sink = Sink()
    results: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    load = os.getloadavg()[0]
    try:
        for rep in range(args.reps):
            for side, root in sides.items():
                console.log(f"rep {rep + 1}/{args.reps}: {side}")
                results[side].append(run_side(side, root, args.tasks, sink, client))
                console.log(f"  {results[side][-1]}")
    finally:
        sink.shutdown()
        clean_run()
    table = report(results, args, load, sink.requests)
    console.print(table)
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0


def report(results: dict[str, list[dict[str, float]]], args, load: float, exports: int) -> str:
    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in results[side])

    lines = [
        "# Observability cost (bench.observability)",
        "",
        f"{args.tasks} no-op tasks per side and rep, {args.reps} reps alternated; 1 worker process x 4 threads; "
        f"load average {load:.1f} at start (a machine shared with other work: compare rows of one run only). "
        f"The `on` side's spans went to a discarding OTLP receiver ({exports} export requests).",
        "",
        "| side | submissions/s (median, range) | vs off | worker tasks/s (median, range) | vs off |",
        "|---|---|---|---|---|",
    ]
    for side in results:
        submit = [r["submit_per_s"] for r in results[side]]
        worker = [r["worker_per_s"] for r in results[side]]
        lines.append(
            f"| {side} | {median(side, 'submit_per_s'):,.0f} ({min(submit):,.0f}–{max(submit):,.0f}) | "
            f"{median(side, 'submit_per_s') / median('off', 'submit_per_s'):.2f} | "
            f"{median(side, 'worker_per_s'):,.0f} ({min(worker):,.0f}–{max(worker):,.0f}) | "
            f"{median(side, 'worker_per_s') / median('off', 'worker_per_s'):.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
