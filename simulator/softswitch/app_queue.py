"""A model of Asterisk's app_queue: members, strategies, priorities, ringing, and its AMI events.

Behaviour follows app_queue.c as the recordings show it: QueueCallerLeave fires when an agent
answers (before AgentConnect); a caller who hangs up *or is redirected* while waiting gives
QueueCallerAbandon + QueueCallerLeave; AgentComplete is emitted on the first hangup request on
either party (or a blind transfer), not when the bridge dissolves — so a redirected caller's
first queue reports a stale AgentComplete when the caller finally hangs up.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sas_router.simulator.softswitch.model import Channel

if TYPE_CHECKING:
    from sas_router.simulator.softswitch.core import Softswitch

# Device states as QueueMemberStatus reports them.
UNKNOWN, NOT_INUSE, INUSE, BUSY, INVALID, UNAVAILABLE, RINGING, RINGINUSE, ONHOLD = 0, 1, 2, 3, 4, 5, 6, 7, 8

#: joinempty/leavewhenempty conditions (app_queue.c parse_empty_options): a member in one of these
#: situations does not count as someone who could answer.
EMPTY_CONDITIONS = frozenset({"paused", "penalty", "inuse", "ringing", "unavailable", "invalid", "unknown",
                              "wrapup"})
_STATE_CONDITION = {INVALID: "invalid", UNAVAILABLE: "unavailable", INUSE: "inuse", RINGING: "ringing",
                    UNKNOWN: "unknown"}
_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE = frozenset({"no", "false", "n", "f", "0", "off"})
#: Queue() re-checks leavewhenempty once a second while the caller waits (RECHECK in app_queue.c).
EMPTY_RECHECK = 1.0


def empty_conditions(value: str, *, joinempty: bool) -> frozenset[str]:
    """What makes a queue "empty" for joinempty (refuse to join) or leavewhenempty (leave).

    ``joinempty = yes`` and ``leavewhenempty = no`` mean never; the legacy ``joinempty = no`` /
    ``leavewhenempty = yes`` mean penalty, invalid or paused members only; ``strict`` adds
    unavailable; ``loose`` is penalty and invalid; otherwise a comma list of conditions."""
    conditions: set[str] = set()
    for option in (o.strip().lower() for o in value.split(",") if o.strip()):
        if option in EMPTY_CONDITIONS:
            conditions.add(option)
        elif option == "loose":
            conditions = {"penalty", "invalid"}
        elif option == "strict":
            conditions = {"penalty", "invalid", "paused", "unavailable"}
        elif (option in _FALSE and joinempty) or (option in _TRUE and not joinempty):
            conditions = {"penalty", "invalid", "paused"}
        elif (option in _FALSE and not joinempty) or (option in _TRUE and joinempty):
            conditions = set()
    return frozenset(conditions)


@dataclass
class Member:
    interface: str
    name: str
    state_interface: str
    penalty: int = 0
    paused: bool = False
    paused_reason: str = ""
    dynamic: bool = True
    calls_taken: int = 0
    last_call: float = 0.0
    last_pause: float = 0.0
    login_time: float = 0.0
    in_call: bool = False
    status: int = NOT_INUSE
    wrapup_until: float = 0.0
    ringing: bool = False
    ringinuse: bool = False
    wrapuptime: int = 0


@dataclass
class QueueCaller:
    channel: Channel
    joined: float
    priority: int
    original_position: int
    timeout_at: float | None
    ring_timer: object | None = None
    empty_timer: object | None = None
    attempt: object | None = None
    tried: set[str] = field(default_factory=set)


@dataclass
class Session:
    """A connected caller-agent pair; alive until a hangup request or a transfer ends it."""

    queue: QueueModel
    caller: Channel
    member: Member
    agent: Channel | None
    holdtime: int
    connected_at: float
    done: bool = False
    #: Queue() has set DIALEDTIME/ANSWEREDTIME for this call (once, when the caller's bridge ends).
    timers_set: bool = False


@dataclass
class QueueModel:
    name: str
    strategy: str = "ringall"
    timeout: int = 15
    retry: int = 5
    wrapuptime: int = 0
    servicelevel: int = 0
    weight: int = 0
    ringinuse: bool = False
    joinempty: str = "yes"
    leavewhenempty: str = "no"
    musicclass: str = "default"
    maxlen: int = 0
    #: Seconds of silence for the member between answering and being connected.
    memberdelay: int = 0
    #: A sound played to the member before connecting (timed as one second: no sound files here).
    announce: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    callers: list[QueueCaller] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    holdtime_avg: float = 0.0
    talktime_avg: float = 0.0
    rr_last: int = -1

    def service_level_perf(self) -> tuple[float, float]:
        """app_queue's two service-level figures: answered in time over answered, and over
        answered plus abandoned (QueueParams ServicelevelPerf/ServicelevelPerf2)."""
        total = self.completed + self.abandoned
        perf = 100.0 * self.completed_in_sl / self.completed if self.completed else 100.0
        perf2 = 100.0 * self.completed_in_sl / total if total else 100.0
        return perf, perf2


def parse_queues_conf(text: str) -> tuple[dict[str, QueueModel], dict[str, str]]:
    """Read queues.conf (templates included); ``member =>`` lines become static members."""
    sections: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}
    templates_only: set[str] = set()
    current = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            name = line[1 : line.index("]")]
            rest = line[line.index("]") + 1 :].strip()
            options = [t.strip() for t in rest.strip("()").split(",") if t.strip()]
            if "!" in options:
                templates_only.add(name)
            templates = [t for t in options if t != "!"]
            current = name
            sections[name] = (templates, [])
            continue
        if current is None:
            continue
        if "=>" in line:
            key, _, value = line.partition("=>")
        else:
            key, _, value = line.partition("=")
        sections[current][1].append((key.strip(), value.strip()))
    general = dict(sections.pop("general", ([], []))[1])
    queues: dict[str, QueueModel] = {}

    def settings(name: str) -> list[tuple[str, str]]:
        templates, own = sections[name]
        merged: list[tuple[str, str]] = []
        for template in templates:
            if template in sections:
                merged += settings(template)
        return merged + own

    for name in sections:
        if name in templates_only:
            continue
        q = QueueModel(name)
        for key, value in settings(name):
            if key == "strategy":
                q.strategy = value
            elif key == "timeout":
                q.timeout = int(value)
            elif key == "retry":
                q.retry = int(value)
            elif key == "wrapuptime":
                q.wrapuptime = int(value)
            elif key == "servicelevel":
                q.servicelevel = int(value)
            elif key == "weight":
                q.weight = int(value)
            elif key == "ringinuse":
                q.ringinuse = value.lower() in ("yes", "true", "1")
            elif key == "joinempty":
                q.joinempty = value
            elif key == "leavewhenempty":
                q.leavewhenempty = value
            elif key == "musicclass":
                q.musicclass = value
            elif key == "maxlen":
                q.maxlen = int(value)
            elif key == "memberdelay":
                q.memberdelay = int(value)
            elif key == "announce":
                q.announce = value
            elif key == "member":
                parts = [p.strip() for p in value.split(",")]
                interface = parts[0]
                m = Member(interface=interface, name=parts[2] if len(parts) > 2 and parts[2] else interface,
                           state_interface=parts[3] if len(parts) > 3 and parts[3] else interface,
                           penalty=int(parts[1]) if len(parts) > 1 and parts[1] else 0, dynamic=False)
                q.members[interface] = m
        queues[name] = q
    return queues, general


class AppQueue:
    """All queues of one softswitch, and the Queue() application's behaviour."""

    def __init__(self, switch: Softswitch, queues: dict[str, QueueModel], general: dict[str, str]) -> None:
        self.sw = switch
        self.queues = queues
        self.general = general
        self.sessions: list[Session] = []
        self.rng = random.Random(7)

    # --- members ------------------------------------------------------------------------------

    def member_fields(self, q: QueueModel, m: Member) -> list[tuple[str, object]]:
        return [
            ("Queue", q.name), ("MemberName", m.name), ("Interface", m.interface),
            ("StateInterface", m.state_interface), ("Membership", "dynamic" if m.dynamic else "static"),
            ("Penalty", m.penalty), ("CallsTaken", m.calls_taken), ("LastCall", int(m.last_call)),
            ("LastPause", int(m.last_pause)), ("LoginTime", int(m.login_time)), ("InCall", int(m.in_call)),
            ("Status", m.status), ("Paused", int(m.paused)), ("PausedReason", m.paused_reason),
            ("Ringinuse", int(m.ringinuse)), ("Wrapuptime", m.wrapuptime),
        ]

    def add_member(self, queue: str, interface: str, name: str = "", state_interface: str = "",
                   penalty: int = 0, paused: bool = False, reason: str = "") -> str | None:
        q = self.queues.get(queue)
        if q is None:
            return "Unable to add interface to queue: No such queue"
        if interface in q.members:
            return "Unable to add interface: Already there"
        m = Member(interface=interface, name=name or interface, state_interface=state_interface or interface,
                   penalty=penalty, paused=paused, paused_reason=reason if paused else "",
                   login_time=self.sw.now(), ringinuse=q.ringinuse, wrapuptime=q.wrapuptime)
        m.status = self.sw.device_state(m.state_interface)
        q.members[interface] = m
        self.sw.emit("QueueMemberAdded", self.member_fields(q, m))
        self.sw.scheduler.call_soon(self.dispatch_all)
        return None

    def remove_member(self, queue: str, interface: str) -> str | None:
        q = self.queues.get(queue)
        if q is None:
            return "Unable to remove interface from queue: No such queue"
        m = q.members.get(interface)
        if m is None:
            return "Unable to remove interface: Not there"
        if not m.dynamic:
            return "Unable to remove interface: Not there"
        del q.members[interface]
        self.sw.emit("QueueMemberRemoved", self.member_fields(q, m))
        return None

    def _members_named(self, queue: str | None, interface: str) -> list[tuple[QueueModel, Member]]:
        """The member ``interface`` in ``queue``, or in every queue when no queue is named (AMI rule)."""
        return [(q, q.members[interface]) for q in self.queues.values()
                if queue in (None, "", q.name) and interface in q.members]

    def pause_member(self, queue: str | None, interface: str, paused: bool, reason: str) -> str | None:
        hits = self._members_named(queue, interface)
        if not hits:
            return "Interface not found"
        for q, m in hits:
            m.paused = paused
            m.paused_reason = reason if paused else ""
            if paused:
                m.last_pause = self.sw.now()
            self.sw.emit("QueueMemberPause", self.member_fields(q, m))
        self.sw.scheduler.call_soon(self.dispatch_all)
        return None

    def penalty_member(self, queue: str | None, interface: str, penalty: int) -> str | None:
        hits = self._members_named(queue, interface)
        if not hits:
            return "Invalid interface, queuename or penalty"
        for q, m in hits:
            m.penalty = penalty
            self.sw.emit("QueueMemberPenalty", [("Queue", q.name), ("MemberName", m.name),
                                                ("Interface", m.interface), ("Penalty", penalty)])
        return None

    def device_changed(self, device: str) -> None:
        """A device changed state: members on it report QueueMemberStatus, free ones get calls."""
        state = self.sw.device_state(device)
        for q in self.queues.values():
            for m in q.members.values():
                if m.state_interface == device and m.status != state:
                    m.status = state
                    if state == NOT_INUSE:
                        m.in_call = False
                    self.sw.emit("QueueMemberStatus", self.member_fields(q, m))
        self.sw.scheduler.call_soon(self.dispatch_all)

    def available(self, q: QueueModel, m: Member) -> bool:
        if m.paused or m.ringing:
            return False
        if m.status in (INVALID, UNAVAILABLE):
            return False
        if not m.ringinuse and m.status not in (NOT_INUSE,):
            return False
        if self.sw.now() < m.wrapup_until:
            return False
        # app_queue's can_ring_entry: "in call, so not available" only when the queue of that call
        # has a wrap-up time (ASTERISK-25888). The member stays "in call" until its AgentComplete,
        # which after a Redirect of the caller comes only at the caller's final hang-up (recording
        # 03): with wrap-up configured, such a desk is not offered calls meanwhile; without, it is
        # free as soon as its device is (recording 03: QueueMemberStatus 1 at once).
        return m.ringinuse or not any(
            other.member.state_interface == m.state_interface and not other.done
            and (other.member.wrapuptime or other.queue.wrapuptime) for other in self.sessions)

    # --- callers ------------------------------------------------------------------------------

    def join(self, ch: Channel, queue: str, timeout: int | None) -> str | None:
        """Queue() starts: returns a QUEUESTATUS if the caller cannot join, else None (waiting)."""
        q = self.queues.get(queue)
        if q is None:
            return "UNKNOWN"
        if q.maxlen and len(q.callers) >= q.maxlen:
            return "FULL"
        join_conditions = empty_conditions(q.joinempty, joinempty=True)
        if join_conditions and not self._someone_could_answer(q, join_conditions):
            return "JOINEMPTY"
        sw = self.sw
        for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS", "QUEUEWAIT", "QUEUEWAIT_MS"):
            sw.setvar(ch, name, "")
        if ch.variables.get("ABANDONED"):
            sw.setvar(ch, "ABANDONED", "")
        try:
            prio = int(ch.variables.get("QUEUE_PRIO", "0") or 0)
        except ValueError:
            prio = 0
        position = len(q.callers)
        for index, other in enumerate(q.callers):
            if prio > other.priority:
                position = index
                break
        caller = QueueCaller(channel=ch, joined=sw.now(), priority=prio, original_position=position + 1,
                             timeout_at=sw.now() + timeout if timeout else None)
        q.callers.insert(position, caller)
        sw.emit("DeviceStateChange", [("Device", f"Queue:{q.name}"), ("State", "RINGING")])
        sw.emit("QueueCallerJoin", [*ch.snapshot(), ("Queue", q.name), ("Position", position + 1),
                                    ("Count", len(q.callers))])
        sw.emit("MusicOnHoldStart", [*ch.snapshot(), ("Class", q.musicclass)])
        if caller.timeout_at is not None:
            caller.ring_timer = sw.scheduler.call_at(caller.timeout_at, lambda: self._timeout(q, caller))
        if empty_conditions(q.leavewhenempty, joinempty=False):
            caller.empty_timer = sw.scheduler.call_later(EMPTY_RECHECK, lambda: self._recheck_empty(q, caller))
        sw.scheduler.call_soon(lambda: self.dispatch(q))
        return None

    def find_caller(self, ch: Channel) -> tuple[QueueModel, QueueCaller] | None:
        for q in self.queues.values():
            for caller in q.callers:
                if caller.channel is ch:
                    return q, caller
        return None

    def _leave(self, q: QueueModel, caller: QueueCaller) -> int:
        """Take the caller out of the queue (answer, abandon, withdraw or timeout alike) and report
        it as app_queue does: queue device state, then QueueCallerLeave. Returns the position."""
        position = q.callers.index(caller) + 1
        q.callers.remove(caller)
        if caller.ring_timer is not None:
            caller.ring_timer.cancel()  # type: ignore[attr-defined]
        if caller.empty_timer is not None:
            caller.empty_timer.cancel()  # type: ignore[attr-defined]
        if caller.attempt is not None:
            self.sw.cancel_attempt(caller.attempt)
            caller.attempt = None
        self.sw.emit("DeviceStateChange", [("Device", f"Queue:{q.name}"),
                                           ("State", "RINGING" if q.callers else "NOT_INUSE")])
        self.sw.emit("QueueCallerLeave", [*caller.channel.snapshot(), ("Queue", q.name), ("Position", position),
                                          ("Count", len(q.callers))])
        return position

    def _wait_vars(self, ch: Channel, caller: QueueCaller) -> None:
        now = self.sw.now()
        self.sw.set_durations(ch, (("QUEUEWAIT", now - caller.joined),
                                   ("DIALEDTIME", now - (ch.answered_at or caller.joined)), ("ANSWEREDTIME", 0.0)))

    def abandon(self, ch: Channel, *, withdraw_info: str | None = None,
                relocate: Callable[[], None] | None = None) -> None:
        """The waiting caller leaves without an answer: hangup, Redirect or QueueWithdrawCaller.

        A hang-up and a Redirect look the same here (scenarios 04, 05): the music stops, the wait
        timers are set, then ABANDONED, QueueCallerAbandon and QueueCallerLeave. A Redirect's new
        location (``relocate``) is published between the timers and ABANDONED. A withdrawal
        (scenario 08) sets QUEUE_WITHDRAW_INFO and returns QUEUESTATUS=WITHDRAW to the dialplan.
        """
        found = self.find_caller(ch)
        if found is None:
            return
        q, caller = found
        sw = self.sw
        if withdraw_info is None:
            sw.emit("MusicOnHoldStop", ch.snapshot())
        self._wait_vars(ch, caller)
        if relocate is not None:
            relocate()
        sw.setvar(ch, "ABANDONED", "TRUE")
        position = q.callers.index(caller) + 1
        holdtime = int(sw.now() - caller.joined)
        sw.emit("QueueCallerAbandon", [*ch.snapshot(), ("Queue", q.name), ("Position", position),
                                       ("OriginalPosition", caller.original_position), ("HoldTime", holdtime)])
        q.abandoned += 1
        if withdraw_info is not None:
            sw.setvar(ch, "QUEUE_WITHDRAW_INFO", withdraw_info)
            sw.emit("MusicOnHoldStop", ch.snapshot())
        position = self._leave(q, caller)
        sw.setvar(ch, "QUEUEPOSITION", str(position))
        if withdraw_info is not None:
            sw.setvar(ch, "QUEUESTATUS", "WITHDRAW")

    def _timeout(self, q: QueueModel, caller: QueueCaller) -> None:
        if caller in q.callers:
            self._leave_for(q, caller, "TIMEOUT")

    def _leave_for(self, q: QueueModel, caller: QueueCaller, status: str) -> None:
        """Queue() gives up and returns to the dialplan with QUEUESTATUS (timeout, leave-empty)."""
        ch = caller.channel
        sw = self.sw
        self._wait_vars(ch, caller)
        sw.emit("MusicOnHoldStop", ch.snapshot())
        position = self._leave(q, caller)
        sw.setvar(ch, "QUEUEPOSITION", str(position))
        sw.setvar(ch, "QUEUESTATUS", status)
        sw.resume_pbx(ch)

    def withdraw(self, queue: str, channel_name: str, info: str) -> str | None:
        q = self.queues.get(queue)
        if q is None:
            return "Unable to request withdraw from queue: No such queue"
        for caller in q.callers:
            if caller.channel.name == channel_name:
                ch = caller.channel
                self.sw.scheduler.call_soon(lambda ch=ch: self._do_withdraw(ch, info))
                return None
        return "Unable to request withdraw from queue: No such caller"

    def _do_withdraw(self, ch: Channel, info: str) -> None:
        if self.find_caller(ch) is None or ch.hungup:
            return
        self.abandon(ch, withdraw_info=info)
        self.sw.resume_pbx(ch)

    # --- ringing ------------------------------------------------------------------------------

    def _someone_could_answer(self, q: QueueModel, conditions: frozenset[str]) -> bool:
        """get_member_status: is there a member none of the conditions rules out? (Penalty limits
        per caller are not modelled, so the ``penalty`` condition never rules a member out.)"""
        now = self.sw.now()
        for m in q.members.values():
            if _STATE_CONDITION.get(m.status) in conditions:
                continue
            if m.paused and "paused" in conditions:
                continue
            if "wrapup" in conditions and now < m.wrapup_until:
                continue
            return True
        return False

    def _recheck_empty(self, q: QueueModel, caller: QueueCaller) -> None:
        if caller not in q.callers or caller.channel.hungup:
            return
        conditions = empty_conditions(q.leavewhenempty, joinempty=False)
        if conditions and not self._someone_could_answer(q, conditions):
            self._leave_for(q, caller, "LEAVEEMPTY")
            return
        caller.empty_timer = self.sw.scheduler.call_later(EMPTY_RECHECK, lambda: self._recheck_empty(q, caller))

    def dispatch_all(self) -> None:
        for q in sorted(self.queues.values(), key=lambda q: -q.weight):
            self.dispatch(q)

    def _order_members(self, q: QueueModel, candidates: list[Member]) -> list[Member]:
        strategy = q.strategy
        if strategy == "ringall":
            return candidates
        if strategy == "leastrecent":
            return sorted(candidates, key=lambda m: (m.penalty, m.last_call))
        if strategy == "fewestcalls":
            return sorted(candidates, key=lambda m: (m.penalty, m.calls_taken))
        if strategy == "random":
            shuffled = candidates[:]
            self.rng.shuffle(shuffled)
            return sorted(shuffled, key=lambda m: m.penalty)
        members = list(q.members.values())
        if strategy in ("rrmemory", "rrordered"):
            start = (q.rr_last + 1) % len(members) if members else 0
            order = members[start:] + members[:start]
            return sorted([m for m in order if m in candidates], key=lambda m: m.penalty)
        # linear: in member order
        return sorted([m for m in members if m in candidates], key=lambda m: m.penalty)

    def dispatch(self, q: QueueModel) -> None:
        """autofill=yes: every waiting caller, in order, gets a free member if there is one."""
        for caller in list(q.callers):
            if caller.attempt is not None or caller.channel.hungup:
                continue
            candidates = [m for m in q.members.values() if self.available(q, m)]
            if not candidates:
                # Tried every member once: start again after `retry`.
                return
            untried = [m for m in candidates if m.interface not in caller.tried] or candidates
            ordered = self._order_members(q, untried)
            targets = ordered if q.strategy == "ringall" else ordered[:1]
            if q.strategy in ("rrmemory", "rrordered") and targets:
                q.rr_last = list(q.members.values()).index(targets[0])
            caller.attempt = self.sw.ring_members(q, caller, targets)

    def ring_timeout(self, q: QueueModel, caller: QueueCaller) -> None:
        """Nobody in this attempt answered within `timeout`: retry after `retry` seconds."""
        caller.attempt = None
        if caller in q.callers:
            self.sw.scheduler.call_later(q.retry, lambda: self.dispatch(q))

    def connected(self, q: QueueModel, caller: QueueCaller, member: Member, agent: Channel) -> None:
        """A member answered: QueueCallerLeave, AgentConnect, then the bridge."""
        sw = self.sw
        ch = caller.channel
        sw.emit("MusicOnHoldStop", ch.snapshot())
        position = self._leave(q, caller)
        holdtime = int(sw.now() - caller.joined)
        sw.setvar(ch, "QUEUEPOSITION", str(position))
        sw.set_durations(ch, (("QUEUEWAIT", sw.now() - caller.joined),))
        ring = int(sw.now() - (agent.created or sw.now()))
        sw.emit("AgentConnect", [*ch.snapshot(), *agent.snapshot("Dest"), ("Queue", q.name),
                                 ("Interface", member.interface), ("MemberName", member.name),
                                 ("HoldTime", holdtime), ("RingTime", ring)])
        if ch.state != 6:
            sw.answer(ch)  # Queue() answers a caller that is not up yet (recording 03d: a Local ;2)
        q.holdtime_avg = (q.holdtime_avg * 3 + holdtime) / 4
        if holdtime <= q.servicelevel:
            q.completed_in_sl += 1
        member.calls_taken += 1
        member.last_call = sw.now()
        member.in_call = True
        session = Session(q, ch, member, agent, holdtime, sw.now())
        self.sessions.append(session)
        sw.bridge_pair(agent, ch)

    def end_session(self, session: Session, reason: str,
                    caller_snapshot: list[tuple[str, object]] | None = None) -> None:
        """AgentComplete: on the first hangup request on either side, or a transfer."""
        if session.done:
            return
        session.done = True
        sw = self.sw
        q, member = session.queue, session.member
        talk = int(sw.now() - session.connected_at)
        agent_alive = session.agent is not None and not session.agent.hungup
        dest = session.agent.snapshot("Dest") if agent_alive and session.agent else []
        sw.emit("AgentComplete", [*(caller_snapshot or session.caller.snapshot()), *dest, ("Queue", q.name),
                                  ("Interface", member.interface), ("MemberName", member.name),
                                  ("HoldTime", session.holdtime), ("TalkTime", talk), ("Reason", reason)])
        q.completed += 1
        q.talktime_avg = (q.talktime_avg * 3 + talk) / 4
        member.in_call = False
        member.wrapup_until = sw.now() + (member.wrapuptime or q.wrapuptime)
        if member.wrapup_until > sw.now():
            sw.scheduler.call_at(member.wrapup_until, lambda: self.dispatch(q))
        self._prune()

    def caller_left_bridge(self, ch: Channel, *, hanging_up: bool = False) -> None:
        """Queue()'s bridge ended for this caller: it records the call's timers on the channel
        (a hang-up reports the answered time first, a redirect or transfer the dialled time)."""
        for session in self.sessions_of(ch):
            if session.timers_set:
                continue
            session.timers_set = True
            now = self.sw.now()
            answered = ("ANSWEREDTIME", now - session.connected_at if hanging_up else 0.0)
            dialed = ("DIALEDTIME", now - ch.created)
            self.sw.set_durations(ch, (answered, dialed) if hanging_up else (dialed, answered))
        self._prune()

    def _prune(self) -> None:
        # A finished session is kept until Queue() has also reported the end of its bridge.
        self.sessions = [s for s in self.sessions if not (s.done and (s.timers_set or s.caller.hungup))]

    def sessions_of(self, ch: Channel) -> list[Session]:
        return [s for s in self.sessions if s.caller is ch]

    def hangup_requested(self, ch: Channel) -> None:
        for session in list(self.sessions):
            if session.caller is ch:
                self.end_session(session, "caller")
            elif session.agent is ch:
                self.end_session(session, "agent")

    def swapped(self, old: Channel, new: Channel) -> None:
        """A bridge swap replaced the member's channel (Local optimisation): app_queue follows
        it, so the call's AgentComplete names the new channel (recording 07)."""
        for session in self.sessions:
            if session.agent is old:
                session.agent = new

    def transferred(self, transferer: Channel, caller_snapshot: list[tuple[str, object]] | None = None) -> None:
        for session in list(self.sessions):
            if session.agent is transferer or session.caller is transferer:
                self.end_session(session, "transfer", caller_snapshot)
