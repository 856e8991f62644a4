"""A schedule's trigger as an APScheduler trigger, with cron's own meaning.

APScheduler 3's ``CronTrigger.from_crontab`` reads day-of-week 0 as Monday
(cron: Sunday), steps like ``*/2`` from Monday, and ANDs a restricted
day-of-month with a restricted day-of-week (cron ORs them). So crontab text
is never handed to it: croniter validates the expression and expands minute,
hour, day and month; the day-of-week field is expanded here in cron numbering
(0 and 7 = Sunday; croniter reads ``7-7`` as every day) and handed over as
names (``sun``..``sat``); and the OR of the two day fields becomes an
``OrTrigger`` of two CronTriggers.

Interval triggers are anchored at the schedule's creation second, so every
scheduler replica computes the same fire times; that is what makes the
per-fire de-dup key work across a leader hand-over.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Optional, Union

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from croniter import croniter
from croniter.croniter import CroniterError

#: Day-of-week names in cron numbering (0 = Sunday; croniter folds 7 into 0).
CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

Trigger = Union[CronTrigger, OrTrigger, IntervalTrigger]


def cron_fields(expression: str) -> list[dict[str, str]]:
    """CronTrigger keyword arguments for a 5-field crontab expression (or @daily etc.).

    Returns one dict, or two whose fire times are ORed (both day fields
    restricted). Raises ValueError saying what is wrong.
    """
    text = " ".join(expression.split())
    if not text.startswith("@") and len(text.split(" ")) != 5:
        raise ValueError("must have 5 fields: minute hour day-of-month month day-of-week")
    try:
        expanded, nth_weekday = croniter.expand(text)
    except (CroniterError, ValueError, TypeError) as exc:
        raise ValueError(f"is not a valid cron expression ({exc})") from None
    if "l" in expanded[2] or "l" in expanded[4] or nth_weekday:
        raise ValueError("'L' and '#' are not supported; use plain crontab fields")
    minute, hour, day, month = (_join(values) for values in expanded[:4])
    if text.startswith("@"):  # @weekly and friends: croniter's own expansion is right for these
        days = set(range(7)) if expanded[4] == ["*"] else {int(n) for n in expanded[4]}
    else:
        days = cron_weekdays(text.split(" ")[4])
    weekday = "*" if len(days) == 7 else ",".join(CRON_WEEKDAYS[n] for n in sorted(days))
    base = {"minute": minute, "hour": hour, "month": month, "second": "0"}
    if day != "*" and weekday != "*":
        return [{**base, "day": day, "day_of_week": "*"}, {**base, "day": "*", "day_of_week": weekday}]
    return [{**base, "day": day, "day_of_week": weekday}]


def cron_weekdays(field: str) -> set[int]:
    """Days (0 = Sunday .. 6) named by a crontab day-of-week field; 7 is Sunday too."""
    days: set[int] = set()
    for item in field.lower().split(","):
        spec, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"day-of-week step {step_text!r} is not a positive number")
        if spec == "*":
            first, last = 0, 6
        else:
            low, dash, high = spec.partition("-")
            if step and not dash:  # crons disagree on what "1/2" means
                raise ValueError(f"day-of-week {item!r}: give a range with the step, like 1-5/2")
            first = _weekday_number(low)
            last = _weekday_number(high) if dash else first
            if last < first:
                raise ValueError(f"day-of-week range {spec!r} runs backwards")
        days.update(n % 7 for n in range(first, last + 1, step or 1))
    return days


def _weekday_number(text: str) -> int:
    if text in CRON_WEEKDAYS:
        return CRON_WEEKDAYS.index(text)
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text)
    raise ValueError(f"day-of-week {text!r} is not 0-7 or sun-sat")


def _join(values: list) -> str:
    return "*" if values == ["*"] else ",".join(str(v) for v in values)


def cron_trigger(expression: str, tz: str) -> Union[CronTrigger, OrTrigger]:
    parts = [CronTrigger(timezone=tz, **fields) for fields in cron_fields(expression)]
    return parts[0] if len(parts) == 1 else OrTrigger(parts)


def interval_trigger(seconds: int, anchor: float) -> IntervalTrigger:
    start = datetime.fromtimestamp(math.floor(anchor), timezone.utc)
    return IntervalTrigger(seconds=seconds, start_date=start, timezone=timezone.utc)


def first_fire_after(trigger: Trigger, since: float) -> Optional[datetime]:
    """The first fire time strictly after epoch *since* (None: never fires again)."""
    moment = datetime.fromtimestamp(since, timezone.utc) + timedelta(microseconds=1)
    return trigger.get_next_fire_time(None, moment)


def next_fire(trigger: Trigger, fired: datetime) -> Optional[datetime]:
    """The fire time following *fired* (may be in the past when the scheduler was late)."""
    return trigger.get_next_fire_time(fired, max(fired, datetime.now(timezone.utc)))


def epoch(moment: Optional[datetime]) -> Optional[float]:
    return None if moment is None else moment.timestamp()
