"""Channels, bridges and the AMI events that describe them, shaped as Asterisk 22 shapes them.

Field names and their order are taken from recordings of a real Asterisk 22.10.1 kept in
``tests/fixtures/transcripts`` (every channel event carries the same 14-field snapshot, optionally
prefixed: ``Dest``, ``LocalOne``, ``Transferee`` ...).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATE_DESC = {0: "Down", 4: "Ring", 5: "Ringing", 6: "Up"}
CAUSE_TEXT = {
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    1: "Unallocated (unassigned) number",
    0: "Unknown",
}
PRES_TEXT = {0: "Presentation Allowed, Not Screened", 1: "Presentation Allowed, Passed Screen",
             32: "Presentation Prohibited, Not Screened", 33: "Presentation Prohibited, Passed Screen"}
PRES_NAMES = {"allowed_not_screened": 0, "allowed_passed_screen": 1, "allowed": 0,
              "prohib_not_screened": 32, "prohib_passed_screen": 33, "prohib": 32}

Fields = list[tuple[str, Any]]


def cid(value: str) -> str:
    return value if value else "<unknown>"


@dataclass
class Channel:
    name: str
    uniqueid: str
    linkedid: str
    tech: str
    created: float
    state: int = 0
    cid_num: str = ""
    cid_name: str = ""
    cid_pres: int = 0
    conn_num: str = ""
    conn_name: str = ""
    language: str = "en"
    accountcode: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 1
    app: str = ""
    appdata: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    #: name -> "_" or "__": variables inherited by channels this one creates.
    inherit: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    bridge: Bridge | None = None
    #: For Local channels: the other half of the pair.
    peer: Channel | None = None
    half: int = 0
    #: Local pair dialled without ``/n``: core_local may optimise it away once both halves are
    #: bridged and media flows (recording 07).
    local_optimize: bool = False
    #: The answered Dial() this channel runs (its end sets ANSWEREDTIME, DIALSTATUS ...).
    dial: Any = None
    #: features.conf featuremap as this channel first read it (when it was first bridged): a
    #: later ``module reload features`` does not change it (recording 03d).
    features: dict[str, str] | None = None
    #: The attended transfer this channel is running as transferer.
    atxfer: Any = None
    #: Caller ID set by the Local peer's connected-line update, published at hang-up (03d).
    pending_cid: tuple[str, str] | None = None
    #: Set while the channel executes dialplan; cleared when its PBX ends.
    pbx: Any = None
    #: MixMonitor running on this channel: (file, started at); written when the channel goes.
    recording: tuple[Path, float] | None = None
    #: What this channel's far end "says" (a test caller sending a tone): its frequency in Hz.
    tone_hz: float = 0.0
    hungup: bool = False
    hangup_cause: int = 16
    answered_at: float | None = None
    #: Called when this channel is hung up (owners: queue dial attempts, Dial(), endpoints).
    on_hangup: list[Callable[[Channel], None]] = field(default_factory=list)
    #: Called when this outgoing channel answers.
    on_answer: list[Callable[[Channel], None]] = field(default_factory=list)
    endpoint: Any = None
    owner_dial: Any = None
    #: What was dialled, after the technology (``15@from-pstn``, ``6938@sas-38``): DialBegin's DialString.
    dialstring: str = ""
    #: A hangup was queued on this channel (HangupRequest): its PBX reports SoftHangupRequest at exit.
    hangup_queued: bool = False
    #: The dialplan location last published in a Newexten: Asterisk only emits Newexten when the
    #: context/exten/priority of the snapshot changes, not for every application.
    published_location: tuple[str, str, int] | None = None

    def snapshot(self, prefix: str = "") -> Fields:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", self.state),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", cid(self.cid_num)),
            (f"{prefix}CallerIDName", cid(self.cid_name)),
            (f"{prefix}ConnectedLineNum", cid(self.conn_num)),
            (f"{prefix}ConnectedLineName", cid(self.conn_name)),
            (f"{prefix}Language", self.language),
            (f"{prefix}AccountCode", self.accountcode),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", self.priority),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]

    def getvar(self, name: str) -> str | None:
        return self.variables.get(name)


@dataclass
class Bridge:
    uniqueid: str = field(default_factory=lambda: str(uuid.uuid4()))
    type: str = "basic"
    technology: str = "simple_bridge"
    creator: str = "<unknown>"
    name: str = "<unknown>"
    channels: list[Channel] = field(default_factory=list)

    def snapshot(self, prefix: str = "Bridge") -> Fields:
        return [
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Type", self.type),
            (f"{prefix}Technology", self.technology),
            (f"{prefix}Creator", self.creator),
            (f"{prefix}Name", self.name),
            (f"{prefix}NumChannels", len(self.channels)),
            (f"{prefix}VideoSourceMode", "none"),
        ]


@dataclass
class Event:
    name: str
    privilege: str
    fields: Fields

    def pairs(self) -> Fields:
        return [("Event", self.name), ("Privilege", self.privilege), *self.fields]

    def get(self, key: str, default: str = "") -> str:
        for k, v in self.fields:
            if k == key:
                return str(v)
        return default


#: AMI class of each event (what ``Privilege:`` says and what read= permissions filter on).
EVENT_CLASS = {
    "VarSet": "dialplan", "Newexten": "dialplan",
    "QueueCallerJoin": "agent", "QueueCallerLeave": "agent", "QueueCallerAbandon": "agent",
    "AgentCalled": "agent", "AgentConnect": "agent", "AgentComplete": "agent", "AgentDump": "agent",
    "AgentRingNoAnswer": "agent", "QueueMemberAdded": "agent", "QueueMemberRemoved": "agent",
    "QueueMemberPause": "agent", "QueueMemberStatus": "agent", "QueueMemberPenalty": "agent",
    "QueueMemberRinginuse": "agent",
    "FullyBooted": "system", "Reload": "system", "Shutdown": "system",
    "UserEvent": "user", "DeviceStateChange": "call",
    "DTMFBegin": "dtmf", "DTMFEnd": "dtmf",
}
