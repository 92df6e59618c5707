"""The call tracker fed with real-Asterisk recordings: it must tell apart what Asterisk reports alike."""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.engine.core.calls import AgentStatus, Call, CallState, IllegalTransition, VisitOutcome
from sas_router.engine.core.tracker import Tracker
from sas_router.simulator.transcripts import load_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"


def fed(name: str) -> Tracker:
    tracker = Tracker()
    for frame in load_transcript(FIXTURES / f"{name}.log"):
        if frame.is_event:
            tracker.feed(frame.message.as_dict(), frame.at)
    return tracker


def only_call(tracker: Tracker):
    calls = list(tracker.ended) + list(tracker.calls.values())
    assert len(calls) == 1, [c.channel for c in calls]
    return calls[0]


def test_answer_is_not_a_leave_and_talk_time_comes_from_the_agent_leg() -> None:
    call = only_call(fed("02-queue-answer"))
    assert [(v.queue, v.outcome) for v in call.visits] == [("n1-arm", VisitOutcome.ANSWERED)]
    assert call.line == "15" and call.caller_num == "0612345678"
    assert [(leg.member_name, leg.end_reason) for leg in call.legs] == [("1001", "caller")]
    assert call.state == CallState.ENDED and call.legs[0].talk_time is not None and call.legs[0].talk_time >= 1.9


def test_redirect_then_blind_transfer_keeps_one_call_and_ignores_the_stale_agent_complete() -> None:
    call = only_call(fed("03-redirect-transfer"))
    assert [v.queue for v in call.visits] == ["n1-arm", "n2-amu", "n2-mg"]
    assert all(v.outcome == VisitOutcome.ANSWERED for v in call.visits)
    assert [leg.queue for leg in call.legs] == ["n1-arm", "n2-amu", "n2-mg"]
    # The N1 leg ended when its agent channel was hung up at the Redirect (3.5 s in), not at the
    # stale AgentComplete that came 12 s later with the whole call's TalkTime.
    n1 = call.legs[0]
    assert n1.end_reason == "released" and n1.talk_time is not None and n1.talk_time < 3
    assert call.legs[1].end_reason == "transfer"


def test_redirect_of_a_waiting_caller_is_not_an_abandon() -> None:
    tracker = fed("04-overflow-redirect")
    call = only_call(tracker)
    assert [(v.queue, v.outcome) for v in call.visits][:2] == [("n1-arm", VisitOutcome.REDIRECTED),
                                                              ("n2-mg", VisitOutcome.REDIRECTED)]
    assert VisitOutcome.ABANDONED not in [v.outcome for v in call.visits]


def test_hangup_while_waiting_is_an_abandon() -> None:
    tracker = fed("05-abandon")
    calls = list(tracker.ended)
    assert len(calls) == 2
    assert all([v.outcome for v in c.visits] == [VisitOutcome.ABANDONED] for c in calls)


def test_queue_withdraw_caller_is_a_move_towards_its_destination() -> None:
    call = only_call(fed("08-queue-withdraw-caller"))
    visit = call.visits[0]
    assert (visit.outcome, visit.destination) == (VisitOutcome.OVERFLOWED, "sas-38")
    assert call.state != CallState.ENDED or call.hangup_cause is not None


def test_queue_member_events_build_the_agent_picture() -> None:
    frames = [f for f in load_transcript(FIXTURES / "06-status-while-waiting.log") if f.is_event]
    start = frames[0].at
    tracker = Tracker()
    for frame in frames:
        if frame.at - start < 3.0:
            tracker.feed(frame.message.as_dict(), frame.at)
    agent = tracker.agents["Local/2001@agents/n"]
    assert agent.paused and agent.memberships["n2-amu"].paused_reason == "test"
    assert agent.status.value == "paused"
    final = fed("06-status-while-waiting").agents["Local/2001@agents/n"]
    assert not final.paused and final.status.value == "available"


def test_an_attended_transfer_keeps_one_record_through_its_local_helper() -> None:
    """Recording 03d: after the Atxfer the n2-amu queue caller is Local/200@transfer;2, not the
    caller; its join, answer and end belong to the caller's record, and no second call appears."""
    tracker = fed("03d-atxfer")
    calls = list(tracker.ended) + list(tracker.calls.values())
    transferred = calls[-1]
    assert len(calls) == 2  # the first call (Atxfer refused) and this one: no call for the helper
    assert [(v.queue, v.outcome) for v in transferred.visits] == [("n1-arm", VisitOutcome.ANSWERED),
                                                                 ("n2-amu", VisitOutcome.ANSWERED)]
    assert transferred.visits[1].channel.startswith("Local/200@transfer-")
    assert [(leg.queue, leg.member_name, leg.end_reason) for leg in transferred.legs] == [
        ("n1-arm", "1001", "transfer"), ("n2-amu", "2001", "caller")]
    assert transferred.channel.startswith("Local/15@from-pstn-") and not tracker.helpers


