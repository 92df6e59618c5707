"""`sas-router softswitch` and `sas-router run` as a new user starts them, in two processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "sas-router"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_engine_runs_against_the_emulator_from_the_command_line(tmp_path: Path) -> None:
    ami, http = free_port(), free_port()
    env = {**os.environ, "SAS_AMI_SECRET": "cli-secret", "SAS_API_TOKENS": "sup-token:sup-1:supervisor"}
    config = tmp_path / "engine.yaml"
    config.write_text(f"ami: {{port: {ami}}}\nhttp: {{port: {http}}}\nlog_format: json\n")
    switch = subprocess.Popen([str(BIN), "softswitch", "--plan", "dialplans/sas-69.yaml", "--port", str(ami)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = None
    try:
        time.sleep(1.0)
        engine = subprocess.Popen([str(BIN), "run", "--plan", "dialplans/sas-69.yaml", "--config", str(config)],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline, health = time.monotonic() + 15, {}
        while time.monotonic() < deadline:
            try:
                _, health = get(f"http://127.0.0.1:{http}/health")
                if health.get("ami") == "up":
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.2)
        assert health.get("ami") == "up" and health.get("site") == "sas-69"
        assert get(f"http://127.0.0.1:{http}/api/queues")[0] == 401
        status, queues = get(f"http://127.0.0.1:{http}/api/queues", "sup-token")
        assert status == 200 and [q["queue"] for q in queues] == ["n1-arm", "n2-amu", "n2-mg", "pdsa", "psy"]
    finally:
        for process in (engine, switch):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    assert engine is not None
    logs = engine.stderr.read().decode()  # type: ignore[union-attr]
    assert '"event": "resynchronised"' in logs and "cli-secret" not in logs


def test_the_live_demo_routes_and_transfers_calls() -> None:
    result = subprocess.run([sys.executable, "-m", "simulator.demo_live", "--once", "--port", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "AMU → MG" in result.stdout and "n1-arm(answered" in result.stdout
    assert "never hung up" in result.stdout
