"""Real SIP user agents for the tests, the demo and the load driver: callers on the operator trunk
and desk phones that register, ring, answer, hang up and transfer (REFER).

Built on ``aiosipua`` (asyncio, RFC 3261 dialogs and transactions, REGISTER with digest, REFER,
2xx/ACK as the RFC says). Not pyVoIP: pyVoIP 1.6.8 acknowledges a 200 OK with a To-tag of its
own, which Asterisk 22 never matches (it resends the 200 OK and hangs up after 32 s), it speaks
UDP only and needs ``audioop``, gone from Python 3.13. Not PJSUA2 either: its Python wheel caps a
process at four simultaneous calls. aiosipua runs on the test's own event loop, any number of
calls at once.

Media is not played unless a test makes a caller speak (:meth:`SipCaller.say_tone`, RTP from
:mod:`simulator.rtp`): the SDP offers G.711 on a port nobody reads, which is all Asterisk needs to
bridge, queue and transfer the call.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiosipua import Registration, SipDigestAuth, SipUAC, SipUAS, build_sdp, negotiate_sdp
from aiosipua.transport import UdpSipTransport
from sas_router.simulator.rtp import RtpSender, alaw_tone

log = structlog.get_logger("sip")


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.owner._dispatch(data, (str(addr[0]), int(addr[1])))


class UdpTransport(UdpSipTransport):
    """aiosipua's UDP transport, started without its protocol's ``isinstance`` assertion, which
    fails on Python 3.11 (its selector datagram transport is not a ``DatagramTransport``)."""

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._udp_transport, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self),
                                                                     local_addr=self.local_addr)


def free_udp_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


@dataclass
class UserAgent:
    """One SIP user agent on one local UDP address and port (a port is chosen: aiosipua writes
    the bound port into Via and Contact, so it must be a real one)."""

    address: str
    port: int = 0
    transport: UdpTransport = field(init=False)
    uac: SipUAC = field(init=False)
    uas: SipUAS = field(init=False)

    async def start(self) -> UserAgent:
        self.port = self.port or free_udp_port(self.address)
        self.transport = UdpTransport(local_addr=(self.address, self.port))
        self.uac = SipUAC(self.transport)
        self.uas = SipUAS(self.transport, uac=self.uac, user_agent="sas-router test UA")
        await self.uas.start()
        return self

    @property
    def rtp_port(self) -> int:
        return self.port + 2 if self.port < 65000 else 40000

    def sdp(self) -> Any:
        return build_sdp(local_ip=self.address, rtp_port=self.rtp_port, payload_type=8, codec_name="PCMA")

    async def stop(self) -> None:
        await self.uas.stop()


@dataclass
class SipCaller:
    """A member of the public on the operator trunk: dials, stays on the line, hangs up on command.

    ``dropped`` is the SIP side's truth: the network hung this caller up (a BYE, or a refused
    INVITE) without the caller choosing to."""

    number: str
    caller: str
    agent: UserAgent
    outgoing: Any = None
    answered: bool = False
    ended: bool = False
    ended_by_us: bool = False
    final_status: int = 0
    voice: RtpSender | None = None

    @property
    def dropped(self) -> bool:
        return self.ended and not self.ended_by_us

    @property
    def alive(self) -> bool:
        return self.answered and not self.ended

    def _answer(self, _: Any) -> None:
        self.answered = True

    def _rejected(self, _: Any, status: int, reason: str) -> None:
        self.ended, self.final_status = True, status
        log.warning("call refused", caller=self.caller, number=self.number, status=status, reason=reason)

    def _bye(self) -> None:
        self.ended = True
        log.info("caller received BYE", caller=self.caller, number=self.number, by_us=self.ended_by_us)

    async def say_tone(self, hz: float, seconds: float, workdir: Path) -> RtpSender:
        """Speak: send a ``hz`` tone as RTP to where the switch's answer said, from the port this
        caller offered (once answered)."""
        remote = self.outgoing.sdp_answer.rtp_address if self.outgoing and self.outgoing.sdp_answer else None
        if remote is None:
            raise RuntimeError("the call is not answered with an SDP: nowhere to send the voice")
        local = (self.agent.address, self.agent.rtp_port)
        self.voice = RtpSender(alaw_tone(hz, seconds, workdir), local, remote).start()
        return self.voice

    def hangup(self) -> None:
        if self.voice is not None:
            self.voice.stop()
        if self.ended or self.outgoing is None:
            return
        self.ended_by_us = self.ended = True
        if self.answered:
            self.outgoing.hangup(self.agent.uac)
        else:
            self.outgoing.cancel(self.agent.uac)


class Trunk:
    """The operator's SBC: one user agent from which every caller dials, each call carrying the
    caller's identity in P-Asserted-Identity (the trunk trusts it: ``trust_id_inbound``), and
    ``Privacy: id`` when the caller withheld it, as a French operator sends towards the 15."""

    def __init__(self, agent: UserAgent, switch: tuple[str, int]) -> None:
        self.agent, self.switch = agent, switch
        self.calls: dict[str, SipCaller] = {}
        agent.uas.on_bye = self._on_bye

    @classmethod
    async def open(cls, address: str, switch: tuple[str, int]) -> Trunk:
        return cls(await UserAgent(address).start(), switch)

    def _on_bye(self, call: Any, _: Any) -> None:
        caller = self.calls.get(call.call_id)
        if caller is not None:
            caller._bye()

    def dial(self, number: str, caller: str, *, name: str = "", withheld: bool = False,
             headers: dict[str, str] | None = None) -> SipCaller:
        host, port = self.switch
        identity = f"<sip:{caller}@{self.agent.address}>"
        sent = {"P-Asserted-Identity": f'"{name}" {identity}' if name else identity, **(headers or {})}
        if withheld:
            sent["Privacy"] = "id"
        handle = SipCaller(number, caller, self.agent)
        outgoing = self.agent.uac.send_invite(f"sip:sbc@{self.agent.address}:{self.agent.port}",
                                              f"sip:{number}@{host}:{port}", self.switch,
                                              sdp_offer=self.agent.sdp(), extra_headers=sent)
        outgoing.on_answer = handle._answer
        outgoing.on_rejected = handle._rejected
        handle.outgoing = outgoing
        self.calls[outgoing.call_id] = handle
        return handle

    def hangup_all(self) -> None:
        for caller in self.calls.values():
            caller.hangup()

    async def close(self) -> None:
        self.hangup_all()
        await asyncio.sleep(0.05)
        await self.agent.stop()


@dataclass
class DeskPhone:
    """A desk's SIP phone registered to the switch as its declared endpoint.

    It rings on every call, answers after ``answer_after`` seconds (None: only on :meth:`answer`),
    and can hang up and transfer the call it is on with a REFER, as a regulator's phone does."""

    extension: str
    agent: UserAgent
    switch: tuple[str, int]
    answer_after: float | None = 0.2
    registration: Any = None
    registered: bool = False
    calls: list[Any] = field(default_factory=list)
    answered_count: int = 0
    transfer_status: list[int] = field(default_factory=list)

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.extension}"

    @property
    def current(self) -> Any | None:
        live = [c for c in self.calls if c.dialog.state.value in ("early", "confirmed")]
        return live[-1] if live else None

    def _on_invite(self, call: Any) -> None:
        self.calls.append(call)
        call.ringing()
        if self.answer_after is not None:
            asyncio.get_running_loop().call_later(self.answer_after, self._accept, call)

    def _accept(self, call: Any) -> None:
        if call.dialog.state.value != "early":
            return  # cancelled meanwhile (app_queue rang another desk)
        answer, _ = negotiate_sdp(offer=call.sdp_offer, local_ip=self.agent.address,
                                  rtp_port=self.agent.port + 2, supported_codecs=[8, 0])
        call.accept(answer)
        self.answered_count += 1

    def answer(self) -> bool:
        ringing = [c for c in self.calls if c.dialog.state.value == "early"]
        if not ringing:
            return False
        self._accept(ringing[-1])
        return True

    def hangup(self) -> None:
        call = self.current
        if call is not None and call.dialog.state.value == "confirmed":
            call.hangup()

    def transfer(self, number: str) -> None:
        """Blind transfer of the current call to ``number`` (REFER), as the phone's transfer key."""
        call = self.current
        if call is None:
            raise RuntimeError(f"desk {self.extension} is on no call")
        host, port = self.switch
        self.agent.uac.send_refer(call.dialog, f"sip:{number}@{host}:{port}", call.source_addr)

    async def close(self) -> None:
        """Hang up and unregister: the desk leaves the room (a later test may register it again)."""
        self.hangup()
        if self.registration is not None and self.registered:
            self.registration.unregister()
            await asyncio.sleep(0.05)
        await self.agent.stop()


async def register_desk(*, extension: str, password: str, switch: tuple[str, int], address: str,
                        answer_after: float | None = 0.2, timeout: float = 5.0) -> DeskPhone:
    agent = await UserAgent(address).start()
    phone = DeskPhone(extension, agent, switch, answer_after)
    agent.uas.on_invite = phone._on_invite
    agent.uas.on_transfer_progress = lambda _call_id, status, _reason: phone.transfer_status.append(status)
    host, port = switch
    done = asyncio.Event()

    def registered(_: Any) -> None:
        phone.registered = True
        done.set()

    phone.registration = Registration(agent.uac, f"sip:{extension}@{host}:{port}", switch,
                                      auth=SipDigestAuth(extension, password), expires=300)
    phone.registration.on_registered = registered
    phone.registration.register()
    await asyncio.wait_for(done.wait(), timeout)
    return phone


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")
