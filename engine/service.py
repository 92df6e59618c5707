"""The engine service: the tracker fed by the AMI link, and the actions the desks ask for.

The call itself never depends on this process (the rendered dialplan queues every call and
falls back by itself); this service adds the decisions the dialplan cannot make — qualification,
transfers with confirmation — and keeps the live picture the supervisors see.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sas_router.engine.ami import AmiActionFailed, AmiBusy, AmiLink, AmiLinkDown, UnsafeValue, as_event
from sas_router.engine.core.calls import Call, CallState, Transfer, VisitOutcome
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.core.routing import (
    Move,
    RoutingError,
    answering_queue,
    check_interface,
    plan_move,
    qualification_priority,
    qualification_target,
    utcnow_from,
)
from sas_router.engine.core.tracker import Tracker
from sas_router.engine.mqtt import MqttBus, MqttConfig
from sas_router.engine.mutual_aid import MutualAid
from sas_router.engine.plan import Plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import Priority
from sas_router.engine.plan.render import CHECKED_MODULES

log = structlog.get_logger("engine")

#: Tags read back with Getvar when a live call is adopted after a (re)connect.
TAG_VARIABLES = (C.VAR_CALL_ID, C.VAR_LINE, C.VAR_DIALED, C.VAR_CALLER_NUM, C.VAR_PRIO, C.VAR_ORIGIN,
                 C.VAR_ENTRY_QUEUE, C.VAR_GEOLOC, C.VAR_INBOUND, C.VAR_REPEAT)


def status_variables(item: dict[str, str]) -> dict[str, str]:
    """The ``Variable: NAME=value`` headers of a Status event (joined by newlines when repeated);
    an unset variable (empty, or Asterisk's ``(null)``) is left out."""
    values: dict[str, str] = {}
    for line in item.get("Variable", "").split("\n"):
        name, sep, value = line.partition("=")
        if sep and value and value != "(null)":
            values[name.strip()] = value
    return values


@dataclass
class EngineOptions:
    #: Seconds within which a moved caller must be seen joining its target queue.
    confirm_within: float = 5.0
    action_timeout: float = 5.0
    #: How often overflow rules and switch-over presets are evaluated.
    tick_every: float = 1.0
    #: Whether this engine applies the plan's switch-over presets (one engine per site does).
    apply_presets: bool = True
    #: A partner's load older than this is treated as silent (plan order instead of live load).
    partner_stale_after: float = 15.0


@dataclass
class Engine:
    plan: Plan
    link_factory: Callable[[Engine], AmiLink]
    options: EngineOptions = field(default_factory=EngineOptions)
    clock: Callable[[], float] = time.time
    tracker: Tracker = field(default_factory=Tracker)
    listeners: list[Callable[[Notice], None]] = field(default_factory=list)
    #: Role each desk logged in with (ARM N1, emergency doctor, GP regulator ...), by interface.
    roles: dict[str, str] = field(default_factory=dict)
    mqtt: MqttConfig | None = None

    def __post_init__(self) -> None:
        self.log = log.bind(site=self.plan.site.id)
        self.link = self.link_factory(self)
        self.resyncs = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self.tracker.wrapup = {q: float(spec.wrapup) for q, spec in self.plan.queues.items()}
        self.mutual_aid = MutualAid(self, stale_after=self.options.partner_stale_after)
        self.bus: MqttBus | None = None
        if self.mqtt is not None:
            self.bus = MqttBus(self.mqtt, self.plan.site.id, snapshot=self.mutual_aid.load_message,
                               on_load=self._partner_load, on_offline=self.mutual_aid.board.went_offline,
                               on_link=self._bus_link)
        #: Why this engine refuses to serve the switch it reached (a module the dialplan needs is
        #: missing); ``refused`` is set then, and ``sas-router run`` exits with that message.
        self.refusal: str | None = None
        self.refused = asyncio.Event()
        #: Supervision plugs its QS30 in here; until then the load message says null.
        self.qs30_source: Callable[[], float | None] | None = None

    def adopt_plan(self, plan: Plan) -> None:
        """Take a plan already validated and installed (engine.reload): new calls follow it, live
        calls keep their records, rules still in force keep their state."""
        self.plan = plan
        self.tracker.wrapup = {q: float(spec.wrapup) for q, spec in plan.queues.items()}
        self.mutual_aid.adopt_plan(plan)
        self.broadcast(Notice(NoticeKind.PLAN_RELOADED, self.clock(), data={"plan": plan.source,
                                                                   "sha256": plan.source_sha256}))

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        await self.link.start()
        if self.bus is not None:
            await self.bus.start()
        self._spawn(self._tick_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self.bus is not None:
            await self.bus.stop()
        await self.link.stop()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_every)
            try:
                await self.mutual_aid.tick()
            except Exception:  # a bug in one tick must not stop overflow for the rest of the day
                self.log.exception("mutual-aid tick failed")

    def _partner_load(self, payload: dict[str, Any]) -> None:
        self.mutual_aid.board.update(payload, self.clock())  # ValueError: logged and counted by the bus

    def _bus_link(self, up: bool) -> None:
        self.mutual_aid.board.link_up = up
        if not up:
            self.log.warning("no live partner load: overflow partners chosen by plan order")

    def qs30_now(self) -> float | None:
        return self.qs30_source() if self.qs30_source is not None else None

    def broadcast(self, notice: Notice) -> None:
        """Hand a notice that did not come from the tracker (journal entries) to every listener."""
        for listener in self.listeners:
            listener(notice)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """Every background task's end is looked at: a failure is logged once, with its reason,
        never left as "Task exception was never retrieved"."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("background task failed", error=repr(task.exception()))

    # --- events -------------------------------------------------------------------------------

    def on_event(self, event: dict[str, str]) -> None:
        refused = self.tracker.refused_total
        for notice in self.tracker.feed(event, self.clock()):
            self._notice(notice)
        if self.tracker.refused_total != refused:
            self.log.error("event refused: illegal call transition", event=event.get("Event"),
                           uniqueid=event.get("Uniqueid"), why=self.tracker.refused[-1][1])

    def _notice(self, notice: Notice) -> None:
        call = self.tracker.calls.get(notice.uniqueid) if notice.uniqueid else None
        call_id = (call.call_id or call.uniqueid) if call else notice.uniqueid or None
        if notice.kind != NoticeKind.AGENT_CHANGED:
            self.log.info(notice.kind, call_id=call_id, **{k: v for k, v in notice.data.items() if v is not None})
        if notice.kind == NoticeKind.QUEUE_JOINED and call is not None and len(call.visits) == 1 and call.caller_num:
            # The dialplan raises the priority of a number seen within the window (repeat caller).
            self._spawn(self._remember_caller(call.caller_num))
        self.mutual_aid.on_notice(notice)
        self.broadcast(notice)

    async def _remember_caller(self, number: str) -> None:
        try:
            await self.link.send({"Action": "DBPut", "Family": C.DB_RECENT, "Key": number,
                                  "Val": str(int(self.clock()))})
        except (AmiLinkDown, AmiActionFailed, ValueError) as exc:
            self.log.warning("repeat-caller memo not written", error=str(exc))

    async def _switch_is_fit(self) -> bool:
        """Every module the rendered dialplan relies on is loaded (AMI ModuleCheck). A switch
        without app_queue or PJSIP_HEADER would route calls wrongly or not at all: refuse it,
        naming what is missing, rather than appear to run."""
        missing = []
        for module in CHECKED_MODULES:
            try:
                await self.link.send({"Action": "ModuleCheck", "Module": module})
            except AmiActionFailed:
                missing.append(module)
            except AmiLinkDown:
                return False
        if missing:
            self.refusal = (f"the switch lacks module(s) the SAS dialplan needs: {', '.join(missing)}; load them "
                            f"(modules.conf: load => {missing[0]}.so, or the rendered {self.plan.site.id}/modules.conf)"
                            " and restart the engine")
            self.log.error("switch refused: modules missing", missing=missing)
            self.refused.set()
            return False
        return True

    async def on_login(self) -> None:
        """After every (re)connect: rebuild live calls and agents from the switch itself."""
        if not await self._switch_is_fit():
            return
        since = self.clock()
        try:
            channels = await self._list({"Action": "CoreShowChannels"}, "CoreShowChannel")
            status = await self._list({"Action": "QueueStatus"}, None)
            # One round trip for every channel's tags (Status lists them all, each with its
            # ``Variable: NAME=value`` headers), however many calls are live.
            tagged = await self._list({"Action": "Status", "Variables": ",".join(TAG_VARIABLES)}, "Status")
        except (AmiLinkDown, AmiActionFailed) as exc:
            self.log.warning("resync failed, will retry at next login", error=str(exc))
            return
        now = self.clock()
        for notice in self.tracker.resync_members([i for i in status if i.get("Event") == "QueueMember"], now):
            self._notice(notice)
        entries = [e for e in status if e.get("Event") == "QueueEntry"]
        tags = {item.get("Uniqueid", ""): status_variables(item) for item in tagged}
        notices = self.tracker.resync(channels, entries, tags, self.clock(), since=since)
        self.resyncs += 1
        self.log.info("resynchronised", live_calls=len(self.tracker.calls), agents=len(self.tracker.agents),
                      adopted=sum(1 for n in notices if n.kind == NoticeKind.CALL_ADOPTED), resyncs=self.resyncs)
        for notice in notices:
            self._notice(notice)
        await self._restore_roles()
        # The journal closes what it still holds open and the switch no longer has.
        self.broadcast(Notice(NoticeKind.RESYNCHRONISED, self.clock(), data={
            "live": [c.call_id or f"{self.plan.site.id}-{c.uniqueid}" for c in self.tracker.calls.values()]}))
        await self.mutual_aid.load_state()

    async def _restore_roles(self) -> None:
        """Desk roles the switch keeps (AstDB), for desks this engine has not seen log in."""
        for interface, agent in list(self.tracker.agents.items()):
            role = self.roles.get(interface) or await self.db_get(C.DB_ROLE, interface)
            if role:
                self.roles[interface] = agent.role = role

    # --- AstDB: state that must outlive the engine lives on the switch ---------------------------

    async def db_get(self, family: str, key: str) -> str | None:
        try:
            answer = await self.link.send({"Action": "DBGet", "Family": family, "Key": key})
        except AmiActionFailed:
            return None  # "Database entry not found"
        items = answer if isinstance(answer, list) else [answer]
        for item in items:
            if item.get("Event") == "DBGetResponse":
                return str(item.get("Val", ""))
        return None

    async def db_put(self, family: str, key: str, value: str) -> None:
        await self.link.send({"Action": "DBPut", "Family": family, "Key": key, "Val": value})

    async def db_del(self, family: str, key: str) -> None:
        with contextlib.suppress(AmiActionFailed):  # already gone
            await self.link.send({"Action": "DBDel", "Family": family, "Key": key})

    async def _list(self, action: dict[str, str], item_event: str | None) -> list[dict[str, str]]:
        answer = await self.link.send(action)
        items = [as_event(m) for m in (answer if isinstance(answer, list) else [answer])]
        return [i for i in items if "Event" in i and not i["Event"].endswith("Complete")
                and (item_event is None or i["Event"] == item_event)]

    # --- desk requests ------------------------------------------------------------------------

    def _call(self, ident: str) -> Call:
        call = self.tracker.call_by_id(ident)
        if call is None:
            raise LookupError(f"no live call {ident}")
        return call

    async def qualify(self, ident: str, level: Priority, *, by: str, reason: str = "",
                      medical_advice: bool = False) -> dict[str, Any]:
        call = self._call(ident)
        call.qualification, call.qualification_reason, call.qualified_by = level.value, reason, by
        self.broadcast(Notice(NoticeKind.QUALIFIED, self.clock(), call.uniqueid,
                              {"level": level.value, "by": by, "reason": reason, "medical_advice": medical_advice}))
        target = qualification_target(self.plan, level, utcnow_from(self.clock()))
        self.log.info("qualified", call_id=call.call_id or call.uniqueid, level=level.value, by=by,
                      reason=reason or None, target=target or "stays")
        if target is None:
            return {"call": call.public(self.clock()), "target": None}
        leg = call.current_leg
        if leg is not None and leg.queue == target:
            # The regulator of the target queue qualifies the file it is already answering (a GP's
            # "simple medical advice" on a P2): the file is recorded, the caller stays with them.
            return {"call": call.public(self.clock()), "target": target, "moved": False}
        priority = qualification_priority(self.plan, level, call)
        return await self._move(call, target, priority, by=by, reason=f"qualified {level.value}")

    async def transfer(self, ident: str, queue: str, *, by: str, reason: str = "",
                       priority: int | None = None) -> dict[str, Any]:
        if queue not in self.plan.queues:
            raise RoutingError(f"unknown queue {queue!r}; the plan has {', '.join(self.plan.queues)}")
        call = self._call(ident)
        return await self._move(call, queue, call.priority if priority is None else priority, by=by,
                                reason=reason or "transfer")

    async def _move(self, call: Call, wanted: str, priority: int, *, by: str, reason: str) -> dict[str, Any]:
        target = answering_queue(self.plan, wanted, self.tracker.logged_in)
        if target != wanted:
            priority = self.plan.front_priority_for(call.line)  # a substitute queue takes it at its band's front
        move = plan_move(call, target, priority)
        transfer = Transfer(at=self.clock(), source_queue=move.source_queue, target_queue=target,
                            requested_by=by, reason=reason, mechanism=move.mechanism)
        if target != wanted:
            transfer.fallback_queue = target
        call.transfers.append(transfer)
        call.expected_move = (VisitOutcome.TRANSFERRED, target)
        previous_priority, call.priority = call.priority, priority
        self.log.info("moving caller", call_id=call.call_id or call.uniqueid, source=move.source_queue,
                      target=target, wanted=wanted, mechanism=move.mechanism, by=by, reason=reason)
        try:
            try:
                await self._send_move(move)
            except AmiActionFailed as exc:
                if move.mechanism != "transfer":
                    raise
                # The desk's leg was not the bridged one (or is gone): move the caller itself.
                self.log.warning("transfer refused, redirecting the caller", call_id=call.call_id or call.uniqueid,
                                 agent_channel=move.agent_channel, error=str(exc))
                move = move.as_redirect()
                transfer.mechanism = move.mechanism
                await self._send_move(move)
        except (AmiLinkDown, AmiActionFailed, AmiBusy, UnsafeValue) as exc:
            # Refused or failed before the switch moved anything: the caller is still where it was
            # (in a queue or with the agent), and the record says so — no move, no new priority.
            call.expected_move = None
            call.priority = previous_priority
            call.transfers.remove(transfer)
            self.log.warning("move failed, caller left in place", call_id=call.call_id or call.uniqueid,
                             error=str(exc))
            raise
        self._spawn(self._confirm(call, transfer))
        return {"call": call.public(self.clock()), "target": target, "wanted": wanted,
                "mechanism": move.mechanism}

    async def _send_move(self, move: Move) -> None:
        await self.link.send_in_order(move.actions())

    async def _confirm(self, call: Call, transfer: Transfer) -> None:
        """The caller must be seen in the target queue; if not, back to the front of a queue that
        can answer. Never a hang-up."""
        await asyncio.sleep(self.options.confirm_within)
        if transfer.confirmed_at is not None or call.state == CallState.ENDED:
            return
        if call.state in (CallState.WAITING, CallState.TALKING) and call.current_queue:
            transfer.confirmed_at = self.clock()  # it is in a queue (dialplan fallback): good enough
            return
        fallback = answering_queue(self.plan, transfer.target_queue, self.tracker.logged_in,
                                   avoid=transfer.target_queue)
        transfer.fallback_queue = fallback
        self.log.warning("transfer not confirmed, sending caller to the front of a queue",
                         call_id=call.call_id or call.uniqueid, target=transfer.target_queue, fallback=fallback)
        move = Move("redirect", call.channel, call.current_queue, fallback, self.plan.front_priority_for(call.line))
        try:
            await self._send_move(move)
        except (AmiLinkDown, AmiActionFailed, AmiBusy, UnsafeValue) as exc:
            self.log.error("fallback redirect failed; the dialplan fallback keeps the caller queued",
                           call_id=call.call_id or call.uniqueid, error=str(exc))

    # --- agents -------------------------------------------------------------------------------

    async def agent_login(self, interface: str, queues: list[str], *, name: str, role: str,
                          state_interface: str = "", by: str) -> dict[str, Any]:
        check_interface(self.plan, interface)
        unknown = [q for q in queues if q not in self.plan.queues]
        if unknown:
            raise RoutingError(f"unknown queue(s): {', '.join(unknown)}")
        for queue in queues:
            action = {"Action": "QueueAdd", "Queue": queue, "Interface": interface, "MemberName": name,
                      "Penalty": "0"}
            if state_interface:
                action["StateInterface"] = state_interface
            try:
                await self.link.send(action)
            except AmiActionFailed as exc:
                if "Already there" not in exc.message:
                    raise
        agent = self.tracker.agents.get(interface)
        if agent is not None:
            agent.role = role
        self.roles[interface] = role
        try:
            await self.db_put(C.DB_ROLE, interface, role)
        except (AmiLinkDown, AmiActionFailed) as exc:  # the desk is logged in; only a restart would lose the role
            self.log.warning("desk role not kept on the switch", interface=interface, error=str(exc))
        self.log.info("agent logged in", interface=interface, queues=queues, role=role, by=by)
        return {"interface": interface, "queues": queues, "role": role}

    async def agent_logout(self, interface: str, *, by: str) -> dict[str, Any]:
        agent = self.tracker.agents.get(interface)
        queues = list(agent.memberships) if agent else []
        for queue in queues:
            await self.link.send({"Action": "QueueRemove", "Queue": queue, "Interface": interface})
        await self.db_del(C.DB_ROLE, interface)
        self.roles.pop(interface, None)
        self.log.info("agent logged out", interface=interface, queues=queues, by=by)
        return {"interface": interface, "queues": queues}

    async def agent_pause(self, interface: str, paused: bool, *, reason: str = "", by: str) -> dict[str, Any]:
        if interface not in self.tracker.agents:
            raise LookupError(f"agent {interface} is not logged in")
        action = {"Action": "QueuePause", "Interface": interface, "Paused": "true" if paused else "false"}
        if reason:
            action["Reason"] = reason
        await self.link.send(action)
        self.log.info("agent paused" if paused else "agent resumed", interface=interface, reason=reason or None,
                      by=by)
        return {"interface": interface, "paused": paused, "reason": reason}

    # --- views --------------------------------------------------------------------------------

    def queues_view(self) -> list[dict[str, Any]]:
        now = self.clock()
        out = []
        for name, spec in self.plan.queues.items():
            waiting = self.tracker.waiting(name)
            out.append({
                "queue": name, "role": spec.role.value, "label": spec.label,
                "waiting": len(waiting),
                "longest_wait": round(max((now - c.waiting_visit.joined_at for c in waiting), default=0.0), 1),
                "logged_in": self.tracker.logged_in(name), "available": self.tracker.available(name, now),
            })
        return out

    def agents_view(self) -> list[dict[str, Any]]:
        out, now = [], self.clock()
        for agent in self.tracker.agents.values():
            view = agent.public(now)
            view["role"] = agent.role or self.roles.get(agent.interface, "")
            out.append(view)
        return out

    def health(self) -> dict[str, Any]:
        status = "refused" if self.refusal else "ok" if self.link.connected else "degraded"
        ami = "up" if self.link.connected else "stalled" if getattr(self.link, "stalled", False) else "down"
        return {"status": status, "ami": ami, "site": self.plan.site.id,
                "live_calls": len(self.tracker.calls), "resyncs": self.resyncs,
                **({"refusal": self.refusal} if self.refusal else {})}


def make_engine(plan: Plan, *, host: str, port: int, username: str, secret: str,
                options: EngineOptions | None = None, clock: Callable[[], float] = time.time,
                mqtt: MqttConfig | None = None) -> Engine:
    """An engine wired to a real AMI link (Asterisk or the emulator: the same code path)."""
    opts = options or EngineOptions()

    def link(engine: Engine) -> AmiLink:
        return AmiLink(host, port, username, secret, on_event=engine.on_event, on_login=engine.on_login,
                       action_timeout=opts.action_timeout)

    return Engine(plan=plan, link_factory=link, options=opts, clock=clock, mqtt=mqtt)
