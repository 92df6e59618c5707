"""A private Mosquitto broker for the demo and the tests: a real broker on a free local port.

Production points the engines at the site's own broker (settings ``mqtt:``); the demo and the
tests need one they own, started and stopped with them, so two linked sites exchange their loads
over the same MQTT code path as in production.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

#: Debian installs the broker in /usr/sbin, which is not on a non-root PATH.
CANDIDATES = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerUnavailable(RuntimeError):
    pass


def mosquitto_binary() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise BrokerUnavailable("mosquitto is not installed: run scripts/setup.sh (Debian package 'mosquitto')")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Broker:
    port: int
    process: subprocess.Popen[bytes]
    workdir: Path

    @property
    def log_file(self) -> Path:
        return self.workdir / "mosquitto.log"

    def stop(self) -> None:
        """Stop the broker (also used by tests to take the bus away mid-run)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.process = _spawn(self.workdir / "mosquitto.conf")
        _wait_listening(self.port, self.process)


def _spawn(conf: Path) -> subprocess.Popen[bytes]:
    # The broker logs to stderr, written by us: run as root it drops privileges before it could
    # open a log file in our private directory.
    with (conf.parent / "mosquitto.log").open("ab") as log_file:
        return subprocess.Popen([mosquitto_binary(), "-c", str(conf)], stdout=log_file, stderr=log_file)


def _wait_listening(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrokerUnavailable(f"mosquitto exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BrokerUnavailable(f"mosquitto did not listen on port {port} within {timeout} s")


def start_broker(port: int = 0) -> Broker:
    """Mosquitto listening on 127.0.0.1 only, anonymous access, no persistence."""
    port = port or free_port()
    workdir = Path(tempfile.mkdtemp(prefix="sas-mosquitto-"))
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n", encoding="ascii")
    process = _spawn(conf)
    _wait_listening(port, process)
    return Broker(port, process, workdir)
