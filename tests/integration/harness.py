"""A live SAS for integration tests: the emulated switch on real TCP, the engine, its HTTP API.

Everything runs on the wall clock with short agent delays, so a test exercises the same code
path as production (panoramisk over a socket, aiohttp over a socket). Only the engine's clock
may be shifted, to put "now" on a Tuesday morning or on 14 July.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from sas_router.engine.api import Client
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import Plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.service import Engine, EngineOptions
from sas_router.simulator.live import LiveSite, eventually, start_live_site
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.model import Channel, Event
from sas_router.simulator.softswitch.server import AmiServer
from sas_router.simulator.softswitch.site import add_agent

ROOT = Path(__file__).resolve().parents[2]
#: The room's desk token acts for every desk both example plans declare (the scenarios log many in);
#: the per-desk authority tests use tokens of their own, bound to one desk each.
ROOM_DESKS = ("1001-1040", "2001-2030", "3001-3020", "4001-4020", "5001-5010", "6001-6010")
TOKENS = {"desk-token": Client("desk-12", "desk", ROOM_DESKS), "super-token": Client("sup-1", "supervisor"),
          "admin-token": Client("admin", "admin"), "wall-screen-token-0123": Client("salle-mur", "viewer"),
          "lrm1-token-0123456789": Client("lrm-1", "desk", ("1001",)),
          "lrm2-token-0123456789": Client("lrm-2", "desk", ("1002",))}


@dataclass
class Site:
    live: LiveSite
    http: aiohttp.ClientSession

    @property
    def plan(self) -> Plan:
        return self.live.plan

    @property
    def switch(self) -> Softswitch:
        return self.live.switch

    @property
    def server(self) -> AmiServer:
        return self.live.server

    @property
    def engine(self) -> Engine:
        return self.live.engine

    @property
    def events(self) -> list[Event]:
        return self.live.events

    @property
    def base_url(self) -> str:
        return self.live.base_url

    # --- the switch side ------------------------------------------------------------------------

    def call(self, number: str, caller: str = "0612345678", *, name: str = "", withheld: bool = False,
             headers: dict[str, str] | None = None) -> Channel:
        ch = self.switch.inbound_call(C.OPERATOR_ENDPOINT, number, caller_num=caller, caller_name=name,
                                      withheld=withheld, headers=headers)
        assert ch is not None, f"no line for {number}"
        self.server._wake.set()
        return ch

    def desk(self, extension: str, answer_after: float = 0.1, talk_for: float | None = None) -> str:
        """A desk phone; with ``talk_for`` the agent hangs up that many seconds after answering."""
        add_agent(self.switch, extension, answer_after=answer_after, talk_for=talk_for)
        return f"PJSIP/{extension}"

    def joined(self, channel: Channel) -> list[str]:
        return [e.get("Queue") for e in self.events if e.name == "QueueCallerJoin"
                and e.get("Uniqueid") == channel.uniqueid]

    # --- the API side ---------------------------------------------------------------------------

    async def post(self, path: str, body: Any, token: str = "desk-token") -> tuple[int, Any]:
        async with self.http.post(self.base_url + path, json=body,
                                  headers={"Authorization": f"Bearer {token}"} if token else {}) as resp:
            return resp.status, await resp.json()

    async def get(self, path: str, token: str | None = "desk-token") -> tuple[int, Any]:
        async with self.http.get(self.base_url + path,
                                 headers={"Authorization": f"Bearer {token}"} if token else {}) as resp:
            return resp.status, await resp.json()

    async def login(self, interface: str, queues: list[str], role: str, name: str = "") -> None:
        status, body = await self.post("/api/agents/login", {"interface": interface, "queues": queues,
                                                             "name": name or interface.split("/")[1], "role": role})
        assert status == 200, body
        agents = self.engine.tracker.agents
        await eventually(lambda: interface in agents and set(queues) <= set(agents[interface].memberships),
                         what=f"{interface} logged in")

    async def close(self) -> None:
        await self.http.close()
        await self.live.stop()


async def start_site(plan_file: str | Path = "sas-69.yaml", *, clock: Callable[[], float] = time.time,
                     confirm_within: float = 1.0, options: EngineOptions | None = None,
                     mqtt: MqttConfig | None = None, journal_url: str | None = None) -> Site:
    """A live site; single-site tests leave the plan's switch-over presets alone (their partner
    trunk is not linked), the two-site tests pass options that apply them."""
    live = await start_live_site(ROOT / "dialplans" / plan_file, TOKENS, clock=clock, mqtt=mqtt,
                                 journal_url=journal_url,
                                 options=options or EngineOptions(confirm_within=confirm_within, action_timeout=2.0,
                                                                  apply_presets=False))
    live.engine.link._manager.reconnect_timeout = 1
    await eventually(lambda: live.engine.link.connected and live.engine.resyncs >= 1, what="engine connected")
    return Site(live, aiohttp.ClientSession())


def shifted_clock(local_iso: str, tz: str = "Europe/Paris") -> Callable[[], float]:
    """A clock that reads ``local_iso`` now and runs at wall-clock speed."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    target = datetime.fromisoformat(local_iso).replace(tzinfo=ZoneInfo(tz)).timestamp()
    offset = target - time.time()
    return lambda: time.time() + offset


class MovableClock:
    """An engine clock that runs at wall-clock speed from a chosen local time and can jump, so a
    test can live through 20:00 and then 08:00 the next morning in a few seconds."""

    def __init__(self, local_iso: str, tz: str = "Europe/Paris") -> None:
        self.tz = tz
        self.jump_to(local_iso)

    def jump_to(self, local_iso: str) -> None:
        from datetime import datetime
        from zoneinfo import ZoneInfo

        target = datetime.fromisoformat(local_iso).replace(tzinfo=ZoneInfo(self.tz)).timestamp()
        self.offset = target - time.time()

    def __call__(self) -> float:
        return time.time() + self.offset
