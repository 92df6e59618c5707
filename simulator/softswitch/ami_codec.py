"""The AMI wire format: ``Key: Value`` lines ended by CRLF, a blank line ending each message.

Shared by the emulator's server and the transcript tooling so both read frames the same way.
Keys repeat (``Output:``, ``Variable:``), so a message is an ordered list of pairs, not a dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: Asterisk refuses lines over this size (manager.c uses a 1024-byte input buffer per line);
#: the emulator closes a connection whose message grows past MAX_MESSAGE bytes.
MAX_LINE = 1024
MAX_MESSAGE = 64 * 1024


@dataclass
class Message:
    """One AMI message; ``get`` is case-insensitive on keys as Asterisk's astman_get_header is."""

    pairs: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str, default: str = "") -> str:
        lowered = key.lower()
        for k, v in self.pairs:
            if k.lower() == lowered:
                return v
        return default

    def get_all(self, key: str) -> list[str]:
        lowered = key.lower()
        return [v for k, v in self.pairs if k.lower() == lowered]

    def has(self, key: str) -> bool:
        lowered = key.lower()
        return any(k.lower() == lowered for k, _ in self.pairs)

    def as_dict(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k, v in self.pairs:
            out.setdefault(k, v)
        return out

    @property
    def name(self) -> str:
        return self.get("Event") or self.get("Action") or self.get("Response")


def encode(pairs: Iterable[tuple[str, object]]) -> bytes:
    """Serialise one message. Values never carry CR/LF: a value that contains one is cut there,
    so no field can smuggle an extra header or a message boundary onto the wire."""
    lines = []
    for key, value in pairs:
        text = "" if value is None else str(value)
        text = text.split("\r", 1)[0].split("\n", 1)[0]
        lines.append(f"{key}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace")


def parse_lines(lines: Iterable[str]) -> Iterator[tuple[str, str] | None]:
    """Turn raw lines into pairs; a line without ``:`` yields None (the caller decides)."""
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            yield None
            continue
        yield key.strip(), value[1:] if value.startswith(" ") else value


class MessageReader:
    """Incremental decoder: feed bytes, collect complete messages.

    Mirrors Asterisk's tolerance: lines are split on LF with an optional CR, a line without a
    colon is ignored (manager.c only keeps lines that look like headers), and an over-long line is
    truncated rather than allowed to grow without bound.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._current: list[tuple[str, str]] = []
        self._size = 0
        self.oversized = False

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        out: list[Message] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                if len(self._buffer) > MAX_MESSAGE:
                    self.oversized = True
                    self._buffer = b""
                break
            raw, self._buffer = self._buffer[:newline], self._buffer[newline + 1 :]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            self._size += len(raw)
            if self._size > MAX_MESSAGE:
                self.oversized = True
            line = raw[:MAX_LINE].decode("utf-8", "replace")
            if line == "":
                if self._current:
                    out.append(Message(self._current))
                self._current, self._size = [], 0
                continue
            pair = next(parse_lines([line]))
            if pair is not None:
                self._current.append(pair)
        return out
