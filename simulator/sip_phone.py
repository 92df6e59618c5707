"""Real SIP user agents for the tests, the demo and the load driver: callers on the operator trunk
and desk phones that register, ring, answer, hang up and transfer (REFER).

Built on PJSUA2 (pjproject 2.15, the SIP stack Asterisk itself bundles, from the
``pjsua2-python`` wheel) rather than pyVoIP: pyVoIP 1.6.8 acknowledges a 200 OK with a To-tag of
its own, which Asterisk 22 never matches (it resends the 200 OK and hangs up after 32 s), it
speaks UDP only, and it needs ``audioop``, gone from Python 3.13. PJSUA2 gives RFC 3261 dialogs,
REGISTER with digest authentication, REFER, RTP and WAV players/recorders.

PJSUA2 runs with no worker thread of its own: :class:`SipStack` polls it from the asyncio loop,
so every callback below runs on the loop's thread and may touch Python state freely.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pjsua2 as pj
import structlog

log = structlog.get_logger("sip")


class SipStack:
    """The process's one PJSUA2 endpoint (the library allows one), with a UDP transport per local
    address: callers and desks send from distinct loopback addresses, as the operator's SBC and
    the room's phones do from distinct hosts, so Asterisk identifies them as it would on a site."""

    _instance: ClassVar[SipStack | None] = None

    def __init__(self) -> None:
        self.endpoint = pj.Endpoint()
        self.endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0
        config.uaConfig.mainThreadOnly = True
        config.uaConfig.maxCalls = 500
        config.uaConfig.userAgent = "sas-router test UA (pjsua2)"
        config.logConfig.level = 1
        config.logConfig.consoleLevel = 1
        config.medConfig.noVad = True
        self.endpoint.libInit(config)
        self.transports: dict[str, int] = {}
        self.trunks: dict[str, _Account] = {}
        self.endpoint.libStart()
        self.endpoint.audDevManager().setNullDev()
        self._poller: asyncio.Task[None] | None = None
        #: PJSUA2 objects must outlive their C++ side: everything created is kept here.
        self.keep: list[Any] = []

    def shutdown(self) -> None:
        """Hang up and free the library before the interpreter finalises the Python wrappers
        (in the other order PJSUA2 calls back into objects already gone and aborts)."""
        with contextlib.suppress(Exception):
            self.endpoint.hangupAllCalls()
            for _ in range(20):
                self.endpoint.libHandleEvents(10)
        # Python may free a call or account wrapper after the library is gone (a test still holds
        # it): the wrappers give up their C++ side so that late free cannot call into PJSUA.
        for obj in self.keep:
            obj.thisown = False
        self.keep.clear()
        with contextlib.suppress(Exception):
            self.endpoint.libDestroy()
        SipStack._instance = None

    @classmethod
    def get(cls) -> SipStack:
        if cls._instance is None:
            cls._instance = SipStack()
            atexit.register(cls._instance.shutdown)
        cls._instance._ensure_polling()
        return cls._instance

    def transport(self, address: str) -> int:
        if address not in self.transports:
            config = pj.TransportConfig()
            config.boundAddress = address
            config.port = 0
            self.transports[address] = self.endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, config)
        return self.transports[address]

    def _ensure_polling(self) -> None:
        loop = asyncio.get_running_loop()
        if self._poller is None or self._poller.done() or self._poller.get_loop() is not loop:
            self._poller = loop.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            self.endpoint.libHandleEvents(0)
            await asyncio.sleep(0.005)

    def trunk_account(self, address: str) -> _Account:
        """The operator SBC's account on ``address`` (no registration: the trunk is identified by IP)."""
        if address not in self.trunks:
            self.trunks[address] = self.account(f"<sip:sbc@{address}>", address)
        return self.trunks[address]

    def account(self, id_uri: str, address: str, *, registrar: str | None = None, user: str = "",
                password: str = "") -> _Account:
        config = pj.AccountConfig()
        config.idUri = id_uri
        config.sipConfig.transportId = self.transport(address)
        config.mediaConfig.transportConfig.boundAddress = address
        config.mediaConfig.transportConfig.port = 0
        if registrar:
            config.regConfig.registrarUri = registrar
            config.regConfig.timeoutSec = 300
            credentials = pj.AuthCredInfo("digest", "*", user, 0, password)
            config.sipConfig.authCreds.append(credentials)
        else:
            config.regConfig.registerOnAdd = False
        account = _Account()
        account.create(config)
        self.keep.append(account)
        return account


