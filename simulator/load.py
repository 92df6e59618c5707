"""What a SAS day looks like, as numbers: callers, their lines and urgency, and the staff.

Pure and seeded: :func:`plan_day` turns a :class:`LoadProfile` and a start time into the list of
calls of the day (when, which line, which caller, how urgent, how patient, how long each desk
will talk), and :func:`staffing_for` turns the same profile into agents per queue and hour with
the capacity model. The driver (:mod:`simulator.day`) then plays them against the emulated switch
with the real engine in the loop. Two runs with the same seed place the same calls.

Why these shapes (orders of magnitude from SAMU activity reports; a site tunes them):
a SAMU day is quiet from 02:00 to 07:00, climbs to a late-morning peak (10:00–12:00), dips
after lunch and peaks again in the early evening (18:00–20:00); weekends and public holidays
bring more MG/PDSA calls (116 117, local numbers) while the 15 changes little. Callers' patience
is log-normal (most wait a minute or two, a few hang up at once, a few wait very long), and talk
times are log-normal per role (a long right tail).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sas_router.engine.core.routing import qualification_target, utcnow_from
from sas_router.engine.plan import Plan
from sas_router.engine.plan.model import Priority
from sas_router.engine.plan.schedule import holiday_name
from sas_router.simulator.capacity import Queue, agents_needed

#: Relative arrivals per local hour 0..23 (a SAMU weekday; the weekend is flatter in the morning).
WEEKDAY_HOURS = (2.6, 2.0, 1.5, 1.2, 1.1, 1.2, 1.8, 3.0, 4.8, 5.9, 6.6, 6.5, 5.6, 5.0, 5.0, 5.1, 5.3,
                 5.8, 6.4, 6.2, 5.2, 4.3, 3.6, 3.1)
WEEKEND_HOURS = (3.0, 2.4, 1.8, 1.5, 1.3, 1.3, 1.6, 2.3, 3.6, 5.2, 6.4, 6.6, 5.9, 5.2, 5.0, 5.1, 5.2,
                 5.6, 6.0, 5.8, 5.0, 4.3, 3.8, 3.4)


@dataclass(frozen=True)
class Dist:
    """A duration in seconds: exponential (memoryless, as Erlang assumes) or log-normal (real talk
    times and patience). ``spread`` is the log-normal's sigma."""

    mean: float
    kind: str = "lognormal"
    spread: float = 0.6

    def draw(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.mean
        if self.kind == "exponential":
            return rng.expovariate(1.0 / self.mean)
        mu = math.log(self.mean) - self.spread**2 / 2  # so that the mean is ``mean``
        return rng.lognormvariate(mu, self.spread)


@dataclass(frozen=True)
class LoadProfile:
    """Callers and desks of one site, for one day."""

    calls_per_day: float = 3000.0
    #: Multiplies every arrival rate: an epidemic, a heat wave (2.0 = twice the calls).
    surge: float = 1.0
    #: Share of the day's calls per line kind (the plan's lines of that kind split it evenly).
    line_share: dict[str, float] = field(default_factory=lambda: {
        "emergency": 0.56, "care": 0.32, "local": 0.04, "sis": 0.05, "atsu": 0.03})
    #: Weekends and holidays: more MG/PDSA calls, a little more on the 15.
    weekend_factor: dict[str, float] = field(default_factory=lambda: {"care": 1.8, "local": 1.8, "emergency": 1.15})
    #: Urgency the N1 desk finds (P0 kept, P1 to N2 AMU, P2 to MG/PDSA).
    priorities: dict[str, float] = field(default_factory=lambda: {"P0": 0.08, "P1": 0.32, "P2": 0.60})
    withheld: float = 0.06
    #: Callers' patience before the first answer (None: they never give up).
    patience: Dist | None = field(default_factory=lambda: Dist(150.0, spread=0.9))
    #: Patience once qualified and waiting for a regulator: callers were told to hold on.
    patience_n2: Dist | None = field(default_factory=lambda: Dist(900.0, spread=0.7))
    #: Time an N1 desk takes to qualify, then talk time of a kept P0 and of each N2 role.
    qualify: Dist = field(default_factory=lambda: Dist(40.0, spread=0.4))
    handle: dict[str, Dist] = field(default_factory=lambda: {
        "n1": Dist(240.0), "n2-amu": Dist(300.0), "n2-mg": Dist(360.0), "pdsa": Dist(360.0),
        "specialist": Dist(420.0)})
    #: Share of N2 calls the regulator moves to the other N2 queue (AMU <-> MG, both ways).
    n2_transfer: float = 0.05
    ring: tuple[float, float] = (1.5, 4.0)  # desks answer after this many seconds (uniform)
    #: Staffing: the QS30 each queue is staffed for (Erlang C on the expected hourly load).
    staffing_target: dict[str, float] = field(default_factory=lambda: {"n1": 0.85, "n2-amu": 0.7, "n2-mg": 0.6,
                                                                       "pdsa": 0.6, "specialist": 0.5})
    #: The fewest desks per queue role at any hour (AMU: one ARM and one emergency doctor, always).
    minimum: dict[str, int] = field(default_factory=lambda: {"n1": 1, "n2-amu": 2})
    #: Chance per desk and hour of a 5 to 15 minute pause.
    pause_per_hour: float = 0.1
    #: Rates do not follow the day's shape (for the comparison with Erlang C).
    flat: bool = False


@dataclass(frozen=True)
class PlannedCall:
    at: float
    line: str
    number: str
    caller: str
    withheld: bool
    level: str
    patience: float | None
    patience_n2: float | None
    qualify_after: float
    #: Talk time by the desk that ends the call (N1 for P0, N2 otherwise), drawn up front.
    talk: float
    transfer_n2: bool


def is_weekend(plan: Plan, at: float) -> bool:
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(plan.site.timezone))
    return local.weekday() >= 5 or holiday_name(plan, local.date()) is not None


