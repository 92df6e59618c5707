"""The control API: what an agent desk (telephony bar, LRM), a supervisor or an admin may ask.

JSON over HTTP (aiohttp). Every request but ``/health`` and ``/openapi.json`` needs a bearer
token; each token belongs to one client with one role. Roles are ordered — ``desk`` <
``supervisor`` < ``admin`` — and each route names the least role it needs. A missing or unknown
token is a 401, a known token with too small a role a 403, both with a message saying why.
Request bodies are validated (pydantic) before anything reaches the switch; free text (a
qualification reason) is refused if it carries control characters.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.ami import AmiActionFailed, AmiBusy, AmiLinkDown, UnsafeValue
from engine.core.routing import RoutingError, UndeclaredInterface
from engine.core.switchover import SwitchoverError
from engine.plan.model import Priority
from engine.service import Engine

log = structlog.get_logger("engine.api")

ROLES = ("desk", "supervisor", "admin")
INTERFACE = r"^(PJSIP|SIP|Local)/[A-Za-z0-9@._/+-]{1,80}$"
FREE_TEXT = r"^[^\x00-\x1f\x7f]{0,200}$"
NAME = r"^[^\x00-\x1f\x7f]{1,60}$"


@dataclass(frozen=True)
class Client:
    name: str
    role: str


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Qualify(_Body):
    level: Priority
    reason: Annotated[str, Field(pattern=FREE_TEXT)] = ""
    #: A simple medical advice was given (annex 3, item 6), recorded with the qualification.
    medical_advice: bool = False


class TransferRequest(_Body):
    queue: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,38}$")]
    reason: Annotated[str, Field(pattern=FREE_TEXT)] = ""
    priority: Annotated[int, Field(ge=0, le=100)] | None = None


class AgentLogin(_Body):
    interface: Annotated[str, Field(pattern=INTERFACE)]
    queues: Annotated[list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,38}$")]], Field(min_length=1)]
    name: Annotated[str, Field(pattern=NAME)]
    role: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,40}$")]
    state_interface: Annotated[str, Field(pattern=INTERFACE)] | None = None


class AgentRef(_Body):
    interface: Annotated[str, Field(pattern=INTERFACE)]
    reason: Annotated[str, Field(pattern=FREE_TEXT)] = ""


class SwitchoverRequest(_Body):
    line: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,38}$")]
    partner: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,38}$")]
    share: Annotated[int, Field(ge=1, le=100)] = 100
    #: The number dialled at the partner (one it accepts); default: the line's own number.
    number: Annotated[str, Field(pattern=r"^[0-9*#+]{1,20}$")] | None = None
    reason: Annotated[str, Field(pattern=FREE_TEXT, min_length=3)]


class Reasoned(_Body):
    reason: Annotated[str, Field(pattern=FREE_TEXT, min_length=3)]


class OverflowSwitch(_Body):
    enabled: bool
    reason: Annotated[str, Field(pattern=FREE_TEXT, min_length=3)]


Handler = Callable[[web.Request, Client], Awaitable[Any]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class ControlApi:
    def __init__(self, engine: Engine, tokens: dict[str, Client]) -> None:
        self.engine = engine
        self.tokens = tokens
        self.app = web.Application(middlewares=[self._errors])
        self._routes: list[tuple[str, str, str, str]] = []
        r = self.route
        r("GET", "/api/calls", "desk", self.list_calls, "Live calls with their queue visits and agents")
        r("GET", "/api/calls/{call}", "desk", self.get_call, "One live call (Uniqueid, SAS call id or channel)")
        r("POST", "/api/calls/{call}/qualify", "desk", self.qualify, "Qualify P0/P1/P2 and route accordingly")
        r("POST", "/api/calls/{call}/transfer", "desk", self.transfer, "Move the caller to another queue")
        r("GET", "/api/queues", "desk", self.list_queues, "Queues: waiting callers, longest wait, agents")
        r("GET", "/api/agents", "desk", self.list_agents, "Agents, their queues, roles and states")
        r("POST", "/api/agents/login", "desk", self.agent_login, "Log a desk into queues with a role")
        r("POST", "/api/agents/logout", "supervisor", self.agent_logout,
          "Log a desk out of every queue (a supervisor closes a desk left logged in)")
        r("POST", "/api/agents/pause", "desk", self.agent_pause, "Pause a desk (reason)")
        r("POST", "/api/agents/resume", "desk", self.agent_resume, "Resume a paused desk")
        r("GET", "/api/mutual-aid", "desk", self.mutual_aid,
          "Overflow rules and episodes, partners' live load, switch-overs and their journal")
        r("POST", "/api/switchovers", "supervisor", self.start_switchover,
          "Switch a line (or a share of its new calls) over to a partner SAS, with a reason")
        r("POST", "/api/switchovers/{line}/end", "supervisor", self.end_switchover,
          "Give a switched-over line back to this SAS at once, with a reason")
        r("POST", "/api/overflow/{queue}", "supervisor", self.set_overflow,
          "Switch a queue's overflow to partners off or back on, with a reason")
        r("POST", "/api/admin/resync", "admin", self.resync, "Rebuild live calls and agents from the switch now")
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/openapi.json", self.openapi)

    def route(self, method: str, path: str, role: str, handler: Handler, summary: str) -> None:
        self._routes.append((method, path, role, summary))

        async def guarded(request: web.Request) -> web.StreamResponse:
            client = self._authenticate(request)
            if client is None:
                return _error(401, "missing or unknown bearer token")
            if ROLES.index(client.role) < ROLES.index(role):
                log.warning("api refused", client=client.name, role=client.role, needed=role, path=request.path)
                return _error(403, f"role {client.role!r} may not do this; {role!r} or above is needed")
            result = await handler(request, client)
            return result if isinstance(result, web.StreamResponse) else web.json_response(result)

        self.app.router.add_route(method, path, guarded)

    def _authenticate(self, request: web.Request) -> Client | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        offered = header[7:].strip()
        for token, client in self.tokens.items():
            if hmac.compare_digest(token.encode(), offered.encode()):
                return client
        return None

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            return await handler(request)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            return _error(422, problems)
        except (RoutingError, UnsafeValue, SwitchoverError) as exc:
            return _error(409 if isinstance(exc, RoutingError) else 422, str(exc))
        except UndeclaredInterface as exc:
            return _error(403, str(exc))
        except LookupError as exc:
            return _error(404, str(exc).strip("'\""))
        except (AmiLinkDown, AmiBusy) as exc:
            return _error(503, f"switch unavailable: {exc}")
        except AmiActionFailed as exc:
            return _error(502, f"the switch refused: {exc}")

    async def _body(self, request: web.Request, model: type[_Body]) -> Any:
        try:
            data = await request.json()
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            raise RoutingError("the body must be a JSON object")
        return model.model_validate(data)

    # --- handlers -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.engine.health())

    async def list_calls(self, request: web.Request, client: Client) -> Any:
        now = self.engine.clock()
        return [c.public(now) for c in self.engine.tracker.calls.values()]

    async def get_call(self, request: web.Request, client: Client) -> Any:
        call = self.engine.tracker.call_by_id(request.match_info["call"])
        if call is None:
            raise LookupError(f"no live call {request.match_info['call']}")
        return call.public(self.engine.clock())

    async def qualify(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, Qualify)
        return await self.engine.qualify(request.match_info["call"], body.level, by=client.name, reason=body.reason,
                                         medical_advice=body.medical_advice)

    async def transfer(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, TransferRequest)
        return await self.engine.transfer(request.match_info["call"], body.queue, by=client.name,
                                          reason=body.reason, priority=body.priority)

    async def list_queues(self, request: web.Request, client: Client) -> Any:
        return self.engine.queues_view()

    async def list_agents(self, request: web.Request, client: Client) -> Any:
        return self.engine.agents_view()

    async def agent_login(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentLogin)
        return await self.engine.agent_login(body.interface, body.queues, name=body.name, role=body.role,
                                             state_interface=body.state_interface or "", by=client.name)

    async def agent_logout(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        return await self.engine.agent_logout(body.interface, by=client.name)

    async def agent_pause(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        return await self.engine.agent_pause(body.interface, True, reason=body.reason, by=client.name)

    async def agent_resume(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        return await self.engine.agent_pause(body.interface, False, by=client.name)

    async def mutual_aid(self, request: web.Request, client: Client) -> Any:
        return self.engine.mutual_aid.view()

    async def start_switchover(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, SwitchoverRequest)
        switch = await self.engine.mutual_aid.start_switchover(body.line, body.partner, body.share,
                                                               number=body.number or "", by=client.name,
                                                               reason=body.reason)
        return switch.public()

    async def end_switchover(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, Reasoned)
        switch = await self.engine.mutual_aid.end_switchover(request.match_info["line"], by=client.name,
                                                             reason=body.reason)
        return {**switch.public(), "ended_by": client.name}

    async def set_overflow(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, OverflowSwitch)
        return await self.engine.mutual_aid.set_overflow(request.match_info["queue"], body.enabled,
                                                         by=client.name, reason=body.reason)

    async def resync(self, request: web.Request, client: Client) -> Any:
        log.info("resync requested", by=client.name)
        await self.engine.on_login()
        return self.engine.health()

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi_document())

    def openapi_document(self) -> dict[str, Any]:
        bodies = {"/api/calls/{call}/qualify": Qualify, "/api/calls/{call}/transfer": TransferRequest,
                  "/api/agents/login": AgentLogin, "/api/agents/logout": AgentRef, "/api/agents/pause": AgentRef,
                  "/api/agents/resume": AgentRef, "/api/switchovers": SwitchoverRequest,
                  "/api/switchovers/{line}/end": Reasoned, "/api/overflow/{queue}": OverflowSwitch}
        paths: dict[str, dict[str, Any]] = {
            "/health": {"get": {"summary": "Engine and AMI link state (no token needed)",
                                "responses": {"200": {"description": "state"}}}},
        }
        for method, path, role, summary in self._routes:
            operation: dict[str, Any] = {
                "summary": summary, "description": f"Least role: {role}.", "security": [{"bearer": []}],
                "responses": {"200": {"description": "done"}, "401": {"description": "no or unknown token"},
                              "403": {"description": "role too small"}, "404": {"description": "unknown call"},
                              "409": {"description": "not possible now"}, "422": {"description": "invalid body"},
                              "503": {"description": "switch unreachable"}},
            }
            names = re.findall(r"{(\w+)}", path)
            if names:
                operation["parameters"] = [{"name": name, "in": "path", "required": True,
                                            "schema": {"type": "string"}} for name in names]
            if path in bodies:
                operation["requestBody"] = {"required": True, "content": {
                    "application/json": {"schema": bodies[path].model_json_schema()}}}
            paths.setdefault(path, {})[method.lower()] = operation
        return {"openapi": "3.1.0", "info": {"title": "sas-router control API", "version": "1"},
                "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
                "paths": paths}


async def serve(api: ControlApi, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(api.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