class _Account(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.on_incoming: Callable[[int], None] | None = None
        self.registered: bool = False
        self.reg_status: int = 0

    def onRegState(self, prm: Any) -> None:
        self.reg_status = prm.code
        self.registered = prm.code // 100 == 2 and prm.expiration > 0

    def onIncomingCall(self, prm: Any) -> None:
        if self.on_incoming is not None:
            self.on_incoming(prm.callId)


class _Call(pj.Call):
    def __init__(self, account: pj.Account, owner: Any, call_id: int = pj.PJSUA_INVALID_ID) -> None:
        super().__init__(account, call_id)
        self.owner = owner

    def onCallState(self, prm: Any) -> None:
        info = self.getInfo()
        self.owner._state(self, info.state, info.lastStatusCode, info.lastReason)

    def onCallTransferStatus(self, prm: Any) -> None:
        self.owner.transfer_status.append(prm.statusCode)


def _headers(values: dict[str, str]) -> Any:
    vector = pj.SipHeaderVector()
    for name, value in values.items():
        header = pj.SipHeader()
        header.hName, header.hValue = name, value
        vector.append(header)
    return vector


@dataclass
class SipCaller:
    """A member of the public on the operator trunk: dials, stays on the line, hangs up on command.

    ``dropped`` is the SIP side's truth: the network hung this caller up (a BYE or a failed
    INVITE) while they were still waiting to speak to someone."""

    number: str
    caller: str
    target: str
    states: list[str] = field(default_factory=list)
    answered: bool = False
    ended: bool = False
    ended_by_us: bool = False
    final_status: int = 0
    transfer_status: list[int] = field(default_factory=list)
    _call: Any = None

    @property
    def dropped(self) -> bool:
        return self.ended and not self.ended_by_us

    @property
    def alive(self) -> bool:
        return self.answered and not self.ended

    def _state(self, call: _Call, state: int, code: int, reason: str) -> None:
        self.states.append(f"{state}:{code}")
        if state == pj.PJSIP_INV_STATE_CONFIRMED:
            self.answered = True
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.ended, self.final_status = True, code
            log.info("caller ended", caller=self.caller, number=self.number, by_us=self.ended_by_us, code=code,
                     reason=reason)

    def hangup(self) -> None:
        if not self.ended and self._call is not None:
            self.ended_by_us = True
            with contextlib.suppress(pj.Error):
                self._call.hangup(pj.CallOpParam(True))


def dial(stack: SipStack, *, switch_uri: str, number: str, caller: str, name: str = "", withheld: bool = False,
         headers: dict[str, str] | None = None, address: str = "127.0.0.1") -> SipCaller:
    """Place a call from the operator's SBC (``address``) to ``number`` on the switch; a withheld
    caller is sent with ``Privacy: id``, as a French operator does towards an emergency number."""
    host = switch_uri.split("@", 1)[1] if "@" in switch_uri else switch_uri.removeprefix("sip:")
    # The caller's identity travels in P-Asserted-Identity, as an operator's SBC sends it (the
    # trunk trusts it: trust_id_inbound); the From is the SBC's, one account per address, since
    # PJSUA2 has a handful of accounts and cannot change the From of a call.
    sent = dict(headers or {})
    identity = f"<sip:{caller}@{address}>"
    sent.setdefault("P-Asserted-Identity", f'"{name}" {identity}' if name else identity)
    if withheld:
        sent.setdefault("Privacy", "id")
    account = stack.trunk_account(address)
    handle = SipCaller(number, caller, f"sip:{number}@{host}")
    call = _Call(account, handle)
    handle._call = call
    stack.keep.append(call)
    param = pj.CallOpParam(True)
    param.txOption.headers = _headers(sent)
    call.makeCall(handle.target, param)
    return handle


@dataclass
class DeskPhone:
    """A desk's SIP phone registered to the switch as its declared endpoint.

    It rings on every call, answers after ``answer_after`` seconds (None: only on :meth:`answer`),
    and can hang up and transfer the call it is on with a REFER, as a regulator's phone does."""

    extension: str
    answer_after: float | None = 0.2
    calls: list[Any] = field(default_factory=list)
    transfer_status: list[int] = field(default_factory=list)
    answered_count: int = 0
    account: Any = None
    stack: SipStack | None = None

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.extension}"

    @property
    def current(self) -> Any | None:
        live = [c for c in self.calls if c.isActive()]
        return live[-1] if live else None

    def _incoming(self, call_id: int) -> None:
        assert self.account is not None
        call = _Call(self.account, self, call_id)
        self.calls.append(call)
        assert self.stack is not None
        self.stack.keep.append(call)
        ringing = pj.CallOpParam()
        ringing.statusCode = 180
        call.answer(ringing)
        if self.answer_after is not None:
            asyncio.get_running_loop().call_later(self.answer_after, self._answer, call)

    def _answer(self, call: _Call) -> None:
        with contextlib.suppress(pj.Error):
            if call.isActive() and call.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING:
                ok = pj.CallOpParam()
                ok.statusCode = 200
                call.answer(ok)
                self.answered_count += 1

    def _state(self, call: _Call, state: int, code: int, reason: str) -> None:
        pass

    def answer(self) -> bool:
        ringing = [c for c in self.calls if c.isActive() and c.getInfo().state < pj.PJSIP_INV_STATE_CONNECTING]
        if not ringing:
            return False
        self._answer(ringing[-1])
        return True

    def hangup(self) -> None:
        call = self.current
        if call is not None:
            with contextlib.suppress(pj.Error):
                call.hangup(pj.CallOpParam(True))

    def close(self) -> None:
        """Hang up and unregister: the desk leaves the room (a later test may register it again)."""
        self.hangup()
        if self.account is not None:
            self.account.on_incoming = None
            with contextlib.suppress(pj.Error):
                self.account.shutdown()  # unregisters and frees one of PJSUA's few account slots

    def transfer(self, number: str, switch_host: str) -> None:
        """Blind transfer of the current call to ``number`` (REFER), as the phone's transfer key."""
        call = self.current
        if call is None:
            raise RuntimeError(f"desk {self.extension} is on no call")
        call.xfer(f"sip:{number}@{switch_host}", pj.CallOpParam(True))


def register_desk(stack: SipStack, *, extension: str, password: str, switch_host: str, address: str,
                  answer_after: float | None = 0.2) -> DeskPhone:
    phone = DeskPhone(extension, answer_after, stack=stack)
    phone.account = stack.account(f"<sip:{extension}@{switch_host}>", address,
                                  registrar=f"sip:{switch_host}", user=extension, password=password)
    phone.account.on_incoming = phone._incoming
    return phone


async def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")

