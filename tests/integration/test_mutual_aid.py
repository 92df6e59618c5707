"""Mutual aid across two live SAS: the Rhône (A) and the Isère (B), each an emulated switch on
its own AMI socket with its own engine, joined by a partner trunk and one real Mosquitto.

The plans are the example plans with thresholds scaled down from minutes to seconds, so a
surge plays out in a few seconds of wall time through exactly the production code path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.service import EngineOptions
from sas_router.simulator.broker import Broker, start_broker
from sas_router.simulator.live import eventually
from sas_router.simulator.softswitch.core import TrunkLink
from sas_router.simulator.softswitch.model import Channel, Event
from sas_router.simulator.softswitch.site import link_sites

from tests.integration.harness import ROOT, MovableClock, Site, shifted_clock, start_site

TUESDAY_MORNING = "2026-11-24T10:00:00"


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = start_broker()
    yield running
    running.stop()


def derived_plan(tmp_path: Path, name: str, edit: Callable[[Any], None]) -> Path:
    """The example plan ``name`` with ``edit`` applied (round-trip YAML, validated on load)."""
    yaml = YAML()
    data = yaml.load((ROOT / "dialplans" / name).read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / name
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


def fast_overflow(longest: int, waiting: int, *, no_agent: bool = True) -> Callable[[Any], None]:
    def edit(data: Any) -> None:
        rule = data["queues"]["n1-arm"]["overflow"]
        rule["when"] = {"longest_wait_over": longest, "callers_waiting_over": waiting,
                        "no_agent_logged_in": no_agent}
        rule["hysteresis"] = 2
        data["queues"]["n1-arm"]["wrapup"] = 0  # seconds matter here: desks take the next call at once
    return edit


@dataclass
class Pair:
    a: Site  # sas-69, the Rhône
    b: Site  # sas-38, the Isère
    a_to_b: TrunkLink
    b_to_a: TrunkLink
    broker: Broker

    def a_callers(self, count: int, number: str = "116117", first: int = 0) -> list[Channel]:
        return [self.a.call(number, caller=f"06{first + i:08d}") for i in range(count)]


def options() -> EngineOptions:
    return EngineOptions(confirm_within=1.0, action_timeout=2.0, tick_every=0.2, apply_presets=True,
                         partner_stale_after=1.5)


@pytest.fixture
async def start_pair(tmp_path: Path, broker: Broker) -> AsyncIterator[Callable[..., Any]]:
    started: list[Site] = []

    async def start(*, rhone: Callable[[Any], None] | None = None, isere: Callable[[Any], None] | None = None,
                    clock: Callable[[], float] | None = None) -> Pair:
        rhone, isere = rhone or fast_overflow(2, 3), isere or fast_overflow(4, 6)
        mqtt = MqttConfig(port=broker.port, prefix=f"t{uuid.uuid4().hex[:8]}", publish_every=0.3, keepalive=5)
        clock = clock or shifted_clock(TUESDAY_MORNING)
        a = await start_site(derived_plan(tmp_path, "sas-69.yaml", rhone), clock=clock, options=options(),
                             mqtt=mqtt)
        started.append(a)
        b = await start_site(derived_plan(tmp_path, "sas-38.yaml", isere), clock=clock, options=options(),
                             mqtt=mqtt)
        started.append(b)
        a_to_b, b_to_a = link_sites(a.switch, "sas-69", b.switch, "sas-38")
        await eventually(lambda: a.engine.mutual_aid.board.link_up and b.engine.mutual_aid.board.link_up,
                         what="both engines on the broker")
        return Pair(a, b, a_to_b, b_to_a, broker)

    yield start
    for site in started:
        await site.close()


# --- reading what happened on each switch --------------------------------------------------------


def variable(events: list[Event], uniqueid: str, name: str) -> str:
    """The channel variable's last value (VarSet names inherited variables with their ``__``)."""
    values = [e.get("Value") for e in events if e.name == "VarSet" and e.get("Uniqueid") == uniqueid
              and e.get("Variable", "").lstrip("_") == name]
    return values[-1] if values else ""


def answered(events: list[Event]) -> set[str]:
    return {e.get("Uniqueid") for e in events if e.name == "AgentConnect"}


def calls_from(events: list[Event], origin_call_ids: set[str]) -> dict[str, str]:
    """B's inbound trunk channels carrying one of A's call ids: {call id: B uniqueid}. The first
    channel tagged is the trunk leg; agent legs inherit the tag later."""
    found: dict[str, str] = {}
    for e in events:
        if (e.name == "VarSet" and e.get("Variable", "").lstrip("_") == "SAS_CALL_ID"
                and e.get("Value") in origin_call_ids):
            found.setdefault(e.get("Value"), e.get("Uniqueid"))
    return found


