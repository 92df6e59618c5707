"""The site plan: what one SAS switchboard looks like, as the admin wrote it in ``dialplans/``.

Each section entry is validated on its own (see :mod:`engine.plan.loader`) so that one bad queue
does not hide the errors in the lines below it. Cross-references (a line naming a queue, an
overflow naming a partner) are checked afterwards on the entries that parsed.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,38}$"
#: Dialled numbers and trunk extensions: digits, optionally a leading +; Asterisk extension-safe.
NUMBER_PATTERN = r"^\+?[0-9]{2,20}$"
SIP_HEADER_PATTERN = r"^[A-Za-z][A-Za-z0-9-]{0,63}$"
#: Names and labels an admin writes in French: any printable text on one line. They reach the
#: rendered files only through the renderer's ASCII filter (comments and NoOp), but a control
#: character or a line break is refused here too, so a label never even looks like structure.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]{1,80}$"
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
#: Static queue members: a desk phone (checked against the declared desks) or a remote regulator
#: reached through the rendered remote-agent context; no other context may be named.
MEMBER_PATTERN = r"^(PJSIP/[0-9]{2,8}|Local/\+?[0-9]{2,20}@sas-remote-agent/n)$"


class Role(StrEnum):
    """What a queue is for; the engine's qualification and supervision logic key on it."""

    N1 = "n1"
    N2_AMU = "n2-amu"
    N2_MG = "n2-mg"
    PDSA = "pdsa"
    SPECIALIST = "specialist"


class Strategy(StrEnum):
    RINGALL = "ringall"
    RRMEMORY = "rrmemory"
    LEASTRECENT = "leastrecent"
    FEWESTCALLS = "fewestcalls"
    LINEAR = "linear"
    RANDOM = "random"


class LineKind(StrEnum):
    """Where a call comes from; 15 is an emergency line with unmasking duties."""

    EMERGENCY = "emergency"
    CARE = "care"
    LOCAL = "local"
    SIS = "sis"
    ATSU = "atsu"
    PARTNER = "partner"


#: Non-urgent lines: their callers, even coming back to the front, wait behind emergencies.
CARE_KINDS = frozenset({LineKind.CARE, LineKind.LOCAL})
#: Lines whose callers are emergencies by nature (the 15 and the rescue partners' direct lines).
EMERGENCY_KINDS = frozenset({LineKind.EMERGENCY, LineKind.SIS, LineKind.ATSU})


class Priority(StrEnum):
    P0 = "P0"
    P1 = "P1"
    P2 = "P2"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


Seconds = Annotated[int, Field(ge=1, le=86_400)]
QueuePriority = Annotated[int, Field(ge=0, le=90)]


