"""The README's deployment commands, run as written against a real Asterisk 22.

The block marked ``admin-commands`` is read from the README and each line is run by bash, with only
the host's paths swapped for this test's (``/etc/asterisk``, the engine's settings file, the plan
moved onto loopback addresses). The PBX starts with its own files only; after the commands it
carries the site, the engine runs on it, and stops cleanly on SIGTERM as under systemd.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ruamel.yaml import YAML
from sas_router.engine.plan import load_plan

from tests.integration.switches import OPERATOR_ADDRESS, ROOT, real_asterisk_or_skip

VENV_BIN = Path(sys.executable).parent


def admin_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- admin-commands", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def loopback_plan(tmp_path: Path, sip_port: int) -> Path:
    """The Rhône's plan, its SIP moved onto this machine's loopback (its production addresses
    cannot be bound here); everything else as committed."""
    yaml = YAML()
    data = yaml.load((ROOT / "dialplans" / "sas-69.yaml").read_text(encoding="utf-8"))
    data["sip"].update({"bind": "127.0.0.1", "port": sip_port, "transports": ["udp", "tcp"],
                        "rtp": {"start": 30000, "end": 30099}})
    data["sip"]["operator"].update({"match": [f"{OPERATOR_ADDRESS}/32"], "host": "127.0.0.1"})
    data["partners"]["sas-38"].update({"host": "127.0.0.254", "port": 9, "transport": "udp",
                                       "match": ["127.0.0.254"]})
    path = tmp_path / "dialplans" / "sas-69.yaml"
    path.parent.mkdir()
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(data, out)
    return path


def test_the_readme_deployment_commands_put_a_site_on_a_real_asterisk(tmp_path: Path) -> None:
    real_asterisk_or_skip()
    from sas_router.simulator.real_asterisk import RealAsterisk, free_port, free_sip_port, locate

    commands = admin_commands()
    assert [c.split()[0] for c in commands] == ["sas-router", "sas-router", "sas-router", "asterisk",
                                                "SAS_AMI_SECRET=\"$(sed"]
    sip_port, http_port = free_sip_port("127.0.0.1"), free_port()
    plan_file = loopback_plan(tmp_path, sip_port)
    host = RealAsterisk(load_plan(plan_file), tmp_path / "pbx", locate(), "127.0.0.1", sip_port, free_port())
    host.write_host_files()  # the PBX before the SAS: no dialplan, no queues, no SAS user
    settings = tmp_path / "engine.yaml"
    settings.write_text(f"ami: {{host: 127.0.0.1, port: {host.ami_port}, username: sas-router}}\n"
                        f"http: {{host: 127.0.0.1, port: {http_port}}}\n"
                        f"journal: {{database: 'sqlite:///{tmp_path}/journal.sqlite3'}}\n"
                        "apply_presets: false\nlog_format: json\n", encoding="utf-8")
    asterisk = f"LD_LIBRARY_PATH={host.prefix}/lib {host.prefix}/sbin/asterisk -C {host.etc}/asterisk.conf"

    def localise(command: str) -> str:
        command = command.replace("/etc/asterisk", str(host.etc)).replace("/etc/sas-router/engine.yaml",
                                                                          str(settings))
        command = command.replace("dialplans/sas-69.yaml", str(plan_file))
        command = re.sub(r"^asterisk ", asterisk + " ", command)
        return command.replace("sas-router ", f"{VENV_BIN}/sas-router ")

    env = {**os.environ, "SAS_API_TOKENS": "tok-sup-0123456789abcdef:sup-1:supervisor"}
    for command in commands[:3]:
        done = subprocess.run(["bash", "-c", localise(command)], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert "#include sas-69/pjsip.conf" in (host.etc / "pjsip.conf").read_text()
    assert (host.etc / "sas-69" / "desk-secrets.conf").stat().st_mode & 0o077 == 0

    host.start_sync()  # systemctl start asterisk
    engine = None
    try:
        reload = subprocess.run(["bash", "-c", localise(commands[3])], capture_output=True, text=True, timeout=30,
                                check=False)
        assert reload.returncode == 0, reload.stdout + reload.stderr
        engine = subprocess.Popen(["bash", "-c", localise(commands[4])], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        health: dict[str, object] = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and health.get("resyncs", 0) == 0:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/health", timeout=1) as answer:
                    health = json.load(answer)
            except OSError:
                pass
            time.sleep(0.2)
        if health.get("status") != "ok":
            engine.kill()
            print(engine.communicate()[0])
        assert health.get("status") == "ok" and health.get("ami") == "up", health
        engine.send_signal(signal.SIGTERM)
        output, _ = engine.communicate(timeout=20)
        assert engine.returncode == 0 and "engine stopped" in output, output
    finally:
        if engine is not None and engine.poll() is None:
            engine.kill()
        host.stop_sync()
    assert host.problems() == []


def test_the_readme_names_every_module_the_render_loads() -> None:
    from sas_router.engine.plan.render import CHECKED_MODULES

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Deploying a site on its Asterisk", 1)[1].split("\n## ", 1)[0]
    assert [m for m in CHECKED_MODULES if m not in section] == []

