"""Real SIP calls into a real Asterisk, from the same caller model as the emulated day.

The driver stands where the operator's SBC stands: it sends each planned call from an address
the site's ``sip.operator.match`` lists (so Asterisk identifies it as the operator trunk and
routes it exactly as a real call), to the planned line's number, with the planned caller's
identity in P-Asserted-Identity — a number per caller, withheld when the model says so. The
engine, the dashboard and the desks' phones then see a real load on the real switch.

What the SIP side cannot know: when a desk picks up (Asterisk answers the caller itself, in the
dialplan, before the queue). So a caller stays on the line for its patience plus the talk time of
the desk that would end its call, then hangs up; the engine's figures say who was answered. A
caller that the switch hangs up first is recorded as ``dropped`` — the fault this driver exists
to catch.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog
from sas_router.simulator.load import LoadProfile, PlannedCall, talk_time
from sas_router.simulator.sip_phone import SipCaller, Trunk

log = structlog.get_logger("simulator.sip")


@dataclass
class SipOutcome:
    planned: PlannedCall
    caller: str
    placed_at: float
    state: str = "dialing"
    ended_at: float | None = None
    status: int = 0


def caller_number(index: int, planned: PlannedCall) -> str:
    """The planned caller's number, or one of its own (06 and eight digits) when the model left
    it out: one number per caller, so no simulated call looks like a repeat of another."""
    return planned.caller or f"06{90_000_000 + index:08d}"


@dataclass
class SipLoad:
    """Plays planned calls as SIP calls from the operator trunk's address."""

    switch: tuple[str, int]
    address: str
    profile: LoadProfile = field(default_factory=LoadProfile)
    #: Wall seconds per planned second (0.1 plays a day in 2.4 h).
    speed: float = 1.0
    outcomes: list[SipOutcome] = field(default_factory=list)

    def hold_for(self, planned: PlannedCall) -> float:
        """Seconds the caller stays on the line: its patience, then the talk time it would get."""
        role = "n1" if planned.level == "P0" else "n2-amu" if planned.level == "P1" else "n2-mg"
        return (planned.patience or 120.0) + planned.qualify_after + talk_time(self.profile, role, planned.talk)

    async def run(self, calls: list[PlannedCall], *, stop: asyncio.Event | None = None) -> list[SipOutcome]:
        stop = stop or asyncio.Event()
        trunk = await Trunk.open(self.address, self.switch)
        log.info("sip load started", switch=f"{self.switch[0]}:{self.switch[1]}", source=self.address,
                 calls=len(calls))
        running: list[asyncio.Task[None]] = []
        try:
            origin, began = (calls[0].at if calls else 0.0), time.monotonic()
            for index, planned in enumerate(calls):
                delay = (planned.at - origin) * self.speed - (time.monotonic() - began)
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                number = caller_number(index, planned)
                leg = trunk.dial(planned.number, number, withheld=planned.withheld)
                outcome = SipOutcome(planned, number, time.time())
                self.outcomes.append(outcome)
                running.append(asyncio.ensure_future(self._hold(leg, outcome, self.hold_for(planned) * self.speed,
                                                                stop)))
                log.info("sip call placed", number=planned.number, line=planned.line, level=planned.level)
            if running:
                await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
            await trunk.close()
        return self.outcomes

    @staticmethod
    async def _hold(leg: SipCaller, outcome: SipOutcome, seconds: float, stop: asyncio.Event) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not leg.ended and not stop.is_set():
            await asyncio.sleep(0.05)
        if leg.ended:
            outcome.state = "refused" if not leg.answered else "dropped"
            outcome.status = leg.final_status
            log.warning("sip caller ended by the switch", caller=outcome.caller, state=outcome.state,
                        status=leg.final_status)
        else:
            outcome.state = "hung-up" if leg.answered else "unanswered"
            leg.hangup()
        outcome.ended_at = time.time()


def summary(outcomes: list[SipOutcome]) -> dict[str, int]:
    states: dict[str, int] = {}
    for outcome in outcomes:
        states[outcome.state] = states.get(outcome.state, 0) + 1
    return states
