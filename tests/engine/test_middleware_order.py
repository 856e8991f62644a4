"""The engine's middleware stand in the one declared order (see pipeline.broker.engine_middleware)."""

from pipeline.middleware.cancellation import Cancellation
from pipeline.middleware.connections import FreshPublisher
from pipeline.middleware.rate_limits import RateLimits
from pipeline.middleware.results import StateStoreResults
from pipeline.middleware.retries import RetryPolicy
from pipeline.middleware.state import TaskState
from pipeline.middleware.time_limits import TimeLimits
from pipeline.middleware.workflows import WorkflowFollowUps
from pipeline.observability.message import LogContext


def test_rate_limits_then_task_state_then_retries_then_the_interrupters(engine):
    assert [type(m) for m in engine.broker.middleware] == [
        LogContext, FreshPublisher, WorkflowFollowUps, StateStoreResults, RateLimits, TaskState, RetryPolicy, TimeLimits,
        Cancellation,
    ]
