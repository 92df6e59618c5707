"""The routing engine against the emulated switchboard over real TCP (AMI) and HTTP (control API)."""

from __future__ import annotations

import asyncio

import pytest
from sas_router.engine.core.calls import Call, VisitOutcome
from sas_router.simulator.softswitch.model import Channel

from tests.integration.harness import Site, eventually, shifted_clock, start_site


@pytest.fixture
async def site():
    s = await start_site()
    yield s
    await s.close()


async def test_15_answered_in_n1_then_p1_to_n2_amu_without_dropping_the_caller(site: Site) -> None:
    n1, amu = site.desk("1001"), site.desk("2001")
    await site.login(n1, ["n1-arm"], "arm-n1")
    await site.login(amu, ["n2-amu"], "arm-amu")
    caller = site.call("15", "0612345678", name="Dupont")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    assert call.line == "15" and call.call_id == f"sas-69-{caller.uniqueid}"

    status, body = await site.post(f"/api/calls/{call.call_id}/qualify",
                                   {"level": "P1", "reason": "douleur thoracique"})
    assert status == 200, body
    assert body["target"] == "n2-amu" and body["mechanism"] == "transfer"
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="N2 answer")
    # The desk's leg was blind-transferred: app_queue closes the N1 leg at once (AgentComplete transfer).
    assert [e.get("Reason") for e in site.events if e.name == "AgentComplete" and e.get("Queue") == "n1-arm"] \
        == ["transfer"]

    assert not caller.hungup and site.switch.find_channel(caller.name) is caller  # same channel, same Uniqueid
    assert site.joined(caller) == ["n1-arm", "n2-amu"]
    assert [(v.queue, v.outcome) for v in call.visits] == [("n1-arm", VisitOutcome.ANSWERED),
                                                          ("n2-amu", VisitOutcome.ANSWERED)]
    assert [leg.member_name for leg in call.legs] == ["1001", "2001"]
    assert call.legs[0].ended_at is not None  # the N1 desk was released at once
    assert call.qualification == "P1" and call.transfers[0].confirmed_at is not None
    assert not [e for e in site.events if e.name == "Hangup" and e.get("Uniqueid") == caller.uniqueid]


async def answered_in_n1(site: Site) -> tuple[str, Channel, Call]:
    """An N1 desk and an N2 AMU desk logged in, a 15 call answered by the N1 desk."""
    n1, amu = site.desk("1001"), site.desk("2001")
    await site.login(n1, ["n1-arm"], "arm-n1")
    await site.login(amu, ["n2-amu"], "arm-amu")
    caller = site.call("15", "0612345678")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    return n1, caller, call


async def test_the_n1_desk_takes_the_next_call_while_the_first_caller_talks_in_n2(site: Site) -> None:
    # The Rhône's N1 has a 5 s wrap-up: app_queue offers no call to a member still "in call" from a
    # queue with wrap-up, and only the transfer's AgentComplete ends that state.
    assert site.plan.queues["n1-arm"].wrapup == 5
    n1, first, call = await answered_in_n1(site)
    status, body = await site.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    assert status == 200 and body["mechanism"] == "transfer", body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="N2 answer")

    second = site.call("116117", "0478112233")
    after = await eventually(lambda: site.engine.tracker.calls.get(second.uniqueid), what="second call tracked")
    await eventually(lambda: after.current_leg is not None, timeout=10, what="the N1 desk answers the next call")
    assert after.current_leg.interface == n1 and not first.hungup and call.current_leg.queue == "n2-amu"


async def test_a_refused_transfer_falls_back_to_a_redirect_of_the_caller(site: Site) -> None:
    _, caller, call = await answered_in_n1(site)
    call.current_leg.agent_channel = "PJSIP/1001-ffffffff"  # a leg the switch does not know
    status, body = await site.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    assert status == 200 and body["mechanism"] == "redirect", body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="N2 answer")
    assert not caller.hungup and call.transfers[0].mechanism == "redirect"


