"""Which regulation answers the MG flow at a given instant, in the site's own time zone.

Pure functions of (plan, instant): the engine passes its injected clock's time, so a test can ask
"who regulates at 21:00 on 14 July" without waiting for it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from sas_router.engine.plan.loader import holiday_calendar
from sas_router.engine.plan.model import Plan, Priority, SwitchoverPreset

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@lru_cache(maxsize=64)
def _calendar(name: str, year: int) -> dict[date, str]:
    return dict(holiday_calendar(name, years=[year]).items())


def local_time(plan: Plan, instant: datetime) -> datetime:
    """``instant`` (aware, any zone) seen on the site's wall clock."""
    if instant.tzinfo is None:
        raise ValueError("schedule decisions need an aware datetime (the engine's clock is UTC)")
    return instant.astimezone(ZoneInfo(plan.site.timezone))


def holiday_name(plan: Plan, day: date) -> str | None:
    return _calendar(plan.site.holidays, day.year).get(day)


def period_at(plan: Plan, instant: datetime) -> str:
    """The schedule period (e.g. ``day`` or ``pdsa``) in force at ``instant``."""
    local = local_time(plan, instant)
    if holiday_name(plan, local.date()) is not None:
        return plan.schedule.holiday_period
    minute = local.hour * 60 + local.minute
    for slot in plan.schedule.week[local.weekday()]:
        if slot.start <= minute < slot.end:
            return slot.period
    raise AssertionError("a validated schedule covers every minute of the week")


def route_queue(plan: Plan, level: Priority, instant: datetime) -> str | None:
    """Target queue of a qualification at ``instant``; ``None`` means the call stays (P0)."""
    route = plan.routes[level]
    if route.stay:
        return None
    if route.queue is not None:
        return route.queue
    return route.by_period[period_at(plan, instant)]


def window_active(preset: SwitchoverPreset, plan: Plan, instant: datetime) -> bool:
    """Is a switch-over preset's recurring window open? A window may cross midnight (20:00-08:00):
    the part after midnight belongs to the day the window started on."""
    if preset.window is None:
        return False
    local = local_time(plan, instant)
    start, end = preset.window.minutes()
    minute = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    if start < end:
        return today in preset.window.days and start <= minute < end
    return (today in preset.window.days and minute >= start) or (yesterday in preset.window.days and minute < end)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, tz: str = "Europe/Paris") -> datetime:
    """A site-local wall-clock time as an aware UTC instant (handy in tests and the simulator)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(tz)).astimezone(UTC)
