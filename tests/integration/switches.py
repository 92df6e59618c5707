"""One SAS room on either switch: the emulator, or a real Asterisk 22 with real SIP phones.

A scenario test asks for ``room`` and is run once per switch (``BACKENDS``). It places calls and
registers desks through the same few verbs, drives the engine through its HTTP API, and checks
what a user would notice: which queue a call reached, who answered, and — on the SIP side — that
the caller never got a BYE. On the real switch the callers and desks are real SIP user agents (aiosipua) on
distinct loopback addresses (the operator's SBC, the room's phones), the configuration is the
plan's render installed as an admin installs it, and the engine reaches Asterisk over AMI exactly
as on a site.

Where no real Asterisk is available the ``asterisk`` half is skipped with the reason; under CI
(``CI=true``) that is an error instead, so a CI run cannot pass without the real switch.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from panoramisk import Manager
from sas_router.engine.api import Client
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.mutual_aid import DB_OVERFLOW_OFF
from sas_router.engine.plan import Plan, load_plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.service import EngineOptions
from sas_router.simulator.live import EngineStack, eventually, start_engine_stack
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.model import Channel
from sas_router.simulator.softswitch.server import AmiServer
from sas_router.simulator.softswitch.site import add_agent, ami_users, build_site

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ("emulator", "asterisk")
#: The room's desk token acts for every desk both example plans declare (the scenarios log many in);
#: the per-desk authority tests use tokens of their own, bound to one desk each.
ROOM_DESKS = ("1001-1040", "2001-2030", "3001-3020", "4001-4020", "5001-5010", "6001-6010")
TOKENS = {"desk-token": Client("desk-12", "desk", ROOM_DESKS), "super-token": Client("sup-1", "supervisor"),
          "admin-token": Client("admin", "admin")}
#: Loopback addresses standing for the hosts of a site: the operator's SBC and the room's phones.
OPERATOR_ADDRESS = "127.0.0.2"
DESKS_ADDRESS = "127.0.0.3"


class CallerLeg(Protocol):
    caller: str

    @property
    def dropped(self) -> bool: ...

    def hangup(self) -> None: ...


@dataclass
class EmulatedCaller:
    channel: Channel
    switch: Softswitch
    caller: str
    ended_by_us: bool = False

    @property
    def dropped(self) -> bool:
        return self.channel.hungup and not self.ended_by_us

    def hangup(self) -> None:
        self.ended_by_us = True
        if not self.channel.hungup:
            self.switch.request_hangup(self.channel, 16, soft=False)

    async def say_tone(self, hz: float, seconds: float, workdir: Path) -> None:
        self.channel.tone_hz = hz  # what the emulator's MixMonitor then writes


class Switch(Protocol):
    name: str
    plan: Plan
    ami_port: int
    ami_secret: str

    async def desk(self, extension: str, answer_after: float | None = 0.2) -> str: ...

    def call(self, number: str, caller: str, *, name: str = "", withheld: bool = False,
             headers: dict[str, str] | None = None) -> CallerLeg: ...

    async def desk_transfer(self, extension: str, number: str) -> None: ...

    async def db_get(self, family: str, key: str) -> str | None: ...

    async def restart(self) -> None: ...

    def queue_callers(self, queue: str) -> list[tuple[str, int]]: ...

    async def close(self) -> None: ...


@dataclass
class EmulatedSwitch:
    plan: Plan
    name: str = "emulator"
    secret: str = "room-secret"
    switch: Softswitch = field(init=False)
    server: AmiServer = field(init=False)
    ami_port: int = 0

    @property
    def ami_secret(self) -> str:
        return self.secret

    @property
    def monitor_dir(self) -> Path | None:
        return self.switch.monitor_dir

    async def start(self) -> None:
        self.switch = build_site(self.plan, Scheduler(virtual=False))
        self.server = AmiServer(self.switch, ami_users(self.plan, {"sas-router": self.secret}))
        self.ami_port = await self.server.start()

    async def desk(self, extension: str, answer_after: float | None = 0.2) -> str:
        add_agent(self.switch, extension, answer_after=answer_after)
        return f"PJSIP/{extension}"

    def call(self, number: str, caller: str, *, name: str = "", withheld: bool = False,
             headers: dict[str, str] | None = None) -> EmulatedCaller:
        channel = self.switch.inbound_call(C.OPERATOR_ENDPOINT, number, caller_num=caller, caller_name=name,
                                           withheld=withheld, headers=headers)
        assert channel is not None, f"no line for {number}"
        self.server._wake.set()
        return EmulatedCaller(channel, self.switch, caller)

    async def desk_transfer(self, extension: str, number: str) -> None:
        problem = self.switch.desk_transfer(extension, number)
        assert problem is None, problem
        self.server._wake.set()

    async def db_get(self, family: str, key: str) -> str | None:
        return self.switch.astdb.get(f"{family}/{key}")

    async def restart(self) -> None:
        self.switch.restart()
        self.server._wake.set()

    @contextlib.asynccontextmanager
    async def stalled(self) -> AsyncIterator[None]:
        """The switch stops answering AMI (TCP stays up) while the block runs."""
        self.server.faults.stall_responses = True
        try:
            yield
        finally:
            self.server.faults.stall_responses = False

    async def unload_module(self, module: str) -> None:
        self.switch.modules.discard(module)

    async def load_module(self, module: str) -> None:
        self.switch.modules.add(module)

    def queue_callers(self, queue: str) -> list[tuple[str, int]]:
        """(caller number, priority) of the callers waiting in ``queue``, in service order."""
        return [(c.channel.cid_num, c.priority) for c in self.switch.queues.queues[queue].callers]

    async def close(self) -> None:
        await self.server.stop()


def real_asterisk_or_skip() -> Any:
    from sas_router.simulator.real_asterisk import AsteriskUnavailable, locate

    try:
        return locate()
    except AsteriskUnavailable as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI needs the real Asterisk: {exc}")
        pytest.skip(str(exc))


class RealSwitch:
    """A real Asterisk for the whole test session, reset between tests (channels hung up,
    dynamic members removed, the sas-* AstDB families cleared, queue statistics reset)."""

    name = "asterisk"

    def __init__(self, plan: Plan, workdir: Path, *, address: str = "127.0.0.1", partners: Any = None,
                 sip_port: int | None = None) -> None:
        from sas_router.simulator.real_asterisk import prepare

        real_asterisk_or_skip()
        shutil.rmtree(workdir, ignore_errors=True)
        self.host = prepare(plan, workdir, address=address, operator_addresses=[OPERATOR_ADDRESS],
                            partners=partners, sip_port=sip_port)
        self.plan = self.host.plan
        self.ami_port = self.host.ami_port
        self.phones: list[Any] = []
        self.trunk: Any = None
        self.host.start_sync()

    @property
    def ami_secret(self) -> str:
        return self.host.ami_secret

    @property
    def monitor_dir(self) -> Path:
        return self.host.run_dir / "spool" / "monitor"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host.sip_address, self.host.sip_port)

    async def desk(self, extension: str, answer_after: float | None = 0.2) -> str:
        from sas_router.simulator.sip_phone import register_desk

        phone = await register_desk(extension=extension, password=self.host.desk_password(extension),
                                    switch=self.address, address=DESKS_ADDRESS, answer_after=answer_after)
        self.phones.append(phone)
        return phone.interface

    async def open_trunk(self) -> None:
        from sas_router.simulator.sip_phone import Trunk

        if self.trunk is None:
            self.trunk = await Trunk.open(OPERATOR_ADDRESS, self.address)

    def call(self, number: str, caller: str, *, name: str = "", withheld: bool = False,
             headers: dict[str, str] | None = None) -> Any:
        assert self.trunk is not None, "open_trunk() first"
        return self.trunk.dial(number, caller, name=name, withheld=withheld, headers=headers)

    async def desk_transfer(self, extension: str, number: str) -> None:
        phone = next(p for p in reversed(self.phones) if p.extension == extension)
        phone.transfer(number)

    async def db_get(self, family: str, key: str) -> str | None:
        out = await self.host.cli(f"database get {family} {key}")
        match = re.search(r"^Value: (.*)$", out, re.M)
        return match.group(1).strip() if match else None

    async def restart(self) -> None:
        await self.host.restart()

    @contextlib.asynccontextmanager
    async def stalled(self) -> AsyncIterator[None]:
        """The whole Asterisk process frozen (SIGSTOP) while the block runs: sockets open, nothing
        answered — what a switch stuck on a lock or swapping looks like from outside."""
        assert self.host.process is not None
        self.host.process.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.host.process.send_signal(signal.SIGCONT)

    async def unload_module(self, module: str) -> None:
        out = await self.host.cli(f"module unload {module}.so")
        assert "Unloaded" in out or "unloaded" in out, out

    async def load_module(self, module: str) -> None:
        await self.host.cli(f"module load {module}.so")

    def queue_callers(self, queue: str) -> list[tuple[str, int]]:
        out = self.host.cli_sync(f"queue show {queue}")
        found = []
        for channel, prio in re.findall(r"^\s+\d+\. (\S+) \(wait: [^,]+, prio: (\d+)\)", out, re.M):
            uid = self.host.cli_sync(f"core show channel {channel}")
            number = re.search(r"Caller ID: (\S+)", uid)
            found.append((number.group(1) if number else channel, int(prio)))
        return found

    async def reset(self) -> None:
        """Between tests: phones and trunk closed (their sockets belong to the test's event loop),
        every channel hung up, members removed, the sas-* AstDB families and statistics cleared."""
        if self.trunk is not None:
            await self.trunk.close()
            self.trunk = None
        for phone in self.phones:
            await phone.close()
        self.phones.clear()
        if self.host.process is None or self.host.process.poll() is not None:
            return
        await self.host.cli("channel request hangup all")
        await eventually(lambda: "0 active channels" in self.host.cli_sync("core show channels count"),
                         timeout=10, what="channels gone")
        status = await self.host.cli("queue show")
        for member, queue in _dynamic_members(status):
            await self.host.cli(f"queue remove member {member} from {queue}")
        for family in (C.DB_RECENT, C.DB_SWITCH, C.DB_ROLE, DB_OVERFLOW_OFF, "sas-switch-meta", "sas-switch-hold",
                       "Queue/PersistentMembers"):
            await self.host.cli(f"database deltree {family}")
        await self.host.cli("queue reset stats")

    def stop(self) -> None:
        self.host.stop_sync()


def _dynamic_members(queue_show: str) -> list[tuple[str, str]]:
    """(interface, queue) of every dynamic member in ``queue show``; a member line reads
    ``      1001 (PJSIP/1001) (ringinuse disabled) (dynamic) (Unavailable) has taken ...``."""
    found, queue = [], ""
    for line in queue_show.splitlines():
        head = re.match(r"^(\S+) has \d+ calls", line)
        if head:
            queue = head.group(1)
            continue
        member = re.match(r"^\s+.*?\((\w+/[^)\s]+)\).*\(dynamic\)", line)
        if member and queue:
            found.append((member.group(1), queue))
    return found


@dataclass
class Room:
    """The engine, its API and a switch with phones: what a scenario test talks to."""

    switch: Any
    stack: EngineStack
    http: aiohttp.ClientSession
    listener: Manager | None = None
    events: list[dict[str, str]] = field(default_factory=list)

    @property
    def engine(self) -> Any:
        return self.stack.engine

    @property
    def plan(self) -> Plan:
        return self.stack.plan

    async def post(self, path: str, body: Any, token: str = "desk-token") -> tuple[int, Any]:
        async with self.http.post(self.stack.base_url + path, json=body,
                                  headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str, token: str = "super-token") -> tuple[int, Any]:
        async with self.http.get(self.stack.base_url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()

    async def desk(self, extension: str, queues: list[str], role: str, answer_after: float | None = 0.2) -> str:
        interface = await self.switch.desk(extension, answer_after)
        status, body = await self.post("/api/agents/login", {"interface": interface, "queues": queues,
                                                             "name": extension, "role": role})
        assert status == 200, body
        agents = self.engine.tracker.agents
        await eventually(lambda: interface in agents and set(queues) <= set(agents[interface].memberships),
                         timeout=10, what=f"{interface} logged in")
        return interface

    def call(self, number: str, caller: str, **kwargs: Any) -> CallerLeg:
        return self.switch.call(number, caller, **kwargs)

    async def tracked(self, leg: CallerLeg, timeout: float = 10.0) -> Any:
        """The engine's record of this caller's call (every test caller has its own number)."""
        return await eventually(lambda: next((c for c in self.engine.tracker.calls.values()
                                              if c.caller_num == leg.caller and c.ended_at is None), None),
                                timeout=timeout, what=f"call from {leg.caller} tracked")

    async def talking_in(self, call: Any, queue: str, timeout: float = 10.0) -> None:
        await eventually(lambda: call.current_leg is not None and call.current_leg.queue == queue,
                         timeout=timeout, what=f"answered in {queue}")

    async def waiting_in(self, call: Any, queue: str, timeout: float = 10.0) -> None:
        await eventually(lambda: call.current_visit is not None and call.current_visit.queue == queue
                         and call.current_leg is None, timeout=timeout, what=f"waiting in {queue}")

    def joined(self, call: Any) -> list[str]:
        return [e["Queue"] for e in self.events if e.get("Event") == "QueueCallerJoin"
                and e.get("Uniqueid") == call.uniqueid]

    @contextlib.asynccontextmanager
    async def link_outage(self) -> AsyncIterator[None]:
        """The engine's AMI link down for as long as the block runs (its reconnects go to a dead
        port), then back: the switch goes on without it, as when a network path or the engine
        host hiccups. Returns once the engine has logged in again and resynchronised."""
        engine = self.engine
        manager = engine.link._manager
        resyncs, port = engine.resyncs, manager.config["port"]
        from sas_router.simulator.real_asterisk import free_port

        manager.config["port"] = free_port()  # nothing listens there
        manager.protocol.transport.close()
        await eventually(lambda: not engine.link.connected, what="link down")
        try:
            yield
        finally:
            manager.config["port"] = port
        await eventually(lambda: engine.link.connected and engine.resyncs > resyncs, timeout=15,
                         what="link back and resynchronised")

    async def on_switch(self, action: dict[str, str]) -> Any:
        """An action sent by the room's own AMI session (not the engine's): a colleague at the
        switch's console, or the switch acting by itself."""
        assert self.listener is not None
        return await self.listener.send_action(action, as_list=False)

    async def close(self) -> None:
        if self.http.closed:
            return
        if self.listener is not None:
            self.listener.close()
        await self.http.close()
        await self.stack.stop()


