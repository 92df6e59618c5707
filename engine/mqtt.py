"""The MQTT bus between SAS sites and towards supervision (aiomqtt over a real broker).

Topics, all under a configurable prefix (default ``sas``):

* ``<prefix>/<site>/status`` — ``online`` / ``offline`` (retained; ``offline`` is the broker's
  last will, so a crashed engine is seen as silent at once).
* ``<prefix>/<site>/load`` — the site's load every ``publish_every`` seconds (retained, JSON,
  see :func:`engine.core.mutual_aid.load_message`); partners read it to choose where to overflow.
* further topics published by supervision through :meth:`MqttBus.publish`.

The bus is an adapter: losing the broker never stops call handling or overflow (the engine
falls back to the plan's order); it reconnects with back-off and says so in the logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt
import structlog
from sas_router.engine.aio import cancel_and_wait, cancel_requested

log = structlog.get_logger("engine.mqtt")


@dataclass
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "sas"
    username: str | None = None
    password: str | None = None
    publish_every: float = 5.0
    keepalive: int = 10


class MqttBus:
    def __init__(self, config: MqttConfig, site: str, *, snapshot: Callable[[], dict[str, Any]],
                 on_load: Callable[[dict[str, Any]], None], on_offline: Callable[[str], None],
                 on_link: Callable[[bool], None]) -> None:
        self.config, self.site = config, site
        self._snapshot, self._on_load, self._on_offline, self._on_link = snapshot, on_load, on_offline, on_link
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.malformed = 0
        self.log = log.bind(site=site, broker=f"{config.host}:{config.port}")

    def topic(self, site: str, leaf: str) -> str:
        return f"{self.config.prefix}/{site}/{leaf}"

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        """Say ``offline`` before leaving: a clean disconnect does not fire the last will, and the
        partners must stop counting on this site at once."""
        client = self._client
        if client is not None and self.connected:
            with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
                await asyncio.wait_for(client.publish(self.topic(self.site, "status"), "offline", qos=1,
                                                      retain=True), timeout=1.0)
        if self._task is not None:
            await cancel_and_wait([self._task], what="mqtt bus")
        self._task = None
        self._set_link(False)

    async def publish(self, leaf: str, payload: dict[str, Any], *, retain: bool = False) -> bool:
        """Publish JSON under this site's topic; a message while the broker is away is dropped
        and counted (figures are re-published on the next interval anyway)."""
        client = self._client
        if client is None or not self.connected:
            self.dropped += 1
            return False
        try:
            await client.publish(self.topic(self.site, leaf), json.dumps(payload, separators=(",", ":")),
                                 qos=0, retain=retain)
        except aiomqtt.MqttError:
            self.dropped += 1
            return False
        self.published += 1
        return True

    def _set_link(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self._on_link(up)

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            will = aiomqtt.Will(self.topic(self.site, "status"), "offline", qos=1, retain=True)
            try:
                async with aiomqtt.Client(self.config.host, self.config.port, identifier=f"sas-router-{self.site}",
                                          username=self.config.username, password=self.config.password,
                                          keepalive=self.config.keepalive, will=will) as client:
                    self._client = client
                    await client.publish(self.topic(self.site, "status"), "online", qos=1, retain=True)
                    await client.subscribe(f"{self.config.prefix}/+/load")
                    await client.subscribe(f"{self.config.prefix}/+/status")
                    self._set_link(True)
                    self.log.info("mqtt connected")
                    backoff = 1.0
                    async with asyncio.TaskGroup() as group:
                        group.create_task(self._publish_loop())
                        group.create_task(self._receive_loop(client))
            except* aiomqtt.MqttError as errors:
                self._client = None
                was_up = self.connected
                self._set_link(False)
                self.log.warning("mqtt link down; overflow partners chosen by plan order",
                                 error=str(errors.exceptions[0]), retry_in=backoff, was_up=was_up)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _publish_loop(self) -> None:
        while not cancel_requested():
            await self.publish("load", self._snapshot(), retain=True)
            await asyncio.sleep(self.config.publish_every)

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            parts = str(message.topic).split("/")
            if len(parts) != 3 or parts[1] == self.site:
                continue
            site, leaf = parts[1], parts[2]
            raw = message.payload if isinstance(message.payload, bytes | bytearray) else str(message.payload).encode()
            if leaf == "status":
                if raw.decode(errors="replace") == "offline":
                    self._on_offline(site)
                continue
            if message.retain:
                continue  # an old retained load says nothing about now: wait for a live one
            try:
                payload = json.loads(raw)
                if not isinstance(payload, dict) or payload.get("site") != site:
                    raise ValueError("load message for another site or not an object")
                self._on_load(payload)
            except ValueError as exc:
                self.malformed += 1
                self.log.warning("malformed load message skipped", topic=str(message.topic), error=str(exc))
