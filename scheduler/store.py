"""Schedules in Redis: definitions, their run state, and their validation.

A definition (what to run, when) changes only when an operator edits it; its
``updated_at`` is what the leader compares to notice the edit. Run state
(next/last run, last task, run count, last error) changes at every fire and
is kept in a separate hash, so firing never looks like an edit.

Keys (named by :class:`pipeline.state.keys.Keys`):

* ``schedules`` — hash, schedule id -> definition JSON
* ``schedule_runs(id)`` — hash: next_run, last_run, last_task_id, run_count, last_error
* ``schedule_claim(fire key)`` — a fire's claim (SET NX EX), so it happens once
* ``scheduler_leader`` — the leader lock (see :mod:`scheduler.leader`)

Every write that could race with a delete or an edit is a transaction or a
script, so a fire recorded by a leader never resurrects a deleted schedule
and two concurrent edits never lose one another.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any, Optional
from zoneinfo import ZoneInfo

import pydantic
import redis
from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import InvalidArguments, UnknownActor
from pipeline.state.keys import Keys
from pipeline.workflow import from_description
from pipeline.task import MAX_PRIORITY, get_task
from scheduler.triggers import Trigger, cron_trigger, epoch, first_fire_after, interval_trigger

logger = logging.getLogger("scheduler.store")

#: No colon: the per-fire de-dup key is ``schedule:{id}:{fire time}``.
ID_PATTERN = r"^[A-Za-z0-9_.-]{1,100}$"
EDITABLE = ("actor", "kwargs", "priority", "workflow", "cron", "interval_seconds", "timezone", "enabled")
MAX_INTERVAL_SECONDS = 366 * 86400

# KEYS: defs, run hash. ARGV: id, fire time, task id, next run ('' = none).
# Called once per fire time (the fire's claim comes first); fires may finish
# out of order, so only a later fire time becomes the last run.
RECORD_FIRE = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'run_count', 1)
local last = redis.call('HGET', KEYS[2], 'last_run')
if last and tonumber(last) >= tonumber(ARGV[2]) then return 1 end
redis.call('HSET', KEYS[2], 'last_run', ARGV[2], 'last_task_id', ARGV[3])
if ARGV[4] == '' then redis.call('HDEL', KEYS[2], 'next_run') else redis.call('HSET', KEYS[2], 'next_run', ARGV[4]) end
redis.call('HDEL', KEYS[2], 'last_error')
return 1
"""

# KEYS: defs, run hash. ARGV: id, field, value, ... ('' deletes the field).
SET_IF_DEFINED = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i]) else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
return 1
"""


class ScheduleNotFound(LookupError):
    """No schedule has this id."""


class ScheduleExists(ValueError):
    """A schedule with this id already exists."""


class Schedule(BaseModel):
    """One stored definition: an actor (with kwargs and priority) or a workflow (its JSON description,
    see :mod:`pipeline.workflow.shapes`); exactly one of ``cron`` (with ``timezone``) and ``interval_seconds``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    actor: Optional[str] = Field(None, min_length=1, max_length=200)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    priority: Optional[int] = Field(None, ge=0, le=MAX_PRIORITY)
    workflow: Optional[dict[str, Any]] = None
    cron: Optional[str] = Field(None, min_length=1, max_length=200)
    timezone: Optional[str] = None
    interval_seconds: Optional[int] = Field(None, ge=1, le=MAX_INTERVAL_SECONDS)
    enabled: bool = True
    created_at: float
    updated_at: float

    def trigger(self) -> Trigger:
        if self.cron:
            return cron_trigger(self.cron, self.timezone)
        return interval_trigger(self.interval_seconds, self.created_at)


