"""Real SIP calls into a real Asterisk, from the same caller model as the emulated day.

For sites with an Asterisk and a PJSIP account to spare: the driver registers with pyVoIP as that
account (put it in the context your operator trunk uses — ``sas-from-pstn`` in the rendered
``pjsip.conf`` — so the calls are routed exactly as the operator's), and places the calls of
:func:`simulator.load.plan_day` at their times, dialling each line's number. The engine, the
dashboard and the desks' phones then see a real load on the real switch.

What the SIP side cannot know: when a desk picks up (Asterisk answers the caller itself, in the
dialplan, before the queue). So a caller stays on the line for its patience plus the talk time of
the desk that would end its call, then hangs up; the engine's figures say who was answered.
pyVoIP sends silence as audio; a per-call caller ID is not possible with one account (the From is
the account), so every simulated call shows that account's number.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from simulator.load import LoadProfile, PlannedCall, talk_time

log = structlog.get_logger("simulator.sip")


class Phone(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def call(self, number: str) -> Any: ...


@dataclass(frozen=True)
class SipAccount:
    server: str
    port: int
    username: str
    password: str
    my_ip: str
    sip_port: int = 5062
    rtp_ports: tuple[int, int] = (20000, 20999)


@dataclass
class SipOutcome:
    planned: PlannedCall
    placed_at: float
    state: str = "dialing"
    ended_at: float | None = None
    error: str = ""


@dataclass
class SipLoad:
    """Plays planned calls as SIP calls; thread-based, as pyVoIP is."""

    account: SipAccount
    profile: LoadProfile = field(default_factory=LoadProfile)
    #: Wall seconds per planned second (0.1 plays a day in 2.4 h).
    speed: float = 1.0
    phone_factory: Callable[[SipAccount], Phone] | None = None
    outcomes: list[SipOutcome] = field(default_factory=list)

    def _phone(self) -> Phone:
        if self.phone_factory is not None:
            return self.phone_factory(self.account)
        from pyVoIP.VoIP import VoIPPhone  # imported here: optional at run time, heavy threads at import

        a = self.account
        return VoIPPhone(a.server, a.port, a.username, a.password, myIP=a.my_ip, sipPort=a.sip_port,
                         rtpPortLow=a.rtp_ports[0], rtpPortHigh=a.rtp_ports[1])

    def hold_for(self, planned: PlannedCall) -> float:
        """Seconds the caller stays on the line: its patience, then the talk time it would get."""
        role = "n1" if planned.level == "P0" else "n2-amu" if planned.level == "P1" else "n2-mg"
        return (planned.patience or 120.0) + planned.qualify_after + talk_time(self.profile, role, planned.talk)

    def run(self, calls: list[PlannedCall], *, stop: threading.Event | None = None) -> list[SipOutcome]:
        stop = stop or threading.Event()
        phone = self._phone()
        phone.start()
        log.info("sip registered", server=self.account.server, username=self.account.username, calls=len(calls))
        hangups: list[threading.Timer] = []
        try:
            origin, began = calls[0].at if calls else 0.0, time.monotonic()
            for planned in calls:
                delay = (planned.at - origin) * self.speed - (time.monotonic() - began)
                if delay > 0 and stop.wait(delay):
                    break
                outcome = SipOutcome(planned, time.time())
                self.outcomes.append(outcome)
                try:
                    voip_call = phone.call(planned.number)
                except Exception as exc:  # a refused INVITE is an outcome, not the end of the load
                    outcome.state, outcome.error = "failed", str(exc)
                    log.warning("sip call failed", number=planned.number, error=str(exc))
                    continue
                timer = threading.Timer(self.hold_for(planned) * self.speed, self._hang_up, (voip_call, outcome))
                timer.daemon = True
                timer.start()
                hangups.append(timer)
                log.info("sip call placed", number=planned.number, line=planned.line, level=planned.level)
            while any(t.is_alive() for t in hangups) and not stop.wait(0.2):
                pass
        finally:
            for timer in hangups:
                timer.cancel()
            phone.stop()
        return self.outcomes

    @staticmethod
    def _hang_up(voip_call: Any, outcome: SipOutcome) -> None:
        state = str(getattr(getattr(voip_call, "state", None), "name", ""))
        try:
            if state == "ANSWERED":
                voip_call.hangup()
                outcome.state = "hung-up"
            else:
                outcome.state = state.lower() or "ended"
        except Exception as exc:  # the far end hung up first
            outcome.state, outcome.error = "ended", str(exc)
        outcome.ended_at = time.time()
