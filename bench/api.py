"""Part 4 (the API under ``wrk``) and the HTTP half of part 2 (``POST /api/v1/tasks/bulk``).

Each record count gets a namespace of its own, filled straight into Redis by
:mod:`bench.load_records`, and its own API, run as ``claw-pipeline api`` runs
it (gunicorn with uvicorn workers, 2 of them, ``api.cli.run_api``). Every count is loaded and
served before the first measurement, so the counts alternate like the systems
do: each rep runs every endpoint against every count in turn (10k, 1M, 10k,
1M ...). ``wrk -t2 -c16 --latency`` on loopback gives requests/s and the p99;
responses other than 2xx/3xx and socket errors are counted and reported, never
silently averaged in.

The submit endpoint adds records: after each submit run they are removed
again (``StateStore.forget``, what a refused submission does) and their
messages purged, so every run sees exactly the loaded count.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import redis

from bench.common import BROKER_URL, QUEUE_PREFIX, REDIS_URL, ROOT, RUN, console, delete_namespace, namespace, purge_queues, stop, summary, wait_http
from bench.load_records import load

API_WORKERS = 2
WRK = ["wrk", "-t2", "-c16", "--latency"]
TOKEN = f"bench-token-{RUN}-0123456789abcdef"
NOTIFICATION = {"channel": "email", "recipient": "bench@example.com", "subject": "hi", "body": "hello"}
#: endpoint -> path (status lookup: its script appends a random loaded id; submit: its script POSTs NOTIFICATION).
ENDPOINTS = {
    "status lookup": "/api/v1/tasks/status/",
    "list (limit 50)": "/api/v1/tasks/list?limit=50",
    "stats": "/api/v1/tasks/stats",
    "submit": "/api/v1/tasks/notifications/send",
}
#: The floor: bench.floor_app (fixed JSON; no auth, Redis or metrics) under the same gunicorn settings.
FLOOR = "floor: fixed JSON, same gunicorn"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ApiServer:
    """The API for namespace *ns* on a free loopback port, started at once; :meth:`wait_ready` before use."""

    def __init__(self, ns: str, workdir: Path, task_modules: str = "", root: Path = ROOT, name: str = "",
                 extra_env: dict[str, str] | None = None):
        """*root*: the checkout to serve (another commit's, to compare against); *name* tells logs apart."""
        self.port = free_port()
        env = {**os.environ, "CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_API_TOKENS": f"{TOKEN}:admin",
               "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": REDIS_URL, "PYTHONPATH": str(root), **(extra_env or {})}
        if task_modules:
            env["CLAW_TASK_MODULES"] = task_modules
        self.log_path = workdir / f"api-{ns}{name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", f"from api.cli import run_api; run_api('127.0.0.1:{self.port}', {API_WORKERS})"],
                cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> int:
        try:
            wait_http(self.port, "/ready", self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.log_path.read_text()[-3000:]}") from None
        return self.port


@contextlib.contextmanager
def api_servers(namespaces: list[str], workdir: Path, task_modules: str = "") -> Iterator[list[int]]:
    """Start one API per namespace (in parallel); yields their ports; stops them all at the end."""
    servers = [ApiServer(ns, workdir, task_modules) for ns in namespaces]
    try:
        yield [server.wait_ready() for server in servers]
    finally:
        stop(*(server.process for server in servers))


# -- bulk submission over HTTP ----------------------------------------------------------------

@contextlib.contextmanager
def bulk_http(workdir: Path) -> Iterator[Callable[[int], float]]:
    """An API (small namespace, bench tasks declared); yields ``rate(n)``: msg/s of
    ``POST /api/v1/tasks/bulk`` for *n* no-op tasks in requests of 1,000, one keep-alive connection."""
    queue = QUEUE_PREFIX + "bench_claw"
    with api_servers([namespace("bulk")], workdir, task_modules="bench.tasks") as (port,):
        def rate(n: int) -> float:
            purge_queues(queue)
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            started = time.perf_counter()
            for offset in range(0, n, 1000):
                tasks = [{"actor": "bench_noop", "kwargs": {"i": i}} for i in range(offset, min(n, offset + 1000))]
                connection.request("POST", "/api/v1/tasks/bulk", json.dumps({"tasks": tasks}), headers)
                response = connection.getresponse()
                body = response.read()
                if response.status != 202:
                    raise RuntimeError(f"bulk submit answered {response.status}: {body[:500]!r}")
            elapsed = time.perf_counter() - started
            connection.close()
            purge_queues(queue)
            return n / elapsed

        yield rate


# -- wrk --------------------------------------------------------------------------------------

