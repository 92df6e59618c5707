"""Mutual aid between SAS, decided without I/O: when a queue overflows, which callers leave, and
to which partner.

The engine feeds this module with queue loads (from the tracker), the partners' published loads
(from MQTT) and its clock; it answers with callers to withdraw and the reasons, which the engine
then journals. Keeping the decision pure lets the tests replay minutes of surge in milliseconds.

Rules of thumb the code follows (DOMAIN.md, issue 5):

* **Hysteresis.** A rule becomes *active* as soon as one of its conditions holds, and returns to
  *clear* only once every condition has stayed false for ``hysteresis`` seconds. The state a
  partner sees ("this SAS is overflowing, do not send it calls") therefore does not flap, and an
  overflow episode is journaled once. Callers are still chosen by the conditions themselves, so
  a clear-but-cooling rule moves nobody.
* **Who leaves.** Oldest first. Never a P0 (its ARM keeps it), never a call that came in from a
  partner (overflow or switch-over: no ping-pong), never a caller whose overflow to that partner
  just failed (it is back at the front of our queue; the partner is cooled down instead).
* **Where to.** Partners that publish a fresh load and accept calls come first, those with free
  agents for the role before those without, then the plan's order. A partner that says it is
  overloaded is skipped. When no live load is usable (broker down, partners silent) the plan's
  order decides: the instruction's mutual aid must not depend on the supervision bus.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sas_router.engine.core.calls import Call, VisitOutcome
from sas_router.engine.core.notices import NoticeKind
from sas_router.engine.plan.model import OverflowRule, Plan

#: Version of the load message published on MQTT; a partner ignores versions it does not know.
LOAD_VERSION = 1


@dataclass(frozen=True)
class QueueLoad:
    """What one local queue looks like now, as the tracker sees it."""

    queue: str
    role: str
    waiting: int
    longest_wait: float
    logged_in: int
    available: int


@dataclass
class RuleState:
    """The live state of one queue's overflow rule."""

    active: bool = False
    since: float | None = None
    clear_since: float | None = None
    busy_since: float | None = None
    reasons: tuple[str, ...] = ()
    episodes: int = 0
    moved: int = 0
    disabled_by: str = ""
    disabled_reason: str = ""

    def public(self, now: float) -> dict[str, Any]:
        return {"active": self.active, "since": self.since, "reasons": list(self.reasons),
                "episodes": self.episodes, "moved": self.moved,
                "enabled": not self.disabled_by, "disabled_by": self.disabled_by or None,
                "disabled_reason": self.disabled_reason or None}


@dataclass(frozen=True)
class Transition:
    """An overflow episode starting or ending on a queue: journaled, shown to supervisors."""

    queue: str
    kind: NoticeKind  # OVERFLOW_STARTED | OVERFLOW_ENDED
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Firing:
    """One condition of an overflow rule that holds: which, the value seen and the rule's limit."""

    kind: str  # "longest-wait" | "callers-waiting" | "no-agent" | "all-busy"
    value: float = 0.0
    limit: float = 0.0


def firing(rule: OverflowRule, load: QueueLoad, busy_since: float | None, now: float) -> list[Firing]:
    """The rule's conditions that hold now (the governor decides on them, the alarms tell them)."""
    when, out = rule.when, []
    if when.longest_wait_over is not None and load.waiting and load.longest_wait > when.longest_wait_over:
        out.append(Firing("longest-wait", load.longest_wait, when.longest_wait_over))
    if when.callers_waiting_over is not None and load.waiting > when.callers_waiting_over:
        out.append(Firing("callers-waiting", load.waiting, when.callers_waiting_over))
    if when.no_agent_logged_in and load.waiting and load.logged_in == 0:
        out.append(Firing("no-agent"))
    if (when.all_agents_busy_for is not None and load.waiting and busy_since is not None
            and now - busy_since >= when.all_agents_busy_for):
        out.append(Firing("all-busy", now - busy_since, when.all_agents_busy_for))
    return out


def conditions(rule: OverflowRule, load: QueueLoad, busy_since: float | None, now: float) -> list[str]:
    """The rule's conditions that hold now, worded for the journal and the logs."""
    return [_worded(f) for f in firing(rule, load, busy_since, now)]


def _worded(f: Firing) -> str:
    if f.kind == "longest-wait":
        return f"longest wait {f.value:.0f} s over {f.limit:.0f} s"
    if f.kind == "callers-waiting":
        return f"{f.value:.0f} callers waiting, over {f.limit:.0f}"
    if f.kind == "no-agent":
        return "no agent logged in"
    return f"all agents busy for {f.value:.0f} s"