def joins(events: list[Event], uniqueid: str) -> list[Event]:
    return [e for e in events if e.name == "QueueCallerJoin" and e.get("Uniqueid") == uniqueid]


async def log_in(site: Site, extension: str, *, talk_for: float | None, answer_after: float = 0.2) -> str:
    interface = site.desk(extension, answer_after=answer_after, talk_for=talk_for)
    await site.login(interface, ["n1-arm"], role="n1")
    return interface


# --- overflow ------------------------------------------------------------------------------------


async def test_surge_overflows_to_the_partner_and_every_call_is_answered(start_pair) -> None:
    pair: Pair = await start_pair()
    a, b = pair.a, pair.b
    await log_in(a, "2001", talk_for=2.0)
    for ext in ("1031", "1032", "1033"):
        await log_in(b, ext, talk_for=0.5)
    await eventually(lambda: b.engine.mutual_aid.board.status("sas-69", b.engine.clock()) == "accepting"
                     and a.engine.mutual_aid.board.status("sas-38", a.engine.clock()) == "accepting",
                     what="each site sees the other accepting")

    callers = []
    for i in range(12):  # one agent at A: far more callers than it can take
        callers += pair.a_callers(1, first=i)
        await asyncio.sleep(0.1)
    await eventually(lambda: all(ch.hungup for ch in callers), timeout=60, what="every caller served and gone")

    call_ids = {f"sas-69-{ch.uniqueid}": ch for ch in callers}
    at_a = answered(a.events)
    at_b = calls_from(b.events, set(call_ids))
    answered_at_b = {cid for cid, uid in at_b.items() if uid in answered(b.events)}
    for cid, ch in call_ids.items():
        assert ch.uniqueid in at_a or cid in answered_at_b, f"{cid} was never answered"
    assert answered_at_b, "the surge should have overflowed some calls to the Isère"
    assert len(at_a) >= 1

    # Counted on both sides, and the same.
    aid_a, aid_b = a.engine.mutual_aid, b.engine.mutual_aid
    sent = aid_a.overflowed_out["sas-38"] - aid_a.overflow_returned["sas-38"]
    assert sent == aid_b.inbound[("sas-69", "overflow")] == len(at_b)
    # The partner kept the call's identity: origin, line, original caller.
    for cid, uid in at_b.items():
        assert variable(b.events, uid, "SAS_ORIGIN") == "sas-69"
        assert variable(b.events, uid, "SAS_INBOUND") == "overflow"
        assert variable(b.events, uid, "SAS_ORIG_LINE") == "116117"
        assert variable(b.events, uid, "SAS_CALLER_NUM") == call_ids[cid].cid_num
    # Oldest first, and the episode journaled with its reason.
    journal = [e for e in aid_a.journal if e.kind == "overflow-started"]
    assert journal and journal[0].subject == "n1-arm" and journal[0].partner == "sas-38"
    status, view = await a.get("/api/mutual-aid")
    assert status == 200 and view["overflowed_out"] == {"sas-38": aid_a.overflowed_out["sas-38"]}
    assert view["last_choice"]["basis"] == "live-load"
    status, view_b = await b.get("/api/mutual-aid")
    assert {"origin": "sas-69", "reason": "overflow", "calls": len(at_b)} in view_b["inbound"]


async def test_overloaded_partner_keeps_our_calls_then_its_silence_means_plan_order(start_pair) -> None:
    pair: Pair = await start_pair()
    a, b = pair.a, pair.b
    # Nobody logged in at the Isère: it publishes that it does not accept overflow.
    await eventually(lambda: a.engine.mutual_aid.board.status("sas-38", a.engine.clock()) == "overloaded",
                     what="A sees B overloaded")
    callers = pair.a_callers(3)
    await eventually(lambda: a.engine.mutual_aid.kept_reason, what="A says why it keeps its calls")
    assert "sas-38 overloaded (no agent logged in to n1-arm" in a.engine.mutual_aid.kept_reason
    _, view = await a.get("/api/mutual-aid")
    assert view["overflow"]["n1-arm"]["active"] is True
    assert view["kept_reason"].startswith("no partner can take calls")
    await asyncio.sleep(1.0)
    assert a.engine.mutual_aid.overflowed_out.total() == 0
    assert all(joins(a.events, ch.uniqueid) and not ch.hungup for ch in callers)

    # The Isère's engine goes away: its load messages stop, A falls back to the plan's order.
    await b.live.engine.stop()
    await eventually(lambda: a.engine.mutual_aid.overflowed_out["sas-38"] == 3, timeout=10,
                     what="calls overflowed by plan order")
    assert a.engine.mutual_aid.last_choice.basis == "plan-order"
    assert a.engine.mutual_aid.board.status("sas-38", a.engine.clock()) == "silent"
    await eventually(lambda: len(calls_from(b.events, {f"sas-69-{ch.uniqueid}" for ch in callers})) == 3,
                     what="the three callers at the Isère")
    await asyncio.sleep(0.5)
    assert not any(ch.hungup for ch in callers)  # waiting in the Isère's queue, across the trunk


