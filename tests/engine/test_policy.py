"""The original design's policy, pinned against what the engine declares and binds.

The expected values are written out here, not read from the declarations or
the docs: changing a value and its documentation together still fails this
test, and whoever changes one must change it here too, on purpose. Source:
the Celery design summary (/work/shared/seed/celery-design-summary.zh.md).
Where the design says nothing for an actor, or where this engine decided
otherwise, the comment on its row says so and why.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import pytest

import pipeline.actors  # noqa: F401  (declares the built-in tasks)
from pipeline.middleware.retries import backoff_ms
from pipeline.registry import MAX_PRIORITY, QUEUES, REGISTRY, OwnerOr, policy_of
from pipeline.settings import Settings
from scheduler.builtin import BUILTIN_SCHEDULES
from scheduler.triggers import cron_trigger, first_fire_after

MINUTE = 60

#: actor: (queue, priority, max_retries, soft limit s, hard limit s, rate limit, per-key rate limit and its key)
ORIGINAL_DESIGN = {
    # design: ai_high_priority (high priority), 10/min, 3 retries, soft 2 min / hard 3 min. The 10/min is per
    # user (the submission's owner; per conversation for a task submitted for nobody), fair to every user under
    # load, with an operator-set cap over all users (CLAW_AI_GLOBAL_RATE_LIMIT).
    "generate_ai_response": ("ai_high_priority", 9, 3, 2 * MINUTE, 3 * MINUTE, "ai_global_rate_limit", ("10/m", OwnerOr("conversation_id"))),
    # design: knowledge_default, 5/min, 3 retries, soft 5 min / hard 10 min. Priority 5: the design gives none.
    "vectorize_document": ("knowledge_default", 5, 3, 5 * MINUTE, 10 * MINUTE, "5/m", (None, None)),
    # design: knowledge_default, 2 retries, soft 3 min / hard 5 min.
    "update_knowledge_base": ("knowledge_default", 5, 2, 3 * MINUTE, 5 * MINUTE, None, (None, None)),
    # not in the design: the callback of update_knowledge_base's chord (issue 17). It builds the base's index
    # once after a rebuild (minutes on a large base), hence 15 / 20 min; 3 retries like vectorize_document.
    "finish_knowledge_update": ("knowledge_default", 5, 3, 15 * MINUTE, 20 * MINUTE, None, (None, None)),
    # design: knowledge_default, 2 retries; no limits given, so the design's defaults (soft 5 min / hard 10 min).
    "delete_knowledge_vectors": ("knowledge_default", 5, 2, 5 * MINUTE, 10 * MINUTE, None, (None, None)),
    # not in the design (a whole base at once, issue 20): as delete_knowledge_vectors, with the cleanup's limits.
    "delete_knowledge_base": ("knowledge_default", 5, 2, 25 * MINUTE, 30 * MINUTE, None, (None, None)),
    # design: notification_default, 3 retries; no limits given. Ours: soft 90 s / hard 2 min instead of the
    # design's defaults, because a send is one provider call that times out in 10 s (four for SMTP).
    "send_notification": ("notification_default", 0, 3, 90, 2 * MINUTE, None, (None, None)),
    # not in the design: one notification to many recipients. It only submits its children as a workflow
    # group and returns (issue 17), so 2 / 3 min: far more than a 5,000-member group's submission takes.
    "send_notification_batch": ("default", 0, 3, 2 * MINUTE, 3 * MINUTE, None, (None, None)),
    # design: daily at 02:00 (below); queue, retries and limits are ours.
    "cleanup_expired_results": ("default", 0, 1, 25 * MINUTE, 30 * MINUTE, None, (None, None)),
    # design: every 30 minutes (below); never retried, the next run comes soon enough.
    "check_task_health": ("default", 0, 0, 4 * MINUTE, 5 * MINUTE, None, (None, None)),
}

#: design: exponential backoff 1 min, 2 min, 4 min (ours adds +/-20 % jitter), for every actor.
BACKOFF_SECONDS = {1: 60, 2: 120, 3: 240}
#: Ours: no backoff past 20 minutes (RabbitMQ's consumer timeout is 30).
BACKOFF_CAP_MS = 1_200_000


def builtin_actors() -> dict:
    return {name: spec for name, spec in REGISTRY.items() if spec.fn.__module__.startswith("pipeline.actors")}


def test_every_builtin_actor_has_a_row_in_the_original_design_table():
    assert set(builtin_actors()) == set(ORIGINAL_DESIGN)


@pytest.mark.parametrize("actor", sorted(ORIGINAL_DESIGN))
def test_declared_policy_is_the_original_design(actor):
    queue, priority, retries, soft, hard, rate, (key_rate, key) = ORIGINAL_DESIGN[actor]
    policy = REGISTRY[actor].policy
    assert (policy.queue, policy.priority, policy.max_retries) == (queue, priority, retries)
    assert (policy.soft_time_limit, policy.time_limit) == (soft, hard)
    assert getattr(policy.rate_limit, "name", policy.rate_limit) == rate
    assert (policy.rate_limit_per_key, policy.rate_limit_key) == (key_rate, key)
    assert (policy.retry_backoff_ms, policy.retry_backoff_max_ms) == (60_000, BACKOFF_CAP_MS)
    assert policy.lost_policy == "requeue"


def test_the_operator_cap_on_ai_responses_defaults_to_300_a_minute():
    assert Settings.model_fields["ai_global_rate_limit"].default == "300/m"


@pytest.mark.parametrize("actor", sorted(ORIGINAL_DESIGN))
def test_the_bound_actor_runs_with_its_declared_policy_on_its_queue(engine, actor):
    declared, bound = REGISTRY[actor].policy, policy_of(engine.broker, actor)
    unresolved = {f.name for f in dataclasses.fields(declared) if not isinstance(getattr(declared, f.name), (str, int, float, type(None)))}
    assert {f.name: getattr(bound, f.name) for f in dataclasses.fields(bound) if f.name not in unresolved} == \
           {f.name: getattr(declared, f.name) for f in dataclasses.fields(declared) if f.name not in unresolved}
    assert REGISTRY[actor].actor.queue_name == engine.settings.queue_prefix + ORIGINAL_DESIGN[actor][0]


@pytest.mark.parametrize("attempt", sorted(BACKOFF_SECONDS))
def test_retries_back_off_one_two_four_minutes_with_jitter(attempt):
    for actor in ORIGINAL_DESIGN:
        delays = {backoff_ms(REGISTRY[actor].policy, attempt) for _ in range(200)}
        expected = BACKOFF_SECONDS[attempt] * 1000
        assert expected * 0.8 <= min(delays) and max(delays) <= expected * 1.2, actor
        assert len(delays) > 1  # jittered, so retries of many tasks do not arrive together


def test_the_engine_wide_settings_of_the_design():
    assert QUEUES == ("ai_high_priority", "knowledge_default", "notification_default", "default")
    assert MAX_PRIORITY == 9  # design: priorities 0-9, 9 highest
    defaults = {name: Settings.model_fields[name].default for name in
                ("result_ttl_seconds", "timezone", "worker_processes", "worker_threads",
                 "max_tasks_per_child", "max_memory_per_child_mib")}
    # design: results kept 1 h, Asia/Shanghai, 4 workers recycled every 100 tasks. Ours: 2 processes x 2
    # threads (4 at once), recycled on memory (512 MiB) with a 10,000-task backstop, because recycling every
    # 100 tasks cost most of the throughput of short tasks (bench/results/recycling-every-100-tasks.md).
    assert defaults == {"result_ttl_seconds": 3600, "timezone": "Asia/Shanghai", "worker_processes": 2,
                        "worker_threads": 2, "max_tasks_per_child": 10_000, "max_memory_per_child_mib": 512}


def test_builtin_schedules_clean_up_daily_at_two_and_check_health_every_half_hour():
    assert {s["id"]: (s["actor"], s.get("cron"), s.get("interval_seconds")) for s in BUILTIN_SCHEDULES} == {
        "cleanup_expired_results": ("cleanup_expired_results", "0 2 * * *", None),
        "check_task_health": ("check_task_health", None, 30 * MINUTE),
    }
    noon = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc).timestamp()
    cleanup = first_fire_after(cron_trigger("0 2 * * *", "Asia/Shanghai"), noon)
    assert cleanup.isoformat() == "2026-03-02T02:00:00+08:00"