def overflow_refusal(call: Call, partner_failed_at: Mapping[str, float], cooldown: float, now: float) -> str:
    """Why this waiting caller must not overflow ("" when it may)."""
    if call.qualification == "P0":
        return "P0 stays with its ARM"
    if call.overflow_in or call.inbound:
        return f"came in from a partner ({call.inbound or 'overflow'})"
    last = next((v for v in reversed(call.visits) if v.outcome == VisitOutcome.OVERFLOWED), None)
    if last is not None and last.left_at is not None and now - last.left_at < cooldown:
        return f"overflow to {last.destination} failed {now - last.left_at:.0f} s ago"
    return ""


class OverflowGovernor:
    """Evaluates every queue's overflow rule and picks the callers to move."""

    def __init__(self, plan: Plan) -> None:
        self.rules: dict[str, OverflowRule] = {q: s.overflow for q, s in plan.queues.items() if s.overflow}
        self.states: dict[str, RuleState] = {q: RuleState(disabled_by="plan" if not r.enabled else "")
                                             for q, r in self.rules.items()}

    def observe(self, load: QueueLoad, now: float) -> Transition | None:
        """Update a queue's rule with its current load; say when an episode starts or ends."""
        rule, state = self.rules.get(load.queue), self.states.get(load.queue)
        if rule is None or state is None:
            return None
        all_busy = load.logged_in > 0 and load.available == 0
        if not all_busy:
            state.busy_since = None
        elif state.busy_since is None:
            state.busy_since = now
        holding = conditions(rule, load, state.busy_since, now) if not state.disabled_by else []
        if holding:
            state.reasons, state.clear_since = tuple(holding), None
            if not state.active:
                state.active, state.since = True, now
                state.episodes += 1
                return Transition(load.queue, NoticeKind.OVERFLOW_STARTED, state.reasons)
            return None
        if not state.active:
            return None
        if state.disabled_by:
            state.active, state.since, state.reasons = False, None, ()
            return Transition(load.queue, NoticeKind.OVERFLOW_ENDED, ("overflow switched off",))
        if state.clear_since is None:
            state.clear_since = now
        if now - state.clear_since >= rule.hysteresis:
            state.active, state.since, state.reasons = False, None, ()
            return Transition(load.queue, NoticeKind.OVERFLOW_ENDED, (f"clear for {rule.hysteresis} s",))
        return None

    def select(self, queue: str, waiting: Iterable[Call], load: QueueLoad, now: float, *,
               pending: set[str], partner_failed_at: Mapping[str, float]) -> list[Call]:
        """Callers to overflow now, oldest first, as the holding conditions ask."""
        rule, state = self.rules.get(queue), self.states.get(queue)
        if rule is None or state is None or not state.active or state.disabled_by:
            return []
        when = rule.when
        cooldown = max(rule.hysteresis, 30)
        candidates = sorted((c for c in waiting if c.current_visit is not None and c.uniqueid not in pending
                             and not overflow_refusal(c, partner_failed_at, cooldown, now)),
                            key=lambda c: c.waiting_visit.joined_at)
        chosen: dict[str, Call] = {}

        def waited(call: Call) -> float:
            return now - call.waiting_visit.joined_at

        if when.no_agent_logged_in and load.logged_in == 0:
            chosen.update((c.uniqueid, c) for c in candidates)
        if when.longest_wait_over is not None:
            chosen.update((c.uniqueid, c) for c in candidates if waited(c) > when.longest_wait_over)
        if when.callers_waiting_over is not None and load.waiting > when.callers_waiting_over:
            excess = load.waiting - when.callers_waiting_over - len(pending)
            chosen.update((c.uniqueid, c) for c in candidates[:max(excess, 0)])
        if (when.all_agents_busy_for is not None and state.busy_since is not None
                and now - state.busy_since >= when.all_agents_busy_for):
            chosen.update((c.uniqueid, c) for c in candidates if waited(c) >= when.all_agents_busy_for)
        return sorted(chosen.values(), key=lambda c: c.waiting_visit.joined_at)

    def intake_refusal(self, queues: Iterable[str], loads: Mapping[str, QueueLoad]) -> str:
        """Why partners may not send us calls now ("" when they may): a queue that takes them is
        overflowing itself or has nobody logged in."""
        for queue in queues:
            state = self.states.get(queue)
            if state is not None and state.active:
                return f"{queue} is overflowing itself"
            load = loads.get(queue)
            if load is not None and load.logged_in == 0:
                return f"no agent logged in to {queue}"
        return ""


# --- the partners' live load --------------------------------------------------------------------


@dataclass
class PartnerLoad:
    site: str
    received_at: float
    accepting: bool
    waiting: int
    longest_wait: float
    available_by_role: dict[str, int]
    qs30: float | None
    overflowing: list[str]
    refusal: str = ""


@dataclass(frozen=True)
class Choice:
    partner: str | None
    basis: str  # "live-load" | "plan-order" | "none"
    reason: str