def test_a_reconnect_during_a_consultation_adopts_the_helper_as_the_callers_wait() -> None:
    """After an engine restart CoreShowChannels lists the helper (maybe first: the order is the
    switch's); it must not become a second call nor steal the caller's Linkedid."""
    caller = {"Channel": "PJSIP/operator-00000001", "Uniqueid": "100.1", "Linkedid": "100.1",
              "Application": "Queue", "ApplicationData": "n1-arm,t", "BridgeId": "home", "CallerIDNum": "0612345678"}
    helper = {"Channel": "Local/200@sas-desk-transfer-00000002;2", "Uniqueid": "100.5", "Linkedid": "100.1",
              "Application": "Queue", "ApplicationData": "n2-amu,t", "BridgeId": "", "CallerIDNum": "0612345678"}
    entry = {"Queue": "n2-amu", "Uniqueid": "100.5", "Wait": "12", "Position": "1", "Priority": "4"}
    tracker = Tracker()
    tracker.resync([helper, caller], [entry], {"100.1": {"SAS_CALL_ID": "sas-69-100.1", "SAS_LINE": "15"},
                                               "100.5": {"SAS_CALL_ID": "sas-69-100.1", "SAS_LINE": "15"}}, 1000.0)
    assert list(tracker.calls) == ["100.1"] and tracker.by_linkedid == {"100.1": "100.1"}
    call = tracker.calls["100.1"]
    assert call.current_visit is not None and call.current_visit.queue == "n2-amu"
    assert call.current_visit.channel == helper["Channel"] and call.current_visit.joined_at == 988.0
    assert tracker.helpers == {"100.5": "100.1"}


def test_a_caller_who_hangs_up_while_the_snapshot_is_read_is_not_brought_back() -> None:
    """The Hangup arrives between CoreShowChannels and the end of the resync: the snapshot still
    lists the channel, but it must not come back as a ghost waiting call."""
    channel = {"Channel": "PJSIP/operator-00000009", "Uniqueid": "200.9", "Linkedid": "200.9",
               "Application": "Queue", "ApplicationData": "n1-arm,t", "Duration": "00:01:05"}
    entry = {"Queue": "n1-arm", "Uniqueid": "200.9", "Wait": "60", "Position": "1", "Priority": "5"}
    tracker = Tracker()
    tracker.feed({"Event": "Hangup", "Uniqueid": "200.9", "Linkedid": "200.9", "Cause": "16"}, 1000.5)
    tracker.resync([channel], [entry], {}, 1001.0, since=1000.0)
    assert tracker.calls == {}
    fresh = Tracker()
    fresh.resync([channel], [entry], {}, 1001.0, since=1000.0)
    assert fresh.calls["200.9"].started_at == 1001.0 - 65, "Asterisk 22 says Duration: HH:MM:SS"


def test_a_resync_closes_a_wait_that_was_answered_while_away_and_drops_desks_the_switch_lost() -> None:
    tracker = Tracker()
    tracker.feed({"Event": "QueueMemberAdded", "Queue": "n1-arm", "Interface": "PJSIP/1001",
                  "MemberName": "1001"}, 900.0)
    tracker.feed({"Event": "QueueMemberAdded", "Queue": "n2-amu", "Interface": "PJSIP/2001",
                  "MemberName": "2001"}, 900.0)
    tracker.feed({"Event": "QueueCallerJoin", "Queue": "n1-arm", "Uniqueid": "300.1", "Linkedid": "300.1",
                  "Channel": "PJSIP/operator-00000001", "Position": "1", "CallerIDNum": "0612345678"}, 950.0)
    caller = {"Channel": "PJSIP/operator-00000001", "Uniqueid": "300.1", "Linkedid": "300.1",
              "Application": "Queue", "ApplicationData": "n1-arm,t", "BridgeId": "b1"}
    desk = {"Channel": "PJSIP/1001-00000002", "Uniqueid": "300.2", "Linkedid": "300.1", "Application": "AppQueue",
            "BridgeId": "b1"}
    notices = tracker.resync_members([{"Event": "QueueMember", "Queue": "n1-arm", "Interface": "PJSIP/1001",
                                       "Name": "1001", "Status": "2", "InCall": "1"}], 1000.0)
    assert "PJSIP/2001" not in tracker.agents
    assert {"interface": "PJSIP/2001", "queue": "", "status": "logged-out", "while": "link-down"} in \
        [n.data for n in notices]
    tracker.resync([caller, desk], [], {}, 1000.0)
    call = tracker.calls["300.1"]
    assert [(v.queue, v.outcome, v.left_at) for v in call.visits] == [("n1-arm", VisitOutcome.ANSWERED, 1000.0)]
    assert call.state == CallState.TALKING and call.current_leg.interface == "PJSIP/1001"


