"""The Python SDK (clients/python) against the real stack: gunicorn API, a real worker, RabbitMQ and Redis.

Sync and async: submit, get, list (every page), wait (from the event stream), stream (resumed with
Last-Event-ID when the server ends it), cancel, retry, the inbox, workers, stats, schedules; a wait that
times out; 503/429 sent again after Retry-After; a lost answer re-sent with the same idempotency key.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from claw_client import (
    AsyncClient,
    Conflict,
    Client,
    NotFound,
    Retries,
    TaskFailed,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)

from tests import sample_tasks
from tests.api.conftest import TOKENS, TOKENS_ENV, Server
from tests.app_client import run_async
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(180)
FAST = Retries(attempts=4, backoff=0.05, max_delay=0.5)


@pytest.fixture
def stack(env, engine, start_worker):
    """API (1 worker process; event streams end after 2 s, so clients must resume) and a task worker."""
    server = Server({**env, "CLAW_API_TOKENS": TOKENS_ENV, "CLAW_API_STREAM_MAX_SECONDS": "2"}, workers=1)
    start_worker(queues=(sample_tasks.QUEUE, "notification_default"))
    yield server
    server.close()


def client(server: Server, role: str = "admin", **kwargs) -> Client:
    return Client(server.url, TOKENS[role], retries=FAST, **kwargs)


def test_sync_client_submits_follows_and_manages_tasks(stack):
    with client(stack) as claw:
        assert claw.get_health().status == "ok"
        accepted = claw.submit("send_notification", channel="system", recipient="sdk-user", body="你好 from the SDK")
        record = claw.wait(accepted.task_id, timeout=60)
        assert record.state == "SUCCESS" and record.request_id
        inbox = list(claw.notifications("sdk-user"))
        assert [item.body for item in inbox] == ["你好 from the SDK"] and not inbox[0].read
        assert claw.mark_notifications_read("sdk-user", all=True).marked == 1

        bulk = claw.submit_bulk(tasks=[{"actor": "echo", "kwargs": {"value": i}} for i in range(5)])
        assert bulk.count == 5
        assert [claw.result(task_id, timeout=60)["value"] for task_id in bulk.task_ids] == list(range(5))
        listed = [task.task_id for task in claw.list(actor="echo", page_size=2)]
        assert sorted(listed) == sorted(bulk.task_ids)  # three pages, every task once

        failing = claw.submit_bulk(tasks=[{"actor": "always_fails", "kwargs": {"message": "sdk"}}]).task_ids[0]
        with pytest.raises(TaskFailed, match="ValueError: sdk"):
            claw.result(failing, timeout=60)
        assert any(task.task_id == failing for task in claw.dead_letters(actor="always_fails"))

        slow = claw.submit_bulk(tasks=[{"actor": "spin", "kwargs": {"seconds": 30}}]).task_ids[0]
        started = time.monotonic()
        with pytest.raises(WaitTimeout):
            claw.wait(slow, timeout=1.0)
        assert time.monotonic() - started < 5
        assert claw.cancel(slow).task_id == slow
        assert claw.wait(slow, timeout=60).state == "CANCELLED"
        again = claw.retry(slow)
        assert again.retry_of == slow and claw.get(again.task_id).retry_of == slow
        claw.cancel(again.task_id)

        assert claw.list_workers().count >= 1 and claw.list_workers().workers[0].queues
        assert claw.get_task_stats().states
        schedule = claw.create_schedule(id=f"sdk-{uuid.uuid4().hex[:6]}", actor="echo", interval_seconds=3600,
                                        kwargs={"value": 1}, enabled=False)
        assert claw.update_schedule(schedule.id, enabled=True).enabled
        assert schedule.id in {s.id for s in claw.list_schedules().schedules}
        assert claw.delete_schedule(schedule.id) is None
        with pytest.raises(NotFound) as missing:
            claw.get(str(uuid.uuid4()))
        assert missing.value.request_id
    with pytest.raises(Unauthorized):
        Client(stack.url, "not-a-token-of-this-api").get_task_stats()


def test_stream_resumes_with_last_event_id_across_server_ended_streams(stack):
    with client(stack) as claw:
        task_id = claw.submit_bulk(tasks=[{"actor": "spin", "kwargs": {"seconds": 5}}]).task_ids[0]
        events = list(claw.stream(task_id))
    states = [(e.id, e.data.state) for e in events if e.event == "state"]
    assert [state for _, state in states] == ["STARTED", "SUCCESS"] or states[-1][1] == "SUCCESS"
    ids = [int(i) for i, _ in states]
    assert ids == sorted(set(ids))  # each change once, in order, though the server ended the stream twice or more
    assert events[-1].final and events[-1].data.state == "SUCCESS"
    # It really reconnected (each stream is logged when it ends, the last one just after its final event).
    wait_until(lambda: stack.output().count(f"/api/v1/tasks/{task_id}/events") >= 3, 10, message="three streams")


class Front(httpx.BaseTransport):
    """In front of the real API: answers the first requests itself (503/429 with Retry-After), or forwards a
    request and loses its answer (a 502, as a proxy would): what the client must recover from."""

    def __init__(self, refuse: list[int], lose_answer: int = 0):
        self.real = httpx.HTTPTransport()
        self.refuse = list(refuse)
        self.lose_answer = lose_answer
        self.request_ids: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.request_ids.append(request.headers["X-Request-ID"])
        if self.refuse:
            return httpx.Response(self.refuse.pop(0), headers={"Retry-After": "0.1"},
                                  json={"error": {"status": 503, "title": "Busy", "description": "retry later"}})
        response = self.real.handle_request(request)
        if self.lose_answer:
            self.lose_answer -= 1
            response.read()
            return httpx.Response(502, text="bad gateway")
        return response


def test_refused_requests_are_sent_again_after_retry_after_with_the_same_request_id(stack):
    front = Front([503, 429, 503])
    with client(stack, transport=front) as claw:
        assert claw.get_task_stats().workers_online >= 1
    assert len(front.request_ids) == 4 and len(set(front.request_ids)) == 1
    with client(stack, transport=Front([503] * 10)) as claw, pytest.raises(Unavailable) as refused:
        claw.get_task_stats()
    assert refused.value.retry_after == 0.1


def test_a_submission_whose_answer_was_lost_is_resent_with_its_idempotency_key_and_runs_once(stack, engine):
    front = Front([], lose_answer=1)
    conversation = f"sdk-{uuid.uuid4().hex[:8]}"
    with client(stack, transport=front) as claw:
        accepted = claw.submit_send_notification(channel="system", recipient=conversation, body="once")
        assert claw.wait(accepted.task_id, timeout=60).state == "SUCCESS"
        assert len(list(claw.notifications(conversation))) == 1
    tasks, _ = engine.store.list(limit=50, actor="send_notification")
    assert sum(1 for task in tasks if task["kwargs"].get("recipient") == conversation) == 1
    assert engine.store.get(accepted.task_id)["idempotency_key"].startswith("claw-client-")


def test_async_client_submits_waits_streams_lists_and_cancels(stack):
    async def scenario():
        async with AsyncClient(stack.url, TOKENS["admin"], retries=FAST) as claw:
            bulk = await claw.submit_bulk(tasks=[{"actor": "echo", "kwargs": {"value": i}} for i in range(3)])
            results = [await claw.result(task_id, timeout=60) for task_id in bulk.task_ids]
            listed = [task.task_id async for task in claw.list(actor="echo", page_size=2)]
            slow = (await claw.submit_bulk(tasks=[{"actor": "spin", "kwargs": {"seconds": 30}}])).task_ids[0]
            try:
                await claw.wait(slow, timeout=1.0)
                timed_out = False
            except WaitTimeout:
                timed_out = True
            await claw.cancel(slow)
            events = [event async for event in claw.stream(slow)]
            spin = (await claw.submit_bulk(tasks=[{"actor": "spin", "kwargs": {"seconds": 4}}])).task_ids[0]
            followed = [event async for event in claw.stream(spin)]
            return results, listed, bulk.task_ids, timed_out, events, followed

    results, listed, submitted, timed_out, events, followed = run_async(scenario(), 150)
    assert [r["value"] for r in results] == [0, 1, 2]
    assert sorted(listed) == sorted(submitted)
    assert timed_out
    assert events[-1].final and events[-1].data.state == "CANCELLED"
    assert followed[-1].data.state == "SUCCESS"
    ids = [int(e.id) for e in followed if e.event == "state"]
    assert ids == sorted(set(ids))


def test_workflows_through_the_sdk_submit_follow_and_page_their_tasks(stack):
    with client(stack) as claw:
        accepted = claw.submit_workflow(kind="group", members=[{"actor": "echo", "kwargs": {"value": i}} for i in range(5)])
        assert accepted.total == 5 and accepted.kind == "group"
        done = wait_until(lambda: (w := claw.get_workflow(accepted.workflow_id)).state == "SUCCESS" and w, 60,
                          message="the group to finish")
        assert done.counts["succeeded"] == 5 and done.percent == 100
        first = claw.get_workflow(accepted.workflow_id, limit=2)
        second = claw.get_workflow(accepted.workflow_id, limit=2, cursor=first.next_cursor)
        last = claw.get_workflow(accepted.workflow_id, limit=2, cursor=second.next_cursor)
        assert [m.index for m in first.members + second.members + last.members] == [0, 1, 2, 3, 4]
        assert last.next_cursor is None
        with pytest.raises(Conflict):
            claw.retry_workflow(accepted.workflow_id)  # nothing failed
