"""``run_scheduler()``: the scheduler process.

Every replica runs the same loop. A standby polls for the leader lock; the
leader renews it, reloads the schedule definitions from Redis every poll
interval and keeps an APScheduler ``BackgroundScheduler`` in step with them
(add, re-plan on edit, remove on pause or delete), so changes take effect
within seconds and without a restart. The scheduler only submits tasks
through :func:`pipeline.client.submit`; workers do the work.

Exactly once per fire, across hand-overs: every replica computes the same
fire times (see :mod:`scheduler.triggers`), and a fire is claimed by a SET NX
on ``schedule:{id}:{fire time}`` before it is submitted, so only one replica
submits and records it; the task carries the same key as its idempotency key,
which shows in its record which fire made it. A new leader plans each job from the schedule's last recorded
fire, so a fire missed while no leader ran is run once (coalesced) if it is
at most the misfire grace late.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Optional

import redis
from apscheduler.executors.base import run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from pipeline import client, workflow
from pipeline.engine import Engine, make_engine, set_engine
from pipeline.errors import BrokerUnavailable, InvalidArguments, UnknownActor
from pipeline.redis_client import make_redis
from pipeline.settings import Settings, get_settings
from scheduler.builtin import register_builtins
from scheduler.config import SchedulerSettings, get_scheduler_settings
from scheduler.leader import LeaderLock
from scheduler.store import Schedule, ScheduleStore
from scheduler.triggers import Trigger, epoch, first_fire_after, next_fire

logger = logging.getLogger("scheduler")

SUBMIT_ATTEMPTS = 3
FIRE_THREADS = 4
CLAIM_TTL_SECONDS = 3600


class FireExecutor(ThreadPoolExecutor):
    """A thread-pool executor that passes each run its scheduled fire time.

    APScheduler 3 calls a job function without the time it was scheduled
    for, and the per-fire de-dup key needs exactly that time (not the
    moment the thread got to run).
    """

    def _do_submit_job(self, job, run_times):
        def run_all():
            events = []
            for run_time in run_times:
                events += run_job(_AtFireTime(job, run_time), job._jobstore_alias, [run_time], self._logger.name)
            return events

        def done(future):
            exc = future.exception()
            if exc is not None:
                self._run_job_error(job.id, exc, exc.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        self._pool.submit(run_all).add_done_callback(done)


class _AtFireTime:
    """The job as ``run_job`` sees it, with ``fire_time`` added to its keyword arguments."""

    def __init__(self, job, fire_time: datetime):
        self._job = job
        self.kwargs = {**job.kwargs, "fire_time": fire_time}

    def __getattr__(self, name):
        return getattr(self._job, name)

    def __str__(self) -> str:
        return str(self._job)


def fire_key(schedule_id: str, fire_time: datetime) -> str:
    """The idempotency key of one fire."""
    return f"schedule:{schedule_id}:{fire_time.astimezone(timezone.utc).isoformat(timespec='milliseconds')}"


class SchedulerRunner:
    def __init__(self, engine: Engine, store: ScheduleStore, lock: LeaderLock, config: SchedulerSettings, tz: str):
        self.engine = engine
        self.store = store
        self.lock = lock
        self.config = config
        self.timezone = tz
        self.stopping = threading.Event()
        self.scheduler: Optional[BackgroundScheduler] = None
        #: The definitions (and triggers; None when it could not be built) the leader's jobs come from.
        self.planned: dict[str, tuple[Schedule, Optional[Trigger]]] = {}
        #: A fire's claim must outlive every replica that could still try it (within the misfire grace).
        self.claim_ttl = max(CLAIM_TTL_SECONDS, 2 * config.scheduler_misfire_grace_seconds)
        self.tick = min(config.scheduler_poll_seconds, config.lock_renew_seconds)
        self.standby_poll = min(self.tick, config.scheduler_lock_ttl_seconds / 4)

    def stop(self) -> None:
        self.stopping.set()

    def run(self) -> int:
        logger.info("Scheduler %s started; waiting for the leader lock.", self.lock.token)
        while not self.stopping.is_set():
            if not self._keep_leading():
                self.stopping.wait(self.standby_poll)
                continue
            try:
                self._sync()
            except redis.RedisError as exc:
                logger.warning("Could not reload schedules (%s); will retry.", exc)
            self.stopping.wait(self.tick)
        self._step_down(graceful=True)
        logger.info("Scheduler %s stopped.", self.lock.token)
        return 0

    # -- leadership ----------------------------------------------------------------------

    def _keep_leading(self) -> bool:
        """Renew (leader) or try to take (standby) the lock; True while leading."""
        try:
            if self.scheduler is None:
                if self.lock.acquire():
                    self._lead()
                return self.scheduler is not None
            if self.lock.renew():
                return True
            logger.error("The leader lock was lost; stopped firing, back to standby.")
        except redis.RedisError as exc:
            if self.scheduler is None:
                logger.warning("Redis unavailable (%s); still a standby.", exc)
                return False
            logger.error("Could not renew the leader lock (%s); stopped firing, back to standby.", exc)
        self._step_down(graceful=False)
        return False

    def _lead(self) -> None:
        grace = self.config.scheduler_misfire_grace_seconds
        self.scheduler = BackgroundScheduler(
            timezone=self.timezone,
            executors={"default": FireExecutor(FIRE_THREADS)},
            # Several fires of one schedule may overlap (a pool thread's first
            # connection, a broker retry) rather than the next being skipped;
            # each fire time is claimed once, so overlapping is safe.
            job_defaults={"coalesce": True, "max_instances": FIRE_THREADS, "misfire_grace_time": grace},
        )
        self.scheduler.start()
        self.planned = {}
        logger.info("Scheduler %s is the leader.", self.lock.token)

    def _step_down(self, graceful: bool) -> None:
        """Stop firing. Graceful (SIGTERM): let running fires finish and hand the lock over at once."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=graceful)
            self.scheduler = None
            self.planned = {}
        if graceful:
            try:
                self.lock.release()
            except redis.RedisError as exc:
                logger.warning("Could not release the leader lock (%s); it expires by itself.", exc)

    # -- keeping jobs in step with Redis ---------------------------------------------------

    def _sync(self) -> None:
        wanted = {s.id: s for s in self.store.definitions() if s.enabled}
        for schedule_id in [sid for sid in self.planned if sid not in wanted]:
            del self.planned[schedule_id]
            try:
                self.scheduler.remove_job(schedule_id)
            except JobLookupError:
                pass  # a trigger that will never fire again: APScheduler already dropped its job
            logger.info("Schedule %s removed or paused.", schedule_id)
        for schedule_id, schedule in wanted.items():
            if schedule_id in self.planned and self.planned[schedule_id][0] == schedule:
                continue
            try:
                self._plan(schedule)
            except redis.RedisError:
                raise
            except Exception as exc:  # one bad definition must not stop the others
                logger.exception("Schedule %s could not be planned; edit or delete it.", schedule_id)
                self.planned[schedule_id] = (schedule, None)  # not retried until the definition changes
                self.store.record_error(schedule_id, f"could not be planned: {type(exc).__name__}: {exc}",
                                        fire_time=None, next_run=None)

    def _plan(self, schedule: Schedule) -> None:
        """(Re)build a schedule's job, starting after its last fire, its last edit and the grace window."""
        trigger = schedule.trigger()
        now = time.time()
        since = max(self.store.last_run(schedule.id) or 0.0, schedule.updated_at, now - self.config.scheduler_misfire_grace_seconds)
        first = first_fire_after(trigger, since)
        self.scheduler.add_job(
            self._fire, trigger=trigger, id=schedule.id,
            name=f"{schedule.id} ({schedule.actor or schedule.workflow['kind']})",
            args=(schedule.id,), kwargs={"fire_time": None},  # FireExecutor passes the real one
            next_run_time=first, replace_existing=True,
        )
        self.planned[schedule.id] = (schedule, trigger)
        self.store.set_run_state(schedule.id, next_run=epoch(first))
        late = " (missed while no leader ran: fires now, once)" if first and first.timestamp() < now else ""
        logger.info("Schedule %s planned; next fire time %s%s.", schedule.id, first.isoformat() if first else "never", late)

    # -- firing ----------------------------------------------------------------------------

    def _fire(self, schedule_id: str, fire_time: datetime) -> None:
        if not self.lock.held():
            logger.warning("Not firing %s at %s: no longer the leader.", schedule_id, fire_time.isoformat())
            return
        schedule, trigger = self.planned.get(schedule_id, (None, None))
        if schedule is None or trigger is None:
            return  # removed or re-planned since APScheduler picked the job
        stamp = fire_time.timestamp()
        upcoming = epoch(next_fire(trigger, fire_time))
        key = fire_key(schedule_id, fire_time)
        if not self.store.claim_fire(key, self.claim_ttl):
            logger.info("Schedule %s: the fire for %s was already made.", schedule_id, fire_time.isoformat())
            return
        try:
            task_id = self._submit(schedule, key)
        except (InvalidArguments, UnknownActor, BrokerUnavailable) as exc:
            self.store.release_fire(key)
            detail = "; ".join(f"{k}: {v}" for k, v in getattr(exc, "fields", {}).items())
            message = f"{type(exc).__name__}: {exc}" + (f" ({detail})" if detail else "")
            logger.error("Schedule %s could not submit its fire for %s: %s", schedule_id, fire_time.isoformat(), message)
            self.store.record_error(schedule_id, message, fire_time=stamp, next_run=upcoming)
            return
        if self.store.record_fire(schedule_id, stamp, task_id, upcoming):
            logger.info("Schedule %s fired for %s: task %s.", schedule_id, fire_time.isoformat(), task_id)

    def _submit(self, schedule: Schedule, key: str) -> str:
        """Submit the fire (a task, or a workflow), retrying briefly while RabbitMQ does not confirm (and we
        still lead); returns the task's or the workflow's id."""
        attempt = 1
        while True:
            try:
                if schedule.workflow is not None:
                    return workflow.from_description(schedule.workflow).submit(
                        idempotency_key=key, name=f"schedule {schedule.id}", submitted_by="scheduler", engine=self.engine)
                return client.submit(
                    schedule.actor, kwargs=schedule.kwargs, priority=schedule.priority, idempotency_key=key,
                    submitted_by="scheduler", engine=self.engine,
                )
            except BrokerUnavailable:
                if attempt >= SUBMIT_ATTEMPTS or not self.lock.held():
                    raise
                time.sleep(attempt)
                attempt += 1


def lock_client(settings: Settings, config: SchedulerSettings) -> redis.Redis:
    """A Redis client for the lock whose calls time out well within the lock's TTL."""
    timeout = max(0.5, config.scheduler_lock_ttl_seconds / 4)
    return make_redis(settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout)


def run_scheduler(settings: Optional[Settings] = None, config: Optional[SchedulerSettings] = None) -> int:
    """Run a scheduler replica until SIGTERM/SIGINT; returns the exit code."""
    settings = settings or get_settings()
    config = config or get_scheduler_settings()
    engine = make_engine(settings)
    set_engine(engine)
    store = ScheduleStore.for_engine(engine)
    if config.scheduler_builtins:
        register_builtins(store)
    lock = LeaderLock(lock_client(settings, config), store.keys.scheduler_leader, config.scheduler_lock_ttl_seconds)
    runner = SchedulerRunner(engine, store, lock, config, settings.timezone)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop())
    try:
        return runner.run()
    finally:
        engine.close()
