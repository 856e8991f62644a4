"""What ``check_task_health`` checks, repairs, records and alerts.

Checks, each turning into problems with stable keys:

* Redis answers (its latency is recorded) and RabbitMQ answers (``rabbitmq``);
* per queue, ready messages in RabbitMQ (:func:`pipeline.queues.queue_stats`:
  the management API, whose numbers are up to 5 s old, else passive
  declares) and how long the oldest *due*
  PENDING task has waited — the lowest scores of the queue's PENDING index,
  skipping tasks whose eta is still ahead (``backlog:<queue>``);
* live worker processes (``no_workers``) and worker entries whose heartbeat
  stopped without the worker deregistering, i.e. killed (``dead_worker:<id>``;
  an API listing of workers prunes such entries, so a kill can go unseen here
  when someone listed workers first — the lost-task check below still sees
  what the killed worker left behind);
* each actor's failure rate over the window, by enqueue time
  (``failure_rate:<actor>``);
* tasks STARTED longer than their actor's hard time limit on a worker that is
  gone, re-queued or failed per the actor's ``lost_policy`` (``lost_tasks:<actor>``).

The snapshot is stored by the state store (:meth:`save_health_snapshot`) and
served by ``GET /api/v1/tasks/health``. Each problem is alerted at most once
per CLAW_HEALTH_ALERT_REPEAT_SECONDS (a SET NX EX per problem key), all new
problems of a run in one notification.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import pika
from dramatiq.errors import ActorNotFound, BrokerError

from pipeline import client
from pipeline.engine import Engine
from pipeline.errors import BrokerUnavailable, InvalidArguments, UnknownActor
from pipeline.maintenance.config import HealthSettings
from pipeline.notifications.registry import CHANNELS
from pipeline.queues import queue_stats
from pipeline.state import untracked
from pipeline.registry import REGISTRY, TaskPolicy, policy_of, queue_names

PENDING_LOOKAHEAD = 50
ALERT_BODY_LIMIT = 1500


@dataclass
class Problem:
    key: str
    message: str


def check_health(engine: Engine, config: HealthSettings) -> dict[str, Any]:
    """Run every check, repair lost tasks, store the snapshot, alert; returns the snapshot."""
    now = time.time()
    problems: list[Problem] = []
    queues = queue_names(engine.settings.queue_prefix)
    snapshot: dict[str, Any] = {"checked_at": now, "redis": _check_redis(engine)}
    snapshot["rabbitmq"], depths = _check_rabbitmq(engine, queues, problems)
    snapshot["queues"] = _check_queues(engine, config, queues, depths, now, problems)
    live, dead = engine.workers.live_and_dead(now)
    snapshot["workers"] = _check_workers(engine, live, dead, now, problems)
    snapshot["actors"] = _check_failure_rates(engine, config, now, problems)
    snapshot["lost_tasks"] = _recover_lost_tasks(engine, live, now, problems)
    snapshot["problems"] = [asdict(p) for p in problems]
    snapshot["ok"] = not problems
    snapshot["alert"] = _send_alert(engine, config, problems, now)
    engine.store.save_health_snapshot(snapshot)
    return snapshot


def _check_redis(engine: Engine) -> dict[str, Any]:
    """Redis must answer for the check to run at all; what is left to measure is its latency."""
    return {"ok": True, "latency_ms": round(engine.store.ping() * 1000, 2)}


def _check_rabbitmq(engine: Engine, queues: list[str], problems: list[Problem]) -> tuple[dict, dict]:
    try:
        depths = queue_stats(engine.settings, queues)
    except (BrokerUnavailable, pika.exceptions.AMQPError) as exc:
        problems.append(Problem("rabbitmq", f"RabbitMQ does not answer ({type(exc).__name__}: {exc})"))
        return {"ok": False, "error": str(exc)}, {}
    sources = {stats.get("source") for stats in depths.values()}
    return {"ok": True, "source": sources.pop() if len(sources) == 1 else None}, depths


def _check_queues(engine: Engine, config: HealthSettings, queues: list[str], depths: dict, now: float,
                  problems: list[Problem]) -> dict[str, Any]:
    report = {}
    for queue, (pending, oldest) in engine.store.oldest_pending(queues, PENDING_LOOKAHEAD).items():
        waited = _oldest_due_wait(engine, oldest, now)
        broker = depths.get(queue, {})
        ready = broker.get("ready")
        report[queue] = {"ready": ready, "consumers": broker.get("consumers"), "pending": pending,
                         "oldest_pending_seconds": None if waited is None else round(waited, 1)}
        reasons = []
        if ready is not None and ready > config.health_backlog_depth:
            reasons.append(f"{ready} messages ready (threshold {config.health_backlog_depth})")
        if waited is not None and waited > config.health_oldest_pending_seconds:
            reasons.append(f"oldest due PENDING task waiting {waited:.0f} s (threshold {config.health_oldest_pending_seconds:.0f} s)")
        if reasons:
            problems.append(Problem(f"backlog:{queue}", f"queue {queue}: " + " and ".join(reasons)))
    return report


def _oldest_due_wait(engine: Engine, oldest: list[tuple[str, float]], now: float) -> Optional[float]:
    """Seconds the oldest PENDING task that is due (no eta ahead) has waited; None if none is due."""
    if not oldest:
        return None
    etas = engine.store.etas([task_id for task_id, _ in oldest])
    for (_, score), eta in zip(oldest, etas):
        due_since = max(score / 1_000_000, eta or 0.0)
        if due_since <= now:
            return now - due_since
    return None


def _check_workers(engine: Engine, live: set[str], dead: list[tuple[str, float]], now: float,
                   problems: list[Problem]) -> dict[str, Any]:
    if not live:
        problems.append(Problem("no_workers", "no live worker process: nothing consumes the queues"))
    for worker_id, last_seen in dead:
        problems.append(Problem(
            f"dead_worker:{worker_id}",
            f"worker {worker_id} stopped heart-beating {now - last_seen:.0f} s ago without shutting down (killed?)",
        ))
    return {"alive": engine.workers.count(), "dead": [{"id": w, "last_seen": seen} for w, seen in dead]}


def _check_failure_rates(engine: Engine, config: HealthSettings, now: float, problems: list[Problem]) -> dict[str, Any]:
    counts = engine.store.finished_since(sorted(REGISTRY), now - config.health_window_seconds)
    report = {}
    minutes = config.health_window_seconds / 60
    for actor, (failed, succeeded) in counts.items():
        total = failed + succeeded
        if not total:
            continue
        rate = failed / total
        report[actor] = {"success": succeeded, "failure": failed, "failure_rate": round(rate, 3)}
        if total >= config.health_failure_min_tasks and rate > config.health_failure_rate:
            problems.append(Problem(
                f"failure_rate:{actor}",
                f"{actor}: {failed} of {total} tasks enqueued in the last {minutes:.0f} min failed ({rate:.0%}, "
                f"threshold {config.health_failure_rate:.0%})",
            ))
    return report


# -- lost tasks ----------------------------------------------------------------------------------

def _recover_lost_tasks(engine: Engine, live: set[str], now: float, problems: list[Problem]) -> list[dict[str, Any]]:
    lost = []
    for record in engine.store.started_records():
        try:
            policy = policy_of(engine.broker, record["actor"])
        except ActorNotFound:  # an actor this worker does not declare: its limits are unknown here
            continue
        running = now - record.get("started_at", now)
        if record.get("worker") in live or running <= policy.time_limit:
            continue
        action = _requeue(engine, record) if policy.lost_policy == "requeue" else _fail(engine, record, policy, running)
        if action:
            lost.append({"task_id": record["task_id"], "actor": record["actor"], "worker": record.get("worker"),
                         "started_at": record.get("started_at"), "action": action})
    for actor in sorted({entry["actor"] for entry in lost}):
        mine = [entry for entry in lost if entry["actor"] == actor]
        limit = policy_of(engine.broker, actor).time_limit
        problems.append(Problem(
            f"lost_tasks:{actor}",
            f"{len(mine)} {actor} task(s) STARTED over {limit:.0f} s ago on workers that are gone: "
            + ", ".join(sorted({entry["action"] for entry in mine})),
        ))
    return lost


def _requeue(engine: Engine, record: dict[str, Any]) -> Optional[str]:
    """Reset the record to PENDING (marked WorkerLost), then publish a fresh message with its id.

    Reset first, so no worker can meet the message while the record still
    names the dead worker; if RabbitMQ refuses the message, the reset is
    undone and the next check tries again. None when the task moved on
    (redelivered or finished) since it was read.
    """
    task_id, actor, queue, worker = record["task_id"], record["actor"], record["queue"], record.get("worker", "")
    error = {"type": "WorkerLost", "message": f"worker {worker} disappeared while the task ran; re-queued"}
    previous = engine.store.requeue_lost(task_id, worker, error)
    if previous is None:
        return None
    payload = engine.store.payload(task_id) or {"args": [], "kwargs": record.get("kwargs", {})}
    message = client.message_for({**record, "priority": record.get("priority", 0)}, payload)
    try:
        with untracked():
            engine.broker.enqueue(message)
    except (BrokerError, pika.exceptions.AMQPError) as exc:
        engine.store.restore_lost(task_id, worker, previous)
        return f"requeue failed ({type(exc).__name__}); tried again at the next check"
    return "requeued"


def _fail(engine: Engine, record: dict[str, Any], policy: TaskPolicy, running: float) -> Optional[str]:
    task_id, worker = record["task_id"], record.get("worker")
    if not engine.store.still_started_by(task_id, worker):
        return None  # it moved on (redelivered or finished) since it was read
    text = f"worker {worker} disappeared while the task ran ({running:.0f} s, limit {policy.time_limit:.0f} s)"
    engine.store.fail(task_id, {"type": "WorkerLost", "message": text}, engine.result_key(record))
    return "failed"


# -- alerts --------------------------------------------------------------------------------------

def _send_alert(engine: Engine, config: HealthSettings, problems: list[Problem], now: float) -> dict[str, Any]:
    actor = config.health_alert_actor
    if not problems:
        return {"status": "nothing to report", "problems": []}
    if not config.health_alert_recipient:
        return {"status": "not sent: no recipient configured (CLAW_HEALTH_ALERT_RECIPIENT)", "problems": []}
    if actor not in REGISTRY:
        return {"status": f"not sent: {actor} unavailable", "problems": []}
    claimed = engine.store.claim_alerts([p.key for p in problems], now, config.health_alert_repeat_seconds)
    new = [problem for problem, is_new in zip(problems, claimed) if is_new]
    if not new:
        return {"status": "not sent: every problem was already alerted", "problems": []}
    try:
        task_id = client.submit(actor, kwargs=_alert_kwargs(engine, config, new, len(problems), now), engine=engine)
    except (BrokerUnavailable, InvalidArguments, UnknownActor) as exc:
        engine.store.release_alerts([p.key for p in new])  # alert them next time
        return {"status": f"not sent: {type(exc).__name__}: {exc}", "problems": []}
    return {"status": "sent", "task_id": task_id, "problems": [p.key for p in new]}


def _alert_kwargs(engine: Engine, config: HealthSettings, new: list[Problem], total: int, now: float) -> dict[str, Any]:
    subject = f"[claw-pipeline {engine.settings.namespace}] {len(new)} new health problem(s)"
    lines = [f"- {p.message}" for p in new]
    if total > len(new):
        lines.append(f"({total - len(new)} other problem(s) were already alerted.)")
    lines.append("Snapshot: GET /api/v1/tasks/health")
    body = "\n".join(lines)
    if CHANNELS[config.health_alert_channel].subject == "none":
        body, subject = f"{subject}\n{body}", ""
    if len(body) > ALERT_BODY_LIMIT:
        body = body[: ALERT_BODY_LIMIT - 1] + "…"
    return {
        "channel": config.health_alert_channel,
        "recipient": config.health_alert_recipient,
        "subject": subject,
        "body": body,
        "data": {"problems": [p.key for p in new], "checked_at": now},
    }
