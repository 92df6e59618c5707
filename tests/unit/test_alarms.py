"""The room's alarm policy and board, without a switch: what raises an alarm, that it does not
flicker, and what an acknowledgement means."""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.engine.plan import load_plan, parse_plan
from sas_router.engine.plan.model import AlarmPolicy, OverflowRule, OverflowWhen, Role
from sas_router.supervision.alarms import (
    AlarmBoard,
    Condition,
    Level,
    QueueState,
    RoomState,
    Service,
    SwitchState,
    conditions,
    service,
)

ROOT = Path(__file__).resolve().parents[2]
POLICY = AlarmPolicy()


def queue(name: str = "n2-amu", role: Role = Role.N2_AMU, *, waiting: int = 0, longest: float = 0.0,
          logged_in: int = 2, available: int = 0, **extra) -> QueueState:
    return QueueState(name, role, name, waiting, longest, logged_in, available, **extra)


def room(*queues: QueueState, **extra) -> RoomState:
    return RoomState(now=1000.0, queues=queues, qs30_target=0.9, **extra)


def keys(state: RoomState) -> list[str]:
    return [c.key for c in conditions(state, POLICY)]


def test_two_callers_waiting_145_s_in_amu_raise_a_critical_alarm_in_french() -> None:
    """The issue's room: AMU has no overflow rule and no fallback, and two callers waited 145 s
    with "aucune alarme". Every queue has a long-wait limit now (AMU: one minute by default)."""
    [found] = conditions(room(queue(waiting=2, longest=145)), POLICY)
    assert (found.key, found.level, found.subject) == ("long-wait:n2-amu", Level.CRITICAL, "n2-amu")
    assert found.text == "n2-amu : un appelant attend depuis 2 min 25 s (seuil 1 min 00 s), 2 en attente"
    assert keys(room(queue(waiting=2, longest=59))) == []


def test_the_limit_comes_from_the_role_unless_the_plan_or_the_queue_says_otherwise() -> None:
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    assert {name: plan.alarms.long_wait_for(spec) for name, spec in plan.queues.items()} == {
        "n1-arm": 60, "n2-amu": 60, "n2-mg": 180, "pdsa": 300, "psy": 300}
    text = (ROOT / "dialplans" / "sas-69.yaml").read_text(encoding="utf-8")
    text = text.replace("queues:\n  n1-arm:\n", "queues:\n  n1-arm:\n    long_wait_alarm: 45\n", 1)
    custom = parse_plan(text + "\nalarms:\n  long_wait: {n2-mg: 120}\n  clear_after: 60\n")
    assert custom.alarms.long_wait_for(custom.queues["n1-arm"]) == 45
    assert custom.alarms.long_wait_for(custom.queues["n2-mg"]) == 120
    assert custom.alarms.long_wait_for(custom.queues["pdsa"]) == 300 and custom.alarms.clear_after == 60


def test_a_queue_that_receives_calls_needs_somebody_even_before_anyone_waits() -> None:
    assert keys(room(queue("n1-arm", Role.N1, logged_in=0, lines=("15", "116117")))) == ["nobody:n1-arm"]
    assert keys(room(queue("n2-mg", Role.N2_MG, logged_in=0))) == []  # nothing lands there by itself
    assert keys(room(queue("n2-mg", Role.N2_MG, logged_in=0, waiting=1, longest=3))) == ["nobody:n2-mg"]


def test_mutual_aid_that_fails_or_is_switched_off_while_needed() -> None:
    state = room(queue("n1-arm", Role.N1, waiting=7, longest=20, available=0,
                       overflow=OverflowRule(partners=["sas-38"], when=OverflowWhen(callers_waiting_over=6)),
                       overflow_off_by="sup-1"),
                 switchovers=(SwitchState("116117", "sas-38", 100, recent_failures=7),
                              SwitchState("15", "sas-38", 30, recent_failures=0)),
                 overflow_partners=(("n1-arm", "sas-38", "failing"),))
    found = {c.key: c for c in conditions(state, POLICY)}
    assert set(found) == {"switchover-failing:116117", "overflow-off:n1-arm", "overflow-failing:n1-arm:sas-38"}
    assert found["switchover-failing:116117"].level == Level.CRITICAL
    assert "7 appel(s) revenu(s)" in found["switchover-failing:116117"].text
    assert found["overflow-off:n1-arm"].text.endswith("(7 en attente > 6)")
    plan_off = room(queue("n1-arm", Role.N1, waiting=7, longest=20, overflow=OverflowRule(
        partners=["sas-38"], when=OverflowWhen(callers_waiting_over=6)), overflow_off_by="plan"))
    assert keys(plan_off) == []  # the plan's own choice is not an alarm


