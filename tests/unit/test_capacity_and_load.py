"""The capacity model against published values, and the load model's shape (pure, seeded)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sas_router.engine.cli import app
from sas_router.engine.plan import load_plan
from sas_router.simulator.capacity import Queue, agents_needed, erlang_a_forecast, erlang_b, erlang_c, erlang_c_forecast
from sas_router.simulator.load import LoadProfile, local_midnight, plan_day, staffing_for
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan(ROOT / "dialplans" / "sas-69.yaml")


def test_erlang_b_and_c_match_the_tables() -> None:
    # Erlang B tables: 10 Erlangs on 15 lines block 3.65 %; Erlang C: A=10, N=11 waits 68.2 %.
    assert erlang_b(15, 10.0) == pytest.approx(0.0365, abs=5e-4)
    assert erlang_c(11, 10.0) == pytest.approx(0.6821, abs=5e-4)
    assert erlang_c(5, 5.0) == 1.0  # unstable: everyone waits


def test_service_level_formula_and_staffing() -> None:
    # 120 calls/h of 180 s (6 Erlangs): 8 desks answer 74.4 % within 30 s, 9 desks 88.1 %, 10 desks 94.8 %.
    queue = Queue(120, 180)
    assert [round(erlang_c_forecast(queue, n).service_level, 3) for n in (8, 9, 10)] == [0.744, 0.881, 0.948]
    assert agents_needed(queue, 0.9).agents == 10
    assert agents_needed(queue, 0.8).agents == 9


def test_erlang_a_tends_to_erlang_c_and_impatience_helps_the_ones_who_stay() -> None:
    patient = erlang_a_forecast(Queue(120, 180, patience=1e7), 8)
    assert patient.service_level == pytest.approx(erlang_c_forecast(Queue(120, 180), 8).service_level, abs=1e-3)
    impatient = erlang_a_forecast(Queue(120, 180, patience=60), 6)
    assert impatient.abandon_rate > 0.15
    assert impatient.service_level > erlang_c_forecast(Queue(120, 180), 7).service_level
    with pytest.raises(ValueError, match="no staffing"):
        agents_needed(Queue(100000, 600), 0.99, max_agents=20)


def test_a_day_is_shaped_like_a_samu_day_and_repeatable() -> None:
    start = local_midnight(PLAN, "2026-11-24")  # a Tuesday
    calls = plan_day(PLAN, LoadProfile(), start, 86400, seed=5)
    assert calls == plan_day(PLAN, LoadProfile(), start, 86400, seed=5)
    assert 2800 <= len(calls) <= 3200
    tz = ZoneInfo(PLAN.site.timezone)
    by_hour = Counter(datetime.fromtimestamp(c.at, UTC).astimezone(tz).hour for c in calls)
    assert by_hour[11] > 3 * by_hour[4]  # late-morning peak, quiet before dawn
    lines = Counter(c.line for c in calls)
    assert lines["15"] > lines["116117"] > lines["sis-n1"] > 0
    levels = Counter(c.level for c in calls)
    assert levels["P2"] > levels["P1"] > levels["P0"]
    sunday = plan_day(PLAN, LoadProfile(), local_midnight(PLAN, "2026-11-22"), 86400, seed=5)
    assert Counter(c.line for c in sunday)["116117"] > 1.5 * lines["116117"]  # the weekend's MG/PDSA flow
    surge = plan_day(PLAN, LoadProfile(surge=2.0), start, 86400, seed=5)
    assert 1.8 * len(calls) < len(surge) < 2.2 * len(calls)


def test_staffing_follows_the_hour_and_keeps_the_amu_minimum() -> None:
    start = local_midnight(PLAN, "2026-11-24")
    night, morning = staffing_for(PLAN, LoadProfile(), start + 4 * 3600), staffing_for(PLAN, LoadProfile(),
                                                                                      start + 11 * 3600)
    assert morning["n1-arm"] > night["n1-arm"] >= 1
    assert night["n2-amu"] >= 2  # one ARM and one emergency doctor, always
    assert night["pdsa"] > 0 and morning["pdsa"] == 0 and morning["n2-mg"] > night["n2-mg"]


def test_capacity_command() -> None:
    result = CliRunner().invoke(app, ["capacity", "--calls-per-hour", "120", "--handle", "180"])
    assert result.exit_code == 0, result.output
    assert "10 desks: answered within 30 s 94.8%" in result.output
    result = CliRunner().invoke(app, ["capacity", "--calls-per-hour", "120", "--handle", "180", "--agents", "8"])
    assert "8 desks: answered within 30 s 74.4%" in result.output
    result = CliRunner().invoke(app, ["capacity", "--calls-per-hour", "120", "--handle", "180", "--plan",
                                      str(ROOT / "dialplans" / "sas-69.yaml")])
    assert result.exit_code == 0 and "11h" in result.output and "n1-arm" in result.output
