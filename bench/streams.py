"""The API under thousands of open event streams and stalled clients (issue 15's figures).

    python -m bench.streams [--streams 2000] [--stalled 500] [--duration 8s] [--ai-replies 3] [--out bench/results]

Against ``claw-pipeline api`` with its default settings (2 worker processes),
a real worker, RabbitMQ and Redis, on this machine:

1. Status lookups (``wrk``) and ``/health`` latency with no stream open. Status lookups always
   alternate between the measured API and an identical twin that holds no stream and no stalled
   client: the ratio of the two is what the streams (or stalled clients) cost, whatever else loads
   the machine meanwhile.
2. ``--streams`` event streams opened on tasks that are still waiting (no
   worker yet), held by one asyncio client process; the API's memory before
   and after gives the memory per open stream. Status lookups and ``/health``
   again, meanwhile.
3. A worker starts: every stream must get its task's ``STARTED`` event; the
   delay from the change (the event's ``at``, written by the worker) to its
   arrival is reported (p50/p99/max), and every stream must end with its
   ``SUCCESS`` state event and final record, in order.
4. ``--stalled`` connections each send half a request line and stop: status
   lookups and ``/health`` meanwhile, and how many the header time-out closed.
5. ``--ai-replies`` streamed AI replies (``generate_ai_response``, a local
   stand-in model speaking OpenAI's streaming protocol, one token every
   50 ms): the delay from the model sending a token to the event stream's
   ``progress`` event that carries it (the actor publishes at most every 0.25 s).

Prints the tables with every threshold's verdict and writes
``bench/results/streams.md``. The machine is shared with whatever else runs:
compare only figures of one run. A tiny smoke run is part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import psutil
import redis
import requests
import uvloop

from api.server.worker import raise_open_files_limit
from bench.api import TOKEN, ApiServer, run_wrk, wrk_scripts
from bench.common import BROKER_URL, QUEUE_PREFIX, REDIS_URL, ROOT, RUN, clean_run, console, namespace, purge_queues, stop
from bench.load_records import load
from bench.sse import Stream
from pipeline.settings import get_settings

HEALTH_WRK = ["wrk", "-t1", "-c4", "--latency"]
AI_TOKENS = 30
AI_TOKEN_INTERVAL = 0.05


# -- measuring -------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def health_p99(port: int, duration: str) -> float:
    done = subprocess.run([*HEALTH_WRK, f"-d{duration}", f"http://127.0.0.1:{port}/health"],
                          capture_output=True, text=True, check=True)
    found = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", done.stdout, re.M)
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]


def api_rss_mib(server: ApiServer) -> float:
    """Resident memory of the API's worker processes (not the gunicorn master), MiB."""
    master = psutil.Process(server.process.pid)
    workers = [p for p in master.children(recursive=True)]
    return sum(p.memory_info().rss for p in workers) / 2**20


class Loop:
    """An asyncio loop (uvloop, like the API's) on a thread of its own: the streams live there while wrk runs.

    One client process stands for 2,000 browsers, so its own speed is part of every delay it measures.
    """

    def __init__(self):
        self.loop = uvloop.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: Optional[float] = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Follower:
    """One open stream: its events, with their arrival times (wall clock, like the worker's ``at``)."""

    def __init__(self, port: int, task_id: str):
        self.port, self.task_id = port, task_id
        self.events: list[tuple[float, str, Optional[str], dict]] = []
        self.opened = asyncio.Event()
        self.status = 0

    async def run(self) -> None:
        stream = await Stream.open(self.port, f"/api/v1/tasks/{self.task_id}/events", TOKEN)
        self.status = stream.status
        try:
            if stream.status != 200:
                return
            async for event in stream.events():
                self.events.append((time.time(), event.event, event.id, event.json()))
                self.opened.set()
        finally:
            self.opened.set()
            stream.close()

    def in_order(self) -> bool:
        names = [(name, data.get("state")) for _, name, _, data in self.events if name in ("record", "state")]
        ids = [event_id for _, name, event_id, _ in self.events if name == "state"]
        return (names == [("record", "PENDING"), ("state", "STARTED"), ("state", "SUCCESS"), ("record", "SUCCESS")]
                and ids == ["1", "2"])

    def started_delay_ms(self) -> Optional[float]:
        for received, name, _, data in self.events:
            if name == "state" and data.get("state") == "STARTED":
                return (received - data["at"]) * 1000
        return None


