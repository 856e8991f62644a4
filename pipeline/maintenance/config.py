"""Settings of the health check (``check_task_health``), read from ``CLAW_HEALTH_*`` variables."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError
from pipeline.notifications.registry import CHANNEL_NAMES, channel_list
from pipeline.settings import env_name


class HealthSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAW_", extra="ignore")

    health_backlog_depth: int = Field(1000, ge=1, description="Alert when a queue holds more ready messages than this.")
    health_oldest_pending_seconds: float = Field(
        900.0, gt=0, description="Alert when a queue's oldest due PENDING task has waited longer than this."
    )
    health_failure_rate: float = Field(
        0.25, gt=0, le=1, description="Alert when an actor's share of failed tasks in the window exceeds this."
    )
    health_failure_min_tasks: int = Field(
        10, ge=1, description="An actor needs at least this many finished tasks in the window to be judged."
    )
    health_window_seconds: int = Field(1800, ge=60, description="Window of the failure-rate check (by enqueue time).")
    health_alert_channel: Literal[CHANNEL_NAMES] = Field("email", description=f"Channel of health alerts: {channel_list()}.")
    health_alert_recipient: str = Field("", description="Recipient of health alerts; empty = alerts are not sent.")
    health_alert_actor: str = Field(
        "send_notification",
        description="Actor that delivers alerts (takes channel, recipient, subject, body).",
    )
    health_alert_repeat_seconds: int = Field(
        3600, ge=60, description="The same problem is alerted again only after this long."
    )


def load_health_settings(**overrides: Any) -> HealthSettings:
    """Read and validate; raise ConfigError naming the variable on failure."""
    try:
        return HealthSettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise ConfigError(f"{env_name(str(error['loc'][0]))}: {str(error['msg']).removeprefix('Value error, ')}") from None


@functools.lru_cache(maxsize=1)
def get_health_settings() -> HealthSettings:
    """The process-wide health check settings (read once)."""
    return load_health_settings()
