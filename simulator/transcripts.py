"""Read AMI recordings made with the ``#T <epoch> <hh:mm:ss.mmm> RECV|SENT <bytes>`` framing.

The recordings in ``tests/fixtures/transcripts`` come from a real Asterisk 22. They are the
reference for the emulator's conformance test, fixtures for the engine's tracker tests and the
recorded stream the throughput benchmark replays, so all three read them through this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sas_router.simulator.softswitch.ami_codec import Message, parse_lines


@dataclass(frozen=True)
class Frame:
    """One AMI message as it crossed the wire: ``sent`` is client → Asterisk."""

    at: float
    sent: bool
    message: Message

    @property
    def is_event(self) -> bool:
        return not self.sent and self.message.has("Event")

    @property
    def is_response(self) -> bool:
        return not self.sent and self.message.has("Response")


def parse_transcript(lines: Iterable[str]) -> list[Frame]:
    """Frames in recorded order. The banner line (no colon) and ``#C`` comments are skipped."""
    frames: list[Frame] = []
    header: tuple[float, bool] | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        pairs = [p for p in parse_lines(line for line in body if line.strip()) if p is not None]
        if pairs:
            frames.append(Frame(header[0], header[1], Message(pairs)))

    for raw in lines:
        line = raw.rstrip("\r\n")
        if line.startswith("#T "):
            flush()
            parts = line.split()
            header, body = (float(parts[1]), parts[3] == "SENT"), []
        elif line.startswith("#C"):
            continue
        elif header is not None:
            body.append(line)
    flush()
    return frames


def load_transcript(path: Path | str) -> list[Frame]:
    return parse_transcript(Path(path).read_text(encoding="utf-8").splitlines())
