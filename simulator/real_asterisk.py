"""A private, real Asterisk 22 for the tests and the demo, configured the way an admin would.

The configuration directory is built by :func:`engine.plan.install.install` — the same step an
admin runs on a site — around a copy of the plan moved onto loopback addresses and free ports, so
every run proves the rendered files on the real switch. Only what a site's PBX already has is
added here (``asterisk.conf`` with private directories, ``logger.conf``, a ``default`` music class,
short SIP timers), and ``modules.conf`` loads exactly the modules the render lists.

Where the Asterisk comes from: ``SAS_ASTERISK`` (a release tarball, an unpacked prefix holding
``sbin/asterisk``, or the ``asterisk`` binary of an installed one), else the tarball the project's
CI machines carry beside the repository (``../shared/asterisk/``). A tarball is unpacked once into
``var/asterisk-dist/``.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import hashlib
import os
import re
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sas_router.engine.plan.install import install
from sas_router.engine.plan.model import OperatorSpec, Plan, RtpSpec, SipSpec
from sas_router.engine.plan.render import read_secrets

log = structlog.get_logger("real_asterisk")

ROOT = Path(__file__).resolve().parents[1]
SHARED_TARBALLS = ROOT.parent / "shared" / "asterisk"
AMI_USER = "sas-router"


class AsteriskUnavailable(RuntimeError):
    """No real Asterisk on this machine (neither SAS_ASTERISK nor the shared tarball)."""


def _unpack(tarball: Path) -> Path:
    digest = hashlib.sha256(str(tarball.resolve()).encode() + str(tarball.stat().st_size).encode()).hexdigest()[:12]
    dest = ROOT / "var" / "asterisk-dist" / digest
    done = dest / ".unpacked"
    if not done.exists():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as archive:
            archive.extractall(dest, filter="tar")
        done.touch()
    tops = [p for p in dest.iterdir() if (p / "sbin" / "asterisk").exists()]
    if not tops:
        raise AsteriskUnavailable(f"{tarball} holds no sbin/asterisk")
    return tops[0]


def locate() -> Path:
    """The prefix of a usable Asterisk (``<prefix>/sbin/asterisk``), or :class:`AsteriskUnavailable`."""
    given = os.environ.get("SAS_ASTERISK")
    if given:
        path = Path(given)
        if path.is_file() and path.name.endswith((".tar.xz", ".tar.gz", ".tar")):
            return _unpack(path)
        if path.is_file():
            return path.resolve().parent.parent
        if (path / "sbin" / "asterisk").exists():
            return path
        raise AsteriskUnavailable(f"SAS_ASTERISK={given} is neither a tarball, an asterisk binary nor a prefix")
    tarballs = sorted(SHARED_TARBALLS.glob("asterisk-*.tar.xz")) if SHARED_TARBALLS.is_dir() else []
    if not tarballs:
        raise AsteriskUnavailable("no real Asterisk: set SAS_ASTERISK (tarball, prefix or binary), "
                                  f"or put a release tarball in {SHARED_TARBALLS}")
    return _unpack(tarballs[-1])


def free_port(kind: int = socket.SOCK_STREAM, host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_sip_port(host: str) -> int:
    """A port free for both UDP and TCP on ``host`` (the rendered transports use both)."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM, host)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free SIP port")


@dataclass(frozen=True)
class PartnerLink:
    """Where a partner SAS's switch answers, seen from this one (loopback address and port)."""

    address: str
    port: int


def localise(plan: Plan, *, bind: str, port: int, operator_addresses: Iterable[str], rtp: tuple[int, int],
             partners: dict[str, PartnerLink] | None = None, transports: tuple[str, ...] | None = None) -> Plan:
    """The plan moved onto this machine: same queues, lines, desks and dialplan, loopback SIP.
    Its transports are kept but TLS (this machine has no certificate for it)."""
    partners = partners or {}
    if transports is None:
        transports = tuple(t for t in (plan.sip.transports if plan.sip else ["udp", "tcp"]) if t != "tls")
    operator = OperatorSpec(match=[f"{a}/32" for a in operator_addresses], host="127.0.0.1", port=port)
    sip = SipSpec(bind=bind, port=port, transports=list(transports), operator=operator,
                  rtp=RtpSpec(start=rtp[0], end=rtp[1]))
    moved = {
        name: spec.model_copy(update={"host": partners[name].address, "port": partners[name].port,
                                      "transport": "udp", "match": [f"{partners[name].address}/32"]})
        if name in partners else spec.model_copy(update={"host": "127.0.0.254", "port": 9, "transport": "udp",
                                                          "match": ["127.0.0.254/32"]})
        for name, spec in plan.partners.items()
    }
    return dataclasses.replace(plan, sip=sip, partners=moved)