async def test_without_the_broker_overflow_still_works_by_plan_order(start_pair) -> None:
    pair: Pair = await start_pair()
    a, b = pair.a, pair.b
    await log_in(b, "1031", talk_for=0.3)
    pair.broker.stop()
    await eventually(lambda: not a.engine.mutual_aid.board.link_up, what="A sees the broker gone")
    callers = pair.a_callers(2)  # nobody logged in at A
    await eventually(lambda: all(ch.hungup for ch in callers), timeout=20, what="answered at the Isère")
    assert a.engine.mutual_aid.overflowed_out["sas-38"] == 2
    assert "no MQTT link" in a.engine.mutual_aid.last_choice.reason
    _, view = await a.get("/api/mutual-aid")
    assert view["mqtt"] == "down"
    assert len(calls_from(b.events, {f"sas-69-{ch.uniqueid}" for ch in callers})) == 2


async def test_partner_trunk_down_puts_the_callers_back_at_the_front(start_pair) -> None:
    pair: Pair = await start_pair(rhone=fast_overflow(30, 3, no_agent=False))
    a = pair.a
    for ext in ("1031", "1032"):
        await log_in(pair.b, ext, talk_for=None)
    pair.a_to_b.up = False
    await log_in(a, "2001", talk_for=None)  # takes the first caller and keeps it
    first = pair.a_callers(1)[0]
    await eventually(lambda: first.uniqueid in answered(a.events), what="first caller answered")
    waiting = pair.a_callers(5, first=10)  # five wait, the rule allows three: the oldest leave
    aid = a.engine.mutual_aid
    await eventually(lambda: aid.overflowed_out["sas-38"] >= 1, what="overflow attempted")
    await eventually(lambda: aid.overflow_returned["sas-38"] == aid.overflowed_out["sas-38"], timeout=10,
                     what="every overflow came back")
    await asyncio.sleep(1.0)  # the partner is cooled down: no second attempt
    sent = aid.overflowed_out["sas-38"]
    assert aid.overflow_returned["sas-38"] == sent
    returned = [ch for ch in waiting if len(joins(a.events, ch.uniqueid)) == 2]
    assert len(returned) == sent and returned == waiting[:sent], "the oldest callers are the ones sent"
    for ch in returned:
        rejoin = joins(a.events, ch.uniqueid)[1]
        assert rejoin.get("Queue") == "n1-arm"
        assert int(rejoin.get("Position")) <= sent, "a caller whose overflow failed goes to the front"
        # 116 117 callers: the front of the non-urgent band (never ahead of a 15).
        assert variable(a.events, ch.uniqueid, "SAS_PRIO") == str(a.plan.care_front_priority) == "4"
    assert not any(ch.hungup for ch in waiting)
    assert aid.board.status("sas-38", a.engine.clock()) == "failing"
    assert "sas-38 failing" in aid.kept_reason
    assert pair.b.engine.mutual_aid.inbound.total() == 0
    # The next free desk takes a caller that came back first.
    await log_in(a, "2002", talk_for=None)
    await eventually(lambda: len(answered(a.events)) == 2, what="second desk answers")
    second = [e.get("Uniqueid") for e in a.events if e.name == "AgentConnect"][1]
    assert second in {ch.uniqueid for ch in returned}


# --- switch-over ---------------------------------------------------------------------------------


async def test_116117_goes_to_the_isere_at_20h_and_comes_back_at_8h(start_pair) -> None:
    clock = MovableClock("2026-11-24T19:59:57")  # a Tuesday
    pair: Pair = await start_pair(clock=clock)
    a, b = pair.a, pair.b
    await log_in(a, "2001", talk_for=0.3)
    await log_in(b, "1031", talk_for=0.3)
    before = pair.a_callers(1)[0]
    await eventually(lambda: joins(a.events, before.uniqueid), what="evening call in the Rhône")

    await eventually(lambda: "116117" in a.engine.mutual_aid.switchovers, timeout=8, what="20:00 switch-over")
    switch = a.engine.mutual_aid.switchovers["116117"]
    assert (switch.partner, switch.share, switch.source, switch.by) == ("sas-38", 100, "preset:nuit-116117",
                                                                       "schedule")
    assert a.switch.astdb["sas-switch/116117"] == "sas-38:100"
    night = pair.a_callers(3, first=100)
    emergency = a.call("15", caller="0611111111")
    await eventually(lambda: len(calls_from(b.events, {f"sas-69-{c.uniqueid}" for c in night})) == 3,
                     what="116 117 calls at the Isère")
    await eventually(lambda: joins(a.events, emergency.uniqueid), what="15 stays in the Rhône")
    assert not any(joins(a.events, c.uniqueid) for c in night)
    for uid in calls_from(b.events, {f"sas-69-{c.uniqueid}" for c in night}).values():
        assert variable(b.events, uid, "SAS_INBOUND") == "switchover"
    await eventually(lambda: b.engine.mutual_aid.inbound[("sas-69", "switchover")] == 3, what="counted apart")

    await eventually(lambda: all(c.hungup for c in [*night, emergency, before]), timeout=20, what="calls done")
    clock.jump_to("2026-11-25T07:59:58")
    await asyncio.sleep(0.5)
    assert "116117" in a.engine.mutual_aid.switchovers  # still night
    await eventually(lambda: "116117" not in a.engine.mutual_aid.switchovers, timeout=8, what="08:00 end")
    assert "sas-switch/116117" not in a.switch.astdb
    morning = pair.a_callers(1, first=200)[0]
    await eventually(lambda: joins(a.events, morning.uniqueid), what="morning call back in the Rhône")
    kinds = [(e.kind, e.by) for e in a.engine.mutual_aid.journal if e.subject == "116117"]
    assert kinds == [("switchover-started", "schedule"), ("switchover-ended", "schedule")]


