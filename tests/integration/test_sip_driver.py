"""The SIP load driver against a real Asterisk 22: planned calls become SIP calls from the
operator trunk's address, each with its own caller ID, held past the time a switch needs to give
up on an unacknowledged answer (64 x T1: 6.4 s on the test switch) and hung up by the caller."""

from __future__ import annotations

import asyncio

from sas_router.simulator.load import Dist, LoadProfile, PlannedCall
from sas_router.simulator.sip_driver import SipLoad

from tests.integration.switches import OPERATOR_ADDRESS, RealSwitch

HOLD = 7.5  # patience 6.5 + qualify 0.5 + talk 0.5


def planned(at: float, line: str, number: str, level: str) -> PlannedCall:
    return PlannedCall(at=at, line=line, number=number, caller="", withheld=False, level=level, patience=6.5,
                       patience_n2=None, qualify_after=0.5, talk=0.5, transfer_n2=False)


async def test_the_planned_calls_are_held_on_the_real_switch_each_with_its_caller_id(real_rhone: RealSwitch) -> None:
    await real_rhone.reset()
    profile = LoadProfile(handle={role: Dist(0.5, "fixed") for role in ("n1", "n2-amu", "n2-mg")})
    calls = [planned(0.0, "15", "15", "P1"), planned(0.2, "116117", "116117", "P2"),
             planned(0.4, "sis-n1", "0472000018", "P0"), planned(0.6, "15", "15", "P2")]
    load = SipLoad(real_rhone.address, OPERATOR_ADDRESS, profile)
    run = asyncio.ensure_future(load.run(calls))
    await asyncio.sleep(2.0)
    waiting = real_rhone.queue_callers("n1-arm")
    assert sorted(waiting) == [("0690000000", 5), ("0690000001", 3), ("0690000002", 9), ("0690000003", 5)]
    outcomes = await run
    assert [(o.planned.number, o.state) for o in outcomes] == [("15", "hung-up"), ("116117", "hung-up"),
                                                              ("0472000018", "hung-up"), ("15", "hung-up")]
    held = [o.ended_at - o.placed_at for o in outcomes if o.ended_at]
    assert all(HOLD - 0.2 < h < HOLD + 1.5 for h in held), held
    assert real_rhone.queue_callers("n1-arm") == []