def hourly_rate(plan: Plan, profile: LoadProfile, kind: str, at: float) -> float:
    """Expected calls per hour on all lines of ``kind`` at instant ``at``."""
    local = datetime.fromtimestamp(at, UTC).astimezone(ZoneInfo(plan.site.timezone))
    weekend = is_weekend(plan, at)
    if profile.flat:
        shape = 1.0 / 24
    else:
        hours = WEEKEND_HOURS if weekend else WEEKDAY_HOURS
        shape = hours[local.hour] / sum(hours)
    factor = profile.weekend_factor.get(kind, 1.0) if weekend else 1.0
    return profile.calls_per_day * profile.surge * profile.line_share.get(kind, 0.0) * shape * factor


def lines_by_kind(plan: Plan) -> dict[str, list[tuple[str, str]]]:
    """{kind: [(line, first number)]} for the lines a caller can dial (partner lines excluded)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, line in plan.lines.items():
        kind = line.kind.value
        if kind != "partner" and line.numbers:
            out.setdefault(kind, []).append((name, line.numbers[0]))
    return out


def _choose(rng: random.Random, weights: dict[str, float]) -> str:
    roll, acc = rng.random() * sum(weights.values()), 0.0
    for key, weight in weights.items():
        acc += weight
        if roll < acc:
            return key
    return next(reversed(weights))


def plan_day(plan: Plan, profile: LoadProfile, start: float, duration: float, seed: int = 1) -> list[PlannedCall]:
    """Every call of the period, in time order: a non-homogeneous Poisson process per line kind
    (thinning, Lewis & Shedler 1979) with each caller's draws made up front."""
    rng = random.Random(seed)
    calls: list[PlannedCall] = []
    peak_shape = max(max(WEEKDAY_HOURS) / sum(WEEKDAY_HOURS), max(WEEKEND_HOURS) / sum(WEEKEND_HOURS))
    for kind, lines in lines_by_kind(plan).items():
        share = profile.line_share.get(kind, 0.0)
        if share <= 0:
            continue
        ceiling = profile.calls_per_day * profile.surge * share * max(profile.weekend_factor.values(), default=1.0) \
            * (1.0 / 24 if profile.flat else peak_shape)
        at = start
        while True:
            at += rng.expovariate(ceiling / 3600.0)
            if at >= start + duration:
                break
            if rng.random() * ceiling > hourly_rate(plan, profile, kind, at):
                continue
            line, number = lines[rng.randrange(len(lines))]
            withheld = kind in ("emergency", "care", "local") and rng.random() < profile.withheld
            level = _choose(rng, profile.priorities)
            calls.append(PlannedCall(
                at=at, line=line, number=number, caller=f"06{rng.randrange(10**8):08d}", withheld=withheld,
                level=level, patience=profile.patience.draw(rng) if profile.patience else None,
                patience_n2=profile.patience_n2.draw(rng) if profile.patience_n2 else None,
                qualify_after=profile.qualify.draw(rng), talk=0.0, transfer_n2=rng.random() < profile.n2_transfer))
    calls.sort(key=lambda c: c.at)
    # Talk times drawn in time order from their own stream, so adding a line kind keeps the rest.
    talk_rng = random.Random(seed * 7919 + 1)
    return [PlannedCall(**{**c.__dict__, "talk": talk_rng.random()}) for c in calls]


