"""Overflow and switch-over decisions, without a switch: which callers leave, to whom, and when."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
import structlog
from sas_router.engine.core.calls import Call, QueueVisit, VisitOutcome
from sas_router.engine.core.mutual_aid import OverflowGovernor, PartnerBoard, QueueLoad, load_message
from sas_router.engine.core.switchover import Switchover, SwitchoverError, check_request, preset_decisions
from sas_router.engine.mutual_aid import MutualAid
from sas_router.engine.plan import load_plan
from sas_router.engine.plan.model import OverflowWhen
from sas_router.engine.plan.schedule import utc

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rhone():
    return load_plan(ROOT / "dialplans" / "sas-69.yaml")


def waiting(uniqueid: str, joined_at: float, **tags) -> Call:
    call = Call(uniqueid=uniqueid, linkedid=uniqueid, channel=f"PJSIP/operator-{uniqueid}", started_at=joined_at,
                **tags)
    call.visits.append(QueueVisit("n1-arm", joined_at))
    return call


def load(waiting_calls: list[Call], now: float, *, logged_in: int = 2, available: int = 0) -> QueueLoad:
    longest = max((now - c.visits[-1].joined_at for c in waiting_calls), default=0.0)
    return QueueLoad("n1-arm", "n1", len(waiting_calls), longest, logged_in, available)


# --- the rule and its hysteresis -----------------------------------------------------------------


def test_rule_fires_on_the_longest_wait_and_moves_only_the_callers_over_it(rhone) -> None:
    governor = OverflowGovernor(rhone)  # n1-arm: longest wait over 90 s, > 8 waiting, nobody logged in
    calls = [waiting("a", 0.0), waiting("b", 50.0), waiting("c", 80.0)]
    now = 100.0
    transition = governor.observe(load(calls, now), now)
    assert transition is not None and transition.kind == "overflow-started"
    assert transition.reasons == ("longest wait 100 s over 90 s",)
    chosen = governor.select("n1-arm", calls, load(calls, now), now, pending=set(), partner_failed_at={})
    assert [c.uniqueid for c in chosen] == ["a"]


def test_too_many_waiting_moves_the_oldest_excess_callers(rhone) -> None:
    governor = OverflowGovernor(rhone)
    calls = [waiting(f"c{i}", 10.0 + i) for i in range(11)]  # 11 waiting, the rule allows 8
    now = 30.0
    governor.observe(load(calls, now), now)
    chosen = governor.select("n1-arm", list(reversed(calls)), load(calls, now), now, pending=set(),
                             partner_failed_at={})
    assert [c.uniqueid for c in chosen] == ["c0", "c1", "c2"]
    # Two of them already on their way: only one more leaves.
    chosen = governor.select("n1-arm", calls, load(calls, now), now, pending={"c0", "c1"}, partner_failed_at={})
    assert [c.uniqueid for c in chosen] == ["c2"]


def test_never_a_p0_nor_a_call_that_came_from_a_partner(rhone) -> None:
    governor = OverflowGovernor(rhone)
    p0 = waiting("p0", 0.0, qualification="P0")
    overflow_in = waiting("ovf", 1.0, inbound="overflow", overflow_in=True)
    switched_in = waiting("sw", 2.0, inbound="switchover")
    plain = waiting("plain", 3.0)
    calls = [p0, overflow_in, switched_in, plain]
    now = 200.0
    governor.observe(load(calls, now, logged_in=0), now)
    chosen = governor.select("n1-arm", calls, load(calls, now, logged_in=0), now, pending=set(),
                             partner_failed_at={})
    assert [c.uniqueid for c in chosen] == ["plain"]


def test_a_caller_whose_overflow_just_failed_stays_at_the_front(rhone) -> None:
    governor = OverflowGovernor(rhone)
    back = waiting("back", 0.0)
    back.visits[0].outcome, back.visits[0].left_at, back.visits[0].destination = VisitOutcome.OVERFLOWED, 95.0, "sas-38"
    back.visits.append(QueueVisit("n1-arm", 96.0))
    now = 100.0
    governor.observe(load([back], now, logged_in=0), now)
    assert governor.select("n1-arm", [back], load([back], now, logged_in=0), now, pending=set(),
                           partner_failed_at={"sas-38": 95.0}) == []
    later = 200.0  # cooled down: it may try again
    assert governor.select("n1-arm", [back], load([back], later, logged_in=0), later, pending=set(),
                           partner_failed_at={"sas-38": 95.0}) == [back]


def test_hysteresis_keeps_the_episode_until_clear_for_long_enough(rhone) -> None:
    governor = OverflowGovernor(rhone)  # hysteresis 30 s
    busy = [waiting("a", 0.0)]
    assert governor.observe(load(busy, 100.0), 100.0).kind == "overflow-started"
    assert governor.observe(load([], 101.0), 101.0) is None  # clear, cooling
    assert governor.states["n1-arm"].active
    # Cooling: nobody is selected although the episode is still open.
    assert governor.select("n1-arm", [], load([], 110.0), 110.0, pending=set(), partner_failed_at={}) == []
    assert governor.observe(load(busy, 105.0), 105.0) is None  # fired again before 30 s: same episode
    assert governor.observe(load([], 106.0), 106.0) is None
    ended = governor.observe(load([], 136.0), 136.0)
    assert ended is not None and ended.kind == "overflow-ended"
    assert governor.states["n1-arm"].episodes == 1


def test_a_supervisor_switch_stops_the_rule(rhone) -> None:
    governor = OverflowGovernor(rhone)
    calls = [waiting("a", 0.0)]
    governor.observe(load(calls, 100.0), 100.0)
    governor.states["n1-arm"].disabled_by = "sup-1"
    ended = governor.observe(load(calls, 101.0), 101.0)
    assert ended is not None and ended.reasons == ("overflow switched off",)
    assert governor.select("n1-arm", calls, load(calls, 101.0), 101.0, pending=set(), partner_failed_at={}) == []


def test_all_agents_busy_for_n_seconds(rhone) -> None:
    plan = copy.deepcopy(rhone)
    rule = plan.queues["n1-arm"].overflow
    busy_rule = rule.model_copy(update={"when": OverflowWhen(all_agents_busy_for=60)})
    plan.queues["n1-arm"] = plan.queues["n1-arm"].model_copy(update={"overflow": busy_rule})
    governor = OverflowGovernor(plan)
    calls = [waiting("a", 0.0), waiting("b", 50.0)]
    assert governor.observe(load(calls, 10.0), 10.0) is None  # busy since 10
    transition = governor.observe(load(calls, 75.0), 75.0)
    assert transition is not None and transition.reasons == ("all agents busy for 65 s",)
    chosen = governor.select("n1-arm", calls, load(calls, 75.0), 75.0, pending=set(), partner_failed_at={})
    assert [c.uniqueid for c in chosen] == ["a"]  # b waited 25 s only


# --- choosing the partner ------------------------------------------------------------------------


def message(site: str, *, accepting: bool = True, available: int = 2, version: int = 1) -> dict:
    return {"version": version, "site": site, "at": 0, "accepting_overflow": accepting, "waiting": 3,
            "longest_wait": 12.0, "available_by_role": {"n1": available}, "overflowing": [], "qs30": 0.93}


def test_live_load_ranks_partners_with_free_agents_first() -> None:
    board = PartnerBoard(link_up=True)
    board.update(message("sas-38", available=0), 100.0)
    board.update(message("sas-01", available=3), 100.0)
    choice = board.choose(["sas-38", "sas-01"], "n1", 101.0)
    assert (choice.partner, choice.basis) == ("sas-01", "live-load")


def test_an_overloaded_partner_is_skipped_and_the_reason_given() -> None:
    board = PartnerBoard(link_up=True)
    board.update(message("sas-38", accepting=False), 100.0)
    choice = board.choose(["sas-38"], "n1", 101.0)
    assert choice.partner is None
    assert "sas-38 overloaded (3 waiting, longest 12 s)" in choice.reason
    board.update({**message("sas-38", accepting=False), "refusal": "n1-arm is overflowing itself"}, 102.0)
    assert "sas-38 overloaded (n1-arm is overflowing itself; 3 waiting" in board.choose(["sas-38"], "n1", 103.0).reason


def test_silent_partners_and_a_dead_broker_fall_back_to_plan_order() -> None:
    board = PartnerBoard(link_up=True, stale_after=15.0)
    board.update(message("sas-38", accepting=False), 100.0)
    board.update(message("sas-01", available=0), 100.0)
    # sas-38 went quiet 20 s ago, sas-01 still accepts: the live one wins.
    assert board.choose(["sas-38", "sas-01"], "n1", 110.0).partner == "sas-01"
    choice = board.choose(["sas-38", "sas-01"], "n1", 120.0)  # both stale
    assert (choice.partner, choice.basis) == ("sas-38", "plan-order")
    board.link_up = False
    choice = board.choose(["sas-38", "sas-01"], "n1", 100.5)
    assert (choice.partner, choice.basis) == ("sas-38", "plan-order") and "no MQTT link" in choice.reason


def test_a_partner_whose_trunk_failed_is_cooled_down() -> None:
    board = PartnerBoard(link_up=True)
    board.update(message("sas-38"), 100.0)
    board.trunk_failed("sas-38", 100.0)
    assert board.choose(["sas-38"], "n1", 110.0).partner is None
    board.update(message("sas-38"), 170.0)
    assert board.choose(["sas-38"], "n1", 170.0).partner == "sas-38"


@pytest.mark.parametrize("bad", [{"version": 2, "site": "x"}, {"version": 1, "site": "x"},
                                 {"version": 1, "site": "x", "accepting_overflow": True, "waiting": "many",
                                  "longest_wait": 1}])
def test_malformed_load_messages_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        PartnerBoard().update(bad, 0.0)


def test_the_published_load_says_whether_we_accept_overflow(rhone) -> None:
    governor = OverflowGovernor(rhone)
    loads = {"n1-arm": QueueLoad("n1-arm", "n1", 2, 20.0, 3, 1), "n2-amu": QueueLoad("n2-amu", "n2-amu", 0, 0, 2, 2)}
    msg = load_message("sas-69", loads, governor, ["n1-arm"], 50.0, qs30=0.9)
    assert msg["accepting_overflow"] is True and msg["waiting"] == 2
    assert msg["available_by_role"] == {"n1": 1, "n2-amu": 2}
    governor.observe(QueueLoad("n1-arm", "n1", 12, 20.0, 3, 0), 51.0)  # 12 > 8 waiting: overflowing
    loads["n1-arm"] = QueueLoad("n1-arm", "n1", 12, 20.0, 3, 0)
    msg = load_message("sas-69", loads, governor, ["n1-arm"], 51.0)
    assert msg["accepting_overflow"] is False and msg["overflowing"] == ["n1-arm"]
    assert msg["refusal"] == "n1-arm is overflowing itself"


# --- switch-overs --------------------------------------------------------------------------------


def test_preset_starts_at_night_and_ends_in_the_morning_but_never_touches_a_manual_one(rhone) -> None:
    evening = utc(2026, 11, 24, 20, 0)
    [start] = preset_decisions(rhone, evening, 1.0, {}, set())
    assert start.kind == "start" and start.switchover.db_value() == "sas-38:100"
    assert start.switchover.source == "preset:nuit-116117" and start.switchover.by == "schedule"
    running = {"116117": start.switchover}
    assert preset_decisions(rhone, utc(2026, 11, 25, 7, 59), 2.0, running, set()) == []
    [end] = preset_decisions(rhone, utc(2026, 11, 25, 8, 0), 3.0, running, set())
    assert (end.kind, end.line) == ("end", "116117")
    manual = {"116117": Switchover("116117", "sas-38", 30, by="sup-1", reason="staff meeting")}
    assert preset_decisions(rhone, utc(2026, 11, 25, 8, 0), 3.0, manual, set()) == []


def test_a_supervisor_hold_waits_for_the_window_to_close(rhone) -> None:
    assert preset_decisions(rhone, utc(2026, 11, 24, 22, 0), 1.0, {}, {"nuit-116117"}) == []
    [release] = preset_decisions(rhone, utc(2026, 11, 25, 9, 0), 2.0, {}, {"nuit-116117"})
    assert release.kind == "release-hold"


def test_switchover_requests_the_dialplan_cannot_carry_are_refused(rhone) -> None:
    with pytest.raises(SwitchoverError, match="unknown line"):
        check_request(rhone, "17", "sas-38", 100)
    with pytest.raises(SwitchoverError, match="partner line"):
        check_request(rhone, "from-sas-38", "sas-38", 100)
    with pytest.raises(SwitchoverError, match="unknown partner"):
        check_request(rhone, "116117", "sas-01", 100)
    with pytest.raises(SwitchoverError, match="does not accept 15"):
        check_request(rhone, "15", "sas-38", 100)
    check_request(rhone, "15", "sas-38", 50, number="6938")  # dialled as an overflow number: accepted


def test_astdb_values_read_back_even_when_written_by_hand() -> None:
    switch = Switchover.from_db("116117", "sas-38:30", None)
    assert (switch.partner, switch.share, switch.by) == ("sas-38", 30, "unknown (set in AstDB)")
    original = Switchover("15", "sas-38", 100, "6938", "manual", "sup-1", "evacuation of the room", 12.5)
    assert Switchover.from_db("15", original.db_value(), original.meta()) == original


class _SlowAstDb:
    """Just enough of an engine for MutualAid's switch-over bookkeeping: an AstDB whose writes
    take a moment, as they do over AMI, so a supervisor's request and the schedule overlap."""

    def __init__(self, plan, now: float) -> None:
        self.plan, self.now, self.db = plan, now, {}
        self.log = structlog.get_logger("test")
        self.notices: list[Any] = []

    def clock(self) -> float:
        return self.now

    def broadcast(self, notice) -> None:
        self.notices.append(notice)

    async def db_put(self, family: str, key: str, value: str) -> None:
        await asyncio.sleep(0.02)
        self.db[f"{family}/{key}"] = value

    async def db_del(self, family: str, key: str) -> None:
        await asyncio.sleep(0.02)
        self.db.pop(f"{family}/{key}", None)


