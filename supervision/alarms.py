"""The room's alarms and each queue's "service now", decided without I/O.

A room trusts an alarm panel only if it neither stays silent while callers drown nor flickers:

* :func:`conditions` says what is wrong *now*, from a :class:`RoomState` the adapter reads off
  the tracker, the figures and mutual aid (a pure function: same room, same alarms);
* :class:`AlarmBoard` turns those into alarms with a memory: raised at once, cleared only once
  the condition has stayed away for the plan's ``clear_after`` seconds (hysteresis), escalated
  when a warning becomes critical, acknowledged by a named supervisor — an acknowledgement lasts
  as long as the alarm, a new episode needs a new one. Every change is an :class:`AlarmEvent`
  the adapter journals.

Texts are in French: they are read in a French regulation room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sas_router.engine.core.mutual_aid import QueueLoad, firing
from sas_router.engine.plan.model import AlarmPolicy, OverflowRule, Role

#: How long failed switch-over dials count against a partner (seconds).
SWITCH_FAILURE_WINDOW = 300.0


class Level(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Service(StrEnum):
    """A queue's service now, whatever its QS30 of answered calls says."""

    OK = "ok"
    STRAINED = "strained"  # callers wait longer than the service level, or more than free desks
    DROWNING = "drowning"  # a caller over the long-wait limit, or callers and nobody to answer


@dataclass(frozen=True)
class QueueState:
    name: str
    role: Role
    label: str
    waiting: int
    longest_wait: float
    logged_in: int
    available: int
    #: Lines whose new calls land here (a queue that receives calls needs somebody logged in).
    lines: tuple[str, ...] = ()
    long_wait: int = 60
    service_level: int = 30
    overflow: OverflowRule | None = None
    #: "" while the overflow rule is on; who switched it off otherwise ("plan" when the plan did).
    overflow_off_by: str = ""


@dataclass(frozen=True)
class SwitchState:
    """A running switch-over and how its partner takes the calls."""

    line: str
    partner: str
    share: int
    recent_failures: int


@dataclass(frozen=True)
class RoomState:
    now: float
    queues: tuple[QueueState, ...]
    qs30_target: float
    #: Over the last 15 minutes: QS30 of answered calls (None: nothing answered), how many.
    qs30_15m: float | None = None
    answered_15m: int = 0
    #: Offered net of short abandons, and abandons, over the last 15 minutes.
    offered_15m: int = 0
    abandoned_15m: int = 0
    switchovers: tuple[SwitchState, ...] = ()
    #: Partners an overflow is being sent to now, with their state ("failing" ...).
    overflow_partners: tuple[tuple[str, str, str], ...] = ()  # (queue, partner, status)
    emergency_doctor: bool = True
    ami: str = "up"  # "up" | "down" | "stalled"
    journal_up: bool | None = None  # None: no journal configured
    journal_buffered: int = 0
    #: Calls whose recording failed (missing, cut short, never started) in the last 15 minutes.
    recording_failures: tuple[str, ...] = ()
    #: Free space where the recordings are (None: not reachable from here), and its alarm floor.
    recordings_free_mb: float | None = None
    recordings_free_alarm_mb: int = 2048


@dataclass(frozen=True)
class Condition:
    key: str
    level: Level
    text: str
    #: The queue or line it concerns ("" for the whole room): the dashboard colours that tile.
    subject: str = ""