async def open_room(switch: Any, *, clock: Callable[[], float] = time.time,
                    options: EngineOptions | None = None, wait_connected: bool = True,
                    mqtt: MqttConfig | None = None) -> Room:
    stack = await start_engine_stack(switch.plan, TOKENS, ami_port=switch.ami_port, secret=switch.ami_secret,
                                     clock=clock, mqtt=mqtt, options=options or EngineOptions(confirm_within=3.0,
                                                                                   action_timeout=3.0,
                                                                                   apply_presets=False),
                                     recordings_path=switch.monitor_dir)
    stack.engine.link._manager.reconnect_timeout = 1
    room = Room(switch, stack, aiohttp.ClientSession())
    # A second AMI session records what the switch published, as the engine's own would see it.
    listener = Manager(host="127.0.0.1", port=switch.ami_port, username="sas-router", secret=switch.ami_secret,
                       ping_delay=0, reconnect_timeout=1)

    def record(_: Manager, message: Any) -> None:
        room.events.append({str(k): str(v) for k, v in message.items()})

    listener.register_event("*", record)
    await listener.connect()
    room.listener = listener
    if wait_connected:
        await eventually(lambda: stack.engine.link.connected and stack.engine.resyncs >= 1, timeout=10,
                         what="engine connected")
    return room


def load(site: str = "sas-69") -> Plan:
    return load_plan(ROOT / "dialplans" / f"{site}.yaml")

