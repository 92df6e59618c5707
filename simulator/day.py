"""A SAS day played through the real engine: callers ring the emulated switch, desks answer,
qualify through the control API as a telephony bar would, regulators talk and transfer, the
room's staffing follows the hour — and the supervision figures say how it went.

Two clocks, one code path. In real time (the demo) the switch runs its timers on the wall clock
and the dashboard moves as calls come. In fast-forward the switch's clock is virtual: the driver
advances it a second at a time, and after each second waits until the engine has read every AMI
event the switch wrote (over the same TCP socket and panoramisk as in production) and every
desk's HTTP request has been answered. A 24-hour day of ≈3 000 calls runs in about a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import math
import random
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from sas_router.engine.api import Client
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.core.routing import qualification_target, utcnow_from
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import Plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import Priority
from sas_router.engine.service import EngineOptions
from sas_router.simulator.live import LiveSite, eventually, start_live_site
from sas_router.simulator.load import LoadProfile, PlannedCall, plan_day, staffing_for, talk_time
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.model import Channel, Event
from sas_router.simulator.softswitch.site import add_agent, build_site, link_sites
from sas_router.supervision.figures import BUCKET, ratios

log = structlog.get_logger("simulator.day")
#: Extensions per queue role: 1001.. for N1, 2001.. for AMU, 3001.. MG, 4001.. PDSA, 5001.. others.
EXTENSION_BASE = {"n1": 1000, "n2-amu": 2000, "n2-mg": 3000, "pdsa": 4000, "specialist": 5000}
#: Desk roles as logged in (annex-3 table 3): AMU alternates ARM AMU and emergency doctor.
DESK_ROLES = {"n1": ("arm-n1",), "n2-amu": ("arm-amu", "mru"), "n2-mg": ("osnp", "mrg"), "pdsa": ("mrg",),
              "specialist": ("mrh",)}


@dataclass
class Desk:
    queue: str
    extension: str
    role: str
    logged_in: bool = False
    paused: bool = False

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.extension}"


#: P2 files the GP regulation closes with a simple medical advice (annex 3, table 1 item 6).
ADVICE_SHARE = 0.3


@dataclass
class CallerState:
    planned: PlannedCall
    channel: Channel
    visits: int = 0
    answered_visit: int = -1  # the visit at which a desk last picked up
    n2_transferred: bool = False


@dataclass
class DayResult:
    site: str
    start: float
    end: float
    wall_seconds: float
    planned_calls: int
    summary: dict[str, Any]
    waits: dict[str, dict[str, float | None]]
    hours: list[dict[str, Any]]
    trend: list[dict[str, Any]]
    ami_events: int
    http_requests: int
    staffing: list[dict[str, Any]] = field(default_factory=list)
    #: What the linked partner SAS did with the calls this site overflowed or switched to it.
    partner: dict[str, Any] | None = None

    def report(self) -> str:
        sas = self.summary["sas"]
        lines = [f"{self.site}: {self.planned_calls} calls placed over {(self.end - self.start) / 3600:.1f} h "
                 f"in {self.wall_seconds:.1f} s of wall time ({self.ami_events} AMI events, "
                 f"{self.http_requests} desk requests)",
                 f"  SAS: offered {sas['offered']}, answered {sas['answered']}, QS30 {_pct(sas['qs30'])}, "
                 f"QS60 {_pct(sas['qs60'])}, abandoned {sas.get('abandoned', 0)} "
                 f"(+{sas.get('short_abandoned', 0)} short), overflowed out {sas.get('overflowed_out', 0)}, "
                 f"switched out {sas.get('switched_out', 0)}"]
        for level, figures in sorted(self.summary["levels"].items()):
            lines.append(f"  {level.upper()}: answered {figures['answered']}, QS30 {_pct(figures['qs30'])}, "
                         f"mean wait {figures['mean_wait']} s")
        lines.append(f"  {'queue':<8} {'offered':>7} {'answered':>8} {'abandoned':>9} {'QS30':>6} "
                     f"{'p50 wait':>8} {'p90 wait':>8} {'max':>6}")
        for queue, figures in sorted(self.summary["queues"].items()):
            w = self.waits.get(queue, {})
            lines.append(f"  {queue:<8} {figures['offered']:>7} {figures['answered']:>8} "
                         f"{figures.get('abandoned', 0):>9} {_pct(figures['qs30']):>6} {_sec(w.get('p50')):>8} "
                         f"{_sec(w.get('p90')):>8} {_sec(w.get('max')):>6}")
        if self.summary["transfers"]:
            moves = ", ".join(f"{pair} {n}" for pair, n in sorted(self.summary["transfers"].items()))
            lines.append(f"  transfers: {moves}")
        if self.hours:
            lines.append("  hour   offered answered abandoned   QS30")
            lines += [f"  {h['hour']}  {h['offered']:>7} {h['answered']:>8} {h['abandoned']:>9} {_pct(h['qs30']):>6}"
                      for h in self.hours]
        if self.partner is not None:
            p = self.partner
            lines.append(f"  partner {p['site']} ({p['desks']} desks per queue): received {p['received']}, "
                         f"answered {p['answered']} (p50 wait {_sec(p['p50'])}, p90 {_sec(p['p90'])}), "
                         f"gave up there {p['gave_up']}")
        return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _sec(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}s"


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class DaySimulation:
    """One site, one period of calls, the real engine in the loop."""

    def __init__(self, plan: Plan, plan_file: Path, profile: LoadProfile, *, start: float, duration: float,
                 seed: int = 1, fast: bool = True, http_port: int = 0, journal_url: str | None = None,
                 mqtt: MqttConfig | None = None, staffing: Callable[[float], dict[str, int]] | None = None,
                 progress: bool = False, overflow: bool = False, token: str | None = None,
                 partner: Plan | None = None, partner_desks: int = 3) -> None:
        """``overflow`` False (default) switches the plan's overflow rules off through the API at
        the start, as a supervisor does when no partner is linked (one emulated site alone).

        ``partner``: a second emulated SAS joined by its trunk, with ``partner_desks`` desks in
        each of its queues; overflow stays on and the callers sent there are followed to their
        end (they wait with their own patience, talk to the partner's desk, then hang up)."""
        # A simulated day records nothing: thousands of hour-long files would only measure the
        # disk (the recorder has tests of its own, on both switches).
        plan = dataclasses.replace(plan, recording=plan.recording.model_copy(update={"enabled": False}))
        self.plan, self.plan_file, self.profile = plan, plan_file, profile
        self.start, self.duration, self.seed, self.fast = start, duration, seed, fast
        self.http_port, self.journal_url, self.mqtt = http_port, journal_url, mqtt
        self.staffing = staffing or (lambda at: staffing_for(plan, profile, at))
        self.progress = progress
        self.overflow = overflow or partner is not None
        if partner is not None:
            partner = dataclasses.replace(partner, recording=partner.recording.model_copy(update={"enabled": False}))
        self.partner_plan, self.partner_desks = partner, partner_desks
        self.partner_switch: Softswitch | None = None
        self.partner_counts = {"received": 0, "answered": 0, "gave_up": 0}
        self.partner_waits: list[float] = []
        self._at_partner: dict[str, tuple[CallerState, float]] = {}  # partner Uniqueid -> caller, joined at
        self.rng = random.Random(seed * 31 + 7)
        #: Its own stream, so the medical advices do not move the other draws of a seed.
        self.advice_rng = random.Random(seed * 31 + 11)
        self.token = token or secrets.token_urlsafe(16)
        self.calls = plan_day(plan, profile, start, duration, seed)
        self.callers: dict[str, CallerState] = {}
        self.desks: dict[str, list[Desk]] = {}
        self.waits: dict[str, list[float]] = {}
        self.hours: list[dict[str, Any]] = []
        self._hour_open = start  # the first hour not yet in ``hours``
        self.staffing_log: list[dict[str, Any]] = []
        self.requests = 0
        self.failed_requests = 0
        #: Requests about a call that had ended meanwhile (404): a desk's click after the hang-up.
        self.gone_requests = 0
        self._jobs: list[Callable[[], Awaitable[None]]] = []
        self._running: set[asyncio.Task[None]] = set()
        #: Events the switch wrote that panoramisk consumed as list answers (never dispatched).
        self._unmatched = 0
        self.site: LiveSite | None = None
        self.http: aiohttp.ClientSession | None = None
        self.scheduler = Scheduler(start if fast else None, virtual=fast)
        self.stopped = asyncio.Event()

    # --- set-up -----------------------------------------------------------------------------------

    async def open(self) -> LiveSite:
        options = EngineOptions(confirm_within=5.0, action_timeout=10.0, tick_every=3600.0 if self.fast else 1.0,
                                apply_presets=True)
        self.site = await start_live_site(self.plan_file, {self.token: Client("room-supervisor", "supervisor")},
                                          clock=lambda: self.scheduler.now, options=options, plan=self.plan,
                                          http_port=self.http_port, mqtt=self.mqtt, journal_url=self.journal_url,
                                          scheduler=self.scheduler, record_events=False)
        self.site.switch.listeners.append(self._on_switch_event)
        self.site.engine.listeners.append(self._on_notice)
        self.http = aiohttp.ClientSession(base_url=self.site.base_url,
                                          headers={"Authorization": f"Bearer {self.token}"})
        engine = self.site.engine
        await eventually(lambda: engine.link.connected and engine.resyncs >= 1 and engine.mutual_aid.loaded,
                         timeout=10, what="the engine connected to the emulated switch")
        if not self.overflow:
            for queue, spec in self.plan.queues.items():
                if spec.overflow is not None:
                    await self._post(f"/api/overflow/{queue}", {"enabled": False, "reason": "no partner linked"})
        if self.partner_plan is not None:
            self._open_partner(self.partner_plan)
        return self.site

    def _open_partner(self, partner: Plan) -> None:
        """The neighbouring SAS: its rendered dialplan on the same clock, joined by the trunk, with
        desks that answer in two seconds (its own engine and callers are not simulated)."""
        assert self.site is not None
        here, there = self.plan.site.id, partner.site.id
        if there not in self.plan.partners or here not in partner.partners:
            raise ValueError(f"{here} and {there} are not partners of each other in their plans")
        switch = build_site(partner, self.scheduler, seed=self.seed + 1)
        link_sites(self.site.switch, here, switch, there)
        extensions = itertools.count(7001)
        for queue in partner.queues:
            for _ in range(self.partner_desks):
                extension = str(next(extensions))
                add_agent(switch, extension, answer_after=2.0)
                switch.queues.add_member(queue, f"PJSIP/{extension}", f"{there} {extension}")
        switch.listeners.append(self._on_partner_event)
        self.partner_switch = switch

    async def close(self) -> None:
        if self._running:
            await asyncio.wait(self._running, timeout=5)
        if self.http is not None:
            await self.http.close()
        if self.site is not None:
            await self.site.stop()

    # --- the switch's side: what callers and desks do ----------------------------------------------

    def _place(self, planned: PlannedCall) -> None:
        assert self.site is not None
        channel = self.site.switch.inbound_call(C.OPERATOR_ENDPOINT, planned.number, caller_num=planned.caller,
                                                withheld=planned.withheld)
        if channel is None:
            log.error("no line for a planned call", number=planned.number)
            return
        self.callers[channel.uniqueid] = CallerState(planned, channel)

    def _on_switch_event(self, event: Event) -> None:
        if event.name == "QueueCallerJoin":
            state = self.callers.get(event.get("Uniqueid", ""))
            if state is not None:
                state.visits += 1
                visit = state.visits
                patience = state.planned.patience if visit == 1 else state.planned.patience_n2
                if patience is not None:
                    self.scheduler.call_later(patience, lambda: self._give_up(state, visit))
        elif event.name == "AgentConnect":
            state = self.callers.get(event.get("Uniqueid", ""))
            if state is not None:
                state.answered_visit = state.visits
                self._answered(state, event.get("Queue", ""), event.get("Interface", ""))

    def _on_partner_event(self, event: Event) -> None:
        """A caller of ours at the partner: joins its queue (a new visit, with the caller's own
        patience), is answered there and talks, or gives up waiting."""
        uniqueid = event.get("Uniqueid", "")
        now = self.scheduler.now
        if event.name == "QueueCallerJoin" and self.partner_switch is not None:
            channel = self.partner_switch.find_channel(event.get("Channel", ""))
            call_id = channel.variables.get(C.VAR_CALL_ID, "") if channel is not None else ""
            state = next((s for s in self.callers.values() if call_id and
                          s.channel.variables.get(C.VAR_CALL_ID) == call_id and not s.channel.hungup), None)
            if state is None:
                return
            if uniqueid not in self._at_partner:  # its first queue there (it may move to another)
                self.partner_counts["received"] += 1
                self._at_partner[uniqueid] = (state, now)
            state.visits += 1
            visit = state.visits
            if state.planned.patience is not None:
                self.scheduler.call_later(state.planned.patience, lambda: self._give_up(state, visit))
        elif event.name == "AgentConnect" and uniqueid in self._at_partner:
            state, joined = self._at_partner.pop(uniqueid)
            self.partner_counts["answered"] += 1
            self.partner_waits.append(now - joined)
            state.answered_visit = state.visits
            self._hang_up_later(state, talk_time(self.profile, "n1", state.planned.talk), state.visits)
        elif event.name == "QueueCallerAbandon" and uniqueid in self._at_partner:
            self._at_partner.pop(uniqueid)
            self.partner_counts["gave_up"] += 1

    def _give_up(self, state: CallerState, visit: int) -> None:
        """The caller's patience ran out: hang up if still waiting in that same queue visit."""
        if state.visits == visit and state.answered_visit < visit and not state.channel.hungup:
            assert self.site is not None
            self.site.switch.request_hangup(state.channel, 16, soft=False)

    def _answered(self, state: CallerState, queue: str, interface: str) -> None:
        spec = self.plan.queues.get(queue)
        if spec is None:
            return
        role = spec.role.value
        planned = state.planned
        visit = state.visits
        if role == "n1":
            def decide() -> None:
                if state.channel.hungup or state.visits != visit:
                    return
                if planned.level == "P0":  # the file is opened P0 and the ARM keeps the caller
                    self._submit(lambda: self._post(f"/api/calls/{state.channel.uniqueid}/qualify",
                                                    {"level": "P0", "reason": "simulated"}))
                    self._hang_up_later(state, talk_time(self.profile, "n1", planned.talk), visit)
                else:
                    self._submit(lambda: self._post(f"/api/calls/{state.channel.uniqueid}/qualify",
                                                    {"level": planned.level, "reason": "simulated"}))
            self.scheduler.call_later(planned.qualify_after, decide)
            return
        talk = talk_time(self.profile, role, planned.talk)
        if planned.transfer_n2 and not state.n2_transferred and role in ("n2-amu", "n2-mg", "pdsa"):
            state.n2_transferred = True
            other = "n2-amu" if role != "n2-amu" else (qualification_target(
                self.plan, Priority.P2, utcnow_from(self.scheduler.now)) or "n2-mg")

            def transfer() -> None:
                if not state.channel.hungup and state.visits == visit:
                    self._submit(lambda: self._post(f"/api/calls/{state.channel.uniqueid}/transfer",
                                                    {"queue": other, "reason": "simulated N2 transfer"}))
            self.scheduler.call_later(talk * 0.3, transfer)
            return
        if role in ("n2-mg", "pdsa") and planned.level == "P2" and self.advice_rng.random() < ADVICE_SHARE:
            def advise() -> None:  # the GP closes the file with a simple medical advice
                if not state.channel.hungup and state.visits == visit:
                    self._submit(lambda: self._post(f"/api/calls/{state.channel.uniqueid}/qualify", {
                        "level": "P2", "reason": "conseil médical simple", "medical_advice": True}))
            self.scheduler.call_later(talk * 0.8, advise)
        self._hang_up_later(state, talk, visit)

    def _hang_up_later(self, state: CallerState, after: float, visit: int) -> None:
        def hang_up() -> None:
            if not state.channel.hungup and state.visits == visit:
                assert self.site is not None
                self.site.switch.request_hangup(state.channel, 16, soft=False)
        self.scheduler.call_later(after, hang_up)

    def _on_notice(self, notice: Notice) -> None:
        if notice.kind == NoticeKind.QUEUE_LEFT and notice.data.get("outcome") == "answered":
            self.waits.setdefault(str(notice.data.get("queue")), []).append(float(notice.data.get("wait") or 0.0))

    # --- the desks' side: HTTP, as a telephony bar ------------------------------------------------

    def _submit(self, job: Callable[[], Awaitable[None]]) -> None:
        """Run a desk's request: after the current second in fast-forward (so the virtual clock
        waits for it), at once in real time."""
        if self.fast:
            self._jobs.append(job)
        else:
            task = asyncio.ensure_future(job())
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _post(self, path: str, body: dict[str, Any]) -> None:
        assert self.http is not None
        self.requests += 1
        try:
            async with self.http.post(path, json=body) as response:
                if response.status == 404:  # the caller hung up before the desk's click: not a fault
                    self.gone_requests += 1
                elif response.status >= 400:
                    self.failed_requests += 1
                    text = await response.text()
                    log.warning("desk request refused", path=path, status=response.status, body=text[:200])
        except aiohttp.ClientError as exc:
            self.failed_requests += 1
            log.warning("desk request failed", path=path, error=str(exc))

    async def _restaff(self, at: float) -> None:
        """Log desks in or out so each queue has the hour's staffing; draw the hour's pauses."""
        assert self.site is not None
        wanted = self.staffing(at)
        self.staffing_log.append({"at": at, **wanted})
        for queue, count in wanted.items():
            role = self.plan.queues[queue].role.value
            desks = self.desks.setdefault(queue, [])
            while len(desks) < count:
                extension = str(EXTENSION_BASE.get(role, 5000) + 1 + len(desks) + 100 * _queue_index(self.plan, queue))
                roles = DESK_ROLES.get(role, ("arm-n1",))
                desk = Desk(queue, extension, roles[len(desks) % len(roles)])
                add_agent(self.site.switch, extension, answer_after=self.rng.uniform(*self.profile.ring))
                desks.append(desk)
            for index, desk in enumerate(desks):
                if index < count and not desk.logged_in:
                    desk.logged_in = True
                    await self._post("/api/agents/login", {"interface": desk.interface, "queues": [queue],
                                                           "name": f"{desk.role} {desk.extension}",
                                                           "role": desk.role})
                elif index >= count and desk.logged_in:
                    desk.logged_in = False
                    await self._post("/api/agents/logout", {"interface": desk.interface, "reason": "end of shift"})
                if desk.logged_in and self.rng.random() < self.profile.pause_per_hour:
                    self._pause_later(desk, self.rng.uniform(0, 3000), self.rng.uniform(300, 900))

    def _pause_later(self, desk: Desk, after: float, length: float) -> None:
        def pause() -> None:
            if desk.logged_in and not desk.paused:
                desk.paused = True
                self._submit(lambda: self._post("/api/agents/pause", {"interface": desk.interface, "reason": "pause"}))
                self.scheduler.call_later(length, resume)

        def resume() -> None:
            if desk.paused:
                desk.paused = False
                if desk.logged_in:
                    self._submit(lambda: self._post("/api/agents/resume", {"interface": desk.interface}))
        self.scheduler.call_later(after, pause)

    # --- running ------------------------------------------------------------------------------------

    async def run(self) -> DayResult:
        site = self.site or await self.open()
        began = time.perf_counter()
        for planned in self.calls:
            self.scheduler.call_at(planned.at, lambda p=planned: self._place(p))
        end = self.start + self.duration
        if self.fast:
            await self._fast_forward(end)
        else:
            await self._real_time(end)
        wall = time.perf_counter() - began
        figures = site.supervision.figures if site.supervision else None
        assert figures is not None
        summary = figures.summary("all", self.scheduler.now)
        waits = {q: {"p50": _percentile(v, 0.5), "p90": _percentile(v, 0.9), "max": max(v) if v else None}
                 for q, v in self.waits.items()}
        partner = None
        if self.partner_plan is not None:
            partner = {"site": self.partner_plan.site.id, "desks": self.partner_desks, **self.partner_counts,
                       "p50": _percentile(self.partner_waits, 0.5), "p90": _percentile(self.partner_waits, 0.9)}
        return DayResult(self.plan.site.id, self.start, self.scheduler.now, wall, len(self.calls), summary, waits,
                         self.hours, list(figures.samples), site.engine.tracker.events_seen, self.requests,
                         self.staffing_log, partner)

    async def _caught_up(self) -> None:
        """Wait until the engine has read what the switch wrote and the desks' requests are done."""
        assert self.site is not None
        server, tracker = self.site.server, self.site.engine.tracker
        while True:
            spins = 0
            while tracker.events_seen < server.events_sent - self._unmatched and spins < 2000:
                spins += 1
                await asyncio.sleep(0 if spins < 50 else 0.001)
            if spins >= 2000:  # events consumed as list answers are not dispatched: re-align once
                self._unmatched = server.events_sent - tracker.events_seen
            if not self._jobs:
                return
            jobs, self._jobs = self._jobs, []
            for job in jobs:
                await job()
            self.scheduler.run_due()

    async def _fast_forward(self, end: float) -> None:
        assert self.site is not None
        engine, supervision = self.site.engine, self.site.supervision
        self._unmatched = self.site.server.events_sent - engine.tracker.events_seen
        next_hour = self.start
        next_snapshot = self.start - self.start % BUCKET + BUCKET
        drain_until = end + 4 * 3600  # calls still in progress at the end are followed to their end
        shown = -1.0
        while True:
            now = self.scheduler.now
            if now >= next_hour and now < end:
                self._close_hours(now, end)
                await self._restaff(now)
                next_hour = now - now % 3600 + 3600
            self.scheduler.advance(1.0)
            await self._caught_up()
            now = self.scheduler.now
            if int(now) % 2 == 0:
                await engine.mutual_aid.tick()
            if now >= next_snapshot and supervision is not None:
                await supervision.publish_snapshot()
                next_snapshot += BUCKET
            if self.progress and now - shown >= 900:
                shown = now
                self._show_progress(now, end)
            if now >= end and (not engine.tracker.calls or now >= drain_until):
                break
        self._close_hours(self.scheduler.now, end, final=True)
        if self.progress:
            sys.stderr.write("\n")

    async def _real_time(self, end: float) -> None:
        next_hour = self.scheduler.now
        while self.scheduler.now < end and not self.stopped.is_set():
            now = self.scheduler.now
            if now >= next_hour:
                self._close_hours(now, end)
                await self._restaff(now)
                next_hour = now - now % 3600 + 3600
            if self.progress:
                self._show_progress(now, end)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopped.wait(), timeout=1.0)

    def _close_hours(self, now: float, end: float, *, final: bool = False) -> None:
        """Each local hour of the period, once it is over, for the plot: [from, to) of the switch's
        clock, whenever the loop gets there. The last (possibly partial) hour is closed at the end,
        with the calls still in progress then followed to their end (``final``)."""
        assert self.site is not None and self.site.supervision is not None
        figures = self.site.supervision.figures
        while True:
            opened = self._hour_open
            boundary = min(opened - opened % 3600 + 3600, end)
            if opened >= end or (boundary > now and not final):
                return
            closed = max(now, boundary) if final and boundary >= end else boundary
            totals = figures.between(opened, closed)
            r = ratios(totals, "sas")
            local = datetime.fromtimestamp(opened, UTC).astimezone(ZoneInfo(self.plan.site.timezone))
            self.hours.append({"hour": local.strftime("%H:00"), "from": opened, "offered": r.offered,
                               "answered": r.answered, "abandoned": int(totals[("sas", "", "abandoned")]),
                               "qs30": r.qs30})
            self._hour_open = boundary

    def _show_progress(self, now: float, end: float) -> None:
        assert self.site is not None and self.site.supervision is not None
        done = min(1.0, (now - self.start) / max(1.0, end - self.start))
        bar = "#" * int(done * 30)
        local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(self.plan.site.timezone))
        sas = ratios(self.site.supervision.figures.window("all", now), "sas")
        waiting = sum(1 for _ in self.site.engine.tracker.waiting())
        sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} {local:%a %H:%M} calls {sas.offered:>5} answered "
                         f"{sas.answered:>5} QS30 {_pct(sas.qs30):>6} waiting {waiting:>3}   ")
        sys.stderr.flush()


