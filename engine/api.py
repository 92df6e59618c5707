"""The control API: what an agent desk (telephony bar, LRM), a supervisor or an admin may ask.

JSON over HTTP (aiohttp). Every request but ``/health`` and ``/openapi.json`` needs a bearer
token; each token belongs to one client with one role. Roles are ordered — ``desk`` <
``supervisor`` < ``admin`` — and each route names the least role it needs. A missing or unknown
token is a 401, a known token with too small a role a 403, both with a message saying why.
Request bodies are validated (pydantic) before anything reaches the switch; free text (a
qualification reason) is refused if it carries control characters.

A desk token is bound to its desk phones: it acts only on them and on the calls they are talking
to or that wait in their queues; supervisors and admins act on all. Every control request —
allowed, refused or failed — is written to the audit trail (who, role, what, which call, result),
because after an incident "who asked the switch to do that" is a medico-legal question.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sas_router.engine.ami import AmiActionFailed, AmiBusy, AmiLinkDown, UnsafeValue
from sas_router.engine.core.calls import Call, CallState
from sas_router.engine.core.desk import desk_view
from sas_router.engine.core.notices import Notice, NoticeKind
from sas_router.engine.core.routing import RoutingError, UndeclaredInterface, check_interface
from sas_router.engine.core.switchover import SwitchoverError
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import Plan, Priority
from sas_router.engine.reload import ReloadRefused, reload_plan
from sas_router.engine.service import Engine

STATIC = Path(__file__).resolve().parent / "static"
log = structlog.get_logger("engine.api")

#: Who may do what, least first: a wall screen (viewer) reads the supervision only; a desk acts on
#: its own phones and calls; a supervisor on all; an admin also reloads the plan.
ROLES = ("viewer", "desk", "supervisor", "admin")
INTERFACE = r"^(PJSIP|SIP|Local)/[A-Za-z0-9@._/+-]{1,80}$"
FREE_TEXT = r"^[^\x00-\x1f\x7f]{0,200}$"
NAME = r"^[^\x00-\x1f\x7f]{1,60}$"


#: A request body larger than this is refused (413) before it is parsed; the largest real one is
#: a switch-over with its reason, well under a kilobyte.
MAX_BODY = 64 * 1024
#: Where a handler leaves its validated body for the audit trail.
BODY: web.RequestKey[BaseModel] = web.RequestKey("body", BaseModel)
BEARER = re.compile(r"^Bearer ([\x21-\x7e]{1,256})$")


@dataclass(frozen=True)
class Client:
    name: str
    role: str
    #: For a desk token: the desk extensions (or ranges, or a remote regulator's number) it acts for.
    desks: tuple[str, ...] = ()


class ClientError(ValueError):
    """A token's binding does not fit the plan (a desk the plan does not declare)."""


def bind_clients(clients: Mapping[str, Client], plan: Plan) -> dict[str, frozenset[str]]:
    """The queue interfaces each desk client may act for, checked against the plan's desks; a
    token naming a desk the plan does not declare stops the engine at start, not at 3 a.m."""
    bound: dict[str, frozenset[str]] = {}
    for client in clients.values():
        interfaces: set[str] = set()
        for desk in client.desks:
            first, _, last = desk.partition("-")
            if last:
                width = len(first)
                numbers = [str(n).zfill(width) for n in range(int(first), int(last) + 1)] if len(last) == width else []
                if not numbers or any(n not in plan.desks for n in numbers):
                    raise ClientError(f"token of {client.name}: desks {desk} are not all declared by {plan.site.id}")
                interfaces |= {f"PJSIP/{n}" for n in numbers}
            elif desk in plan.desks:
                interfaces.add(f"PJSIP/{desk}")
            elif len(desk.lstrip("+")) >= 10:
                interfaces.add(f"Local/{desk}@{C.CTX_REMOTE_AGENT}/n")
            else:
                raise ClientError(f"token of {client.name}: desk {desk} is not declared by {plan.site.id}")
        bound[client.name] = frozenset(interfaces)
    return bound


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


