"""The emulator against recordings of a real Asterisk 22.10.1.

Each recorded scenario's client actions are replayed at their recorded instants against a fresh
emulator loaded with the recording's configuration; both event streams must agree event by
event (names, order, field names and order, values) after the normalisation documented in
``simulator/softswitch/replay.py`` and the README ("Conformance").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.simulator.softswitch.replay import compare, replay
from sas_router.simulator.transcripts import load_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts"
ETC = FIXTURES / "asterisk-etc"

CONFORMANT = [
    "01-login-basic",
    "02-queue-answer",
    "03-redirect-transfer",
    "03b-blindtransfer-from-n1",
    "03c-redirect-extrachannel",
    "03d-atxfer",
    "04-overflow-redirect",
    "05-abandon",
    "06-status-while-waiting",
    "07-local-optimisation-agent-hangup",
    "08-queue-withdraw-caller",
]


@pytest.mark.parametrize("scenario", CONFORMANT)
def test_emulator_reproduces_the_recording(scenario: str) -> None:
    result = replay(load_transcript(FIXTURES / f"{scenario}.log"), ETC)
    assert len(result.emulated) > 0
    problems = compare(result)
    assert not problems, "\n".join(problems)


def test_every_recording_is_accounted_for() -> None:
    """A recording added to the fixtures is compared too: none is left out of the suite."""
    recordings = {p.stem for p in FIXTURES.glob("*.log")}
    assert recordings == set(CONFORMANT)


def test_the_comparison_catches_a_wrong_event() -> None:
    """The harness itself: an emulator that drops the QueueCallerLeave at answer is caught."""
    result = replay(load_transcript(FIXTURES / "02-queue-answer.log"), ETC)
    result.emulated = [f for f in result.emulated if f.message.get("Event") != "QueueCallerLeave"]
    problems = compare(result)
    assert any("QueueCallerLeave" in line for line in problems)


def test_the_comparison_catches_a_wrong_value() -> None:
    from sas_router.simulator.softswitch.ami_codec import Message
    from sas_router.simulator.transcripts import Frame

    result = replay(load_transcript(FIXTURES / "04-overflow-redirect.log"), ETC)
    tampered = []
    for frame in result.emulated:
        if frame.message.get("Event") == "QueueCallerAbandon":
            pairs = [(k, "from-pstn" if k == "Context" else v) for k, v in frame.message.pairs]
            frame = Frame(frame.at, frame.sent, Message(pairs))
        tampered.append(frame)
    result.emulated = tampered
    assert any("QueueCallerAbandon" in line and "Context" in line for line in compare(result))