def test_abandon_rate_needs_enough_calls_to_be_a_rate() -> None:
    assert keys(room(offered_15m=9, abandoned_15m=5)) == []
    assert keys(room(offered_15m=20, abandoned_15m=3)) == []  # 15 % is the limit, not over it
    [found] = conditions(room(offered_15m=20, abandoned_15m=4), POLICY)
    assert found.key == "abandon-rate" and "20%" in found.text and found.level == Level.WARNING


def test_critical_first_then_warnings() -> None:
    state = room(queue(waiting=1, longest=90), qs30_15m=0.5, answered_15m=10, ami="stalled", journal_up=False,
                 emergency_doctor=False)
    levels = [c.level for c in conditions(state, POLICY)]
    assert levels == sorted(levels, key=lambda level: level != Level.CRITICAL)
    assert set(keys(state)) == {"long-wait:n2-amu", "qs30", "switch-link", "journal", "no-emergency-doctor"}


@pytest.mark.parametrize(("waiting", "longest", "logged_in", "available", "expected"), [
    (0, 0, 0, 0, Service.OK),
    (1, 10, 2, 1, Service.OK),
    (1, 31, 2, 1, Service.STRAINED),       # over the queue's service level
    (3, 10, 2, 1, Service.STRAINED),       # more callers than free desks
    (1, 60, 2, 0, Service.DROWNING),       # the long-wait limit
    (1, 1, 0, 0, Service.DROWNING),        # callers and nobody to answer
])
def test_service_now(waiting: int, longest: float, logged_in: int, available: int, expected: Service) -> None:
    assert service(queue(waiting=waiting, longest=longest, logged_in=logged_in, available=available)) == expected


def test_an_alarm_is_raised_at_once_and_clears_only_after_staying_clear() -> None:
    board = AlarmBoard(clear_after=30)
    long_wait = conditions(room(queue(waiting=1, longest=70)), POLICY)
    assert [e.kind for e in board.update(long_wait, 100.0)] == ["raised"]
    assert board.update(long_wait, 101.0) == []  # still there: nothing new
    assert board.update([], 102.0) == []  # the caller is answered: the alarm holds ...
    assert board.active(102.0)[0]["clearing"] is True
    assert board.update(long_wait, 110.0) == []  # ... and the next long wait is the same episode
    assert board.update([], 139.0) == []
    [cleared] = board.update([], 140.0)
    assert (cleared.kind, cleared.key) == ("cleared", "long-wait:n2-amu") and board.active(140.0) == []


def test_an_acknowledgement_names_the_supervisor_and_lasts_as_long_as_the_episode() -> None:
    board = AlarmBoard(clear_after=0)
    warning = conditions(room(qs30_15m=0.8, answered_15m=20), POLICY)
    board.update(warning, 10.0)
    event = board.acknowledge("qs30", "sup-1", 12.0)
    assert (event.kind, event.by) == ("acknowledged", "sup-1")
    assert board.active(12.0)[0]["acknowledged_by"] == "sup-1"
    board.update([], 13.0)  # cleared
    board.update(warning, 14.0)  # a new episode
    assert board.active(14.0)[0]["acknowledged_by"] is None
    with pytest.raises(LookupError):
        board.acknowledge("no-such-alarm", "sup-1", 15.0)


def test_a_warning_that_becomes_critical_is_escalated_and_needs_a_new_acknowledgement() -> None:
    board = AlarmBoard()
    board.update([c for c in conditions(room(journal_up=False), POLICY)], 1.0)
    board.acknowledge("journal", "sup-1", 2.0)
    [event] = board.update([Condition("journal", Level.CRITICAL, "pire")], 3.0)
    assert event.kind == "escalated" and board.active(3.0)[0]["acknowledged_by"] is None