# -- the local stand-in model ----------------------------------------------------------------

class _Model(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sent: dict[str, float] = {}

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        reply = f"r{time.monotonic_ns()}"

        def send(data: str) -> None:
            event = f"data: {data}\n\n".encode()
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()

        for i in range(AI_TOKENS):
            token = f"{reply}t{i} "
            self.sent[token] = time.time()
            send(json.dumps({"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                             "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}))
            time.sleep(AI_TOKEN_INTERVAL)
        send(json.dumps({"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- the phases ------------------------------------------------------------------------------

def submit(port: int, count: int, actor: str = "bench_noop") -> list[str]:
    ids: list[str] = []
    for start in range(0, count, 1000):
        tasks = [{"actor": actor, "kwargs": {"i": i}} for i in range(start, min(count, start + 1000))]
        answer = requests.post(f"http://127.0.0.1:{port}/api/v1/tasks/bulk", json={"tasks": tasks}, timeout=60,
                               headers={"Authorization": f"Bearer {TOKEN}"})
        answer.raise_for_status()
        ids += answer.json()["task_ids"]
    return ids


def worker(env: dict, queue: str, workdir: Path, name: str) -> subprocess.Popen:
    log = open(workdir / f"worker-{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "worker", "-p", "2", "-t", "8", "-Q", queue],
                            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def alternate(args, ports: dict[str, int], scripts: dict, label: str) -> dict[str, float]:
    """Status lookups on the measured API and on its twin (no streams, no stalled clients), alternated."""
    rates: dict[str, list[float]] = {"api": [], "twin": []}
    for rep in range(args.reps):
        for side in ("api", "twin"):
            console.log(f"{label}: status lookups, {side}, rep {rep + 1}/{args.reps}")
            rates[side].append(run_wrk(ports[side], "status lookup", scripts["status lookup"], args.duration)["rps"])
    return {side: statistics.median(values) for side, values in rates.items()}


def streams_phase(args, server: ApiServer, ports: dict[str, int], scripts: dict, env: dict, workdir: Path,
                  loop: Loop) -> dict:
    out: dict = {}
    port = ports["api"]
    idle = alternate(args, ports, scripts, "no stream open")
    out["status_rps_idle"], out["status_ratio_idle"] = idle["api"], idle["api"] / idle["twin"]
    out["health_p99_idle"] = health_p99(port, "4s")
    task_ids = submit(port, args.streams)
    rss_before = api_rss_mib(server)
    followers = [Follower(port, task_id) for task_id in task_ids]
    console.log(f"opening {args.streams:,} event streams on waiting tasks")

    async def open_all():
        tasks = []
        for start in range(0, len(followers), 100):  # 100 at a time: the client's own connect storm stays small
            tasks += [asyncio.ensure_future(f.run()) for f in followers[start:start + 100]]
            await asyncio.gather(*(f.opened.wait() for f in followers[start:start + 100]))
        return tasks

    opened_at = time.monotonic()
    runs = loop.run(open_all(), timeout=300)
    out["open_seconds"] = time.monotonic() - opened_at
    out["streams_ok"] = sum(1 for f in followers if f.status == 200 and f.events)
    time.sleep(1.0)
    out["rss_per_stream_kib"] = (api_rss_mib(server) - rss_before) * 1024 / max(1, out["streams_ok"])
    busy = alternate(args, ports, scripts, f"{out['streams_ok']:,} streams open")
    out["status_rps_streams"], out["status_ratio_streams"] = busy["api"], busy["api"] / busy["twin"]
    out["health_p99_streams"] = statistics.median(health_p99(port, "3s") for _ in range(args.reps))
    console.log("a worker starts: every stream follows its task to the end")
    process = worker(env, "bench_claw", workdir, "streams")
    try:
        loop.run(asyncio.wait_for(asyncio.gather(*runs, return_exceptions=True), 300))
    finally:
        stop(process)
    delays = [d for d in (f.started_delay_ms() for f in followers) if d is not None]
    out["started_events"] = len(delays)
    out["started_p50_ms"], out["started_p99_ms"] = percentile(delays, 0.5), percentile(delays, 0.99)
    out["started_max_ms"] = max(delays) if delays else float("nan")
    out["in_order"] = sum(1 for f in followers if f.in_order())
    return out


def stalled_phase(args, ports: dict[str, int], scripts: dict, header_timeout: float) -> dict:
    """Each rep opens *stalled* fresh half-requests on the measured API, then measures both APIs and /health.

    A rep lasts less than the header time-out, so its stalled connections are all still open while it
    measures; they are closed (408) during the next rep, as they would be in production.
    """
    port, sockets, rates, health = ports["api"], [], {"api": [], "twin": []}, []
    seconds = max(1, min(int(float(args.duration.rstrip("s"))), int((header_timeout - 3) / 2)))
    opened = []
    for rep in range(args.reps):
        console.log(f"{args.stalled} connections send half a request and stall, rep {rep + 1}/{args.reps}")
        for _ in range(args.stalled):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /api/v1/tasks/stats HTTP/1.1\r\nHost: bench\r\nAuthor")
            sockets.append(sock)
            opened.append(time.monotonic())
        for side in ("api", "twin"):
            rates[side].append(run_wrk(ports[side], "status lookup", scripts["status lookup"], f"{seconds}s")["rps"])
        health.append(health_p99(port, "1s"))
    closed = 0
    for sock, at in zip(sockets, opened):
        sock.settimeout(max(0.1, header_timeout + 3 - (time.monotonic() - at)))
        try:
            closed += sock.recv(64).startswith(b"HTTP/1.1 408")
        except OSError:
            pass
        sock.close()
    api, twin = statistics.median(rates["api"]), statistics.median(rates["twin"])
    return {"status_rps_stalled": api, "status_ratio_stalled": api / twin, "health_p99_stalled": statistics.median(health),
            "stalled_closed_408": closed, "stalled_total": len(sockets), "stalled_window_s": seconds}


def ai_phase(args, port: int, env: dict, workdir: Path, loop: Loop) -> dict:
    model = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    threading.Thread(target=model.serve_forever, daemon=True).start()
    ai_env = {**env, "CLAW_LLM_URL": f"http://127.0.0.1:{model.server_address[1]}/v1", "CLAW_LLM_MODEL": "stand-in",
              "CLAW_LLM_KEY": "sk-bench-stand-in-key"}
    process = worker(ai_env, "ai_high_priority", workdir, "ai")
    delays: list[float] = []
    try:
        time.sleep(3)
        for reply in range(args.ai_replies):
            console.log(f"streamed AI reply {reply + 1}/{args.ai_replies}")
            answer = requests.post(f"http://127.0.0.1:{port}/api/v1/tasks/ai/generate", timeout=30,
                                   headers={"Authorization": f"Bearer {TOKEN}"},
                                   json={"conversation_id": f"bench-{RUN}-{reply}", "user_message": "How do refunds work?"})
            answer.raise_for_status()
            follower = Follower(port, answer.json()["task_id"])
            loop.run(asyncio.wait_for(follower.run(), 120))
            seen: set[str] = set()
            for received, name, _, data in follower.events:
                text = (data.get("progress") or {}).get("text") or "" if name == "progress" else ""
                for token in text.split():
                    token += " "
                    if token in _Model.sent and token not in seen:
                        seen.add(token)
                        delays.append((received - _Model.sent[token]) * 1000)
            state = follower.events[-1][3].get("state") if follower.events else None
            if state != "SUCCESS":
                raise RuntimeError(f"the AI task ended {state}: {follower.events[-1:]}")
    finally:
        stop(process)
        model.shutdown()
    return {"ai_tokens": len(delays), "ai_p50_ms": percentile(delays, 0.5), "ai_p99_ms": percentile(delays, 0.99)}


# -- the report ------------------------------------------------------------------------------

def report(args, results: dict) -> str:
    r = results
    verdict = lambda ok: "met" if ok else "missed"  # noqa: E731
    lines = [
        f"# Event streams and stalled clients (run {RUN}, {time.strftime('%Y-%m-%d %H:%M')})",
        "",
        f"`python -m bench.streams --streams {args.streams} --stalled {args.stalled} --duration {args.duration} "
        f"--ai-replies {args.ai_replies} --reps {args.reps}`: `claw-pipeline api` with default settings (2 worker "
        f"processes), a worker of 2 processes x 8 threads, one client process holding every stream; status "
        f"lookups alternate between that API and an identical twin without streams or stalled clients "
        f"(medians of {args.reps} runs each), so load from elsewhere hits both alike; "
        f"{os.cpu_count()} CPUs shared with other work (load average {results['load'][0]:.2f} at start).",
        "",
        "| figure | value | target | result |",
        "|---|---|---|---|",
        f"| streams opened / answered 200 | {r['streams_ok']:,} / {args.streams:,} (in {r['open_seconds']:.1f} s) | all | {verdict(r['streams_ok'] == args.streams)} |",
        f"| STARTED event delay after the change, p50 / p99 / max | {r['started_p50_ms']:.0f} / {r['started_p99_ms']:.0f} / {r['started_max_ms']:.0f} ms ({r['started_events']:,} streams) | p99 <= 250 ms | {verdict(r['started_p99_ms'] <= 250 and r['started_events'] == args.streams)} |",
        f"| streams with PENDING, STARTED (id 1), SUCCESS (id 2), final record, in order | {r['in_order']:,} | all | {verdict(r['in_order'] == args.streams)} |",
        f"| status lookups, no stream open, against the twin | {r['status_rps_idle']:,.0f} req/s ({r['status_ratio_idle']:.2f}x of the twin: the calibration) | | |",
        f"| status lookups, {args.streams:,} streams open, against the twin | {r['status_rps_streams']:,.0f} req/s ({r['status_ratio_streams']:.2f}x) | >= 0.80x | {verdict(r['status_ratio_streams'] >= 0.8)} |",
        f"| /health p99, no stream / streams open | {r['health_p99_idle']:.1f} / {r['health_p99_streams']:.1f} ms | < 100 ms | {verdict(r['health_p99_streams'] < 100)} |",
        f"| API memory per open stream | {r['rss_per_stream_kib']:.1f} KiB | | |",
    ]
    if "status_rps_stalled" in r:
        lines += [
            f"| status lookups, {args.stalled} stalled half-requests, against the twin | {r['status_rps_stalled']:,.0f} req/s ({r['status_ratio_stalled']:.2f}x; runs of {r['stalled_window_s']} s) | >= 0.80x | {verdict(r['status_ratio_stalled'] >= 0.8)} |",
            f"| /health p99, {args.stalled} stalled half-requests | {r['health_p99_stalled']:.1f} ms | < 100 ms | {verdict(r['health_p99_stalled'] < 100)} |",
            f"| stalled connections answered 408 and closed by the header time-out | {r['stalled_closed_408']} / {r['stalled_total']} | all | {verdict(r['stalled_closed_408'] == r['stalled_total'])} |",
        ]
    if "ai_tokens" in r:
        lines.append(f"| streamed AI reply: model token -> `progress` event, p50 / p99 | {r['ai_p50_ms']:.0f} / {r['ai_p99_ms']:.0f} ms ({r['ai_tokens']} tokens, one per {AI_TOKEN_INTERVAL * 1000:.0f} ms; the actor publishes at most every 250 ms) | | |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--stalled", type=int, default=500)
    parser.add_argument("--duration", default="5s", help="wrk duration of each status measurement")
    parser.add_argument("--reps", type=int, default=3, help="alternated status measurements per phase")
    parser.add_argument("--ai-replies", type=int, default=3, help="streamed AI replies (0: skip; needs the knowledge extra)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    raise_open_files_limit()  # this process holds every stream
    ns = namespace("streams")
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    env = {**os.environ, "CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_API_TOKENS": f"{TOKEN}:admin",
           "CLAW_BROKER_URL": BROKER_URL, "CLAW_REDIS_URL": REDIS_URL, "CLAW_TASK_MODULES": "bench.tasks",
           "PYTHONPATH": str(ROOT)}
    results: dict = {"load": os.getloadavg()}
    loop = Loop()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-streams-") as tmp:
            workdir = Path(tmp)
            ids = load(client, ns, 10_000, QUEUE_PREFIX)
            scripts = wrk_scripts(workdir, 10_000, ids)
            server = ApiServer(ns, workdir, task_modules="bench.tasks")
            twin = ApiServer(ns, workdir, task_modules="bench.tasks", name="-twin")
            try:
                ports = {"api": server.wait_ready(), "twin": twin.wait_ready()}
                results.update(streams_phase(args, server, ports, scripts, env, workdir, loop))
                if args.stalled:
                    results.update(stalled_phase(args, ports, scripts, get_settings().api_header_timeout_seconds))
                if args.ai_replies:
                    results.update(ai_phase(args, ports["api"], env, workdir, loop))
            finally:
                stop(server.process, twin.process)
    finally:
        loop.close()
        purge_queues(QUEUE_PREFIX + "bench_claw", QUEUE_PREFIX + "ai_high_priority")
        clean_run()
    text = report(args, results)
    console.print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "streams.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
