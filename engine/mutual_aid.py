"""Mutual aid in the running engine: overflow to partner SAS and line switch-overs, over AMI.

The decisions are in :mod:`engine.core.mutual_aid` and :mod:`engine.core.switchover`; this module
reads the tracker, sends the AMI actions and journals what happened. Everything durable is in
Asterisk's AstDB, so a restarted engine finds the switch-overs and the overflow switches as the
supervisors left them.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sas_router.engine.ami import AmiActionFailed, AmiLinkDown
from sas_router.engine.core.calls import Call, VisitOutcome
from sas_router.engine.core.mutual_aid import (
    Choice,
    OverflowGovernor,
    PartnerBoard,
    QueueLoad,
    Transition,
    load_message,
)
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.core.routing import utcnow_from
from sas_router.engine.core.switchover import DB_HOLD, DB_META, Switchover, check_request, preset_decisions
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import LineKind, Plan

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from sas_router.engine.core.tracker import Tracker
    from structlog.typing import FilteringBoundLogger


class ActionSender(Protocol):
    @property
    def connected(self) -> bool: ...

    async def send(self, action: Mapping[str, object]) -> Any: ...


class PresetOptions(Protocol):
    @property
    def apply_presets(self) -> bool: ...


class MutualAidHost(Protocol):
    """What mutual aid needs of the engine — its plan and clock, the live calls, the AMI link,
    AstDB and a way to tell listeners — and nothing else (the engine is one such host, a test's
    stand-in another)."""

    @property
    def plan(self) -> Plan: ...

    @property
    def tracker(self) -> Tracker: ...

    @property
    def link(self) -> ActionSender: ...

    @property
    def options(self) -> PresetOptions: ...

    @property
    def log(self) -> FilteringBoundLogger: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    def broadcast(self, notice: Notice) -> None: ...

    def qs30_now(self) -> float | None: ...

    async def db_get(self, family: str, key: str) -> str | None: ...

    async def db_put(self, family: str, key: str, value: str) -> None: ...

    async def db_del(self, family: str, key: str) -> None: ...

#: AstDB family of queues whose overflow a supervisor switched off: key = queue, value = JSON.
DB_OVERFLOW_OFF = "sas-overflow-off"


@dataclass(frozen=True)
class JournalEntry:
    """One mutual-aid decision: who asked, why, when. Also handed to the engine's listeners."""

    at: float
    kind: NoticeKind
    subject: str  # the line or queue concerned
    partner: str
    by: str
    reason: str
    share: int | None = None

    def public(self) -> dict[str, Any]:
        return {"at": self.at, "kind": self.kind, "subject": self.subject, "partner": self.partner or None,
                "by": self.by, "reason": self.reason, "share": self.share}


@dataclass(frozen=True)
class AidSnapshot:
    """Mutual aid as supervision reads it (alarms, metrics): plain values, not the live objects."""

    #: queue -> (episode open, who switched the rule off: "" when on, "plan" when the plan did).
    overflow: dict[str, tuple[bool, str]]
    #: queue -> the partners its rule sends to.
    overflow_partners: dict[str, list[str]]
    #: partner -> accepting | overloaded | silent | failing.
    partners: dict[str, str]
    #: line -> (partner, share %, failed dials in the window asked for).
    switchovers: dict[str, tuple[str, int, int]]
    #: (line, partner) -> switched-over calls the partner did not take, since start.
    failed_dials: dict[tuple[str, str], int]