def test_a_talking_call_gone_while_away_is_closed_leg_and_all() -> None:
    """Found by the chaos test: closing the leg of a talking call that vanished during an outage
    used to raise, and the whole resync with it — the engine then routed blind."""
    tracker = Tracker()
    caller = {"Channel": "PJSIP/operator-00000001", "Uniqueid": "400.1", "Linkedid": "400.1",
              "Application": "Queue", "ApplicationData": "n1-arm,t", "BridgeId": "b1", "Duration": "00:00:12"}
    desk = {"Channel": "PJSIP/1001-00000002", "Uniqueid": "400.2", "Linkedid": "400.1", "Application": "AppQueue",
            "BridgeId": "b1", "Duration": "00:00:07"}
    tracker.resync([caller, desk], [], {}, 1000.0)
    call = tracker.calls["400.1"]
    assert (call.started_at, call.legs[0].connected_at, call.visits[0].wait) == (988.0, 993.0, 5.0)
    notices = tracker.resync([], [], {}, 1010.0)
    assert [n.kind for n in notices] == ["call-ended"] and call.legs[0].end_reason == "unseen"
    assert call.legs[0].ended_at == 1010.0 and call.state == CallState.ENDED


def test_a_desk_in_its_wrap_up_time_is_not_free() -> None:
    """app_queue keeps a member out of the rotation for the queue's wrapuptime after its call
    (AgentComplete): the desk is idle but writing up, so it is neither free for the figures nor
    for the partners (it used to count as available)."""
    tracker = Tracker()
    tracker.wrapup = {"n1-arm": 5.0}
    frames = [f for f in load_transcript(FIXTURES / "02-queue-answer.log") if f.is_event]
    completed_at = None
    for frame in frames:
        tracker.feed(frame.message.as_dict(), frame.at)
        if frame.message.as_dict().get("Event") == "AgentComplete":
            completed_at = frame.at
    assert completed_at is not None
    [desk] = [a for a in tracker.agents.values() if "n1-arm" in a.memberships]
    assert desk.state(completed_at + 4.9) == AgentStatus.WRAPUP
    assert tracker.available("n1-arm", completed_at + 4.9) == 0
    assert desk.state(completed_at + 5.0) == AgentStatus.AVAILABLE
    assert tracker.available("n1-arm", completed_at + 5.0) == 1
    assert desk.public(completed_at + 1)["status"] == "wrap-up"


def test_a_call_never_comes_back_from_its_end_nor_goes_back_to_ringing() -> None:
    call = only_call(fed("02-queue-answer"))
    assert call.state == CallState.ENDED
    with pytest.raises(IllegalTransition, match="ended -> waiting"):
        call.state = CallState.WAITING
    assert call.state == CallState.ENDED
    talking = Call(uniqueid="1", linkedid="1", channel="PJSIP/x-1", started_at=0.0)
    talking.state = CallState.TALKING
    with pytest.raises(IllegalTransition):
        talking.state = CallState.RINGING


def test_an_event_that_would_revive_an_ended_call_is_refused_and_counted() -> None:
    tracker = fed("02-queue-answer")
    call = only_call(tracker)
    tracker.calls[call.uniqueid] = call  # as if still followed when a stray event arrives
    visits = list(call.visits)
    notices = tracker.feed({"Event": "QueueCallerJoin", "Uniqueid": call.uniqueid, "Channel": call.channel,
                            "Queue": "n1-arm", "Position": "1"}, 1e10)
    assert notices == [] and tracker.refused_total == 1 and "ended -> waiting" in tracker.refused[-1][1]
    assert call.state == CallState.ENDED
    assert call.visits == visits  # refused before anything changed
