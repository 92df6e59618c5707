"""The call tracker: AMI events in, call and agent records out. Pure: no sockets, no clock.

It is fed parsed AMI events (``Mapping[str, str]``) with the instant they were received, and
returns notices for the rest of the engine (supervision, journal). Asterisk reports several
different things alike (see ``tests/fixtures/transcripts/README.md``); the tracker tells them
apart as follows:

* ``QueueCallerLeave`` also precedes every answer: a leave after ``DialEnd DialStatus=ANSWER``
  on the caller is an answer, the ``AgentConnect`` that follows opens the agent leg.
* A waiting caller moved by a Redirect emits ``QueueCallerAbandon`` + ``QueueCallerLeave`` like
  a hang-up. It is a move when the engine said it was moving that call, when the abandon's
  snapshot already shows another dialplan location than the one it joined from (transcript
  04), or when ``QUEUE_WITHDRAW_INFO`` was set (QueueWithdrawCaller, transcript 08). Otherwise
  it is an abandon.
* A stale ``AgentComplete`` for an earlier queue arrives long after a Redirect (transcript 03):
  the leg it would close was already closed when its agent channel hung up, so it is ignored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sas_router.engine.core.calls import (
    Agent,
    AgentLeg,
    AgentStatus,
    Call,
    CallState,
    IllegalTransition,
    Membership,
    QueueVisit,
    VisitOutcome,
)
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.plan import contexts as C

Event = Mapping[str, str]

#: Tag variables the rendered dialplan sets on the caller (leading underscores stripped).
_TAGS = {
    C.VAR_CALL_ID: "call_id", C.VAR_LINE: "line", C.VAR_DIALED: "dialed", C.VAR_CALLER_NUM: "caller_num",
    C.VAR_GEOLOC: "geolocation", C.VAR_ORIGIN: "origin", C.VAR_ENTRY_QUEUE: "entry_queue",
    C.VAR_SWITCHED_TO: "switched_to", C.VAR_INBOUND: "inbound", C.VAR_OVERFLOWED_TO: "overflowed_to",
}


@dataclass
class _Exit:
    """What was seen of a queue exit before its QueueCallerLeave."""

    abandon: bool = False
    moved: bool = False
    withdraw_info: str = ""


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


class Tracker:
    """Every live call and agent of one switch, rebuilt from its AMI events."""

    def __init__(self, *, keep_ended: int = 2000) -> None:
        #: Wrap-up seconds per queue (the plan's ``wrapup``, rendered as app_queue's wrapuptime).
        self.wrapup: dict[str, float] = {}
        #: Events refused because they would make an illegal call transition: (when, why).
        self.refused: deque[tuple[float, str]] = deque(maxlen=100)
        self.refused_total = 0
        self.calls: dict[str, Call] = {}
        self.by_linkedid: dict[str, str] = {}
        self.agents: dict[str, Agent] = {}
        self.ended: deque[Call] = deque(maxlen=keep_ended)
        self.events_seen = 0
        self._join_location: dict[str, tuple[str, str, str]] = {}
        self._exits: dict[str, _Exit] = {}
        #: Uniqueid of an attended transfer's Local helper (;2) -> the caller's Uniqueid. After an
        #: AMI Atxfer or a desk's attended transfer the helper, not the caller, is the queue caller
        #: of the target queue (recording 03d); its queue events belong to the caller's record.
        self.helpers: dict[str, str] = {}
        #: Uniqueid -> when its Hangup was seen, for every channel (known or not), so a resync whose
        #: snapshot was taken before a hangup does not bring the call back as a ghost.
        self.hung_up: dict[str, float] = {}
        #: Callers the switch is hanging up as it shuts down (SoftHangupRequest Cause 4).
        self._cut: set[str] = set()
        self._handlers = {
            "VarSet": self._varset,
            "QueueCallerJoin": self._join,
            "QueueCallerAbandon": self._abandon,
            "QueueCallerLeave": self._leave,
            "DialEnd": self._dial_end,
            "AgentConnect": self._connect,
            "AgentComplete": self._complete,
            "Hangup": self._hangup,
            "SoftHangupRequest": self._soft_hangup,
            "QueueMemberAdded": self._member,
            "QueueMember": self._member,
            "QueueMemberRemoved": self._member_removed,
            "QueueMemberPause": self._member,
            "QueueMemberPenalty": self._member,
            "QueueMemberStatus": self._member,
            "MixMonitorStart": self._recorder,
            "MixMonitorStop": self._recorder,
        }

    # --- feeding ------------------------------------------------------------------------------

    def feed(self, event: Event, now: float) -> list[Notice]:
        """Apply one AMI event; unknown events cost one dict lookup."""
        self.events_seen += 1
        handler = self._handlers.get(event.get("Event", ""))
        if handler is None:
            return []
        try:
            return handler(event, now)
        except IllegalTransition as exc:
            # An event that would take a call where no call goes (a late event for a call that
            # has ended): refused, the record stays as it was, and the engine logs it.
            self.refused.append((now, str(exc)))
            self.refused_total += 1
            return []

    # --- lookups ------------------------------------------------------------------------------

    def call_by_id(self, ident: str) -> Call | None:
        """A live call by Uniqueid, SAS call id or channel name (what an agent desk knows)."""
        if ident in self.calls:
            return self.calls[ident]
        for call in self.calls.values():
            if ident in (call.call_id, call.channel):
                return call
        return None

    def call_any(self, uniqueid: str) -> Call | None:
        """A live call, or one that just ended (notices about an end come after the forget)."""
        call = self.calls.get(uniqueid)
        if call is not None or not uniqueid:
            return call
        for ended in reversed(self.ended):
            if ended.uniqueid == uniqueid:
                return ended
        return None

    def logged_in(self, queue: str) -> int:
        return sum(1 for a in self.agents.values() if queue in a.memberships and a.status != AgentStatus.UNAVAILABLE)

    def available(self, queue: str, now: float | None = None) -> int:
        """Desks app_queue would offer a call now (given ``now``, those in wrap-up are not)."""
        return sum(1 for a in self.agents.values()
                   if queue in a.memberships and not a.memberships[queue].paused
                   and (a.status if now is None else a.state(now)) == AgentStatus.AVAILABLE)

    def waiting(self, queue: str | None = None) -> list[Call]:
        out = [c for c in self.calls.values() if c.current_visit is not None
               and (queue is None or c.current_visit.queue == queue)]
        return sorted(out, key=lambda c: (-c.waiting_visit.priority, c.waiting_visit.joined_at))

    # --- calls --------------------------------------------------------------------------------

    def _tracked(self, event: Event) -> Call | None:
        uniqueid = event.get("Uniqueid", "")
        return self.calls.get(self.helpers.get(uniqueid, uniqueid))

    def _helper_owner(self, uniqueid: str, channel: Event, *, talking: bool) -> Call | None:
        """The call an attended transfer's Local helper stands for (registered as such): a Local ;2,
        not a call itself, with the Linkedid of a tracked call — one a desk is talking to when
        ``talking`` (a live join), any when rebuilding after a reconnect."""
        known = self.helpers.get(uniqueid)
        if known is not None:
            return self.calls.get(known)
        if uniqueid in self.calls or not _is_local_two(channel.get("Channel", "")):
            return None
        owner = self.calls.get(self.by_linkedid.get(channel.get("Linkedid", ""), ""))
        if owner is None or owner.uniqueid == uniqueid or (talking and owner.current_leg is None):
            return None
        self.helpers[uniqueid] = owner.uniqueid
        return owner

    def _call_for(self, event: Event, now: float, *, create: bool) -> Call | None:
        uniqueid = event.get("Uniqueid", "")
        uniqueid = self.helpers.get(uniqueid, uniqueid)
        call = self.calls.get(uniqueid)
        if call is not None or not create or not uniqueid:
            return call
        linkedid = event.get("Linkedid", uniqueid)
        owner = self.by_linkedid.get(linkedid)
        if owner is not None and owner in self.calls:
            return None  # another leg of a call we track (agent leg, trunk leg): not a new call
        call = Call(uniqueid=uniqueid, linkedid=linkedid, channel=event.get("Channel", ""), started_at=now,
                    caller_num=_cid(event.get("CallerIDNum")), caller_name=_cid(event.get("CallerIDName")))
        self.calls[uniqueid] = call
        self.by_linkedid[linkedid] = uniqueid
        return call

    def _varset(self, event: Event, now: float) -> list[Notice]:
        name = event.get("Variable", "").lstrip("_")
        value = event.get("Value", "")
        if name == "QUEUE_WITHDRAW_INFO":
            exit_ = self._exits.setdefault(event.get("Uniqueid", ""), _Exit())
            exit_.withdraw_info = value
            return []
        if not name.startswith("SAS_"):
            return []
        call = self._call_for(event, now, create=name in (C.VAR_CALL_ID, C.VAR_LINE))
        if call is None:
            return []
        attribute = _TAGS.get(name)
        if name == C.VAR_SWITCHED_TO and call.switched_to and not value:
            # The dialplan clears the tag when the partner's trunk did not take a switched-over
            # call: the caller comes back to its entry queue here, and the room must know.
            failed = call.switched_to
            call.switched_to = ""
            return [Notice(NoticeKind.SWITCHOVER_DIAL_FAILED, now, call.uniqueid,
                           {"subject": call.line, "partner": failed, "by": "switch",
                            "reason": f"{failed} did not take the call"})]
        if attribute is not None:
            setattr(call, attribute, value)
            if name == C.VAR_INBOUND:
                call.overflow_in = value == "overflow"
        elif name == C.VAR_REC:
            if value and not call.recording:
                call.recording, call.recording_at = value, now
        elif name == C.VAR_PRIO:
            call.priority = _int(value, call.priority)
        elif name == C.VAR_REPEAT:
            call.repeat = value == "1"
        return []

    def _recorder(self, event: Event, now: float) -> list[Notice]:
        """MixMonitor on a caller's channel: started, or stopped (the file is being closed; the
        switch may report it after the channel's Hangup)."""
        call = self._tracked(event) or self.call_any(event.get("Uniqueid", ""))
        if call is None:
            return []
        if event.get("Event") == "MixMonitorStart":
            call.recording_started = True
            return []
        call.recording_stopped = True
        return [Notice(NoticeKind.RECORDING_STOPPED, now, call.uniqueid, {"file": call.recording})]

    def _join(self, event: Event, now: float) -> list[Notice]:
        call = self._call_for(event, now, create=True) or self._helper_owner(event.get("Uniqueid", ""), event,
                                                                             talking=True)
        if call is None:
            return []
        call.state = CallState.WAITING  # first: an illegal join is refused before it changes anything
        uniqueid = call.uniqueid
        channel = event.get("Channel", call.channel)
        if event.get("Uniqueid", "") not in self.helpers:
            call.channel = channel
        previous = call.visits[-1] if call.visits else None
        if previous is not None and previous.outcome == VisitOutcome.ABANDONED and call.ended_at is None:
            previous.outcome = VisitOutcome.REDIRECTED  # it was not an abandon: the caller is still here
        queue = event.get("Queue", "")
        visit = QueueVisit(queue=queue, joined_at=now, priority=call.priority, position=_int(event.get("Position")),
                           channel=channel)
        call.visits.append(visit)
        call.expected_move = None
        self._join_location[uniqueid] = (event.get("Context", ""), event.get("Exten", ""), event.get("Priority", ""))
        self._exits.pop(uniqueid, None)
        notices = [Notice(NoticeKind.QUEUE_JOINED, now, uniqueid, {"queue": queue, "position": visit.position})]
        for transfer in reversed(call.transfers):
            if transfer.confirmed_at is None and queue in (transfer.target_queue, transfer.fallback_queue):
                transfer.confirmed_at = now
                notices.append(Notice(NoticeKind.TRANSFER_CONFIRMED, now, uniqueid, {"queue": queue}))
                break
        return notices

    def _abandon(self, event: Event, now: float) -> list[Notice]:
        call = self._tracked(event)
        if call is None:
            return []
        uniqueid = call.uniqueid
        exit_ = self._exits.setdefault(uniqueid, _Exit())
        exit_.abandon = True
        location = (event.get("Context", ""), event.get("Exten", ""), event.get("Priority", ""))
        exit_.moved = location != self._join_location.get(uniqueid, location)
        return []

    def _leave(self, event: Event, now: float) -> list[Notice]:
        call = self._tracked(event)
        if call is None or call.current_visit is None:
            return []
        visit = call.current_visit
        exit_ = self._exits.pop(call.uniqueid, _Exit())
        visit.left_at = now
        if exit_.withdraw_info:
            info = exit_.withdraw_info
            if info.startswith(("ovf-", "overflow:")):  # rendered sas-route name, or transcript 08's form
                visit.outcome, visit.destination = VisitOutcome.OVERFLOWED, info.split(":", 1)[-1].removeprefix("ovf-")
            else:
                visit.outcome, visit.destination = VisitOutcome.TRANSFERRED, info.removeprefix("q-")
        elif call.expected_move is not None:
            visit.outcome, visit.destination = call.expected_move
        elif exit_.abandon and call.uniqueid in self._cut:
            visit.outcome = VisitOutcome.CUT
        elif exit_.abandon:
            visit.outcome = VisitOutcome.REDIRECTED if exit_.moved else VisitOutcome.ABANDONED
        elif call.answering:
            visit.outcome = VisitOutcome.ANSWERED
        else:
            visit.outcome = VisitOutcome.TIMED_OUT
        call.answering = False
        call.state = CallState.TALKING if visit.outcome == VisitOutcome.ANSWERED else CallState.MOVING
        return [Notice(NoticeKind.QUEUE_LEFT, now, call.uniqueid,
                       {"queue": visit.queue, "outcome": visit.outcome.value, "wait": visit.wait,
                        "destination": visit.destination})]

    def _dial_end(self, event: Event, now: float) -> list[Notice]:
        call = self._tracked(event)
        if call is not None and event.get("DialStatus") == "ANSWER" and call.current_visit is not None:
            call.answering = True
        return []

    def _connect(self, event: Event, now: float) -> list[Notice]:
        call = self._tracked(event)
        if call is None:
            return []
        leg = AgentLeg(queue=event.get("Queue", ""), interface=event.get("Interface", ""),
                       member_name=event.get("MemberName", ""), connected_at=now,
                       agent_channel=event.get("DestChannel", ""), ring_time=_int(event.get("RingTime")))
        call.legs.append(leg)
        call.state = CallState.TALKING
        agent = self.agents.get(leg.interface)
        if agent is not None:
            agent.in_call = True
        return [Notice(NoticeKind.AGENT_CONNECTED, now, call.uniqueid,
                       {"queue": leg.queue, "agent": leg.member_name, "interface": leg.interface,
                        "hold_time": _int(event.get("HoldTime"))})]

    def _close_leg(self, call: Call, leg: AgentLeg, now: float, reason: str) -> Notice:
        leg.ended_at, leg.end_reason = now, reason
        agent = self.agents.get(leg.interface)
        if agent is not None:
            agent.in_call = False
        return Notice(NoticeKind.AGENT_LEG_ENDED, now, call.uniqueid,
                      {"queue": leg.queue, "agent": leg.member_name, "interface": leg.interface,
                       "talk_time": leg.talk_time, "reason": reason})

    def _complete(self, event: Event, now: float) -> list[Notice]:
        call = self._tracked(event)
        if call is None:
            return []
        agent = self.agents.get(event.get("Interface", ""))
        wrapup = self.wrapup.get(event.get("Queue", ""), 0.0)
        if agent is not None and wrapup:
            agent.wrapup_until = now + wrapup  # app_queue starts the member's wrap-up at AgentComplete
        for leg in reversed(call.legs):
            if leg.ended_at is None and leg.queue == event.get("Queue") and leg.interface == event.get("Interface"):
                return [self._close_leg(call, leg, now, event.get("Reason", ""))]
        return []  # stale AgentComplete of a leg already closed (transcript 03)

    def _hangup(self, event: Event, now: float) -> list[Notice]:
        uniqueid = event.get("Uniqueid", "")
        self.hung_up[uniqueid] = now
        if len(self.hung_up) > 5000:  # only the last minutes matter (a resync takes seconds)
            for gone in [u for u, at in self.hung_up.items() if at < now - 120]:
                del self.hung_up[gone]
        if self.helpers.pop(uniqueid, None) is not None:
            return []  # a transfer helper is gone; the caller's own channel says when the call ends
        call = self.calls.get(uniqueid)
        if call is None:
            return self._agent_channel_gone(event, now)
        notices = []
        if call.current_leg is not None:
            notices.append(self._close_leg(call, call.current_leg, now, "caller"))
        visit = call.current_visit
        if visit is not None:
            visit.left_at = now
            visit.outcome = VisitOutcome.CUT if uniqueid in self._cut else VisitOutcome.ABANDONED
        self._cut.discard(uniqueid)
        call.state, call.ended_at, call.hangup_cause = CallState.ENDED, now, _int(event.get("Cause"), 0)
        self._forget(call)
        notices.append(Notice(NoticeKind.CALL_ENDED, now, uniqueid, {"cause": call.hangup_cause}))
        return notices

    def _soft_hangup(self, event: Event, now: float) -> list[Notice]:
        """Cause 4 is Asterisk's AST_SOFTHANGUP_SHUTDOWN: seen on every channel when it stops or
        restarts (observed on Asterisk 22: SoftHangupRequest Cause 4, then the queue's abandon and
        leave, then Hangup Cause 0)."""
        call = self._tracked(event)
        if call is not None and event.get("Cause") == "4":
            self._cut.add(call.uniqueid)
        return []

    def _agent_channel_gone(self, event: Event, now: float) -> list[Notice]:
        owner = self.by_linkedid.get(event.get("Linkedid", ""))
        call = self.calls.get(owner or "")
        if call is None or call.current_leg is None:
            return []
        if call.current_leg.agent_channel == event.get("Channel"):
            return [self._close_leg(call, call.current_leg, now, "released")]
        return []

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.uniqueid, None)
        for helper in [h for h, owner in self.helpers.items() if owner == call.uniqueid]:
            del self.helpers[helper]
        if self.by_linkedid.get(call.linkedid) == call.uniqueid:
            del self.by_linkedid[call.linkedid]
        self._join_location.pop(call.uniqueid, None)
        self._exits.pop(call.uniqueid, None)
        self.ended.append(call)

    # --- agents -------------------------------------------------------------------------------

    def _member(self, event: Event, now: float) -> list[Notice]:
        interface = event.get("Interface") or event.get("Location", "")
        queue = event.get("Queue", "")
        if not interface or not queue:
            return []
        agent = self.agents.get(interface)
        if agent is None:
            agent = self.agents[interface] = Agent(interface=interface,
                                                   name=event.get("MemberName") or event.get("Name") or interface,
                                                   logged_in_at=now)
        membership = agent.memberships.setdefault(queue, Membership(queue))
        if "Paused" in event:
            membership.paused = event.get("Paused") == "1"
            membership.paused_reason = event.get("PausedReason", "") if membership.paused else ""
        if "Penalty" in event:
            membership.penalty = _int(event.get("Penalty"))
        if "Status" in event:
            agent.device_status = _int(event.get("Status"), agent.device_status)
        if "InCall" in event:
            agent.in_call = event.get("InCall") == "1"
        return [Notice(NoticeKind.AGENT_CHANGED, now, "", {"interface": interface, "queue": queue,
                                                  "status": agent.status.value})]

    def _member_removed(self, event: Event, now: float) -> list[Notice]:
        agent = self.agents.get(event.get("Interface", ""))
        if agent is None:
            return []
        agent.memberships.pop(event.get("Queue", ""), None)
        if not agent.memberships:
            del self.agents[agent.interface]
        return [Notice(NoticeKind.AGENT_CHANGED, now, "", {"interface": agent.interface,
                                                           "queue": event.get("Queue", ""), "status": "logged-out"})]

    # --- resynchronisation ----------------------------------------------------------------------

    def resync_members(self, members: list[Event], now: float) -> list[Notice]:
        """The queue members the switch has now (QueueStatus): memberships it no longer lists are
        dropped, and desks it no longer has at all (a switch restart without persistent members)
        are logged out, so the engine never sends a caller to a desk that is not there."""
        notices: list[Notice] = []
        listed: dict[str, set[str]] = {}
        for member in members:
            interface = member.get("Interface") or member.get("Location", "")
            listed.setdefault(interface, set()).add(member.get("Queue", ""))
            notices += self._member(member, now)
        for interface, agent in list(self.agents.items()):
            gone = set(agent.memberships) - listed.get(interface, set())
            for queue in gone:
                del agent.memberships[queue]
            if gone and not agent.memberships:
                del self.agents[interface]
                notices.append(Notice(NoticeKind.AGENT_CHANGED, now, "", {"interface": interface, "queue": "",
                                                                "status": "logged-out", "while": "link-down"}))
        return notices

    def resync(self, channels: Sequence[Event], entries: Sequence[Event], tags: Mapping[str, Mapping[str, str]],
               now: float, *, since: float | None = None) -> list[Notice]:
        """Rebuild live calls after a (re)connect from CoreShowChannels, QueueStatus entries and the
        tag variables (one Status). Calls already known keep their history (no duplicate) and are
        reconciled with what the switch says now; calls whose channel is gone ended while the link
        was down. A channel whose Hangup arrived after ``since`` (when the snapshot was asked
        for) is left out: the snapshot is older than that hangup."""
        notices: list[Notice] = []
        if since is not None:
            channels = [c for c in channels if self.hung_up.get(c.get("Uniqueid", ""), -1.0) < since]
        live = {c.get("Uniqueid", ""): c for c in channels}
        for uniqueid in list(self.calls):
            if uniqueid not in live:
                call = self.calls[uniqueid]
                visit, leg = call.current_visit, call.current_leg  # both read before either closes
                call.state, call.ended_at = CallState.ENDED, now
                if visit is not None:
                    visit.left_at, visit.outcome = now, VisitOutcome.UNSEEN
                if leg is not None:
                    leg.ended_at, leg.end_reason = now, "unseen"
                self._forget(call)
                notices.append(Notice(NoticeKind.CALL_ENDED, now, uniqueid, {"cause": None, "while": "link-down"}))
        waiting = {e.get("Uniqueid", ""): e for e in entries}
        by_bridge: dict[str, list[Event]] = {}
        for channel in channels:
            if channel.get("BridgeId"):
                by_bridge.setdefault(channel["BridgeId"], []).append(channel)
        for helper in [h for h in self.helpers if h not in live]:
            del self.helpers[helper]
        # Callers before Local ;2 channels (the switch lists channels in its own order): a Local ;2
        # in Queue() whose Linkedid is a caller's is an attended transfer's helper, not a call.
        in_queue = sorted(((u, c) for u, c in live.items() if c.get("Application") == "Queue"),
                          key=lambda item: _is_local_two(item[1].get("Channel", "")))
        for uniqueid, channel in in_queue:
            queue = channel.get("ApplicationData", "").split(",")[0]
            owner = self._helper_owner(uniqueid, channel, talking=False)
            if owner is not None:
                entry = waiting.get(uniqueid)
                if entry is not None and owner.current_visit is None:
                    owner.visits.append(_waiting_visit(entry, queue, owner.priority, channel, now))
                    owner.state = CallState.WAITING
                continue
            known = self.calls.get(uniqueid)
            adopted = known is None
            if known is None:
                call = Call(uniqueid=uniqueid, linkedid=channel.get("Linkedid", uniqueid),
                            channel=channel.get("Channel", ""), started_at=now - channel_age(channel),
                            caller_num=_cid(channel.get("CallerIDNum")), caller_name=_cid(channel.get("CallerIDName")))
                self.calls[uniqueid] = call
                self.by_linkedid[call.linkedid] = uniqueid
            else:
                call = known
            for name, value in tags.get(uniqueid, {}).items():
                self._varset({"Variable": name, "Value": value, "Uniqueid": uniqueid,
                              "Linkedid": call.linkedid, "Channel": call.channel}, now)
            entry = waiting.get(uniqueid)
            bridged = entry is None and bool(channel.get("BridgeId"))
            peers = [c for c in by_bridge.get(channel.get("BridgeId", ""), []) if c.get("Uniqueid") != uniqueid]
            # When the desk answered, by the switch's own clock: its channel was made when the queue
            # rang it (a ring time early, to the second). The best there is for an answer unseen.
            answered_at = max(now - channel_age(peers[0]), call.started_at) if bridged and peers else now
            visit = call.current_visit
            if visit is not None and (entry is None or entry.get("Queue", queue) != visit.queue):
                # It left that queue while we were away: answered if a desk is with it now, else
                # moved on (the dialplan's fallback, a Redirect) to where the switch has it.
                visit.left_at = max(answered_at, visit.joined_at) if bridged else now
                visit.outcome = VisitOutcome.ANSWERED if bridged else VisitOutcome.UNSEEN
                visit.destination = "" if bridged else entry.get("Queue", queue) if entry else ""
                notices.append(Notice(NoticeKind.QUEUE_LEFT, now, uniqueid, {
                    "queue": visit.queue, "outcome": visit.outcome.value, "wait": visit.wait,
                    "destination": visit.destination, "while": "link-down"}))
            if entry is not None and call.current_visit is None:
                call.visits.append(_waiting_visit(entry, queue, call.priority, channel, now))
                call.state = CallState.WAITING
            elif bridged and call.current_leg is None:
                agent_channel = peers[0].get("Channel", "") if peers else ""
                interface = _device(agent_channel)
                agent = self.agents.get(interface)
                if not call.visits:  # adopted while talking: it waited in this queue from its start
                    call.visits.append(QueueVisit(queue=queue, joined_at=call.started_at, left_at=answered_at,
                                                  outcome=VisitOutcome.ANSWERED, channel=call.channel))
                call.legs.append(AgentLeg(queue=queue, interface=interface,
                                          member_name=agent.name if agent else interface, connected_at=answered_at,
                                          agent_channel=agent_channel))
                call.state = CallState.TALKING
            if adopted:
                notices.append(Notice(NoticeKind.CALL_ADOPTED, now, uniqueid, {"queue": call.current_queue}))
        return notices


