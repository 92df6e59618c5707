"""Emulator behaviours a site notices beyond the recorded scenarios: Local channel optimisation
with real endpoints, and an AMI attended transfer end to end (features.conf, reload, completion).

The recorded scenarios (tests/conformance) pin the event shapes; these tests pin the outcomes a
telecom admin or the engine relies on, on the emulator's virtual clock.
"""

from __future__ import annotations

from pathlib import Path

from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Endpoint, Softswitch, originate
from sas_router.simulator.softswitch.model import Channel, Event

ETC = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "asterisk-etc"

DIALLING_MEMBER = """
[from-pstn]
exten => 15,1,Answer()
 same => n,Queue(n1-arm,t)
 same => n,Hangup()

[agents-dial]
exten => _X.,1,Dial(PJSIP/${EXTEN},30)
 same => n,Hangup()
"""


def _switch(extensions: str, features: str = "") -> tuple[Softswitch, list[Event]]:
    sw = Softswitch(extensions, (ETC / "queues.conf").read_text(), scheduler=Scheduler(1_000_000.0, virtual=True),
                    features=lambda: features)
    events: list[Event] = []
    sw.listeners.append(events.append)
    return sw, events


def _named(events: list[Event], name: str) -> list[Event]:
    return [e for e in events if e.name == name]


def _run(sw: Softswitch, seconds: float) -> None:
    sw.scheduler.advance(seconds)
    sw.scheduler.run_due()


def _member_status(events: list[Event], interface: str) -> list[str]:
    return [e.get("Status") for e in _named(events, "QueueMemberStatus") if e.get("Interface") == interface]


def _answered_through(member: str) -> tuple[Softswitch, list[Event], Channel]:
    """A 15 call answered by phone PJSIP/1001 through the n1-arm member ``member`` (a Local channel
    into [agents-dial], which dials the phone), three seconds on."""
    sw, events = _switch(DIALLING_MEMBER)
    sw.endpoints["1001"] = Endpoint("1001", answer_after=0.5)
    sw.queues.add_member("n1-arm", member, "1001")
    caller = sw.inbound_call("operator", "15", caller_num="0612345678", context="from-pstn")
    assert caller is not None
    _run(sw, 3)
    return sw, events, caller


def test_a_local_member_without_n_is_optimised_away_once_the_agent_phone_answers() -> None:
    sw, events, caller = _answered_through("Local/1001@agents-dial")

    phone = next(ch for ch in sw.channels.values() if ch.name.startswith("PJSIP/1001-"))
    assert caller.variables["BRIDGEPEER"] == phone.name  # the caller now talks to the phone directly
    optimised = [(e.get("LocalOneChannel"), e.get("SourceChannel")) for e in _named(events, "LocalOptimizationBegin")]
    assert optimised == [(_named(events, "AgentConnect")[0].get("DestChannel"), phone.name)]
    assert not any(ch.name.startswith("Local/1001@agents-dial") for ch in sw.channels.values())
    # The recorded surprise (07): the member's state interface has no channel left, so it reads
    # NOT_INUSE while its agent is still talking.
    assert _member_status(events, "Local/1001@agents-dial")[-1] == "1"

    sw.request_hangup(phone, 16, soft=False)
    _run(sw, 1)
    complete = _named(events, "AgentComplete")
    assert [(e.get("Reason"), e.get("DestChannel")) for e in complete] == [("agent", phone.name)]
    assert caller.hungup  # Queue() without 'c': the caller follows the agent


def test_a_local_member_with_n_is_never_optimised_so_the_desk_stays_in_use() -> None:
    _, events, caller = _answered_through("Local/1001@agents-dial/n")

    assert not _named(events, "LocalOptimizationBegin")
    assert caller.variables["BRIDGEPEER"].startswith("Local/1001@agents-dial-")
    assert _member_status(events, "Local/1001@agents-dial/n")[-1] == "2"


def _bridged_call(sw: Softswitch) -> tuple[str, str]:
    """A caller answered by agent 1001 in n1-arm; returns (caller ;2 name, agent ;1 name)."""
    for queue, member in (("n1-arm", "1001"), ("n2-amu", "2001")):
        sw.queues.add_member(queue, f"Local/{member}@agents/n", member)
    originate(sw, "Local/15@from-pstn", context="caller", exten="talk", callerid="Dupont <0612345678>")
    _run(sw, 2)
    caller = next(ch for ch in sw.channels.values() if ch.name.startswith("Local/15@from-pstn-") and ch.half == 2)
    return caller.name, caller.variables["BRIDGEPEER"]


