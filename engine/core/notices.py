"""What the engine tells the rest of the system (journal, figures, MQTT, alarms): typed, so a
listener that reads a kind the engine never sends is a type error, not a silent ``False``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NoticeKind(StrEnum):
    # A call's life, from the tracker (AMI events).
    QUEUE_JOINED = "queue-joined"
    QUEUE_LEFT = "queue-left"
    AGENT_CONNECTED = "agent-connected"
    AGENT_LEG_ENDED = "agent-leg-ended"
    CALL_ENDED = "call-ended"
    CALL_ADOPTED = "call-adopted"
    TRANSFER_CONFIRMED = "transfer-confirmed"
    AGENT_CHANGED = "agent-changed"
    SWITCHOVER_DIAL_FAILED = "switchover-dial-failed"
    RECORDING_STOPPED = "recording-stopped"
    # The engine's own decisions and states.
    QUALIFIED = "qualified"
    RESYNCHRONISED = "resynchronised"
    PLAN_RELOADED = "plan-reloaded"
    AUDIT = "audit"
    # Mutual aid (journaled in mutual_aid_journal).
    SWITCHOVER_STARTED = "switchover-started"
    SWITCHOVER_ENDED = "switchover-ended"
    OVERFLOW_STARTED = "overflow-started"
    OVERFLOW_ENDED = "overflow-ended"
    OVERFLOW_ENABLED = "overflow-enabled"
    OVERFLOW_DISABLED = "overflow-disabled"

    @property
    def is_mutual_aid(self) -> bool:
        return self in MUTUAL_AID_KINDS


MUTUAL_AID_KINDS = frozenset({NoticeKind.SWITCHOVER_STARTED, NoticeKind.SWITCHOVER_ENDED,
                              NoticeKind.SWITCHOVER_DIAL_FAILED, NoticeKind.OVERFLOW_STARTED,
                              NoticeKind.OVERFLOW_ENDED, NoticeKind.OVERFLOW_ENABLED, NoticeKind.OVERFLOW_DISABLED})


@dataclass(frozen=True)
class Notice:
    """Something the rest of the engine may want to know (journal, metrics, MQTT)."""

    kind: NoticeKind
    at: float
    uniqueid: str = ""
    data: dict[str, Any] = field(default_factory=dict)
