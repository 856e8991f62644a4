"""Every page renders real data, and every action does what its button says."""

from __future__ import annotations

import json
import time

import pytest

from pipeline import client
from tests import sample_tasks
from tests.conftest import QUEUE_PREFIX, queue_depth, wait_for_state, wait_until

QUEUE = QUEUE_PREFIX + sample_tasks.QUEUE
IDLE_QUEUE = QUEUE_PREFIX + sample_tasks.PRIORITY_QUEUE  # no worker consumes it in these tests


@pytest.fixture
def admin(as_role):
    return as_role("admin")


@pytest.fixture
def history(engine, start_worker):
    """Tasks in every interesting state, made by a real worker."""
    start_worker()
    tasks = {
        "success": client.submit("echo", kwargs={"value": "needle-in-args", "password": "s3cr3t-pw"}),
        "failure": client.submit("always_fails", kwargs={"message": "dashboard boom"}),
        "pending": client.submit("record_order", kwargs={"list_key": "k", "tag": "waiting"}),
        "delayed": client.submit("echo", kwargs={"value": "later"}, delay_ms=600_000),
    }
    wait_for_state(engine, tasks["success"], "SUCCESS")
    wait_for_state(engine, tasks["failure"], "FAILURE")
    wait_until(lambda: queue_depth(sample_tasks.QUEUE + ".XQ") == 1, message="the failed message to be dead-lettered")
    return tasks


def test_overview_and_its_json_show_states_queues_workers_and_throughput(admin, engine, history):
    page = admin.get("/dashboard/")
    assert page.status_code == 200
    assert 'data-bind="states|FAILURE">1<' in page.text
    data = admin.get("/dashboard/api/overview").json
    assert data["states"]["SUCCESS"] == 1 and data["states"]["FAILURE"] == 1
    assert data["workers_online"] == len(engine.workers.list()) >= 1
    # RabbitMQ's management API samples every ~5 s: its numbers catch up, they are never invented
    wait_until(lambda: admin.get("/dashboard/api/overview").json["queues"][QUEUE]["dead_lettered"] == 1, 15,
               interval=0.5, message="RabbitMQ to report the dead-lettered message")
    assert data["queues"][IDLE_QUEUE]["pending"] == 1
    assert len(data["series"]) == 60 and data["last_hour"] == {"SUCCESS": 1, "FAILURE": 1, "CANCELLED": 0}


def test_task_list_filters_pages_and_searches(admin, engine, history):
    page = admin.get("/dashboard/tasks?state=FAILURE")
    assert history["failure"] in page.text and history["success"] not in page.text
    page = admin.get(f"/dashboard/tasks?actor=echo&queue={QUEUE}&range=1h")
    assert history["success"] in page.text and history["failure"] not in page.text
    assert history["success"] not in admin.get("/dashboard/tasks?until=2000-01-01T00:00").text
    assert admin.get("/dashboard/tasks?state=NOPE").status_code == 400

    found = admin.get("/dashboard/tasks?q=needle-in")
    assert history["success"] in found.text and "most recent" in found.text and history["failure"] not in found.text
    assert admin.get("/dashboard/tasks?q=s3cr3t-pw").text.count('href="/dashboard/tasks/') == 0  # redacted: not searchable
    exact = admin.get(f"/dashboard/tasks?q={history['failure']}")
    assert exact.status_code == 303 and exact.headers["location"] == f"/dashboard/tasks/{history['failure']}"

    for _ in range(3):
        client.submit("record_order", kwargs={"list_key": "k", "tag": "more"})
    first = admin.get("/dashboard/tasks?state=PENDING")
    assert "Older »" not in first.text  # 4 pending + 1 delayed fit on one page
    assert admin.get("/dashboard/tasks?cursor=not-a-cursor").status_code == 400


