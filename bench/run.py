"""``make bench``: everything issue 8 asks for, in one run and one report.

1. Throughput: N no-op tasks queued then drained, for claw-pipeline (everything
   on), raw Dramatiq 2 and Celery 5, with the same worker concurrency.
2. Bulk enqueue: claw's bulk submit (Python API and ``POST /api/v1/tasks/bulk``)
   against raw pika with pipelined publisher confirms.
3. Latency at light load: round trips one at a time, submit -> SUCCESS.
4. API: ``wrk`` against gunicorn, status/list/stats/submit at each record count
   (:mod:`bench.api`).
5. Vectorize: ``vectorize_document`` against the raw embedder (:mod:`bench.vectorize`).

Same RabbitMQ and Redis for all; systems alternated (A B C A B C ...), and the
API's record counts too, so drift on the machine hits each equally; medians
with min-max. Prints the tables and writes ``latest.md`` and a timestamped
JSON to ``--out`` (``bench/results/``). Every Redis key and queue of the run is
deleted at the end.

    python -m bench.run [--n 10000] [--reps 3] [--latency 200] [--api-records 10000,1000000]
                        [--api-duration 15s] [--vectorize-copies 2] [--skip-api] [--skip-vectorize] [--out DIR]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import api, report, vectorize
from bench.common import ROOT, RUN, clean_run, console, summary
from bench.report import BULK_HTTP, BULK_PIKA, BULK_PYTHON
from bench.systems import PROCESSES, THREADS, CeleryBench, Claw, RawDramatiq, claw_bulk, measure_latency, measure_throughput, raw_pika_pipelined


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="tasks per throughput and bulk run")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every measurement (alternated)")
    parser.add_argument("--latency", type=int, default=200, help="round trips per latency run")
    parser.add_argument("--api-records", default="10000,1000000", help="task records stored for the API runs, comma-separated")
    parser.add_argument("--api-duration", default="15s", help="wrk duration per endpoint and record count")
    parser.add_argument("--vectorize-copies", type=int, default=2, help="times the test corpus is repeated in the document")
    parser.add_argument("--skip-api", action="store_true", help="skip the wrk runs (part 4)")
    parser.add_argument("--skip-vectorize", action="store_true", help="skip the vectorize run (part 5)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"), help="results folder")
    args = parser.parse_args(argv)
    args.api_counts = sorted({int(c) for c in args.api_records.split(",") if c.strip()})
    if not args.skip_api and not shutil.which("wrk"):
        parser.error("wrk is not installed (make test-deps installs it), or pass --skip-api")
    return args


def systems_and_bulk(args: argparse.Namespace, workdir: Path) -> tuple[dict, dict]:
    """Parts 1-3, alternated per rep; raw samples per system and per bulk path."""
    systems = [Claw(), RawDramatiq(), CeleryBench()]
    samples: dict[str, dict[str, list[float]]] = {s.name: defaultdict(list) for s in systems}
    bulk = {BULK_PYTHON: [], BULK_HTTP: [], BULK_PIKA: []}
    try:
        with api.bulk_http(workdir) as http_bulk_rate:
            for rep in range(args.reps):
                step = f"[bold]rep {rep + 1}/{args.reps}[/]"
                for system in systems:
                    console.log(f"{step} {system.name}: throughput, N={args.n}")
                    for key, value in measure_throughput(system, args.n).items():
                        samples[system.name][key].append(value)
                for system in systems:
                    console.log(f"{step} {system.name}: latency x{args.latency}")
                    for key, value in measure_latency(system, args.latency).items():
                        samples[system.name][key].append(value)
                console.log(f"{step} bulk enqueue, N={args.n}")
                bulk[BULK_PYTHON].append(claw_bulk(systems[0], args.n))
                bulk[BULK_HTTP].append(http_bulk_rate(args.n))
                bulk[BULK_PIKA].append(raw_pika_pipelined(args.n))
    finally:
        for system in systems:
            system.cleanup()
    return samples, bulk


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM (a timeout, a CI stop) unwinds like Ctrl-C: workers and servers stop, the run's keys and queues go.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    results: dict = {
        "run": RUN,
        "when": time.strftime("%Y%m%d-%H%M%S"),
        "machine": {"cpus": os.cpu_count(), "load_start": os.getloadavg()},
        "settings": {
            "n": args.n, "reps": args.reps, "latency": args.latency,
            "concurrency": f"{PROCESSES} processes x {THREADS} threads (Celery: prefork {PROCESSES})",
            "api_records": args.api_counts, "api_duration": args.api_duration, "api_wrk": " ".join(api.WRK[1:]),
            "vectorize_copies": args.vectorize_copies,
        },
    }
    try:
        with tempfile.TemporaryDirectory(prefix="bench-") as workdir:
            samples, bulk = systems_and_bulk(args, Path(workdir))
            results["systems"] = {name: {k: summary(v) for k, v in metrics.items()} for name, metrics in samples.items()}
            results["bulk"] = {name: summary(v) for name, v in bulk.items()}
            if not args.skip_api:
                results["api"] = report.summarize_api(api.measure(args.api_counts, args.reps, args.api_duration, Path(workdir)))
            if not args.skip_vectorize:
                console.log(f"[bold]vectorize[/]: raw embedder and vectorize_document alternated x{args.reps}")
                measured = vectorize.measure(args.reps, args.vectorize_copies)
                results["vectorize"] = {"chunks": measured["chunks"], "raw": summary(measured["raw"]),
                                        "vectorize": summary(measured["vectorize"])}
    finally:
        console.log("deleting this run's Redis keys and queues")
        clean_run()
    results["machine"]["load_end"] = os.getloadavg()
    results["ratios"] = report.ratios(results)
    report.write(results, Path(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
