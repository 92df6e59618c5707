"""The rendered dialplan, executed by the softswitch emulator with no engine connected (fail-open).

Every public line must land in its entry queue with its tags and priority; every failure path
(queue timeout, unknown withdraw destination, a partner trunk that is down) must end in a queue.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan import load_plan
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.model import Event
from sas_router.simulator.softswitch.site import add_agent, build_site, link_sites

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_376_400.0  # 2026-11-22 19:40 UTC


@pytest.fixture
def rhone():
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    sw = build_site(plan, Scheduler(start=T0))
    events: list[Event] = []
    sw.listeners.append(events.append)
    return plan, sw, events


def joins(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.get("Queue"), e.get("Channel")) for e in events if e.name == "QueueCallerJoin"]


def waiting(sw, queue: str) -> list[tuple[str, int]]:
    return [(c.channel.name, c.priority) for c in sw.queues.queues[queue].callers]


@pytest.mark.parametrize(
    ("number", "line", "queue", "priority"),
    [
        ("15", "15", "n1-arm", 5),
        ("116117", "116117", "n1-arm", 3),
        ("0472333333", "pdsa-69", "n1-arm", 3),
        ("0472000018", "sis-n1", "n1-arm", 9),
        ("0472000019", "sis-amu", "n2-amu", 9),
        ("0472000020", "atsu-amu", "n2-amu", 8),
        ("0472000021", "atsu-mg", "n2-mg", 8),
    ],
)
def test_every_public_line_lands_in_its_entry_queue_tagged(rhone, number, line, queue, priority) -> None:
    _, sw, events = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, number, caller_num="0612345678", caller_name="Dupont")
    sw.scheduler.advance(2)
    assert joins(events) == [(queue, ch.name)]
    assert waiting(sw, queue) == [(ch.name, priority)]
    assert ch.variables[C.VAR_LINE] == line
    assert ch.variables[C.VAR_CALL_ID] == f"sas-69-{ch.uniqueid}"
    assert ch.variables[C.VAR_ORIGIN] == "sas-69"
    assert ch.variables[C.VAR_CALLER_NUM] == "0612345678"
    assert not ch.hungup


def test_sis_caller_is_served_before_public_callers(rhone) -> None:
    _, sw, _ = rhone
    public = sw.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0600000001")
    sw.scheduler.advance(2)
    sis = sw.inbound_call(C.OPERATOR_ENDPOINT, "0472000018", caller_num="0472999999")
    sw.scheduler.advance(2)
    assert [name for name, _ in waiting(sw, "n1-arm")] == [sis.name, public.name]
    add_agent(sw, "1001", answer_after=1)
    sw.queues.add_member("n1-arm", "PJSIP/1001", "ARM 1001")
    sw.scheduler.advance(3)
    assert sis.bridge is not None and public.bridge is None


def test_withheld_caller_on_15_is_unmasked(rhone) -> None:
    _, sw, _ = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344", withheld=True,
                         headers={"Geolocation": "<cid:loc-1@operator>"})
    sw.scheduler.advance(2)
    assert ch.variables[C.VAR_CALLER_NUM] == "0611223344"
    assert ch.cid_pres < 32, "presentation must be allowed towards the desk"
    assert ch.variables[C.VAR_GEOLOC] == "<cid:loc-1@operator>"


def test_withheld_caller_on_116117_stays_withheld(rhone) -> None:
    _, sw, _ = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "116117", caller_num="0611223344", withheld=True)
    sw.scheduler.advance(2)
    assert ch.cid_pres >= 32


def test_repeat_caller_moves_up_one_priority(rhone) -> None:
    _, sw, _ = rhone
    sw.astdb[f"{C.DB_RECENT}/0611223344"] = str(int(T0) - 300)  # called 5 minutes ago
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "116117", caller_num="0611223344")
    sw.scheduler.advance(2)
    assert ch.variables[C.VAR_REPEAT] == "1"
    assert waiting(sw, "n1-arm") == [(ch.name, 4)]


def test_queue_timeout_falls_back_to_the_plan_queue_at_the_front(rhone) -> None:
    plan, sw, events = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "116117", caller_num="0611223344")
    sw.scheduler.advance(plan.queues["n1-arm"].fallback.after + 5)
    assert [q for q, _ in joins(events)] == ["n1-arm", "n2-amu"]
    # A 116 117 caller: the front of the non-urgent callers, never ahead of AMU's emergencies.
    assert waiting(sw, "n2-amu") == [(ch.name, plan.care_front_priority)]
    assert not ch.hungup


def test_withdraw_to_a_queue_route(rhone) -> None:
    _, sw, events = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344")
    sw.scheduler.advance(2)
    assert sw.queues.withdraw("n1-arm", ch.name, C.route_to_queue("n2-mg")) is None
    sw.scheduler.advance(1)
    assert [q for q, _ in joins(events)] == ["n1-arm", "n2-mg"]
    assert ch.variables["QUEUESTATUS"] == "WITHDRAW"
    assert not ch.hungup


def test_unknown_withdraw_destination_returns_to_the_front_of_the_queue(rhone) -> None:
    plan, sw, events = rhone
    ch = sw.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344")
    sw.scheduler.advance(2)
    sw.queues.withdraw("n1-arm", ch.name, "q-no-such-queue")
    sw.scheduler.advance(1)
    assert [q for q, _ in joins(events)] == ["n1-arm", "n1-arm"]
    assert waiting(sw, "n1-arm") == [(ch.name, plan.front_priority)]


@pytest.fixture
def two_sites():
    scheduler = Scheduler(start=T0)
    a = build_site(ROOT / "dialplans" / "sas-69.yaml", scheduler)
    b = build_site(ROOT / "dialplans" / "sas-38.yaml", scheduler)
    a_to_b, _ = link_sites(a, "sas-69", b, "sas-38")
    return a, b, a_to_b


def test_overflow_reaches_the_partner_with_the_call_identity(two_sites) -> None:
    a, b, _ = two_sites
    ch = a.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344")
    a.scheduler.advance(2)
    a.queues.withdraw("n1-arm", ch.name, C.route_to_partner("sas-38"))
    a.scheduler.advance(2)
    (arrived,) = [c.channel for c in b.queues.queues["n1-arm"].callers]
    assert arrived.variables[C.VAR_ORIGIN] == "sas-69"
    assert arrived.variables[C.VAR_CALL_ID] == ch.variables[C.VAR_CALL_ID]
    assert arrived.variables[C.VAR_INBOUND] == "overflow"
    assert arrived.variables[C.VAR_ORIG_LINE] == "15"
    assert arrived.variables[C.VAR_CALLER_NUM] == "0611223344"
    assert arrived.variables[C.VAR_LINE] == "from-sas-69"


def test_partner_trunk_down_sends_the_caller_back_to_the_front(two_sites) -> None:
    a, b, a_to_b = two_sites
    a_to_b.up = False
    plan_front = load_plan(ROOT / "dialplans" / "sas-69.yaml").front_priority
    ch = a.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344")
    a.scheduler.advance(2)
    a.queues.withdraw("n1-arm", ch.name, C.route_to_partner("sas-38"))
    a.scheduler.advance(3)
    assert [(c.channel.name, c.priority) for c in a.queues.queues["n1-arm"].callers] == [(ch.name, plan_front)]
    assert ch.variables["DIALSTATUS"] == "CHANUNAVAIL"
    assert not b.queues.queues["n1-arm"].callers


def test_switchover_in_astdb_sends_new_calls_to_the_partner(two_sites) -> None:
    a, b, _ = two_sites
    a.astdb[f"{C.DB_SWITCH}/116117"] = "sas-38:100"
    ch = a.inbound_call(C.OPERATOR_ENDPOINT, "116117", caller_num="0611223344")
    a.scheduler.advance(3)
    assert not a.queues.queues["n1-arm"].callers
    (arrived,) = [c.channel for c in b.queues.queues["n1-arm"].callers]
    assert arrived.variables[C.VAR_INBOUND] == "switchover"
    assert arrived.variables[C.VAR_DIALED] == "116117"
    assert ch.variables[C.VAR_SWITCHED_TO] == "sas-38"
