"""The composition root: the one place that builds a running site — AMI link and engine, control
API, figures, journal, MQTT, dashboard — from a plan and its settings.

``sas-router run``, the demo, the load simulator and the tests all build their engine here, so
they run the same wiring (the copies in the CLI and the simulator had drifted: one gave the
journal the engine's clock, the other did not). A restart replaces the engine and hands the new
one to the API and the supervision through their ``attach``; nothing is patched from outside.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sas_router.engine.api import Client, ControlApi, serve
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import Plan
from sas_router.engine.service import Engine, EngineOptions, make_engine
from sas_router.supervision.figures import BUCKET
from sas_router.supervision.journal import Journal
from sas_router.supervision.service import Supervision

if TYPE_CHECKING:
    from sas_router.engine.settings import Settings

AMI_USER = "sas-router"


@dataclass
class RuntimeConfig:
    """What a running site is made of, however it was asked for (settings file, test, demo)."""

    ami_host: str
    ami_port: int
    ami_secret: str
    ami_username: str = AMI_USER
    options: EngineOptions = field(default_factory=EngineOptions)
    mqtt: MqttConfig | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 0
    #: Supervision (figures, /metrics, dashboard, alarms); off only for tests of the engine alone.
    supervise: bool = True
    journal_url: str | None = None
    journal_max_buffer: int = 100_000
    #: None: whoever owns the clock publishes the 30-second snapshots (the load simulator).
    snapshot_every: float | None = BUCKET
    #: Where a plan reload reads the plan, and the Asterisk directory it installs into.
    plan_file: Path | None = None
    switch_config: Path | None = None
    #: Asterisk's monitor directory as the engine sees it (the recordings; None: not reachable).
    recordings_path: Path | None = None
    clock: Callable[[], float] = time.time

    @classmethod
    def from_settings(cls, settings: Settings, *, plan_file: Path) -> RuntimeConfig:
        return cls(ami_host=settings.ami.host, ami_port=settings.ami.port,
                   ami_secret=settings.ami.secret.get_secret_value(), ami_username=settings.ami.username,
                   options=EngineOptions(confirm_within=settings.confirm_transfer_within,
                                         action_timeout=settings.ami.action_timeout,
                                         apply_presets=settings.apply_presets,
                                         partner_stale_after=settings.mqtt.partner_stale_after),
                   mqtt=settings.mqtt.config(), http_host=settings.http.host, http_port=settings.http.port,
                   journal_url=settings.journal.url(), journal_max_buffer=settings.journal.max_buffer,
                   plan_file=plan_file, switch_config=settings.switch_config,
                   recordings_path=settings.recordings_path)


class Runtime:
    """One site's engine with its control API and supervision, connected to one switch's AMI —
    an emulated one or a real Asterisk: nothing here knows which."""

    def __init__(self, plan: Plan, clients: dict[str, Client], config: RuntimeConfig) -> None:
        self.plan, self.clients, self.config = plan, clients, config
        self.engine = self._new_engine(config.options)
        self.api = ControlApi(self.engine, clients, plan_file=config.plan_file, switch_config=config.switch_config)
        self.supervision: Supervision | None = None
        if config.supervise:
            journal = (Journal(config.journal_url, plan.site.id, clock=config.clock,
                               max_buffer=config.journal_max_buffer) if config.journal_url else None)
            self.supervision = Supervision(self.engine, journal=journal, snapshot_every=config.snapshot_every,
                                           recordings_path=config.recordings_path)
            self.supervision.install(self.api)
        self.runner: Any = None
        self.base_url = ""

    def _new_engine(self, options: EngineOptions) -> Engine:
        config = self.config
        return make_engine(self.plan, host=config.ami_host, port=config.ami_port, username=config.ami_username,
                           secret=config.ami_secret, options=options, clock=config.clock, mqtt=config.mqtt)

    async def start(self) -> Runtime:
        if self.supervision is not None:
            await self.supervision.start()
        await self.engine.start()
        self.runner = await serve(self.api, self.config.http_host, self.config.http_port)
        host, bound = self.runner.addresses[0][:2]
        self.base_url = f"http://{host}:{bound}"
        return self

    async def restart_engine(self, options: EngineOptions | None = None) -> Engine:
        """A new engine, as after a crash: empty memory, same switch, same API and supervision."""
        await self.engine.stop()
        self.engine = self._new_engine(options or self.engine.options)
        self.api.attach(self.engine)
        if self.supervision is not None:
            self.supervision.attach(self.engine)
        await self.engine.start()
        return self.engine

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.supervision is not None:
            await self.supervision.stop()
        await self.engine.stop()