def wrk_scripts(workdir: Path, count: int, ids: list[str]) -> dict[str, Path]:
    """One Lua script per endpoint: the bearer token, and for status a random loaded id per request."""
    auth = f'wrk.headers["Authorization"] = "Bearer {TOKEN}"\n'
    texts = {
        "status lookup": f"local ids = {{{','.join(json.dumps(i) for i in ids)}}}\n{auth}"
                         f'request = function() return wrk.format("GET", "{ENDPOINTS["status lookup"]}" .. ids[math.random(#ids)]) end\n',
        "list (limit 50)": auth,
        "stats": auth,
        "submit": f'wrk.method = "POST"\n{auth}wrk.headers["Content-Type"] = "application/json"\n'
                  f"wrk.body = '{json.dumps(NOTIFICATION)}'\n",
    }
    paths = {}
    for endpoint, text in texts.items():
        paths[endpoint] = workdir / f"{count}-{endpoint.split()[0]}.lua"
        paths[endpoint].write_text(text)
    return paths


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p99 (ms), requests, and errors (non-2xx/3xx responses, socket errors) from ``wrk --latency``."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    requests = re.search(r"^\s+(\d+) requests in", output, re.M)
    if not (rps and p99 and requests):
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {"rps": float(rps.group(1)), "p99_ms": float(p99.group(1)) * _UNITS_MS[p99.group(2)],
            "requests": int(requests.group(1)), "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, sockets.groups())) if sockets else 0}


def run_wrk(port: int, endpoint: str, script: Path, duration: str) -> dict[str, float]:
    return run_wrk_path(port, "/" if endpoint in ("status lookup", FLOOR) else ENDPOINTS[endpoint], script, duration)


def run_wrk_path(port: int, path: str, script: Path, duration: str) -> dict[str, float]:
    """``wrk`` at *path* (the script may build each request's own) for *duration*."""
    done = subprocess.run([*WRK, f"-d{duration}", "-s", str(script), f"http://127.0.0.1:{port}{path}"],
                          capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


def wrk_arguments(doc: str, records: int, out: str) -> argparse.ArgumentParser:
    """The options of a bench running wrk against loaded records: --records, --reps, --duration, --out (a file
    of bench/results)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--records", type=int, default=records)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / out)
    return parser


def compared(first: list[dict], second: list[dict]) -> dict:
    """Two sides' wrk runs of one endpoint as table cells: ``rps`` (median and range) and ``p99`` (median, ms)
    of each side, ``ratio`` second/first of the median req/s, ``errors`` of each side (``first/second``)."""
    rps = [summary([r["rps"] for r in runs]) for runs in (first, second)]
    return {
        "rps": [f"{s['median']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f})" for s in rps],
        "ratio": f"{rps[1]['median'] / rps[0]['median']:.2f}",
        "p99": [f"{summary([r['p99_ms'] for r in runs])['median']:.1f}" for runs in (first, second)],
        "errors": "/".join(str(sum(r["non_2xx"] + r["socket_errors"] for r in runs)) for runs in (first, second)),
    }


def forget_submitted(client: redis.Redis, ns: str, loaded_at: float, queue: str = "notification_default") -> None:
    """Remove the records a submit run added (all newer than the load) and their messages."""
    from pipeline.engine import make_store
    from pipeline.owners import Owner
    from pipeline.settings import load_settings
    from pipeline.state import NewTask

    store = make_store(load_settings(namespace=ns, queue_prefix=QUEUE_PREFIX, redis_url=REDIS_URL, broker_url=BROKER_URL))
    ids = client.zrangebyscore(store.keys.index(), f"({int(loaded_at * 1_000_000)}", "+inf")
    for start in range(0, len(ids), 1000):
        records = [r for r in store.get_many(ids[start:start + 1000]) if r is not None]
        store.forget([NewTask(r["task_id"], r["actor"], r["queue"], 0, 0, [], {}, owner=Owner.of_record(r)) for r in records])
    purge_queues(QUEUE_PREFIX + queue)


@contextlib.contextmanager
def floor_server(workdir: Path) -> Iterator[int]:
    """bench.floor_app under the API's gunicorn settings; yields its port."""
    port = free_port()
    with open(workdir / "floor.log", "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "python:api.server.gunicorn_conf", "--chdir", str(ROOT),
             "--bind", f"127.0.0.1:{port}", "--workers", str(API_WORKERS), "bench.floor_app:app"],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        wait_http(port, "/", process)
        yield port
    finally:
        stop(process)


def measure(counts: list[int], reps: int, duration: str, workdir: Path) -> dict[str, dict[int, list[dict]]]:
    """``{endpoint: {count: [one wrk result per rep]}}`` plus ``{FLOOR: {0: [...]}}``; namespaces deleted at the end."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    results: dict[str, dict[int, list[dict]]] = {endpoint: {count: [] for count in counts} for endpoint in ENDPOINTS}
    results[FLOOR] = {0: []}
    try:
        loaded_at, scripts = {}, {}
        for count in counts:
            console.log(f"[bold]API[/]: loading {count:,} task records")
            ids = load(client, namespace(f"api{count}"), count, QUEUE_PREFIX)
            loaded_at[count] = time.time()  # every loaded record is older, every submitted one newer
            scripts[count] = wrk_scripts(workdir, count, ids)
        console.log(f"[bold]API[/]: starting {len(counts)} API servers")
        floor_script = workdir / "floor.lua"
        floor_script.write_text("")
        with api_servers([namespace(f"api{count}") for count in counts], workdir) as port_list, floor_server(workdir) as floor_port:
            ports = dict(zip(counts, port_list))
            for rep in range(reps):
                console.log(f"[bold]rep {rep + 1}/{reps}[/] API floor (fixed JSON under the same gunicorn), wrk {duration}")
                results[FLOOR][0].append(run_wrk(floor_port, FLOOR, floor_script, duration))
                for count in counts:
                    for endpoint in ENDPOINTS:
                        console.log(f"[bold]rep {rep + 1}/{reps}[/] API {endpoint}, {count:,} records, wrk {duration}")
                        results[endpoint][count].append(run_wrk(ports[count], endpoint, scripts[count][endpoint], duration))
                        if endpoint == "submit":
                            forget_submitted(client, namespace(f"api{count}"), loaded_at[count])
    finally:
        for count in counts:
            delete_namespace(client, namespace(f"api{count}"))
        client.close()
    return results
