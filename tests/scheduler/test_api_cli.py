"""Schedules through the Falcon resources and the CLI; the health snapshot resource."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.scheduler.conftest import wait_for_runs
from tests.app_client import AppClient

ADMIN = "admin-token-0123456789"
READER = "read-token-0123456789"


@pytest.fixture
def api(engine):
    from api.app import create_app
    from pipeline.settings import load_settings

    settings = load_settings(api_tokens=f"{ADMIN}:admin,{READER}:read")
    return AppClient(create_app(engine, settings),
                                     headers={"Authorization": f"Bearer {ADMIN}"})


def test_schedule_added_through_the_api_fires_without_restart(api, schedules, start_scheduler, leader_pid):
    scheduler = start_scheduler()
    created = api.simulate_post("/api/v1/schedules", json={"id": "api-tick", "actor": "echo", "interval_seconds": 1,
                                                           "kwargs": {"value": "api"}})
    assert created.status_code == 201, created.json
    assert created.headers["location"] == "/api/v1/schedules/api-tick"
    assert created.json["next_run"] and created.json["run_count"] == 0

    wait_for_runs(schedules, "api-tick", 2, timeout=10)
    view = api.simulate_get("/api/v1/schedules/api-tick").json
    assert view["run_count"] >= 2 and view["last_task_id"] and view["last_run"] and view["next_run"] > view["last_run"]
    assert leader_pid() == scheduler.pid
    listed = api.simulate_get("/api/v1/schedules").json
    assert listed["count"] == 1 and listed["schedules"][0]["id"] == "api-tick"

    paused = api.simulate_patch("/api/v1/schedules/api-tick", json={"enabled": False})
    assert paused.status_code == 200 and paused.json["enabled"] is False and paused.json["next_run"] is None
    resumed = api.simulate_patch("/api/v1/schedules/api-tick", json={"enabled": True, "interval_seconds": 2})
    assert resumed.json["enabled"] and resumed.json["interval_seconds"] == 2 and resumed.json["next_run"]

    assert api.simulate_delete("/api/v1/schedules/api-tick").status_code == 204
    assert api.simulate_get("/api/v1/schedules/api-tick").status_code == 404


INVALID_BODIES = [
    ({"actor": "echo", "cron": "0 0 * * 8"}, "cron"),
    ({"actor": "no_such_actor", "interval_seconds": 5}, "actor"),
    ({"actor": "echo", "interval_seconds": 5, "kwargs": {"password": 5}}, "kwargs.password"),
    ({"actor": "echo", "interval_seconds": 0}, "interval_seconds"),
    ({"actor": "echo", "interval_seconds": 5, "bogus": 1}, "bogus"),
    ({"actor": "echo", "cron": "0 0 * * *", "timezone": "Nowhere/City"}, "timezone"),
    ({"actor": "echo"}, "interval_seconds"),
]


def test_invalid_schedule_bodies_answer_422_naming_the_field(api):
    for body, field in INVALID_BODIES:
        answer = api.simulate_post("/api/v1/schedules", json=body)
        assert answer.status_code == 422, (body, answer.json)
        assert field in answer.json["error"]["fields"], (body, answer.json)
    assert api.simulate_get("/api/v1/schedules").json["count"] == 0


def test_schedule_errors_conflicts_and_roles(api, schedules):
    assert api.simulate_post("/api/v1/schedules", body="{not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert api.simulate_post("/api/v1/schedules", json={"id": "dup", "actor": "echo", "interval_seconds": 5}).status_code == 201
    conflict = api.simulate_post("/api/v1/schedules", json={"id": "dup", "actor": "echo", "interval_seconds": 5})
    assert conflict.status_code == 409 and conflict.json["error"]["fields"] == {"id": "already exists"}
    patched = api.simulate_patch("/api/v1/schedules/dup", json={"kwargs": {"bogus": 1}})
    assert patched.status_code == 422 and "kwargs.bogus" in patched.json["error"]["fields"]
    assert api.simulate_patch("/api/v1/schedules/dup", json={"created_at": 1}).status_code == 422
    for method in ("simulate_get", "simulate_patch", "simulate_delete"):
        answer = getattr(api, method)("/api/v1/schedules/missing", json={"enabled": False})
        assert answer.status_code == 404 and answer.json["error"]["fields"] == {"schedule_id": "no such schedule"}
    reader = {"Authorization": f"Bearer {READER}"}
    assert api.simulate_get("/api/v1/schedules", headers=reader).status_code == 200  # the read role has schedules:read
    refused = api.simulate_post("/api/v1/schedules", headers=reader, json={"actor": "echo", "interval_seconds": 5})
    assert refused.status_code == 403 and "schedules:write" in refused.json["error"]["description"]
    assert api.simulate_get("/api/v1/schedules", headers={"Authorization": "Bearer wrong-token-0123456"}).status_code == 401
    assert "/api/v1/schedules/{schedule_id}" in api.simulate_get("/openapi.json").json["paths"]


def test_health_snapshot_resource_is_readable_with_the_read_role(api, engine, health_config):
    from pipeline.maintenance.health import check_health

    reader = {"Authorization": f"Bearer {READER}"}
    missing = api.simulate_get("/api/v1/tasks/health", headers=reader)
    assert missing.status_code == 404 and "has not run" in missing.json["error"]["description"]
    check_health(engine, health_config)
    snapshot = api.simulate_get("/api/v1/tasks/health", headers=reader)
    assert snapshot.status_code == 200
    assert 0 <= snapshot.json["age_seconds"] < 5 and "no_workers" in {p["key"] for p in snapshot.json["problems"]}


def run_cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scheduler.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


def test_schedules_cli(env, schedules):
    added = run_cli(env, "schedules", "add", "cli-report", "--actor", "echo", "--cron", "0 9 * * 1-5",
                    "--timezone", "Europe/Berlin", "--kwargs", '{"value": 3}')
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["timezone"] == "Europe/Berlin"

    bad = run_cli(env, "schedules", "add", "cli-bad", "--actor", "echo", "--cron", "0 9 * * 9")
    assert bad.returncode == 2 and bad.stderr.startswith("claw-pipeline: error:") and "cron:" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1

    paused = run_cli(env, "schedules", "pause", "cli-report")
    assert paused.returncode == 0 and json.loads(paused.stdout)["enabled"] is False
    updated = run_cli(env, "schedules", "update", "cli-report", "--every", "60")
    assert json.loads(updated.stdout)["interval_seconds"] == 60
    listed = json.loads(run_cli(env, "schedules", "list").stdout)
    assert [s["id"] for s in listed] == ["cli-report"]
    assert run_cli(env, "schedules", "delete", "cli-report").returncode == 0
    missing = run_cli(env, "schedules", "delete", "cli-report")
    assert missing.returncode == 2 and "no schedule 'cli-report'" in missing.stderr
    assert schedules.list() == []
