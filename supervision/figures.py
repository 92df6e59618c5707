"""Quality of service and load figures of one SAS, computed without I/O from the tracker's notices.

How each call counts (annex 3 of the instruction, and how Asterisk reports moves — see
``tests/fixtures/transcripts/README.md``, recordings of a real Asterisk 22):

* **Offered**: a call is offered to the SAS when it first joins a queue here (its line and entry
  queue). Every further join (transfer, fallback, returned overflow) is offered *to that queue*
  only. Calls overflowed or switched over to us by a partner are offered here too, and also
  counted apart (``overflowed_in`` / ``switched_in`` by origin).
* **Answered by the SAS / QS30**: a call is answered at its *first* pick-up by an agent. Its wait
  is counted from the moment it joined its first queue here, so a caller who waited 20 s in N1,
  fell back and was picked up 15 s later in N2 AMU waited 35 s. QS30 = calls answered in under
  30 s (strictly: 30.0 s is not under 30) / calls answered — annex 3 — and also / calls offered
  net of short abandons. The same with 60 s (the Samu-Urgences de France 99 % target).
* **Per queue**: each visit is judged on its own: wait from joining *that* queue to leaving it.
  A visit that ends in a transfer, an overflow, a Redirect or a queue timeout is a *move*,
  never an abandon (Asterisk reports a Redirect of a waiting caller as QueueCallerAbandon +
  QueueCallerLeave; the tracker has already told them apart).
* **N1 / N2 waits**: N1 = time to the first pick-up in a front-office queue; N2 = from joining
  the first back-office queue (AMU, MG, PDSA, specialist) to the regulator's pick-up.
* **Abandoned**: a call that ends without ever being answered here while waiting in a queue.
  A caller who hangs up within ``short_abandon`` seconds of the call's start (during the
  greeting) is a **short abandon**, reported apart and not in the abandons; it stays in the
  offered calls but not in the "of offered" base.
* **Overflowed out** counts at the withdraw towards the partner; a caller the partner's trunk
  sent back counts in ``overflow_returned`` (net = out - returned). **Switched out** counts
  calls the dialplan sent to a partner before any queue.

Every figure is kept in 30-second buckets (the last 26 hours), daily totals (400 days) and
totals since start (Prometheus counters); windows are sums of those.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sas_router.engine.core.calls import Call, QueueVisit, VisitOutcome
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.plan import Plan
from sas_router.engine.plan.model import Role

BUCKET = 30.0
WINDOWS = ("30s", "last_30s", "15m", "hour", "today", "month", "all")
#: Histogram bounds for waits, in seconds; 30 and 60 are the targets.
WAIT_BUCKETS = (5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0)

Key = tuple[str, str, str]  # (scope, name, metric): ("queue", "n1-arm", "answered")


class Totals(dict[Key, float]):
    """Figures by key, 0 when never counted; counts and sums of seconds alike (hence float)."""

    def __missing__(self, key: Key) -> float:
        return 0.0

    def add(self, other: dict[Key, float]) -> None:
        for key, value in other.items():
            self[key] = self.get(key, 0.0) + value


@dataclass(frozen=True)
class Ratios:
    answered: int
    offered: int
    qs30: float | None
    qs60: float | None
    qs30_offered: float | None
    qs60_offered: float | None
    mean_wait: float | None

    def public(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 4)
        return {"answered": self.answered, "offered": self.offered, "qs30": r(self.qs30), "qs60": r(self.qs60),
                "qs30_of_offered": r(self.qs30_offered), "qs60_of_offered": r(self.qs60_offered),
                "mean_wait": None if self.mean_wait is None else round(self.mean_wait, 1)}


def ratios(totals: Totals, scope: str, name: str = "") -> Ratios:
    def get(metric: str) -> float:
        return totals[(scope, name, metric)]
    answered, a30, a60 = int(get("answered")), get("answered_30"), get("answered_60")
    offered = int(get("offered"))
    net = offered - get("short_abandoned")
    # "Of offered" counts each quick answer in the bucket of the call's offer, where the offer
    # and any short abandon are counted too: the ratio cannot pass 1 in any window.
    o30, o60 = get("answered_30_by_offer"), get("answered_60_by_offer")
    return Ratios(answered=answered, offered=offered,
                  qs30=a30 / answered if answered else None, qs60=a60 / answered if answered else None,
                  qs30_offered=o30 / net if net > 0 else None, qs60_offered=o60 / net if net > 0 else None,
                  mean_wait=get("wait_sum") / answered if answered else None)


class Figures:
    """Counters of one site, fed with the tracker's notices and the calls they concern."""

    def __init__(self, plan: Plan, *, keep_hours: float = 26.0, keep_days: int = 400) -> None:
        self.site = plan.site.id
        self.tz = ZoneInfo(plan.site.timezone)
        self.adopt_plan(plan)
        self.buckets: dict[int, Totals] = {}
        self.days: dict[date, Totals] = {}
        self.lifetime = Totals()
        #: Lifetime wait histogram per queue (answered visits): counts per WAIT_BUCKETS bound.
        self.wait_histogram: dict[str, list[int]] = {}
        self.hourly: dict[int, Counter[str]] = {}
        self.samples: deque[dict[str, Any]] = deque(maxlen=int(keep_hours * 3600 / BUCKET))
        self.keep_buckets = int(keep_hours * 3600 / BUCKET)
        self.keep_days = keep_days

        #: True while finished calls are replayed from the journal: they fill the windows ("today",
        #: "month") but not the lifetime counters Prometheus exports, which keep counter semantics
        #: (they start again at zero with the process, as increase() expects).
        self._replaying = False
        #: Live calls already counted as offered (uniqueid -> when), so an adoption never counts twice.
        self._offered_calls: dict[str, float] = {}

    def adopt_plan(self, plan: Plan) -> None:
        """The plan's settings the figures read (a reload changes them; the counts stay)."""
        self.short_abandon = float(plan.site.short_abandon)
        self.target = plan.site.qs30_target
        self.n1 = set(plan.queues_with_role(Role.N1))

    # --- recording ------------------------------------------------------------------------------

    def _add(self, at: float, scope: str, name: str, metric: str, value: float = 1.0) -> None:
        key = (scope, name, metric)
        index = int(at // BUCKET)
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = Totals()
            self._prune(index)
        bucket[key] += value
        day = self.local(at).date()
        daily = self.days.get(day)
        if daily is None:
            daily = self.days[day] = Totals()
        daily[key] += value
        if not self._replaying:
            self.lifetime[key] += value
        if scope == "sas" and metric in ("offered", "answered"):
            # Hour totals kept apart: the 30 s snapshot lists the day's hours without summing
            # thousands of buckets (French time zones are whole hours from UTC).
            hour = self.hourly.setdefault(int(at // 3600), Counter())
            hour[metric] += int(value)

    def _prune(self, newest: int) -> None:
        oldest = newest - self.keep_buckets
        for index in [i for i in self.buckets if i < oldest]:
            del self.buckets[index]
        for hour in [h for h in self.hourly if h < oldest * BUCKET // 3600]:
            del self.hourly[hour]
        if len(self.days) > self.keep_days:
            for day in sorted(self.days)[: len(self.days) - self.keep_days]:
                del self.days[day]

    @staticmethod
    def _call_scopes(line: str) -> tuple[tuple[str, str], ...]:
        """Where a call-level figure counts: the whole SAS, and the call's line."""
        return (("sas", ""), ("line", line)) if line else (("sas", ""),)

    def _both(self, at: float, line: str, metric: str, value: float = 1.0) -> None:
        """A call-level figure for the whole SAS and for the call's line."""
        for scope, name in self._call_scopes(line):
            self._add(at, scope, name, metric, value)

    def _answered(self, at: float, wait: float, *scopes: tuple[str, str]) -> None:
        """One pick-up after ``wait`` seconds, in each (scope, name): the QS30 and QS60 numerators
        are "strictly under" (annex 3: 30.0 s is not under 30 s). The "of offered" numerators go
        to the moment of the offer (``at - wait``), beside the offer itself."""
        for scope, name in scopes:
            self._add(at, scope, name, "answered")
            self._add(at, scope, name, "wait_sum", wait)
            if wait < 30:
                self._add(at, scope, name, "answered_30")
                self._add(at - wait, scope, name, "answered_30_by_offer")
            if wait < 60:
                self._add(at, scope, name, "answered_60")
                self._add(at - wait, scope, name, "answered_60_by_offer")

    def observe(self, notice: Notice, call: Call | None, role_of: Callable[[str], str] = lambda _i: "") -> None:
        """Count one tracker notice. ``call`` is the call it concerns (live or just ended)."""
        if call is None:
            return
        kind, at = notice.kind, notice.at
        if kind == NoticeKind.QUEUE_JOINED:
            self._joined(call, str(notice.data.get("queue", "")), at)
        elif kind == NoticeKind.QUEUE_LEFT:
            self._left(call, notice.data, at)
        elif kind == NoticeKind.AGENT_CONNECTED:
            self._connected(call, str(notice.data.get("queue", "")), at)
        elif kind == NoticeKind.AGENT_LEG_ENDED:
            talk = notice.data.get("talk_time")
            role = role_of(str(notice.data.get("interface", ""))) or "unknown"
            if talk is not None:
                self._add(at, "role", role, "legs")
                self._add(at, "role", role, "talk_sum", float(talk))
        elif kind == NoticeKind.CALL_ENDED:
            self._ended(call, at)
        elif kind == NoticeKind.CALL_ADOPTED:
            self._adopted(call, at)

    def _adopted(self, call: Call, at: float) -> None:
        """A live call this process had not seen join (an engine restart): offered once, when the
        switch says it joined, so it never counts answered without offered."""
        if call.uniqueid in self._offered_calls:
            return
        joined, queue = (call.visits[0].joined_at, call.visits[0].queue) if call.visits else (at, call.entry_queue)
        self._add(joined, "queue", queue, "offered")
        self._offer(call, queue, joined)

    def _level(self, queue: str) -> str:
        return "n1" if queue in self.n1 else "n2"

    def _offer(self, call: Call, queue: str, at: float) -> None:
        self._offered_calls[call.uniqueid] = at
        if len(self._offered_calls) > 20_000:  # only live calls matter; the oldest are long gone
            for uniqueid in list(self._offered_calls)[:10_000]:
                del self._offered_calls[uniqueid]
        self._both(at, call.line, "offered")
        self._add(at, "level", self._level(queue), "offered")

    def _joined(self, call: Call, queue: str, at: float) -> None:
        self._add(at, "queue", queue, "offered")
        level = self._level(queue)
        if len(call.visits) > 1 and all(self._level(v.queue) != level for v in call.visits[:-1]):
            self._add(at, "level", level, "offered")  # the call's first visit at this level
        if len(call.visits) == 1:
            self._offer(call, queue, at)
            if call.inbound == "overflow":
                self._both(at, call.line, "overflowed_in")
                self._add(at, "origin", call.origin, "overflowed_in")
            elif call.inbound == "switchover":
                self._both(at, call.line, "switched_in")
                self._add(at, "origin", call.origin, "switched_in")
        else:
            previous = call.visits[-2]
            if previous.outcome == VisitOutcome.OVERFLOWED:
                self._both(at, call.line, "overflow_returned")
                self._add(at, "partner", previous.destination, "overflow_returned")
            elif previous.outcome in (VisitOutcome.ANSWERED, VisitOutcome.TRANSFERRED, VisitOutcome.REDIRECTED):
                # A desk's transfer (Redirect of a talking caller, or withdraw of a waiting one).
                self._add(at, "pair", f"{previous.queue}>{queue}", "transferred")

    def _left(self, call: Call, data: dict[str, Any], at: float) -> None:
        queue, outcome = str(data.get("queue", "")), str(data.get("outcome", ""))
        wait = float(data.get("wait") or 0.0)
        destination = str(data.get("destination") or "")
        if outcome == VisitOutcome.ANSWERED.value:
            self._answered(at, wait, ("queue", queue))
            counts = self.wait_histogram.setdefault(queue, [0] * (len(WAIT_BUCKETS) + 1))
            counts[next((i for i, bound in enumerate(WAIT_BUCKETS) if wait <= bound), len(WAIT_BUCKETS))] += 1
        elif outcome == VisitOutcome.ABANDONED.value:
            self._add(at, "queue", queue, "abandoned")
            if wait < 30:
                self._add(at, "queue", queue, "abandoned_30")
        elif outcome == VisitOutcome.TRANSFERRED.value:
            self._add(at, "queue", queue, "transferred_out")
        elif outcome == VisitOutcome.OVERFLOWED.value:
            self._add(at, "queue", queue, "overflowed_out")
            self._both(at, call.line, "overflowed_out")
            self._add(at, "partner", destination, "overflowed_out")
        else:
            self._add(at, "queue", queue, "moved")

    def _connected(self, call: Call, queue: str, at: float) -> None:
        if not call.visits:
            return
        if len(call.legs) == 1:  # the call's first pick-up here
            self._answered(at, at - call.visits[0].joined_at, *self._call_scopes(call.line))
        if queue in self.n1:
            if len(call.legs) == 1:
                self._answered(at, at - call.visits[0].joined_at, ("level", "n1"))
            return
        earlier_n2 = [leg for leg in call.legs[:-1] if leg.queue not in self.n1]
        if not earlier_n2:
            first_n2 = next((v for v in call.visits if v.queue not in self.n1), None)
            if first_n2 is not None:
                self._answered(at, at - first_n2.joined_at, ("level", "n2"))

    def _ended(self, call: Call, at: float) -> None:
        if call.legs:
            return
        if not call.visits:
            if call.switched_to:
                self._both(at, call.line, "switched_out")
                self._add(at, "partner", call.switched_to, "switched_out")
            return
        last = call.visits[-1]
        if last.outcome != VisitOutcome.ABANDONED:
            return
        if at - call.started_at < self.short_abandon:
            self._both(call.visits[0].joined_at, call.line, "short_abandoned")  # beside its offer
            return
        self._both(at, call.line, "abandoned")
        if at - call.visits[0].joined_at < 30:
            self._both(at, call.line, "abandoned_30")

    def replay(self, call: Call, role_of: Callable[[str], str] = lambda _i: "") -> None:
        """Count a finished call again from its journal record, as the tracker's notices would
        have counted it live: a restarted engine's "today" and "month" go on where they stopped
        (the lifetime counters are left alone: see ``_replaying``)."""
        self._replaying = True
        try:
            self._replay(call, role_of)
        finally:
            self._replaying = False

    def _replay(self, call: Call, role_of: Callable[[str], str]) -> None:
        steps: list[tuple[float, int, str, Any]] = []
        for index, visit in enumerate(call.visits):
            steps.append((visit.joined_at, 0, "join", index))
            if visit.left_at is not None:
                steps.append((visit.left_at, 1, "leave", index))
        for index, leg in enumerate(call.legs):
            steps.append((leg.connected_at, 2, "connect", index))
            if leg.ended_at is not None:
                steps.append((leg.ended_at, 3, "leg-end", index))
        live = Call(uniqueid=call.uniqueid, linkedid=call.linkedid, channel=call.channel, started_at=call.started_at,
                    call_id=call.call_id, line=call.line, origin=call.origin, inbound=call.inbound,
                    switched_to=call.switched_to)
        for at, _, kind, index in sorted(steps, key=lambda step: (step[0], step[1])):
            if kind == "join":
                visit = call.visits[index]
                live.visits.append(QueueVisit(visit.queue, visit.joined_at))
                self.observe(Notice(NoticeKind.QUEUE_JOINED, at, call.uniqueid, {"queue": visit.queue}), live, role_of)
            elif kind == "leave":
                visit = call.visits[index]
                live.visits[index].left_at, live.visits[index].outcome = visit.left_at, visit.outcome
                live.visits[index].destination = visit.destination
                self.observe(Notice(NoticeKind.QUEUE_LEFT, at, call.uniqueid, {
                    "queue": visit.queue, "outcome": visit.outcome.value, "wait": visit.wait,
                    "destination": visit.destination}), live, role_of)
            elif kind == "connect":
                live.legs.append(call.legs[index])
                self.observe(Notice(NoticeKind.AGENT_CONNECTED, at, call.uniqueid, {"queue": call.legs[index].queue}),
                             live, role_of)
            else:
                leg = call.legs[index]
                self.observe(Notice(NoticeKind.AGENT_LEG_ENDED, at, call.uniqueid, {
                    "queue": leg.queue, "interface": leg.interface, "talk_time": leg.talk_time}), live, role_of)
        if call.ended_at is not None:
            self.observe(Notice(NoticeKind.CALL_ENDED, call.ended_at, call.uniqueid, {}), live, role_of)

    def sample(self, at: float, waiting: int, longest_wait: float, agents: dict[str, dict[str, int]]) -> None:
        """A point of the load trend (the adapter calls it every 30 s)."""
        last_15m = ratios(self.window("15m", at), "sas")
        self.samples.append({"at": at, "waiting": waiting, "longest_wait": round(longest_wait, 1),
                             "qs30_15m": last_15m.qs30, "offered_15m": last_15m.offered, "agents": agents})

    # --- reading --------------------------------------------------------------------------------

    def local(self, at: float) -> datetime:
        return datetime.fromtimestamp(at, UTC).astimezone(self.tz)

    def _sum_buckets(self, first: int, last: int) -> Totals:
        out = Totals()
        for index in range(first, last + 1):
            bucket = self.buckets.get(index)
            if bucket:
                out.add(bucket)
        return out

    def between(self, start: float, end: float) -> Totals:
        """Every figure counted from ``start`` (included) to ``end`` (excluded), to the 30 s bucket
        (the last 26 hours are kept)."""
        return self._sum_buckets(int(start // BUCKET), math.ceil(end / BUCKET) - 1)

    def window(self, name: str, now: float) -> Totals:
        index = int(now // BUCKET)
        if name == "all":
            return Totals(self.lifetime)
        if name == "30s":
            return Totals(self.buckets.get(index, {}))
        if name == "last_30s":
            return Totals(self.buckets.get(index - 1, {}))
        if name == "15m":
            return self._sum_buckets(index - 29, index)
        local = self.local(now)
        if name == "hour":
            start = local.replace(minute=0, second=0, microsecond=0).timestamp()
            return self._sum_buckets(int(start // BUCKET), index)
        if name == "today":
            return Totals(self.days.get(local.date(), {}))
        if name == "month":
            out = Totals()
            for day, totals in self.days.items():
                if (day.year, day.month) == (local.year, local.month) and day <= local.date():
                    out.add(totals)
            return out
        raise ValueError(f"unknown window {name!r}; use one of {', '.join(WINDOWS)}")

    def names(self, scope: str, totals: Iterable[Key] | None = None) -> list[str]:
        keys = self.lifetime if totals is None else totals
        return sorted({name for s, name, _ in keys if s == scope})

    def summary(self, name: str, now: float) -> dict[str, Any]:
        """One window as supervisors read it: QS30/QS60 and counts for the SAS, each line and queue."""
        totals = self.window(name, now)

        def counts(scope: str, who: str, metrics: tuple[str, ...]) -> dict[str, float]:
            return {m: _round(totals[(scope, who, m)]) for m in metrics if totals[(scope, who, m)]}

        call_metrics = ("abandoned", "abandoned_30", "short_abandoned", "overflowed_out", "overflow_returned",
                        "overflowed_in", "switched_out", "switched_in")
        queue_metrics = ("abandoned", "abandoned_30", "transferred_out", "overflowed_out", "moved")
        roles = {}
        for role in self.names("role", totals):
            legs = totals[("role", role, "legs")]
            roles[role] = {"calls": int(legs), "mean_talk": round(totals[("role", role, "talk_sum")] / legs, 1)
                           if legs else None}
        return {
            "window": name,
            "sas": {**ratios(totals, "sas").public(), **counts("sas", "", call_metrics)},
            "lines": {line: {**ratios(totals, "line", line).public(), **counts("line", line, call_metrics)}
                      for line in self.names("line", totals)},
            "queues": {q: {**ratios(totals, "queue", q).public(), **counts("queue", q, queue_metrics)}
                       for q in self.names("queue", totals)},
            "levels": {lvl: ratios(totals, "level", lvl).public() for lvl in self.names("level", totals)},
            "transfers": {pair: int(totals[("pair", pair, "transferred")]) for pair in self.names("pair", totals)},
            "partners": {p: counts("partner", p, ("overflowed_out", "overflow_returned", "switched_out"))
                         for p in self.names("partner", totals)},
            "origins": {o: counts("origin", o, ("overflowed_in", "switched_in")) for o in self.names("origin", totals)},
            "handle_time": roles,
        }

    def calls_per_hour(self, now: float) -> list[dict[str, Any]]:
        """Offered and answered calls for each hour of the current local day so far."""
        local = self.local(now)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        out = []
        for hour in range(local.hour + 1):
            totals = self.hourly.get(int(midnight.replace(hour=hour).timestamp() // 3600), Counter())
            out.append({"hour": hour, "offered": totals["offered"], "answered": totals["answered"]})
        return out


def _round(value: float) -> float:
    return int(value) if float(value).is_integer() else round(value, 1)


def qs30_now(figures: Figures, now: float) -> float | None:
    """The figure partners read in the load message: QS30 over the last 15 minutes."""
    value = ratios(figures.window("15m", now), "sas").qs30
    return None if value is None or math.isnan(value) else round(value, 4)