def test_task_page_shows_arguments_redacted_result_error_and_links(admin, engine, history):
    done = admin.get(f"/dashboard/tasks/{history['success']}")
    assert done.status_code == 200 and "needle-in-args" in done.text
    assert "s3cr3t-pw" not in done.text and "***" in done.text
    assert "Result" in done.text and "had_password" in done.text
    failed = admin.get(f"/dashboard/tasks/{history['failure']}")
    assert "dashboard boom" in failed.text and "Traceback" in failed.text and "Retry as a new task" in failed.text
    new_id = client.retry(history["failure"])
    assert f'href="/dashboard/tasks/{new_id}"' in admin.get(f"/dashboard/tasks/{history['failure']}").text
    assert f'href="/dashboard/tasks/{history["failure"]}"' in admin.get(f"/dashboard/tasks/{new_id}").text
    assert admin.get("/dashboard/tasks/no-such-task").status_code == 404
    assert admin.get(f"/dashboard/api/tasks/{history['success']}").json["state"] == "SUCCESS"


def test_cancel_of_a_finished_task_says_why_it_cannot(admin, history):
    admin.get(f"/dashboard/tasks/{history['success']}")
    result = admin.post(f"/dashboard/tasks/{history['success']}/cancel")
    assert result.status_code == 409 and "already finished as SUCCESS" in result.text


def test_queue_tabs_list_standard_delayed_and_failed_tasks(admin, history):
    assert admin.get("/dashboard/queues").status_code == 200
    standard = admin.get(f"/dashboard/queues/{IDLE_QUEUE}?tab=standard")
    assert history["pending"][:8] in standard.text
    delayed = admin.get(f"/dashboard/queues/{QUEUE}?tab=delayed")
    assert history["delayed"][:8] in delayed.text and history["success"][:8] not in delayed.text
    assert history["delayed"][:8] not in admin.get(f"/dashboard/queues/{QUEUE}?tab=standard").text
    failed = admin.get(f"/dashboard/queues/{QUEUE}?tab=failed")
    assert history["failure"][:8] in failed.text and "Requeue selected" in failed.text
    assert admin.get("/dashboard/queues/nope").status_code == 404


def test_requeue_moves_a_dead_task_back_to_its_queue_and_it_runs_again(admin, engine, history):
    admin.get(f"/dashboard/queues/{QUEUE}?tab=failed")
    result = admin.post(f"/dashboard/queues/{QUEUE}", [("tab", "failed"), ("action", "requeue"), ("task_id", history["failure"])])
    assert result.status_code == 303 and "count=1" in result.headers["location"]
    assert "1 dead-lettered message(s) moved back" in admin.get(result.headers["location"]).text
    record = wait_for_state(engine, history["failure"], ("PENDING", "STARTED", "RETRY", "FAILURE"))
    assert record["attempts"] <= 3
    wait_for_state(engine, history["failure"], "FAILURE")  # it fails again, as always_fails does


def test_delete_removes_a_dead_task_and_its_dead_lettered_message(admin, engine, history):
    admin.get(f"/dashboard/queues/{QUEUE}?tab=failed")
    result = admin.post(f"/dashboard/queues/{QUEUE}", [("tab", "failed"), ("action", "delete"), ("task_id", history["failure"])])
    assert result.status_code == 303 and "count=1" in result.headers["location"]
    assert engine.store.get(history["failure"]) is None
    assert queue_depth(sample_tasks.QUEUE + ".XQ") == 0
    assert engine.store.count_by_state([], [QUEUE])["queues"][QUEUE]["FAILURE"] == 0
    assert history["failure"][:8] not in admin.get(f"/dashboard/queues/{QUEUE}?tab=failed").text


def test_delete_on_the_waiting_tabs_cancels_the_tasks(admin, engine, history):
    admin.get(f"/dashboard/queues/{QUEUE}?tab=delayed")
    result = admin.post(f"/dashboard/queues/{QUEUE}", [("tab", "delayed"), ("action", "delete"), ("task_id", history["delayed"])])
    assert "count=1" in result.headers["location"]
    assert engine.store.get(history["delayed"])["state"] == "CANCELLED"
    assert admin.post(f"/dashboard/queues/{QUEUE}", [("tab", "delayed"), ("action", "delete")]).status_code == 400


