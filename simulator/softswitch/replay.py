"""Replay a real-Asterisk AMI recording against the emulator and put both streams side by side.

The conformance test and the ``sas-router softswitch-conformance`` report both use this. The
recording's client actions are sent at their recorded instants on a virtual clock; channel
names inside actions (``Channel``, ``ExtraChannel``, ``Caller``) are translated from the
recording's names to the emulator's through their normalised form, so a Redirect of "the caller
created second" reaches the emulator's second caller.

Normalisation (documented in the README's conformance section): channel name suffixes
(``-00000032``) and Uniqueids/Linkedids become their order of first appearance; times,
counters, session ids, bridge ids and versions are not compared (see ``VOLATILE``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sas_router.simulator.softswitch.ami_codec import Message
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.server import AmiServer, Session, User
from sas_router.simulator.transcripts import Frame

_CHANNEL_SUFFIX = re.compile(r"-(?P<hex>[0-9a-f]{8})(?=;[12]\b)")
_UNIQUEID = re.compile(r"^\d{9,}\.\d+$|^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_CHANNEL_HEADERS = ("Channel", "ExtraChannel", "Caller")


@dataclass
class Normaliser:
    """Replaces per-run identifiers with their order of first appearance."""

    suffixes: dict[str, str] = field(default_factory=dict)
    uniqueids: dict[str, str] = field(default_factory=dict)

    def value(self, text: str) -> str:
        if _UNIQUEID.match(text):
            return self.uniqueids.setdefault(text, f"U{len(self.uniqueids) + 1}")
        return _CHANNEL_SUFFIX.sub(lambda m: "-" + self.suffixes.setdefault(m["hex"], f"L{len(self.suffixes) + 1}"),
                                   text)

    def reverse_channel(self, normalised: str) -> str:
        back = {v: k for k, v in self.suffixes.items()}
        return re.sub(r"-(L\d+)(?=;[12]\b)", lambda m: "-" + back.get(m[1], m[1]), normalised)


class _CaptureSession(Session):
    """An AMI session whose output is recorded with its virtual timestamp instead of sent."""

    def __init__(self, server: AmiServer, out: list[Frame]) -> None:
        super().__init__(server, None, None)
        self._out = out

    def send(self, pairs: list[tuple[str, object]]) -> None:
        if not self.closed:
            self._out.append(Frame(self.server.sw.now(), False, Message([(k, str(v)) for k, v in pairs])))


def preloaded_members(frames: Iterable[Frame]) -> list[tuple[str, str, str, int, bool, str]]:
    """Queue members that existed before the recording began: those the first QueueStatus
    listing each queue shows, if no QueueAdd/QueueRemove for that queue came before it."""
    members: list[tuple[str, str, str, int, bool, str]] = []
    settled: set[str] = set()
    listed: set[str] = set()
    listing: dict[str, str] = {}  # ActionID of a QueueStatus -> "" while its answer is read
    for frame in frames:
        m = frame.message
        action = m.get("Action").lower()
        if frame.sent and action in ("queueadd", "queueremove"):
            settled.add(m.get("Queue"))
        elif frame.sent and action == "queuestatus":
            listing[m.get("ActionID")] = ""
        elif frame.is_event and m.get("Event") == "QueueStatusComplete":
            listing.pop(m.get("ActionID"), None)
            settled.update(q for q in listed if q)
            listed.clear()
        elif frame.is_event and m.get("ActionID") in listing and m.get("Event") in ("QueueParams", "QueueMember"):
            queue = m.get("Queue")
            if queue in settled:
                continue
            listed.add(queue)
            if m.get("Event") == "QueueMember":
                members.append((queue, m.get("Location"), m.get("Name"), int(m.get("Penalty") or 0),
                                m.get("Paused") == "1", m.get("PausedReason")))
    return members


#: Configuration files the recording session wrote while it ran, by the action before which each
#: was in place: scenario 03d first tries Atxfer with Asterisk's default features.conf, then writes
#: ``atxfer => *2`` and reloads (tests/fixtures/transcripts/README.md, scenario 03d). Until then the
#: emulator, like the recorded switch, runs with the built-in defaults.
WRITTEN_DURING_RECORDING: dict[str, tuple[str, ...]] = {"03d-atxfer-15": ("features.conf",)}


@dataclass
class Replay:
    recorded: list[Frame]
    emulated: list[Frame]
    recorded_ids: Normaliser
    emulated_ids: Normaliser


def replay(frames: list[Frame], etc: Path, *, users: dict[str, User] | None = None) -> Replay:
    """Send the recording's actions to a fresh emulator loaded with the recording's configuration."""
    start = frames[0].at
    written: dict[str, str] = {}  # configuration files the recording session had written so far
    switch = Softswitch((etc / "extensions.conf").read_text(), (etc / "queues.conf").read_text(),
                        scheduler=Scheduler(start, virtual=True),
                        features=lambda: written.get("features.conf", ""))
    switch.started = start - 951  # the recorded Uptime is not compared, but keep it plausible
    for queue, interface, name, penalty, paused, reason in preloaded_members(frames):
        saved, switch.listeners = switch.listeners, []
        switch.queues.add_member(queue, interface, name, "", penalty, paused, reason)
        switch.listeners = saved
    server = AmiServer(switch, users or {"engine": User("engine-secret")})
    out: list[Frame] = []
    session = _CaptureSession(server, out)
    server.sessions.add(session)
    recorded_ids, emulated_ids = Normaliser(), Normaliser()
    recorded_out: list[Frame] = []

    numbered = 0

    def number_emulated_ids() -> None:
        # Ids are numbered in order of first appearance, on both sides, as frames come out.
        nonlocal numbered
        for frame in out[numbered:]:
            for _, v in frame.message.pairs:
                emulated_ids.value(v)
        numbered = len(out)

    for frame in frames:
        switch.scheduler.advance(max(0.0, frame.at - switch.scheduler.now))
        number_emulated_ids()
        if not frame.sent:
            recorded_out.append(frame)
            for _, v in frame.message.pairs:
                recorded_ids.value(v)
            continue
        for name in WRITTEN_DURING_RECORDING.get(frame.message.get("ActionID"), ()):
            written[name] = (etc / name).read_text()
        pairs = []
        for key, value in frame.message.pairs:
            if key in _CHANNEL_HEADERS and value:
                value = emulated_ids.reverse_channel(recorded_ids.value(value))
            pairs.append((key, value))
        server._handle(session, Message(pairs))
        switch.scheduler.run_due()
    switch.scheduler.advance(0.001)
    number_emulated_ids()
    return Replay(recorded_out, [f for f in out if f.at <= frames[-1].at + 0.001], recorded_ids, emulated_ids)


#: Fields that are times, durations, counters carried over from earlier runs, or per-process
#: identities: their presence is compared, their value is not.
VOLATILE = frozenset({
    "Uptime", "LastReload", "SessionID", "EventTV", "SessionTV", "LocalAddress", "RemoteAddress",
    "HoldTime", "Holdtime", "TalkTime", "RingTime", "Wait", "LastCall", "LastPause", "LoginTime",
    "CallsTaken", "Completed", "Abandoned", "ServicelevelPerf", "ServicelevelPerf2", "Duration",
    "DurationSeconds", "CoreStartupDate", "CoreStartupTime", "CoreReloadDate", "CoreReloadTime",
    "CoreCurrentCalls", "CoreProcessedCalls", "LongestHoldTime", "Timestamp", "SystemName",
})
#: Fields volatile in one event only. QueueMemberStatus comes from the device-state thread and
#: races AgentConnect: the same step shows InCall 0 in scenario 02 and 1 in scenario 03. After a
#: BlindTransfer the two BridgeLeave come in either order (03 vs 03b), so their count varies.
#: The Id of a Local optimisation is core_local's attempt counter since the process started.
VOLATILE_IN = frozenset({("QueueMemberStatus", "InCall"), ("BridgeLeave", "BridgeNumChannels"),
                         ("LocalOptimizationBegin", "Id"), ("LocalOptimizationEnd", "Id")})
#: Dialplan variables whose value is a duration.
TIMED_VARIABLES = frozenset({"ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS",
                             "QUEUEWAIT", "QUEUEWAIT_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME",
                             "PROGRESSTIME_MS"})
#: Queue and agent milestones whose relative order across channels the engine relies on.
MILESTONES = frozenset({"QueueCallerJoin", "QueueCallerAbandon", "QueueCallerLeave", "AgentCalled",
                        "AgentRingNoAnswer", "AgentConnect", "AgentComplete", "AgentDump",
                        "BlindTransfer", "AttendedTransfer", "OriginateResponse"})

#: Events app_queue publishes from its stasis subscription, not from the caller's thread: their
#: place among the caller's own events is a race (AgentComplete of a transfer comes before the
#: BridgeLeave in 03, after the agent's hang-up in 03b), so they are ordered per queue instead.
QUEUE_THREAD = frozenset({"AgentComplete"})

Projected = tuple[str, tuple[tuple[str, str], ...]]


def project(message: Message, ids: Normaliser) -> Projected:
    """The comparable content of a frame: ids by order of appearance, volatile values blanked."""
    name = message.get("Event") or f"Response:{message.get('Response')}"
    variable = message.get("Variable")
    # A transfer's AgentComplete races the agent's hang-up: Dest* present in 03, absent in 03b.
    racy_dest = name == "AgentComplete" and message.get("Reason") == "transfer"
    fields = []
    for key, value in message.pairs:
        if key in ("Event", "Response") or (racy_dest and key.startswith("Dest")):
            continue
        if key in VOLATILE or (name, key) in VOLATILE_IN or (key == "Value" and variable in TIMED_VARIABLES and value):
            value = "*"
        elif key == "Output":
            # CLI text: the build line names the build host; counters and ages vary per run.
            value = re.sub(r"\d+", "#", value.split(" built by ")[0])
        fields.append((key, ids.value(value)))
    return name, tuple(fields)


def _groups(frames: list[Frame], ids: Normaliser) -> dict[str, list[Projected]]:
    groups: dict[str, list[Projected]] = {}
    for frame in frames:
        m = frame.message
        item = project(m, ids)
        if m.has("Response") or m.get("ActionID"):
            key = f"action {m.get('ActionID')}"
        elif m.get("Channel") and item[0] not in QUEUE_THREAD:
            key = f"channel {ids.value(m.get('Channel'))}"
        elif item[0] in QUEUE_THREAD:
            key = f"queue {m.get('Queue')}"
        elif m.get("Interface"):
            key = f"member {m.get('Queue')} {m.get('Interface')}"
        elif m.get("BridgeUniqueid"):
            key = f"bridge {ids.value(m.get('BridgeUniqueid'))}"
        elif m.get("Device"):
            key = f"device {m.get('Device')}"
        else:
            key = "other"
        groups.setdefault(key, []).append(item)
        if item[0] in MILESTONES:
            groups.setdefault("milestones", []).append(item)
    return groups


def _unordered_list_items(items: list[Projected]) -> list[Projected]:
    # Unfiltered QueueStatus/QueueSummary list queues in Asterisk's hash order: compare as a set.
    if len(items) > 2:
        return [items[0], *sorted(items[1:-1]), items[-1]]
    return items


#: Events left out of the comparison by default (see the README): Asterisk's device-state thread
#: caches and coalesces DeviceStateChange, so its count and timing are not reproducible even
#: between two runs of the real thing, and the engine does not consume it.
NOT_COMPARED = frozenset({"DeviceStateChange"})


def compare(result: Replay, *, ignore: frozenset[str] = NOT_COMPARED) -> list[str]:
    """Every difference between the recorded and the emulated stream, as readable lines.

    Streams are compared per channel, per queue member, per bridge, per action and for the
    queue milestones overall: Asterisk emits from several threads, so only those orders are
    causal; interleavings across channels are not (the README documents this).
    """
    def keep(frames: list[Frame]) -> list[Frame]:
        return [f for f in frames if f.message.get("Event") not in ignore]

    recorded = _groups(keep(result.recorded), result.recorded_ids)
    emulated = _groups(keep(result.emulated), result.emulated_ids)
    problems: list[str] = []
    for key in sorted(set(recorded) | set(emulated)):
        want, got = recorded.get(key, []), emulated.get(key, [])
        if key.startswith("action "):
            want, got = _unordered_list_items(want), _unordered_list_items(got)
        if want == got:
            continue
        problems.append(f"== {key}")
        problems.extend(_diff(want, got))
    return problems


def _diff(want: list[Projected], got: list[Projected]) -> list[str]:
    """Event names aligned; for an event present on both sides, only the fields that differ."""
    import difflib

    lines: list[str] = []
    matcher = difflib.SequenceMatcher(a=[w[0] for w in want], b=[g[0] for g in got], autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            for w, g in zip(want[a0:a1], got[b0:b1], strict=True):
                if w != g:
                    wd, gd = dict(w[1]), dict(g[1])
                    keys = [k for k in dict.fromkeys([*wd, *gd]) if wd.get(k) != gd.get(k)]
                    order = "" if [k for k, _ in w[1]] == [k for k, _ in g[1]] else " (field order differs)"
                    lines.append(f"~ {w[0]}{order}: " + ", ".join(
                        f"{k}: recorded={wd.get(k, '<absent>')!r} emulated={gd.get(k, '<absent>')!r}" for k in keys))
            continue
        lines.extend(f"- {w[0]} {_brief(w)}" for w in want[a0:a1])
        lines.extend(f"+ {g[0]} {_brief(g)}" for g in got[b0:b1])
    return lines


def _brief(item: Projected) -> str:
    keep = ("Channel", "Queue", "Variable", "Value", "Cause", "Reason", "Context", "Exten", "DestChannel", "Message",
            "Device", "State", "Status", "Application")
    return " ".join(f"{k}={v}" for k, v in item[1] if k in keep)
