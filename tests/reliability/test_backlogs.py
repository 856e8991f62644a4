"""Backlogs on real workers: waits longer than RabbitMQ's consumer timeout, per-user limits under a
global cap, fair share, long delays, and a worker killed while it holds waiting messages.

RabbitMQ's consumer timeout is lowered for the workers' channels (see
:mod:`tests.reliability.rabbitmq`). ``make test`` runs each test at a short
scale; ``make test-reliability`` (CLAW_RELIABILITY=full) runs 2,000 tasks whose
wait is ten consumer timeouts, 20 users x 100 tasks, and a 3-minute delay with
a one-minute bound, and records what it measured for docs/reliability.md.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pika
import pytest

from pipeline import client
from pipeline.holds import DUE
from tests import sample_tasks
from tests.conftest import BROKER_URL, QUEUE_PREFIX, wait_for_state, wait_until
from tests.reliability.conftest import FULL, scale, wait_all_final
from tests.reliability.rabbitmq import (
    STATS_INTERVAL_SECONDS,
    BrokerLog,
    consumer_channels,
    lowered_consumer_timeout,
    queue_counts,
    wait_for_consumers,
)

QUEUE, DELAY_QUEUE = sample_tasks.QUEUE, f"{sample_tasks.QUEUE}.DQ"
ACTOR = "shared_fairly"


def _overrides(**policy) -> str:
    return json.dumps({ACTOR: policy})


#: Settings of each test's processes (the test's own engine and its workers).
SETTINGS = {
    "test_a_backlog_ten_consumer_timeouts_long_waits_in_bounded_hops_and_keeps_the_limit": {
        "CLAW_MAX_HOLD_SECONDS": "20" if FULL else "2",
        "CLAW_ACTOR_OVERRIDES": _overrides(rate_limit="10/3s" if FULL else "10/2s", rate_limit_per_key=None, rate_limit_key=None),
    },
    "test_a_user_arriving_after_a_bulk_backlog_starts_within_one_turn": {
        "CLAW_MAX_HOLD_SECONDS": "20" if FULL else "2",
        "CLAW_ACTOR_OVERRIDES": _overrides(rate_limit="20/2s" if FULL else "4/s", rate_limit_per_key="10/2s" if FULL else "1/s"),
    },
    "test_a_delay_many_holds_long_is_accepted_and_runs_at_its_eta": {
        "CLAW_MAX_HOLD_SECONDS": "60" if FULL else "1",
    },
    "test_a_worker_killed_while_holding_waiting_messages_loses_none": {
        "CLAW_MAX_HOLD_SECONDS": "2",
        "CLAW_ACTOR_OVERRIDES": _overrides(rate_limit="10/2s", rate_limit_per_key=None, rate_limit_key=None),
    },
}


@pytest.fixture
def env(env, request):
    return {**env, **SETTINGS[request.node.originalname]}


def starts(redis_client, key: str) -> list[tuple[float, str, str]]:
    """(time, task id, user) of every start the test task recorded, in time order."""
    rows = [line.split(" ") for line in redis_client.lrange(key, 0, -1)]
    return sorted((float(row[0]), row[1], row[2] if len(row) > 2 else "") for row in rows)


def most_in_a_window(times: list[float], window: float) -> int:
    """The most starts in any window of *window* seconds (sliding, every start as a window's first)."""
    times, most, last = sorted(times), 0, 0
    for first in range(len(times)):
        while last < len(times) and times[last] - times[first] < window:
            last += 1
        most = max(most, last - first)
    return most


def tightest(times: list[float], limit: int) -> float:
    """The shortest time in which limit + 1 starts happened (for messages)."""
    times = sorted(times)
    return min((times[i + limit] - times[i] for i in range(len(times) - limit)), default=float("inf"))


def per_window(times: list[float], window: float) -> list[int]:
    """Starts in consecutive windows from the first start."""
    if not times:
        return []
    counts = [0] * (int((times[-1] - times[0]) / window) + 1)
    for t in times:
        counts[int((t - times[0]) / window)] += 1
    return counts


class HeldSampler:
    """Samples every worker process's ``held`` (waiting messages in its memory) once a second."""

    def __init__(self, engine):
        self.engine, self.most, self.stop = engine, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            for worker in self.engine.workers.list():
                self.most[worker["id"]] = max(self.most.get(worker["id"], 0), worker.get("held", 0))

    def finish(self) -> dict[str, int]:
        self.stop.set()
        self.thread.join()
        return self.most


class Admissions:
    """Every start the limiter allowed, read from its windows in Redis: (time, task id) per start.

    Each start stays in a window's sorted set for at least the window, so reading every fifth of
    a window misses none. These are the times the limit is kept on; a task's own first line runs a
    little later (its delivery to a thread, its START), which the tests measure apart.
    """

    def __init__(self, redis_client, keys: list[str], window: float):
        self.redis, self.keys, self.window, self.interval = redis_client, keys, window, window / 10
        self.seen: dict[str, dict[str, float]] = {key: {} for key in keys}
        self.reads: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.reads.append(time.time())
        with self.redis.pipeline(transaction=False) as pipe:
            for key in self.keys:
                pipe.zrange(key, 0, -1, withscores=True)
            for key, entries in zip(self.keys, pipe.execute()):
                self.seen[key].update(entries)

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            self._read()

    def finish(self) -> dict[str, list[tuple[float, str]]]:
        self.stop.set()
        self.thread.join()
        self._read()
        gap = max(b - a for a, b in zip(self.reads, self.reads[1:]))
        if gap >= self.window:  # starts may have left the windows unseen: nothing can be said of them
            pytest.fail(f"the test could not read the limiter's windows for {gap:.2f} s (a {self.window:g} s window)")
        return {key: sorted((score / 1000, member.split("@")[0]) for member, score in entries.items())
                for key, entries in self.seen.items()}


def lateness(admitted: list[tuple[float, str]], recorded: list[tuple[float, str, str]]) -> str:
    """How long after its admission each task's first line ran: median, 99th percentile, most (ms)."""
    at = {task_id: t for t, task_id in admitted}
    gaps = sorted((t - at[task_id]) * 1000 for t, task_id, _ in recorded if task_id in at)
    if not gaps:
        return "n/a"
    return f"p50 {gaps[len(gaps) // 2]:.0f}, p99 {gaps[int(len(gaps) * 0.99)]:.0f}, max {gaps[-1]:.0f}"


def settled_counts(name: str) -> dict[str, int]:
    time.sleep(STATS_INTERVAL_SECONDS)  # the management API's figures lag by up to its refresh interval
    return queue_counts(name)


def submit_users(users: list[str], per_user: int, list_key: str) -> list[str]:
    """*per_user* tasks for each user, submitted user by user in bulk."""
    ids = []
    for user in users:
        for start in range(0, per_user, client.MAX_BULK):
            batch = [{"actor": ACTOR, "kwargs": {"list_key": list_key, "user": user}}
                     for _ in range(min(client.MAX_BULK, per_user - start))]
            ids += client.submit_many(batch)
    return ids


@pytest.mark.timeout(scale(300, 1500))
def test_a_backlog_ten_consumer_timeouts_long_waits_in_bounded_hops_and_keeps_the_limit(
    engine, start_worker, namespace, redis_client, report
):
    timeout_ms, limit, window = (60_001, 10, 3.0) if FULL else (5_001, 10, 2.0)
    count = scale(60, 2000)
    expected_seconds = count / limit * window
    list_key = f"{namespace}:starts"
    log = BrokerLog()
    with lowered_consumer_timeout(timeout_ms) as restore:
        start_worker("--processes", "2", "--threads", "4")
        wait_for_consumers([QUEUE, DELAY_QUEUE], per_queue=2)
        channels = consumer_channels([QUEUE, DELAY_QUEUE])
        restore()
        assert expected_seconds >= (10 if FULL else 2) * (timeout_ms // 1000)
        began = time.time()
        admissions = Admissions(redis_client, [engine.store.keys.rate_limit(ACTOR)], window)
        ids = submit_users([""], count, list_key)
        held = HeldSampler(engine)
        counts = wait_all_final(engine, ids, timeout=expected_seconds / 0.7 + 60)
        seconds = time.time() - began
        most_held = held.finish()
        admitted = admissions.finish()[engine.store.keys.rate_limit(ACTOR)]
        assert consumer_channels([QUEUE, DELAY_QUEUE]) == channels, "a worker channel was closed and reopened"

    assert counts == {"SUCCESS": count}, counts
    records = engine.store.get_many(ids)
    assert all(r["attempts"] == 1 for r in records)
    recorded = starts(redis_client, list_key)
    assert sorted(task_id for _, task_id, _ in recorded) == sorted(ids), "a task ran twice or not at all"
    assert sorted(task_id for _, task_id in admitted) == sorted(ids)
    assert most_in_a_window([t for t, _ in admitted], window) <= limit
    times = [t for t, _, _ in recorded]
    assert log.timed_out(timeout_ms) == [], "RabbitMQ closed a channel for holding a delivery too long"
    main, delayed = settled_counts(QUEUE), queue_counts(DELAY_QUEUE)
    assert main["redeliver"] == 0 and delayed["redeliver"] == 0
    windows = per_window([t for t, _ in admitted], window)[:-1]  # the last window is cut short
    histogram = {n: windows.count(n) for n in sorted(set(windows), reverse=True)}
    report(
        fault=f"backlog of {count} rate-limited tasks, wait {expected_seconds / (timeout_ms / 1000):.0f}x consumer_timeout",
        accepted=count, completed=counts.get("SUCCESS", 0), failed=counts.get("FAILURE", 0),
        lost=count - sum(counts.values()), duplicated=len(recorded) - len(set(t for _, t, _ in recorded)),
        limit=f"{limit}/{window:g}s", consumer_timeout_ms=timeout_ms, hold_bound_s=engine.broker.max_hold_ms / 1000,
        seconds=round(seconds, 1),
        # The first window's starts need no wait; the rest come at most *limit* a window.
        throughput_of_limit=round((count - limit) / (times[-1] - times[0]) / (limit / window), 2),
        most_in_any_window=most_in_a_window([t for t, _ in admitted], window),
        most_in_any_window_by_the_tasks_clocks=most_in_a_window(times, window),
        first_line_after_admission_ms=lateness(admitted, recorded),
        # Fixed windows from the first start (bursts straddle their edges: 9 + 1 is one burst).
        windows_by_starts=histogram,
        held_per_worker_process=max(most_held.values(), default=0),
        delay_queue_publishes_per_task=round(delayed["publish"] / count, 2),
        deliveries_per_task=round(main["deliver_get"] / count, 2),
        redeliveries=main["redeliver"] + delayed["redeliver"], channels_closed=0,
    )


@pytest.mark.timeout(scale(300, 900))
def test_a_user_arriving_after_a_bulk_backlog_starts_within_one_turn(engine, start_worker, namespace, redis_client, report):
    users, per_user = (20, 100) if FULL else (5, 20)
    (limit, window), (user_limit, user_window) = ((20, 2.0), (10, 2.0)) if FULL else ((4, 1.0), (1, 1.0))
    list_key = f"{namespace}:starts"
    start_worker("--processes", "2", "--threads", "4")
    names = [f"user{u:02d}" for u in range(users)] + ["zz-late"]
    keys = engine.store.keys
    admissions = Admissions(redis_client, [keys.rate_limit(ACTOR)] + [keys.rate_limit_of(ACTOR, n) for n in names], window)
    backlog = submit_users(names[:-1], per_user, list_key)
    late_submitted = time.time()
    late = client.submit(ACTOR, kwargs={"list_key": list_key, "user": "zz-late"})
    # It joins the turns when a worker first takes its message, behind the backlog's first deliveries
    # (RabbitMQ's order, before any fairness can apply): then it waits (its record says so) or starts.
    joined = wait_until(lambda: (r := engine.store.get(late)) and (r.get("wait_reason") and time.time() or r.get("started_at")),
                        60, interval=0.01, message="the late task to reach a worker")
    late_started = wait_for_state(engine, late, ("STARTED", "SUCCESS"), timeout=60)["started_at"]
    others = [s for s in starts(redis_client, list_key) if s[0] < late_started and s[2] != "zz-late"]
    others_first = [s for s in others if s[0] >= joined]
    # One turn is one start of each other user, and a start or two for its turn's delivery at these rates.
    assert len(others_first) <= users + 2, f"{len(others_first)} starts of other users went first"
    if FULL:
        counts = wait_all_final(engine, backlog, timeout=users * per_user / limit * window / 0.7 + 60)
        assert counts == {"SUCCESS": users * per_user}, counts
    recorded = starts(redis_client, list_key)
    assert len({t for _, t, _ in recorded}) == len(recorded), "a task ran twice"
    admitted = admissions.finish()
    every = admitted.pop(keys.rate_limit(ACTOR))
    assert {t for _, t, _ in recorded} <= {t for _, t in every}  # every start was admitted
    times = [t for t, _ in every]
    assert most_in_a_window(times, window) <= limit, f"{limit + 1} starts within {tightest(times, limit):.3f} s"
    for user_starts in admitted.values():
        assert most_in_a_window([t for t, _ in user_starts], user_window) <= user_limit
    report(
        fault=f"{users} users x {per_user} tasks in bulk, then one task of another user",
        accepted=users * per_user + 1, completed=len(recorded), failed=0, lost=0, duplicated=0,
        limits=f"{user_limit}/{user_window:g}s per user, {limit}/{window:g}s in all",
        late_task_reached_a_worker_after_seconds=round(joined - late_submitted, 2),
        then_started_after_seconds=round(late_started - joined, 2), other_starts_meanwhile=len(others_first),
        other_starts_since_submitted=sum(1 for s in others if s[0] >= late_submitted),
        first_come_first_served_would_be=users * per_user,
        most_in_any_window=most_in_a_window(times, window),
        most_in_any_window_by_the_tasks_clocks=most_in_a_window([t for t, _, _ in recorded], window),
        first_line_after_admission_ms=lateness(every, recorded),
    )


def _peek_delay_queue() -> dict:
    """The first message waiting in the test delay queue, left there."""
    connection = pika.BlockingConnection(pika.URLParameters(BROKER_URL))
    try:
        channel = connection.channel()
        method, _, body = channel.basic_get(QUEUE_PREFIX + DELAY_QUEUE)
        assert method is not None, "nothing in the delay queue"
        channel.basic_nack(method.delivery_tag, requeue=True)
        return json.loads(body)
    finally:
        connection.close()


@pytest.mark.timeout(scale(300, 600))
def test_a_delay_many_holds_long_is_accepted_and_runs_at_its_eta(engine, start_worker, redis_client, report):
    bound = engine.broker.max_hold_ms / 1000
    timeout_ms, delay = (90_001, 180.0) if FULL else (5_001, 4.0)
    # Two hours ahead is accepted: its record shows the eta, its message waits one bound at a time.
    far = client.submit("echo", kwargs={"value": "later"}, delay_ms=7_200_000)
    eta = engine.store.get(far)["eta"]
    assert eta == pytest.approx(time.time() + 7200, abs=5)
    body = _peek_delay_queue()
    # The message's end of wait is the record's eta, give or take the moment between recording and publishing
    # (the record's eta is rounded to the millisecond, the message's truncated: hence -1).
    assert body["message_id"] == far and -1 <= body["options"][DUE] - eta * 1000 < 1000
    assert body["options"]["eta"] <= (time.time() + bound) * 1000 + 100
    client.cancel(far)

    log = BrokerLog()
    with lowered_consumer_timeout(timeout_ms) as restore:
        start_worker()
        wait_for_consumers([QUEUE, DELAY_QUEUE], per_queue=2)
        restore()
        before = queue_counts(DELAY_QUEUE)["publish"]
        task_id = client.submit("echo", kwargs={"value": "on time"}, delay_ms=int(delay * 1000))
        due = engine.store.get(task_id)["eta"]
        record = wait_for_state(engine, task_id, "SUCCESS", timeout=delay + 60)
        # The cancelled task's message stops hopping at its next hop, and its record starts expiring.
        wait_until(lambda: redis_client.ttl(engine.store.keys.task(far)) > 0, bound + 30, message="the cancelled message dropped")
    assert due - 0.1 <= record["started_at"] <= due + 3, (record["started_at"], due)
    assert log.timed_out(timeout_ms) == []
    hops = settled_counts(DELAY_QUEUE)["publish"] - before
    assert hops >= math.ceil(delay / bound), f"{hops} publishes to the delay queue for a wait of {delay / bound:.0f} holds"
    report(
        fault=f"a task delayed {delay:g} s with holds of at most {bound:g} s (and one delayed 2 h, accepted)",
        accepted=2, completed=1, failed=0, lost=0, duplicated=0,
        started_late_by_seconds=round(record["started_at"] - due, 2), delay_queue_publishes=hops,
        consumer_timeout_ms=timeout_ms,
    )


def test_a_worker_killed_while_holding_waiting_messages_loses_none(engine, start_worker, namespace, redis_client, report):
    limit, window = 10, 2.0
    count = scale(40, 400)
    list_key = f"{namespace}:starts"
    victim = start_worker("--processes", "1", "--threads", "2")
    start_worker("--processes", "1", "--threads", "2")
    admissions = Admissions(redis_client, [engine.store.keys.rate_limit(ACTOR)], window)
    ids = submit_users([""], count, list_key)
    wait_until(lambda: redis_client.llen(list_key) >= limit + 2, 30, message="the first starts")
    held = wait_until(lambda: sum(w.get("held", 0) for w in engine.workers.list() if w["node"].endswith(f":{victim.pid}")),
                      10, message="the victim to hold waiting messages")
    victim.kill_group()  # SIGKILL: its held messages go back to RabbitMQ unacknowledged
    killed_at = time.time()
    counts = wait_all_final(engine, ids, timeout=count / limit * window / 0.6 + 60)
    assert counts == {"SUCCESS": count}, counts
    recorded = starts(redis_client, list_key)
    runs = {}
    for _, task_id, _ in recorded:
        runs[task_id] = runs.get(task_id, 0) + 1
    assert set(runs) == set(ids) and max(runs.values()) <= 2  # at most the one it was running runs again
    assert most_in_a_window([t for t, _ in admissions.finish()[engine.store.keys.rate_limit(ACTOR)]], window) <= limit
    report(
        fault="worker SIGKILLed while holding rate-limited messages",
        accepted=count, completed=counts["SUCCESS"], failed=0, lost=0, duplicated=0,
        held_by_the_killed_worker=held, ran_twice=sum(1 for n in runs.values() if n > 1),
        recovery_seconds=round(min(t for t, _, _ in recorded if t > killed_at) - killed_at, 1),
    )
