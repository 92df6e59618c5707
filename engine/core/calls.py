"""What the engine knows about a call and an agent: plain records, no I/O.

A call is keyed by the Uniqueid of the caller's channel in the queues: on a real Asterisk it
survives Redirect and BlindTransfer (transcripts 03, 03b, 04), so one record follows the caller
from N1 to N2 and through any number of transfers. Supervision figures are computed from these
records, so every field that a figure uses says exactly when it is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class VisitOutcome(StrEnum):
    """Why a caller left a queue. Only ABANDONED counts as an abandon in QS figures."""

    WAITING = "waiting"
    ANSWERED = "answered"
    ABANDONED = "abandoned"  # the caller hung up while waiting
    TRANSFERRED = "transferred"  # moved to another local queue (engine or dialplan fallback)
    OVERFLOWED = "overflowed"  # withdrawn towards a partner SAS
    REDIRECTED = "redirected"  # moved out of the queue by someone else (Redirect seen in the snapshot)
    TIMED_OUT = "timed-out"  # Queue() timeout: the dialplan's fallback takes over
    #: The call ended, or left this queue, while the engine could not see the switch (link down,
    #: engine restarting): how is unknown, so it counts neither as answered nor as abandoned.
    UNSEEN = "ended-while-away"
    #: The switch itself hung the caller up as it shut down or restarted (SoftHangupRequest with
    #: the shutdown cause): not the caller giving up, so never an abandon.
    CUT = "cut-by-switch"


class CallState(StrEnum):
    RINGING = "ringing"  # in the dialplan, not yet in a queue
    WAITING = "waiting"
    TALKING = "talking"
    MOVING = "moving"  # between two queues (transfer, overflow, fallback)
    ENDED = "ended"


class IllegalTransition(ValueError):
    """A call asked to go where no call can go (out of ENDED, back to RINGING)."""


#: Where a call may go from each state. A call never comes back from the end, nor goes back to
#: ringing in the dialplan; between queues, desks and moves, the switch decides (a caller may be
#: redirected into a queue from anywhere, a desk may pick up a caller who was moving).
TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.RINGING: frozenset({CallState.WAITING, CallState.TALKING, CallState.MOVING, CallState.ENDED}),
    CallState.WAITING: frozenset({CallState.WAITING, CallState.TALKING, CallState.MOVING, CallState.ENDED}),
    CallState.TALKING: frozenset({CallState.WAITING, CallState.TALKING, CallState.MOVING, CallState.ENDED}),
    CallState.MOVING: frozenset({CallState.WAITING, CallState.TALKING, CallState.MOVING, CallState.ENDED}),
    CallState.ENDED: frozenset(),
}


@dataclass
class QueueVisit:
    queue: str
    joined_at: float
    priority: int = 0
    position: int = 0
    left_at: float | None = None
    outcome: VisitOutcome = VisitOutcome.WAITING
    #: For TRANSFERRED / OVERFLOWED: the destination (queue name or partner id).
    destination: str = ""
    #: The channel waiting in the queue: the caller's own, or the Local helper of an attended
    #: transfer (recording 03d), which is what QueueWithdrawCaller must name.
    channel: str = ""

    @property
    def wait(self) -> float | None:
        """Seconds from joining this queue to leaving it (answer, abandon or move)."""
        return None if self.left_at is None else self.left_at - self.joined_at


@dataclass
class AgentLeg:
    queue: str
    interface: str
    member_name: str
    connected_at: float
    agent_channel: str = ""
    ring_time: int = 0
    ended_at: float | None = None
    end_reason: str = ""

    @property
    def talk_time(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.connected_at


@dataclass
class Transfer:
    at: float
    source_queue: str
    target_queue: str
    requested_by: str
    reason: str
    mechanism: str
    confirmed_at: float | None = None
    fallback_queue: str = ""


@dataclass
class Call:
    uniqueid: str
    linkedid: str
    channel: str
    started_at: float
    call_id: str = ""
    line: str = ""
    dialed: str = ""
    caller_num: str = ""
    caller_name: str = ""
    geolocation: str = ""
    origin: str = ""
    entry_queue: str = ""
    priority: int = 0
    repeat: bool = False
    overflow_in: bool = False
    #: Why a partner sent us this call ("overflow" or "switchover"); "" for our own callers.
    inbound: str = ""
    switched_to: str = ""
    #: The partner an overflow is dialling now (set by the dialplan, cleared when the trunk failed).
    overflowed_to: str = ""
    state: CallState = CallState.RINGING
    visits: list[QueueVisit] = field(default_factory=list)
    legs: list[AgentLeg] = field(default_factory=list)
    qualification: str = ""
    qualification_reason: str = ""
    qualified_by: str = ""
    transfers: list[Transfer] = field(default_factory=list)
    ended_at: float | None = None
    hangup_cause: int | None = None
    #: Set while the engine itself is moving the caller: how the next queue exit is classified.
    expected_move: tuple[VisitOutcome, str] | None = None
    #: The last member leg that answered this caller but is not bridged yet (DialEnd ANSWER).
    answering: bool = False
    #: The call's recording, relative to Asterisk's monitor directory, when the dialplan named
    #: it; when; whether MixMonitor said it started and whether it stopped.
    recording: str = ""
    recording_at: float | None = None
    recording_started: bool = False
    recording_stopped: bool = False

    def __setattr__(self, name: str, value: object) -> None:
        if name == "state" and "state" in self.__dict__:
            current = self.__dict__["state"]
            if value not in TRANSITIONS[current]:
                raise IllegalTransition(f"call {self.uniqueid}: {current} -> {value} is not a call's path")
        object.__setattr__(self, name, value)

    @property
    def current_visit(self) -> QueueVisit | None:
        return self.visits[-1] if self.visits and self.visits[-1].outcome == VisitOutcome.WAITING else None

    @property
    def waiting_visit(self) -> QueueVisit:
        """The queue visit of a caller known to be waiting (the lists of waiting callers)."""
        visit = self.current_visit
        if visit is None:
            raise ValueError(f"call {self.uniqueid} is not waiting in a queue")
        return visit

    @property
    def current_leg(self) -> AgentLeg | None:
        return self.legs[-1] if self.legs and self.legs[-1].ended_at is None else None

    @property
    def current_queue(self) -> str:
        if self.current_visit is not None:
            return self.current_visit.queue
        if self.current_leg is not None:
            return self.current_leg.queue
        return ""

    def public(self, now: float) -> dict[str, object]:
        """The record as the control API and the dashboard show it."""
        visit = self.current_visit
        return {
            "call_id": self.call_id or self.uniqueid,
            "uniqueid": self.uniqueid,
            "channel": self.channel,
            "line": self.line,
            "dialed": self.dialed,
            "caller": self.caller_num,
            "caller_name": self.caller_name,
            "geolocation": self.geolocation,
            "origin": self.origin,
            "overflow_in": self.overflow_in,
            "inbound": self.inbound,
            "repeat": self.repeat,
            "priority": self.priority,
            "state": self.state.value,
            "queue": self.current_queue,
            "waiting_for": round(now - visit.joined_at, 1) if visit else None,
            "agent": self.current_leg.member_name if self.current_leg else None,
            "qualification": self.qualification or None,
            "visits": [
                {"queue": v.queue, "joined_at": v.joined_at, "left_at": v.left_at, "outcome": v.outcome.value,
                 "destination": v.destination, "wait": v.wait}
                for v in self.visits
            ],
            "legs": [
                {"queue": leg.queue, "agent": leg.member_name, "interface": leg.interface,
                 "connected_at": leg.connected_at, "ended_at": leg.ended_at, "talk_time": leg.talk_time}
                for leg in self.legs
            ],
            "transfers": [
                {"from": t.source_queue, "to": t.target_queue, "by": t.requested_by, "mechanism": t.mechanism,
                 "confirmed": t.confirmed_at is not None, "fallback": t.fallback_queue or None}
                for t in self.transfers
            ],
            "ended_at": self.ended_at,
        }


class DeviceState(IntEnum):
    """Asterisk's device states as app_queue reports a member's ``Status`` (devicestate.h)."""

    UNKNOWN = 0
    NOT_INUSE = 1
    INUSE = 2
    BUSY = 3
    INVALID = 4
    UNAVAILABLE = 5
    RINGING = 6
    RINGINUSE = 7
    ONHOLD = 8


class AgentStatus(StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    TALKING = "talking"
    WRAPUP = "wrap-up"
    PAUSED = "paused"
    UNAVAILABLE = "unavailable"


@dataclass
class Membership:
    queue: str
    paused: bool = False
    paused_reason: str = ""
    penalty: int = 0


@dataclass
class Agent:
    """A desk (or a remote regulator) as the queues know it, keyed by queue interface."""

    interface: str
    name: str
    role: str = ""
    memberships: dict[str, Membership] = field(default_factory=dict)
    device_status: int = DeviceState.NOT_INUSE
    in_call: bool = False
    logged_in_at: float | None = None
    #: Until when app_queue keeps the desk out of the rotation after its last call (wrapuptime):
    #: the phone is idle but the desk writes its notes, so it is not free.
    wrapup_until: float | None = None

    @property
    def paused(self) -> bool:
        return bool(self.memberships) and all(m.paused for m in self.memberships.values())

    @property
    def status(self) -> AgentStatus:
        if self.device_status in (DeviceState.UNAVAILABLE, DeviceState.INVALID):
            return AgentStatus.UNAVAILABLE
        if self.device_status in (DeviceState.RINGING, DeviceState.RINGINUSE):
            return AgentStatus.RINGING
        if self.in_call or self.device_status in (DeviceState.INUSE, DeviceState.BUSY, DeviceState.ONHOLD):
            return AgentStatus.TALKING
        if self.paused:
            return AgentStatus.PAUSED
        return AgentStatus.AVAILABLE

    def state(self, now: float) -> AgentStatus:
        """The status at ``now``: an idle desk still in its wrap-up time is in wrap-up, not free
        (app_queue offers it no call until then, so neither may the figures nor the partners)."""
        status = self.status
        if status == AgentStatus.AVAILABLE and self.wrapup_until is not None and now < self.wrapup_until:
            return AgentStatus.WRAPUP
        return status

    def public(self, now: float | None = None) -> dict[str, object]:
        return {
            "interface": self.interface,
            "name": self.name,
            "role": self.role,
            "status": (self.status if now is None else self.state(now)).value,
            "queues": {q: {"paused": m.paused, "reason": m.paused_reason, "penalty": m.penalty}
                       for q, m in self.memberships.items()},
        }
