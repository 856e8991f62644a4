"""A user token against a service token on the same API: submit, status and list, alternated, in one run.

    python -m bench.ownership [--records 100000] [--user-tasks 500] [--reps 3] [--duration 10s]

One namespace holds ``--records`` tasks of nobody in particular (loaded
straight into Redis, :mod:`bench.load_records`) and ``--user-tasks`` of one
user (submitted for them). One API (2 worker processes, as ``claw-pipeline
api`` runs it) serves both tokens; each rep runs every endpoint with the
service token, then with the user token (``wrk -t2 -c16``), so whatever else
loads the machine hits both alike:

* submit: ``POST /api/v1/tasks/ai/generate`` into the user's conversation
  (service: naming the user; user: its own). Both check the conversation's
  owner (cached after the first); the user token's is verified (cached too)
  and counted against its quota (one Redis script);
* status: the user's tasks by id;
* list: a page of 50: the user token from the user's own index, the service
  token from the global one (``--records`` entries) and from the user's
  (``?user_id=``).

Prints req/s and p99 per endpoint and the ratio user/service; writes the
table to ``--out`` (``bench/results/ownership.md``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
import requests

from bench.api import TOKEN, ApiServer, compared, forget_submitted, run_wrk_path, wrk_arguments
from bench.common import BROKER_URL, QUEUE_PREFIX, REDIS_URL, RUN, clean_run, console, delete_namespace, namespace, purge_queues, report, stop
from bench.load_records import load

USER = f"bench-user-{RUN}"
CONVERSATION = f"bench-conversation-{RUN}"
SIDES = ("service", "user")
ENDPOINTS = ("submit", "status lookup", "list (limit 50)", "list of one user (limit 50)")


def scripts(workdir: Path, user_token: str, ids: list[str]) -> dict[tuple[str, str], tuple[str, Path]]:
    """(endpoint, side) -> (path wrk is pointed at, its Lua script)."""
    tokens = {"service": TOKEN, "user": user_token}
    found = {}
    for side in SIDES:
        auth = f'wrk.headers["Authorization"] = "Bearer {tokens[side]}"\n'
        body = {"conversation_id": CONVERSATION, "user_message": "How long do refunds take?",
                **({"user_id": USER} if side == "service" else {})}
        texts = {
            "submit": ("/api/v1/tasks/ai/generate", f'wrk.method = "POST"\n{auth}wrk.headers["Content-Type"] = '
                                                    f'"application/json"\nwrk.body = \'{json.dumps(body)}\'\n'),
            "status lookup": ("/", f"local ids = {{{','.join(json.dumps(i) for i in ids)}}}\n{auth}"
                                   'request = function() return wrk.format("GET", "/api/v1/tasks/status/" .. '
                                   "ids[math.random(#ids)]) end\n"),
            "list (limit 50)": ("/api/v1/tasks/list?limit=50", auth),
            "list of one user (limit 50)": (f"/api/v1/tasks/list?limit=50{'&user_id=' + USER if side == 'service' else ''}",
                                            auth),
        }
        for endpoint, (path, text) in texts.items():
            script = workdir / f"{side}-{endpoint.split()[0]}-{len(found)}.lua"
            script.write_text(text)
            found[(endpoint, side)] = (path, script)
    return found


def claim_conversation() -> None:
    """The user's conversation exists (a steady chat): its owner is looked up once, then cached by the API."""
    from pipeline.knowledge import db, store

    with db.connection() as conn:
        store.claim_conversation(conn, CONVERSATION, USER, None)


def forget_conversation() -> None:
    from pipeline.knowledge import db

    with db.connection() as conn:
        conn.execute("DELETE FROM conversations WHERE id = %s", (CONVERSATION,))


def main(argv: list[str] | None = None) -> int:
    parser = wrk_arguments(__doc__, records=100_000, out="ownership.md")
    parser.add_argument("--user-tasks", type=int, default=500)
    args = parser.parse_args(argv)
    from pipeline import client as claw
    from pipeline.engine import make_engine
    from pipeline.settings import load_settings

    redis_client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    ns = namespace("owners")
    env = {"CLAW_NAMESPACE": ns, "CLAW_QUEUE_PREFIX": QUEUE_PREFIX, "CLAW_REDIS_URL": REDIS_URL, "CLAW_BROKER_URL": BROKER_URL,
           "CLAW_USER_TOKEN_KEYS": f"bench:{uuid.uuid4().hex}{uuid.uuid4().hex}", "CLAW_USER_AI_QUOTA": "100000000/m"}
    results = {(endpoint, side): [] for endpoint in ENDPOINTS for side in SIDES}
    engine = make_engine(load_settings(namespace=ns, queue_prefix=QUEUE_PREFIX, redis_url=REDIS_URL, broker_url=BROKER_URL))
    try:
        with tempfile.TemporaryDirectory(prefix="bench-owners-") as tmp:
            workdir = Path(tmp)
            load(redis_client, ns, args.records, QUEUE_PREFIX)
            ids = []
            for start in range(0, args.user_tasks, 1000):
                ids += claw.submit_many([{"actor": "send_notification", "user_id": USER, "kwargs": {
                    "channel": "system", "recipient": USER, "body": f"hello {i}"}}
                    for i in range(start, min(args.user_tasks, start + 1000))], engine=engine)
            purge_queues(QUEUE_PREFIX + "notification_default")
            claim_conversation()
            loaded_at = time.time()
            server = ApiServer(ns, workdir, extra_env=env)
            try:
                port = server.wait_ready()
                minted = requests.post(f"http://127.0.0.1:{port}/api/v1/auth/user-tokens", timeout=10,
                                       headers={"Authorization": f"Bearer {TOKEN}"}, json={"user_id": USER, "ttl_seconds": 3600})
                minted.raise_for_status()
                runs = scripts(workdir, minted.json()["token"], ids)
                for rep in range(args.reps):
                    for endpoint in ENDPOINTS:
                        for side in SIDES:
                            console.log(f"rep {rep + 1}/{args.reps} {endpoint}: {side} token")
                            path, script = runs[(endpoint, side)]
                            results[(endpoint, side)].append(run_wrk_path(port, path, script, args.duration))
                            if endpoint == "submit":
                                forget_submitted(redis_client, ns, loaded_at, "ai_high_priority")
            finally:
                stop(server.process)
    finally:
        engine.close()
        forget_conversation()
        delete_namespace(redis_client, ns)
        clean_run()
    load_average = os.getloadavg()[0]
    lines = [f"# A user token against a service token (run {RUN}), alternated, {args.reps} reps x {args.duration}, "
             f"{args.records:,} records of others + {args.user_tasks:,} of the user, wrk -t2 -c16, 2 API worker "
             f"processes; load average {load_average:.1f} at the end (a shared machine: compare within the run)",
             "", "| endpoint | service token req/s | user token req/s | user/service | p99 ms (service / user) | errors (service/user) |",
             "|---|---|---|---|---|---|"]
    for endpoint in ENDPOINTS:
        cells = compared(*(results[(endpoint, side)] for side in SIDES))
        lines.append(f"| {endpoint} | {cells['rps'][0]} | {cells['rps'][1]} | {cells['ratio']} | "
                     f"{cells['p99'][0]} / {cells['p99'][1]} | {cells['errors']} |")
    lines += ["", "`list (limit 50)`: the service token pages the global index (every record), the user token its own; "
                  "`list of one user`: both page the user's index (the service token with `?user_id=`)."]
    report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
