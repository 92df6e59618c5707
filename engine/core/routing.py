"""Routing decisions: where a qualified or transferred caller goes, and how to move them.

Pure functions of the plan, the call record and the live counts; the service turns a
:class:`Move` into AMI actions. The mechanism follows the real-Asterisk recordings:

* A caller still **waiting** in a queue is withdrawn with ``QueueWithdrawCaller`` naming the
  ``sas-route`` extension of the target (transcript 08): Queue() returns to the rendered
  dialplan, which goes to the target by itself and, if the destination is unknown, puts the
  caller back at the front of the queue it left — the fallback does not need the engine.
* A caller **talking** to an agent is moved with a ``BlindTransfer`` of the desk's bridged leg
  (the ``DestChannel`` of its AgentConnect) to ``sas-route,q-<target>`` (transcripts 03, 03b):
  the caller's own channel goes to the dialplan with its Uniqueid, and app_queue reports
  ``AgentComplete Reason=transfer`` at once, which ends the desk's "in call" state. That matters:
  with a wrap-up time, app_queue does not offer calls to a member still "in call", and after a
  plain Redirect of the caller that state lasts until the caller's final hang-up (transcript 03:
  no AgentComplete at Redirect time) — the N1 desk would be lost for the whole N2 conversation.
* If the switch refuses the transfer (``Transfer invalid``: the leg is not the bridged one, or is
  gone), the caller's own channel is moved with a ``Redirect`` to ``sas-route,q-<target>,1``
  (transcript 03): the old agent legs are hung up at once and the caller hears the target's music.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sas_router.engine.core.calls import Call, CallState
from sas_router.engine.plan import Plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import Priority, Role
from sas_router.engine.plan.schedule import route_queue


class RoutingError(ValueError):
    """A request that cannot be carried out; the message is shown to the desk as is."""


class UndeclaredInterface(PermissionError):
    """A queue member the site plan does not declare: never offered a caller (a mistyped or
    invented interface would sit in the queue as "(Invalid)", or ring a number nobody vetted)."""


REMOTE_MEMBER = re.compile(r"^Local/\+?[0-9]{2,20}@" + re.escape(C.CTX_REMOTE_AGENT) + r"/n$")


def check_interface(plan: Plan, interface: str) -> None:
    """Refuse any member but a declared desk (``PJSIP/<desk>``) or a remote regulator reached by
    number through the rendered ``sas-remote-agent`` context (``Local/<number>@sas-remote-agent/n``)."""
    if plan.desk_of(interface) is not None or REMOTE_MEMBER.fullmatch(interface):
        return
    declared = ", ".join(_ranges(sorted(plan.desks))) or "none"
    raise UndeclaredInterface(f"{interface} is not a desk of {plan.site.id} (declared desks: {declared}; a remote "
                              f"regulator is Local/<number>@{C.CTX_REMOTE_AGENT}/n)")


def _ranges(extensions: list[str]) -> list[str]:
    """1001 1002 1003 1010 -> 1001-1003, 1010: an error message an admin can read."""
    out: list[str] = []
    start = prev = None
    for ext in sorted(extensions, key=lambda e: (len(e), e)):
        if prev is not None and len(ext) == len(prev) and int(ext) == int(prev) + 1:
            prev = ext
            continue
        if start is not None:
            out.append(start if start == prev else f"{start}-{prev}")
        start = prev = ext
    if start is not None:
        out.append(start if start == prev else f"{start}-{prev}")
    return out


@dataclass(frozen=True)
class Move:
    mechanism: str  # "withdraw" | "transfer" | "redirect"
    channel: str
    source_queue: str
    target_queue: str
    priority: int
    #: The desk's bridged leg, for a transfer.
    agent_channel: str = ""

    def actions(self) -> list[dict[str, str]]:
        """The AMI actions, in order. SAS_PRIO first: the target's Queue() reads it as QUEUE_PRIO."""
        setvar = {"Action": "Setvar", "Channel": self.channel, "Variable": f"__{C.VAR_PRIO}",
                  "Value": str(self.priority)}
        target = C.route_to_queue(self.target_queue)
        if self.mechanism == "withdraw":
            return [setvar, {"Action": "QueueWithdrawCaller", "Queue": self.source_queue, "Caller": self.channel,
                             "WithdrawInfo": target}]
        if self.mechanism == "transfer":
            return [setvar, {"Action": "BlindTransfer", "Channel": self.agent_channel, "Context": C.CTX_ROUTE,
                             "Exten": target}]
        return [setvar, {"Action": "Redirect", "Channel": self.channel, "Context": C.CTX_ROUTE, "Exten": target,
                         "Priority": "1"}]

    def as_redirect(self) -> Move:
        """The same move by a Redirect of the caller's own channel (when a transfer is refused)."""
        return Move("redirect", self.channel, self.source_queue, self.target_queue, self.priority)


def qualification_target(plan: Plan, level: Priority, instant: datetime) -> str | None:
    """P0 stays (None); P1 → N2 AMU; P2 → N2 MG by day, PDSA at night, weekends and holidays."""
    return route_queue(plan, level, instant)


def qualification_priority(plan: Plan, level: Priority, call: Call) -> int:
    route = plan.routes[level]
    return route.priority if route.priority is not None else call.priority


def answering_queue(plan: Plan, wanted: str, logged_in: Callable[[str], int], *, avoid: str = "") -> str:
    """The queue that will actually answer: ``wanted`` if someone is logged in there, else its
    plan fallback, else any N2 AMU queue with agents, else N1 — never nowhere."""
    candidates = [wanted]
    spec = plan.queues.get(wanted)
    if spec is not None and spec.fallback is not None and spec.fallback.queue:
        candidates.append(spec.fallback.queue)
    candidates += plan.queues_with_role(Role.N2_AMU) + plan.queues_with_role(Role.N1)
    for queue in candidates:
        if queue != avoid and logged_in(queue) > 0:
            return queue
    return wanted if wanted != avoid or not candidates else candidates[-1]


def plan_move(call: Call, target_queue: str, priority: int) -> Move:
    if call.state == CallState.ENDED:
        raise RoutingError("the call has ended")
    if target_queue == call.current_queue and call.state == CallState.WAITING:
        raise RoutingError(f"the caller is already waiting in {target_queue}")
    visit = call.current_visit
    if visit is not None:
        return Move("withdraw", visit.channel or call.channel, visit.queue, target_queue, priority)
    if call.state in (CallState.TALKING, CallState.MOVING):
        leg = call.current_leg
        if call.state == CallState.TALKING and leg is not None and leg.agent_channel:
            return Move("transfer", call.channel, call.current_queue, target_queue, priority, leg.agent_channel)
        return Move("redirect", call.channel, call.current_queue, target_queue, priority)
    raise RoutingError("the call is not in a queue yet")


def utcnow_from(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
