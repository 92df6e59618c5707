"""One live SAS in a process: the emulated switch on a real AMI socket, the engine connected to
it over TCP, and the control API on a real HTTP socket.

The demo and the integration tests both start it, so they exercise exactly the production
path (panoramisk over a socket, aiohttp over a socket); only the switch is emulated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sas_router.engine.api import Client, ControlApi
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import Plan, load_plan
from sas_router.engine.runtime import AMI_USER, Runtime, RuntimeConfig
from sas_router.engine.service import Engine, EngineOptions
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.model import Event
from sas_router.simulator.softswitch.server import AmiServer
from sas_router.simulator.softswitch.site import ami_users, build_site
from sas_router.supervision.figures import BUCKET
from sas_router.supervision.service import Supervision

__all__ = ["AMI_USER", "EngineStack", "LiveSite", "eventually", "start_engine_stack", "start_live_site"]


async def eventually(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy and return its value; the live site runs on the wall
    clock, so its steps are awaited, with a bound that names what did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


#: The engine with its control API and supervision: the production composition root.
EngineStack = Runtime


async def start_engine_stack(plan: Plan, tokens: dict[str, Client], *, ami_port: int, secret: str,
                             ami_host: str = "127.0.0.1", clock: Callable[[], float] = time.time,
                             options: EngineOptions | None = None, http_port: int = 0,
                             mqtt: MqttConfig | None = None, supervise: bool = True,
                             journal_url: str | None = None, snapshot_every: float | None = BUCKET,
                             recordings_path: Path | None = None) -> Runtime:
    config = RuntimeConfig(ami_host=ami_host, ami_port=ami_port, ami_secret=secret, options=options or EngineOptions(),
                           mqtt=mqtt, http_port=http_port, supervise=supervise, journal_url=journal_url,
                           snapshot_every=snapshot_every, clock=clock, recordings_path=recordings_path)
    return await Runtime(plan, tokens, config).start()


@dataclass
class LiveSite:
    plan: Plan
    switch: Softswitch
    server: AmiServer
    stack: Runtime
    events: list[Event]

    @property
    def engine(self) -> Engine:
        return self.stack.engine

    @property
    def api(self) -> ControlApi:
        return self.stack.api

    @property
    def base_url(self) -> str:
        return self.stack.base_url

    @property
    def supervision(self) -> Supervision | None:
        return self.stack.supervision

    @property
    def secret(self) -> str:
        return self.stack.config.ami_secret

    @property
    def mqtt(self) -> MqttConfig | None:
        return self.stack.config.mqtt

    async def restart_engine(self, options: EngineOptions | None = None) -> Engine:
        return await self.stack.restart_engine(options)

    async def stop(self) -> None:
        await self.stack.stop()
        await self.server.stop()


async def start_live_site(plan_file: Path, tokens: dict[str, Client], *, clock: Callable[[], float] = time.time,
                          options: EngineOptions | None = None, secret: str = "live-secret",
                          http_port: int = 0, mqtt: MqttConfig | None = None,
                          plan: Plan | None = None, supervise: bool = True,
                          journal_url: str | None = None, scheduler: Scheduler | None = None,
                          record_events: bool = True) -> LiveSite:
    """A live site on the emulated switch; with ``supervise`` (default) the figures, /metrics and
    the dashboard too, and with ``journal_url`` the durable journal. A virtual ``scheduler`` is
    advanced by its owner (the load simulator's fast-forward), who then also publishes the
    30-second snapshots."""
    plan = plan or load_plan(plan_file)
    scheduler = scheduler or Scheduler(virtual=False)
    switch = build_site(plan, scheduler)
    events: list[Event] = []
    if record_events:
        switch.listeners.append(events.append)
    # The AMI user as the rendered manager.conf defines it (classes, event filters): the engine
    # gets exactly the events a real Asterisk with that file would send it.
    server = AmiServer(switch, ami_users(plan, {AMI_USER: secret}))
    port = await server.start()
    stack = await start_engine_stack(plan, tokens, ami_port=port, secret=secret, clock=clock, options=options,
                                     http_port=http_port, mqtt=mqtt, supervise=supervise, journal_url=journal_url,
                                     snapshot_every=None if scheduler.virtual else BUCKET,
                                     recordings_path=switch.monitor_dir)
    return LiveSite(plan, switch, server, stack, events)