@pytest.mark.parametrize(
    ("local_time", "queue"),
    [
        ("2026-11-24T10:00", "n2-mg"),  # a Tuesday morning: GP regulation
        ("2026-11-24T21:00", "pdsa"),  # Tuesday night: PDSA
        ("2026-11-22T10:00", "pdsa"),  # a Sunday
        ("2026-07-14T10:00", "pdsa"),  # Bastille Day, a Tuesday
    ],
)
async def test_p2_goes_to_gp_by_day_and_to_pdsa_out_of_hours(local_time: str, queue: str) -> None:
    site = await start_site(clock=shifted_clock(local_time))
    try:
        n1, target = site.desk("1001"), site.desk("3001")
        await site.login(n1, ["n1-arm"], "arm-n1")
        await site.login(target, [queue], "gp-regulator")
        caller = site.call("116117")
        call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
        await eventually(lambda: call.current_leg is not None, what="N1 answer")
        status, body = await site.post(f"/api/calls/{caller.uniqueid}/qualify", {"level": "P2"})
        assert status == 200, body
        await eventually(lambda: call.current_leg is not None and call.current_leg.queue == queue, what=queue)
        assert site.joined(caller) == ["n1-arm", queue] and not caller.hungup
        # The GP closes the file with a simple medical advice: recorded, and the caller stays on.
        leg = call.current_leg
        status, body = await site.post(f"/api/calls/{caller.uniqueid}/qualify",
                                       {"level": "P2", "medical_advice": True, "reason": "conseil"})
        assert status == 200 and body["moved"] is False, body
        await asyncio.sleep(0.5)
        assert call.current_leg is leg and site.joined(caller) == ["n1-arm", queue] and not caller.hungup
    finally:
        await site.close()


async def test_p0_stays_with_the_n1_agent(site: Site) -> None:
    await site.login(site.desk("1001"), ["n1-arm"], "arm-n1")
    caller = site.call("15")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    status, body = await site.post(f"/api/calls/{caller.uniqueid}/qualify", {"level": "P0"})
    assert status == 200 and body["target"] is None
    assert call.current_leg is not None and call.current_leg.queue == "n1-arm"


@pytest.mark.parametrize(("first", "second"), [("n2-amu", "n2-mg"), ("n2-mg", "n2-amu")])
async def test_transfers_between_amu_and_mg_both_ways(site: Site, first: str, second: str) -> None:
    await site.login(site.desk("2001"), ["n2-amu"], "emergency-doctor")
    await site.login(site.desk("3001"), ["n2-mg"], "gp-regulator")
    caller = site.call("0472000020" if first == "n2-amu" else "0472000021")  # ATSU direct lines
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == first, what=first)
    status, body = await site.post(f"/api/calls/{caller.uniqueid}/transfer", {"queue": second})
    assert status == 200, body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == second, what=second)
    assert site.joined(caller) == [first, second] and not caller.hungup


async def test_transfer_to_a_queue_without_agents_lands_in_a_queue_that_answers(site: Site) -> None:
    await site.login(site.desk("1001"), ["n1-arm"], "arm-n1")
    await site.login(site.desk("2001", answer_after=30), ["n2-amu"], "arm-amu")  # logged in, slow to answer
    caller = site.call("15")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    status, body = await site.post(f"/api/calls/{caller.uniqueid}/transfer", {"queue": "psy"})  # nobody there
    assert status == 200, body
    assert body["wanted"] == "psy" and body["target"] == "n2-amu"
    await eventually(lambda: call.current_visit is not None and call.current_visit.queue == "n2-amu", what="queued")
    assert not caller.hungup
    assert call.current_visit.priority == site.plan.front_priority
    assert site.switch.queues.queues["n2-amu"].callers[0].channel is caller