@dataclass
class PartnerBoard:
    """The partners' loads as last heard on the bus, and the trunks that just failed."""

    stale_after: float = 15.0
    link_up: bool = False
    loads: dict[str, PartnerLoad] = field(default_factory=dict)
    offline: set[str] = field(default_factory=set)
    failed_at: dict[str, float] = field(default_factory=dict)
    failure_cooldown: float = 60.0

    def update(self, payload: Mapping[str, Any], now: float) -> PartnerLoad:
        """Record a partner's load message; a malformed one raises ValueError (logged, skipped)."""
        try:
            if int(payload.get("version", 0)) != LOAD_VERSION:
                raise ValueError(f"unknown load version {payload.get('version')!r}")
            load = PartnerLoad(
                site=str(payload["site"]), received_at=now, accepting=bool(payload["accepting_overflow"]),
                waiting=int(payload["waiting"]), longest_wait=float(payload["longest_wait"]),
                available_by_role={str(k): int(v) for k, v in dict(payload.get("available_by_role", {})).items()},
                qs30=None if payload.get("qs30") is None else float(payload["qs30"]),
                overflowing=[str(q) for q in payload.get("overflowing", [])],
                refusal=str(payload.get("refusal") or "")[:200])
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed load message: {exc!r}") from exc
        self.loads[load.site] = load
        self.offline.discard(load.site)
        return load

    def went_offline(self, site: str) -> None:
        self.offline.add(site)

    def trunk_failed(self, partner: str, now: float) -> None:
        self.failed_at[partner] = now

    def status(self, partner: str, now: float) -> str:
        """``failing``, ``accepting``, ``overloaded`` or ``silent`` (no fresh word from it)."""
        failed = self.failed_at.get(partner)
        if failed is not None and now - failed < self.failure_cooldown:
            return "failing"
        load = self.loads.get(partner)
        if not self.link_up or partner in self.offline or load is None or now - load.received_at > self.stale_after:
            return "silent"
        return "accepting" if load.accepting else "overloaded"

    def choose(self, partners: list[str], role: str, now: float) -> Choice:
        statuses = {p: self.status(p, now) for p in partners}
        accepting = [p for p in partners if statuses[p] == "accepting"]
        if accepting:
            best = min(accepting, key=lambda p: (self.loads[p].available_by_role.get(role, 0) == 0,
                                                 partners.index(p)))
            return Choice(best, "live-load", f"{best} accepts calls (live load)")
        silent = [p for p in partners if statuses[p] == "silent"]
        if silent:
            why = "no MQTT link" if not self.link_up else f"no live load from {', '.join(silent)}"
            return Choice(silent[0], "plan-order", f"{why}: plan order")
        details = ", ".join(f"{p} {statuses[p]}"
                            + (f" ({self._why_refusing(p)})" if statuses[p] == "overloaded" else "")
                            for p in partners)
        return Choice(None, "none", f"no partner can take calls: {details}")

    def _why_refusing(self, partner: str) -> str:
        load = self.loads[partner]
        figures = f"{load.waiting} waiting, longest {load.longest_wait:.0f} s"
        return f"{load.refusal}; {figures}" if load.refusal else figures

    def public(self, now: float) -> dict[str, Any]:
        return {site: {"status": self.status(site, now), "accepting": load.accepting, "waiting": load.waiting,
                       "refusal": load.refusal or None,
                       "longest_wait": load.longest_wait, "available_by_role": load.available_by_role,
                       "qs30": load.qs30, "age": round(now - load.received_at, 1)}
                for site, load in self.loads.items()}


def load_message(site: str, loads: Mapping[str, QueueLoad], governor: OverflowGovernor, intake: Iterable[str],
                 now: float, qs30: float | None = None) -> dict[str, Any]:
    """The JSON a site publishes on ``<prefix>/<site>/load`` (documented in the README)."""
    by_role: dict[str, int] = {}
    for load in loads.values():
        by_role[load.role] = by_role.get(load.role, 0) + load.available
    refusal = governor.intake_refusal(intake, loads)
    return {
        "version": LOAD_VERSION, "site": site, "at": round(now, 3),
        "accepting_overflow": not refusal, "refusal": refusal or None,
        "waiting": sum(load.waiting for load in loads.values()),
        "longest_wait": round(max((load.longest_wait for load in loads.values()), default=0.0), 1),
        "available_by_role": by_role,
        "overflowing": sorted(q for q, s in governor.states.items() if s.active),
        "qs30": qs30,
        "queues": {q: {"role": load.role, "waiting": load.waiting, "longest_wait": round(load.longest_wait, 1),
                       "logged_in": load.logged_in, "available": load.available} for q, load in loads.items()},
    }
