"""The API of this checkout against another commit's, alternately, in one run.

    python -m bench.api_compare --baseline ../base-checkout [--records 10000] [--reps 3] [--duration 10s]

Both APIs serve the same loaded namespace with the default ``claw-pipeline
api`` settings (2 worker processes); each rep runs every endpoint against
the baseline, then against this checkout (``wrk -t2 -c16``), so load from
elsewhere on the machine hits both alike. The baseline checkout is served
with this checkout's virtualenv (its own code first on ``PYTHONPATH``).
Prints req/s and p99 per endpoint with the ratio new/baseline, and writes
the table to ``--out`` (``bench/results/api-compare.md``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import redis

from bench.api import ENDPOINTS, ApiServer, compared, forget_submitted, run_wrk, wrk_arguments, wrk_scripts
from bench.common import QUEUE_PREFIX, REDIS_URL, RUN, clean_run, console, delete_namespace, namespace, report, stop
from bench.load_records import load


def main(argv: list[str] | None = None) -> int:
    parser = wrk_arguments(__doc__, records=10_000, out="api-compare.md")
    parser.add_argument("--baseline", required=True, type=Path, help="a checkout of the commit to compare with")
    args = parser.parse_args(argv)
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    ns = namespace("compare")
    results = {side: {endpoint: [] for endpoint in ENDPOINTS} for side in ("baseline", "new")}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
            workdir = Path(tmp)
            ids = load(client, ns, args.records, QUEUE_PREFIX)
            loaded_at = time.time()
            scripts = wrk_scripts(workdir, args.records, ids)
            servers = {"baseline": ApiServer(ns, workdir, root=args.baseline.resolve(), name="-baseline"),
                       "new": ApiServer(ns, workdir, name="-new")}
            try:
                ports = {side: server.wait_ready() for side, server in servers.items()}
                for rep in range(args.reps):
                    for endpoint in ENDPOINTS:
                        for side in ("baseline", "new"):
                            console.log(f"rep {rep + 1}/{args.reps} {endpoint}: {side}")
                            results[side][endpoint].append(run_wrk(ports[side], endpoint, scripts[endpoint], args.duration))
                            if endpoint == "submit":
                                forget_submitted(client, ns, loaded_at)
            finally:
                stop(*(server.process for server in servers.values()))
    finally:
        delete_namespace(client, ns)
        clean_run()
    lines = [f"# API: this checkout against {args.baseline.name} (run {RUN}), alternated, {args.reps} reps x "
             f"{args.duration}, {args.records:,} records, wrk -t2 -c16, 2 API worker processes each",
             "", "| endpoint | baseline req/s | new req/s | new/baseline | baseline p99 ms | new p99 ms | errors (base/new) |",
             "|---|---|---|---|---|---|---|"]
    for endpoint in ENDPOINTS:
        cells = compared(results["baseline"][endpoint], results["new"][endpoint])
        lines.append(f"| {endpoint} | {cells['rps'][0]} | {cells['rps'][1]} | {cells['ratio']} | "
                     f"{cells['p99'][0]} | {cells['p99'][1]} | {cells['errors']} |")
    report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