async def test_repeat_caller_is_flagged_and_moved_up(site: Site) -> None:
    first = site.call("116117", "0655443322")
    await eventually(lambda: site.engine.tracker.calls.get(first.uniqueid), what="first call")
    await eventually(lambda: site.switch.astdb.get("sas-recent/0655443322"), what="number remembered")
    site.switch.request_hangup(first)  # abandons, calls back a minute later
    other = site.call("116117", "0600000099")
    again = site.call("116117", "0655443322")
    call = await eventually(lambda: (c := site.engine.tracker.calls.get(again.uniqueid)) and c.current_visit and c,
                            what="second call waiting")
    assert call.repeat and call.priority == 4  # 116 117 is priority 3; a repeat caller gets one more
    waiting = [c.uniqueid for c in site.engine.tracker.waiting("n1-arm")]
    assert waiting == [again.uniqueid, other.uniqueid]
    status, body = await site.get(f"/api/calls/{again.uniqueid}", token="super-token")
    assert status == 200 and body["repeat"] is True


async def test_waiting_caller_is_withdrawn_not_redirected(site: Site) -> None:
    await site.login(site.desk("2001"), ["n2-amu"], "arm-amu")
    caller = site.call("15")  # nobody in N1: the caller waits
    call = await eventually(lambda: (c := site.engine.tracker.calls.get(caller.uniqueid)) and c.current_visit and c,
                            what="waiting")
    status, body = await site.post(f"/api/calls/{caller.uniqueid}/transfer", {"queue": "n2-amu"}, "super-token")
    assert status == 200 and body["mechanism"] == "withdraw"
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="answered")
    assert call.visits[0].outcome == VisitOutcome.TRANSFERRED
    assert any(e.name == "VarSet" and e.get("Variable") == "QUEUE_WITHDRAW_INFO" for e in site.events)


async def test_sis_and_atsu_land_in_their_queues_ahead_of_the_public(site: Site) -> None:
    public = site.call("15", "0600000001")
    sis = site.call("0472000018", "0472999999")
    atsu = site.call("0472000020", "0472999998")
    await eventually(lambda: len(site.engine.tracker.waiting()) == 3, what="three waiting")
    waiting_n1 = [c.uniqueid for c in site.engine.tracker.waiting("n1-arm")]
    assert waiting_n1 == [sis.uniqueid, public.uniqueid]
    assert [c.uniqueid for c in site.engine.tracker.waiting("n2-amu")] == [atsu.uniqueid]
    calls = {c.uniqueid: c for c in site.engine.tracker.waiting()}
    assert (calls[sis.uniqueid].line, calls[sis.uniqueid].priority) == ("sis-n1", 9)
    assert (calls[atsu.uniqueid].line, calls[atsu.uniqueid].priority) == ("atsu-amu", 8)


async def test_withheld_caller_on_15_still_shows_the_number_to_the_desk(site: Site) -> None:
    caller = site.call("15", "0611223344", withheld=True)
    await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    status, body = await site.get(f"/api/calls/{caller.uniqueid}", token="super-token")
    assert status == 200 and body["caller"] == "0611223344"
    # A desk sees the caller's number only once the call is for it (a queue it serves, its call).
    status, _ = await site.get(f"/api/calls/{caller.uniqueid}", token="lrm1-token-0123456789")
    assert status == 403
    await site.login(site.desk("1001", answer_after=None), ["n1-arm"], "arm-n1")  # rings, never answers
    status, body = await site.get(f"/api/calls/{caller.uniqueid}", token="lrm1-token-0123456789")
    assert status == 200 and body["caller"] == "0611223344"
    status, listed = await site.get("/api/calls", token="lrm2-token-0123456789")
    assert status == 200 and listed == []  # desk 1002 serves no queue: no caller is its business


async def test_api_refuses_missing_tokens_and_small_roles(site: Site) -> None:
    assert (await site.get("/api/calls", token=None))[0] == 401
    assert (await site.get("/api/calls", token="forged"))[0] == 401
    status, body = await site.get("/api/calls")
    assert status == 200 and body == []
    status, body = await site.get("/openapi.json", token=None)
    assert status == 200 and "/api/calls/{call}/qualify" in body["paths"]


