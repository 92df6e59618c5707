"""app_queue options in the emulator that decide what a caller lives through: joinempty and
leavewhenempty (who may join a queue nobody can answer, when a waiting caller is sent back to the
dialplan with QUEUESTATUS) and memberdelay (the answered member waits; hanging up meanwhile dumps
the caller, who is offered again), as app_queue.c does."""

from __future__ import annotations

import pytest
from sas_router.simulator.softswitch.app_queue import empty_conditions
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.model import Channel

EXTENSIONS = """
[from-pstn]
exten => strict,1,Goto(queue,1)
exten => leaving,1,Goto(queue,1)
exten => lenient,1,Goto(queue,1)
exten => queue,1,Answer()
 same => n,Queue(${QUEUE_NAME})
 same => n,Set(AFTER=${QUEUESTATUS})
 same => n,Wait(600)

[agents]
exten => 1001,1,Answer()
 same => n,Wait(600)
; this desk rings and never picks up
exten => 2001,1,Ringing()
 same => n,Wait(600)
"""
QUEUES = """
[general]
[strict]
joinempty = strict
member => Local/1001@agents/n,0,1001
[leaving]
leavewhenempty = unavailable,paused
member => Local/2001@agents/n,0,2001
[lenient]
joinempty = yes
leavewhenempty = no
"""


@pytest.mark.parametrize(("value", "joinempty", "expected"), [
    ("yes", True, set()),
    ("no", False, set()),
    ("no", True, {"penalty", "invalid", "paused"}),
    ("yes", False, {"penalty", "invalid", "paused"}),
    ("strict", True, {"penalty", "invalid", "paused", "unavailable"}),
    ("loose", False, {"penalty", "invalid"}),
    ("paused,inuse,wrapup", True, {"paused", "inuse", "wrapup"}),
])
def test_empty_conditions_read_as_app_queue_reads_them(value: str, joinempty: bool, expected: set[str]) -> None:
    assert empty_conditions(value, joinempty=joinempty) == expected


def _call(sw: Softswitch, queue: str) -> Channel:
    ch = sw.inbound_call("operator", queue, caller_num="0612345678", context="from-pstn")
    assert ch is not None
    ch.variables["QUEUE_NAME"] = queue
    return ch


def _switch() -> Softswitch:
    return Softswitch(EXTENSIONS, QUEUES, scheduler=Scheduler(1_000_000.0, virtual=True))


def _run(sw: Softswitch, seconds: float) -> None:
    sw.scheduler.advance(seconds)
    sw.scheduler.run_due()


def test_a_strict_queue_whose_only_member_is_paused_refuses_the_caller_who_goes_on_in_the_dialplan() -> None:
    sw = _switch()
    sw.queues.pause_member("strict", "Local/1001@agents/n", True, "lunch")
    caller = _call(sw, "strict")
    _run(sw, 2)
    assert caller.variables["AFTER"] == "JOINEMPTY"
    assert not caller.hungup and not sw.queues.queues["strict"].callers


def test_a_strict_queue_with_a_free_member_takes_the_caller() -> None:
    sw = _switch()
    caller = _call(sw, "strict")
    _run(sw, 2)
    assert "AFTER" not in caller.variables
    assert caller.variables["BRIDGEPEER"].startswith("Local/1001@agents-")


def test_a_waiting_caller_leaves_within_a_second_or_so_once_every_member_is_paused() -> None:
    sw = _switch()
    caller = _call(sw, "leaving")
    _run(sw, 3)
    assert sw.queues.find_caller(caller) is not None  # someone could still answer: it waits
    sw.queues.pause_member("leaving", "Local/2001@agents/n", True, "meeting")
    _run(sw, 1.5)
    assert caller.variables["AFTER"] == "LEAVEEMPTY"
    assert not caller.hungup and sw.queues.find_caller(caller) is None


def test_joinempty_yes_lets_a_caller_wait_in_a_queue_without_members() -> None:
    sw = _switch()
    caller = _call(sw, "lenient")
    _run(sw, 30)
    assert sw.queues.find_caller(caller) is not None and "AFTER" not in caller.variables


DELAYED = """
[general]
[delayed]
memberdelay = 3
retry = 2
member => Local/1001@agents/n,0,1001
"""


def _delayed_switch() -> tuple[Softswitch, list[str]]:
    sw = Softswitch(EXTENSIONS.replace("exten => strict,", "exten => delayed,1,Goto(queue,1)\nexten => strict,"),
                    DELAYED, scheduler=Scheduler(1_000_000.0, virtual=True))
    names: list[str] = []
    sw.listeners.append(lambda event: names.append(event.name))
    return sw, names


def test_memberdelay_holds_the_answered_member_before_the_caller_is_connected() -> None:
    sw, names = _delayed_switch()
    caller = _call(sw, "delayed")
    _run(sw, 2)  # the member answered ~0.5 s after being rung: still inside memberdelay
    assert "DialEnd" in names and "AgentConnect" not in names
    _run(sw, 3)
    assert "AgentConnect" in names and caller.variables["BRIDGEPEER"].startswith("Local/1001@agents-")


def test_a_member_hanging_up_during_memberdelay_dumps_the_caller_who_is_offered_again() -> None:
    sw, names = _delayed_switch()
    caller = _call(sw, "delayed")
    _run(sw, 2)
    agent = next(ch for ch in sw.channels.values() if ch.name.startswith("Local/1001@agents-") and ch.half == 2)
    sw.request_hangup(agent, 16, soft=True)
    _run(sw, 0.1)
    assert names.count("AgentDump") == 1 and "AgentConnect" not in names
    assert sw.queues.find_caller(caller) is not None and not caller.hungup  # still waiting in the queue
    _run(sw, 6)  # retry, ring, answer, memberdelay: this time the desk stays
    assert names.count("AgentCalled") == 2 and "AgentConnect" in names
