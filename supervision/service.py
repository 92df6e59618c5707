"""Supervision wired to a running engine: figures, journal, Prometheus, MQTT and the dashboard.

Everything here listens to the engine's notices and never acts on calls: a slow database, a
lost broker or a stalled browser cannot delay a caller. The figures come from the pure core
(:mod:`supervision.figures`); this module only moves them to their outputs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from sas_router.engine import VERSION
from sas_router.engine.aio import cancel_and_wait, cancel_requested
from sas_router.engine.ami import LATENCY_BUCKETS
from sas_router.engine.api import Reasoned
from sas_router.engine.core.calls import AgentStatus
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.supervision.alarms import (
    SWITCH_FAILURE_WINDOW,
    AlarmBoard,
    AlarmEvent,
    QueueState,
    RoomState,
    Service,
    SwitchState,
    conditions,
    service,
)
from sas_router.supervision.figures import BUCKET, WAIT_BUCKETS, Figures, qs30_now, ratios
from sas_router.supervision.journal import CLOSE_UNSEEN, Journal, load_calls
from sas_router.supervision.models import AuditRow
from sas_router.supervision.recordings import Recorder
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sas_router.engine.api import Client, ControlApi
    from sas_router.engine.core.tracker import Tracker
    from sas_router.engine.mutual_aid import AidSnapshot
    from sas_router.engine.plan import Plan


class LinkHealth(Protocol):
    """The AMI link as supervision reports it."""

    @property
    def connected(self) -> bool: ...

    @property
    def latencies(self) -> list[float]: ...

    @property
    def latency_counts(self) -> list[int]: ...

    @property
    def latency_sum(self) -> float: ...


class Publisher(Protocol):
    @property
    def connected(self) -> bool: ...

    async def publish(self, leaf: str, payload: dict[str, Any], *, retain: bool = False) -> bool: ...


class AidReader(Protocol):
    def snapshot(self, now: float, *, failures_within: float = 300.0) -> AidSnapshot: ...

    def view(self) -> dict[str, Any]: ...


class SupervisedEngine(Protocol):
    """What supervision reads of the engine — the plan and clock, the tracker, its views, the
    link's health, mutual aid's snapshot, a publisher — and the two hooks it plugs into."""

    listeners: list[Callable[[Notice], None]]
    qs30_source: Callable[[], float | None] | None
    roles: dict[str, str]

    @property
    def plan(self) -> Plan: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def tracker(self) -> Tracker: ...

    @property
    def link(self) -> LinkHealth: ...

    @property
    def bus(self) -> Publisher | None: ...

    @property
    def mutual_aid(self) -> AidReader: ...

    def queues_view(self) -> list[dict[str, Any]]: ...

    def agents_view(self) -> list[dict[str, Any]]: ...

log = structlog.get_logger("supervision")
STATIC = Path(__file__).resolve().parent / "static"
#: Desk roles as the annex-3 table 3 names them (login ``role``); others are reported as given.
ROLE_LABELS = {"arm-n1": "ARM N1 (item 9)", "arm-amu": "ARM AMU (item 10)", "osnp": "OSNP (item 11)",
               "mrg": "GP regulator (item 12)", "mrh": "Hospital regulator (item 13)",
               "mru": "Emergency doctor (item 13)"}
EMERGENCY_DOCTOR_ROLES = {"mru", "mrh"}
#: States a logged-in desk is in, exactly one at a time (Prometheus ``sas_agents``).
AGENT_STATES = ("available", "ringing", "talking", "wrap-up", "paused")
SNAPSHOT_VERSION = 2  # 2: agents by exclusive state (no "logged" or "busy" lump)
#: What an audit notice carries into the journal (``at`` first).
AUDIT_FIELDS = ("at", "client", "role", "action", "call_id", "target", "status", "result", "reason")
END_OF_STREAM = ""  # the sentinel that ends a dashboard's event stream (real messages are never empty)


class Supervision:
    def __init__(self, engine: SupervisedEngine, *, journal: Journal | None = None,
                 snapshot_every: float | None = BUCKET, push_every: float = 0.25,
                 recordings_path: Path | None = None) -> None:
        """``snapshot_every`` None: whoever owns the clock calls :meth:`publish_snapshot` (the load
        simulator's fast-forward, where 30 s of switch time pass in milliseconds)."""
        self.figures = Figures(engine.plan)
        self.alarm_board = AlarmBoard(clear_after=engine.plan.alarms.clear_after)
        self.journal = journal
        self.recorder = Recorder(engine.plan, recordings_path, journal, clock=lambda: self.engine.clock())
        self.snapshot_every = snapshot_every
        self.push_every = push_every
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.live_events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
        self.loop_lag = 0.0
        self.snapshots_published = 0
        self._dirty = True
        self._tasks: list[asyncio.Task[None]] = []
        self._sessions: dict[str, float] = {}  # interface -> login time (journal agent sessions)
        self._api: ControlApi | None = None  # set by install(): its memory of requests backs /api/audit
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        # The process itself (memory, CPU, open files, start time) and the Python it runs on.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.engine = engine
        self.attach(engine)

    def attach(self, engine: SupervisedEngine) -> None:
        """Follow this engine (again, after a restart): its notices and its QS30 for partners."""
        self.engine = engine
        self.plan = engine.plan
        self.log = log.bind(site=engine.plan.site.id)
        if self.on_notice not in engine.listeners:
            engine.listeners.append(self.on_notice)
        engine.qs30_source = lambda: qs30_now(self.figures, self.engine.clock())

    def role_of(self, interface: str) -> str:
        agent = self.engine.tracker.agents.get(interface)
        return (agent.role if agent and agent.role else "") or self.engine.roles.get(interface, "")

    # --- notices --------------------------------------------------------------------------------

    def on_notice(self, notice: Notice) -> None:
        if notice.kind == NoticeKind.PLAN_RELOADED:
            self.plan = self.engine.plan
            self.figures.adopt_plan(self.plan)
            self.alarm_board.clear_after = self.plan.alarms.clear_after
            self.recorder.plan = self.plan
        call = self.engine.tracker.call_any(notice.uniqueid) if notice.uniqueid else None
        self.figures.observe(notice, call, self.role_of)
        self._dirty = True
        if notice.kind == NoticeKind.CALL_ENDED and call is not None:
            self.recorder.call_ended(call)
        if self.journal is not None:
            self._journal(notice, call)
        self._live(notice, call)

    def _journal(self, notice: Notice, call: Any) -> None:
        journal = self.journal
        assert journal is not None
        data = notice.data
        if call is not None and notice.kind in (NoticeKind.QUEUE_LEFT, NoticeKind.AGENT_CONNECTED,
                                                NoticeKind.CALL_ENDED, NoticeKind.AGENT_LEG_ENDED,
                                                NoticeKind.CALL_ADOPTED):
            journal.add_call(call, self.role_of)  # at the answer too: a crash then loses no answered call
        elif notice.kind == NoticeKind.RESYNCHRONISED:
            journal.add(CLOSE_UNSEEN, {"at": notice.at, "live": list(data.get("live", []))})
        elif call is not None and notice.kind == NoticeKind.QUALIFIED:
            journal.add_call(call, self.role_of)
            journal.add("qualifications", {"call_id": call.call_id or f"{self.plan.site.id}-{call.uniqueid}",
                                           "at": notice.at, "level": data["level"], "by": data["by"],
                                           "reason": data.get("reason", ""),
                                           "medical_advice": bool(data.get("medical_advice"))})
        elif notice.kind.is_mutual_aid:
            journal.add("mutual_aid_journal", {"site": self.plan.site.id, "at": notice.at, "kind": notice.kind,
                                               "subject": data.get("subject", ""),
                                               "partner": data.get("partner") or "", "by": data.get("by", ""),
                                               "reason": data.get("reason", ""), "share": data.get("share")})
        elif notice.kind == NoticeKind.AUDIT:
            journal.add("audit_trail", {"site": self.plan.site.id, **{k: data[k] for k in AUDIT_FIELDS}})
        elif notice.kind == NoticeKind.AGENT_CHANGED:
            self._agent_session(str(data.get("interface", "")), notice.at, data.get("status") == "logged-out")

    def _agent_session(self, interface: str, at: float, gone: bool) -> None:
        assert self.journal is not None
        agent = self.engine.tracker.agents.get(interface)
        if not gone and agent is not None and interface not in self._sessions:
            self._sessions[interface] = agent.logged_in_at or at
            self.journal.add("agent_sessions", {"site": self.plan.site.id, "interface": interface,
                                                "name": agent.name, "role": self.role_of(interface),
                                                "login_at": self._sessions[interface], "logout_at": None})
        elif gone and agent is None and interface in self._sessions:
            login = self._sessions.pop(interface)
            self.journal.add("agent_sessions", {"site": self.plan.site.id, "interface": interface, "name": "",
                                                "role": "", "login_at": login, "logout_at": at})

    def _live(self, notice: Notice, call: Any) -> None:
        """Call and agent events for MQTT subscribers (not retained; dropped if nobody drains them)."""
        if notice.kind == NoticeKind.AGENT_CHANGED:
            leaf, payload = "events/agent", {"kind": notice.kind, "at": notice.at, **notice.data}
        elif call is not None and notice.kind in (NoticeKind.QUEUE_JOINED, NoticeKind.QUEUE_LEFT,
                                                  NoticeKind.AGENT_CONNECTED, NoticeKind.CALL_ENDED,
                                                  NoticeKind.QUALIFIED):
            leaf = "events/call"
            payload = {"kind": notice.kind, "at": notice.at, "call_id": call.call_id or call.uniqueid,
                       "line": call.line, "origin": call.origin, **{k: v for k, v in notice.data.items()
                                                                     if k not in ("reason", "by")}}
        else:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.live_events.put_nowait((leaf, payload))

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.journal is not None:
            await self.journal.start()
            if self.journal.up:
                await self.restore()
        loops = [self._push_loop(), self._lag_loop(), self._live_loop(), self._alarm_loop(), self._retention_loop()]
        if self.snapshot_every is not None:
            loops.append(self._snapshot_loop())
        for coro in loops:
            self._tasks.append(asyncio.ensure_future(coro))

    async def restore(self) -> int:
        """Count again this month's finished calls from the journal, so a restarted engine's
        figures (today, the month, QS30) go on where they stopped. Calls still live at the restart
        are adopted by the tracker and counted from then on."""
        assert self.journal is not None
        local = self.figures.local(self.engine.clock())
        since = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
        try:
            calls, roles = await asyncio.to_thread(load_calls, self.journal.db, self.plan.site.id, since)
        except SQLAlchemyError as exc:
            self.log.error("figures not restored from the journal", error=str(exc).splitlines()[0])
            return 0
        for call in calls:
            self.figures.replay(call, lambda interface: roles.get(interface, ""))
        self.log.info("figures restored from the journal", calls=len(calls), since=since)
        return len(calls)

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks, what="supervision")
        self._tasks.clear()
        await self.recorder.stop()
        if self.journal is not None:
            await self.journal.stop()

    async def _snapshot_loop(self) -> None:
        """At every 30-second boundary: a trend point, and the retained MQTT snapshot."""
        assert self.snapshot_every is not None
        while not cancel_requested():
            now = self.engine.clock()
            await asyncio.sleep(self.snapshot_every - (now % self.snapshot_every) + 0.01)
            await self.publish_snapshot()

    async def publish_snapshot(self) -> dict[str, Any]:
        now = self.engine.clock()
        queues = self.engine.queues_view()
        self.figures.sample(now, sum(q["waiting"] for q in queues), max((q["longest_wait"] for q in queues),
                                                                        default=0.0), self.agents_by_state())
        snapshot = self.snapshot(now)
        bus = self.engine.bus
        if bus is not None and await bus.publish("supervision", snapshot, retain=True):
            self.snapshots_published += 1
        return snapshot

    async def _alarm_loop(self) -> None:
        """Alarms are looked at every second whoever watches: raised, cleared and journaled even
        with no dashboard open."""
        while not cancel_requested():
            await asyncio.sleep(1.0)
            self.check_alarms(self.engine.clock())

    async def _retention_loop(self) -> None:
        """Once an hour (and at start): recordings past the plan's retention go, held ones stay."""
        while not cancel_requested():
            try:
                await self.recorder.expire(self.engine.clock())
            except SQLAlchemyError as exc:
                self.log.error("recording retention not applied (journal away); next hour", error=str(exc)[:200])
            await asyncio.sleep(3600)

    async def _live_loop(self) -> None:
        while not cancel_requested():
            leaf, payload = await self.live_events.get()
            bus = self.engine.bus
            if bus is not None:
                await bus.publish(leaf, payload)

    async def _lag_loop(self) -> None:
        """How late the event loop runs a timer: the engine's own load, as supervisors see it."""
        worst, window_start = 0.0, time.monotonic()
        while True:
            expected = time.monotonic() + 0.5
            await asyncio.sleep(0.5)
            worst = max(worst, time.monotonic() - expected)
            if time.monotonic() - window_start >= 30:
                self.loop_lag, worst, window_start = worst, 0.0, time.monotonic()
            else:
                self.loop_lag = max(self.loop_lag, worst)

    async def _push_loop(self) -> None:
        last = 0.0
        while True:
            await asyncio.sleep(self.push_every)
            if not self.subscribers or (not self._dirty and time.monotonic() - last < 2.0):
                continue
            self._dirty, last = False, time.monotonic()
            message = "event: state\ndata: " + json.dumps(self.dashboard_state(), separators=(",", ":")) + "\n\n"
            for queue in list(self.subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(message)

    # --- views ----------------------------------------------------------------------------------

    def agents_by_state(self) -> dict[str, dict[str, int]]:
        """{role: {state: desks}} for the desks logged in now; each desk in exactly one state, so
        a sum over states counts every desk once (the logged-in total is apart)."""
        out: dict[str, dict[str, int]] = {}
        now = self.engine.clock()
        for agent in self.engine.tracker.agents.values():
            state = agent.state(now)
            if state == AgentStatus.UNAVAILABLE:
                continue
            counts = out.setdefault(self.role_of(agent.interface) or "unknown", dict.fromkeys(AGENT_STATES, 0))
            counts[state.value] += 1
        return out

    def infrastructure(self) -> dict[str, Any]:
        link = self.engine.link
        recent = sorted(link.latencies[-500:])
        return {"ami": "up" if link.connected else "down", "ami_events": self.engine.tracker.events_seen,
                "ami_events_per_s": self._events_rate(),
                "ami_latency_p50": recent[len(recent) // 2] if recent else None,
                "ami_latency_p99": recent[int(len(recent) * 0.99)] if recent else None,
                "live_calls": len(self.engine.tracker.calls), "loop_lag": round(self.loop_lag, 4),
                "mqtt": "off" if self.engine.bus is None else "up" if self.engine.bus.connected else "down",
                "journal": self.journal.status() if self.journal is not None else None}

    _rate_mark: tuple[float, int] | None = None

    def _events_rate(self) -> float | None:
        now, seen = time.monotonic(), self.engine.tracker.events_seen
        mark = self._rate_mark
        if mark is None or now - mark[0] > 10:
            self._rate_mark = (now, seen)
        if mark is None or now - mark[0] < 0.5:
            return None
        return round((seen - mark[1]) / (now - mark[0]), 1)

    def snapshot(self, now: float) -> dict[str, Any]:
        """The retained MQTT snapshot (``<prefix>/<site>/supervision``)."""
        figures = self.figures
        start = (now // BUCKET) * BUCKET
        return {
            "version": SNAPSHOT_VERSION, "site": self.plan.site.id, "at": round(now, 3),
            "interval": {"from": start - BUCKET, "to": start},
            "last_30s": figures.summary("last_30s", now),
            "windows": {name: ratios(figures.window(name, now), "sas").public()
                        for name in ("15m", "hour", "today", "month")},
            "today": figures.summary("today", now),
            "queues": self.engine.queues_view(),
            "agents": self.agents_by_state(),
            "calls_per_hour": figures.calls_per_hour(now),
            "infrastructure": self.infrastructure(),
            "alarms": self.alarms(now),
        }

    def room_state(self, now: float) -> RoomState:
        """What the alarm policy looks at, read off the tracker, the figures and mutual aid."""
        plan, aid = self.plan, self.engine.mutual_aid.snapshot(now, failures_within=SWITCH_FAILURE_WINDOW)
        lines_into: dict[str, list[str]] = {}
        for line_id, line in plan.lines.items():
            lines_into.setdefault(line.queue, []).append(line_id)
        queues = []
        for view in self.engine.queues_view():
            spec = plan.queues[view["queue"]]
            rule = aid.overflow.get(view["queue"])
            queues.append(QueueState(
                name=view["queue"], role=spec.role, label=spec.label, waiting=view["waiting"],
                longest_wait=view["longest_wait"], logged_in=view["logged_in"], available=view["available"],
                lines=tuple(lines_into.get(view["queue"], ())), long_wait=plan.alarms.long_wait_for(spec),
                service_level=spec.service_level, overflow=spec.overflow,
                overflow_off_by=rule[1] if rule is not None else ""))
        last_15m = self.figures.window("15m", now)
        sas = ratios(last_15m, "sas")
        switches = tuple(SwitchState(line, partner, share, failures)
                         for line, (partner, share, failures) in aid.switchovers.items())
        sending = tuple((queue, partner, aid.partners.get(partner, "silent"))
                        for queue, (active, _) in aid.overflow.items() if active
                        for partner in aid.overflow_partners.get(queue, []))
        roles = {self.role_of(a.interface) for a in self.engine.tracker.agents.values()
                 if a.status != AgentStatus.UNAVAILABLE}
        link = self.engine.link
        free = self.recorder.free_bytes() if plan.recording.enabled else None
        return RoomState(
            now=now, queues=tuple(queues), qs30_target=plan.site.qs30_target, qs30_15m=sas.qs30,
            answered_15m=sas.answered,
            offered_15m=int(last_15m[("sas", "", "offered")] - last_15m[("sas", "", "short_abandoned")]),
            abandoned_15m=int(last_15m[("sas", "", "abandoned")]), switchovers=switches, overflow_partners=sending,
            emergency_doctor=bool(roles & EMERGENCY_DOCTOR_ROLES),
            ami="up" if link.connected else "stalled" if getattr(link, "stalled", False) else "down",
            journal_up=None if self.journal is None else self.journal.up,
            journal_buffered=0 if self.journal is None else len(self.journal.buffer),
            recording_failures=tuple(self.recorder.failures_since(now - 900)),
            recordings_free_mb=None if free is None else free / 1_000_000,
            recordings_free_alarm_mb=plan.recording.disk_alarm_free_mb)

    def check_alarms(self, now: float, room: RoomState | None = None) -> list[AlarmEvent]:
        """Look at the room now (``room``: already read by the caller); raise, escalate and clear
        alarms, and record each change."""
        room = room if room is not None else self.room_state(now)
        events = self.alarm_board.update(conditions(room, self.plan.alarms), now)
        for event in events:
            self._alarm_event(event)
        return events

    def _alarm_event(self, event: AlarmEvent) -> None:
        self._dirty = True
        (self.log.error if event.level == "critical" and event.kind in ("raised", "escalated")
         else self.log.warning)(f"alarm {event.kind}", alarm=event.key, level=event.level.value, text=event.text,
                                by=event.by or None)
        if self.journal is not None:
            self.journal.add("alarm_journal", {"site": self.plan.site.id, **event.public()})
        with contextlib.suppress(asyncio.QueueFull):
            self.live_events.put_nowait(("events/alarm", event.public()))

    def alarms(self, now: float) -> list[dict[str, Any]]:
        """The alarms raised now (critical first, oldest first), each with its acknowledgement."""
        self.check_alarms(now)
        return self.alarm_board.active(now)

    def acknowledge(self, key: str, by: str) -> dict[str, Any]:
        now = self.engine.clock()
        event = self.alarm_board.acknowledge(key, by, now)
        self._alarm_event(event)
        return next(a for a in self.alarm_board.active(now) if a["key"] == key)

    def dashboard_state(self) -> dict[str, Any]:
        """What the dashboard shows. Interval figures are the last *finished* 30 s (annex 3's
        interval), never the one still filling, so a tile does not flicker within its interval."""
        now = self.engine.clock()
        figures = self.figures
        room = self.room_state(now)  # read once: for the alarms and for the tiles' service state
        self.check_alarms(now, room)
        alarms = self.alarm_board.active(now)
        windows = {name: figures.window(name, now) for name in ("last_30s", "15m", "hour", "today")}
        states = {q.name: q for q in room.queues}
        queues = []
        for view in self.engine.queues_view():
            name = view["queue"]
            members = [a for a in self.engine.tracker.agents.values() if name in a.memberships
                       and a.state(now) == AgentStatus.AVAILABLE]
            by_role: dict[str, int] = {}
            for agent in members:
                role = self.role_of(agent.interface) or "unknown"
                by_role[role] = by_role.get(role, 0) + 1
            worst = self.alarm_board.worst_for(name)
            queues.append({**view, "available_by_role": by_role, "service": service(states[name]).value,
                           "alarm": worst.value if worst else None, "long_wait_alarm": states[name].long_wait,
                           **{f"qs30_{w}": ratios(totals, "queue", name).qs30 for w, totals in windows.items()},
                           "figures_15m": _context(windows["15m"], "queue", name)})
        waiting = [{"call_id": c.call_id or c.uniqueid, "line": c.line, "queue": c.current_queue,
                    "priority": c.priority, "band": self.plan.band_of(c.line),
                    "wait": round(now - c.waiting_visit.joined_at, 1),
                    "origin": c.origin if c.origin != self.plan.site.id else "", "inbound": c.inbound,
                    "caller": c.caller_num, "repeat": c.repeat}
                   for c in self.engine.tracker.waiting()]
        drowning = any(q["service"] == Service.DROWNING for q in queues)
        return {
            "site": self.plan.site.id, "name": self.plan.site.name, "at": now, "target": self.plan.site.qs30_target,
            "timezone": self.plan.site.timezone,
            "interval": {"from": (now // BUCKET - 1) * BUCKET, "to": (now // BUCKET) * BUCKET},
            "sas": {w: _context(totals, "sas") for w, totals in windows.items()},
            "service": Service.DROWNING.value if drowning else max(
                (q["service"] for q in queues), key=[s.value for s in Service].index, default=Service.OK.value),
            "by_line": {line: _context(windows["15m"], "line", line) for line in self.plan.lines},
            "by_level": {level: _context(windows["15m"], "level", level) for level in ("n1", "n2")},
            "queues": queues, "waiting": waiting, "agents": self.engine.agents_view(),
            "trend": list(self.figures.samples)[-480:], "alarms": alarms,
            "mutual_aid": self.engine.mutual_aid.view(), "infrastructure": self.infrastructure(),
            "lines": list(self.plan.lines), "partners": list(self.plan.partners),
        }

    # --- HTTP -----------------------------------------------------------------------------------

    def install(self, api: ControlApi) -> None:
        """Add the supervision routes to the control API (before it is served)."""
        api.app.router.add_get("/metrics", self.metrics)
        api.app.router.add_get("/dashboard", self.dashboard)
        api.app.router.add_get("/", self.dashboard)
        api.route("GET", "/api/supervision", "viewer", self.api_state, "Dashboard state: queues, waiting calls, "
                  "agents, QS30 windows, trend, alarms")
        api.route("GET", "/api/supervision/figures/{window}", "viewer", self.api_figures,
                  "QS30, QS60 and counts for a window: 30s, last_30s, 15m, hour, today, month")
        api.route("GET", "/api/stream", "viewer", self.stream, "Server-sent events: the dashboard state, live")
        api.route("GET", "/api/alarms", "viewer", self.api_alarms, "Alarms raised now, critical first, with "
                  "their acknowledgement")
        api.route("POST", "/api/alarms/{key}/ack", "supervisor", self.api_acknowledge,
                  "Acknowledge an alarm (it stays until its condition has cleared; a new episode needs a new one)")
        api.route("GET", "/api/recordings", "desk", self.api_recordings,
                  "Recordings (supervisors and the plan's listeners): ?call=, ?number=, ?line=, ?since=, ?until=")
        api.route("GET", "/api/recordings/{call}", "desk", self.api_recording, "One call's recording")
        api.route("GET", "/api/recordings/{call}/audio", "desk", self.api_recording_audio,
                  "Hear (or ?download=1) a call's recording; every listen is in the audit trail")
        api.route("POST", "/api/recordings/{call}/hold", "supervisor", self.api_recording_hold,
                  "Place a legal hold: the recording outlives its retention until released")
        api.route("POST", "/api/recordings/{call}/release", "supervisor", self.api_recording_release,
                  "Release a legal hold")
        api.route("GET", "/api/audit", "supervisor", self.api_audit,
                  "The audit trail: control requests, newest first (?call=, ?client=, ?since=epoch, ?limit=)")
        self._api = api
        api.app.on_shutdown.append(self._end_streams)

    async def api_alarms(self, request: web.Request, client: Client) -> Any:
        return self.alarms(self.engine.clock())

    async def api_acknowledge(self, request: web.Request, client: Client) -> Any:
        return self.acknowledge(request.match_info["key"], client.name)

    def _may_listen(self, client: Client) -> None:
        """Supervisors and the clients the plan names (the medical lead): desks and screens never."""
        if client.role in ("supervisor", "admin") or (client.role == "desk"
                                                      and client.name in self.plan.recording.listeners):
            return
        raise web.HTTPForbidden(text=json.dumps({"error": f"{client.name} may not hear recordings: supervisors "
                                                          "and the plan's recording.listeners may"}),
                                content_type="application/json")

    async def api_recordings(self, request: web.Request, client: Client) -> Any:
        self._may_listen(client)
        query = request.query
        try:
            since = float(query.get("since", "0"))
            until = float(query["until"]) if "until" in query else None
            limit = max(1, min(int(query.get("limit", "200")), 1000))
        except ValueError:
            return web.json_response({"error": "since/until are epoch seconds and limit a whole number"}, status=400)
        found = await self.recorder.find(call=query.get("call", ""), number=query.get("number", ""),
                                         line=query.get("line", ""), since=since, until=until, limit=limit)
        return [entry.public() for entry in found]

    async def api_recording(self, request: web.Request, client: Client) -> Any:
        self._may_listen(client)
        entry = await self.recorder.one(request.match_info["call"])
        if entry is None:
            raise LookupError(f"no recording for call {request.match_info['call']}")
        return entry.public()

    async def api_recording_audio(self, request: web.Request, client: Client) -> web.StreamResponse:
        assert self._api is not None
        download = request.query.get("download") == "1"
        action = "download" if download else "listen"
        try:
            self._may_listen(client)
        except web.HTTPForbidden:
            self._api.audit(request, client, f"{action} recording", 403, "refused: not a listener")
            raise
        entry = await self.recorder.one(request.match_info["call"])
        path = self.recorder.path_of(entry.file) if entry is not None and entry.deleted_at is None else None
        if entry is None or path is None or not path.is_file():
            self._api.audit(request, client, f"{action} recording", 404, "no recording file")
            raise LookupError(f"no recording file for call {request.match_info['call']}")
        self._api.audit(request, client, f"{action} recording", 200, f"{entry.file} sha256={entry.sha256[:16]}")
        headers = {"Cache-Control": "no-store"}
        if download:
            headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return web.FileResponse(path, headers=headers)

    async def api_recording_hold(self, request: web.Request, client: Client) -> Any:
        assert self._api is not None
        body = await self._api.read_body(request, Reasoned)
        return (await self.recorder.hold(request.match_info["call"], by=client.name, reason=body.reason,
                                         held=True)).public()

    async def api_recording_release(self, request: web.Request, client: Client) -> Any:
        assert self._api is not None
        body = await self._api.read_body(request, Reasoned)
        return (await self.recorder.hold(request.match_info["call"], by=client.name, reason=body.reason,
                                         held=False)).public()

    async def api_audit(self, request: web.Request, client: Any) -> Any:
        """From the journal when there is one (every request since the journal began), else the
        engine's memory of the last requests."""
        query = request.query
        try:
            since = float(query.get("since", "0"))
            limit = max(1, min(int(query.get("limit", "200")), 1000))
        except ValueError:
            return web.json_response({"error": "since is epoch seconds and limit a whole number"}, status=400)
        call, who = query.get("call", ""), query.get("client", "")
        if self.journal is not None and await self.journal.flush():
            return await asyncio.to_thread(self._audit_rows, since, limit, call, who)
        remembered = self._api.audit_log if self._api is not None else []
        entries = [e.public() for e in reversed(remembered)
                   if e.at >= since and (not call or e.call_id == call) and (not who or e.client == who)]
        return entries[:limit]

    def _audit_rows(self, since: float, limit: int, call: str, who: str) -> list[dict[str, Any]]:
        assert self.journal is not None
        statement = select(AuditRow).where(AuditRow.site == self.plan.site.id, AuditRow.at >= since)
        if call:
            statement = statement.where(AuditRow.call_id == call)
        if who:
            statement = statement.where(AuditRow.client == who)
        with self.journal.db.connect() as connection:
            rows = connection.execute(statement.order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit)).all()
        return [{field: getattr(row, field) for field in ("at", *AUDIT_FIELDS[1:])} for row in rows]

    async def _end_streams(self, _app: web.Application) -> None:
        """Close open dashboards' streams at shutdown: a wall screen left open must not hold a
        stopping engine for aiohttp's whole shutdown timeout (the browser reconnects by itself)."""
        for queue in list(self.subscribers):
            while queue.full():  # a stalled viewer: what it has not read is stale anyway
                queue.get_nowait()
            queue.put_nowait(END_OF_STREAM)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    async def dashboard(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "dashboard.html").read_bytes(), content_type="text/html",
                            charset="utf-8")

    async def api_state(self, request: web.Request, client: Client) -> Any:
        return self.dashboard_state()

    async def api_figures(self, request: web.Request, client: Client) -> Any:
        window = request.match_info["window"]
        try:
            return self.figures.summary(window, self.engine.clock())
        except ValueError as exc:
            raise LookupError(str(exc)) from None

    async def stream(self, request: web.Request, client: Client) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        queue: asyncio.Queue[str] = asyncio.Queue(maxsize=20)
        self.subscribers.add(queue)
        self._dirty = True
        self.log.info("dashboard connected", client=client.name, viewers=len(self.subscribers))
        try:
            await response.write(b": connected\n\n")
            async for message in _drain(queue):
                if message == END_OF_STREAM:
                    break
                await response.write(message.encode())
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.subscribers.discard(queue)
        return response


def _context(totals: Any, scope: str, name: str = "") -> dict[str, Any]:
    """QS30 with what it leaves out: offered, answered, abandoned, QS30 of offered, QS60."""
    return {**ratios(totals, scope, name).public(), "abandoned": int(totals[(scope, name, "abandoned")]),
            "short_abandoned": int(totals[(scope, name, "short_abandoned")])}


async def _drain(queue: asyncio.Queue[str]) -> AsyncIterator[str]:
    while True:
        yield await queue.get()


class _Collector:
    """Prometheus view of the figures, read at scrape time so every family agrees."""

    def __init__(self, supervision: Supervision) -> None:
        self.s = supervision

    def collect(self) -> Iterable[Metric]:
        s = self.s
        site = s.plan.site.id
        life = s.figures.lifetime
        counters = [
            ("sas_calls_offered", "Calls offered to the SAS (first queue join here), by line", "offered"),
            ("sas_calls_answered", "Calls answered by the SAS (first pick-up), by line", "answered"),
            ("sas_calls_answered_within_30s", "Calls picked up in under 30 s of their first queue join",
             "answered_30"),
            ("sas_calls_answered_within_60s", "Calls picked up in under 60 s of their first queue join",
             "answered_60"),
            ("sas_calls_abandoned", "Calls that ended unanswered while waiting (short abandons excluded)",
             "abandoned"),
            ("sas_calls_short_abandoned", "Callers who hung up within the short-abandon cut-off of the greeting",
             "short_abandoned"),
            ("sas_calls_overflowed_out", "Callers withdrawn towards a partner SAS", "overflowed_out"),
            ("sas_calls_overflow_returned", "Overflowed callers the partner trunk sent back", "overflow_returned"),
            ("sas_calls_overflowed_in", "Calls a partner SAS overflowed to us", "overflowed_in"),
            ("sas_calls_switched_out", "Calls the dialplan switched over to a partner SAS", "switched_out"),
            ("sas_calls_switched_in", "Calls a partner SAS switched over to us", "switched_in"),
        ]
        lines = s.figures.names("line")
        for name, doc, metric in counters:
            family = CounterMetricFamily(name, doc, labels=["site", "line"])
            for line in lines:
                family.add_metric([site, line], life[("line", line, metric)])
            yield family
        queues = s.figures.names("queue")
        for name, doc, metric in [("sas_queue_answered", "Queue visits answered, by queue", "answered"),
                                  ("sas_queue_abandoned", "Queue visits ended by the caller hanging up", "abandoned"),
                                  ("sas_queue_offered", "Queue joins (first or after a move), by queue", "offered")]:
            family = CounterMetricFamily(name, doc, labels=["site", "queue"])
            for queue in queues:
                family.add_metric([site, queue], life[("queue", queue, metric)])
            yield family
        levels = [("sas_level_offered", "Calls offered to a level (N1 front office, N2 regulation: first visit at "
                   "that level)", "offered"),
                  ("sas_level_answered", "Calls answered at a level (first pick-up there)", "answered")]
        for name, doc, metric in levels:
            family = CounterMetricFamily(name, doc, labels=["site", "level"])
            for level in ("n1", "n2"):
                family.add_metric([site, level], life[("level", level, metric)])
            yield family
        transfers = CounterMetricFamily("sas_transfers", "Callers moved between queues by a desk",
                                        labels=["site", "from_queue", "to_queue"])
        for pair in s.figures.names("pair"):
            source, _, target = pair.partition(">")
            transfers.add_metric([site, source, target], life[("pair", pair, "transferred")])
        yield transfers
        waits = HistogramMetricFamily("sas_queue_wait_seconds", "Wait of answered queue visits, from joining "
                                      "that queue", labels=["site", "queue"])
        for queue, counts in sorted(s.figures.wait_histogram.items()):
            cumulative, buckets = 0, []
            for bound, count in zip(WAIT_BUCKETS, counts, strict=False):
                cumulative += count
                buckets.append((_bound(bound), cumulative))
            buckets.append(("+Inf", cumulative + counts[-1]))
            waits.add_metric([site, queue], buckets, life[("queue", queue, "wait_sum")])
        yield waits
        now = s.engine.clock()
        qs30 = GaugeMetricFamily("sas_qs30_ratio", "Share of answered calls picked up in under 30 s (annex 3)",
                                 labels=["site", "scope", "name", "window"])
        qs60 = GaugeMetricFamily("sas_qs60_ratio", "Share of answered calls picked up in under 60 s",
                                 labels=["site", "scope", "name", "window"])
        qs30_offered = GaugeMetricFamily("sas_qs30_offered_ratio", "Calls picked up in under 30 s over calls "
                                         "offered net of short abandons", labels=["site", "scope", "name", "window"])
        for window in ("30s", "last_30s", "15m", "hour", "today", "month"):
            totals = s.figures.window(window, now)
            scopes = [("sas", "")] + [("line", n) for n in s.figures.names("line", totals)] + \
                     [("queue", n) for n in s.figures.names("queue", totals)] + \
                     [("level", n) for n in s.figures.names("level", totals)]
            for scope, name in scopes:
                r = ratios(totals, scope, name)
                labels = [site, scope, name or site, window]
                if r.qs30 is not None:
                    qs30.add_metric(labels, r.qs30)
                if r.qs60 is not None:
                    qs60.add_metric(labels, r.qs60)
                if r.qs30_offered is not None:
                    qs30_offered.add_metric(labels, r.qs30_offered)
        yield qs30
        yield qs60
        yield qs30_offered
        waiting = GaugeMetricFamily("sas_queue_waiting_calls", "Callers waiting now", labels=["site", "queue"])
        longest = GaugeMetricFamily("sas_queue_longest_wait_seconds", "Longest current wait",
                                    labels=["site", "queue"])
        limit = GaugeMetricFamily("sas_queue_long_wait_limit_seconds", "The plan's long-wait alarm limit",
                                  labels=["site", "queue"])
        logged_in = GaugeMetricFamily("sas_queue_logged_in_agents", "Desks logged in to the queue now (paused "
                                      "included)", labels=["site", "queue"])
        for view in s.engine.queues_view():
            waiting.add_metric([site, view["queue"]], view["waiting"])
            longest.add_metric([site, view["queue"]], view["longest_wait"])
            limit.add_metric([site, view["queue"]], s.plan.alarms.long_wait_for(s.plan.queues[view["queue"]]))
            logged_in.add_metric([site, view["queue"]], view["logged_in"])
        yield waiting
        yield longest
        yield limit
        yield logged_in
        yield _gauge("sas_qs30_target_ratio", "The site's QS30 target (annex 3)", site, s.plan.site.qs30_target)
        agents = GaugeMetricFamily("sas_agents", "Desks logged in now, by role and state (each desk in one "
                                   "state: available, ringing, talking, wrap-up, paused)",
                                   labels=["site", "role", "state"])
        logged = GaugeMetricFamily("sas_agents_logged_in", "Desks logged in now, by role", labels=["site", "role"])
        for role, states in sorted(s.agents_by_state().items()):
            for state, value in states.items():
                agents.add_metric([site, role, state], value)
            logged.add_metric([site, role], sum(states.values()))
        yield agents
        yield logged
        talk = CounterMetricFamily("sas_agent_talk_seconds", "Talk time of ended agent legs, by role",
                                   labels=["site", "role"])
        legs = CounterMetricFamily("sas_agent_legs", "Ended agent legs, by role", labels=["site", "role"])
        for role in s.figures.names("role"):
            talk.add_metric([site, role], life[("role", role, "talk_sum")])
            legs.add_metric([site, role], life[("role", role, "legs")])
        yield talk
        yield legs
        link = s.engine.link
        yield _gauge("sas_ami_up", "1 while the AMI link is logged in", site, 1 if link.connected else 0)
        events = CounterMetricFamily("sas_ami_events", "AMI events read from the switch", labels=["site"])
        events.add_metric([site], s.engine.tracker.events_seen)
        yield events
        latency = HistogramMetricFamily("sas_ami_action_latency_seconds", "AMI action round trip",
                                        labels=["site"])
        cumulative, buckets = 0, []
        for bound, count in zip(LATENCY_BUCKETS, link.latency_counts, strict=False):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        buckets.append(("+Inf", cumulative + link.latency_counts[-1]))
        latency.add_metric([site], buckets, link.latency_sum)
        yield latency
        yield _gauge("sas_live_calls", "Calls the engine follows now", site, len(s.engine.tracker.calls))
        yield _gauge("sas_engine_loop_lag_seconds", "Worst event-loop timer lag over the last 30 s", site,
                     s.loop_lag)
        bus = s.engine.bus
        yield _gauge("sas_mqtt_up", "1 while the MQTT broker is connected", site,
                     1 if bus is not None and bus.connected else 0)
        aid = s.engine.mutual_aid.snapshot(now)
        overflow = GaugeMetricFamily("sas_overflow_active", "1 while a queue's overflow episode is open",
                                     labels=["site", "queue"])
        enabled = GaugeMetricFamily("sas_overflow_enabled", "1 while a queue's overflow rule may fire (0: switched "
                                    "off by a supervisor or the plan)", labels=["site", "queue"])
        for queue, (active, off_by) in aid.overflow.items():
            overflow.add_metric([site, queue], 1 if active else 0)
            enabled.add_metric([site, queue], 0 if off_by else 1)
        yield overflow
        yield enabled
        partners = GaugeMetricFamily("sas_partner_state", "1 for the state each partner SAS is in now (accepting, "
                                     "overloaded, silent, failing)", labels=["site", "partner", "state"])
        for partner, now_state in aid.partners.items():
            for state_name in ("accepting", "overloaded", "silent", "failing"):
                partners.add_metric([site, partner, state_name], 1 if state_name == now_state else 0)
        yield partners
        failed = CounterMetricFamily("sas_switchover_failed_dials", "Switched-over calls the partner's trunk did not "
                                     "take (served here instead)", labels=["site", "line", "partner"])
        for (line, partner), count in sorted(aid.failed_dials.items()):
            failed.add_metric([site, line, partner], count)
        yield failed
        alarms = GaugeMetricFamily("sas_alarm_active", "1 for every alarm raised now (acknowledged or not)",
                                   labels=["site", "alarm", "level", "acknowledged"])
        for alarm in s.alarm_board.active(now):
            alarms.add_metric([site, alarm["key"], alarm["level"], "yes" if alarm["acknowledged_by"] else "no"], 1)
        yield alarms
        recordings = CounterMetricFamily("sas_recordings", "Recorded calls indexed, by status (ok, missing, short, "
                                         "not-started)", labels=["site", "status"])
        for status in ("ok", "missing", "short", "not-started"):
            recordings.add_metric([site, status], s.recorder.counts[status])
        yield recordings
        free = s.recorder.free_bytes()
        if free is not None:
            yield _gauge("sas_recordings_disk_free_bytes", "Free space where the recordings are written", site, free)
        build = GaugeMetricFamily("sas_build_info", "The running engine's version and plan (value 1)",
                                  labels=["site", "version", "plan", "plan_sha256"])
        build.add_metric([site, VERSION, s.plan.source, s.plan.source_sha256[:12]], 1)
        yield build
        switched = GaugeMetricFamily("sas_switchover_share_ratio", "Share of a line's new calls switched over",
                                     labels=["site", "line", "partner"])
        for line, (partner, share, _) in aid.switchovers.items():
            switched.add_metric([site, line, partner], share / 100)
        yield switched
        if s.journal is not None:
            yield _gauge("sas_journal_up", "1 while the journal database accepts writes", site,
                         1 if s.journal.up else 0)
            yield _gauge("sas_journal_buffered_rows", "Journal rows waiting to be written", site,
                         len(s.journal.buffer))
            dropped = CounterMetricFamily("sas_journal_dropped_rows", "Journal rows lost (buffer full while "
                                          "the database was away)", labels=["site"])
            dropped.add_metric([site], s.journal.dropped)
            yield dropped


def _gauge(name: str, doc: str, site: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["site"])
    family.add_metric([site], value)
    return family


def _bound(value: float) -> str:
    return floatToGoString(value)  # "30.0", as prometheus_client's own histograms write it