class ScheduleStore:
    def __init__(self, client: redis.Redis, namespace: str, default_timezone: str):
        self.redis = client
        self.keys = Keys(namespace)
        self.default_timezone = default_timezone
        self.defs_key = self.keys.schedules
        self._record_fire = client.register_script(RECORD_FIRE)
        self._set_if_defined = client.register_script(SET_IF_DEFINED)

    @classmethod
    def for_engine(cls, engine) -> "ScheduleStore":
        """The store of *engine*'s deployment (its Redis, namespace and timezone)."""
        return cls(engine.store.redis, engine.store.keys.shared, engine.settings.timezone)

    def run_key(self, schedule_id: str) -> str:
        return self.keys.schedule_runs(schedule_id)

    # -- reading -------------------------------------------------------------------------

    def list(self) -> list[dict[str, Any]]:
        """Every schedule with its run state, by id."""
        schedules = self.definitions()
        with self.redis.pipeline(transaction=False) as pipe:
            for schedule in schedules:
                pipe.hgetall(self.run_key(schedule.id))
            runs = pipe.execute()
        return [self._view(schedule, run) for schedule, run in zip(schedules, runs)]

    def get(self, schedule_id: str) -> dict[str, Any]:
        raw = self.redis.hget(self.defs_key, schedule_id)
        if raw is None:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")
        return self._view(Schedule.model_validate_json(raw), self.redis.hgetall(self.run_key(schedule_id)))

    def definitions(self) -> list[Schedule]:
        """The stored definitions (for the leader); an unreadable one is logged and skipped."""
        schedules = []
        for schedule_id, raw in sorted(self.redis.hgetall(self.defs_key).items()):
            try:
                schedules.append(Schedule.model_validate_json(raw))
            except pydantic.ValidationError as exc:
                logger.error("Schedule %r is unreadable and is skipped: %s", schedule_id, exc)
        return schedules

    def last_run(self, schedule_id: str) -> Optional[float]:
        value = self.redis.hget(self.run_key(schedule_id), "last_run")
        return float(value) if value else None

    @staticmethod
    def _view(schedule: Schedule, run: dict[str, str]) -> dict[str, Any]:
        view = schedule.model_dump()
        view["next_run"] = float(run["next_run"]) if run.get("next_run") and schedule.enabled else None
        view["last_run"] = float(run["last_run"]) if run.get("last_run") else None
        # The run state keeps the id of the last fire's task, or of its workflow.
        view["last_task_id"] = None if schedule.workflow else run.get("last_task_id")
        view["last_workflow_id"] = run.get("last_task_id") if schedule.workflow else None
        view["run_count"] = int(run.get("run_count", 0))
        view["last_error"] = json.loads(run["last_error"]) if run.get("last_error") else None
        return view

    # -- writing (operators) -------------------------------------------------------------

    def add(self, values: dict[str, Any]) -> dict[str, Any]:
        """Validate and store a new schedule; raises InvalidArguments or ScheduleExists."""
        schedule = self._new(values)
        if not self.redis.hsetnx(self.defs_key, schedule.id, schedule.model_dump_json()):
            raise ScheduleExists(f"a schedule with id {schedule.id!r} already exists")
        self._store_next_run(schedule)
        return self.get(schedule.id)

    def add_if_absent(self, values: dict[str, Any]) -> bool:
        """Store a schedule unless its id exists (an operator's edit of it is kept)."""
        schedule = self._new(values)
        if not self.redis.hsetnx(self.defs_key, schedule.id, schedule.model_dump_json()):
            return False
        self._store_next_run(schedule)
        return True

    def update(self, schedule_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change some fields; a new cron replaces an interval and vice versa."""
        wrong = {name: "cannot be changed" if name in ("id", "created_at", "updated_at") else "unknown field"
                 for name in changes if name not in EDITABLE}
        if wrong:
            raise InvalidArguments("these fields cannot be updated", wrong)
        if not changes:
            raise InvalidArguments("nothing to update", {"body": f"give at least one of {', '.join(EDITABLE)}"})

        def change(pipe) -> Schedule:
            raw = pipe.hget(self.defs_key, schedule_id)
            if raw is None:
                raise ScheduleNotFound(f"no schedule {schedule_id!r}")
            merged = Schedule.model_validate_json(raw).model_dump()
            if changes.get("actor") is not None:
                merged["workflow"] = None
            if changes.get("workflow") is not None:
                merged.update(actor=None, kwargs={}, priority=None)
            if changes.get("cron") is not None:
                merged["interval_seconds"] = None
            if changes.get("interval_seconds") is not None:
                merged["cron"] = merged["timezone"] = None
            merged.update(changes)
            merged["updated_at"] = time.time()
            schedule = self._validated(merged)
            pipe.multi()
            pipe.hset(self.defs_key, schedule_id, schedule.model_dump_json())
            return schedule

        schedule = self.redis.transaction(change, self.defs_key, value_from_callable=True)
        self._store_next_run(schedule)
        return self.get(schedule_id)

    def pause(self, schedule_id: str) -> dict[str, Any]:
        return self.update(schedule_id, {"enabled": False})

    def resume(self, schedule_id: str) -> dict[str, Any]:
        """Enable again; fires missed while paused are not caught up."""
        return self.update(schedule_id, {"enabled": True})

    def delete(self, schedule_id: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.defs_key, schedule_id)
            pipe.delete(self.run_key(schedule_id))
            removed, _ = pipe.execute()
        if not removed:
            raise ScheduleNotFound(f"no schedule {schedule_id!r}")

    def _new(self, values: dict[str, Any]) -> Schedule:
        now = time.time()
        return self._validated({**values, "id": values.get("id") or uuid.uuid4().hex[:12], "created_at": now, "updated_at": now})

    def _store_next_run(self, schedule: Schedule) -> None:
        """What a leader will plan, shown at once (the leader overwrites it when it syncs)."""
        upcoming = first_fire_after(schedule.trigger(), time.time()) if schedule.enabled else None
        self.set_run_state(schedule.id, next_run=epoch(upcoming))

    # -- validation ----------------------------------------------------------------------

    def _validated(self, values: dict[str, Any]) -> Schedule:
        """A Schedule from raw values; every problem is an InvalidArguments naming its field."""
        if values.get("cron") and not values.get("timezone"):
            values = {**values, "timezone": self.default_timezone}
        try:
            schedule = Schedule.model_validate(values)
        except pydantic.ValidationError as exc:
            fields = {".".join(str(p) for p in e["loc"]) or "body": e["msg"] for e in exc.errors()}
            raise InvalidArguments("invalid schedule", fields) from None
        check_trigger(schedule)
        if (schedule.actor is None) == (schedule.workflow is None):
            raise InvalidArguments("what to run", {"actor": "give either actor (with kwargs) or workflow (exactly one)"})
        if schedule.workflow is not None:
            if schedule.kwargs or schedule.priority is not None:
                raise InvalidArguments("what to run", {"kwargs": "a workflow's tasks carry their own arguments"})
            check_workflow(schedule.workflow)
        else:
            schedule.kwargs = check_actor(schedule.actor, schedule.kwargs)
        return schedule

    # -- run state (the leader) ----------------------------------------------------------

    def claim_fire(self, fire_key: str, ttl_seconds: int) -> bool:
        """Claim one fire (``schedule:{id}:{fire time}``) for this process; False if someone already has it.

        This is what makes a fire happen once even while two replicas both
        believe they lead (a hand-over): only the claimer submits and records it.
        """
        return bool(self.redis.set(self.keys.schedule_claim(fire_key), "1", nx=True, ex=ttl_seconds))

    def release_fire(self, fire_key: str) -> None:
        """Give a claimed fire up (its submit failed), so it can be tried again."""
        self.redis.delete(self.keys.schedule_claim(fire_key))

    def record_fire(self, schedule_id: str, fire_time: float, task_id: str, next_run: Optional[float]) -> bool:
        """Record a claimed fire; False when the schedule was deleted meanwhile."""
        args = [schedule_id, repr(fire_time), task_id, "" if next_run is None else repr(next_run)]
        return bool(self._record_fire(keys=[self.defs_key, self.run_key(schedule_id)], args=args))

    def record_error(self, schedule_id: str, message: str, *, fire_time: Optional[float], next_run: Optional[float]) -> None:
        """Show why a fire could not be submitted (or a job not be built) in the schedule's run state."""
        error = json.dumps({"at": time.time(), "fire_time": fire_time, "message": message[:2000]})
        self.set_run_state(schedule_id, last_error=error, next_run=next_run)

    def set_run_state(self, schedule_id: str, **fields: Any) -> None:
        """Set run-state fields (None removes one) of a schedule that still exists."""
        args: list[Any] = [schedule_id]
        for name, value in fields.items():
            args += [name, "" if value is None else (repr(value) if isinstance(value, float) else str(value))]
        self._set_if_defined(keys=[self.defs_key, self.run_key(schedule_id)], args=args)


def check_trigger(schedule: Schedule) -> None:
    if (schedule.cron is None) == (schedule.interval_seconds is None):
        field = "cron" if schedule.cron is not None else "interval_seconds"
        raise InvalidArguments("invalid trigger", {field: "give either cron or interval_seconds (exactly one)"})
    if schedule.interval_seconds is not None and schedule.timezone is not None:
        raise InvalidArguments("invalid trigger", {"timezone": "applies to cron schedules only"})
    if schedule.cron is None:
        return
    try:
        ZoneInfo(schedule.timezone)
    except Exception:
        raise InvalidArguments("invalid timezone", {"timezone": f"unknown timezone {schedule.timezone!r}"}) from None
    try:
        trigger = schedule.trigger()
    except ValueError as exc:
        raise InvalidArguments("invalid cron expression", {"cron": str(exc)}) from None
    if first_fire_after(trigger, time.time()) is None:  # e.g. "0 0 31 2 *": February never has a 31st
        raise InvalidArguments("invalid cron expression", {"cron": "the expression never fires"})


def check_workflow(description: dict[str, Any]) -> None:
    """The description as POST /api/v1/workflows takes it; field names are prefixed ``workflow.``."""
    try:
        from_description(description).validated()
    except InvalidArguments as exc:
        raise InvalidArguments(str(exc), {f"workflow.{name}": text for name, text in exc.fields.items()}) from None


def check_actor(actor: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The kwargs normalised by the actor's argument model; field names are prefixed ``kwargs.``."""
    try:
        spec = get_task(actor)
    except UnknownActor:
        raise InvalidArguments("unknown actor", {"actor": f"no task named {actor!r} is declared"}) from None
    try:
        return spec.validate_kwargs(dict(kwargs))
    except InvalidArguments as exc:
        raise InvalidArguments(str(exc), {f"kwargs.{name}": text for name, text in exc.fields.items()}) from None