async def test_a_supervisor_s_give_back_holds_against_the_schedule_that_started_it(rhone) -> None:
    """The night preset is running; a supervisor gives the line back. The schedule looks again
    while the give-back is still being written: it must not start the preset again (seen: undone
    0.23 s later), until the window closes."""
    engine = _SlowAstDb(rhone, utc(2026, 11, 24, 21, 0).timestamp())
    aid = MutualAid(engine)  # type: ignore[arg-type]
    await aid._apply_presets(engine.now)
    assert aid.switchovers["116117"].source == "preset:nuit-116117"
    give_back = asyncio.create_task(aid.end_switchover("116117", by="sup-1", reason="salle au complet"))
    while not give_back.done():
        await aid._apply_presets(engine.now)
        await asyncio.sleep(0.005)
    await give_back
    for _ in range(3):
        await aid._apply_presets(engine.now)
    assert "116117" not in aid.switchovers and "sas-switch/116117" not in engine.db
    assert aid.holds == {"nuit-116117"}
    assert [(e.kind, e.by) for e in aid.journal] == [("switchover-started", "schedule"),
                                                     ("switchover-ended", "sup-1")]
    engine.now = utc(2026, 11, 25, 8, 0).timestamp()  # the window closes: the hold goes
    await aid._apply_presets(engine.now)
    assert aid.holds == set() and "116117" not in aid.switchovers
