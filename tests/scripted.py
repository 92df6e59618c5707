"""A scripted hour at the Rhône with known waits, written as the AMI events Asterisk sends.

Ten calls answered at 5, 12, 29, 30, 31, 45, 50, 8, 20 and 61 s; two abandons (one after 40 s,
one after 3 s: a short abandon); one call transferred N1 -> N2 AMU after its N1 answer; one call
overflowed to the Isère after 95 s. The expected figures are worked out by hand in
``EXPECTED`` so every output (pure core, Prometheus, MQTT, report) is checked against the same
numbers.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

#: Tuesday 24 November 2026, 10:00 in Lyon: a working day, daytime (SAS hours).
T0 = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
ANSWER_WAITS = (5, 12, 29, 30, 31, 45, 50, 8, 20, 61)
TALK = 60.0

EXPECTED = {
    "offered": 13, "answered": 10, "answered_30": 5, "answered_60": 9, "qs30": 0.5, "qs60": 0.9,
    "qs30_of_offered": round(5 / 12, 4), "abandoned": 1, "short_abandoned": 1, "overflowed_out": 1,
    "transfers": {"n1-arm>n2-amu": 1}, "n2_answered": 1, "n2_qs30": 1.0,
    "talk": {"arm-n1": (10, 58.0), "arm-amu": (1, 100.0)},
}
ROLES = {f"PJSIP/10{i:02d}": "arm-n1" for i in range(1, 11)} | {"PJSIP/2001": "arm-amu"}

Event = dict[str, str]


def _uid(n: int) -> str:
    return f"{int(T0)}.{n}"


def _tags(uid: str, channel: str, line: str, caller: str) -> list[Event]:
    base = {"Event": "VarSet", "Uniqueid": uid, "Linkedid": uid, "Channel": channel}
    return [{**base, "Variable": "__SAS_LINE", "Value": line},
            {**base, "Variable": "__SAS_CALL_ID", "Value": f"sas-69-{uid}"},
            {**base, "Variable": "__SAS_CALLER_NUM", "Value": caller},
            {**base, "Variable": "__SAS_PRIO", "Value": "3"}]


def _join(uid: str, channel: str, queue: str) -> Event:
    return {"Event": "QueueCallerJoin", "Uniqueid": uid, "Linkedid": uid, "Channel": channel, "Queue": queue,
            "Position": "1", "Count": "1", "Context": "sas-queue", "Exten": queue, "Priority": "3"}


def _answer(uid: str, channel: str, queue: str, agent: str, wait: float, n: int) -> list[Event]:
    agent_channel = f"{agent}-{n:08x}"
    return [{"Event": "DialEnd", "Uniqueid": uid, "Channel": channel, "DialStatus": "ANSWER",
             "DestChannel": agent_channel},
            {"Event": "QueueCallerLeave", "Uniqueid": uid, "Linkedid": uid, "Channel": channel, "Queue": queue,
             "Position": "1", "Count": "0"},
            {"Event": "AgentConnect", "Uniqueid": uid, "Linkedid": uid, "Channel": channel, "Queue": queue,
             "Interface": agent, "MemberName": agent.split("/")[1], "DestChannel": agent_channel,
             "HoldTime": str(int(wait)), "RingTime": "1"}]


def _hangup(uid: str, channel: str) -> Event:
    return {"Event": "Hangup", "Uniqueid": uid, "Linkedid": uid, "Channel": channel, "Cause": "16"}


def scripted_events() -> list[tuple[float, Event]]:
    """(time, event) in time order."""
    out: list[tuple[float, Event]] = []
    for i, wait in enumerate(ANSWER_WAITS):
        n = i + 1
        uid, channel = _uid(n), f"PJSIP/operator-{n:08x}"
        start = T0 + 10 * i
        out += [(start, e) for e in _tags(uid, channel, "15" if i % 2 else "116117", f"06000000{n:02d}")]
        out.append((start, _join(uid, channel, "n1-arm")))
        answered = start + wait
        agent = f"PJSIP/10{n:02d}"
        out += [(answered, e) for e in _answer(uid, channel, "n1-arm", agent, wait, n)]
        if n == 1:  # qualified P1 after 40 s: Redirect of the caller, the N1 desk released
            moved = answered + 40
            out.append((moved, {"Event": "Hangup", "Uniqueid": f"{uid}-agent", "Linkedid": uid,
                                "Channel": f"{agent}-{n:08x}", "Cause": "16"}))
            out.append((moved + 0.5, _join(uid, channel, "n2-amu")))
            picked = moved + 0.5 + 15
            out += [(picked, e) for e in _answer(uid, channel, "n2-amu", "PJSIP/2001", 15, 100)]
            out.append((picked + 100, _hangup(uid, channel)))
        else:
            out.append((answered + TALK, _hangup(uid, channel)))
    for n, (start, wait) in ((11, (T0 + 5, 40.0)), (12, (T0 + 7, 3.0))):  # two abandons
        uid, channel = _uid(n), f"PJSIP/operator-{n:08x}"
        out += [(start, e) for e in _tags(uid, channel, "116117", f"06000000{n:02d}")]
        out.append((start, _join(uid, channel, "n1-arm")))
        out.append((start + wait, {"Event": "QueueCallerAbandon", "Uniqueid": uid, "Queue": "n1-arm",
                                   "Context": "sas-queue", "Exten": "n1-arm", "Priority": "3"}))
        out.append((start + wait, {"Event": "QueueCallerLeave", "Uniqueid": uid, "Linkedid": uid,
                                   "Channel": channel, "Queue": "n1-arm"}))
        out.append((start + wait, _hangup(uid, channel)))
    uid, channel = _uid(13), "PJSIP/operator-0000000d"  # overflowed to the Isère after 95 s
    start = T0 + 20
    out += [(start, e) for e in _tags(uid, channel, "116117", "0600000013")]
    out.append((start, _join(uid, channel, "n1-arm")))
    left = start + 95
    out.append((left, {"Event": "VarSet", "Uniqueid": uid, "Linkedid": uid, "Channel": channel,
                       "Variable": "QUEUE_WITHDRAW_INFO", "Value": "ovf-sas-38"}))
    out.append((left, {"Event": "QueueCallerAbandon", "Uniqueid": uid, "Queue": "n1-arm",
                       "Context": "sas-queue", "Exten": "n1-arm", "Priority": "3"}))
    out.append((left, {"Event": "QueueCallerLeave", "Uniqueid": uid, "Linkedid": uid, "Channel": channel,
                       "Queue": "n1-arm"}))
    out.append((left + 200, _hangup(uid, channel)))
    return sorted(out, key=lambda item: item[0])


END = max(at for at, _ in scripted_events())