def parse_clock(value: str, *, allow_24: bool = False) -> time | None:
    """Parse ``HH:MM``; ``24:00`` (end of day) is accepted only where it makes sense."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value.strip())
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if allow_24 and hours == 24 and minutes == 0:
        return time.max
    if hours > 23 or minutes > 59:
        return None
    return time(hours, minutes)


def minutes_of(clock: time) -> int:
    """Minutes since midnight, with ``time.max`` standing for 24:00."""
    return 24 * 60 if clock == time.max else clock.hour * 60 + clock.minute


class SiteSpec(_Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    name: Text
    departements: Annotated[list[Annotated[str, Field(pattern=r"^(\d{2,3}|2A|2B)$")]], Field(min_length=1)]
    timezone: str = "Europe/Paris"
    holidays: str = "FR"
    qs30_target: Annotated[float, Field(ge=0, le=1)] = 0.90
    repeat_caller_window: Seconds = 900
    short_abandon: Annotated[int, Field(ge=0, le=60)] = 5


class Fallback(_Strict):
    """Where a caller goes when nobody answered within ``after`` seconds: never a hang-up."""

    after: Annotated[int, Field(ge=10, le=3600)]
    queue: str | None = None


class OverflowWhen(_Strict):
    longest_wait_over: Seconds | None = None
    callers_waiting_over: Annotated[int, Field(ge=0, le=1000)] | None = None
    no_agent_logged_in: bool = False
    all_agents_busy_for: Seconds | None = None


class OverflowRule(_Strict):
    partners: Annotated[list[Annotated[str, Field(pattern=ID_PATTERN)]], Field(min_length=1)]
    when: OverflowWhen
    #: Seconds a rule must stay clear before it may fire again, so calls do not bounce.
    hysteresis: Annotated[int, Field(ge=0, le=3600)] = 30
    enabled: bool = True


class QueueSpec(_Strict):
    role: Role
    label: Text = ""
    specialty: Text | None = None
    strategy: Strategy = Strategy.RRMEMORY
    ring_timeout: Annotated[int, Field(ge=1, le=300)] = 15
    retry: Annotated[int, Field(ge=0, le=60)] = 1
    wrapup: Annotated[int, Field(ge=0, le=600)] = 0
    service_level: Annotated[int, Field(ge=1, le=600)] = 30
    weight: Annotated[int, Field(ge=0, le=100)] = 0
    music: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")] = "default"
    members: list[Annotated[str, Field(pattern=MEMBER_PATTERN)]] = []
    fallback: Fallback | None = None
    overflow: OverflowRule | None = None
    #: Digits a desk keys to transfer a caller to this queue from its phone (REFER or '#').
    transfer_code: Annotated[str, Field(pattern=r"^[0-9]{1,8}$")] | None = None
    #: Seconds a caller may wait here before the room's long-wait alarm (default: by role, see
    #: :class:`AlarmPolicy`).
    long_wait_alarm: Seconds | None = None


#: How long a caller may wait in a queue of each role before the long-wait alarm, unless the plan
#: says otherwise: an emergency (N1, AMU) is a minute; a GP or PDSA call, a few.
DEFAULT_LONG_WAIT = {Role.N1: 60, Role.N2_AMU: 60, Role.N2_MG: 180, Role.PDSA: 300, Role.SPECIALIST: 300}


class AlarmPolicy(_Strict):
    """When the room's alarms fire: the plan's ``alarms`` section (every key optional)."""

    #: Long-wait alarm per queue role, in seconds (a queue's own ``long_wait_alarm`` wins).
    long_wait: dict[Role, Seconds] = {}
    #: Abandoned calls over calls offered (net of short abandons) in the last 15 minutes ...
    abandon_rate: Annotated[float, Field(gt=0, le=1)] = 0.15
    #: ... once at least this many calls were offered (a single abandon at 3 a.m. is not a rate).
    abandon_min_offered: Annotated[int, Field(ge=1, le=10_000)] = 10
    #: Seconds a condition must stay clear before its alarm clears (so it does not flicker).
    clear_after: Annotated[int, Field(ge=0, le=3600)] = 30
    #: Failed switch-over dials to a partner within 5 minutes that mean the switch-over is failing.
    switchover_failures: Annotated[int, Field(ge=1, le=1000)] = 1

    def long_wait_for(self, queue: QueueSpec) -> int:
        if queue.long_wait_alarm is not None:
            return queue.long_wait_alarm
        return self.long_wait.get(queue.role, DEFAULT_LONG_WAIT[queue.role])


class RecordingSpec(_Strict):
    """The recorder (l'enregistreur): which lines' calls Asterisk records, how, and for how long
    the recordings are kept. Every line by default."""

    enabled: bool = True
    #: Lines whose calls are recorded; absent: all of them.
    lines: list[Annotated[str, Field(pattern=ID_PATTERN)]] | None = None
    #: wav (8 kHz 16-bit, ~1 MB a minute) or gsm (compressed, ~100 kB a minute).
    format: Literal["wav", "gsm"] = "wav"
    #: Folder under Asterisk's monitor spool directory (astspooldir/monitor), relative: the
    #: recordings are never in a web root, and the engine reads them through its own mount.
    directory: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}(/[a-z0-9][a-z0-9_-]{0,39}){0,3}$")] = "sas"
    #: Days a recording is kept, unless a supervisor put it under legal hold.
    retention_days: Annotated[int, Field(ge=1, le=36_500)] = 365
    #: API clients allowed to list and hear recordings besides supervisors (e.g. the medical lead).
    listeners: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,40}$")]] = []
    #: Free space under which the room is alarmed, in MB.
    disk_alarm_free_mb: Annotated[int, Field(ge=1, le=10_000_000)] = 2048

    def records(self, line: str) -> bool:
        return self.enabled and (self.lines is None or line in self.lines)


class LineSpec(_Strict):
    kind: LineKind
    label: Text = ""
    numbers: Annotated[list[Annotated[str, Field(pattern=NUMBER_PATTERN)]], Field(min_length=1)]
    queue: str
    priority: QueuePriority = 0
    unmask_caller_id: bool | None = None
    geolocation_header: Annotated[str, Field(pattern=SIP_HEADER_PATTERN)] | None = None
    partner: str | None = None

    @property
    def unmasks(self) -> bool:
        """Emergency numbers must show the caller's number even when withheld (condition 2)."""
        if self.unmask_caller_id is None:
            return self.kind == LineKind.EMERGENCY
        return self.unmask_caller_id


def _network(value: str) -> str:
    """An address or network as Asterisk's ``identify`` match takes it, never a host name: a name
    is resolved once when pjsip.conf loads, so a DNS hiccup at start leaves the trunk unidentified."""
    try:
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address or network (e.g. 192.0.2.10 or 192.0.2.0/28); "
                         "host names are not allowed here") from None


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise ValueError(f"'{value}' is not an IP address (e.g. 0.0.0.0 or 192.0.2.5)") from None


