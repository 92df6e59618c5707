"""Stand-ins for the switch side of the engine, for tests that need no switch."""

from __future__ import annotations

from typing import Any


class StubLink:
    """The AMI side of the engine without a switch: every action succeeds and is kept."""

    connected = True

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.latencies: list[float] = [0.002, 0.003]
        self.latency_counts = [0, 1, 1] + [0] * 10
        self.latency_sum = 0.005

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, action: dict[str, Any]) -> dict[str, str]:
        self.sent.append(dict(action))
        return {"Response": "Success"}

    async def send_in_order(self, actions: list[dict[str, Any]]) -> list[dict[str, str]]:
        return [await self.send(action) for action in actions]
