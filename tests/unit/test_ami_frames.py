"""The AMI frame reader under hostile or broken input: a malformed frame is logged and skipped and
the next one still arrives; a frame that never ends cannot grow memory; random bytes never raise."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sas_router.engine.ami import MAX_FRAME, GuardedProtocol


class Factory:
    """What panoramisk's Manager gives its protocol: where events go."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.forgetable_actions: tuple[str, ...] = ()
        self.awaiting_actions: dict[str, Any] = {}

    def dispatch(self, message: Any) -> None:
        self.events.append(dict(message))

    def connection_lost(self, exc: Any) -> None:
        raise AssertionError(f"the link was torn down: {exc}")


class Transport:
    def write(self, data: bytes) -> None:
        pass


def reader() -> tuple[GuardedProtocol, Factory]:
    protocol = GuardedProtocol()
    protocol.connection_made(Transport())
    factory = Factory()
    protocol.factory = factory
    return protocol, factory


def test_a_repeated_event_header_is_skipped_and_the_next_frame_arrives() -> None:
    protocol, factory = reader()
    before = GuardedProtocol.malformed
    protocol.data_received(b"Event: Hangup\r\nEvent: Hangup\r\nUniqueid: 1.1\r\n\r\n"
                           b"Event: Newchannel\r\nActionID: a\r\nActionID: b\r\n\r\n"
                           b"Event: QueueCallerJoin\r\nUniqueid: 1.2\r\nQueue: n1-arm\r\n\r\n")
    assert [e["Event"] for e in factory.events][-1] == "QueueCallerJoin"
    assert GuardedProtocol.malformed > before


def test_a_frame_that_never_ends_is_dropped_not_buffered() -> None:
    protocol, factory = reader()
    chunk = b"Event: Flood\r\nX: " + b"a" * 65_536
    for _ in range(3 * MAX_FRAME // len(chunk) + 2):
        protocol.data_received(chunk)
        assert sum(len(part) for part in protocol.queue) <= MAX_FRAME + len(chunk)
    protocol.data_received(b"\r\n\r\nEvent: QueueCallerJoin\r\nUniqueid: 1.3\r\n\r\n")
    assert [e["Event"] for e in factory.events] == ["QueueCallerJoin"], "the flood is skipped, the next one kept"


def test_frames_split_anywhere_arrive_whole() -> None:
    stream = b"".join(f"Event: QueueCallerJoin\r\nUniqueid: 1.{n}\r\nQueue: n1-arm\r\n\r\n".encode()
                      for n in range(50))
    protocol, factory = reader()
    for start in range(0, len(stream), 7):
        protocol.data_received(stream[start:start + 7])
    assert [e["Uniqueid"] for e in factory.events] == [f"1.{n}" for n in range(50)]


FRAGMENTS = st.sampled_from([b"Event: ", b"Response: ", b"ActionID: ", b"Uniqueid: ", b"\r\n", b"\r\n\r\n",
                             b": ", b"Follows", b"--END COMMAND--", b"Output: x", b"\xff\xfe", b"\x00", b"Hangup"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(FRAGMENTS, st.binary(max_size=40)), max_size=60), st.integers(1, 64))
def test_random_bytes_never_raise_nor_end_the_link(parts: list[bytes], chunk: int) -> None:
    protocol, _ = reader()
    stream = b"".join(parts) + b"\r\n\r\nEvent: Sentinel\r\nUniqueid: 9.9\r\n\r\n"
    for start in range(0, len(stream), chunk):
        protocol.data_received(stream[start:start + chunk])
    assert sum(len(part) for part in protocol.queue) <= MAX_FRAME