async def test_injection_through_api_fields_never_reaches_the_switch(site: Site) -> None:
    sent: list[dict[str, str]] = []
    original = site.engine.link._manager.send_action

    def spy(action, *args, **kwargs):
        sent.append(dict(action))
        return original(action, *args, **kwargs)

    site.engine.link._manager.send_action = spy
    status, _ = await site.post("/api/agents/login", {"interface": "PJSIP/1001\r\nAction: Hangup",
                                                         "queues": ["n1-arm"], "name": "x", "role": "arm-n1"})
    assert status == 422
    status, _body = await site.post("/api/agents/pause", {"interface": "PJSIP/1001", "reason": "café\r\nAction: X"})
    assert status == 422
    assert not [a for a in sent if "Hangup" in str(a) or "Action: X" in str(a)]


async def test_roles_are_enforced(site: Site) -> None:
    status, body = await site.post("/api/agents/logout", {"interface": "PJSIP/1001"},
                                   token="lrm2-token-0123456789")
    assert status == 403 and "not a desk of lrm-2" in body["error"]  # a desk logs out its own desk only
    assert (await site.post("/api/admin/resync", {}, token="super-token"))[0] == 403
    assert (await site.post("/api/admin/resync", {}, token="admin-token"))[0] == 200


async def test_caller_name_carrying_crlf_injects_nothing(site: Site) -> None:
    await site.login(site.desk("1001"), ["n1-arm"], "arm-n1")
    await site.login(site.desk("2001"), ["n2-amu"], "arm-amu")
    hangups_before = [e for e in site.events if e.name == "SoftHangupRequest"]
    caller = site.call("15", "0612345678", name="x\r\nAction: Hangup\r\nChannel: PJSIP/1001")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    status, _ = await site.post(f"/api/calls/{caller.uniqueid}/qualify", {"level": "P1"})
    assert status == 200
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="N2 answer")
    assert [e for e in site.events if e.name == "SoftHangupRequest"] == hangups_before
    assert not caller.hungup


async def test_engine_restart_during_twenty_live_calls_loses_and_duplicates_nothing(site: Site) -> None:
    for ext in range(1001, 1011):
        await site.login(site.desk(str(ext)), ["n1-arm"], "arm-n1")
    await site.login(site.desk("2001"), ["n2-amu"], "arm-amu")
    callers = [site.call("15" if i % 2 else "116117", f"06000000{i:02d}") for i in range(20)]
    await eventually(lambda: len(site.engine.tracker.calls) == 20
                     and sum(1 for c in site.engine.tracker.calls.values() if c.current_leg) == 10,
                     what="10 talking, 10 waiting")
    before = {c.uniqueid: (c.call_id, c.line, c.caller_num) for c in site.engine.tracker.calls.values()}

    fresh = await site.live.restart_engine()
    await eventually(lambda: fresh.resyncs >= 1, what="resync")
    after = {c.uniqueid: (c.call_id, c.line, c.caller_num) for c in fresh.tracker.calls.values()}
    assert after == before  # every call known again, with its tags, once
    assert sum(1 for c in fresh.tracker.calls.values() if c.current_leg) == 10
    assert sum(1 for c in fresh.tracker.calls.values() if c.current_visit) == 10

    talking = next(c for c in fresh.tracker.calls.values() if c.current_leg)
    status, body = await site.post(f"/api/calls/{talking.call_id}/qualify", {"level": "P1"})
    assert status == 200, body
    await eventually(lambda: talking.current_leg is not None and talking.current_leg.queue == "n2-amu",
                     what="transfer after restart")
    assert not any(ch.hungup for ch in callers)