class Forbidden(Exception):
    """A desk asked to act on a phone or a call that is not its own."""


@dataclass(frozen=True)
class AuditEntry:
    at: float
    client: str
    role: str
    action: str
    call_id: str
    target: str
    status: int
    result: str

    def public(self) -> dict[str, object]:
        return dict(self.__dict__)


class ControlApi:
    def __init__(self, engine: Engine, tokens: dict[str, Client], *, plan_file: Path | None = None,
                 switch_config: Path | None = None) -> None:
        self.engine = engine
        self.tokens = tokens
        #: Where a reload reads the plan from, and the Asterisk configuration directory it installs
        #: into when the engine runs on the Asterisk host (None: the admin installs by hand).
        self.plan_file = plan_file
        self.switch_config = switch_config
        self._reloading = asyncio.Lock()
        self.interfaces = bind_clients(tokens, engine.plan)
        #: The last control requests, newest last (the journal keeps them all when it is configured).
        self.audit_log: deque[AuditEntry] = deque(maxlen=2000)
        self.app = web.Application(middlewares=[self._errors], client_max_size=MAX_BODY)
        self._routes: list[tuple[str, str, str, str]] = []
        r = self.route
        r("GET", "/api/calls", "desk", self.list_calls, "Live calls with their queue visits and agents")
        r("GET", "/api/calls/{call}", "desk", self.get_call, "One live call (Uniqueid, SAS call id or channel)")
        r("POST", "/api/calls/{call}/qualify", "desk", self.qualify, "Qualify P0/P1/P2 and route accordingly")
        r("POST", "/api/calls/{call}/transfer", "desk", self.transfer, "Move the caller to another queue")
        r("GET", "/api/queues", "desk", self.list_queues, "Queues: waiting callers, longest wait, agents")
        r("GET", "/api/agents", "desk", self.list_agents, "Agents, their queues, roles and states")
        r("POST", "/api/agents/login", "desk", self.agent_login, "Log a desk into queues with a role")
        r("POST", "/api/agents/logout", "desk", self.agent_logout,
          "Log a desk out of every queue (its own desk; a supervisor closes any desk left logged in)")
        r("GET", "/api/me", "viewer", self.me, "Who this token is: client, role and the desks it acts for")
        r("GET", "/api/desks/{extension}", "desk", self.desk_state,
          "A desk's telephony bar: its state, its call, where each qualification goes now, its queues, its day")
        r("GET", "/api/desks/{extension}/stream", "desk", self.desk_stream,
          "Server-sent events: the desk's bar, live")
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
        r("POST", "/api/admin/plan/reload", "admin", self.reload,
          "Reload the site plan: validated first (refused with its errors, the running plan stays), installed on "
          "the switch when managed here, then adopted without dropping a call; says what changed")
        self.app.router.add_get("/health", self.health)
        self.app.router.add_get("/desk", self.desk_page)
        #: Set at shutdown: open desk streams end at once instead of holding the engine's stop.
        self._closing = asyncio.Event()
        self.app.on_shutdown.append(self._close_streams)
        self.app.router.add_static("/static/vendor", STATIC / "vendor", show_index=False)
        self.app.router.add_static("/static/js", STATIC / "js", show_index=False)
        self.app.router.add_get("/openapi.json", self.openapi)

    def attach(self, engine: Engine) -> None:
        """Serve this engine from now on (a restarted one: same plan, same clients)."""
        self.engine = engine

    def route(self, method: str, path: str, role: str, handler: Handler, summary: str) -> None:
        self._routes.append((method, path, role, summary))

        audited = method != "GET"

        async def guarded(request: web.Request) -> web.StreamResponse:
            client = self._authenticate(request)
            response: web.StreamResponse
            if client is None:
                response = _error(401, "missing or unknown bearer token")
            elif ROLES.index(client.role) < ROLES.index(role):
                log.warning("api refused", client=client.name, role=client.role, needed=role, path=request.path)
                response = _error(403, f"role {client.role!r} may not do this; {role!r} or above is needed")
            else:
                try:
                    result = await handler(request, client)
                    response = result if isinstance(result, web.StreamResponse) else web.json_response(result)
                except web.HTTPException as exc:
                    if audited:
                        self._audit(request, client, path, exc.status, exc.reason)
                    raise
                except Exception as exc:
                    mapped = _error_response(exc)
                    if mapped is None:
                        if audited:
                            self._audit(request, client, path, 500, f"internal error: {type(exc).__name__}")
                        raise
                    response = mapped
            if audited:
                self._audit(request, client, path, response.status, _result_text(response))
            return response

        self.app.router.add_route(method, path, guarded)

    def _authenticate(self, request: web.Request) -> Client | None:
        """The client whose token the request bears; every token is compared (constant time, no
        early exit), and anything but ``Bearer <visible ASCII>`` is simply no token."""
        match = BEARER.match(request.headers.get("Authorization", ""))
        if match is None:
            return None
        offered = match[1].encode("ascii")
        found = None
        for token, client in self.tokens.items():
            if hmac.compare_digest(token.encode("utf-8"), offered):
                found = client
        return found

    # --- authority and audit ------------------------------------------------------------------

    def _own_interface(self, client: Client, interface: str) -> None:
        """A desk acts on its own phones only; supervisors and admins on every declared one."""
        check_interface(self.engine.plan, interface)
        if client.role == "desk" and _member_key(interface) not in self.interfaces.get(client.name, frozenset()):
            raise Forbidden(f"{interface} is not a desk of {client.name}")

    def _may_see(self, client: Client, call: Call) -> bool:
        """A desk sees (and acts on) a call it is talking to, or one waiting in a queue it serves."""
        if client.role != "desk":
            return True
        mine = self.interfaces.get(client.name, frozenset())
        if _talking_to(call) & mine:
            return True
        visit = call.current_visit
        if call.state == CallState.WAITING and visit is not None:
            serving = {i for i, agent in self.engine.tracker.agents.items() if visit.queue in agent.memberships}
            return bool(serving & mine)
        return False

    def _own_call(self, client: Client, ident: str) -> None:
        """A desk acts on a call it is talking to, or one waiting in a queue it serves."""
        call = self.engine.tracker.call_by_id(ident)
        if call is None or self._may_see(client, call):
            return  # a missing call: the engine answers 404 itself
        raise Forbidden(f"call {call.call_id or call.uniqueid} is neither talking to nor waiting for a desk of "
                        f"{client.name}")

    def audit(self, request: web.Request, client: Client | None, path: str, status: int, result: str) -> None:
        """Write a request to the audit trail (GET routes that must be, such as hearing a recording)."""
        self._audit(request, client, path, status, result)

    def _audit(self, request: web.Request, client: Client | None, path: str, status: int, result: str) -> None:
        body = request.get(BODY)
        fields = body.model_dump() if isinstance(body, BaseModel) else {}
        ident = request.match_info.get("call", "")
        call = self.engine.tracker.call_by_id(ident) if ident else None
        target = " ".join(f"{k}={v}" for k, v in fields.items() if k in ("interface", "queue", "level", "line",
                                                                             "partner", "share", "enabled")
                          and v not in (None, ""))
        for name in ("line", "queue"):
            if name in request.match_info:
                target = f"{name}={request.match_info[name]} {target}".strip()
        entry = AuditEntry(at=self.engine.clock(), client=client.name if client else "(no valid token)",
                           role=client.role if client else "", action=f"{request.method} {path}",
                           call_id=(call.call_id or call.uniqueid) if call else ident[:80], target=target[:200],
                           status=status, result=result[:300])
        self.audit_log.append(entry)
        log.info("audit", call_id=entry.call_id or None, client=entry.client, role=entry.role, action=entry.action,
                 target=entry.target, status=status, result=entry.result,
                 reason=str(fields.get("reason", ""))[:200] or None)
        self.engine.broadcast(Notice(NoticeKind.AUDIT, entry.at, call.uniqueid if call else "",
                                     {**entry.public(), "reason": str(fields.get("reason", ""))}))

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:
            mapped = _error_response(exc)
            if mapped is None:
                raise
            return mapped

    async def read_body(self, request: web.Request, model: type[_Body]) -> Any:
        """A request body validated by ``model`` (for routes other modules add)."""
        return await self._body(request, model)

    async def _body(self, request: web.Request, model: type[_Body]) -> Any:
        """The validated body; too large is a 413, not UTF-8 JSON or not an object a 400."""
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise BadBody(413, f"the body is larger than {MAX_BODY} bytes") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise BadBody(400, "the body is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise BadBody(400, f"the body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
        except RecursionError:
            raise BadBody(400, "the body nests too deeply") from None
        if not isinstance(data, dict):
            raise BadBody(400, "the body must be a JSON object")
        body = model.model_validate(data)
        request[BODY] = body
        return body

    # --- handlers -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(self.engine.health())

    async def list_calls(self, request: web.Request, client: Client) -> Any:
        """Supervisors see every live call; a desk only those it may act on (its own calls, and
        the callers waiting in the queues it serves): a caller's number is not for every screen."""
        now = self.engine.clock()
        return [c.public(now) for c in self.engine.tracker.calls.values() if self._may_see(client, c)]

    async def get_call(self, request: web.Request, client: Client) -> Any:
        call = self.engine.tracker.call_by_id(request.match_info["call"])
        if call is None:
            raise LookupError(f"no live call {request.match_info['call']}")
        if not self._may_see(client, call):
            raise Forbidden(f"call {call.call_id or call.uniqueid} is neither talking to nor waiting for a desk of "
                            f"{client.name}")
        return call.public(self.engine.clock())

    async def qualify(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, Qualify)
        self._own_call(client, request.match_info["call"])
        return await self.engine.qualify(request.match_info["call"], body.level, by=client.name, reason=body.reason,
                                         medical_advice=body.medical_advice)

    async def transfer(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, TransferRequest)
        self._own_call(client, request.match_info["call"])
        return await self.engine.transfer(request.match_info["call"], body.queue, by=client.name,
                                          reason=body.reason, priority=body.priority)

    async def list_queues(self, request: web.Request, client: Client) -> Any:
        return self.engine.queues_view()

    async def list_agents(self, request: web.Request, client: Client) -> Any:
        return self.engine.agents_view()

    async def agent_login(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentLogin)
        self._own_interface(client, body.interface)
        if body.state_interface:
            self._own_interface(client, body.state_interface)
        return await self.engine.agent_login(body.interface, body.queues, name=body.name, role=body.role,
                                             state_interface=body.state_interface or "", by=client.name)

    async def agent_logout(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        self._own_interface(client, body.interface)
        return await self.engine.agent_logout(body.interface, by=client.name)

    async def me(self, request: web.Request, client: Client) -> Any:
        desks = sorted(self.interfaces.get(client.name, frozenset()))
        return {"client": client.name, "role": client.role, "desks": desks,
                "extensions": [d.removeprefix("PJSIP/") for d in desks if d.startswith("PJSIP/")]}

    def _desk(self, request: web.Request, client: Client) -> dict[str, Any]:
        interface = f"PJSIP/{request.match_info['extension']}"
        self._own_interface(client, interface)
        tracker = self.engine.tracker
        return desk_view(tracker.agents.get(interface), interface, list(tracker.calls.values()), list(tracker.ended),
                         self.engine.plan, self.engine.queues_view(), self.engine.clock())

    async def desk_state(self, request: web.Request, client: Client) -> Any:
        return self._desk(request, client)

    async def desk_stream(self, request: web.Request, client: Client) -> web.StreamResponse:
        """The bar's state whenever it changes (and every 2 s at least, so the bar knows the link
        is alive): the telephony bar stays live without polling the API."""
        first = self._desk(request, client)  # authority checked before the stream opens
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        last, sent_at = "", 0.0
        try:
            state = first
            while not self._closing.is_set():
                text = json.dumps(state, separators=(",", ":"), default=str)
                moved = {k: v for k, v in state.items() if k != "at"}
                key = json.dumps(moved, default=str)
                if key != last or time.monotonic() - sent_at > 2.0:
                    await response.write(f"event: desk\ndata: {text}\n\n".encode())
                    last, sent_at = key, time.monotonic()
                await asyncio.sleep(0.25)
                state = self._desk(request, client)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response

    async def _close_streams(self, _app: web.Application) -> None:
        self._closing.set()

    async def desk_page(self, request: web.Request) -> web.Response:
        return web.Response(body=(STATIC / "desk.html").read_bytes(), content_type="text/html", charset="utf-8")

    async def agent_pause(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        self._own_interface(client, body.interface)
        return await self.engine.agent_pause(body.interface, True, reason=body.reason, by=client.name)

    async def agent_resume(self, request: web.Request, client: Client) -> Any:
        body = await self._body(request, AgentRef)
        self._own_interface(client, body.interface)
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

    async def reload(self, request: web.Request, client: Client) -> Any:
        return await self.reload_plan()

    async def reload_plan(self) -> dict[str, Any]:
        """Shared by the admin route and SIGHUP; one reload at a time."""
        if self.plan_file is None:
            raise RoutingError("this engine was not started from a plan file; nothing to reload")
        async with self._reloading:
            try:
                result = await reload_plan(self.engine, self.plan_file, self.tokens, switch_config=self.switch_config)
            except ReloadRefused as exc:
                log.error("plan reload refused; the running plan stays", plan=str(self.plan_file),
                          problems=exc.problems)
                raise
            self.interfaces = bind_clients(self.tokens, self.engine.plan)
            return result.public()

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self.openapi_document())

    def openapi_document(self) -> dict[str, Any]:
        bodies: dict[str, type[BaseModel]] = {
            "/api/calls/{call}/qualify": Qualify, "/api/calls/{call}/transfer": TransferRequest,
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


class BadBody(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _error_response(exc: BaseException) -> web.Response | None:
    """The answer a refused or failed request gets; None for a bug (500, logged by aiohttp)."""
    if isinstance(exc, BadBody):
        return _error(exc.status, str(exc))
    if isinstance(exc, ReloadRefused):
        return web.json_response({"error": "plan refused; the running plan stays", "problems": exc.problems},
                                 status=422)
    if isinstance(exc, ValidationError):
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        return _error(422, problems)
    if isinstance(exc, (RoutingError, UnsafeValue, SwitchoverError)):
        return _error(409 if isinstance(exc, RoutingError) else 422, str(exc))
    if isinstance(exc, (UndeclaredInterface, Forbidden)):
        return _error(403, str(exc))
    if isinstance(exc, LookupError):
        return _error(404, str(exc).strip("'\""))
    if isinstance(exc, (AmiLinkDown, AmiBusy)):
        return _error(503, f"switch unavailable: {exc}")
    if isinstance(exc, AmiActionFailed):
        return _error(502, f"the switch refused: {exc}")
    return None


def _result_text(response: web.StreamResponse) -> str:
    if response.status < 400:
        return "done"
    body = getattr(response, "text", None) or ""
    try:
        return str(json.loads(body).get("error", body))
    except (ValueError, AttributeError):
        return body


def _member_key(interface: str) -> str:
    """``Local/<n>@sas-remote-agent`` and ``.../n`` name the same remote regulator."""
    if interface.startswith("Local/") and not interface.endswith("/n"):
        return f"{interface}/n"
    return interface


def _talking_to(call: Call) -> set[str]:
    return {_member_key(leg.interface) for leg in call.legs if leg.ended_at is None}


async def serve(api: ControlApi, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(api.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
