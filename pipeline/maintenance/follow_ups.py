"""The due-set sweep: publishes workflow tasks whose publisher died before publishing them.

Every worker process runs it (from :class:`pipeline.middleware.workflows.WorkflowFollowUps`)
every third of ``CLAW_WORKFLOW_OVERDUE_SECONDS``; a task is taken only once
it has been due for that long, so the sweep never
races the worker that is publishing it right now, and each sweeper claims
what it takes (another one sees it again only after a further grace period).
"""

from __future__ import annotations

import logging

from pipeline.state import StateStore
from pipeline.follow_ups import publish_due

logger = logging.getLogger("pipeline.maintenance")


def publish_overdue(store: StateStore, broker, overdue_seconds: float) -> int:
    """Publish every task that has been due for longer than *overdue_seconds*; returns how many."""
    published = 0
    while ids := store.claim_overdue(overdue_seconds):
        logger.warning("Publishing %d workflow task(s) left due by a publisher that stopped.", len(ids))
        published += publish_due(store, broker, ids)
        if len(ids) < 500:
            break
    return published
