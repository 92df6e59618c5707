"""Two real SAS: the Rhône and the Isère, each a real Asterisk 22 with its rendered site, joined by
a real PJSIP trunk on loopback (127.0.0.1 and 127.0.0.4), each with its own engine, and one real
Mosquitto between the engines. Callers and desks are real SIP user agents.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import Plan
from sas_router.engine.service import EngineOptions
from sas_router.simulator.broker import Broker, start_broker
from sas_router.simulator.live import eventually

from tests.integration.harness import shifted_clock
from tests.integration.switches import RealSwitch, Room, load, open_room, real_asterisk_or_skip

TUESDAY_MORNING = "2026-11-24T10:00:00"
RHONE_ADDRESS, ISERE_ADDRESS = "127.0.0.1", "127.0.0.4"


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = start_broker()
    yield running
    running.stop()


@dataclasses.dataclass
class Sites:
    rhone: Room
    isere: Room
    rhone_switch: RealSwitch
    isere_switch: RealSwitch


def quick_overflow(plan: Plan) -> Plan:
    """The Rhône's N1 overflows at once when nobody is logged in (scaled from minutes to seconds)."""
    queue = plan.queues["n1-arm"]
    rule = queue.overflow.model_copy(update={"hysteresis": 1})
    queues = {**plan.queues, "n1-arm": queue.model_copy(update={"overflow": rule})}
    return dataclasses.replace(plan, queues=queues)


@pytest.fixture
async def sites(tmp_path: Path, broker: Broker) -> AsyncIterator[Sites]:
    real_asterisk_or_skip()
    from sas_router.simulator.real_asterisk import PartnerLink, free_sip_port

    rhone_port, isere_port = free_sip_port(RHONE_ADDRESS), free_sip_port(ISERE_ADDRESS)
    rhone_switch = RealSwitch(quick_overflow(load("sas-69")), tmp_path / "rhone", address=RHONE_ADDRESS,
                              sip_port=rhone_port, partners={"sas-38": PartnerLink(ISERE_ADDRESS, isere_port)})
    isere_switch = RealSwitch(load("sas-38"), tmp_path / "isere", address=ISERE_ADDRESS, sip_port=isere_port,
                              partners={"sas-69": PartnerLink(RHONE_ADDRESS, rhone_port)})
    mqtt = MqttConfig(port=broker.port, prefix=f"t{uuid.uuid4().hex[:8]}", publish_every=0.3, keepalive=5)
    options = EngineOptions(confirm_within=3.0, action_timeout=3.0, tick_every=0.2, apply_presets=False,
                            partner_stale_after=1.5)
    clock = shifted_clock(TUESDAY_MORNING)
    await rhone_switch.open_trunk()
    await isere_switch.open_trunk()
    rhone = await open_room(rhone_switch, clock=clock, options=options, mqtt=mqtt)
    isere = await open_room(isere_switch, clock=clock, options=options, mqtt=mqtt)
    await eventually(lambda: rhone.engine.mutual_aid.board.link_up and isere.engine.mutual_aid.board.link_up,
                     what="both engines on the broker")
    try:
        yield Sites(rhone, isere, rhone_switch, isere_switch)
    finally:
        for room, switch in ((rhone, rhone_switch), (isere, isere_switch)):
            await room.close()
            await switch.reset()
            switch.stop()


async def test_an_overflow_is_answered_by_the_partner_with_the_call_s_identity(sites: Sites) -> None:
    await sites.isere.desk("1001", ["n1-arm"], "arm-n1")
    await eventually(lambda: "sas-38" in sites.rhone.engine.mutual_aid.board.loads, timeout=5,
                     what="the Isère's load heard by the Rhône")
    leg = sites.rhone.call("15", "0615000001", name="Martin")  # nobody logged in at the Rhône's N1
    here = await sites.rhone.tracked(leg)
    there = await sites.isere.tracked(leg, timeout=20)
    await sites.isere.talking_in(there, "n1-arm", timeout=10)
    assert (there.origin, there.call_id, there.caller_num, there.inbound) == ("sas-69", here.call_id, "0615000001",
                                                                              "overflow")
    assert there.line == "from-sas-69" and there.current_leg.interface == "PJSIP/1001"
    assert not leg.dropped


async def test_a_switched_over_116117_is_carried_to_the_partner(sites: Sites) -> None:
    await sites.isere.desk("1001", ["n1-arm"], "arm-n1")
    await sites.rhone.desk("1001", ["n1-arm"], "arm-n1", answer_after=None)  # the Rhône's desk would not answer
    status, body = await sites.rhone.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 100,
                                                               "reason": "nuit"}, token="super-token")
    assert status == 200, body
    leg = sites.rhone.call("116117", "0616000001")
    there = await sites.isere.tracked(leg, timeout=20)
    await sites.isere.talking_in(there, "n1-arm", timeout=10)
    assert (there.origin, there.inbound, there.caller_num) == ("sas-69", "switchover", "0616000001")
    assert not leg.dropped


async def test_with_the_partner_s_switch_down_the_caller_is_back_at_the_front_of_n1(sites: Sites) -> None:
    # The whole Isère goes dark: its engine (the broker says it is offline, so the Rhône falls back
    # to the plan's order) and its Asterisk (the trunk answers nothing).
    await sites.isere.close()
    await sites.isere_switch.host.stop()
    await eventually(lambda: "sas-38" in sites.rhone.engine.mutual_aid.board.offline, timeout=10,
                     what="the Isère offline on the bus")
    leg = sites.rhone.call("15", "0617000001")
    call = await sites.rhone.tracked(leg)
    await eventually(lambda: sites.rhone.joined(call) == ["n1-arm", "n1-arm"], timeout=20,
                     what="back from the partner")
    assert sites.rhone_switch.queue_callers("n1-arm") == [("0617000001", sites.rhone.plan.front_priority)]
    assert not leg.dropped