def duration(seconds: float) -> str:
    """``2 min 28 s`` as a room reads it."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, rest = divmod(whole, 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def service(queue: QueueState) -> Service:
    if not queue.waiting:
        return Service.OK
    if queue.longest_wait >= queue.long_wait or queue.logged_in == 0:
        return Service.DROWNING
    if queue.longest_wait >= queue.service_level or queue.waiting > queue.available:
        return Service.STRAINED
    return Service.OK


def _overflow_would_fire(rule: OverflowRule, queue: QueueState) -> list[str]:
    """The rule's conditions that hold (decided by the governor's own :func:`firing`), in French.
    How long every desk has been busy is the governor's memory, not the room's: not judged here."""
    load = QueueLoad(queue.name, queue.role.value, queue.waiting, queue.longest_wait, queue.logged_in,
                     queue.available)
    out = []
    for f in firing(rule, load, None, 0.0):
        if f.kind == "longest-wait":
            out.append(f"attente {duration(f.value)} > {f.limit:.0f} s")
        elif f.kind == "callers-waiting":
            out.append(f"{f.value:.0f} en attente > {f.limit:.0f}")
        elif f.kind == "no-agent":
            out.append("personne de connecté")
    return out


def _queue_conditions(queue: QueueState) -> list[Condition]:
    out = []
    name = queue.name
    if queue.waiting and queue.longest_wait >= queue.long_wait:
        out.append(Condition(f"long-wait:{name}", Level.CRITICAL,
                             f"{name} : un appelant attend depuis {duration(queue.longest_wait)} "
                             f"(seuil {duration(queue.long_wait)}), {queue.waiting} en attente", name))
    if queue.logged_in == 0 and (queue.waiting or queue.lines):
        what = f"{queue.waiting} en attente" if queue.waiting else f"reçoit les appels de {', '.join(queue.lines)}"
        out.append(Condition(f"nobody:{name}", Level.CRITICAL, f"{name} : personne de connecté ({what})", name))
    if queue.overflow is not None and queue.overflow_off_by not in ("", "plan"):
        reasons = _overflow_would_fire(queue.overflow, queue)
        if reasons:
            out.append(Condition(f"overflow-off:{name}", Level.WARNING,
                                 f"{name} : débordement coupé par {queue.overflow_off_by} alors que sa règle "
                                 f"s'appliquerait ({', '.join(reasons)})", name))
    return out


def conditions(room: RoomState, policy: AlarmPolicy) -> list[Condition]:
    """Everything wrong in the room now, most serious first."""
    out: list[Condition] = []
    for queue in room.queues:
        out += _queue_conditions(queue)
    for switch in room.switchovers:
        if switch.recent_failures:
            out.append(Condition(f"switchover-failing:{switch.line}", Level.CRITICAL,
                                 f"Bascule {switch.line} → {switch.partner} en échec : {switch.recent_failures} "
                                 f"appel(s) revenu(s) en {int(SWITCH_FAILURE_WINDOW // 60)} min, servis ici",
                                 switch.line))
    for source, partner, status in room.overflow_partners:
        if status == "failing":
            out.append(Condition(f"overflow-failing:{source}:{partner}", Level.CRITICAL,
                                 f"{source} : le débordement vers {partner} échoue, les appelants reviennent "
                                 "en tête de file", source))
    if room.offered_15m >= policy.abandon_min_offered:
        rate = room.abandoned_15m / room.offered_15m
        if rate > policy.abandon_rate:
            out.append(Condition("abandon-rate", Level.WARNING,
                                 f"Abandons sur 15 min : {rate:.0%} ({room.abandoned_15m} sur {room.offered_15m} "
                                 f"appels, seuil {policy.abandon_rate:.0%})"))
    if room.qs30_15m is not None and room.qs30_15m < room.qs30_target:
        out.append(Condition("qs30", Level.WARNING,
                             f"QS30 sur 15 min : {room.qs30_15m:.0%} (objectif {room.qs30_target:.0%}, "
                             f"{room.answered_15m} décrochés)"))
    if not room.emergency_doctor:
        out.append(Condition("no-emergency-doctor", Level.CRITICAL, "Aucun médecin urgentiste (MRU/MRH) connecté"))
    if room.ami == "down":
        out.append(Condition("switch-link", Level.CRITICAL, "Lien AMI avec le commutateur coupé : "
                             "les appels passent, le tableau ne les voit plus"))
    elif room.ami == "stalled":
        out.append(Condition("switch-link", Level.CRITICAL, "Le commutateur ne répond plus (AMI figé)"))
    if room.recording_failures:
        count = len(room.recording_failures)
        out.append(Condition("recording", Level.CRITICAL,
                             f"Enregistreur : {count} appel(s) non enregistré(s) ou coupé(s) en 15 min "
                             f"(dernier {room.recording_failures[-1]})"))
    if room.recordings_free_mb is not None and room.recordings_free_mb < room.recordings_free_alarm_mb:
        out.append(Condition("recording-disk", Level.CRITICAL,
                             f"Disque des enregistrements : {room.recordings_free_mb:.0f} Mo libres "
                             f"(seuil {room.recordings_free_alarm_mb} Mo)"))
    if room.journal_up is False:
        out.append(Condition("journal", Level.WARNING, f"Base du journal injoignable ({room.journal_buffered} "
                                                       "lignes en attente d'écriture)"))
    return sorted(out, key=lambda c: c.level != Level.CRITICAL)


@dataclass
class Alarm:
    key: str
    level: Level
    text: str
    subject: str
    raised_at: float
    seen_at: float
    acknowledged_by: str = ""
    acknowledged_at: float | None = None

    def public(self, now: float) -> dict[str, Any]:
        return {"key": self.key, "level": self.level.value, "text": self.text, "subject": self.subject,
                "raised_at": self.raised_at, "acknowledged_by": self.acknowledged_by or None,
                "acknowledged_at": self.acknowledged_at, "clearing": self.seen_at < now}


@dataclass(frozen=True)
class AlarmEvent:
    kind: str  # "raised" | "escalated" | "cleared" | "acknowledged"
    at: float
    key: str
    level: Level
    text: str
    by: str = ""

    def public(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at, "key": self.key, "level": self.level.value, "text": self.text,
                "by": self.by}


@dataclass
class AlarmBoard:
    clear_after: float = 30.0
    alarms: dict[str, Alarm] = field(default_factory=dict)

    def update(self, found: list[Condition], now: float) -> list[AlarmEvent]:
        events = []
        for condition in found:
            alarm = self.alarms.get(condition.key)
            if alarm is None:
                self.alarms[condition.key] = Alarm(condition.key, condition.level, condition.text, condition.subject,
                                                   now, now)
                events.append(AlarmEvent("raised", now, condition.key, condition.level, condition.text))
                continue
            if condition.level == Level.CRITICAL and alarm.level == Level.WARNING:
                alarm.level = Level.CRITICAL
                alarm.acknowledged_by, alarm.acknowledged_at = "", None  # worse than what was acknowledged
                events.append(AlarmEvent("escalated", now, condition.key, condition.level, condition.text))
            alarm.text, alarm.seen_at = condition.text, now
        present = {c.key for c in found}
        for key, alarm in list(self.alarms.items()):
            if key not in present and now - alarm.seen_at >= self.clear_after:
                del self.alarms[key]
                events.append(AlarmEvent("cleared", now, key, alarm.level, alarm.text))
        return events

    def acknowledge(self, key: str, by: str, now: float) -> AlarmEvent:
        alarm = self.alarms.get(key)
        if alarm is None:
            raise LookupError(f"no alarm {key!r} is raised")
        alarm.acknowledged_by, alarm.acknowledged_at = by, now
        return AlarmEvent("acknowledged", now, key, alarm.level, alarm.text, by)

    def active(self, now: float) -> list[dict[str, Any]]:
        ordered = sorted(self.alarms.values(), key=lambda a: (a.level != Level.CRITICAL, a.raised_at))
        return [alarm.public(now) for alarm in ordered]

    def worst_for(self, subject: str) -> Level | None:
        levels = {a.level for a in self.alarms.values() if a.subject == subject}
        return Level.CRITICAL if Level.CRITICAL in levels else (Level.WARNING if levels else None)