def talk_time(profile: LoadProfile, role: str, uniform: float) -> float:
    """The talk time of a call at a desk of ``role``, from the call's own uniform draw."""
    dist = profile.handle.get(role) or profile.handle["n1"]
    return dist.draw(random.Random(uniform))


def queue_loads(plan: Plan, profile: LoadProfile, at: float) -> dict[str, Queue]:
    """Expected calls per hour and handle time per queue for the hour containing ``at``."""
    loads: dict[str, float] = {}
    handles: dict[str, float] = {}

    def add(queue: str, calls: float, handle: float) -> None:
        total = loads.get(queue, 0.0) + calls
        handles[queue] = (handles.get(queue, 0.0) * loads.get(queue, 0.0) + handle * calls) / total if total else 0
        loads[queue] = total

    now = utcnow_from(at)
    n1_handle = profile.qualify.mean + profile.priorities.get("P0", 0) * profile.handle["n1"].mean
    for kind, lines in lines_by_kind(plan).items():
        per_line = hourly_rate(plan, profile, kind, at) / len(lines)
        for line, _number in lines:
            entry = plan.lines[line].queue
            role = plan.queues[entry].role.value
            if role == "n1":
                add(entry, per_line, n1_handle)
                for level in ("P1", "P2"):
                    target = qualification_target(plan, Priority(level), now)
                    if target:
                        target_role = plan.queues[target].role.value
                        add(target, per_line * profile.priorities.get(level, 0), profile.handle[target_role].mean)
            else:
                add(entry, per_line, profile.handle.get(role, profile.handle["n1"]).mean)
    return {q: Queue(loads[q], handles[q] or 1.0) for q in loads}


def staffing_for(plan: Plan, profile: LoadProfile, at: float) -> dict[str, int]:
    """Desks per queue for the hour containing ``at``: Erlang C for the queue's target, at least
    the plan-wide minimum for its role."""
    out: dict[str, int] = {}
    loads = queue_loads(plan, profile, at)
    for queue, spec in plan.queues.items():
        role = spec.role.value
        load = loads.get(queue)
        needed = 0
        if load is not None and load.calls_per_hour > 0:
            needed = agents_needed(load, profile.staffing_target.get(role, 0.5)).agents
        out[queue] = max(needed, profile.minimum.get(role, 0))
    return out


def local_midnight(plan: Plan, day: str) -> float:
    """Epoch of 00:00 local time on ``day`` (YYYY-MM-DD) at the site."""
    return datetime.fromisoformat(day).replace(tzinfo=ZoneInfo(plan.site.timezone)).timestamp()
