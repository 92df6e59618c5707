"""The softswitch model: channels, Local pairs, dialplan execution, bridges, Dial, Queue, AstDB.

Pure with respect to I/O: it is driven by a :class:`Scheduler` and reports AMI events to
listeners. The AMI server, the control API and the tests all drive the same object. Orders of
events and their fields follow the real Asterisk 22.10.1 recordings in ``tests/fixtures/transcripts``.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sas_router.engine.plan.render import REQUIRED_MODULES
from sas_router.simulator.softswitch import dialplan as dp
from sas_router.simulator.softswitch.app_queue import (
    INUSE,
    NOT_INUSE,
    RINGING,
    UNAVAILABLE,
    AppQueue,
    QueueCaller,
    QueueModel,
    parse_queues_conf,
)
from sas_router.simulator.softswitch.app_queue import Member as QueueMember
from sas_router.simulator.softswitch.atxfer import AttendedTransfers, parse_featuremap
from sas_router.simulator.softswitch.clock import Scheduler, Timer
from sas_router.simulator.softswitch.model import CAUSE_TEXT, EVENT_CLASS, PRES_NAMES, PRES_TEXT, Bridge, Channel, Event

log = structlog.get_logger("softswitch")

#: Answer() on a channel that is not yet up waits this long for media (seen in the recordings).
ANSWER_SETTLE = 0.5
#: How long the emulator takes to play a queue's ``announce`` to the member (no sound files here).
ANNOUNCE_SECONDS = 1.0
#: From the bridging of both halves of a Local pair to its optimisation (recording 07: 18 ms).
LOCAL_OPTIMISATION_DELAY = 0.018
#: Applications that send frames: a Local pair carrying them can be optimised away.
MEDIA_APPLICATIONS = frozenset({"MusicOnHold", "Playback"})


@dataclass
class Endpoint:
    """A PJSIP endpoint: an agent's phone, a remote regulator's number, or a trunk."""

    name: str
    registered: bool = True
    #: Seconds from ringing to answer; None = answer only when told (load simulator / API).
    answer_after: float | None = 1.0
    #: Seconds from answer to hang-up; None = talk until someone else hangs up.
    talk_for: float | None = None
    ringing: list[Channel] = field(default_factory=list)


@dataclass
class TrunkLink:
    """A PJSIP trunk to another emulated SAS: a Dial on it becomes an inbound call there."""

    remote: Softswitch
    remote_endpoint: str
    up: bool = True
    refuse: bool = False


@dataclass
class Attempt:
    """One ringing round of a queue caller (ringall rings several members at once)."""

    queue: QueueModel
    caller: QueueCaller
    legs: list[tuple[QueueMember, Channel]]
    timer: Timer | None = None
    done: bool = False
    #: The member that answered, while app_queue makes it wait (memberdelay, announce).
    answered: tuple[QueueMember, Channel] | None = None


@dataclass
class DialState:
    caller: Channel
    legs: list[Channel]
    timer: Timer | None
    done: bool = False
    started: float = 0.0
    answered_at: float | None = None


#: Variables Dial() empties as it starts, in the order Asterisk 22 publishes them (recording 07).
DIAL_RESULT_VARIABLES = ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
                         "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS")


@dataclass
class Pbx:
    generation: int = 0
    blocker: Callable[[str], None] | None = None
    wait_timer: Timer | None = None
    gosub_stack: list[tuple[str, str, int]] = field(default_factory=list)


class Softswitch(AttendedTransfers):
    def __init__(self, extensions: str, queues: str, *, scheduler: Scheduler | None = None,
                 seed: int = 1, system_name: str = "sas-emulator", filename: str = "extensions.conf",
                 features: Callable[[], str] | None = None) -> None:
        self.scheduler = scheduler or Scheduler()
        #: Reads features.conf as it is now (``module reload features`` calls it again).
        self.features_source = features or (lambda: "")
        self.featuremap = parse_featuremap(self.features_source())
        self.dialplan = dp.Dialplan.parse(extensions, filename)
        queue_models, general = parse_queues_conf(queues)
        self.queues = AppQueue(self, queue_models, general)
        self.system_name = system_name
        self.rng = random.Random(seed)
        self.listeners: list[Callable[[Event], None]] = []
        self.channels: dict[str, Channel] = {}
        self.astdb: dict[str, str] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.trunks: dict[str, TrunkLink] = {}
        self.globals = dict(self.dialplan.globals)
        #: Asterisk's monitor spool directory (astspooldir/monitor), where MixMonitor writes.
        self.monitor_dir: Path | None = None
        self.started = self.scheduler.now
        self.reloaded = self.scheduler.now
        self._uid = itertools.count(1)
        self._local = itertools.count(1)
        self._pjsip = itertools.count(1)
        self.processed_calls = 0
        #: Loaded modules (ModuleCheck): what the rendered files need; a test removes one to see
        #: the engine refuse to start.
        self.modules: set[str] = set(REQUIRED_MODULES)
        self.newexten_events = True
        #: Local pairs (by ;1 name) whose optimisation is scheduled, and core_local's attempt counter.
        self._optimising: set[str] = set()
        self._optimisations = 0
        #: PJSIP endpoint -> the context its calls arrive in (pjsip.conf ``context=``).
        self.endpoint_contexts: dict[str, str] = {}

    # --- plumbing -----------------------------------------------------------------------------

    def now(self) -> float:
        return self.scheduler.now

    def emit(self, name: str, fields: list[tuple[str, Any]], cls: str | None = None) -> None:
        if name == "Newexten" and not self.newexten_events:
            return
        privilege = f"{cls or EVENT_CLASS.get(name, 'call')},all"
        event = Event(name, privilege, fields)
        for listener in list(self.listeners):
            listener(event)

    def _uniqueid(self) -> str:
        return f"{int(self.started)}.{next(self._uid)}"

    def new_channel(self, name: str, tech: str, *, linkedid: str | None = None, state: int = 0,
                    context: str = "", exten: str = "", priority: int = 1, cid_num: str = "",
                    cid_name: str = "", emit: bool = True) -> Channel:
        uid = self._uniqueid()
        ch = Channel(name=name, uniqueid=uid, linkedid=linkedid or uid, tech=tech, created=self.now(),
                     state=state, context=context, exten=exten, priority=priority,
                     cid_num=cid_num, cid_name=cid_name)
        self.channels[name] = ch
        if emit:
            self.emit("Newchannel", ch.snapshot())
        return ch

    def find_channel(self, name: str) -> Channel | None:
        ch = self.channels.get(name)
        if ch is not None:
            return ch
        for candidate in self.channels.values():
            if candidate.uniqueid == name:
                return candidate
        return None

    def setvar(self, ch: Channel, name: str, value: str) -> None:
        """Set a channel variable; ``_``/``__`` prefixes mark inheritance, as Set() does."""
        base = name.lstrip("_")
        prefix = name[: len(name) - len(base)]
        if prefix:
            ch.inherit[base] = "__" if len(prefix) >= 2 else "_"
        ch.variables[base] = value
        self.emit("VarSet", [*ch.snapshot(), ("Variable", name), ("Value", value)], "dialplan")

    def set_durations(self, ch: Channel, durations: tuple[tuple[str, float], ...]) -> None:
        """Timer variables as Queue() and Dial() publish them: whole seconds, then ``_MS``."""
        for name, seconds in durations:
            self.setvar(ch, name, str(int(seconds)))
            self.setvar(ch, f"{name}_MS", str(int(seconds * 1000)))

    def inherit_to(self, parent: Channel, child: Channel) -> None:
        for name, level in parent.inherit.items():
            if name in parent.variables:
                child.variables[name] = parent.variables[name]
                if level == "__":
                    child.inherit[name] = "__"
                self.emit("VarSet", [*child.snapshot(), ("Variable", f"{level}{name}" if level == "__" else name),
                                     ("Value", parent.variables[name])], "dialplan")

    def device_of(self, name: str) -> str:
        """Device a channel belongs to: ``Local/1001@agents`` or ``PJSIP/1001``."""
        base = name.rsplit("-", 1)[0] if re.search(r"-[0-9a-f]{8}(;[12])?$", name) else name
        return base

    def device_state(self, device: str) -> int:
        device = device[:-2] if device.endswith("/n") else device
        if device.startswith("PJSIP/"):
            endpoint = self.endpoints.get(device[6:])
            if endpoint is not None and not endpoint.registered:
                return UNAVAILABLE
        states = [ch.state for ch in self.channels.values() if self.device_of(ch.name) == device and not ch.hungup]
        if not states:
            return NOT_INUSE
        if any(s == 6 for s in states):
            return INUSE
        if any(s == 5 for s in states):
            return RINGING
        return INUSE

    def _device_changed(self, ch: Channel) -> None:
        device = self.device_of(ch.name)
        state = self.device_state(device)
        text = {NOT_INUSE: "NOT_INUSE", INUSE: "INUSE", RINGING: "RINGING", UNAVAILABLE: "UNAVAILABLE"}[state]
        self.emit("DeviceStateChange", [("Device", device), ("State", text)])
        self.queues.device_changed(device)
        if device.startswith("Local/"):
            self.queues.device_changed(device + "/n")

    def set_state(self, ch: Channel, state: int) -> None:
        if ch.state == state:
            return
        ch.state = state
        if state == 6 and ch.answered_at is None:
            ch.answered_at = self.now()
        self.emit("Newstate", ch.snapshot())
        self._device_changed(ch)

    # --- variable and function lookup ---------------------------------------------------------

    def lookup(self, ch: Channel, expr: str) -> str:
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\((.*)\)(?::(-?\d+)(?::(-?\d+))?)?", expr, flags=re.S)
        if m:
            return self._function(ch, m.group(1), m.group(2))
        name, _, rest = expr.partition(":")
        value = self._variable(ch, name)
        if rest:
            parts = rest.split(":")
            offset = int(parts[0] or 0)
            value = value[offset:]
            if len(parts) > 1 and parts[1]:
                value = value[: int(parts[1])]
        return value

    def _variable(self, ch: Channel, name: str) -> str:
        special = {
            "EXTEN": lambda: ch.exten, "CONTEXT": lambda: ch.context, "PRIORITY": lambda: str(ch.priority),
            "CHANNEL": lambda: ch.name, "UNIQUEID": lambda: ch.uniqueid, "EPOCH": lambda: str(int(self.now())),
            "CALLERID(num)": lambda: ch.cid_num,
        }
        if name in ch.variables:
            return ch.variables[name]
        if name in special:
            return special[name]()
        return self.globals.get(name, "")

    def _function(self, ch: Channel, func: str, args_text: str) -> str:
        args = dp.split_args(args_text)
        if func == "CALLERID":
            what = args[0].lower()
            return {"num": ch.cid_num, "name": ch.cid_name, "all": f'"{ch.cid_name}" <{ch.cid_num}>',
                    "pres": "allowed" if ch.cid_pres < 32 else "prohib"}.get(what, "")
        if func == "DB":
            return self.astdb.get(args_text.strip("/"), "")
        if func == "DB_EXISTS":
            return "1" if args_text.strip("/") in self.astdb else "0"
        if func == "PJSIP_HEADER":
            if args[0] == "read" and len(args) > 1:
                wanted = args[1].lower()
                return next((v for k, v in ch.headers.items() if k.lower() == wanted), "")
            return ""
        if func == "CUT":
            return dp.cut(self._variable(ch, args[0]), args[1] if len(args) > 1 else "-",
                          args[2] if len(args) > 2 else "1")
        if func == "RAND":
            return dp.rand(args[0] if args else "", args[1] if len(args) > 1 else "", self.rng)
        if func == "IF":
            cond, _, choices = args_text.partition("?")
            yes, _, no = choices.partition(":")
            return yes if cond.strip() not in ("", "0") else no
        if func == "DIALPLAN_EXISTS":
            if len(args) == 1:
                return "1" if args[0] in self.dialplan.contexts else "0"
            return "1" if self.dialplan.exists(args[0], args[1], args[2] if len(args) > 2 else 1) else "0"
        if func == "LEN":
            return str(len(args_text))
        if func == "FILTER":
            allowed, _, text = args_text.partition(",")
            return dp.filter_chars(allowed, text)
        if func == "STRFTIME":
            epoch = float(args[0] or self.now()) if args else self.now()
            zone = ZoneInfo(args[1]) if len(args) > 1 and args[1] else UTC
            return datetime.fromtimestamp(epoch, zone).strftime(args[2] if len(args) > 2 else "%c")
        return ""

    def subst(self, ch: Channel, text: str) -> str:
        return dp.substitute(text, lambda expr: self.lookup(ch, expr))

    # --- dialplan execution -------------------------------------------------------------------

    def start_pbx(self, ch: Channel, context: str, exten: str, priority: int = 1) -> None:
        ch.context, ch.exten, ch.priority = context, exten, priority
        if ch.pbx is None:
            ch.pbx = Pbx()
        ch.pbx.generation += 1
        generation = ch.pbx.generation
        self.scheduler.call_soon(lambda: self._run(ch, generation))

    def resume_pbx(self, ch: Channel, *, next_priority: bool = True) -> None:
        """A blocking application finished: continue at the next priority."""
        if ch.pbx is None or ch.hungup:
            return
        ch.pbx.blocker = None
        if next_priority:
            ch.priority += 1
        generation = ch.pbx.generation
        self.scheduler.call_soon(lambda: self._run(ch, generation))

    def _run(self, ch: Channel, generation: int) -> None:
        """Execute priorities until an application blocks, the channel hangs up or is moved."""
        steps = 0
        while True:
            if ch.hungup or ch.pbx is None or ch.pbx.generation != generation:
                return
            ext = self.dialplan.find(ch.context, ch.exten)
            if ext is None:
                if self.dialplan.find(ch.context, "i") is not None and ch.exten != "i":
                    self.setvar(ch, "INVALID_EXTEN", ch.exten)
                    ch.exten, ch.priority = "i", 1
                    continue
                log.warning("no such extension, hanging up", channel=ch.name, context=ch.context, exten=ch.exten)
                self.request_hangup(ch, 1, soft=True)
                return
            step = ext.steps.get(ch.priority)
            if step is None:
                self.request_hangup(ch, 16, soft=True)
                return
            data = self.subst(ch, step.data)
            ch.app, ch.appdata = step.app, data
            self.publish_location(ch)
            outcome = getattr(self, f"app_{step.app.lower()}")(ch, data)
            if outcome == "block" or ch.hungup or ch.pbx is None or ch.pbx.generation != generation:
                return
            if outcome != "jumped":
                ch.priority += 1
            steps += 1
            if steps > 10_000:
                log.error("dialplan loop", channel=ch.name)
                self.request_hangup(ch, 16, soft=True)
                return

    def publish_location(self, ch: Channel) -> None:
        """Newexten for the channel's location, once per location (a Redirect publishes the new
        location with the application still running, so the first step there shows none)."""
        location = (ch.context, ch.exten, ch.priority)
        if location == ch.published_location:
            return
        ch.published_location = location
        self.emit("Newexten", [*ch.snapshot(), ("Extension", ch.exten), ("Application", ch.app),
                               ("AppData", ch.appdata)], "dialplan")

    def _run_hangup_handler(self, ch: Channel) -> None:
        """A channel whose PBX ends by hang-up runs the ``h`` extension of its context, if any."""
        ext = self.dialplan.find(ch.context, "h")
        if ext is None or ch.exten == "h":
            return
        ch.exten, ch.priority = "h", 1
        while (step := ext.steps.get(ch.priority)) is not None and ch.priority < 100:
            if step.app.lower() not in ("noop", "verbose", "set", "log"):
                break  # only side-effect-free steps make sense after the caller has gone
            ch.app, ch.appdata = step.app, self.subst(ch, step.data)
            self.publish_location(ch)
            getattr(self, f"app_{step.app.lower()}")(ch, ch.appdata)
            ch.priority += 1

    def goto(self, ch: Channel, target: str) -> None:
        parts = [p.strip() for p in dp.split_args(target)]
        if len(parts) == 1:
            context, exten, prio = ch.context, ch.exten, parts[0]
        elif len(parts) == 2:
            context, exten, prio = ch.context, parts[0], parts[1]
        else:
            context, exten, prio = parts[0], parts[1], parts[2]
        ch.context, ch.exten = context, exten
        if prio.isdigit():
            ch.priority = int(prio)
        else:
            ext = self.dialplan.find(context, exten)
            ch.priority = ext.labels.get(prio, 1) if ext else 1

    # --- applications -------------------------------------------------------------------------

    def app_noop(self, ch: Channel, data: str) -> str:
        return "next"

    app_verbose = app_noop
    app_progress = app_noop

    def app_ringing(self, ch: Channel, data: str) -> str:
        self.set_state(ch, 5)
        return "next"

    def app_answer(self, ch: Channel, data: str) -> str:
        if ch.state == 6:
            return "next"
        self.answer(ch)
        generation = ch.pbx.generation
        ch.pbx.wait_timer = self.scheduler.call_later(ANSWER_SETTLE, lambda: self._after_wait(ch, generation))
        return "block"

    def answer(self, ch: Channel) -> None:
        """The channel is up; a Local half brings its peer up; then whoever waits on either runs."""
        self.set_state(ch, 6)
        if ch.peer is not None and ch.peer.state != 6:
            self.set_state(ch.peer, 6)
        for callback in list(ch.on_answer):
            callback(ch)
        if ch.peer is not None:
            for callback in list(ch.peer.on_answer):
                callback(ch.peer)

    def _after_wait(self, ch: Channel, generation: int) -> None:
        if ch.pbx is not None and ch.pbx.generation == generation:
            self.resume_pbx(ch)

    def app_wait(self, ch: Channel, data: str) -> str:
        try:
            seconds = float(data or 0)
        except ValueError:
            seconds = 0
        generation = ch.pbx.generation
        ch.pbx.wait_timer = self.scheduler.call_later(seconds, lambda: self._after_wait(ch, generation))
        return "block"

    def app_musiconhold(self, ch: Channel, data: str) -> str:
        args = dp.split_args(data)
        seconds = float(args[1]) if len(args) > 1 and args[1] else 3600.0
        self.emit("MusicOnHoldStart", [*ch.snapshot(), ("Class", args[0] or "default")])
        generation = ch.pbx.generation

        def done() -> None:
            if ch.pbx is not None and ch.pbx.generation == generation:
                self.emit("MusicOnHoldStop", ch.snapshot())
                self.resume_pbx(ch)

        ch.pbx.wait_timer = self.scheduler.call_later(seconds, done)
        return "block"

    def app_playback(self, ch: Channel, data: str) -> str:
        return self.app_wait(ch, "1")

    def app_set(self, ch: Channel, data: str) -> str:
        name, _, value = data.partition("=")
        name = name.strip()
        fm = re.fullmatch(r"([A-Z_]+)\((.*)\)", name)
        if fm:
            func, args = fm.group(1), dp.split_args(fm.group(2))
            if func == "CALLERID":
                what = args[0].lower()
                before = (ch.cid_num, ch.cid_name)
                if what == "num":
                    ch.cid_num = value
                elif what == "name":
                    ch.cid_name = value
                elif what == "pres":
                    ch.cid_pres = PRES_NAMES.get(value.lower(), ch.cid_pres)
                else:
                    return "next"
                if what in ("num", "name") and (ch.cid_num, ch.cid_name) != before:
                    self.emit("NewCallerid", [*ch.snapshot(), ("CID-CallingPres", self._pres(ch))])
            elif func == "DB":
                self.astdb[fm.group(2).strip("/")] = value
            elif func == "PJSIP_HEADER" and args[0] == "add" and len(args) > 1:
                ch.headers[args[1]] = value
            return "next"
        self.setvar(ch, name, value)
        return "next"

    def _pres(self, ch: Channel) -> str:
        if not ch.cid_num and not ch.cid_name and ch.cid_pres == 0:
            return "67 (Number Unavailable)"  # neither number nor name: ast_party_id_presentation
        return f"{ch.cid_pres} ({PRES_TEXT.get(ch.cid_pres, 'Unknown')})"

    def app_goto(self, ch: Channel, data: str) -> str:
        self.goto(ch, data)
        return "jumped"

    def app_gotoif(self, ch: Channel, data: str) -> str:
        cond, _, labels = data.partition("?")
        yes, _, no = labels.partition(":")
        target = yes if cond.strip() not in ("", "0") else no
        if not target:
            return "next"
        self.goto(ch, target)
        return "jumped"

    def app_execif(self, ch: Channel, data: str) -> str:
        cond, _, apps = data.partition("?")
        yes, no = apps, ""
        # ExecIf(expr?app(args):app(args)) — split on the ':' outside parentheses.
        depth = 0
        for index, char in enumerate(apps):
            depth += char == "("
            depth -= char == ")"
            if char == ":" and depth == 0:
                yes, no = apps[:index], apps[index + 1 :]
                break
        chosen = yes if cond.strip() not in ("", "0") else no
        if not chosen:
            return "next"
        outcome = self._run_nested(ch, chosen)
        return "next" if outcome is None else outcome

    def _run_nested(self, ch: Channel, text: str) -> str | None:
        """Run ``App(args)`` given as an argument (ExecIf, TryExec); None: not an application."""
        m = re.fullmatch(r"([A-Za-z]+)(?:\((.*)\))?", text.strip(), flags=re.S)
        if not m or m.group(1) not in dp.APPLICATIONS:
            return None
        outcome: str = getattr(self, f"app_{m.group(1).lower()}")(ch, m.group(2) or "")
        return outcome

    def app_tryexec(self, ch: Channel, data: str) -> str:
        """TryExec(App(args)): runs it, and whatever happens the dialplan goes on (TRYSTATUS)."""
        outcome = self._run_nested(ch, data)
        self.setvar(ch, "TRYSTATUS", "NOAPP" if outcome is None else "FAILED" if outcome == "failed" else "SUCCESS")
        return "next"

    def app_mixmonitor(self, ch: Channel, data: str) -> str:
        """MixMonitor(file): record the channel, both directions mixed, until it goes. A relative
        file is under the monitor spool directory; the file is written when the channel goes (as
        Asterisk closes it then), MixMonitorStart and MixMonitorStop as Asterisk 22 sends them."""
        name = dp.split_args(data)[0] if data else ""
        if not name or self.monitor_dir is None or ch.recording is not None:
            return "failed"
        path = Path(name) if name.startswith("/") else self.monitor_dir / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:
            log.warning("MixMonitor cannot create its folder", channel=ch.name, file=str(path))
            return "failed"
        ch.recording = (path, self.now())
        self.setvar(ch, "MIXMONITOR_FILENAME", str(path))
        self.emit("MixMonitorStart", ch.snapshot())
        return "next"

    def _close_recording(self, ch: Channel) -> None:
        if ch.recording is None:
            return
        path, started = ch.recording
        ch.recording = None
        try:
            write_recording(path, self.now() - started, ch.tone_hz)
        except OSError as exc:  # a full disk: the call went on, the file is short or absent
            log.warning("MixMonitor could not write", channel=ch.name, file=str(path), error=str(exc))
        self.emit("MixMonitorStop", ch.snapshot())

    def app_hangup(self, ch: Channel, data: str) -> str:
        cause = int(data) if data.strip().isdigit() else 16
        self.request_hangup(ch, cause, soft=True)
        return "block"

    def app_return(self, ch: Channel, data: str) -> str:
        if ch.pbx and ch.pbx.gosub_stack:
            ch.context, ch.exten, ch.priority = ch.pbx.gosub_stack.pop()
            return "jumped"
        return "block"

    def app_queue(self, ch: Channel, data: str) -> str:
        args = dp.split_args(data)
        queue = args[0]
        timeout = int(args[4]) if len(args) > 4 and args[4].strip().isdigit() else None
        status = self.queues.join(ch, queue, timeout)
        if status is not None:
            self.setvar(ch, "QUEUESTATUS", status)
            return "next"
        ch.pbx.blocker = lambda reason: None
        return "block"

    def app_dial(self, ch: Channel, data: str) -> str:
        args = dp.split_args(data)
        targets = [t for t in args[0].split("&") if t]
        timeout = float(args[1]) if len(args) > 1 and args[1].strip() else None
        options = args[2] if len(args) > 2 else ""
        predial = re.search(r"b\(([^)]*)\)", options)
        # Dial() clears its result variables before it creates anything (recording 07).
        for name in DIAL_RESULT_VARIABLES:
            self.setvar(ch, name, "")
        legs: list[Channel] = []
        for target in targets:
            leg = self.create_outgoing(target, ch)
            if leg is None:
                continue
            if leg.tech == "Local":
                self._identify_local_dial_leg(ch, leg)
            legs.append(leg)
        if not legs:
            self.setvar(ch, "DIALSTATUS", "CHANUNAVAIL")
            return "next"
        state = DialState(ch, legs, None, started=self.now())
        for leg in legs:
            if predial:
                context, exten, prio = (predial.group(1).split("^") + ["s", "1"])[:3]
                self._run_predial(leg, context, exten, int(prio or 1))
            self.emit("DialBegin", [*ch.snapshot(), *leg.snapshot("Dest"), ("DialString", target_of(leg))])
            leg.owner_dial = state
            leg.on_answer.append(lambda leg, state=state: self._dial_answered(state, leg))
            leg.on_hangup.append(lambda leg, state=state: self._dial_leg_gone(state, leg))
            self.place_outgoing(leg)
        if timeout:
            state.timer = self.scheduler.call_later(timeout, lambda: self._dial_timeout(state))
        ch.pbx.blocker = lambda reason: self._dial_abort(state)
        return "block"

    def _identify_local_dial_leg(self, caller: Channel, one: Channel) -> None:
        """What Dial() writes on a Local pair it creates (recording 07): the dialled number, the
        inherited variables, and the caller ID: without the ``o`` option the called side shows
        the dialling extension with the caller's name, and the Local ;2 sees the mirror image."""
        two = one.peer
        assert two is not None
        self.setvar(one, "DIALEDPEERNUMBER", one.dialstring)
        self.inherit_to(caller, one)
        one.cid_num, one.cid_name = caller.exten, caller.cid_name
        one.conn_num, one.conn_name = caller.cid_num, caller.cid_name
        self.emit("Newexten", [*one.snapshot(), ("Extension", one.exten), ("Application", "AppDial"),
                               ("AppData", "(Outgoing Line)")], "dialplan")
        self.emit("NewCallerid", [*one.snapshot(), ("CID-CallingPres", self._pres(one))])
        self.emit("NewConnectedLine", one.snapshot())
        self.setvar(two, "DIALEDPEERNUMBER", one.dialstring)
        self.inherit_to(caller, two)
        two.cid_num, two.cid_name = one.conn_num, one.conn_name
        two.conn_num, two.conn_name = one.cid_num, one.cid_name
        self.emit("NewCallerid", [*two.snapshot(), ("CID-CallingPres", self._pres(two))])
        self.emit("NewConnectedLine", two.snapshot())

    def _run_predial(self, leg: Channel, context: str, exten: str, priority: int) -> None:
        """Pre-dial handler (Dial b() option): runs synchronously on the new channel."""
        saved = (leg.context, leg.exten, leg.priority)
        leg.context, leg.exten, leg.priority = context, exten, priority
        for _ in range(100):
            ext = self.dialplan.find(leg.context, leg.exten)
            step = ext.steps.get(leg.priority) if ext else None
            if step is None or step.app == "Return":
                break
            data = self.subst(leg, step.data)
            if step.app == "Set":
                self.app_set(leg, data)
            leg.priority += 1
        leg.context, leg.exten, leg.priority = saved

    def _dial_answered(self, state: DialState, leg: Channel) -> None:
        """The called side answered: Dial() records the result, opens its bridge with the called
        side in it, answers the caller (which, for a Local ;2, answers its ;1 and whatever waits
        on that, such as app_queue) and then joins it (recording 07 shows that order)."""
        if state.done:
            return
        state.done = True
        if state.timer:
            state.timer.cancel()
        caller = state.caller
        leg.exten = ""  # the called side has no dialplan location of its own once answered
        self.setvar(caller, "DIALSTATUS", "ANSWER")
        self.setvar(caller, "DIALEDPEERNAME", leg.name)
        self.setvar(caller, "DIALEDPEERNUMBER", leg.dialstring)
        self.emit("DialEnd", [*caller.snapshot(), *leg.snapshot("Dest"), ("DialStatus", "ANSWER")])
        self._end_legs(caller, [other for other in state.legs if other is not leg], "CANCEL", 16)
        state.answered_at = self.now()
        caller.dial = state
        caller.pbx.blocker = None
        bridge = Bridge()
        self.emit("BridgeCreate", bridge.snapshot())
        self.publish_location(leg)
        self._enter(bridge, leg)
        if caller.state != 6:
            self.answer(caller)
        self._enter(bridge, caller)
        self._bridged(bridge)

    def _dial_left_bridge(self, ch: Channel) -> None:
        """Dial()'s bridge ended for the caller: it records the call's timers and result."""
        state = ch.dial
        if state is None:
            return
        ch.dial = None
        now = self.now()
        self.set_durations(ch, (("ANSWEREDTIME", now - (state.answered_at or now)),
                                ("DIALEDTIME", now - state.started)))
        self.setvar(ch, "DIALSTATUS", "ANSWER")

    def _dial_leg_gone(self, state: DialState, leg: Channel) -> None:
        if state.done:
            return
        if leg in state.legs:
            state.legs.remove(leg)
        if not state.legs:
            state.done = True
            if state.timer:
                state.timer.cancel()
            cause = leg.hangup_cause
            status = {17: "BUSY", 21: "CONGESTION", 34: "CONGESTION", 1: "CHANUNAVAIL", 38: "CHANUNAVAIL"}.get(
                cause, "NOANSWER")
            self.emit("DialEnd", [*state.caller.snapshot(), *leg.snapshot("Dest"), ("DialStatus", status)])
            self.setvar(state.caller, "DIALSTATUS", status)
            self.resume_pbx(state.caller)

    def _end_legs(self, caller: Channel, legs: list[Channel], status: str, cause: int) -> None:
        """Dialled legs that lost (timeout, cancel, another leg answered): DialEnd, then hang up."""
        for leg in list(legs):
            self.emit("DialEnd", [*caller.snapshot(), *leg.snapshot("Dest"), ("DialStatus", status)])
            self.destroy(leg, cause)

    def _dial_timeout(self, state: DialState) -> None:
        if state.done:
            return
        state.done = True
        self._end_legs(state.caller, state.legs, "NOANSWER", 19)
        self.setvar(state.caller, "DIALSTATUS", "NOANSWER")
        self.resume_pbx(state.caller)

    def _dial_abort(self, state: DialState) -> None:
        if state.done:
            return
        state.done = True
        if state.timer:
            state.timer.cancel()
        self._end_legs(state.caller, state.legs, "CANCEL", 16)

    # --- outgoing channels --------------------------------------------------------------------

    def create_outgoing(self, target: str, parent: Channel | None, *, cid: tuple[str, str] | None = None,
                        app_label: str = "AppDial") -> Channel | None:
        """Create the channel for a dial string (``Local/x@ctx[/n]``, ``PJSIP/1001``, ``PJSIP/num@trunk``)."""
        linkedid = parent.linkedid if parent else None
        if target.startswith("Local/"):
            spec = target[6:]
            optimize = not spec.endswith("/n")
            spec = spec[:-2] if spec.endswith("/n") else spec
            exten, _, context = spec.partition("@")
            context = context or "default"
            suffix = f"{next(self._local):08x}"
            one = self.new_channel(f"Local/{exten}@{context}-{suffix};1", "Local", linkedid=linkedid,
                                   context=context, exten=exten)
            two = self.new_channel(f"Local/{exten}@{context}-{suffix};2", "Local", linkedid=linkedid or one.linkedid,
                                   state=4, context=context, exten=exten)
            one.peer, two.peer, one.half, two.half = two, one, 1, 2
            one.app, one.appdata = app_label, "(Outgoing Line)"
            one.dialstring = target[6:]
            one.local_optimize = two.local_optimize = optimize
            return one
        if target.startswith("PJSIP/"):
            spec = target[6:]
            number, _, trunk = spec.partition("@")
            if trunk:
                if trunk not in self.trunks and trunk not in self.endpoints:
                    return None
                name = f"PJSIP/{trunk}-{next(self._pjsip):08x}"
                ch = self.new_channel(name, "PJSIP", linkedid=linkedid, context="", exten=number)
                ch.variables["__trunk"] = trunk
                ch.variables["__dialed"] = number
            else:
                endpoint = self.endpoints.get(number)
                if endpoint is None:
                    return None
                name = f"PJSIP/{number}-{next(self._pjsip):08x}"
                ch = self.new_channel(name, "PJSIP", linkedid=linkedid, context="", exten=number)
            ch.app, ch.appdata = app_label, "(Outgoing Line)"
            ch.dialstring = spec
            if parent is not None:
                self.inherit_to(parent, ch)
                ch.conn_num, ch.conn_name = parent.cid_num, parent.cid_name
                ch.cid_num, ch.cid_name = number, ""
            return ch
        return None

    def place_outgoing(self, leg: Channel, local_one: list[tuple[str, Any]] | None = None) -> None:
        """Start ringing a created outgoing channel (Local ;2 runs its dialplan; PJSIP rings).

        ``local_one``: the ;1 snapshot as published before the dialler updated it."""
        if leg.tech == "Local" and leg.peer is not None:
            two = leg.peer
            one = [(k.replace("Dest", "LocalOne", 1), v) for k, v in local_one] if local_one else \
                leg.snapshot("LocalOne")
            self.emit("LocalBridge", [*one, *two.snapshot("LocalTwo"),
                                      ("Context", two.context), ("Exten", two.exten),
                                      ("LocalOptimization", "Yes" if two.local_optimize else "No")])
            self.start_pbx(two, two.context, two.exten, 1)
            return
        trunk = leg.variables.get("__trunk")
        if trunk:
            self._ring_trunk(leg, trunk)
            return
        endpoint = self.endpoints.get(leg.exten)
        if endpoint is None or not endpoint.registered:
            self.scheduler.call_soon(lambda: self.destroy(leg, 38))
            return
        self.set_state(leg, 5)
        endpoint.ringing.append(leg)
        if endpoint.answer_after is not None:
            self.scheduler.call_later(endpoint.answer_after, lambda: self.endpoint_answer(endpoint.name, leg))

    def endpoint_answer(self, endpoint_name: str, leg: Channel | None = None) -> bool:
        """The phone picks up (auto-answer timer, the load simulator or the control API)."""
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            return False
        candidates = [c for c in endpoint.ringing if not c.hungup and (leg is None or c is leg)]
        if not candidates:
            return False
        chosen = candidates[0]
        endpoint.ringing.remove(chosen)
        self.answer(chosen)
        if endpoint.talk_for is not None:
            self.scheduler.call_later(endpoint.talk_for, lambda: self.request_hangup(chosen, 16, soft=False))
        return True

    def _ring_trunk(self, leg: Channel, trunk: str) -> None:
        link = self.trunks.get(trunk)
        if link is None or not link.up:
            self.scheduler.call_soon(lambda: self.destroy(leg, 38))
            return
        if link.refuse:
            self.scheduler.call_soon(lambda: self.destroy(leg, 21))
            return
        remote = link.remote
        number = leg.variables.get("__dialed", leg.exten)
        headers = dict(leg.headers)
        inbound = remote.inbound_call(link.remote_endpoint, number, caller_num=leg.conn_num or "",
                                      caller_name=leg.conn_name or "", headers=headers)
        if inbound is None:
            self.scheduler.call_soon(lambda: self.destroy(leg, 1))
            return
        self.set_state(leg, 5)
        inbound.variables["__trunk_peer"] = f"{id(self)}"
        # Media and hang-up cross the trunk both ways.
        inbound.on_answer.append(lambda _ch: self.answer(leg) if not leg.hungup else None)
        inbound.on_hangup.append(lambda _ch: self.scheduler.call_soon(
            lambda: self.request_hangup(leg, 16, soft=False)) if not leg.hungup else None)
        leg.on_hangup.append(lambda _ch: remote.scheduler.call_soon(
            lambda: remote.request_hangup(inbound, 16, soft=False)) if not inbound.hungup else None)

    def inbound_call(self, endpoint: str, number: str, *, caller_num: str = "", caller_name: str = "",
                     withheld: bool = False, headers: dict[str, str] | None = None,
                     context: str | None = None) -> Channel | None:
        """A call arriving on a PJSIP endpoint (operator trunk or partner trunk)."""
        target_context = context or self.endpoint_contexts.get(endpoint, "sas-from-pstn")
        if self.dialplan.find(target_context, number) is None:
            return None
        name = f"PJSIP/{endpoint}-{next(self._pjsip):08x}"
        ch = self.new_channel(name, "PJSIP", state=4, context=target_context, exten=number,
                              cid_num=caller_num, cid_name=caller_name)
        ch.cid_pres = 33 if withheld else 0
        ch.headers = dict(headers or {})
        if caller_num or caller_name:
            self.emit("NewCallerid", [*ch.snapshot(), ("CID-CallingPres", self._pres(ch))])
        self.processed_calls += 1
        self.start_pbx(ch, target_context, number, 1)
        return ch

    # --- queues: ringing members --------------------------------------------------------------

    def ring_members(self, q: QueueModel, caller: QueueCaller, members: list[QueueMember]) -> Attempt:
        ch = caller.channel
        attempt = Attempt(q, caller, [])
        for member in members:
            leg = self.create_outgoing(member.interface, ch, app_label="AppQueue")
            if leg is None:
                continue
            caller.tried.add(member.interface)
            member.ringing = True
            leg.exten = member.interface.split("/", 1)[1].split("@")[0] if leg.tech == "Local" else leg.exten
            if leg.tech == "Local":
                # ring_entry: the member leg's caller ID is the queue caller's connected line or,
                # when that is unknown, its extension (recording 03d: "amu" for a transfer helper).
                leg.cid_num, leg.cid_name = (ch.conn_num, ch.conn_name) if ch.conn_num else (ch.exten, leg.cid_name)
                self.emit("Newexten", [*leg.snapshot(), ("Extension", leg.exten), ("Application", "AppQueue"),
                                       ("AppData", "(Outgoing Line)")], "dialplan")
                self.emit("NewCallerid", [*leg.snapshot(), ("CID-CallingPres", self._pres(leg))])
                self.inherit_to(ch, leg)
                dialed = member.interface[6:]
                self.setvar(leg, "DIALEDPEERNUMBER", dialed)
                two = leg.peer
                assert two is not None
                self.setvar(two, "DIALEDPEERNUMBER", dialed)
                self.inherit_to(ch, two)
                two.cid_num, two.cid_name = ch.cid_num, ch.cid_name
                two.conn_num, two.conn_name = leg.cid_num, leg.cid_name
                self.emit("NewCallerid", [*two.snapshot(), ("CID-CallingPres", self._pres(two))])
                self.emit("NewConnectedLine", two.snapshot())
            attempt.legs.append((member, leg))
            # ring_entry copies the caller's exten and identity onto the member leg before calling
            # it; AgentCalled's snapshot shows them, DialBegin's (published earlier) does not yet.
            before = leg.snapshot("Dest")
            if leg.tech == "Local":
                leg.exten = ch.exten
            leg.conn_num, leg.conn_name = ch.cid_num, ch.cid_name
            self.emit("AgentCalled", [*ch.snapshot(), *leg.snapshot("Dest"), ("Queue", q.name),
                                      ("Interface", member.interface), ("MemberName", member.name)])
            # app_queue publishes the member's whole interface as the dial string.
            self.emit("DialBegin", [*ch.snapshot(), *before, ("DialString", member.interface)])
            leg.on_answer.append(lambda leg, member=member: self._member_answered(attempt, member, leg))
            leg.on_hangup.append(lambda leg, member=member: self._member_gone(attempt, member, leg))
            self.place_outgoing(leg, local_one=before)
        if not attempt.legs:
            attempt.done = True
            self.scheduler.call_later(q.retry or 1, lambda: self.queues.ring_timeout(q, caller))
            return attempt
        attempt.timer = self.scheduler.call_later(q.timeout, lambda: self._attempt_timeout(attempt))
        return attempt

    def _member_answered(self, attempt: Attempt, member: QueueMember, leg: Channel) -> None:
        if attempt.done:
            return
        attempt.done = True
        if attempt.timer:
            attempt.timer.cancel()
        ch = attempt.caller.channel
        member.ringing = False
        if leg.tech == "Local":
            self.emit("Newexten", [*leg.snapshot(), ("Extension", leg.exten), ("Application", "AppQueue"),
                                   ("AppData", "(Outgoing Line)")], "dialplan")
            self.emit("NewConnectedLine", leg.snapshot())
        self.emit("DialEnd", [*ch.snapshot(), *leg.snapshot("Dest"), ("DialStatus", "ANSWER")])
        for other_member, other in attempt.legs:
            if other is not leg:
                other_member.ringing = False
                self.emit("DialEnd", [*ch.snapshot(), *other.snapshot("Dest"), ("DialStatus", "CANCEL")])
                self.destroy(other, 26)
        q = attempt.queue
        delay = q.memberdelay + (ANNOUNCE_SECONDS if q.announce else 0.0)
        attempt.answered = (member, leg)
        if delay <= 0:
            self._member_ready(attempt)
            return
        # try_calling: the member waits (memberdelay, then the announcement) before the caller is
        # connected; a member who hangs up meanwhile "dumps" the caller, who goes on waiting.
        timer = self.scheduler.call_later(delay, lambda: self._member_ready(attempt))
        leg.on_hangup.append(lambda _leg: self._member_dumped(attempt, timer))

    def _member_ready(self, attempt: Attempt) -> None:
        if attempt.answered is None:
            return
        member, leg = attempt.answered
        attempt.answered = None
        attempt.caller.attempt = None
        self.queues.connected(attempt.queue, attempt.caller, member, leg)

    def _member_dumped(self, attempt: Attempt, timer: Timer) -> None:
        if attempt.answered is None:
            return
        member, leg = attempt.answered
        attempt.answered = None
        timer.cancel()
        caller = attempt.caller
        self.emit("AgentDump", [*caller.channel.snapshot(), *leg.snapshot("Dest"), ("Queue", attempt.queue.name),
                                ("MemberName", member.name), ("Interface", member.interface)])
        self.queues.ring_timeout(attempt.queue, caller)

    def _member_gone(self, attempt: Attempt, member: QueueMember, leg: Channel) -> None:
        member.ringing = False
        if attempt.done:
            return
        attempt.legs = [(m, c) for m, c in attempt.legs if c is not leg]
        ch = attempt.caller.channel
        self.emit("DialEnd", [*ch.snapshot(), *leg.snapshot("Dest"), ("DialStatus", "BUSY")])
        if not attempt.legs:
            attempt.done = True
            if attempt.timer:
                attempt.timer.cancel()
            self.queues.ring_timeout(attempt.queue, attempt.caller)

    def _attempt_timeout(self, attempt: Attempt) -> None:
        if attempt.done:
            return
        attempt.done = True
        ch = attempt.caller.channel
        for member, leg in attempt.legs:
            member.ringing = False
            self.emit("AgentRingNoAnswer", [*ch.snapshot(), *leg.snapshot("Dest"), ("Queue", attempt.queue.name),
                                            ("Interface", member.interface), ("MemberName", member.name),
                                            ("RingTime", attempt.queue.timeout)])
            self.emit("DialEnd", [*ch.snapshot(), *leg.snapshot("Dest"), ("DialStatus", "NOANSWER")])
            self.destroy(leg, 19)
        self.queues.ring_timeout(attempt.queue, attempt.caller)

    def cancel_attempt(self, attempt: Any) -> None:
        if attempt.done:
            if attempt.answered is not None:  # the caller left while the member was being prepared
                _, leg = attempt.answered
                attempt.answered = None
                self.destroy(leg, 16)
            return
        attempt.done = True
        if attempt.timer:
            attempt.timer.cancel()
        for member, _ in attempt.legs:
            member.ringing = False
        self._end_legs(attempt.caller.channel, [leg for _, leg in attempt.legs], "CANCEL", 16)

    # --- bridges ------------------------------------------------------------------------------

    def bridge_pair(self, first: Channel, second: Channel) -> Bridge:
        bridge = Bridge()
        self.emit("BridgeCreate", bridge.snapshot())
        self._enter(bridge, first)
        self._enter(bridge, second)
        self._bridged(bridge)
        return bridge

    def _enter(self, bridge: Bridge, ch: Channel, *, swapping: Channel | None = None) -> None:
        bridge.channels.append(ch)
        ch.bridge = bridge
        if ch.features is None:
            ch.features = dict(self.featuremap)
        swap = [("SwapUniqueid", swapping.uniqueid)] if swapping is not None else []
        self.emit("BridgeEnter", [*bridge.snapshot(), *ch.snapshot(), *swap])
        if ch.variables.get("ATTENDEDTRANSFER"):
            self.setvar(ch, "ATTENDEDTRANSFER", "")

    def _bridged(self, bridge: Bridge) -> None:
        """Both parties are in: transfer markers cleared, BRIDGEPEER set on each (first entered first)."""
        first, second = bridge.channels[0], bridge.channels[1]
        for ch in (first, second):
            if ch.variables.get("BLINDTRANSFER"):
                self.setvar(ch, "BLINDTRANSFER", "")
        self._set_bridgepeers(first, second)
        self._consider_local_optimisation(bridge)

    def _set_bridgepeers(self, first: Channel, second: Channel) -> None:
        self.setvar(first, "BRIDGEPEER", second.name)
        self.setvar(second, "BRIDGEPEER", first.name)

    def _clear_bridgepeers(self, bridge: Bridge) -> None:
        # A two-party bridge losing a member clears BRIDGEPEER on both before the BridgeLeave.
        if len(bridge.channels) == 2:
            for member in bridge.channels:
                if member.variables.get("BRIDGEPEER"):
                    self.setvar(member, "BRIDGEPEER", "")

    def _detach(self, ch: Channel, bridge: Bridge) -> None:
        """Take one channel out of its bridge and report it (BridgeLeave shows the new count)."""
        bridge.channels.remove(ch)
        ch.bridge = None
        self.emit("BridgeLeave", [*bridge.snapshot(), *ch.snapshot()])

    def leave_bridge(self, ch: Channel, *, dissolve: bool = True) -> None:
        bridge = ch.bridge
        if bridge is None:
            return
        self._clear_bridgepeers(bridge)
        self._detach(ch, bridge)
        self._left_bridge(ch)
        if dissolve and len(bridge.channels) == 1:
            # A two-party basic bridge dissolves: the other party is hung up unless it has
            # dialplan to go back to (Queue() without 'c', Dial without 'g' do not continue).
            other = bridge.channels[0]
            self._detach(other, bridge)
            self.emit("BridgeDestroy", bridge.snapshot())
            if other.atxfer is not None and other.atxfer.consultation is bridge:
                pass  # the transfer target hung up: the transferer goes back to the transferee
            elif other.pbx is None or other.pbx.blocker is None or other.app in ("Queue", "Dial"):
                if other.pbx is not None and other.app in ("Queue", "Dial"):
                    # The application records the call's timers, then its PBX ends with a hang-up
                    # (recording 07: the agent hangs up, the caller follows).
                    self._left_bridge(other, hanging_up=True)
                    other.hangup_queued = True
                self.destroy(other, 16)
        elif not bridge.channels:
            self.emit("BridgeDestroy", bridge.snapshot())

    def _left_bridge(self, ch: Channel, *, hanging_up: bool = False) -> None:
        """The application that bridged this channel (Queue() or Dial()) sees its bridge end."""
        self.queues.caller_left_bridge(ch, hanging_up=hanging_up or ch.hungup)
        self._dial_left_bridge(ch)

    # --- Local channel optimisation -----------------------------------------------------------

    def _consider_local_optimisation(self, bridge: Bridge) -> None:
        """core_local optimises a Local pair away once both halves are bridged and a frame
        passes through it; the swap follows about 18 ms after the bridging (recording 07)."""
        for ch in bridge.channels:
            if ch.tech != "Local" or not ch.local_optimize or ch.peer is None:
                continue
            one = ch if ch.half == 1 else ch.peer
            if one.name in self._optimising:
                continue
            self._optimising.add(one.name)
            self.scheduler.call_later(LOCAL_OPTIMISATION_DELAY, lambda one=one: self._optimise_local(one))

    def _optimisable(self, one: Channel) -> tuple[Bridge, Bridge, Channel] | None:
        two = one.peer
        if two is None or one.hungup or two.hungup:
            return None
        near, far = one.bridge, two.bridge
        if near is None or far is None or near is far or len(near.channels) != 2 or len(far.channels) != 2:
            return None
        if not self._media_reaches(one):
            return None  # recordings 02-03d: Wait-only channels send no frames, nothing is optimised
        return near, far, next(c for c in far.channels if c is not two)

    def _media_reaches(self, start: Channel) -> bool:
        """A frame source is connected to this channel through bridges and Local pairs."""
        seen: set[str] = set()
        todo = [start]
        while todo:
            ch = todo.pop()
            if ch.name in seen or ch.hungup:
                continue
            seen.add(ch.name)
            if (ch.tech != "Local" and ch.state == 6) or (ch.pbx is not None and ch.app in MEDIA_APPLICATIONS):
                return True
            if ch.peer is not None:
                todo.append(ch.peer)
            if ch.bridge is not None:
                todo.extend(ch.bridge.channels)
        return False

    def _optimise_local(self, one: Channel) -> None:
        """Swap the channel beyond the pair's ;2 into the bridge of its ;1, then hang the pair up.

        Asterisk 22 publishes it this way (recording 07), ``Success: No`` included; app_queue
        follows the swap (SwapUniqueid), so AgentComplete names the new channel afterwards."""
        self._optimising.discard(one.name)
        found = self._optimisable(one)
        if found is None:
            return
        near, far, source = found
        two = one.peer
        assert two is not None
        self._optimisations += 1
        ident = self._optimisations
        self.emit("LocalOptimizationBegin", [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"),
                                             *source.snapshot("Source"), ("DestUniqueId", two.uniqueid),
                                             ("Id", ident)])
        self._detach(source, far)
        if one.variables.get("BRIDGEPEER"):
            self.setvar(one, "BRIDGEPEER", "")
        self._detach(one, near)
        self._enter(near, source, swapping=one)
        self._set_bridgepeers(next(c for c in near.channels if c is not source), source)
        if two.variables.get("BRIDGEPEER"):
            self.setvar(two, "BRIDGEPEER", "")
        self.queues.swapped(one, source)
        self.emit("LocalOptimizationEnd", [*one.snapshot("LocalOne"), *two.snapshot("LocalTwo"),
                                           ("Success", "No"), ("Id", ident)])
        self.emit("HangupRequest", [*two.snapshot(), ("Cause", 16)])
        two.hangup_queued = True
        self.destroy(one, 16)
        self.destroy(two, 16)

    # --- hang-up ------------------------------------------------------------------------------

    def request_hangup(self, ch: Channel, cause: int = 16, *, soft: bool = True) -> None:
        """A hangup request (AMI Hangup, Hangup(), a BYE): app_queue reacts to these."""
        if ch.hungup:
            return
        if ch.atxfer is not None:
            if ch.atxfer.home.channels:
                # The transferer hangs up during the consultation: that completes the transfer.
                self._atxfer_complete(ch.atxfer)
                return
            ch.atxfer.done, ch.atxfer = True, None  # the transferee has gone: a plain hang-up
        ch.hangup_cause = cause
        if soft and self.queues.find_caller(ch) is not None:
            # A waiting caller's Queue() notices the hangup and reports the abandon before the
            # SoftHangupRequest is published (scenario 05, second call).
            self.queues.abandon(ch)
        # A bridged channel running dialplan leaves its bridge first: its application records
        # the call's timers, then the request is published, and app_queue, reporting from its own
        # thread, finds the member leg already gone (recording 03d, first call).
        bridged = soft and ch.bridge is not None and ch.pbx is not None
        if bridged:
            ch.hangup_queued = True
        else:
            self.emit("SoftHangupRequest" if soft else "HangupRequest", [*ch.snapshot(), ("Cause", cause)])
            ch.hangup_queued = not soft
        if ch.peer is not None and not ch.peer.hungup:
            self.emit("HangupRequest", [*ch.peer.snapshot(), ("Cause", cause)])
            ch.peer.hangup_queued = True
            self.queues.hangup_requested(ch.peer)
        if not bridged:
            self.queues.hangup_requested(ch)
        peer = ch.peer
        self.destroy(ch, cause)
        if bridged:
            self.queues.hangup_requested(ch)
        if peer is not None and not peer.hungup:
            self.destroy(peer, cause)

    def destroy(self, ch: Channel, cause: int = 16) -> None:
        """The channel goes away: leaves its queue/bridge, its PBX stops, Hangup is emitted."""
        if ch.hungup:
            return
        ch.hungup = True
        ch.hangup_cause = cause
        if ch.pbx is not None:
            if ch.pbx.wait_timer:
                ch.pbx.wait_timer.cancel()
            blocker = ch.pbx.blocker
            ch.pbx.generation += 1
            ch.pbx.blocker = None
            if self.queues.find_caller(ch) is not None:
                self.queues.abandon(ch)
            if blocker is not None:
                blocker("hangup")
        for endpoint in self.endpoints.values():
            if ch in endpoint.ringing:
                endpoint.ringing.remove(ch)
        if ch.bridge is not None:
            self.leave_bridge(ch)
        if ch.pbx is not None and ch.app == "MusicOnHold":
            self.emit("MusicOnHoldStop", ch.snapshot())
        self._close_recording(ch)
        if ch.hangup_queued and ch.pbx is not None:
            self.emit("SoftHangupRequest", [*ch.snapshot(), ("Cause", cause)])
        if ch.pbx is not None and ch.app:
            self._run_hangup_handler(ch)
        pending, ch.pending_cid = ch.pending_cid, None
        pending = pending if pending is not None and pending != (ch.cid_num, ch.cid_name) else None
        if pending is not None:
            ch.cid_num, ch.cid_name = pending
        self.emit("Hangup", [*ch.snapshot(), ("Cause", cause),
                             ("Cause-txt", dp_cause_text(cause))])
        if pending is not None:
            self.emit("NewCallerid", [*ch.snapshot(), ("CID-CallingPres", self._pres(ch))])
        self.channels.pop(ch.name, None)
        for callback in list(ch.on_hangup):
            callback(ch)
        self._device_changed(ch)
        if ch.peer is not None and not ch.peer.hungup:
            self.scheduler.call_soon(lambda: self.request_hangup(ch.peer, cause, soft=False)
                                     if ch.peer and not ch.peer.hungup else None)

    # --- AMI-level operations -----------------------------------------------------------------

    def redirect(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        """Async goto: the channel leaves its bridge or queue and runs the new dialplan location."""
        if ch.bridge is not None and ch.variables.get("BRIDGEPEER"):
            self.setvar(ch, "BRIDGEPEER", "")

        def relocate() -> None:
            ch.context, ch.exten, ch.priority = context, exten, priority
            self.publish_location(ch)

        if ch.pbx is not None and ch.pbx.wait_timer:
            ch.pbx.wait_timer.cancel()
        if self.queues.find_caller(ch) is not None:
            self.queues.abandon(ch, relocate=relocate)
        else:
            relocate()
        if ch.bridge is not None:
            self.leave_bridge(ch)
        if ch.pbx is None:
            ch.pbx = Pbx()
        ch.pbx.blocker = None
        self.start_pbx(ch, context, exten, priority)

    def dual_redirect(self, first: Channel, second: Channel, where1: tuple[str, str, int],
                      where2: tuple[str, str, int]) -> None:
        """Redirect with ExtraChannel: both channels leave the bridge together and neither is
        hung up (scenario 03c); each then runs its own new location."""
        bridge = first.bridge
        for ch, where in ((second, where2), (first, where1)):
            if ch.bridge is not None and ch.variables.get("BRIDGEPEER"):
                self.setvar(ch, "BRIDGEPEER", "")
            ch.context, ch.exten, ch.priority = where
            self.publish_location(ch)
        if bridge is not None:
            for ch in (second, first):
                if ch.bridge is bridge:
                    self._detach(ch, bridge)
                    self._left_bridge(ch)
            if not bridge.channels:
                self.emit("BridgeDestroy", bridge.snapshot())
        for ch, where in ((first, where1), (second, where2)):
            self.redirect(ch, *where)

    def blind_transfer(self, transferer: Channel, context: str, exten: str) -> str:
        """AMI BlindTransfer of the bridged party: the other side goes to context,exten,1."""
        bridge = transferer.bridge
        if bridge is None or len(bridge.channels) < 2:
            self.emit("BlindTransfer", [("Result", "Invalid"), *transferer.snapshot("Transferer"),
                                        ("IsExternal", "Yes"), ("Context", context), ("Extension", exten)])
            return "Transfer invalid"
        transferee = next(c for c in bridge.channels if c is not transferer)
        # bridge_basic.c: the transferer is taken off hold, both sides learn BLINDTRANSFER, the
        # transferer's BRIDGEPEER is cleared, the event goes out, then the transferee moves.
        self.emit("Unhold", transferer.snapshot())
        self.setvar(transferer, "BLINDTRANSFER", transferee.name)
        self.setvar(transferee, "BLINDTRANSFER", transferer.name)
        self.setvar(transferer, "BRIDGEPEER", "")
        self.emit("BlindTransfer", [("Result", "Success"), *transferer.snapshot("Transferer"),
                                    *transferee.snapshot("Transferee"), *bridge.snapshot(),
                                    ("IsExternal", "Yes"), ("Context", context), ("Extension", exten)])
        self.setvar(transferee, "BRIDGEPEER", "")
        # app_queue reports AgentComplete from the transfer message, whose snapshot predates the move.
        before_move = transferee.snapshot()
        transferee.context, transferee.exten, transferee.priority = context, exten, 1
        self.publish_location(transferee)
        self.queues.transferred(transferer, before_move)
        self._detach(transferee, bridge)
        self._left_bridge(transferee)
        self._detach(transferer, bridge)
        self.emit("BridgeDestroy", bridge.snapshot())
        self.destroy(transferer, 16)
        if transferee.pbx is None:
            transferee.pbx = Pbx()
        transferee.pbx.blocker = None
        self.start_pbx(transferee, context, exten, 1)
        return ""

    def _set_connected(self, ch: Channel, num: str, name: str) -> None:
        """A connected-line update. On a Local half it becomes the other half's caller ID, which
        Asterisk 22 only publishes when that half hangs up (recording 03d)."""
        ch.conn_num, ch.conn_name = num, name
        self.emit("NewConnectedLine", ch.snapshot())
        if ch.tech == "Local" and ch.peer is not None and not ch.peer.hungup:
            ch.peer.pending_cid = (num, name)

    def desk_transfer(self, extension: str, number: str) -> str | None:
        """A desk phone transfers its caller by itself (SIP REFER): res_pjsip_refer makes it a blind
        transfer of the desk's bridged channel into its TRANSFER_CONTEXT (else the endpoint's
        context). Returns a problem text, or None once done."""
        desk = next((ch for ch in self.channels.values() if ch.tech == "PJSIP" and self.device_of(ch.name) ==
                     f"PJSIP/{extension}" and ch.bridge is not None and not ch.hungup), None)
        if desk is None:
            return f"desk {extension} has no call to transfer"
        context = desk.variables.get("TRANSFER_CONTEXT") or self.endpoint_contexts.get(extension) or "default"
        if self.dialplan.find(context, number) is None:
            # res_pjsip_refer answers 404 and the call stays as it was.
            return f"blind transfer target {number}@{context} does not exist"
        return self.blind_transfer(desk, context, number) or None

    def restart(self) -> None:
        """Fault injection, as Asterisk 22 restarts: every channel gets SoftHangupRequest Cause 4
        (shutdown) and is hung up with cause 0, ``Shutdown`` is sent, queues empty; AstDB
        survives, and with it the dynamic members (``persistentmembers = yes`` in the rendered
        queues.conf, stored under Queue/PersistentMembers)."""
        channels = list(self.channels.values())
        for ch in channels:
            self.emit("SoftHangupRequest", [*ch.snapshot(), ("Cause", 4)])
        for ch in channels:
            self.destroy(ch, 0)
        self.emit("Shutdown", [("Shutdown", "Cleanly"), ("Restart", "True")], "system")
        for q in self.queues.queues.values():
            q.callers.clear()
        self.queues.sessions.clear()
        self.started = self.reloaded = self.now()
        self.emit("FullyBooted", [("Uptime", 0), ("LastReload", 0), ("Status", "Fully Booted")], "system")


def target_of(leg: Channel) -> str:
    return leg.dialstring


def dp_cause_text(cause: int) -> str:
    return CAUSE_TEXT.get(cause, "Unknown")


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Dupont" <0612345678>`` or ``Dupont <0612345678>`` or ``0612345678`` -> (num, name)."""
    m = re.fullmatch(r'\s*"?([^"<]*?)"?\s*<([^>]*)>\s*', text)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    return text.strip(), ""


def originate(sw: Softswitch, channel: str, *, context: str = "", exten: str = "", priority: int = 1,
              application: str = "", data: str = "", callerid: str = "", timeout: float = 30.0,
              variables: dict[str, str] | None = None,
              on_result: Callable[[bool, Channel | None, int], None] | None = None) -> Channel | None:
    """AMI Originate: dial ``channel``; when it answers, run the dialplan location (or application)."""
    leg = sw.create_outgoing(channel, None, app_label="AppDial2")
    if leg is None:
        if on_result:
            on_result(False, None, 0)
        return None
    cid_num, cid_name = parse_callerid(callerid) if callerid else ("", "")
    if leg.tech == "Local":
        sw.emit("Newexten", [*leg.snapshot(), ("Extension", leg.exten), ("Application", "AppDial2"),
                             ("AppData", "(Outgoing Line)")], "dialplan")
    for name, value in (variables or {}).items():
        leg.variables[name.lstrip("_")] = value
        if name.startswith("_"):
            leg.inherit[name.lstrip("_")] = "__" if name.startswith("__") else "_"
    if callerid:
        leg.cid_num, leg.cid_name = cid_num, cid_name
        sw.emit("NewCallerid", [*leg.snapshot(), ("CID-CallingPres", sw._pres(leg))])
        leg.conn_num, leg.conn_name = cid_num, cid_name
        sw.emit("NewConnectedLine", leg.snapshot())
        if leg.peer is not None:
            two = leg.peer
            two.cid_num, two.cid_name, two.conn_num, two.conn_name = cid_num, cid_name, cid_num, cid_name
            sw.emit("NewCallerid", [*two.snapshot(), ("CID-CallingPres", sw._pres(two))])
            sw.emit("NewConnectedLine", two.snapshot())
    if leg.peer is not None:
        for name, value in leg.variables.items():
            leg.peer.variables.setdefault(name, value)
    finished = {"done": False}

    def answered(ch: Channel) -> None:
        if finished["done"]:
            return
        finished["done"] = True
        sw.emit("DialEnd", [*leg.snapshot("Dest"), ("DialStatus", "ANSWER")])
        sw.processed_calls += 1
        if on_result:
            on_result(True, leg, 4)
        if application:
            leg.pbx = Pbx()
            leg.context, leg.exten, leg.priority = "", "s", 1
            getattr(sw, f"app_{application.lower()}", sw.app_noop)(leg, data)
        else:
            sw.start_pbx(leg, context, exten, priority)

    def failed(ch: Channel) -> None:
        if finished["done"]:
            return
        finished["done"] = True
        sw.emit("DialEnd", [*leg.snapshot("Dest"), ("DialStatus", "NOANSWER")])
        if on_result:
            on_result(False, leg, 3 if ch.hangup_cause in (19, 16) else 1)

    leg.on_answer.append(answered)
    leg.on_hangup.append(failed)
    sw.place_outgoing(leg)
    sw.emit("DialBegin", [*leg.snapshot("Dest"), ("DialString", target_of(leg))])
    sw.scheduler.call_later(timeout, lambda: None if finished["done"] else sw.destroy(leg, 19))
    return leg


def write_recording(path: Path, seconds: float, tone_hz: float = 0.0, rate: int = 8000) -> None:
    """What MixMonitor leaves: an 8 kHz 16-bit mono WAV as long as the recording, silent or
    carrying the far end's tone (so a test can check the caller is in it)."""
    import math
    import struct
    import wave

    frames = max(0, int(seconds * rate))
    if not tone_hz:
        # Silence is zeros: the header, then a sparse extension, so a simulated day of thousands
        # of recorded calls costs no disk (a valid WAV all the same).
        data = frames * 2
        header = (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate,
                                                                                     rate * 2, 2, 16)
                  + b"data" + struct.pack("<I", data))
        with path.open("wb") as out:
            out.write(header)
            out.truncate(len(header) + data)
        return
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        step = 2 * math.pi * tone_hz / rate
        chunk = 8000
        for first in range(0, frames, chunk):
            count = min(chunk, frames - first)
            out.writeframes(struct.pack(f"<{count}h", *(int(8000 * math.sin(step * (first + i)))
                                                        for i in range(count))))
