"""The pyVoIP driver against a real SIP peer (sipp, Debian's sip-tester, playing Asterisk's side):
it registers, dials each planned line's number, and hangs up each call after the caller's time."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulator.load import Dist, LoadProfile, PlannedCall
from simulator.sip_driver import SipAccount, SipLoad

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "fixtures" / "sipp" / "uas.xml"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def sip_peer(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    sipp = shutil.which("sipp")
    assert sipp, "sipp is missing: run scripts/setup.sh (Debian package 'sip-tester')"
    port, trace = free_udp_port(), tmp_path / "sipp-messages.log"
    peer = subprocess.Popen([sipp, "-sf", str(SCENARIO), "-i", "127.0.0.1", "-p", str(port), "-mp",
                             str(free_udp_port()), "-trace_msg", "-message_file", str(trace), "-nostdin"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    yield port, trace
    peer.terminate()
    peer.wait(timeout=10)


def planned(at: float, line: str, number: str, level: str) -> PlannedCall:
    return PlannedCall(at=at, line=line, number=number, caller="", withheld=False, level=level, patience=0.3,
                       patience_n2=None, qualify_after=0.1, talk=0.5, transfer_n2=False)


def test_the_planned_calls_become_sip_calls(sip_peer: tuple[int, Path]) -> None:
    port, trace = sip_peer
    profile = LoadProfile(handle={role: Dist(0.3, "fixed") for role in ("n1", "n2-amu", "n2-mg")})
    calls = [planned(0.0, "15", "15", "P1"), planned(0.3, "116117", "116117", "P2"),
             planned(0.6, "sis-n1", "0472000018", "P0")]
    load = SipLoad(SipAccount("127.0.0.1", port, "sim-caller", "not-logged", "127.0.0.1", free_udp_port()), profile)
    outcomes = load.run(calls)
    assert [(o.planned.number, o.state) for o in outcomes] == [("15", "hung-up"), ("116117", "hung-up"),
                                                              ("0472000018", "hung-up")]
    held = [o.ended_at - o.placed_at for o in outcomes if o.ended_at]
    assert all(0.6 < h < 3.0 for h in held), held  # patience 0.3 + qualify 0.1 + talk 0.3
    time.sleep(0.3)
    wire = trace.read_text(encoding="utf-8", errors="replace")
    invites = [line.split()[1] for line in wire.splitlines() if line.startswith("INVITE ")]
    assert invites == ["sip:15@127.0.0.1", "sip:116117@127.0.0.1", "sip:0472000018@127.0.0.1"]
    assert sum(1 for line in wire.splitlines() if line.startswith("BYE ")) == 3
    assert wire.count("REGISTER sip:127.0.0.1") >= 1 and "not-logged" not in wire