async def test_ami_drop_mid_transfer_leaves_the_caller_queued_and_replays_nothing(site: Site) -> None:
    await site.login(site.desk("1001"), ["n1-arm"], "arm-n1")
    await site.login(site.desk("2001"), ["n2-amu"], "arm-amu")
    caller = site.call("15")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")

    site.server.faults.stall_responses = True  # the switch stops answering ...
    import asyncio

    request = asyncio.ensure_future(site.post(f"/api/calls/{caller.uniqueid}/qualify", {"level": "P1"}))
    await asyncio.sleep(0.3)
    site.server.drop_all()  # ... and the link drops while the transfer is in flight
    site.server.faults.stall_responses = False
    status, body = await request
    assert status == 503, body
    await eventually(lambda: site.engine.resyncs >= 2, timeout=8, what="reconnected")
    await asyncio.sleep(1.0)  # room for a blind replay, which must not happen
    assert not caller.hungup
    tracked = site.engine.tracker.calls[caller.uniqueid]
    assert tracked.current_leg is not None and tracked.current_leg.queue == "n1-arm"  # still with the N1 desk
    assert site.joined(caller) == ["n1-arm"]
    status, body = await site.post(f"/api/calls/{caller.uniqueid}/qualify", {"level": "P1"})
    assert status == 200, body
    await eventually(lambda: tracked.current_leg is not None and tracked.current_leg.queue == "n2-amu",
                     what="transfer after reconnect")


async def test_a_desk_transferring_from_its_phone_moves_the_caller_and_a_wrong_number_drops_nobody(
        site: Site) -> None:
    """The desk's own transfer key (SIP REFER), not the API: the code of n2-amu takes the caller
    there and the engine follows it; a mistyped number sends it back to the front of its queue."""
    _, caller, call = await answered_in_n1(site)
    desk_leg = site.switch.find_channel(call.current_leg.agent_channel)
    assert desk_leg is not None and desk_leg.variables["TRANSFER_CONTEXT"] == "sas-desk-transfer"

    assert site.switch.desk_transfer("1001", site.plan.queues["n2-amu"].transfer_code) is None
    site.server._wake.set()
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="N2 answer")
    assert site.joined(caller) == ["n1-arm", "n2-amu"] and not caller.hungup
    assert [(v.queue, v.outcome) for v in call.visits] == [("n1-arm", VisitOutcome.ANSWERED),
                                                          ("n2-amu", VisitOutcome.ANSWERED)]
    assert [e.get("Reason") for e in site.events if e.name == "AgentComplete" and e.get("Queue") == "n1-arm"] \
        == ["transfer"]

    # A SIP URI that no extension matches is refused by the switch (404): the call stays as it is.
    refused = site.switch.desk_transfer("2001", "docteur")
    assert refused == "blind transfer target docteur@sas-desk-transfer does not exist"
    assert call.current_leg is not None and call.current_leg.queue == "n2-amu"
    # The AMU desk keys a number that is no queue's code: the caller is back, first in line.
    assert site.switch.desk_transfer("2001", "9999") is None
    site.server._wake.set()
    await eventually(lambda: len(call.visits) == 3, what="the caller queued again")
    assert call.visits[-1].queue == "n2-amu" and call.visits[-1].priority == site.plan.front_priority
    assert not caller.hungup and site.switch.find_channel(caller.name) is caller
    assert not [e for e in site.events if e.name == "Hangup" and e.get("Uniqueid") == caller.uniqueid]