@dataclass
class RealAsterisk:
    """One private Asterisk process: its own directories, AMI port and SIP address."""

    plan: Plan
    workdir: Path
    prefix: Path
    sip_address: str
    sip_port: int
    ami_port: int
    process: subprocess.Popen[bytes] | None = None
    extra_pjsip: str = ""
    #: Asterisk's HTTPS (TLS) port: the secure WebSocket of remote regulators' softphones (wss).
    https_port: int = 0
    _console: Path = field(init=False)

    @property
    def etc(self) -> Path:
        return self.workdir / "etc"

    @property
    def run_dir(self) -> Path:
        return self.workdir / "run"

    @property
    def log_file(self) -> Path:
        return self.run_dir / "log" / "messages.log"

    @property
    def ami_secret(self) -> str:
        return read_secrets(self.etc / self.plan.site.id)["@manager"]

    def desk_password(self, extension: str) -> str:
        return read_secrets(self.etc / self.plan.site.id)[extension]

    def sip_uri(self, user: str) -> str:
        return f"sip:{user}@{self.sip_address}:{self.sip_port}"

    def configure(self) -> list[str]:
        """Write the configuration directory; returns what the install step did."""
        self.write_host_files()
        return install(self.plan, self.etc, modules_autoload=False)

    def write_host_files(self) -> None:
        """What the PBX host has before the SAS is installed: private directories, logging, hold
        music, SIP timers, the AMI listener, and a modules.conf that loads only what is asked."""
        self.etc.mkdir(parents=True, exist_ok=True)
        for sub in ("db", "spool", "run", "log", "cache"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        a = self.prefix
        (self.etc / "asterisk.conf").write_text(
            "[directories]\n"
            f"astetcdir => {self.etc}\nastmoddir => {a}/lib/asterisk/modules\n"
            f"astvarlibdir => {a}/var/lib/asterisk\nastdatadir => {a}/var/lib/asterisk\n"
            f"astagidir => {a}/var/lib/asterisk/agi-bin\nastkeydir => {a}/var/lib/asterisk\n"
            f"astsbindir => {a}/sbin\nastdbdir => {self.run_dir}/db\nastspooldir => {self.run_dir}/spool\n"
            f"astrundir => {self.run_dir}/run\nastlogdir => {self.run_dir}/log\nastcachedir => {self.run_dir}/cache\n"
            "[options]\nverbose = 1\n", encoding="utf-8")
        (self.etc / "logger.conf").write_text(
            "[general]\n[logfiles]\nmessages.log => notice,warning,error\n", encoding="utf-8")
        # Files every PBX has (empty or minimal here), so the log shows only what the render causes.
        (self.etc / "acl.conf").write_text("", encoding="utf-8")
        for name in ("cdr.conf", "cel.conf", "features.conf", "udptl.conf", "pjproject.conf",
                     "ccss.conf"):
            (self.etc / name).write_text("[general]\n", encoding="utf-8")
        (self.etc / "indications.conf").write_text(
            "[general]\ncountry = fr\n\n[fr]\ndescription = France\nringcadence = 1500,3500\n"
            "dial = 440\nbusy = 440/500,0/500\nring = 440/1500,0/3500\ncongestion = 440/250,0/250\n",
            encoding="utf-8")
        (self.etc / "musiconhold.conf").write_text(
            f"[default]\nmode = files\ndirectory = {a}/var/lib/asterisk/moh\n", encoding="utf-8")
        # Short SIP timers: a transaction that is never acknowledged fails in 6.4 s instead of 32 s,
        # so a test sees an unmatched ACK quickly (64 x T1).
        (self.etc / "pjsip.conf").write_text(
            "[system]\ntype = system\ntimer_t1 = 100\ntimer_b = 6400\n\n"
            "[global]\ntype = global\nuser_agent = Asterisk SAS test\n\n" + self.extra_pjsip, encoding="utf-8")
        (self.etc / "manager.conf").write_text(
            f"[general]\nenabled = yes\nport = {self.ami_port}\nbindaddr = 127.0.0.1\ndisplayconnects = no\n\n",
            encoding="utf-8")
        (self.etc / "modules.conf").write_text("[modules]\nautoload = no\n", encoding="utf-8")
        if self.plan.sip is not None and "wss" in self.plan.sip.transports:
            self._write_https()

    def _write_https(self) -> None:
        """http.conf serving TLS on loopback with a certificate made here (a site uses its own),
        so browser softphones reach the wss transport at wss://127.0.0.1:<https_port>/ws."""
        keys = self.workdir / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        cert, key = keys / "asterisk.crt", keys / "asterisk.key"
        if not cert.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3",
                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                            "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        self.https_port = self.https_port or free_port()
        (self.etc / "http.conf").write_text(
            f"[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = {free_port()}\n"
            f"tlsenable = yes\ntlsbindaddr = 127.0.0.1:{self.https_port}\n"
            f"tlscertfile = {cert}\ntlsprivatekey = {key}\n", encoding="utf-8")

    @property
    def wss_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "LD_LIBRARY_PATH": str(self.prefix / "lib")}

    def _command(self, *args: str) -> list[str]:
        return [str(self.prefix / "sbin" / "asterisk"), "-C", str(self.etc / "asterisk.conf"), *args]

    def cli_sync(self, command: str, timeout: float = 10.0) -> str:
        """One CLI command through the control socket (``asterisk -rx``)."""
        try:
            done = subprocess.run(self._command("-rx", command), env=self._env(), capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return ""
        return (done.stdout + done.stderr).decode(errors="replace")

    async def cli(self, command: str, timeout: float = 10.0) -> str:
        return await asyncio.to_thread(self.cli_sync, command, timeout)

    def start_sync(self, timeout: float = 30.0) -> None:
        """Start in the foreground of a child process (no daemon: the process is ours to stop),
        and return once Asterisk says it is fully booted. Not tied to an event loop, so one
        switch can serve a whole test session."""
        self._console = self.run_dir / "console.out"
        with self._console.open("ab") as console:
            self.process = subprocess.Popen(self._command("-f", "-n"), env=self._env(), stdin=subprocess.DEVNULL,
                                            stdout=console, stderr=console, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"asterisk exited ({self.process.returncode}): {self.tail()}")
            out = self.cli_sync("core waitfullybooted", timeout=5)
            if "fully booted" in out:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"asterisk did not boot: {out} {self.tail()}")
            time.sleep(0.2)
        atexit.register(self.stop_sync)  # a run that ends abruptly leaves no Asterisk behind
        log.info("asterisk started", site=self.plan.site.id, ami_port=self.ami_port,
                 sip=f"{self.sip_address}:{self.sip_port}", pid=self.process.pid)

    def stop_sync(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.cli_sync("core stop now", timeout=5)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        log.info("asterisk stopped", site=self.plan.site.id)

    async def start(self, timeout: float = 30.0) -> None:
        await asyncio.to_thread(self.start_sync, timeout)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    async def restart(self) -> None:
        """A switch restart: every channel gone, AstDB (and persistent queue members) kept."""
        await self.stop()
        await self.start()

    def tail(self, lines: int = 30) -> str:
        path = getattr(self, "_console", None)
        text = path.read_text(errors="replace") if path and path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def problems(self) -> list[str]:
        """ERROR and WARNING lines of the log, for the test that the render loads cleanly."""
        if not self.log_file.exists():
            return []
        return [line for line in self.log_file.read_text(errors="replace").splitlines()
                if re.search(r"\] (ERROR|WARNING)\[", line)]


def prepare(plan: Plan, workdir: Path, *, address: str = "127.0.0.1", operator_addresses: Iterable[str] = (),
            partners: dict[str, PartnerLink] | None = None, sip_port: int | None = None,
            rtp_base: int | None = None, extra_pjsip: str = "") -> RealAsterisk:
    """A configured (not yet started) Asterisk for ``plan`` on ``address``."""
    prefix = locate()
    sip_port = sip_port or free_sip_port(address)
    base = rtp_base or 20000 + (os.getpid() * 7 + sip_port) % 200 * 100
    local = localise(plan, bind=address, port=sip_port, operator_addresses=operator_addresses,
                     rtp=(base, base + 99), partners=partners)
    host = RealAsterisk(local, workdir, prefix, address, sip_port, free_port(), extra_pjsip=extra_pjsip)
    host.configure()
    return host
