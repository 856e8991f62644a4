"""The real thing: gunicorn serving the API, a real worker, driven over HTTP with requests."""

import json
import os
import re
import signal
import time
from pathlib import Path

from tests import sample_tasks
from tests.api.conftest import QUEUE, TOKENS, TOKENS_ENV, Server
from tests.conftest import queue_depth, wait_until


def wait_for(server, task_id: str, states, timeout: float = 30) -> dict:
    states = (states,) if isinstance(states, str) else states
    return wait_until(
        lambda: (r := server.call("GET", f"/api/v1/tasks/status/{task_id}", "read").json())["state"] in states and r,
        timeout, interval=0.1, message=f"{task_id} to reach {states}",
    )


def read_events(response) -> list[tuple[str, dict]]:
    """Parse a server-sent event stream until the server ends it."""
    events, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, json.loads(line[6:])))
    return events


def test_bulk_tasks_run_to_success_or_fail_after_retries_and_stream_their_events(server, start_worker):
    start_worker()
    submitted = server.call("POST", "/api/v1/tasks/bulk", "submit", json={"tasks": [
        {"actor": "cooperative", "kwargs": {"seconds": 1}},
        {"actor": "echo", "kwargs": {"value": "hello"}, "priority": 5},
        {"actor": "always_fails", "kwargs": {"message": "kaputt"}},
    ]})
    assert submitted.status_code == 202
    slow, echo, failing = submitted.json()["task_ids"]

    with server.call("GET", f"/api/v1/tasks/{slow}/events", "read", stream=True) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = read_events(stream)
    names = [name for name, _ in events]
    assert names[0] == "record" and names[-1] == "record" and "progress" in names
    assert events[0][1]["state"] in ("PENDING", "STARTED")  # the worker may have been quicker than us
    assert [data["state"] for name, data in events if name == "state"][-1] == "SUCCESS"
    assert events[-1][1]["state"] == "SUCCESS" and events[-1][1]["result"] == "finished"

    record = wait_for(server, echo, "SUCCESS")
    assert record["result"] == {"value": "hello", "had_password": False} and record["attempts"] == 1
    failed = wait_for(server, failing, "FAILURE")
    assert failed["attempts"] == 3 and failed["error"]["message"] == "kaputt"
    listed = server.call("GET", "/api/v1/tasks/list", "read", params={"state": "FAILURE"}).json()["tasks"]
    assert [t["task_id"] for t in listed] == [failing]
    stats = server.call("GET", "/api/v1/tasks/stats", "read").json()
    assert stats["workers_online"] >= 1 and stats["throughput"]["last_minute"]["SUCCESS"] == 2
    assert stats["actors"]["echo"]["runtime_ms"]["samples"] == 1


def test_cancel_pending_and_running_tasks_then_retry_one(server, start_worker):
    start_worker()
    delayed = server.call("POST", "/api/v1/tasks/bulk", "submit",
                          json={"tasks": [{"actor": "echo", "kwargs": {"value": 7}, "delay_seconds": 30}]}).json()["task_ids"][0]
    cancelled = server.call("POST", f"/api/v1/tasks/cancel/{delayed}")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLED"

    running = server.call("POST", "/api/v1/tasks/bulk", "submit",
                          json={"tasks": [{"actor": "spin", "kwargs": {"seconds": 60}}]}).json()["task_ids"][0]
    wait_for(server, running, "STARTED")
    interrupting = server.call("POST", f"/api/v1/tasks/cancel/{running}").json()
    assert interrupting == {"task_id": running, "state": "STARTED", "cancel_requested": True}
    assert wait_for(server, running, "CANCELLED", timeout=15)["error"]["type"] == "TaskCancelled"
    refused = server.call("POST", f"/api/v1/tasks/cancel/{running}")
    assert refused.status_code == 409 and refused.json()["error"]["state"] == "CANCELLED"

    retried = server.call("POST", f"/api/v1/tasks/retry/{delayed}")
    assert retried.status_code == 202
    rerun = wait_for(server, retried.json()["task_id"], "SUCCESS")
    assert rerun["result"]["value"] == 7 and rerun["retry_of"] == delayed


