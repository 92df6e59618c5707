"""The call scenarios that matter, each run on the emulator AND on a real Asterisk 22 with real
SIP callers and desk phones: same test, same assertions. A caller "survived" when its own SIP
user agent never received a BYE (``dropped`` is False), not merely because AMI said so."""

from __future__ import annotations

import pytest

from tests.integration.switches import Room, open_room


@pytest.fixture
async def room(switch):
    r = await open_room(switch)
    yield r
    await r.close()


async def test_15_answered_in_n1_then_p1_to_n2_amu_caller_never_dropped(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu")
    leg = room.call("15", "0610000001", name="Dupont")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    assert call.line == "15" and call.call_id.startswith("sas-69-")

    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1", "reason": "douleur"})
    assert status == 200, body
    assert body["target"] == "n2-amu"
    await room.talking_in(call, "n2-amu")
    assert room.joined(call) == ["n1-arm", "n2-amu"]
    assert [leg_.member_name for leg_ in call.legs] == ["1001", "2001"]
    assert not leg.dropped