async def test_a_30_percent_share_sends_about_30_percent_of_new_calls(start_pair) -> None:
    pair: Pair = await start_pair()
    a, b = pair.a, pair.b
    status, body = await a.post("/api/overflow/n1-arm", {"enabled": False, "reason": "share test"}, "super-token")
    assert status == 200 and body["enabled"] is False
    status, body = await a.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 30,
                                                     "reason": "renfort partiel de l'Isère"}, "super-token")
    assert status == 200 and body["share"] == 30 and body["by"] == "sup-1"
    callers: list[Channel] = []
    for batch in range(10):
        callers += pair.a_callers(30, first=1000 + 30 * batch)
        await asyncio.sleep(0.05)
    total = len(callers)

    def decided() -> bool:
        return all(joins(a.events, c.uniqueid) or variable(a.events, c.uniqueid, "SAS_SWITCHED_TO")
                   for c in callers)

    await eventually(decided, timeout=30, what="every call routed")
    switched = [c for c in callers if variable(a.events, c.uniqueid, "SAS_SWITCHED_TO") == "sas-38"]
    share = len(switched) / total
    # Binomial, n=300, p=0.3: sd 2.6 points; 3 sd either side.
    assert 0.22 <= share <= 0.38, f"{share:.1%} of {total} calls switched over"
    await eventually(lambda: b.engine.mutual_aid.inbound[("sas-69", "switchover")] == len(switched), timeout=45,
                     what="the Isère counts what it received")
    assert not any(c.hungup for c in callers)


async def test_switchover_holds_while_the_engine_is_stopped_and_is_found_again(start_pair) -> None:
    pair: Pair = await start_pair()
    a, b = pair.a, pair.b
    status, _ = await a.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 100,
                                                  "reason": "salle de régulation évacuée"}, "desk-token")
    assert status == 403  # a desk may not switch lines over
    status, body = await a.post("/api/switchovers", {"line": "15", "partner": "sas-38", "reason": "test"},
                                "super-token")
    assert status == 422 and "does not accept 15" in body["error"]
    status, _ = await a.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 100,
                                                  "reason": "salle de régulation évacuée"}, "super-token")
    assert status == 200

    await a.live.engine.stop()
    callers = pair.a_callers(3)
    await eventually(lambda: len(calls_from(b.events, {f"sas-69-{c.uniqueid}" for c in callers})) == 3,
                     what="calls at the Isère while the Rhône's engine is down")
    assert not any(joins(a.events, c.uniqueid) for c in callers)

    engine = await a.live.restart_engine()
    await eventually(lambda: engine.mutual_aid.loaded, what="restarted engine read AstDB")
    switch = engine.mutual_aid.switchovers["116117"]
    assert (switch.partner, switch.share, switch.by, switch.reason) == ("sas-38", 100, "sup-1",
                                                                       "salle de régulation évacuée")
    status, view = await a.get("/api/mutual-aid")
    assert view["switchovers"]["116117"]["by"] == "sup-1"

    status, body = await a.post("/api/switchovers/116117/end", {"reason": "salle réintégrée"}, "super-token")
    assert status == 200 and body["ended_by"] == "sup-1"
    after = pair.a_callers(1, first=50)[0]
    await eventually(lambda: joins(a.events, after.uniqueid), what="the line is back at once")
    [ended] = [e for e in engine.mutual_aid.journal if e.kind == "switchover-ended"]
    assert (ended.by, ended.reason) == ("sup-1", "salle réintégrée")
    status, body = await a.post("/api/switchovers/116117/end", {"reason": "again"}, "super-token")
    assert status == 404