def _queue_index(plan: Plan, queue: str) -> int:
    """Queues of the same role (two specialist queues) get distinct extension ranges."""
    role = plan.queues[queue].role.value
    same = [q for q, spec in plan.queues.items() if spec.role.value == role]
    return same.index(queue)


def plot_day(result: DayResult, path: Path) -> Path:
    """Calls per hour, QS30 per hour and the load every 30 s, to a PNG; every hour of the period,
    callers and minutes each on their own axis, the time of day in the site's time zone."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(11, 9), sharex=False)
    labels = [h["hour"] for h in result.hours]
    top.bar(labels, [h["offered"] for h in result.hours], color="#8aa0b3", label="offered")
    top.bar(labels, [h["answered"] for h in result.hours], color="#38b26b", label="answered")
    top.plot(labels, [h["abandoned"] for h in result.hours], color="#e5484d", marker="o", label="abandoned")
    top.set_title(f"{result.site}: calls per hour")
    top.set_ylabel("calls")
    top.set_ylim(bottom=0)
    top.legend(loc="upper left")
    top.tick_params(axis="x", labelrotation=60, labelsize=7)
    middle.plot(labels, [math.nan if h["qs30"] is None else 100 * h["qs30"] for h in result.hours], color="#38b26b",
                marker="o", label="QS30")
    middle.axhline(90, color="#8aa0b3", linestyle="--", label="target 90 %")
    middle.set_ylim(0, 105)
    middle.set_ylabel("%")
    middle.set_title("QS30 per hour (% of answered calls picked up in under 30 s)")
    middle.legend(loc="lower left")
    middle.tick_params(axis="x", labelrotation=60, labelsize=7)
    hours = [(p["at"] - result.start) / 3600 for p in result.trend]
    bottom.plot(hours, [p["waiting"] for p in result.trend], color="#e7a73a", label="callers waiting")
    bottom.set_ylabel("callers waiting", color="#e7a73a")
    bottom.set_ylim(bottom=0, top=max([p["waiting"] for p in result.trend] + [5]) * 1.1)
    minutes = bottom.twinx()
    minutes.plot(hours, [p["longest_wait"] / 60 for p in result.trend], color="#e5484d", label="longest wait")
    minutes.set_ylabel("longest wait (min)", color="#e5484d")
    minutes.set_ylim(bottom=0, top=max([p["longest_wait"] / 60 for p in result.trend] + [1]) * 1.1)
    bottom.set_xticks([(h["from"] - result.start) / 3600 for h in result.hours], labels, rotation=60, fontsize=7)
    bottom.set_xlim(0, max(hours + [len(result.hours)]))
    bottom.set_xlabel("local time at the site")
    bottom.set_title("Load every 30 s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
