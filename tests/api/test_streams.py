"""Event streams and the front door against the real server: ``claw-pipeline api``, a real worker, Redis, RabbitMQ.

Streams are read with :mod:`bench.sse` (asyncio sockets): 200 at once from
one test process, no thread each.
"""

from __future__ import annotations

import asyncio
import socket
import time

import requests

from bench.sse import Stream
from tests.api.conftest import TOKENS, TOKENS_ENV, Server
from tests.app_client import run_async
from tests.conftest import wait_until

READ = TOKENS["read"]


def submit(server, count: int, actor: str = "echo", **kwargs) -> list[str]:
    body = {"tasks": [{"actor": actor, "kwargs": kwargs} for _ in range(count)]}
    answer = server.call("POST", "/api/v1/tasks/bulk", "submit", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["task_ids"]


async def follow(port: int, task_id: str, last_event_id: str | None = None) -> list:
    stream = await Stream.open(port, f"/api/v1/tasks/{task_id}/events", READ, last_event_id)
    assert stream.status == 200, stream.body
    try:
        return [event async for event in stream.events()]
    finally:
        stream.close()


def test_two_hundred_streams_at_once_each_get_their_task_events_in_order_and_the_final_record(server, start_worker):
    task_ids = submit(server, 200)

    async def scenario():
        streams = [asyncio.create_task(follow(server.port, task_id)) for task_id in task_ids]
        await asyncio.sleep(1.0)  # every stream is open on a PENDING task
        assert not any(stream.done() for stream in streams)
        await asyncio.to_thread(start_worker)
        return await asyncio.gather(*streams)

    for task_id, events in zip(task_ids, run_async(scenario())):
        first, last = events[0], events[-1]
        assert first.event == "record" and first.json()["state"] == "PENDING" and first.id == "0"
        states = [event for event in events if event.event == "state"]
        assert [event.json()["state"] for event in states] == ["STARTED", "SUCCESS"]
        assert [event.id for event in states] == ["1", "2"]  # numbered in order, none missing
        assert last.event == "record" and last.json()["state"] == "SUCCESS" and last.json()["task_id"] == task_id


def test_a_client_reconnecting_with_last_event_id_misses_no_state_change(server, start_worker, namespace):
    (task_id,) = submit(server, 1, "fails_then_succeeds", counter_key=f"{namespace}:n", failures=1)

    async def first_look():
        stream = await Stream.open(server.port, f"/api/v1/tasks/{task_id}/events", READ)
        async for event in stream.events():
            stream.close()  # the browser tab goes away after the first event
            return event

    opening = run_async(first_look())
    assert opening.event == "record" and opening.id == "0"
    start_worker()  # meanwhile: STARTED, RETRY, STARTED, SUCCESS
    wait_until(lambda: server.call("GET", f"/api/v1/tasks/status/{task_id}", "read").json()["state"] == "SUCCESS",
               30, message="the task to succeed after one retry")
    events = run_async(follow(server.port, task_id, last_event_id=opening.id))
    states = [(event.id, event.json()["state"]) for event in events if event.event == "state"]
    assert states == [("1", "STARTED"), ("2", "RETRY"), ("3", "STARTED"), ("4", "SUCCESS")]
    assert events[-1].event == "record" and events[-1].json()["attempts"] == 2


def test_streams_beyond_the_cap_are_answered_503_with_retry_after_and_a_freed_slot_is_reused(env, engine):
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_API_MAX_STREAMS": "3"}, workers=1)
    try:
        task_ids = submit(server, 5)

        async def scenario():
            held = [await Stream.open(server.port, f"/api/v1/tasks/{task_id}/events", READ) for task_id in task_ids[:3]]
            refused = await Stream.open(server.port, f"/api/v1/tasks/{task_ids[3]}/events", READ)
            held[0].close()  # the server notices at once that the client left, not at the next keep-alive (15 s)
            for _ in range(50):
                await asyncio.sleep(0.1)
                admitted = await Stream.open(server.port, f"/api/v1/tasks/{task_ids[4]}/events", READ)
                if admitted.status == 200:
                    break
                admitted.close()
            for stream in (*held[1:], admitted):
                stream.close()
            return [s.status for s in held], refused, admitted.status

        held, refused, admitted = run_async(scenario(), 30)
        assert held == [200, 200, 200] and admitted == 200
        assert refused.status == 503 and refused.headers["retry-after"] == "5"
        assert b"CLAW_API_MAX_STREAMS" in refused.body
        assert requests.get(f"{server.url}/health", timeout=2).ok
    finally:
        server.close()


def test_a_half_sent_request_is_closed_after_the_header_timeout_while_others_are_served(env, engine):
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_API_HEADER_TIMEOUT_SECONDS": "1",
                     "CLAW_API_BODY_TIMEOUT_SECONDS": "1"}, workers=1)
    try:
        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(b"GET /api/v1/tasks/stats HTTP/1.1\r\nHost: x\r\nAuthoriz")  # and then nothing
        silent = socket.create_connection(("127.0.0.1", server.port))  # not a byte
        body = socket.create_connection(("127.0.0.1", server.port))
        body.sendall(b"POST /api/v1/tasks/bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKENS["submit"].encode() +
                     b"\r\nContent-Length: 100\r\n\r\n{\"tasks\"")  # 8 of 100 bytes
        started = time.monotonic()
        for _ in range(5):  # everyone else is served meanwhile
            assert requests.get(f"{server.url}/health", timeout=2).ok
            assert server.call("GET", "/api/v1/tasks/stats", "read").status_code == 200
        for sock in (half, silent, body):
            sock.settimeout(5)
            answer = b""
            while chunk := sock.recv(4096):  # until the server closes it
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408 ") and b"connection: close" in answer.lower(), answer
            sock.close()
        assert 0.9 < time.monotonic() - started < 4
        assert requests.get(f"{server.url}/health", timeout=2).ok
    finally:
        server.close()


def test_a_kept_alive_connection_is_closed_after_its_request_limit(env, engine):
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_API_KEEPALIVE_MAX_REQUESTS": "3"}, workers=1)
    try:
        with requests.Session() as session:
            answers = [session.get(f"{server.url}/health", timeout=2) for _ in range(3)]
        assert [a.headers.get("connection") for a in answers] == [None, None, "close"]
    finally:
        server.close()