Network = Annotated[str, AfterValidator(_network)]
Address = Annotated[str, AfterValidator(_address)]
Port = Annotated[int, Field(ge=1, le=65535)]
HOST_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$"


class PartnerSpec(_Strict):
    name: Text
    host: Annotated[str, Field(pattern=HOST_PATTERN)]
    port: Port = 5060
    transport: Literal["udp", "tcp", "tls"] = "tcp"
    #: Addresses the partner's calls come from (its Asterisk or SBC), for pjsip ``identify``.
    #: Optional when ``host`` is itself an IP address.
    match: list[Network] = []
    overflow_number: Annotated[str, Field(pattern=NUMBER_PATTERN)]
    accepts: Annotated[list[Annotated[str, Field(pattern=NUMBER_PATTERN)]], Field(min_length=1)]
    ring_timeout: Annotated[int, Field(ge=5, le=120)] = 20


class OperatorSpec(_Strict):
    """The operator trunk (SBC) that brings 15, 116 117 and the local numbers."""

    #: Addresses its INVITEs come from; every call from them lands in the public-lines context.
    match: Annotated[list[Network], Field(min_length=1)]
    #: Where remote regulators are dialled out (``sas-remote-agent``).
    host: Annotated[str, Field(pattern=HOST_PATTERN)] = "operator-sbc.invalid"
    port: Port = 5060
    transport: Literal["udp", "tcp", "tls"] = "udp"


class RtpSpec(_Strict):
    start: Annotated[int, Field(ge=1024, le=65534)] = 10000
    end: Annotated[int, Field(ge=1025, le=65535)] = 20000


class SipSpec(_Strict):
    """Where the site's SIP listens and who its trunks are; rendered into pjsip.conf and rtp.conf."""

    #: Address the rendered transports bind to (the PBX's own address on the telephony network).
    bind: Address = "0.0.0.0"
    port: Port = 5060
    tls_port: Port = 5061
    #: Transports to render; empty when the PBX already defines its own (endpoints then use any).
    transports: list[Literal["udp", "tcp", "tls", "wss"]] = ["udp", "tcp"]
    operator: OperatorSpec
    rtp: RtpSpec = RtpSpec()
    #: Certificate and key of the TLS transport (paths on the Asterisk host).
    tls_cert: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]+$")] | None = None
    tls_key: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]+$")] | None = None


DESK_KEY_PATTERN = r"^[0-9]{2,8}(-[0-9]{2,8})?$"


class DeskTemplate(StrEnum):
    """A desk phone in the room, or a remote regulator's browser softphone (WebRTC)."""

    PHONE = "phone"
    WEBRTC = "webrtc"


class DeskSpec(_Strict):
    template: DeskTemplate = DeskTemplate.PHONE
    label: Text = ""


@dataclass(frozen=True)
class Desk:
    extension: str
    template: DeskTemplate
    label: str

    @property
    def interface(self) -> str:
        return f"PJSIP/{self.extension}"


def expand_desks(key: str, spec: DeskSpec) -> list[Desk]:
    """``"1001"`` is one desk, ``"1001-1020"`` twenty: rooms are numbered in blocks."""
    first, _, last = key.partition("-")
    numbers = range(int(first), int(last or first) + 1)
    width = len(first)
    return [Desk(str(n).zfill(width), spec.template, spec.label) for n in numbers]


