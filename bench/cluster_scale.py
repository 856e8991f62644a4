"""State-store reads at growing record counts: one Redis server against a 3-master Redis Cluster.

    python -m bench.cluster_scale [--sizes 10000,100000,1000000] [--samples 300] [--out PATH]

Both deployments are the bench's own (tests/ha/servers.py: one redis-server
and a 3-master cluster on free ports, data under /tmp, stopped afterwards);
the shared Redis is not touched. The single server's store has 1 shard (the
plain key names), the cluster's 16 (each one hash slot).

Records are written straight in the store's format by bench.load_records
(pipelined HSETs and ZADDs, as CREATE/START/FINISH leave them; mostly
finished tasks over 4 actors and 3 queues): going through the scripts one
task at a time would take about a quarter of an hour per million on this
2-core machine. At each size the request-path reads run *samples* times on
each side, alternately (single, cluster, single, ...), so load from
elsewhere on the machine hits both alike:

* **status**: ``StateStore.get`` of a random loaded id (one HGETALL);
* **stats**: ``count_by_state`` over the 4 actors and 3 queues plus
  ``throughput`` (the counts of ``/api/v1/tasks/stats``: 48 ZCARDs, x16 on the
  cluster, in one pipeline; and the per-shard throughput scripts);
* **list**: the first page of 50, newest first, and the 3rd page of the
  SUCCESS tasks by cursor (each shard's page, merged, on the cluster).

Prints p50/p99 in ms per size and writes the table to ``--out``
(``bench/results/cluster-scale.md``).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

from bench.common import ROOT, console
from bench.load_records import ACTORS, QUEUES, load
from pipeline.redis_client import make_redis
from pipeline.state import StateStore
from tests.ha.servers import RedisClusterGroup, RedisProcess

NAMESPACE = "bench-cluster-scale"


class Side:
    """One deployment: its client, a store on it, and the ids loaded so far (a sample)."""

    def __init__(self, label: str, url: str, shards: int) -> None:
        self.label, self.shards = label, shards
        self.client = make_redis(url, socket_timeout=None)
        self.store = StateStore(self.client, NAMESPACE, 3600, shards=shards)
        self.sample: list[str] = []
        self.loaded = 0

    def grow(self, size: int, now: float) -> float:
        """Load records up to *size*; seconds it took."""
        started = time.monotonic()
        self.sample += load(self.client, NAMESPACE, size, shards=self.shards, first=self.loaded, now=now)
        self.loaded = size
        return time.monotonic() - started

    def operations(self) -> dict[str, Callable[[], object]]:
        store, queues = self.store, sorted(set(QUEUES.values()))

        def third_page():
            _, cursor = store.list(state="SUCCESS", limit=50)
            _, cursor = store.list(state="SUCCESS", limit=50, cursor=cursor)
            return store.list(state="SUCCESS", limit=50, cursor=cursor)

        return {
            "status": lambda: store.get(random.choice(self.sample)),
            "stats": lambda: (store.count_by_state(ACTORS, queues), store.throughput()),
            "list: first page": lambda: store.list(limit=50),
            "list: 3rd page (SUCCESS)": third_page,
        }


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def measure(sides: list[Side], samples: int) -> dict[str, dict[str, list[float]]]:
    """Each operation *samples* times per side, the sides alternated call by call (ms)."""
    timings: dict[str, dict[str, list[float]]] = {}
    operations = {side.label: side.operations() for side in sides}
    for name in operations[sides[0].label]:
        timings[name] = {side.label: [] for side in sides}
        for side in sides:  # warm-up
            operations[side.label][name]()
        for _ in range(samples):
            for side in sides:
                started = time.perf_counter()
                operations[side.label][name]()
                timings[name][side.label].append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster-scale.md")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    directory = Path(tempfile.mkdtemp(prefix="bench-cluster-scale-", dir="/tmp"))
    server = RedisProcess(directory, "single")
    cluster = RedisClusterGroup(directory)
    rows, loads = [], []
    try:
        server.start("--save", "", "--appendonly", "no")
        cluster.start()
        sides = [Side("one server", f"redis://127.0.0.1:{server.port}/0", 1),
                 Side("3-master cluster", cluster.url, 16)]
        now = time.time()
        for size in sizes:
            took = {side.label: side.grow(size, now) for side in sides}
            loads.append((size, took))
            console.print(f"{size:,} records loaded: " + ", ".join(f"{k} {v:.0f}s" for k, v in took.items()))
            for name, by_side in measure(sides, args.samples).items():
                single, clustered = by_side["one server"], by_side["3-master cluster"]
                row = (size, name, percentile(single, 0.5), percentile(single, 0.99),
                       percentile(clustered, 0.5), percentile(clustered, 0.99))
                rows.append(row)
                console.print(f"  {name:<26} one server p50 {row[2]:6.2f} p99 {row[3]:6.2f} ms | "
                              f"cluster p50 {row[4]:6.2f} p99 {row[5]:6.2f} ms")
    finally:
        cluster.stop()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    write(args.out, rows, loads, args.samples)
    return 0


def write(path: Path, rows: list[tuple], loads: list[tuple], samples: int) -> None:
    lines = [
        "# State-store reads: one Redis server against a 3-master Redis Cluster (bench.cluster_scale)",
        "",
        f"`python -m bench.cluster_scale` on {time.strftime('%Y-%m-%d')}: {samples} calls per operation, size and "
        "side, the sides alternated call by call; one client thread; Redis 7.0 on loopback, a 2-core machine "
        "shared with other work (compare within a row). The single server's store has 1 shard, the cluster's 16. "
        "Records loaded with pipelined writes in the store's format (bench.load_records), not through the scripts.",
        "",
        "| records | operation | one server p50 (ms) | p99 | cluster p50 (ms) | p99 | cluster / one (p50) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, name, s50, s99, c50, c99 in rows:
        lines.append(f"| {size:,} | {name} | {s50:.2f} | {s99:.2f} | {c50:.2f} | {c99:.2f} | {c50 / s50:.1f} |")
    lines += ["", "Loading (pipelined, seconds for each step): " + "; ".join(
        f"{size:,}: " + ", ".join(f"{label} {took:.0f}" for label, took in by_side.items()) for size, by_side in loads), ""]
    path.write_text("\n".join(lines))
    console.print(f"written to {path}")


if __name__ == "__main__":
    sys.exit(main())