def test_dead_letters_are_listed_and_requeued_to_run_again(server, start_worker, namespace):
    start_worker()
    dead_letters = f"{sample_tasks.QUEUE}.XQ"
    body = {"tasks": [{"actor": "fails_then_succeeds", "kwargs": {"counter_key": f"{namespace}:n", "failures": 4}},
                      {"actor": "always_fails"}]}
    flaky, broken = server.call("POST", "/api/v1/tasks/bulk", "submit", json=body).json()["task_ids"]
    wait_for(server, flaky, "FAILURE")
    wait_for(server, broken, "FAILURE")
    wait_until(lambda: queue_depth(dead_letters) == 2, 10, message="two dead letters")
    dead = server.call("GET", "/api/v1/tasks/dead", "read", params={"queue": QUEUE}).json()
    assert {t["task_id"] for t in dead["tasks"]} == {flaky, broken}

    one = server.call("POST", "/api/v1/tasks/dead/requeue", json={"queue": QUEUE, "task_ids": [flaky]})
    assert one.json() == {"queue": QUEUE, "requeued": 1}
    record = wait_for(server, flaky, "SUCCESS")  # its fifth attempt succeeds
    assert record["attempts"] == 1 and record["result"] == "ok" and "error" not in record
    assert queue_depth(dead_letters) == 1  # the other one was put back

    again = server.call("POST", f"/api/v1/tasks/retry/{broken}").json()["task_id"]  # retried by hand...
    wait_for(server, again, "FAILURE")
    wait_until(lambda: queue_depth(dead_letters) == 2, 10, message="the retry's dead letter")
    everything = server.call("POST", "/api/v1/tasks/dead/requeue", json={"queue": QUEUE})
    assert everything.json()["requeued"] == 1  # ...so only its retry is requeued, never the original again
    assert server.call("GET", f"/api/v1/tasks/status/{broken}", "read").json()["state"] == "FAILURE"
    wait_for(server, again, "FAILURE")


def test_workers_are_listed_and_a_pool_restart_replaces_them(server, start_worker):
    start_worker("--processes", "1")
    workers = server.call("GET", "/api/v1/tasks/workers", "read").json()
    assert workers["count"] == 1
    worker = workers["workers"][0]
    unknown = server.call("POST", "/api/v1/tasks/workers/pool/restart", json={"worker": "elsewhere:1"})
    assert unknown.status_code == 404
    sent = server.call("POST", "/api/v1/tasks/workers/pool/restart", json={"worker": worker["id"]})
    assert sent.status_code == 202 and sent.json()["processes_notified"] == 1
    wait_until(lambda: [w["pid"] for w in server.call("GET", "/api/v1/tasks/workers", "read").json()["workers"]]
               not in ([], [worker["pid"]]), 20, message="a new worker process")


def test_auth_limits_and_bad_input_over_http_and_no_token_in_the_access_log(server):
    assert server.call("GET", "/api/v1/tasks/stats", None).status_code == 401
    assert server.call("POST", "/api/v1/tasks/bulk", "read", json={"tasks": [{"actor": "echo"}]}).status_code == 403
    assert server.call("POST", "/api/v1/tasks/cancel/x", "submit").status_code == 403
    assert server.call("GET", "/api/v1/tasks/list", "read", params={"limit": 501}).json()["error"]["fields"] == {
        "limit": "Input should be less than or equal to 500"}
    malformed = server.call("POST", "/api/v1/tasks/bulk", "submit", data=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400

    def chunks(total: int):
        for start in range(0, total, 65536):
            yield b" " * min(65536, total - start)

    too_big = server.call("POST", "/api/v1/tasks/bulk", "submit", data=chunks(2 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413
    small = server.call("POST", "/api/v1/tasks/bulk", "submit", data=iter([b'{"tasks": [{"actor": ', b'"echo"}]}']),
                        headers={"Content-Type": "application/json"})
    assert small.status_code == 202, small.text  # a chunked body is read, not mistaken for an empty one
    assert server.call("GET", "/ready", None).json()["status"] == "ready"
    assert server.call("GET", "/docs", None).status_code == 200
    time.sleep(0.5)
    log = server.output()
    assert '"GET /api/v1/tasks/stats HTTP/1.1" 401' in log
    assert not any(token in log for token in TOKENS.values())


def test_request_metrics_add_up_across_gunicorn_workers_in_multiprocess_mode(env, engine, tmp_path):
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})

    def list_20_times() -> set[str]:
        before = len(server.output())
        for _ in range(20):
            assert server.call("GET", "/api/v1/tasks/list", "read").status_code == 200
        time.sleep(0.2)
        return set(re.findall(r'"GET /api/v1/tasks/list HTTP/1.1" 200 .* pid=<(\d+)>', server.output()[before:]))

    try:
        first = list_20_times()
        for pid in first:  # as a replaced worker (gunicorn restarts it): it goes, its counts must stay
            os.kill(int(pid), signal.SIGTERM)
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in first), 20, message="the worker to exit")
        assert not first & list_20_times()
        line = 'claw_api_requests_total{method="GET",route="/api/v1/tasks/list",status="200"} 40.0'
        text = server.call("GET", "/metrics", "read").text
        assert line in text and 'claw_tasks{state="PENDING"}' in text
    finally:
        server.close()