class Window(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: str = Field(alias="from")
    end: str = Field(alias="to")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun",
    ]

    @field_validator("start", "end")
    @classmethod
    def _is_time(cls, value: str) -> str:
        if parse_clock(value, allow_24=True) is None:
            raise ValueError(f"'{value}' is not a time of day (HH:MM, 00:00 to 24:00)")
        return value

    def minutes(self) -> tuple[int, int]:
        """(start, end) in minutes since midnight (validated above, so never unparsable)."""
        start, end = parse_clock(self.start, allow_24=True), parse_clock(self.end, allow_24=True)
        assert start is not None and end is not None
        return minutes_of(start), minutes_of(end)


class SwitchoverPreset(_Strict):
    line: str
    partner: str
    share: Annotated[int, Field(ge=0, le=100)] = 100
    number: Annotated[str, Field(pattern=NUMBER_PATTERN)] | None = None
    window: Window | None = None
    label: Text = ""


@dataclass(frozen=True)
class ScheduleSlot:
    period: str
    start: int  # minutes since midnight
    end: int


@dataclass(frozen=True)
class Schedule:
    """The week of the MG flow: which regulation (daytime GP, PDSA ...) answers when."""

    #: weekday (0 = Monday) -> ordered slots covering 00:00-24:00 exactly.
    week: dict[int, tuple[ScheduleSlot, ...]]
    holiday_period: str

    @property
    def periods(self) -> frozenset[str]:
        names = {slot.period for slots in self.week.values() for slot in slots}
        return frozenset(names | {self.holiday_period})


@dataclass(frozen=True)
class Route:
    """Where a qualification sends the caller: nowhere (P0 stays), a queue, or a queue per period."""

    stay: bool = False
    queue: str | None = None
    by_period: dict[str, str] = field(default_factory=dict)
    priority: int | None = None

    def queues(self) -> list[str]:
        return ([self.queue] if self.queue else []) + list(self.by_period.values())


@dataclass(frozen=True)
class Plan:
    """A validated site plan; the one object renderer, engine and emulator all read."""

    source: str
    source_sha256: str
    site: SiteSpec
    queues: dict[str, QueueSpec]
    lines: dict[str, LineSpec]
    partners: dict[str, PartnerSpec]
    schedule: Schedule
    routes: dict[Priority, Route]
    switchovers: dict[str, SwitchoverPreset]
    sip: SipSpec | None = None
    desks: dict[str, Desk] = field(default_factory=dict)
    alarms: AlarmPolicy = field(default_factory=AlarmPolicy)
    recording: RecordingSpec = field(default_factory=RecordingSpec)

    def desk_of(self, interface: str) -> Desk | None:
        """The declared desk behind a queue-member interface, if any."""
        tech, _, extension = interface.partition("/")
        return self.desks.get(extension) if tech == "PJSIP" else None

    @property
    def front_priority(self) -> int:
        """Priority that puts an urgent caller ahead of every line's callers (a failed transfer or
        overflow of a 15, SIS, ATSU or partner call comes back here)."""
        return max([line.priority for line in self.lines.values()] + [0]) + 10

    @property
    def care_front_priority(self) -> int:
        """Where a returning non-urgent caller (116 117, local numbers) goes: ahead of the other
        non-urgent callers, never ahead of an emergency (the loader keeps this below every
        emergency line's priority)."""
        return max([line.priority for line in self.lines.values() if line.kind in CARE_KINDS] + [0]) + 1

    def band_of(self, line_id: str) -> str:
        """``soins`` for the non-urgent lines (116 117, local numbers), ``urgent`` for the others;
        an unknown line is taken as urgent (a caller is never put behind by a doubt)."""
        line = self.lines.get(line_id)
        return "soins" if line is not None and line.kind in CARE_KINDS else "urgent"

    def front_priority_for(self, line_id: str) -> int:
        """The front of the queue for a caller of ``line_id``: its band's front."""
        return self.care_front_priority if self.band_of(line_id) == "soins" else self.front_priority

    def queues_with_role(self, role: Role) -> list[str]:
        return [name for name, spec in self.queues.items() if spec.role == role]

    def entry_queue_of(self, line_id: str) -> str:
        return self.lines[line_id].queue

    def line_for_number(self, number: str, partner: str | None = None) -> str | None:
        for line_id, line in self.lines.items():
            if number in line.numbers and line.partner == partner:
                return line_id
        return None
