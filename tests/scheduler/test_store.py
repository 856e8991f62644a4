"""Schedule definitions: cron meaning, validation naming the field, CRUD and run state."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from croniter import croniter

from pipeline.errors import InvalidArguments
from scheduler.builtin import register_builtins
from scheduler.store import ScheduleExists, ScheduleNotFound
from scheduler.triggers import cron_trigger

TZ = "Asia/Shanghai"
START = datetime(2025, 3, 1, 0, 0, 1, tzinfo=ZoneInfo(TZ))  # a Saturday


def fires(expression: str, count: int = 10, tz: str = TZ) -> list[datetime]:
    trigger, found, moment = cron_trigger(expression, tz), [], START
    for _ in range(count):
        moment = trigger.get_next_fire_time(found[-1] if found else None, moment)
        found.append(moment)
    return found


@pytest.mark.parametrize("expression, weekdays", [
    ("0 9 * * 0", {"Sunday"}),
    ("0 9 * * 7", {"Sunday"}),
    ("0 9 * * 1", {"Monday"}),
    ("0 9 * * 1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
    ("0 9 * * 5-7", {"Friday", "Saturday", "Sunday"}),
    ("0 9 * * */2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
    ("0 9 * * 0,7", {"Sunday"}),
    ("0 9 * * 7-7", {"Sunday"}),
    ("0 9 * * sun-tue", {"Sunday", "Monday", "Tuesday"}),
])
def test_cron_day_of_week_numbers_mean_what_cron_means(expression, weekdays):
    found = fires(expression, 20)
    assert {f.strftime("%A") for f in found} == weekdays
    assert all((f.hour, f.minute) == (9, 0) and f.tzinfo.key == TZ for f in found)


def test_apscheduler_from_crontab_would_have_read_0_as_monday():
    """The gotcha this module exists for: the same text, another day."""
    naive = CronTrigger.from_crontab("0 9 * * 0", timezone=TZ).get_next_fire_time(None, START)
    assert naive.strftime("%A") == "Monday" and fires("0 9 * * 0")[0].strftime("%A") == "Sunday"


@pytest.mark.parametrize("expression", [
    "*/15 2 1,15 * 1-5", "0 0 13 * fri", "30 4 1-7 * 1", "0 */3 * * 1-5", "5 4 * * 6,7", "0 0 */2 * *",
    "@daily", "@weekly", "@monthly", "0 12 * jan-mar sun",
])
def test_cron_fire_times_match_croniter(expression):
    expected, it = [], croniter(expression, START)
    for _ in range(40):
        expected.append(it.get_next(datetime))
    assert fires(expression, 40) == expected


def test_cron_follows_the_schedule_timezone():
    (first,) = fires("0 2 * * *", 1, tz="Europe/Berlin")
    assert first.utcoffset() == timedelta(hours=1) and first.hour == 2


@pytest.mark.parametrize("values, field", [
    ({"cron": "61 * * * *"}, "cron"),
    ({"cron": "* * *"}, "cron"),
    ({"cron": "0 0 * * 1/2"}, "cron"),
    ({"cron": "0 0 L * *"}, "cron"),
    ({"cron": "0 0 * * *", "interval_seconds": 5}, "cron"),
    ({}, "interval_seconds"),
    ({"interval_seconds": 0}, "interval_seconds"),
    ({"cron": "0 0 * * *", "timezone": "Mars/Olympus"}, "timezone"),
    ({"interval_seconds": 5, "timezone": "UTC"}, "timezone"),
    ({"interval_seconds": 5, "actor": "no_such_actor"}, "actor"),
    ({"interval_seconds": 5, "kwargs": {"password": 5}}, "kwargs.password"),
    ({"interval_seconds": 5, "kwargs": {"bogus": 1}}, "kwargs.bogus"),
    ({"interval_seconds": 5, "priority": 12}, "priority"),
    ({"interval_seconds": 5, "id": "has:colon"}, "id"),
    ({"interval_seconds": 5, "surprise": True}, "surprise"),
])
def test_invalid_schedules_are_refused_naming_the_field(schedules, values, field):
    with pytest.raises(InvalidArguments) as caught:
        schedules.add({"id": "s1", "actor": "echo", **values})
    assert field in caught.value.fields, caught.value.fields
    assert schedules.list() == []


@pytest.mark.parametrize("workflow, field", [
    ({"kind": "chain", "steps": [{"actor": "add"}, {"actor": "echo"}]}, "workflow.steps.1.kwargs.previous"),
    ({"kind": "group", "members": [{"actor": "no_such_actor"}]}, "workflow.members.0.actor"),
    ({"kind": "fan"}, "workflow.kind"),
])
def test_a_workflow_schedule_is_validated_when_it_is_added(schedules, workflow, field):
    with pytest.raises(InvalidArguments) as caught:
        schedules.add({"id": "w1", "workflow": workflow, "interval_seconds": 5})
    assert field in caught.value.fields, caught.value.fields
    with pytest.raises(InvalidArguments) as caught:
        schedules.add({"id": "w1", "actor": "echo", "workflow": {"kind": "group", "members": [{"actor": "echo"}]},
                       "interval_seconds": 5})
    assert "actor" in caught.value.fields
    assert schedules.list() == []


def test_a_schedule_switches_between_an_actor_and_a_workflow(schedules):
    group = {"kind": "group", "members": [{"actor": "echo", "kwargs": {"value": 1}}]}
    schedules.add({"id": "sw", "actor": "echo", "kwargs": {"value": 1}, "interval_seconds": 5})
    changed = schedules.update("sw", {"workflow": group})
    assert (changed["actor"], changed["kwargs"], changed["workflow"]) == (None, {}, group)
    back = schedules.update("sw", {"actor": "echo"})
    assert (back["actor"], back["workflow"]) == ("echo", None)


def test_schedule_lifecycle_and_run_state(schedules):
    added = schedules.add({"id": "nightly", "actor": "echo", "kwargs": {"value": 1}, "cron": "0 2 * * *"})
    assert added["timezone"] == TZ and added["enabled"] and added["run_count"] == 0 and added["last_run"] is None
    assert datetime.fromtimestamp(added["next_run"], ZoneInfo(TZ)).strftime("%H:%M") == "02:00"
    with pytest.raises(ScheduleExists):
        schedules.add({"id": "nightly", "actor": "echo", "interval_seconds": 5})

    assert schedules.pause("nightly")["next_run"] is None
    resumed = schedules.resume("nightly")
    assert resumed["enabled"] and resumed["next_run"] and resumed["updated_at"] > added["updated_at"]

    switched = schedules.update("nightly", {"interval_seconds": 60, "kwargs": {"value": 2}})
    assert switched["cron"] is None and switched["timezone"] is None and switched["interval_seconds"] == 60
    back = schedules.update("nightly", {"cron": "30 3 * * 0"})
    assert back["interval_seconds"] is None and back["timezone"] == TZ
    with pytest.raises(InvalidArguments) as caught:
        schedules.update("nightly", {"created_at": 0})
    assert caught.value.fields == {"created_at": "cannot be changed"}

    assert schedules.claim_fire("schedule:nightly:t1", 60)
    assert not schedules.claim_fire("schedule:nightly:t1", 60)  # the same fire, from a second leader
    schedules.release_fire("schedule:nightly:t1")  # its submit failed: it may be tried again
    assert schedules.claim_fire("schedule:nightly:t1", 60)
    assert schedules.record_fire("nightly", 2000.0, "task-2", 3000.0)
    assert schedules.record_fire("nightly", 1000.0, "task-1", 2000.0)  # finished late: counted, not the last run
    view = schedules.get("nightly")
    assert (view["run_count"], view["last_run"], view["last_task_id"], view["next_run"]) == (2, 2000.0, "task-2", 3000.0)

    schedules.delete("nightly")
    assert not schedules.record_fire("nightly", 3000.0, "task-3", None)  # a late fire does not resurrect it
    assert schedules.list() == []
    for call in (lambda: schedules.get("nightly"), lambda: schedules.delete("nightly"), lambda: schedules.pause("nightly")):
        with pytest.raises(ScheduleNotFound):
            call()


def test_builtin_schedules_are_registered_once_and_keep_operator_edits(schedules):
    assert register_builtins(schedules) == ["cleanup_expired_results", "check_task_health"]
    cleanup = schedules.get("cleanup_expired_results")
    assert (cleanup["cron"], cleanup["timezone"]) == ("0 2 * * *", TZ)
    assert datetime.fromtimestamp(cleanup["next_run"], ZoneInfo(TZ)).strftime("%H:%M") == "02:00"
    assert schedules.get("check_task_health")["interval_seconds"] == 1800

    schedules.update("check_task_health", {"interval_seconds": 600})
    assert register_builtins(schedules) == []
    assert schedules.get("check_task_health")["interval_seconds"] == 600