def test_workers_page_lists_processes_and_commands_need_a_confirm_step(admin, engine, history):
    workers = engine.workers.list()
    page = admin.get("/dashboard/workers")
    assert all(w["id"] in page.text and f">{w['pid']}<" in page.text for w in workers)
    target = workers[0]["id"]
    confirm = admin.post("/dashboard/workers/command", {"command": "pool_restart", "target": target})
    assert confirm.status_code == 200 and "Yes, restart" in confirm.text
    assert {w["id"] for w in engine.workers.list()} == {w["id"] for w in workers}  # nothing sent yet
    sent = admin.post("/dashboard/workers/command", {"command": "pool_restart", "target": target, "confirm": "yes"})
    assert sent.status_code == 303 and sent.headers["location"].endswith("notice=command_sent")
    wait_until(lambda: target not in {w["id"] for w in engine.workers.list()} and len(engine.workers.list()) == len(workers),
               20, message="the restarted process to be replaced")
    gone = admin.post("/dashboard/workers/command", {"command": "shutdown", "target": "no-such-worker", "confirm": "yes"})
    assert gone.status_code == 404
    assert set(admin.get("/dashboard/api/workers").json["workers"]) == {w["id"] for w in engine.workers.list()}


def test_schedules_page_lists_schedules_and_pauses_and_resumes_them(admin, engine):
    from scheduler.store import ScheduleStore

    store = ScheduleStore.for_engine(engine)
    store.add({"id": "dash-every-minute", "actor": "echo", "kwargs": {"value": "tick"}, "interval_seconds": 60})
    page = admin.get("/dashboard/schedules")
    assert "dash-every-minute" in page.text and "every 60 s" in page.text and "Pause" in page.text
    result = admin.post("/dashboard/schedules/dash-every-minute/pause")
    assert result.status_code == 303 and store.get("dash-every-minute")["enabled"] is False
    assert "paused" in admin.get(result.headers["location"]).text
    admin.post("/dashboard/schedules/dash-every-minute/resume")
    assert store.get("dash-every-minute")["enabled"] is True
    assert admin.post("/dashboard/schedules/nope/pause").status_code == 404


def test_static_files_are_served_without_a_session_and_cached(browser):
    css = browser.get("/dashboard/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert browser.get("/dashboard/static/dashboard.css", headers={"If-None-Match": css.headers["etag"]}).status_code == 304
    assert browser.get("/dashboard/static/dashboard.js").status_code == 200
    assert browser.get("/dashboard/static/..%2Fweb.py").status_code == 404


def test_pages_carry_a_strict_content_security_policy_and_no_inline_script(admin, history):
    page = admin.get("/dashboard/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and " style=" not in page.text
    assert page.headers["cache-control"] == "no-store"


def test_links_to_rabbitmq_management_carry_no_credentials_and_docs_link_is_there(admin, engine):
    assert "guest:guest@" in engine.settings.rabbitmq_management_url
    page = admin.get("/dashboard/").text
    assert "guest:guest" not in page and 'href="http://127.0.0.1:15672"' in page and 'href="/docs"' in page


def test_a_redis_outage_is_a_page_that_says_so(app, admin, engine, monkeypatch):
    import redis

    def down(*args, **kwargs):
        raise redis.ConnectionError("connection refused")

    monkeypatch.setattr(engine.store, "get", down)
    result = admin.get(f"/dashboard/tasks/{'0' * 8}")
    assert result.status_code == 503 and "Redis unavailable" in result.text


def test_task_json_has_no_private_fields(admin, engine, history):
    record = admin.get(f"/dashboard/api/tasks/{history['success']}").json
    assert "payload" not in record and "s3cr3t-pw" not in json.dumps(record)
    assert time.time() - record["finished_at"] < 120
