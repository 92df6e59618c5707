"""A caller who speaks: G.711 A-law RTP carrying a known tone, so a test can find the caller's
voice in a recording made by a real Asterisk. The tone is made by Debian's ``sox`` once."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import struct
import subprocess
from pathlib import Path

#: PCMA, 8 kHz, 20 ms frames: 160 bytes of A-law each, every 20 ms.
PAYLOAD_TYPE, FRAME_BYTES, FRAME_SECONDS = 8, 160, 0.02


def alaw_tone(hz: float, seconds: float, workdir: Path) -> bytes:
    """A sine at ``hz`` as raw A-law, made by sox (the brief's tool for known signals)."""
    sox = shutil.which("sox")
    if sox is None:
        raise RuntimeError("sox is missing: run scripts/setup.sh (Debian package 'sox')")
    raw = workdir / f"tone-{int(hz)}.al"
    subprocess.run([sox, "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-t", "raw", str(raw), "synth",
                    str(seconds), "sine", str(hz), "vol", "0.5"], check=True, capture_output=True)
    return raw.read_bytes()


class RtpSender:
    """Sends ``audio`` (A-law) to ``remote`` from ``local`` in real time until stopped or done.
    Asterisk's strict RTP learns the source from the first packets, which come from the port the
    caller's SDP offered."""

    def __init__(self, audio: bytes, local: tuple[str, int], remote: tuple[str, int]) -> None:
        self.audio, self.local, self.remote = audio, local, remote
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> RtpSender:
        self._task = asyncio.ensure_future(self._run())
        return self

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.local)
            sock.setblocking(False)
            ssrc, sequence, stamp = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
            start = loop.time()
            for offset in range(0, len(self.audio) - FRAME_BYTES + 1, FRAME_BYTES):
                header = struct.pack("!BBHII", 0x80, PAYLOAD_TYPE | (0x80 if offset == 0 else 0), sequence & 0xFFFF,
                                     stamp & 0xFFFFFFFF, ssrc)
                await loop.sock_sendto(sock, header + self.audio[offset:offset + FRAME_BYTES], self.remote)
                self.sent += 1
                sequence, stamp = sequence + 1, stamp + FRAME_BYTES
                delay = start + self.sent * FRAME_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