def test_atxfer_needs_the_feature_code_the_channel_read_when_it_was_bridged() -> None:
    text = {"features.conf": ""}
    sw = Softswitch((ETC / "extensions.conf").read_text(), (ETC / "queues.conf").read_text(),
                    scheduler=Scheduler(1_000_000.0, virtual=True), features=lambda: text["features.conf"])
    _, agent = _bridged_call(sw)
    assert sw.atxfer(sw.channels[agent], "transfer", "200") == "No attended transfer feature code found"

    text["features.conf"] = "[featuremap]\natxfer => *2\n"
    sw.reload_features()
    assert sw.featuremap["atxfer"] == "*2"
    # Asterisk 22 keeps the map a bridged channel already read (recording 03d).
    assert sw.atxfer(sw.channels[agent], "transfer", "200") == "No attended transfer feature code found"


def test_atxfer_to_n2_amu_keeps_the_caller_and_completes_when_the_n1_agent_hangs_up() -> None:
    sw, events = _switch((ETC / "extensions.conf").read_text(), "[featuremap]\natxfer => *2\n")
    caller_name, agent_name = _bridged_call(sw)
    caller = sw.channels[caller_name]
    uniqueid = caller.uniqueid

    assert sw.atxfer(sw.channels[agent_name], "transfer", "200") is None
    _run(sw, 2)
    assert "".join(e.get("Digit") for e in _named(events, "DTMFEnd")) == "*2200"
    helper = _named(events, "QueueCallerJoin")[-1]
    assert helper.get("Queue") == "n2-amu" and helper.get("Channel").startswith("Local/200@transfer-")
    assert _named(events, "AgentConnect")[-1].get("Queue") == "n2-amu"
    assert caller.bridge is not None and caller.bridge.channels == [caller]  # on hold while the agents consult

    sw.request_hangup(sw.channels[agent_name], 16, soft=True)  # the N1 agent hangs up: transfer done
    _run(sw, 1)
    transfer = _named(events, "AttendedTransfer")
    assert [e.get("Result") for e in transfer] == ["Success"]
    assert transfer[0].get("TransfereeChannel") == caller_name
    assert not caller.hungup and caller.uniqueid == uniqueid  # the call was never dropped
    assert caller.variables["BRIDGEPEER"] == transfer[0].get("TransferTargetChannel")
    assert [(e.get("Queue"), e.get("Reason")) for e in _named(events, "AgentComplete")] == [("n1-arm", "transfer")]


def _consulting(sw: Softswitch) -> tuple[str, str]:
    caller_name, agent_name = _bridged_call(sw)
    assert sw.atxfer(sw.channels[agent_name], "transfer", "200") is None
    _run(sw, 2)
    return caller_name, agent_name


def test_atxfer_target_hanging_up_returns_the_agent_to_the_caller() -> None:
    sw, events = _switch((ETC / "extensions.conf").read_text(), "[featuremap]\natxfer => *2\n")
    caller_name, agent_name = _consulting(sw)
    n2_agent = next(ch for ch in sw.channels.values() if ch.name.startswith("Local/2001@agents-") and ch.half == 2)
    sw.request_hangup(n2_agent, 16, soft=True)  # the N2 desk hangs up during the consultation
    _run(sw, 1)
    caller, agent = sw.channels[caller_name], sw.channels[agent_name]
    assert not caller.hungup and not agent.hungup
    assert caller.variables["BRIDGEPEER"] == agent_name and agent.variables["BRIDGEPEER"] == caller_name
    assert not _named(events, "AttendedTransfer")
    assert not any(ch.name.startswith("Local/200@transfer-") for ch in sw.channels.values())


def test_caller_hanging_up_during_the_consultation_leaves_a_plain_call_between_the_agents() -> None:
    sw, events = _switch((ETC / "extensions.conf").read_text(), "[featuremap]\natxfer => *2\n")
    caller_name, agent_name = _consulting(sw)
    caller_leg_one = sw.channels[caller_name].peer
    assert caller_leg_one is not None
    sw.request_hangup(caller_leg_one, 16, soft=True)  # the caller gives up while on hold
    _run(sw, 1)
    agent = sw.channels[agent_name]
    assert agent.variables["BRIDGEPEER"].startswith("Local/200@transfer-")  # still consulting
    sw.request_hangup(agent, 16, soft=True)
    _run(sw, 1)
    assert agent.hungup and not _named(events, "AttendedTransfer")