class MutualAid:
    def __init__(self, engine: MutualAidHost, *, stale_after: float = 15.0) -> None:
        self.engine = engine
        self.plan = engine.plan
        self.governor = OverflowGovernor(self.plan)
        self.board = PartnerBoard(stale_after=stale_after)
        self.switchovers: dict[str, Switchover] = {}
        self.holds: set[str] = set()
        self.journal: deque[JournalEntry] = deque(maxlen=1000)
        self.pending: dict[str, str] = {}  # uniqueid -> partner, withdraw sent, exit not yet seen
        self.overflowed_out: Counter[str] = Counter()
        self.overflow_returned: Counter[str] = Counter()
        self.inbound: Counter[tuple[str, str]] = Counter()  # (origin, overflow|switchover)
        #: Switched-over calls a partner's trunk did not take: (line, partner) -> count, and when.
        self.switch_failed: Counter[tuple[str, str]] = Counter()
        self.switch_failed_at: dict[tuple[str, str], deque[float]] = {}
        #: Held by every change of switch-overs and holds (a supervisor's request, the schedule):
        #: a give-back and the schedule's next look must not interleave, or the schedule restarts
        #: what the supervisor just ended before the hold is written.
        self.changing = asyncio.Lock()
        self.kept_reason = ""
        self.last_choice: Choice | None = None
        self.loaded = False
        self.log = engine.log.bind(component="mutual-aid")
        #: Queues partner calls land in: the rule that says "we accept overflow" looks at them.
        self.intake = sorted({line.queue for line in self.plan.lines.values() if line.kind == LineKind.PARTNER})

    def adopt_plan(self, plan: Plan) -> None:
        """A reloaded plan: rules of queues still there keep their episode and switches."""
        previous = self.governor.states
        self.plan = plan
        self.governor = OverflowGovernor(plan)
        for queue, state in previous.items():
            if queue in self.governor.states and state.disabled_by != "plan":
                self.governor.states[queue] = state
        self.intake = sorted({line.queue for line in plan.lines.values() if line.kind == LineKind.PARTNER})

    # --- figures --------------------------------------------------------------------------------

    def queue_loads(self, now: float) -> dict[str, QueueLoad]:
        tracker = self.engine.tracker
        loads = {}
        for name, spec in self.plan.queues.items():
            waiting = tracker.waiting(name)
            longest = max((now - c.current_visit.joined_at for c in waiting if c.current_visit), default=0.0)
            loads[name] = QueueLoad(name, spec.role.value, len(waiting), longest, tracker.logged_in(name),
                                    tracker.available(name, now))
        return loads

    def load_message(self) -> dict[str, Any]:
        now = self.engine.clock()
        return load_message(self.plan.site.id, self.queue_loads(now), self.governor, self.intake, now,
                            qs30=self.engine.qs30_now())

    # --- AstDB ----------------------------------------------------------------------------------

    async def load_state(self) -> None:
        """After every (re)connect: the switch-overs, holds and overflow switches Asterisk keeps."""
        try:
            found: dict[str, Switchover] = {}
            for line, spec in self.plan.lines.items():
                if spec.kind == LineKind.PARTNER:
                    continue
                value = await self.engine.db_get(C.DB_SWITCH, line)
                if value:
                    found[line] = Switchover.from_db(line, value, await self.engine.db_get(DB_META, line))
            holds = {name for name in self.plan.switchovers if await self.engine.db_get(DB_HOLD, name)}
            for queue, state in self.governor.states.items():
                meta = await self.engine.db_get(DB_OVERFLOW_OFF, queue)
                if meta:
                    by, _, reason = meta.partition("|")
                    state.disabled_by, state.disabled_reason = by or "unknown", reason
                elif state.disabled_by != "plan":
                    state.disabled_by, state.disabled_reason = "", ""
        except AmiLinkDown as exc:
            self.log.warning("mutual-aid state not read, will retry at next login", error=str(exc))
            return
        self.switchovers, self.holds, self.loaded = found, holds, True
        self.log.info("mutual-aid state read", switchovers={k: v.db_value() for k, v in found.items()},
                      holds=sorted(holds))

    # --- journal --------------------------------------------------------------------------------

    def _journal(self, kind: NoticeKind, subject: str, partner: str, by: str, reason: str,
                 share: int | None = None) -> None:
        entry = JournalEntry(self.engine.clock(), kind, subject, partner, by, reason, share)
        self.journal.append(entry)
        self.log.info(kind, subject=subject, partner=partner or None, by=by, reason=reason, share=share)
        self.engine.broadcast(Notice(kind, entry.at, "", entry.public()))

    # --- switch-over ----------------------------------------------------------------------------

    async def start_switchover(self, line: str, partner: str, share: int, *, number: str = "", by: str,
                               reason: str, source: str = "manual") -> Switchover:
        check_request(self.plan, line, partner, share, number)
        async with self.changing:
            switch = Switchover(line, partner, share, number, source, by, reason, self.engine.clock())
            await self._write(switch)
        return switch

    async def _write(self, switch: Switchover) -> None:
        await self.engine.db_put(DB_META, switch.line, switch.meta())
        await self.engine.db_put(C.DB_SWITCH, switch.line, switch.db_value())
        replaced = self.switchovers.get(switch.line)
        self.switchovers[switch.line] = switch
        if replaced is not None:
            self._journal(NoticeKind.SWITCHOVER_ENDED, switch.line, replaced.partner, switch.by,
                          f"replaced by a switch-over to {switch.partner}", replaced.share)
        self._journal(NoticeKind.SWITCHOVER_STARTED, switch.line, switch.partner, switch.by, switch.reason,
                      switch.share)

    async def end_switchover(self, line: str, *, by: str, reason: str) -> Switchover:
        async with self.changing:
            return await self._end_switchover(line, by=by, reason=reason)

    async def _end_switchover(self, line: str, *, by: str, reason: str) -> Switchover:
        switch = self.switchovers.get(line)
        if switch is None:
            raise LookupError(f"line {line} is not switched over")
        await self.engine.db_del(C.DB_SWITCH, line)  # the line is back at once: new calls read this key
        await self.engine.db_del(DB_META, line)
        del self.switchovers[line]
        if switch.preset is not None and by != "schedule":
            await self.engine.db_put(DB_HOLD, switch.preset, f"{by}|{reason}")
            self.holds.add(switch.preset)
        self._journal(NoticeKind.SWITCHOVER_ENDED, line, switch.partner, by, reason, switch.share)
        return switch

    async def _apply_presets(self, now: float) -> None:
        async with self.changing:
            await self._apply_presets_locked(now)

    async def _apply_presets_locked(self, now: float) -> None:
        for decision in preset_decisions(self.plan, utcnow_from(now), now, self.switchovers, self.holds):
            if decision.kind == "start" and decision.switchover is not None:
                await self._write(decision.switchover)
            elif decision.kind == "end":
                await self._end_switchover(decision.line, by="schedule",
                                           reason=f"preset {decision.preset}: window closed")
            elif decision.kind == "release-hold":
                await self.engine.db_del(DB_HOLD, decision.preset)
                self.holds.discard(decision.preset)

    # --- overflow -------------------------------------------------------------------------------

    async def set_overflow(self, queue: str, enabled: bool, *, by: str, reason: str) -> dict[str, Any]:
        state = self.governor.states.get(queue)
        if state is None:
            raise LookupError(f"queue {queue} has no overflow rule in the plan")
        if enabled:
            await self.engine.db_del(DB_OVERFLOW_OFF, queue)
            state.disabled_by = state.disabled_reason = ""
        else:
            await self.engine.db_put(DB_OVERFLOW_OFF, queue, f"{by}|{reason}")
            state.disabled_by, state.disabled_reason = by, reason
        self._journal(NoticeKind.OVERFLOW_ENABLED if enabled else NoticeKind.OVERFLOW_DISABLED, queue, "", by, reason)
        return {"queue": queue, **state.public(self.engine.clock())}

    async def _overflow(self, now: float) -> None:
        loads = self.queue_loads(now)
        for queue, rule in self.governor.rules.items():
            load = loads[queue]
            transition = self.governor.observe(load, now)
            if transition is not None:
                self._episode(transition, rule.partners)
            pending = {u for u, _ in self.pending.items()
                       if (c := self.engine.tracker.calls.get(u)) is not None and c.current_queue == queue}
            chosen = self.governor.select(queue, self.engine.tracker.waiting(queue), load, now, pending=pending,
                                          partner_failed_at=self.board.failed_at)
            if not chosen:
                continue
            choice = self.board.choose(rule.partners, load.role, now)
            self.last_choice = choice
            if choice.partner is None:
                if choice.reason != self.kept_reason:
                    self.log.warning("overflow wanted but calls kept", queue=queue, reason=choice.reason,
                                     callers=len(chosen))
                    self.kept_reason = choice.reason
                continue
            self.kept_reason = ""
            why = f"{'; '.join(self.governor.states[queue].reasons)} - {choice.reason}"
            for call in chosen:
                await self._send_overflow(call, queue, choice.partner, why)

    def _episode(self, transition: Transition, partners: list[str]) -> None:
        self._journal(transition.kind, transition.queue, ",".join(partners), "engine", "; ".join(transition.reasons))

    async def _send_overflow(self, call: Call, queue: str, partner: str, why: str) -> None:
        self.pending[call.uniqueid] = partner
        call.expected_move = (VisitOutcome.OVERFLOWED, partner)
        self.log.info("overflowing caller", call_id=call.call_id or call.uniqueid, queue=queue, partner=partner,
                      reason=why)
        try:
            await self.engine.link.send({"Action": "QueueWithdrawCaller", "Queue": queue, "Caller": call.channel,
                                         "WithdrawInfo": C.route_to_partner(partner)})
        except (AmiLinkDown, AmiActionFailed) as exc:
            self.pending.pop(call.uniqueid, None)
            call.expected_move = None
            self.log.warning("overflow not sent, caller stays queued", call_id=call.call_id or call.uniqueid,
                             error=str(exc))
            return
        self.governor.states[queue].moved += 1

    def on_notice(self, notice: Notice) -> None:
        """Count what crossed the trunks, and notice a partner trunk that sent a caller back."""
        if notice.kind == NoticeKind.SWITCHOVER_DIAL_FAILED:
            self._switch_failed(str(notice.data["subject"]), str(notice.data["partner"]), notice.at,
                                notice.uniqueid)
            return
        call = self.engine.tracker.calls.get(notice.uniqueid) if notice.uniqueid else None
        if call is None:
            return
        if notice.kind == NoticeKind.QUEUE_LEFT:
            self.pending.pop(call.uniqueid, None)
            if notice.data.get("outcome") == VisitOutcome.OVERFLOWED.value:
                self.overflowed_out[str(notice.data.get("destination"))] += 1
        elif notice.kind == NoticeKind.QUEUE_JOINED:
            if len(call.visits) == 1 and call.inbound:
                self.inbound[(call.origin, call.inbound)] += 1
            if len(call.visits) >= 2 and call.visits[-2].outcome == VisitOutcome.OVERFLOWED:
                partner = call.visits[-2].destination
                self.overflow_returned[partner] += 1
                self.board.trunk_failed(partner, notice.at)
                self.log.warning("overflow came back: partner did not take the call", partner=partner,
                                 call_id=call.call_id or call.uniqueid, queue=call.current_queue)

    def _switch_failed(self, line: str, partner: str, at: float, uniqueid: str) -> None:
        self.switch_failed[(line, partner)] += 1
        self.switch_failed_at.setdefault((line, partner), deque(maxlen=1000)).append(at)
        self.board.trunk_failed(partner, at)
        self.journal.append(JournalEntry(at, NoticeKind.SWITCHOVER_DIAL_FAILED, line, partner, "switch",
                                         f"{partner} did not take the call"))
        self.log.warning("switched-over call came back: partner did not take it", line=line, partner=partner,
                         uniqueid=uniqueid)

    def recent_switch_failures(self, line: str, partner: str, now: float, within: float = 300.0) -> int:
        return sum(1 for at in self.switch_failed_at.get((line, partner), ()) if now - at < within)

    def snapshot(self, now: float, *, failures_within: float = 300.0) -> AidSnapshot:
        return AidSnapshot(
            overflow={q: (s.active, s.disabled_by) for q, s in self.governor.states.items()},
            overflow_partners={q: list(rule.partners) for q, rule in self.governor.rules.items()},
            partners={p: self.board.status(p, now) for p in self.plan.partners},
            switchovers={line: (s.partner, s.share, self.recent_switch_failures(line, s.partner, now, failures_within))
                         for line, s in self.switchovers.items()},
            failed_dials=dict(self.switch_failed))

    # --- the loop -------------------------------------------------------------------------------

    async def tick(self) -> None:
        if not self.loaded or not self.engine.link.connected:
            return
        now = self.engine.clock()
        try:
            if self.engine.options.apply_presets:
                await self._apply_presets(now)
            await self._overflow(now)
        except (AmiLinkDown, AmiActionFailed) as exc:
            self.log.warning("mutual-aid tick interrupted", error=str(exc))

    def view(self) -> dict[str, Any]:
        now = self.engine.clock()
        return {
            "site": self.plan.site.id,
            "mqtt": "up" if self.board.link_up else "down",
            "kept_reason": self.kept_reason or None,
            "last_choice": None if self.last_choice is None else {
                "partner": self.last_choice.partner, "basis": self.last_choice.basis,
                "reason": self.last_choice.reason},
            "overflow": {q: {**s.public(now), "partners": self.governor.rules[q].partners}
                         for q, s in self.governor.states.items()},
            "partners": {p: {"status": self.board.status(p, now), **self.board.public(now).get(p, {})}
                         for p in self.plan.partners},
            "switchovers": {line: s.public() for line, s in self.switchovers.items()},
            "holds": sorted(self.holds),
            "overflowed_out": dict(self.overflowed_out),
            "overflow_returned": dict(self.overflow_returned),
            "inbound": [{"origin": o, "reason": r, "calls": n} for (o, r), n in sorted(self.inbound.items())],
            "journal": [e.public() for e in list(self.journal)[-50:]],
        }
