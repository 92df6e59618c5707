"""The emulator's AMI server: a real TCP listener that answers as Asterisk 22's manager.c does.

Any AMI client (panoramisk, telnet) can use it. Messages, error texts and list-response shapes
are those of a real Asterisk 22.10.1, recorded in ``tests/fixtures/transcripts``. Bad input never
kills the server: garbage lines are ignored, a message without ``Action`` gets Asterisk's error, an oversized
message closes that one connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sas_router.simulator.softswitch.ami_codec import Message, MessageReader, encode
from sas_router.simulator.softswitch.atxfer import DEFAULT_FEATUREMAP
from sas_router.simulator.softswitch.core import Softswitch, originate
from sas_router.simulator.softswitch.model import Channel, Event

log = structlog.get_logger("softswitch.ami")

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ASTERISK_VERSION = "22.10.1"


@dataclass
class User:
    secret: str
    read: set[str] = field(default_factory=lambda: {"all"})
    write: set[str] = field(default_factory=lambda: {"all"})
    #: manager.conf ``eventfilter`` lines, applied to every session of this user from login on,
    #: as Asterisk does (``!`` excludes; without it, only matching events pass).
    eventfilters: list[str] = field(default_factory=list)


def users_from_manager_conf(text: str, secrets: dict[str, str]) -> dict[str, User]:
    """The AMI users of a rendered ``manager.conf``: classes and event filters as Asterisk reads
    them; the secrets come from elsewhere (the rendered file only includes a secret file)."""
    users: dict[str, User] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            if section != "general":
                users[section] = User(secrets.get(section, ""), set(), set(), [])
            continue
        key, _, value = (part.strip() for part in line.partition("="))
        user = users.get(section)
        if user is None:
            continue
        if key in ("read", "write"):
            getattr(user, key).update(c.strip() for c in value.split(",") if c.strip())
        elif key == "eventfilter":
            re.compile(value.removeprefix("!"))  # a bad pattern is refused at load, not at the first event
            user.eventfilters.append(value)
        elif key == "secret":
            user.secret = value
    return {name: user for name, user in users.items() if user.secret}


@dataclass
class Faults:
    """Failure modes a reliability test can switch on."""

    refuse_logins: bool = False
    stall_responses: bool = False


class Session:
    def __init__(self, server: AmiServer, reader: asyncio.StreamReader | None,
                 writer: asyncio.StreamWriter | None) -> None:
        self.server, self.reader, self.writer = server, reader, writer
        self.authenticated = False
        self.user: User | None = None
        self.username = ""
        self.events = True
        self.includes: list[re.Pattern[str]] = []
        self.excludes: list[re.Pattern[str]] = []
        self.closed = False
        #: Actions received while the switch is stalled, answered when it resumes, and the events
        #: it published meanwhile, written then.
        self.pending: list[Message] = []
        self.stalled_events: list[list[tuple[str, object]]] = []
        info = writer.get_extra_info if writer is not None else (lambda _key: None)
        sock, peer = info("sockname"), info("peername")
        self.local = f"{sock[0]}/{sock[1]}" if sock else "127.0.0.1/5038"
        self.peer = f"{peer[0]}/{peer[1]}" if peer else "127.0.0.1/0"

    def send(self, pairs: list[tuple[str, object]]) -> None:
        if self.closed or self.writer is None:
            return
        try:
            self.writer.write(encode(pairs))
        except (ConnectionError, RuntimeError):
            self.closed = True

    def wants(self, event: Event) -> bool:
        if not (self.authenticated and self.events) or self.user is None:
            return False
        cls = event.privilege.split(",")[0]
        if "all" not in self.user.read and cls not in self.user.read:
            return False
        if self.includes or self.excludes:
            text = "\n".join(f"{k}: {v}" for k, v in event.pairs())
            if self.includes and not any(p.search(text) for p in self.includes):
                return False
            if any(p.search(text) for p in self.excludes):
                return False
        return True


class AmiServer:
    def __init__(self, switch: Softswitch, users: dict[str, User] | None = None) -> None:
        self.sw = switch
        self.users = users or {"engine": User("engine-secret")}
        self.sessions: set[Session] = set()
        self.faults = Faults()
        self._server: asyncio.base_events.Server | None = None
        self._driver: asyncio.Task[None] | None = None
        self._resumer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        switch.listeners.append(self._broadcast)
        self.port = 0
        #: Events written to clients (the load simulator's fast-forward waits for the engine to read them).
        self.events_sent = 0
        #: Events raised while an action runs: Asterisk writes the action's response from the
        #: manager thread before stasis delivers the events the action caused.
        self._held: list[Event] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        self.port = self._server.sockets[0].getsockname()[1]
        if not self.sw.scheduler.virtual:
            self.sw.scheduler.on_schedule = self._wake.set
            self._driver = asyncio.create_task(self._drive())
        log.info("ami listening", host=host, port=self.port)
        return self.port

    async def stop(self) -> None:
        if self._driver:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        self.drop_all()
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _drive(self) -> None:
        """Real-time mode: run the switch's timers when they fall due."""
        while True:
            self.sw.scheduler.run_due()
            due = self.sw.scheduler.next_due()
            self._wake.clear()
            delay = None if due is None else max(0.0, due - self.sw.scheduler.now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _answer(self, session: Session, message: Message) -> None:
        try:
            self._handle(session, message)
        except Exception:  # the emulator must never die on one bad request
            log.exception("action failed", action=message.get("Action"))
            self._error(session, message, "Internal error")
        self.sw.scheduler.run_due()

    def _resume_later(self) -> None:
        if self._resumer is None or self._resumer.done():
            self._resumer = asyncio.ensure_future(self._resume())

    async def _resume(self) -> None:
        """Once the stall ends, the events held meanwhile are written and the actions held are
        answered, each in the order they came."""
        while any(s.pending or s.stalled_events for s in self.sessions):
            await asyncio.sleep(0.05)
            if self.faults.stall_responses:
                continue
            for session in list(self.sessions):
                held, session.stalled_events = session.stalled_events, []
                for pairs in held:
                    if not session.closed:
                        session.send(pairs)
                        self.events_sent += 1
                while session.pending and not session.closed:
                    self._answer(session, session.pending.pop(0))

    def drop_all(self) -> None:
        """Fault injection: every AMI connection is cut."""
        for session in list(self.sessions):
            session.closed = True
            if session.writer is not None:
                session.writer.close()
        self.sessions.clear()

    def _broadcast(self, event: Event) -> None:
        if self._held is not None:
            self._held.append(event)
            return
        pairs = event.pairs()
        for session in list(self.sessions):
            if session.wants(event):
                if self.faults.stall_responses or session.stalled_events:
                    # A stuck manager writes nothing to its sessions, events included: they wait.
                    session.stalled_events.append(pairs)
                    self._resume_later()
                    continue
                session.send(pairs)
                self.events_sent += 1

    # --- connection ---------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        writer.write(BANNER)
        decoder = MessageReader()
        try:
            while not session.closed:
                data = await reader.read(65536)
                if not data:
                    break
                messages = decoder.feed(data)
                if decoder.oversized:
                    log.warning("oversized AMI message, closing the connection", user=session.username)
                    break
                for message in messages:
                    if self.faults.stall_responses or session.pending:
                        # A stalled Asterisk (stuck, or frozen by SIGSTOP) answers late, never not
                        # at all: the kernel keeps what was sent. Held here, answered in order after.
                        session.pending.append(message)
                        self._resume_later()
                        continue
                    self._answer(session, message)
                    if session.closed:
                        break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is shutting down: the connection just ends
        finally:
            session.closed = True
            self.sessions.discard(session)
            with contextlib.suppress(Exception):
                writer.close()

    # --- responses ----------------------------------------------------------------------------

    @staticmethod
    def _id(message: Message) -> list[tuple[str, object]]:
        return [("ActionID", message.get("ActionID"))] if message.has("ActionID") else []

    def _ok(self, session: Session, message: Message, text: str | None = None,
            extra: list[tuple[str, object]] | None = None) -> None:
        pairs: list[tuple[str, object]] = [("Response", "Success"), *self._id(message)]
        if text is not None:
            pairs.append(("Message", text))
        session.send(pairs + (extra or []))

    def _error(self, session: Session, message: Message, text: str) -> None:
        session.send([("Response", "Error"), *self._id(message), ("Message", text)])

    def _reply(self, session: Session, message: Message, problem: str | None, success: str) -> None:
        """Actions whose model call returns Asterisk's error text, or None on success."""
        if problem:
            self._error(session, message, problem)
        else:
            self._ok(session, message, success)

    def _list(self, session: Session, message: Message, intro: str, items: list[list[tuple[str, object]]],
              complete: str, item_event: str | None = None) -> None:
        self._ok(session, message, None, [("EventList", "start"), ("Message", intro)])
        for item in items:
            session.send(item + self._id(message))
        session.send([("Event", complete), *self._id(message), ("EventList", "Complete"),
                      ("ListItems", len(items))])

    # --- dispatch -----------------------------------------------------------------------------

    def _handle(self, session: Session, message: Message) -> None:
        self._held = []
        try:
            self._dispatch(session, message)
        finally:
            held, self._held = self._held, None
            for event in held:
                self._broadcast(event)

    def _dispatch(self, session: Session, message: Message) -> None:
        action = message.get("Action").strip()
        if not action:
            self._error(session, message, "Missing action in request")
            return
        key = action.lower()
        if key == "login":
            self._login(session, message)
            return
        if key == "logoff":
            session.send([("Response", "Goodbye"), *self._id(message), ("Message", "Thanks for all the fish.")])
            session.closed = True
            return
        if not session.authenticated:
            self._error(session, message, "Permission denied")
            return
        handler: Callable[[Session, Message], None] | None = getattr(self, f"act_{key}", None)
        if handler is None:
            self._error(session, message,
                        f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
            return
        handler(session, message)

    def _login(self, session: Session, message: Message) -> None:
        user = self.users.get(message.get("Username"))
        if self.faults.refuse_logins or user is None or user.secret != message.get("Secret"):
            log.warning("AMI login refused", username=message.get("Username"))
            self._error(session, message, "Authentication failed")
            session.closed = True
            self._security_event(session, "InvalidAccountID" if user is None else "InvalidPassword",
                                 message.get("Username"), "Error")
            return
        session.authenticated, session.user, session.username = True, user, message.get("Username")
        for pattern in user.eventfilters:
            if pattern.startswith("!"):
                session.excludes.append(re.compile(pattern[1:]))
            else:
                session.includes.append(re.compile(pattern))
        if message.get("Events").lower() in ("off", "no", "false", "0"):
            session.events = False
        self._ok(session, message, "Authentication accepted")
        uptime = int(self.sw.now() - self.sw.started)
        session.send([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
                      ("LastReload", int(self.sw.now() - self.sw.reloaded)), ("Status", "Fully Booted")])
        self._security_event(session, "SuccessfulAuth", session.username, "Informational", [("UsingPassword", 0)])

    def _security_event(self, session: Session, name: str, account: str, severity: str,
                        extra: list[tuple[str, object]] | None = None) -> None:
        """The security-class events Asterisk raises for every AMI login attempt (an admin's
        SIEM watches for InvalidPassword bursts)."""
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.sw.now())) + ".000+0000"
        peer = session.peer
        self.sw.emit(name, [
            ("EventTV", stamp), ("Severity", severity), ("Service", "AMI"), ("EventVersion", 1),
            ("AccountID", account), ("SessionID", f"0x{id(session):x}"),
            ("LocalAddress", f"IPV4/TCP/{session.local}"), ("RemoteAddress", f"IPV4/TCP/{peer}"),
            *(extra or []), ("SessionTV", stamp),
        ], "security")

    # --- basic actions ------------------------------------------------------------------------

    def act_ping(self, session: Session, message: Message) -> None:
        session.send([("Response", "Success"), *self._id(message), ("Ping", "Pong"),
                      ("Timestamp", f"{self.sw.now():.6f}")])

    def act_events(self, session: Session, message: Message) -> None:
        mask = message.get("EventMask").lower()
        session.events = mask not in ("off", "no", "false", "0", "")
        self._ok(session, message, None, [("Events", "On" if session.events else "Off")])

    def act_filter(self, session: Session, message: Message) -> None:
        operation = message.get("Operation", "Add").lower()
        text = message.get("Filter")
        if operation != "add" or not text:
            self._error(session, message, "Unknown operation" if operation != "add" else "Filter not specified")
            return
        try:
            if text.startswith("!"):
                session.excludes.append(re.compile(text[1:]))
            else:
                session.includes.append(re.compile(text))
        except re.error:
            self._error(session, message, "Invalid filter")
            return
        self._ok(session, message, "Success")

    def act_modulecheck(self, session: Session, message: Message) -> None:
        """As Asterisk 22 answers it: Success with no message, or Error 'Module not loaded'."""
        module = message.get("Module").removesuffix(".so")
        if module in self.sw.modules:
            self._ok(session, message, None)
        else:
            self._error(session, message, "Module not loaded")

    def act_coresettings(self, session: Session, message: Message) -> None:
        self._ok(session, message, None, [
            ("AMIversion", "11.0.0"), ("AsteriskVersion", ASTERISK_VERSION), ("SystemName", ""),
            ("CoreMaxCalls", 0), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""), ("CoreRunGroup", ""),
            ("CoreMaxFilehandles", 0), ("CoreRealTimeEnabled", "No"), ("CoreCDRenabled", "No"),
            ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No"),
        ])

    def act_corestatus(self, session: Session, message: Message) -> None:
        started, reloaded = time.gmtime(self.sw.started), time.gmtime(self.sw.reloaded)
        self._ok(session, message, None, [
            ("CoreStartupDate", time.strftime("%Y-%m-%d", started)),
            ("CoreStartupTime", time.strftime("%H:%M:%S", started)),
            ("CoreReloadDate", time.strftime("%Y-%m-%d", reloaded)),
            ("CoreReloadTime", time.strftime("%H:%M:%S", reloaded)),
            ("CoreCurrentCalls", len({c.linkedid for c in self.sw.channels.values()})),
            ("CoreProcessedCalls", self.sw.processed_calls),
        ])

    def act_command(self, session: Session, message: Message) -> None:
        command = " ".join(message.get("Command").split())
        outputs = {
            "core show version": [
                f"Asterisk {ASTERISK_VERSION} built by sas-router @ softswitch-emulator on a x86_64 running Linux "
                f"on {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(self.sw.started))} UTC"],
            "core show uptime": [f"System uptime: {int(self.sw.now() - self.sw.started)} seconds"],
            "core show channels count": [f"{len(self.sw.channels)} active channels",
                                         f"{len({c.linkedid for c in self.sw.channels.values()})} active calls",
                                         f"{self.sw.processed_calls} calls processed"],
            "queue show": self._queue_show(),
        }
        if command == "module reload features":
            self._ok(session, message, "Command output follows",
                     [("Output", "Module 'features' reloaded successfully.")])
            self.sw.reload_features()
            return
        outputs["features show"] = self._features_show()
        if command.startswith("queue show ") and command[11:] in self.sw.queues.queues:
            outputs[command] = self._queue_show(command[11:])
        if command not in outputs:
            self._ok(session, message, "Command output follows",
                     [("Output", f"No such command '{command}' (type 'core show help {command}' for other possible "
                                 "commands)")])
            return
        self._ok(session, message, "Command output follows", [("Output", line) for line in outputs[command]])

    def _features_show(self) -> list[str]:
        """``features show`` as features_config.c prints it."""
        rows = [("Pickup", "pickup"), ("Blind Transfer", "blindxfer"), ("Attended Transfer", "atxfer"),
                ("Disconnect Call", "disconnect"), ("Park Call", "parkcall"), ("One Touch MixMonitor", "automixmon")]
        lines = [f"{'Builtin Feature':<25} {'Default':<7} {'Current':<7}", f"{'-' * 15:<25} {'-' * 7:<7} {'-' * 7:<7}"]
        current = self.sw.featuremap
        lines += [f"{label:<25} {DEFAULT_FEATUREMAP[key]:<7} {current.get(key, ''):<7}" for label, key in rows]
        lines += ["", f"{'Dynamic Feature':<25} {'Default':<7} {'Current':<7}",
                  f"{'-' * 15:<25} {'-' * 7:<7} {'-' * 7:<7}", "(none)", "", "Feature Groups:", "-" * 15, "(none)"]
        return lines

    def _queue_show(self, only: str | None = None) -> list[str]:
        """``queue show`` as app_queue.c prints it (admins read it over ``asterisk -rx``)."""
        now = self.sw.now()
        states = {1: "Not in use", 2: "In use", 3: "Busy", 4: "Invalid", 5: "Unavailable", 6: "Ringing",
                  7: "Ring+Inuse", 8: "On Hold"}
        lines: list[str] = []
        for q in self.sw.queues.queues.values():
            if only is not None and q.name != only:
                continue
            perf, perf2 = q.service_level_perf()
            lines.append(
                f"{q.name} has {len(q.callers)} calls (max {q.maxlen or 'unlimited'}) in '{q.strategy}' strategy "
                f"({int(q.holdtime_avg)}s holdtime, {int(q.talktime_avg)}s talktime), W:{q.weight}, "
                f"C:{q.completed}, A:{q.abandoned}, SL:{perf:.1f}%, SL2:{perf2:.1f}% within {q.servicelevel}s")
            if q.members:
                lines.append("   Members: ")
                for m in q.members.values():
                    paused = f" (paused{':' + m.paused_reason if m.paused_reason else ''} was " \
                             f"{int(now - m.last_pause)} secs ago)" if m.paused else ""
                    taken = (f"has taken {m.calls_taken} calls (last was {int(now - m.last_call)} secs ago)"
                             if m.calls_taken else "has taken no calls yet")
                    lines.append(
                        f"      {m.name} ({m.interface}) (ringinuse {'enabled' if m.ringinuse else 'disabled'}) "
                        f"({'dynamic' if m.dynamic else 'static'}){paused} ({states.get(m.status, 'Unknown')}) "
                        f"{taken} (login was {int(now - m.login_time)} secs ago)")
            else:
                lines.append("   No Members")
            if q.callers:
                lines.append("   Callers: ")
                for position, caller in enumerate(q.callers, 1):
                    wait = int(now - caller.joined)
                    lines.append(f"      {position}. {caller.channel.name} (wait: {wait // 60}:{wait % 60:02d}, "
                                 f"prio: {caller.priority})")
            else:
                lines.append("   No Callers")
            lines.append("")
        lines.append("")
        return lines

    def act_userevent(self, session: Session, message: Message) -> None:
        name = message.get("UserEvent")
        if not name:
            self._error(session, message, "UserEvent not specified")
            return
        extra = [(k, v) for k, v in message.pairs if k.lower() not in ("action", "actionid", "userevent")]
        self._ok(session, message, "Event Sent")
        self.sw.emit("UserEvent", [("UserEvent", name), *extra], "user")

    # --- channels -----------------------------------------------------------------------------

    def _channel(self, session: Session, message: Message, header: str = "Channel") -> Channel | None:
        name = message.get(header)
        if not name:
            self._error(session, message, "Channel not specified" if header == "Channel" else "No channel specified")
            return None
        ch = self.sw.find_channel(name)
        if ch is None:
            self._error(session, message, "No such channel")
        return ch

    def act_hangup(self, session: Session, message: Message) -> None:
        name = message.get("Channel")
        if not name:
            self._error(session, message, "No channel specified")
            return
        ch = self.sw.find_channel(name)
        if ch is None:
            self._error(session, message, "No such channel")
            return
        cause = message.get("Cause")
        self._ok(session, message, "Channel Hungup")
        self.sw.request_hangup(ch, int(cause) if cause.isdigit() else 16, soft=True)

    def act_setvar(self, session: Session, message: Message) -> None:
        variable = message.get("Variable")
        if not variable:
            self._error(session, message, "No variable specified")
            return
        if message.get("Channel"):
            ch = self._channel(session, message)
            if ch is None:
                return
            self.sw.setvar(ch, variable, message.get("Value"))
        else:
            self.sw.globals[variable] = message.get("Value")
        self._ok(session, message, "Variable Set")

    def act_getvar(self, session: Session, message: Message) -> None:
        variable = message.get("Variable")
        if not variable:
            self._error(session, message, "No variable specified")
            return
        if message.get("Channel"):
            ch = self._channel(session, message)
            if ch is None:
                return
            value = self.sw.lookup(ch, variable.lstrip("_"))
        else:
            value = self.sw.globals.get(variable, "")
        self._ok(session, message, None, [("Variable", variable), ("Value", value)])

    def act_originate(self, session: Session, message: Message) -> None:
        channel = message.get("Channel")
        if not channel:
            self._error(session, message, "Channel not specified")
            return
        exten, application = message.get("Exten"), message.get("Application")
        if not exten and not application:
            self._error(session, message, "Exten not specified")
            return
        try:
            priority = int(message.get("Priority") or 1)
            timeout = int(message.get("Timeout") or 30000) / 1000
        except ValueError:
            self._error(session, message, "Invalid priority" if not message.get("Priority").isdigit()
                        else "Invalid timeout")
            return
        variables = {}
        for item in message.get_all("Variable"):
            for part in item.split(","):
                key, _, value = part.partition("=")
                if key:
                    variables[key] = value
        is_async = message.get("Async").lower() in ("true", "yes", "1")
        action_id = self._id(message)

        def result(ok: bool, leg: Channel | None, reason: int) -> None:
            if is_async:
                session.send([("Event", "OriginateResponse"), ("Privilege", "call,all"), *action_id,
                              ("Response", "Success" if ok else "Failure"), ("Channel", leg.name if leg else channel),
                              ("Context", message.get("Context")), ("Exten", exten), ("Reason", reason),
                              ("Uniqueid", leg.uniqueid if leg else "<null>"),
                              ("CallerIDNum", leg.cid_num or "<unknown>" if leg else "<unknown>"),
                              ("CallerIDName", leg.cid_name or "<unknown>" if leg else "<unknown>")])
            elif ok:
                self._ok(session, message, "Originate successfully queued")
            else:
                self._error(session, message, "Originate failed")

        if is_async:
            self._ok(session, message, "Originate successfully queued")
        leg = originate(self.sw, channel, context=message.get("Context"), exten=exten, priority=priority,
                        application=application, data=message.get("Data"), callerid=message.get("CallerID"),
                        timeout=timeout, variables=variables, on_result=result)
        if leg is None and is_async:
            return

    def act_redirect(self, session: Session, message: Message) -> None:
        ch = self._channel(session, message)
        if ch is None:
            return
        context, exten = message.get("Context"), message.get("Exten")
        if not exten:
            self._error(session, message, "Exten not specified")
            return
        priority = int(message.get("Priority") or 1) if (message.get("Priority") or "1").isdigit() else 1
        extra = None
        if message.get("ExtraChannel"):
            extra = self.sw.find_channel(message.get("ExtraChannel"))
            if extra is None:
                self._error(session, message, "ExtraChannel does not exist")
                return
        if not self.sw.dialplan.exists(context or ch.context, exten, priority) and \
                self.sw.dialplan.find(context or ch.context, "i") is None:
            self._error(session, message, "Redirect failed")
            return
        if extra is not None:
            self._ok(session, message, "Dual Redirect successful")
            extra_context = message.get("ExtraContext") or context
            extra_exten = message.get("ExtraExten") or exten
            extra_priority = int(message.get("ExtraPriority") or priority)
            self.sw.dual_redirect(ch, extra, (context, exten, priority),
                                  (extra_context, extra_exten, extra_priority))
            return
        self._ok(session, message, "Redirect successful")
        self.sw.redirect(ch, context or ch.context, exten, priority)

    def act_blindtransfer(self, session: Session, message: Message) -> None:
        ch = self._channel(session, message)
        if ch is None:
            return
        context, exten = message.get("Context") or ch.context, message.get("Exten")
        if not exten:
            self._error(session, message, "No extension specified")
            return
        problem = self.sw.blind_transfer(ch, context, exten)
        self._reply(session, message, problem, "Transfer succeeded")

    def act_atxfer(self, session: Session, message: Message) -> None:
        # manager.c action_atxfer: its own checks, in its order, with its own texts.
        name, exten = message.get("Channel"), message.get("Exten")
        if not name:
            self._error(session, message, "No channel specified")
            return
        if not exten:
            self._error(session, message, "No extension specified")
            return
        ch = self.sw.find_channel(name)
        if ch is None:
            self._error(session, message, "Channel specified does not exist")
            return
        problem = self.sw.atxfer(ch, message.get("Context") or None, exten)
        self._reply(session, message, problem, "Atxfer successfully queued")

    def act_coreshowchannels(self, session: Session, message: Message) -> None:
        items = []
        for ch in sorted(self.sw.channels.values(), key=lambda c: c.name):
            items.append([("Event", "CoreShowChannel"), ("ActionID", message.get("ActionID")), *ch.snapshot(),
                          ("Application", ch.app), ("ApplicationData", ch.appdata),
                          ("Duration", _duration(self.sw.now() - ch.created)),
                          ("BridgeId", ch.bridge.uniqueid if ch.bridge else "")])
        self._ok(session, message, None, [("EventList", "start"), ("Message", "Channels will follow")])
        for item in items:
            session.send(item if message.has("ActionID") else [p for p in item if p[0] != "ActionID"])
        session.send([("Event", "CoreShowChannelsComplete"), *self._id(message), ("EventList", "Complete"),
                      ("ListItems", len(items))])

    def act_status(self, session: Session, message: Message) -> None:
        channels = list(self.sw.channels.values())
        if message.get("Channel"):
            ch = self.sw.find_channel(message.get("Channel"))
            if ch is None:
                self._error(session, message, "No such channel")
                return
            channels = [ch]
        items = [[("Event", "Status"), ("Privilege", "Call"), *ch.snapshot(), ("Type", ch.tech),
                  ("DNID", ""), ("EffectiveConnectedLineNum", "<unknown>"),
                  ("EffectiveConnectedLineName", "<unknown>"), ("TimeToHangup", 0),
                  ("BridgeID", ch.bridge.uniqueid if ch.bridge else ""), ("Application", ch.app),
                  ("Data", ch.appdata), ("Nativeformats", "(ulaw)"), ("Readformat", "ulaw"),
                  ("Readtrans", ""), ("Writeformat", "ulaw"), ("Writetrans", ""), ("Callgroup", 0),
                  ("Pickupgroup", 0), ("Seconds", int(self.sw.now() - ch.created)),
                  *self._status_variables(ch, message.get("Variables") or "")] for ch in channels]
        self._ok(session, message, None, [("EventList", "start"), ("Message", "Channel status will follow")])
        for item in items:
            session.send(item + self._id(message))
        session.send([("Event", "StatusComplete"), *self._id(message), ("EventList", "Complete"),
                      ("ListItems", len(items)), ("Items", len(items))])

    def _status_variables(self, ch: Channel, names: str) -> list[tuple[str, object]]:
        """``Variable: NAME=value`` per requested name, as manager.c writes them: an unset
        variable prints C's ``(null)``."""
        pairs: list[tuple[str, object]] = []
        for name in filter(None, (n.strip() for n in names.split(","))):
            value = self.sw.lookup(ch, name)
            pairs.append(("Variable", f"{name}={value or '(null)'}"))
        return pairs

    # --- AstDB --------------------------------------------------------------------------------

    def act_dbput(self, session: Session, message: Message) -> None:
        family, key = message.get("Family"), message.get("Key")
        if not family:
            self._error(session, message, "No family specified")
            return
        if not key:
            self._error(session, message, "No key specified")
            return
        self.sw.astdb[f"{family}/{key}"] = message.get("Val")
        self._ok(session, message, "Updated database successfully")

    def act_dbget(self, session: Session, message: Message) -> None:
        family, key = message.get("Family"), message.get("Key")
        if not family:
            self._error(session, message, "No family specified.")
            return
        if not key:
            self._error(session, message, "No key specified.")
            return
        value = self.sw.astdb.get(f"{family}/{key}")
        if value is None:
            self._error(session, message, "Database entry not found")
            return
        self._ok(session, message, None, [("EventList", "start"), ("Message", "Result will follow")])
        session.send([("Event", "DBGetResponse"), *self._id(message), ("Family", family), ("Key", key),
                      ("Val", value)])
        session.send([("Event", "DBGetComplete"), *self._id(message), ("EventList", "Complete"),
                      ("ListItems", 1)])

    def act_dbdel(self, session: Session, message: Message) -> None:
        family, key = message.get("Family"), message.get("Key")
        if not family or not key:
            self._error(session, message, "No family specified." if not family else "No key specified.")
            return
        if self.sw.astdb.pop(f"{family}/{key}", None) is None:
            self._error(session, message, "Database entry not found")
            return
        self._ok(session, message, "Key deleted successfully")

    # --- queues -------------------------------------------------------------------------------

    def act_queueadd(self, session: Session, message: Message) -> None:
        queue, interface = message.get("Queue"), message.get("Interface")
        if not queue or not interface:
            self._error(session, message, "'Queue' and 'Interface' not set.")
            return
        problem = self.sw.queues.add_member(
            queue, interface, message.get("MemberName"), message.get("StateInterface"),
            int(message.get("Penalty") or 0), message.get("Paused").lower() in ("true", "yes", "1"),
            message.get("Reason"))
        self._reply(session, message, problem, "Added interface to queue")

    def act_queueremove(self, session: Session, message: Message) -> None:
        queue, interface = message.get("Queue"), message.get("Interface")
        if not queue or not interface:
            self._error(session, message, "Need 'Queue' and 'Interface' parameters.")
            return
        problem = self.sw.queues.remove_member(queue, interface)
        self._reply(session, message, problem, "Removed interface from queue")

    def act_queuepause(self, session: Session, message: Message) -> None:
        interface, paused = message.get("Interface"), message.get("Paused")
        if not interface or not paused:
            self._error(session, message, "Need 'Interface' and 'Paused' parameters.")
            return
        pause = paused.lower() in ("true", "yes", "1")
        problem = self.sw.queues.pause_member(message.get("Queue") or None, interface, pause, message.get("Reason"))
        self._reply(session, message, problem,
                    "Interface paused successfully" if pause else "Interface unpaused successfully")

    def act_queuepenalty(self, session: Session, message: Message) -> None:
        interface, penalty = message.get("Interface"), message.get("Penalty")
        if not interface or not penalty.lstrip("-").isdigit():
            self._error(session, message, "Need 'Interface' and 'Penalty' parameters.")
            return
        problem = self.sw.queues.penalty_member(message.get("Queue") or None, interface, int(penalty))
        self._reply(session, message, problem, "Interface penalty set successfully")

    def act_queuewithdrawcaller(self, session: Session, message: Message) -> None:
        queue, caller = message.get("Queue"), message.get("Caller")
        if not queue or not caller:
            self._error(session, message, "'Queue' and 'Caller' not set.")
            return
        problem = self.sw.queues.withdraw(queue, caller, message.get("WithdrawInfo"))
        self._reply(session, message, problem, "Withdraw requested successfully")

    def act_queuestatus(self, session: Session, message: Message) -> None:
        wanted = message.get("Queue")
        items: list[list[tuple[str, object]]] = []
        now = self.sw.now()
        for q in self.sw.queues.queues.values():
            if wanted and q.name != wanted:
                continue
            perf, perf2 = q.service_level_perf()
            items.append([("Event", "QueueParams"), ("Queue", q.name), ("Max", q.maxlen), ("Strategy", q.strategy),
                          ("Calls", len(q.callers)), ("Holdtime", int(q.holdtime_avg)),
                          ("TalkTime", int(q.talktime_avg)), ("Completed", q.completed),
                          ("Abandoned", q.abandoned), ("ServiceLevel", q.servicelevel),
                          ("ServicelevelPerf", f"{perf:.1f}"), ("ServicelevelPerf2", f"{perf2:.1f}"),
                          ("Weight", q.weight)])
            for m in q.members.values():
                items.append([("Event", "QueueMember"), ("Queue", q.name), ("Name", m.name),
                              ("Location", m.interface), ("StateInterface", m.state_interface),
                              ("Membership", "dynamic" if m.dynamic else "static"), ("Penalty", m.penalty),
                              ("CallsTaken", m.calls_taken), ("LastCall", int(m.last_call)),
                              ("LastPause", int(m.last_pause)), ("LoginTime", int(m.login_time)),
                              ("InCall", int(m.in_call)), ("Status", m.status), ("Paused", int(m.paused)),
                              ("PausedReason", m.paused_reason), ("Wrapuptime", m.wrapuptime)])
            for position, caller in enumerate(q.callers, 1):
                ch = caller.channel
                items.append([("Event", "QueueEntry"), ("Queue", q.name), ("Position", position),
                              ("Channel", ch.name), ("Uniqueid", ch.uniqueid),
                              ("CallerIDNum", ch.cid_num or "<unknown>"), ("CallerIDName", ch.cid_name or "<unknown>"),
                              ("ConnectedLineNum", ch.conn_num or "<unknown>"),
                              ("ConnectedLineName", ch.conn_name or "<unknown>"),
                              ("Wait", int(now - caller.joined)), ("Priority", caller.priority)])
        self._list(session, message, "Queue status will follow", items, "QueueStatusComplete")

    def act_queuesummary(self, session: Session, message: Message) -> None:
        wanted = message.get("Queue")
        items = []
        now = self.sw.now()
        for q in self.sw.queues.queues.values():
            if wanted and q.name != wanted:
                continue
            logged = len(q.members)
            available = sum(1 for m in q.members.values() if self.sw.queues.available(q, m))
            longest = max((int(now - c.joined) for c in q.callers), default=0)
            items.append([("Event", "QueueSummary"), ("Queue", q.name), ("LoggedIn", logged),
                          ("Available", available), ("Callers", len(q.callers)), ("HoldTime", int(q.holdtime_avg)),
                          ("TalkTime", int(q.talktime_avg)), ("LongestHoldTime", longest)])
        self._list(session, message, "Queue summary will follow", items, "QueueSummaryComplete")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
