"""Settings of the scheduler, read from ``CLAW_*`` variables.

The scheduler's timezone is the engine's ``CLAW_TIMEZONE`` (see
:mod:`pipeline.settings`); everything else it needs is here. What the
scheduled maintenance jobs do is configured with them
(:mod:`pipeline.maintenance.config`).
"""

from __future__ import annotations

import functools
from typing import Any, Optional

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
