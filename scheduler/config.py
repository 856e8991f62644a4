"""Settings of the scheduler and of the health check, read from ``CLAW_*`` variables.

The scheduler's timezone is the engine's ``CLAW_TIMEZONE`` (see
:mod:`pipeline.settings`); everything else it needs is here. The health
thresholds live here too because the health check is scheduled work whose
alerts the scheduler's operators own.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, Optional

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigError
from pipeline.settings import env_name


class SchedulerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLAW_", extra="ignore")

    scheduler_lock_ttl_seconds: float = Field(
        10.0, ge=1, le=300,
        description="Leader lock TTL: a standby takes over this long after the leader dies without releasing it.",
    )
    scheduler_lock_renew_seconds: Optional[float] = Field(
        None, gt=0, description="How often the leader renews its lock (default: a third of the TTL)."
    )
    scheduler_poll_seconds: float = Field(
        1.0, gt=0, le=2, description="How often the leader reloads schedules from Redis (changes apply within this)."
    )
    scheduler_misfire_grace_seconds: int = Field(
        300, ge=1, description="A fire missed while no scheduler ran is still run (once) if at most this late."
    )
    scheduler_builtins: bool = Field(
        True, description="Register the built-in maintenance schedules (cleanup, health check) at start."
    )

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
    health_alert_channel: Literal["email", "push", "sms", "system"] = Field(
        "email", description="Channel of health alerts (email, push, sms or system = in-app inbox)."
    )
    health_alert_recipient: str = Field("", description="Recipient of health alerts; empty = alerts are not sent.")
    health_alert_actor: str = Field(
        "send_notification",
        description="Actor that delivers alerts (takes channel, recipient, subject, body).",
    )
    health_alert_repeat_seconds: int = Field(
        3600, ge=60, description="The same problem is alerted again only after this long."
    )

    @model_validator(mode="after")
    def _check_renew(self) -> "SchedulerSettings":
        if self.scheduler_lock_renew_seconds is not None and self.scheduler_lock_renew_seconds >= self.scheduler_lock_ttl_seconds:
            raise ValueError("scheduler_lock_renew_seconds: must be shorter than CLAW_SCHEDULER_LOCK_TTL_SECONDS")
        return self

    @property
    def lock_renew_seconds(self) -> float:
        return self.scheduler_lock_renew_seconds or self.scheduler_lock_ttl_seconds / 3


def load_scheduler_settings(**overrides: Any) -> SchedulerSettings:
    """Read and validate; raise ConfigError naming the variable on failure."""
    try:
        return SchedulerSettings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["loc"]:
            field = str(error["loc"][0])
        else:  # a cross-field check names its field first
            field, _, message = message.partition(": ")
        raise ConfigError(f"{env_name(field)}: {message}") from None


@functools.lru_cache(maxsize=1)
def get_scheduler_settings() -> SchedulerSettings:
    """The process-wide scheduler settings (read once)."""
    return load_scheduler_settings()
