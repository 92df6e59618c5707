"""The emulator's own control API over HTTP: what a real Asterisk gets from phones and trunks.

With a real Asterisk, calls arrive from the operator's SBC and desks pick up their phones; with
the emulator, a test, the load simulator running in another process or an admin rehearsing a
procedure does it here: place an inbound call on a line, make a desk phone ring-and-answer or
answer on command, hang up a channel, and switch faults on (refuse AMI logins, stall responses,
drop every AMI connection, restart the switch). Every request needs the bearer token given at
start; the API listens on loopback by default and never on the AMI port.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sas_router.engine.plan import contexts as C
from sas_router.simulator.softswitch.server import AmiServer
from sas_router.simulator.softswitch.site import add_agent

log = structlog.get_logger("softswitch.control")
#: Digits, '+', '*', '#': what a caller ID or a dialled number can carry (no CR/LF, no separators).
NUMBER = r"^[0-9+*#]{1,32}$"
NAME = r"^[^\x00-\x1f\x7f]{0,64}$"
HEADER = r"^[^\x00-\x1f\x7f]{0,200}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InboundCall(_Body):
    number: Annotated[str, Field(pattern=NUMBER)]
    caller: Annotated[str, Field(pattern=NUMBER)] | None = None
    name: Annotated[str, Field(pattern=NAME)] = ""
    withheld: bool = False
    #: SIP headers the operator passes (e.g. ``Geolocation`` on the 15); control characters refused.
    headers: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,40}$")], Annotated[str, Field(pattern=HEADER)]] = {}
    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")] = C.OPERATOR_ENDPOINT


class Desk(_Body):
    extension: Annotated[str, Field(pattern=r"^[0-9]{2,8}$")]
    #: Seconds from ringing to answer; null: answers only when told (POST /desks/{ext}/answer).
    answer_after: Annotated[float, Field(ge=0, le=600)] | None = 2.0
    talk_for: Annotated[float, Field(gt=0, le=86400)] | None = None


class DeskTransfer(_Body):
    #: What the desk keyed: digits, or a SIP user part (letters reach the context's 'i').
    number: Annotated[str, Field(pattern=r"^[A-Za-z0-9*#+_.-]{1,32}$")]


class FaultSwitches(_Body):
    refuse_logins: bool | None = None
    stall_responses: bool | None = None


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class SoftswitchControl:
    def __init__(self, server: AmiServer, token: str) -> None:
        if len(token) < 8:
            raise ValueError("the control token must have at least 8 characters")
        self.server, self.switch, self.token = server, server.sw, token
        self.app = web.Application(middlewares=[self._guard])
        self.app.router.add_get("/channels", self.channels)
        self.app.router.add_post("/calls", self.place_call)
        self.app.router.add_post("/channels/{name}/hangup", self.hangup)
        self.app.router.add_post("/desks", self.add_desk)
        self.app.router.add_post("/desks/{extension}/answer", self.answer)
        self.app.router.add_post("/desks/{extension}/transfer", self.transfer)
        self.app.router.add_post("/faults", self.faults)
        self.app.router.add_post("/faults/drop-ami", self.drop_ami)
        self.app.router.add_post("/faults/restart", self.restart)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            log.warning("control request refused", path=request.path, remote=request.remote)
            return _error(401, "a valid bearer token is needed")
        try:
            return await handler(request)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return _error(422, f"{where}: {first['msg']}")
        except ValueError as exc:
            return _error(422, str(exc))

    async def _json(self, request: web.Request, model: type[_Body]) -> Any:
        try:
            raw = await request.json()
        except ValueError:
            raise ValueError("the body must be JSON") from None
        return model.model_validate(raw)

    def _wake(self) -> None:
        """Timers the request scheduled run now (the AMI server's driver sleeps until the next one)."""
        self.server._wake.set()

    async def channels(self, request: web.Request) -> web.Response:
        return web.json_response([{"channel": ch.name, "uniqueid": ch.uniqueid, "context": ch.context,
                                   "exten": ch.exten, "state": ch.state, "caller": ch.cid_num}
                                  for ch in self.switch.channels.values()])

    async def place_call(self, request: web.Request) -> web.Response:
        body: InboundCall = await self._json(request, InboundCall)
        channel = self.switch.inbound_call(body.endpoint, body.number, caller_num=body.caller or "",
                                           caller_name=body.name, withheld=body.withheld,
                                           headers=dict(body.headers) or None)
        if channel is None:
            return _error(404, f"no line answers {body.number} on endpoint {body.endpoint}")
        self._wake()
        log.info("inbound call placed", channel=channel.name, number=body.number)
        return web.json_response({"channel": channel.name, "uniqueid": channel.uniqueid}, status=201)

    async def hangup(self, request: web.Request) -> web.Response:
        channel = self.switch.find_channel(request.match_info["name"])
        if channel is None:
            return _error(404, "no such channel")
        self.switch.request_hangup(channel, 16, soft=False)
        self._wake()
        return web.json_response({"channel": channel.name, "hungup": True})

    async def add_desk(self, request: web.Request) -> web.Response:
        body: Desk = await self._json(request, Desk)
        add_agent(self.switch, body.extension, answer_after=body.answer_after, talk_for=body.talk_for)
        return web.json_response({"interface": f"PJSIP/{body.extension}"}, status=201)

    async def answer(self, request: web.Request) -> web.Response:
        extension = request.match_info["extension"]
        if extension not in self.switch.endpoints:
            return _error(404, f"no desk {extension}")
        if not self.switch.endpoint_answer(extension):
            return _error(409, f"desk {extension} is not ringing")
        self._wake()
        return web.json_response({"interface": f"PJSIP/{extension}", "answered": True})

    async def transfer(self, request: web.Request) -> web.Response:
        """The desk's own transfer key (SIP REFER), as opposed to the engine's API transfer."""
        extension = request.match_info["extension"]
        if extension not in self.switch.endpoints:
            return _error(404, f"no desk {extension}")
        body: DeskTransfer = await self._json(request, DeskTransfer)
        problem = self.switch.desk_transfer(extension, body.number)
        if problem:
            return _error(409, problem)
        self._wake()
        log.info("desk transferred its caller", desk=extension, number=body.number)
        return web.json_response({"interface": f"PJSIP/{extension}", "transferred_to": body.number})

    async def faults(self, request: web.Request) -> web.Response:
        body: FaultSwitches = await self._json(request, FaultSwitches)
        faults = self.server.faults
        if body.refuse_logins is not None:
            faults.refuse_logins = body.refuse_logins
        if body.stall_responses is not None:
            faults.stall_responses = body.stall_responses
        log.warning("faults switched", refuse_logins=faults.refuse_logins, stall_responses=faults.stall_responses)
        return web.json_response({"refuse_logins": faults.refuse_logins, "stall_responses": faults.stall_responses})

    async def drop_ami(self, request: web.Request) -> web.Response:
        dropped = len(self.server.sessions)
        self.server.drop_all()
        log.warning("every AMI connection dropped", connections=dropped)
        return web.json_response({"dropped": dropped})

    async def restart(self, request: web.Request) -> web.Response:
        self.server.drop_all()
        self.switch.restart()
        self._wake()
        log.warning("softswitch restarted: channels hung up, AstDB kept")
        return web.json_response({"restarted": True, "astdb_keys": len(self.switch.astdb)})


async def serve_control(control: SoftswitchControl, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(control.app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
