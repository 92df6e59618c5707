"""Who regulates the MG flow when: daytime GP regulation, PDSA at night, weekends and holidays."""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.engine.plan import load_plan
from sas_router.engine.plan.model import Priority
from sas_router.engine.plan.schedule import holiday_name, period_at, route_queue, utc, window_active

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rhone():
    return load_plan(ROOT / "dialplans" / "sas-69.yaml")


@pytest.fixture(scope="module")
def isere():
    return load_plan(ROOT / "dialplans" / "sas-38.yaml")


@pytest.mark.parametrize(
    ("when", "queue"),
    [
        (utc(2026, 11, 24, 10, 0), "n2-mg"),  # Tuesday 10:00
        (utc(2026, 11, 24, 7, 59), "pdsa"),  # Tuesday before 8:00
        (utc(2026, 11, 24, 20, 0), "pdsa"),  # Tuesday 20:00 sharp
        (utc(2026, 11, 24, 21, 0), "pdsa"),  # Tuesday 21:00
        (utc(2026, 11, 28, 11, 30), "n2-mg"),  # Saturday morning
        (utc(2026, 11, 28, 12, 0), "pdsa"),  # Saturday from noon
        (utc(2026, 11, 29, 10, 0), "pdsa"),  # Sunday
        (utc(2026, 7, 14, 10, 0), "pdsa"),  # 14 July, a Tuesday
        (utc(2026, 5, 14, 10, 0), "pdsa"),  # Ascension Thursday
    ],
)
def test_p2_follows_the_site_week_and_holidays(rhone, when, queue) -> None:
    assert route_queue(rhone, Priority.P2, when) == queue


def test_p1_and_p0(rhone) -> None:
    assert route_queue(rhone, Priority.P1, utc(2026, 11, 24, 3)) == "n2-amu"
    assert route_queue(rhone, Priority.P0, utc(2026, 11, 24, 3)) is None


def test_local_variant_pdsa_from_19h(isere, rhone) -> None:
    at_1930 = utc(2026, 11, 24, 19, 30)
    assert period_at(isere, at_1930) == "pdsa"
    assert period_at(rhone, at_1930) == "day"


def test_summer_time_is_the_site_wall_clock(rhone) -> None:
    # 06:30 UTC is 08:30 in Paris in summer (UTC+2) but 07:30 in winter (UTC+1).
    from datetime import UTC, datetime

    assert period_at(rhone, datetime(2026, 6, 16, 6, 30, tzinfo=UTC)) == "day"
    assert period_at(rhone, datetime(2026, 12, 15, 6, 30, tzinfo=UTC)) == "pdsa"


def test_alsace_moselle_calendar_has_its_extra_days(rhone) -> None:
    from sas_router.engine.plan.loader import holiday_calendar

    moselle = holiday_calendar("FR-57", years=[2026])
    from datetime import date

    assert date(2026, 12, 26) in moselle and date(2026, 4, 3) in moselle  # St Stephen, Good Friday
    assert holiday_name(rhone, date(2026, 12, 26)) is None  # not a holiday in the Rhône


def test_switchover_window_crossing_midnight(rhone) -> None:
    preset = rhone.switchovers["nuit-116117"]  # nights starting mon-fri, 20:00-08:00
    assert not window_active(preset, rhone, utc(2026, 11, 24, 19, 59))  # Tuesday evening
    assert window_active(preset, rhone, utc(2026, 11, 24, 20, 0))
    assert window_active(preset, rhone, utc(2026, 11, 25, 3, 0))  # Wednesday small hours: Tuesday's night
    assert not window_active(preset, rhone, utc(2026, 11, 25, 8, 0))
    assert window_active(preset, rhone, utc(2026, 11, 28, 7, 59))  # Saturday morning: Friday's night
    assert not window_active(preset, rhone, utc(2026, 11, 28, 21, 0))  # Saturday night: not in the days
    assert not window_active(preset, rhone, utc(2026, 11, 23, 3, 0))  # Monday small hours: Sunday's night


def test_naive_datetimes_are_refused(rhone) -> None:
    from datetime import datetime

    with pytest.raises(ValueError, match="aware"):
        period_at(rhone, datetime(2026, 11, 24, 10))