async def test_an_attended_transfer_from_the_desk_is_followed_through_its_helper_channel(site: Site) -> None:
    """A site that enables attended transfer (features.conf atxfer): during the consultation the
    queue caller of N2 is a Local helper carrying the caller's Linkedid (recording 03d). The engine
    shows the call waiting there, moves it by the helper, and keeps one record to the end."""
    from sas_router.simulator.softswitch.atxfer import parse_featuremap

    site.switch.featuremap = parse_featuremap("[featuremap]\natxfer => *2\n")  # read when the desk is bridged
    n1, amu, mg = site.desk("1001"), site.desk("2001", answer_after=None), site.desk("3001")
    await site.login(n1, ["n1-arm"], "arm-n1")
    await site.login(amu, ["n2-amu"], "arm-amu")
    await site.login(mg, ["n2-mg"], "osnp")
    caller = site.call("15", "0612345678")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    desk_leg = site.switch.find_channel(call.current_leg.agent_channel)
    assert desk_leg is not None

    assert site.switch.atxfer(desk_leg, None, site.plan.queues["n2-amu"].transfer_code) is None  # *2 then 200
    site.server._wake.set()
    visit = await eventually(lambda: call.current_visit, timeout=5, what="the helper waits in n2-amu")
    assert visit.queue == "n2-amu" and visit.channel.startswith("Local/200@sas-desk-transfer-")
    assert [c.call_id for c in site.engine.tracker.waiting()] == [call.call_id]  # one record, seen waiting
    assert call.channel == caller.name

    # The N1 desk decides MG after all: the engine withdraws the helper, not the caller on hold.
    status, body = await site.post(f"/api/calls/{call.call_id}/transfer", {"queue": "n2-mg"})
    assert status == 200 and body["mechanism"] == "withdraw", body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-mg", what="MG answers")

    site.switch.request_hangup(desk_leg, 16, soft=True)  # the N1 desk hangs up: the transfer completes
    site.server._wake.set()
    await eventually(lambda: call.legs[0].ended_at is not None, what="N1 leg closed")
    assert call.legs[0].end_reason == "transfer" and not caller.hungup
    assert [(v.queue, v.outcome) for v in call.visits] == [
        ("n1-arm", VisitOutcome.ANSWERED), ("n2-amu", VisitOutcome.TRANSFERRED), ("n2-mg", VisitOutcome.ANSWERED)]

    site.switch.request_hangup(caller.peer or caller, 16, soft=True)  # the caller hangs up at last
    site.server._wake.set()
    await eventually(lambda: call.ended_at is not None, what="call ended")
    assert call.legs[-1].queue == "n2-mg" and call.legs[-1].ended_at is not None
    assert not site.engine.tracker.helpers


async def test_a_switch_that_never_answers_login_is_left_and_tried_again(site: Site) -> None:
    """TCP accepted, Login never answered (a switch half up): the engine must not wait forever on
    that connection; it gives up after login_timeout and logs in once the switch answers."""
    import asyncio

    link = site.engine.link
    link.login_timeout = 1.5
    logins, resyncs = link.logins, site.engine.resyncs
    site.server.faults.stall_responses = True
    site.server.drop_all()
    await eventually(lambda: not link.connected, what="link down")
    await asyncio.sleep(4.0)  # at least two login deadlines pass unanswered
    assert not link.connected and link.logins == logins and site.engine.health()["ami"] == "down"
    site.server.faults.stall_responses = False
    await eventually(lambda: link.connected and site.engine.resyncs > resyncs, timeout=10,
                     what="logged in on a later connection")


@pytest.mark.parametrize("refusal", ["busy", "unsafe"])
async def test_a_refused_move_leaves_the_record_as_it_was(site: Site, refusal: str) -> None:
    """The AMI link refuses the move before anything is sent (too many actions waiting, or a
    value it will not write): the call's record must not say "transferred" nor keep the new
    priority — a caller who then hangs up is journaled as answered in N1, the truth."""
    from sas_router.engine.ami import AmiBusy, UnsafeValue

    _, caller, call = await answered_in_n1(site)
    priority = call.priority

    async def refuse(actions):  # type: ignore[no-untyped-def]
        raise AmiBusy("too many AMI actions waiting") if refusal == "busy" else UnsafeValue("Channel: refused")

    site.engine.link.send_in_order = refuse
    status, body = await site.post(f"/api/calls/{call.call_id}/qualify", {"level": "P1"})
    assert status == (503 if refusal == "busy" else 422), body
    assert (call.transfers, call.expected_move, call.priority) == ([], None, priority)
    site.switch.request_hangup(caller, 16, soft=False)
    await eventually(lambda: call.ended_at is not None, what="call ended")
    assert [(v.queue, v.outcome) for v in call.visits] == [("n1-arm", VisitOutcome.ANSWERED)]
    assert call.legs[0].end_reason == "caller"