def channel_age(channel: Event) -> float:
    """Seconds a channel has existed: Asterisk 22's CoreShowChannel says ``Duration: HH:MM:SS``,
    its Status ``Seconds``; older emulator transcripts ``DurationSeconds``."""
    duration = channel.get("Duration", "")
    if duration.count(":") == 2:
        hours, minutes, seconds = duration.split(":")
        if hours.isdigit() and minutes.isdigit() and seconds.isdigit():
            return int(hours) * 3600 + int(minutes) * 60 + int(seconds)
    return float(_int(channel.get("DurationSeconds") or channel.get("Seconds")))


def _waiting_visit(entry: Event, queue: str, priority: int, channel: Event, now: float) -> QueueVisit:
    """A queue visit rebuilt from a QueueStatus entry (its Wait says when it began)."""
    return QueueVisit(queue=entry.get("Queue", queue), joined_at=now - _int(entry.get("Wait")),
                      priority=_int(entry.get("Priority"), priority), position=_int(entry.get("Position")),
                      channel=channel.get("Channel", ""))


def _is_local_two(channel: str) -> bool:
    return channel.startswith("Local/") and channel.endswith(";2")


def _cid(value: str | None) -> str:
    return "" if not value or value == "<unknown>" else value


def _device(channel: str) -> str:
    """``PJSIP/1001-0000001a`` -> ``PJSIP/1001`` (the queue interface of a desk phone)."""
    head, sep, tail = channel.rpartition("-")
    return head if sep and len(tail.split(";")[0]) == 8 else channel
