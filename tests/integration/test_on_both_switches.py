"""The call scenarios that matter, each run on the emulator AND on a real Asterisk 22 with real
SIP callers and desk phones: same test, same assertions. A caller "survived" when its own SIP
user agent never received a BYE (``dropped`` is False), not merely because AMI said so."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sas_router.engine.plan.model import Priority
from sas_router.simulator.live import eventually

from tests.integration.harness import shifted_clock
from tests.integration.switches import Room, open_room
from tests.integration.test_recordings import dominant_frequency


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


@pytest.mark.parametrize(
    ("number", "queue", "priority", "line"),
    [
        ("15", "n1-arm", 5, "15"),
        ("116117", "n1-arm", 3, "116117"),
        ("0472333333", "n1-arm", 3, "pdsa-69"),
        ("0472000018", "n1-arm", 9, "sis-n1"),
        ("0472000019", "n2-amu", 9, "sis-amu"),
        ("0472000020", "n2-amu", 8, "atsu-amu"),
        ("0472000021", "n2-mg", 8, "atsu-mg"),
    ],
)
async def test_every_line_waits_in_its_entry_queue_with_its_priority(room: Room, number: str, queue: str,
                                                                     priority: int, line: str) -> None:
    leg = room.call(number, "0620000001")
    call = await room.tracked(leg)
    await room.waiting_in(call, queue)
    assert (call.line, call.entry_queue, call.priority) == (line, queue, priority)
    assert room.switch.queue_callers(queue) == [("0620000001", priority)]  # what the switch itself says
    assert not leg.dropped


async def test_the_15_unmasks_a_withheld_caller_and_keeps_the_geolocation(room: Room) -> None:
    leg = room.call("15", "0630000001", withheld=True, headers={"Geolocation": "<geo:45.7578,4.8320>"})
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    assert call.caller_num == "0630000001"
    assert call.geolocation == "<geo:45.7578,4.8320>"
    assert not leg.dropped


@pytest.mark.parametrize(
    ("local_time", "queue"),
    [
        ("2026-11-24T10:00", "n2-mg"),  # a Tuesday morning: GP regulation
        ("2026-11-24T21:00", "pdsa"),  # a Tuesday night: PDSA
        ("2026-07-14T10:00", "pdsa"),  # Bastille Day, a Tuesday: PDSA all day
    ],
)
async def test_p2_goes_to_the_gp_by_day_and_to_pdsa_at_night_and_on_holidays(switch, local_time: str,
                                                                             queue: str) -> None:
    room = await open_room(switch, clock=shifted_clock(local_time))
    try:
        await room.desk("1001", ["n1-arm"], "arm-n1")
        await room.desk("3001" if queue == "n2-mg" else "4001", [queue], "gp-regulator")
        leg = room.call("116117", "0640000001")
        call = await room.tracked(leg)
        await room.talking_in(call, "n1-arm")
        status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P2"})
        assert status == 200 and body["target"] == queue, body
        await room.talking_in(call, queue)
        assert room.joined(call) == ["n1-arm", queue] and not leg.dropped
    finally:
        await room.close()


async def test_p0_stays_with_the_n1_arm(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    leg = room.call("15", "0650000001")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P0"})
    assert status == 200 and body["target"] is None, body
    assert call.current_leg is not None and call.current_leg.queue == "n1-arm"
    assert room.joined(call) == ["n1-arm"] and not leg.dropped


@pytest.mark.parametrize(("number", "first", "second"), [("0472000020", "n2-amu", "n2-mg"),
                                                          ("0472000021", "n2-mg", "n2-amu")])
async def test_amu_and_mg_transfer_both_ways_while_talking(room: Room, number: str, first: str,
                                                           second: str) -> None:
    for extension, queue, role in (("2001", "n2-amu", "emergency-doctor"), ("2002", "n2-amu", "arm-amu"),
                                   ("3001", "n2-mg", "gp-regulator"), ("3002", "n2-mg", "osnp")):
        await room.desk(extension, [queue], role)
    leg = room.call(number, "0660000001")  # ATSU direct lines: straight to N2
    call = await room.tracked(leg)
    await room.talking_in(call, first)
    status, body = await room.post(f"/api/calls/{call.call_id}/transfer", {"queue": second})
    assert status == 200, body
    await room.talking_in(call, second)
    status, body = await room.post(f"/api/calls/{call.call_id}/transfer", {"queue": first})
    assert status == 200, body
    await room.talking_in(call, first)
    first_desk, _, back_desk = [leg_.member_name for leg_ in call.legs]
    assert back_desk != first_desk  # the first desk is in its queue's 10 s wrap-up: a colleague takes it back
    assert room.joined(call) == [first, second, first] and not leg.dropped


async def test_a_waiting_caller_is_moved_before_anyone_answers(room: Room) -> None:
    await room.desk("2001", ["n2-amu"], "arm-amu")
    leg = room.call("15", "0670000001")  # nobody in N1: the caller waits there
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    # Nobody serves N1, so no desk may take this caller: the room's supervisor moves it.
    status, body = await room.post(f"/api/calls/{call.call_id}/transfer", {"queue": "n2-amu"}, "super-token")
    assert status == 200 and body["mechanism"] == "withdraw", body
    await room.talking_in(call, "n2-amu")
    assert room.joined(call) == ["n1-arm", "n2-amu"] and not leg.dropped


async def test_a_desk_phone_transfers_with_its_own_key_and_a_wrong_code_never_drops(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu", answer_after=None)  # rings, answers on command
    leg = room.call("15", "0680000001")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    await room.switch.desk_transfer("1001", "999")  # no queue has that code: back to the front of N1
    await eventually(lambda: room.joined(call) == ["n1-arm", "n1-arm"], timeout=10, what="back in N1")
    await room.talking_in(call, "n1-arm")
    assert call.current_leg.interface == "PJSIP/1001"
    await room.switch.desk_transfer("1001", "200")  # N2 AMU's transfer code
    await room.waiting_in(call, "n2-amu")
    assert room.joined(call) == ["n1-arm", "n1-arm", "n2-amu"] and not leg.dropped
    assert [number for number, _ in room.switch.queue_callers("n2-amu")] == ["0680000001"]


async def test_an_overflow_to_a_partner_that_is_down_comes_back_to_the_front_of_n1(room: Room) -> None:
    # Nobody logged in N1: the Rhône's rule sends callers to the Isère, whose trunk is down here.
    leg = room.call("15", "0690000001")
    call = await room.tracked(leg)
    await eventually(lambda: room.joined(call) == ["n1-arm", "n1-arm"], timeout=15, what="back from the partner")
    await room.waiting_in(call, "n1-arm")
    assert room.switch.queue_callers("n1-arm") == [("0690000001", room.plan.front_priority)]
    assert not leg.dropped


async def test_a_switched_over_line_that_the_partner_cannot_take_stays_served_here(room: Room) -> None:
    status, body = await room.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 100,
                                                        "reason": "renfort"}, token="super-token")
    assert status == 200, body
    assert await room.switch.db_get("sas-switch", "116117") == "sas-38:100"
    leg = room.call("116117", "0611000001")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm", timeout=15)
    assert not leg.dropped
    status, body = await room.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 30,
                                                        "reason": "partiel"}, token="super-token")
    assert status == 200, body
    assert await room.switch.db_get("sas-switch", "116117") == "sas-38:30"
    status, body = await room.post("/api/switchovers/116117/end", {"reason": "fin"}, token="super-token")
    assert status == 200, body
    assert await room.switch.db_get("sas-switch", "116117") is None


async def test_a_repeat_caller_moves_up_one_priority(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    first = room.call("116117", "0612000001")
    call = await room.tracked(first)
    await room.talking_in(call, "n1-arm")
    await eventually(lambda: room.switch.queue_callers("n1-arm") == [], what="answered")
    first.hangup()
    await eventually(lambda: call.ended_at is not None, what="first call ended")
    again = room.call("116117", "0612000001")
    second = await room.tracked(again)
    assert second.repeat and second.priority == 4 and not again.dropped


async def test_an_engine_restart_adopts_the_live_call_and_can_still_move_it(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu")
    leg = room.call("15", "0613000001")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    engine = await room.stack.restart_engine()
    await eventually(lambda: engine.link.connected and engine.resyncs >= 1, timeout=10, what="engine back")
    adopted = await room.tracked(leg)
    assert adopted is not call and adopted.call_id == call.call_id
    await room.talking_in(adopted, "n1-arm")
    # The desks' roles are kept on the switch (AstDB), so figures by role survive the restart.
    await eventually(lambda: engine.roles.get("PJSIP/1001") == "arm-n1", what="roles back")
    status, agents = await room.get("/api/agents")
    assert {a["interface"]: a["role"] for a in agents} == {"PJSIP/1001": "arm-n1", "PJSIP/2001": "arm-amu"}
    status, body = await room.post(f"/api/calls/{adopted.call_id}/qualify", {"level": "P1"})
    assert status == 200, body
    await room.talking_in(adopted, "n2-amu")
    assert not leg.dropped


async def test_the_engine_refuses_a_switch_without_a_module_the_dialplan_needs(switch) -> None:
    await switch.unload_module("func_rand")
    try:
        room = await open_room(switch, wait_connected=False)
        try:
            await eventually(lambda: room.engine.refused.is_set(), timeout=10, what="refusal")
            assert "func_rand" in room.engine.refusal
            status, body = await room.get("/health")
            assert status == 200 and body["status"] == "refused" and "func_rand" in body["refusal"]
            assert room.engine.resyncs == 0  # it did not start routing on a switch that cannot carry it
        finally:
            await room.close()
    finally:
        await switch.load_module("func_rand")


@pytest.mark.parametrize("interface", ["PJSIP/9999", "Local/0899123456@attacker/n", "Local/1001@sas-desk-transfer"])
async def test_a_desk_the_plan_does_not_declare_cannot_log_in(room: Room, interface: str) -> None:
    status, body = await room.post("/api/agents/login", {"interface": interface, "queues": ["n1-arm"],
                                                         "name": "x", "role": "arm-n1"})
    assert status == 403 and "is not a desk of sas-69" in body["error"], body
    leg = room.call("15", "0614000001")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    assert room.engine.tracker.agents == {} and not leg.dropped


async def test_the_room_s_figures_equal_what_the_switch_counted(room: Room) -> None:
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("1002", ["n1-arm"], "arm-n1")
    first, second = room.call("116117", "0618000001"), room.call("116117", "0618000002")
    calls = [await room.tracked(first), await room.tracked(second)]
    for call in calls:
        await room.talking_in(call, "n1-arm")
    third = room.call("15", "0618000003")  # both desks busy: this caller waits, then gives up
    waiting = await room.tracked(third)
    await room.waiting_in(waiting, "n1-arm")
    third.hangup()
    first.hangup()
    second.hangup()
    await eventually(lambda: all(c.ended_at is not None for c in [*calls, waiting]), timeout=10, what="all ended")

    async def switch_counts() -> tuple[int, int]:
        answer = await room.listener.send_action({"Action": "QueueStatus", "Queue": "n1-arm"})
        params = next(m for m in answer if m.get("Event") == "QueueParams")
        return int(params["Completed"]), int(params["Abandoned"])

    completed, abandoned = 0, 0
    for _ in range(100):
        completed, abandoned = await switch_counts()
        if (completed, abandoned) == (2, 1):
            break
        await asyncio.sleep(0.05)
    status, figures = await room.get("/api/supervision/figures/today")
    assert status == 200, figures
    n1 = figures["queues"]["n1-arm"]
    assert (completed, abandoned) == (2, 1)
    assert (n1["answered"], n1["abandoned"], n1["offered"]) == (completed, abandoned, completed + abandoned)
    # The third caller gave up within the site's short_abandon (5 s): counted apart at SAS level.
    assert (figures["sas"]["offered"], figures["sas"]["answered"], figures["sas"]["short_abandoned"]) == (3, 2, 1)
    assert figures["sas"]["qs30"] == 1.0
    assert not first.dropped and not second.dropped and not third.dropped


async def test_a_p1_caller_waits_in_amu_with_the_p1_priority_set_before_the_move(room: Room) -> None:
    # The move's Setvar and BlindTransfer leave back to back; the switch must still apply them in order.
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu", answer_after=None)  # rings, nobody picks up
    leg = room.call("116117", "0619000001")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    assert status == 200 and body["mechanism"] == "transfer", body
    await room.waiting_in(call, "n2-amu")
    assert room.switch.queue_callers("n2-amu") == [("0619000001", room.plan.routes[Priority.P1].priority)]
    assert not leg.dropped


# --- the AMI link lost and found: what the engine believes afterwards is what the switch has ----

async def test_a_call_answered_while_the_link_was_down_is_talking_and_can_be_qualified(room: Room) -> None:
    n1 = await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu")
    assert (await room.post("/api/agents/pause", {"interface": n1, "reason": "brief"}))[0] == 200
    leg = room.call("15", "0670000011")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    async with room.link_outage():
        await room.on_switch({"Action": "QueuePause", "Interface": n1, "Paused": "false"})
        await eventually(lambda: any(e.get("Event") == "AgentConnect" and e.get("Queue") == "n1-arm"
                                     for e in room.events), what="the desk answers while the engine is away")
    await room.talking_in(call, "n1-arm")
    assert [(v.queue, v.outcome.value) for v in call.visits] == [("n1-arm", "answered")]
    assert call.current_leg.interface == n1
    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    assert status == 200, body
    await room.talking_in(call, "n2-amu")
    assert not leg.dropped


async def test_a_call_that_ended_while_the_link_was_down_is_closed_as_unseen_not_waiting(room: Room) -> None:
    leg = room.call("15", "0670000012")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    async with room.link_outage():
        leg.hangup()
        await eventually(lambda: not room.switch.queue_callers("n1-arm"), what="the caller gone from the queue")
    await eventually(lambda: call.ended_at is not None, what="the call closed")
    assert [(v.queue, v.outcome.value) for v in call.visits] == [("n1-arm", "ended-while-away")]
    assert call not in room.engine.tracker.calls.values()


async def test_a_desk_the_switch_no_longer_has_is_not_offered_calls_after_the_link_returns(room: Room) -> None:
    amu = await room.desk("2001", ["n2-amu"], "arm-amu")
    async with room.link_outage():
        await room.on_switch({"Action": "QueueRemove", "Queue": "n2-amu", "Interface": amu})
    await eventually(lambda: amu not in room.engine.tracker.agents, what="the desk forgotten")
    await room.desk("1001", ["n1-arm"], "arm-n1")
    leg = room.call("15", "0670000013")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    # Nobody in AMU any more: the caller goes to the front of N1, never to a desk that is not there.
    assert status == 200 and body["target"] == "n1-arm", body
    await eventually(lambda: call.current_queue == "n1-arm" and call.state.value in ("waiting", "talking"),
                     what="back in N1")
    assert all(leg_.interface != amu for leg_ in call.legs) and not leg.dropped


async def test_a_stalled_switch_is_seen_within_seconds_and_the_link_comes_back_by_itself(room: Room, switch) -> None:
    """The switch keeps its TCP socket but answers nothing (emulator fault; a real Asterisk frozen
    with SIGSTOP): /health must stop saying "up" within a few seconds, and once the switch
    answers again the engine logs in again by itself and still holds the waiting caller."""
    leg = room.call("15", "0670000021")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    engine = room.engine
    resyncs = engine.resyncs
    async with switch.stalled():
        late = asyncio.ensure_future(room.on_switch({"Action": "Ping"}))
        await eventually(lambda: engine.health()["ami"] == "stalled", timeout=10, what="stall seen")
        status, health = await room.get("/health")
        assert status == 200 and health["status"] == "degraded" and health["ami"] == "stalled"
        assert not late.done()
    # What was asked during the stall is answered after it, late but not lost (as a frozen Asterisk
    # does: the kernel kept the bytes) — the emulator holds it the same way.
    assert (await asyncio.wait_for(late, timeout=10)).get("Response") == "Success"
    await eventually(lambda: engine.link.connected and engine.resyncs > resyncs, timeout=20,
                     what="logged in again after the stall")
    await room.waiting_in(call, "n1-arm")
    assert engine.health()["ami"] == "up" and not leg.dropped


async def test_a_switch_restart_cuts_the_calls_not_counted_as_abandons_and_keeps_the_desks(room: Room, switch) -> None:
    """Asterisk restarting hangs every caller up itself (SoftHangupRequest Cause 4, seen on a real
    Asterisk 22): those calls are closed "cut-by-switch", not abandons; the desks, persistent
    members, are still logged in afterwards and take the next call."""
    n1 = await room.desk("1001", ["n1-arm"], "arm-n1")
    assert (await room.post("/api/agents/pause", {"interface": n1, "reason": "brief"}))[0] == 200
    leg = room.call("15", "0670000031")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")
    resyncs = room.engine.resyncs
    await switch.restart()
    await eventually(lambda: call.ended_at is not None, timeout=15, what="the call closed")
    assert [(v.queue, v.outcome.value) for v in call.visits] == [("n1-arm", "cut-by-switch")]
    await eventually(lambda: room.engine.link.connected and room.engine.resyncs > resyncs, timeout=30,
                     what="engine back on the restarted switch")
    await eventually(lambda: n1 in room.engine.tracker.agents, timeout=10, what="the desk still logged in")
    assert (await room.post("/api/agents/resume", {"interface": n1}))[0] == 200
    await switch.desk("1001", 0.2)  # the phone registers again, as a desk phone does when its switch restarts
    after = room.call("15", "0670000032")
    next_call = await room.tracked(after)
    await room.talking_in(next_call, "n1-arm", timeout=15)
    assert next_call.current_leg.interface == n1


async def test_a_returning_116117_caller_never_goes_ahead_of_a_waiting_15(room: Room) -> None:
    """The night switch-over of the 116 117 to a partner that cannot answer: the caller comes back
    to the front — of the non-urgent callers only. The 15 caller who waited first is served first."""
    status, body = await room.post("/api/overflow/n1-arm", {"enabled": False, "reason": "test des priorités"},
                                   token="super-token")
    assert status == 200, body
    emergency = room.call("15", "0675000001")
    first = await room.tracked(emergency)
    await room.waiting_in(first, "n1-arm")
    status, body = await room.post("/api/switchovers", {"line": "116117", "partner": "sas-38", "share": 100,
                                                        "reason": "nuit"}, token="super-token")
    assert status == 200, body
    care = room.call("116117", "0675000002")
    second = await room.tracked(care)
    await eventually(lambda: len(room.switch.queue_callers("n1-arm")) == 2, timeout=20,
                     what="the 116 117 caller back from the partner")
    assert room.switch.queue_callers("n1-arm") == [("0675000001", 5), ("0675000002", room.plan.care_front_priority)]
    assert room.plan.care_front_priority == 4
    # The room is told at once: the switch-over is failing, its calls are served here.
    status, alarms = await room.get("/api/alarms")
    assert status == 200
    failing = next(a for a in alarms if a["key"] == "switchover-failing:116117")
    assert failing["level"] == "critical" and "Bascule 116117 → sas-38 en échec" in failing["text"]
    status, aid = await room.get("/api/mutual-aid")
    assert aid["partners"]["sas-38"]["status"] == "failing"
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.talking_in(first, "n1-arm", timeout=15)  # the 15 first
    assert second.current_leg is None and not emergency.dropped and not care.dropped


async def test_the_recorder_keeps_the_whole_call_across_two_moves_with_the_caller_s_voice(room: Room,
                                                                                       tmp_path) -> None:
    """The caller says a 1 kHz tone (real RTP on the real switch); N1 answers, qualifies P1 (AMU),
    AMU hands over to MG, the caller hangs up. One recording: as long as the call from its first
    queue, with the tone in it, its sha256 as indexed; and the caller never got a BYE."""
    await room.desk("1001", ["n1-arm"], "arm-n1")
    await room.desk("2001", ["n2-amu"], "arm-amu")
    await room.desk("3001", ["n2-mg"], "mrg")
    leg = room.call("15", "0633445566", name="Martin")
    call = await room.tracked(leg)
    await room.talking_in(call, "n1-arm")
    await leg.say_tone(1000.0, 30.0, tmp_path)
    await asyncio.sleep(1.0)
    status, body = await room.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1", "reason": "douleur"})
    assert status == 200, body
    await room.talking_in(call, "n2-amu")
    await asyncio.sleep(1.0)
    status, body = await room.post(f"/api/calls/{call.call_id}/transfer", {"queue": "n2-mg", "reason": "avis MG"},
                                   token="super-token")
    assert status == 200, body
    await room.talking_in(call, "n2-mg")
    await asyncio.sleep(1.0)
    assert call.recording.startswith("sas/") and call.recording_started
    # Named by the call id, filtered as Asterisk's FILTER does it (a trailing '-' is not kept).
    assert call.recording.endswith("/" + call.call_id.replace("-", "") + ".wav")
    leg.hangup()
    await eventually(lambda: call.ended_at is not None, timeout=10, what="call ended")
    recorder = room.stack.supervision.recorder
    await eventually(lambda: call.call_id in recorder.index, timeout=20, what="recording indexed")
    entry = recorder.index[call.call_id]
    file = room.switch.monitor_dir / call.recording
    expected = call.ended_at - call.recording_at
    assert entry.status == "ok", entry
    assert abs(entry.duration - expected) <= 1.0, (entry.duration, expected)
    assert entry.sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    assert entry.queues == "n1-arm,n2-amu,n2-mg" and entry.desks == "1001,2001,3001"
    assert abs(dominant_frequency(file) - 1000.0) < 10, "the caller's voice is in the recording"
    assert not leg.dropped
