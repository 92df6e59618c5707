"""`sas-router softswitch` and `sas-router run` as a new user starts them, in two processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    env = {**os.environ, "SAS_AMI_SECRET": "cli-secret", "SAS_API_TOKENS": "sup-token-0123456789:sup-1:supervisor"}
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
        status, queues = get(f"http://127.0.0.1:{http}/api/queues", "sup-token-0123456789")
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
    result = subprocess.run([sys.executable, "-m", "sas_router.simulator.demo_live", "--once", "--port", "0"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "AMU → MG" in result.stdout and "n1-arm(answered" in result.stdout
    assert "never hung up" in result.stdout


def post(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_emulator_control_api_drives_calls_desks_and_faults(tmp_path: Path) -> None:
    ami, http, control = free_port(), free_port(), free_port()
    env = {**os.environ, "SAS_AMI_SECRET": "cli-secret", "SAS_API_TOKENS": "sup-token-0123456789:sup-1:supervisor",
           "SAS_SOFTSWITCH_TOKEN": "switch-token-1"}
    config = tmp_path / "engine.yaml"
    config.write_text(f"ami: {{port: {ami}}}\nhttp: {{port: {http}}}\nlog_format: json\n")
    switch = subprocess.Popen([str(BIN), "softswitch", "--plan", "dialplans/sas-69.yaml", "--port", str(ami),
                               "--control-port", str(control), "--no-newexten"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    engine = None
    base, api = f"http://127.0.0.1:{control}", f"http://127.0.0.1:{http}"
    try:
        wait_for(lambda: get(f"{base}/channels")[0] == 401, "control API up, refusing a missing token")
        engine = subprocess.Popen([str(BIN), "run", "--plan", "dialplans/sas-69.yaml", "--config", str(config)],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: get(f"{api}/health")[1].get("ami") == "up", "engine on the emulator")
        assert post(f"{base}/calls", {"number": "15"}, "wrong-token")[0] == 401
        assert post(f"{base}/desks", {"extension": "1001", "answer_after": None}, "switch-token-1")[0] == 201
        status, _ = post(f"{api}/api/agents/login", {"interface": "PJSIP/1001", "queues": ["n1-arm"],
                                                      "name": "ARM Martin", "role": "arm-n1"}, "sup-token-0123456789")
        assert status == 200
        status, bad = post(f"{base}/calls", {"number": "15", "caller": "06\r\nAction: Hangup"}, "switch-token-1")
        assert status == 422 and "caller" in bad["error"]
        status, placed = post(f"{base}/calls", {"number": "15", "caller": "0612345678", "name": "Dupont"},
                              "switch-token-1")
        assert status == 201
        calls = wait_for(lambda: [c for c in get(f"{api}/api/calls", "sup-token-0123456789")[1]
                                  if c["uniqueid"] == placed["uniqueid"] and c["state"] == "waiting"], "call queued")
        assert calls[0]["line"] == "15"
        # The desk rings and answers on command, as the load simulator or a rehearsal would make it.
        wait_for(lambda: post(f"{base}/desks/1001/answer", {}, "switch-token-1")[0] == 200, "desk answers")
        wait_for(lambda: [c for c in get(f"{api}/api/calls", "sup-token-0123456789")[1]
                          if c["uniqueid"] == placed["uniqueid"] and c["state"] == "talking"], "call answered")
        # The desk's own transfer key (REFER), a number that is no queue's code: the caller is queued again.
        assert post(f"{base}/desks/1001/transfer", {"number": "12\r\nAction: Hangup"}, "switch-token-1")[0] == 422
        assert post(f"{base}/desks/1001/transfer", {"number": "12"}, "switch-token-1")[0] == 200
        wait_for(lambda: [c for c in get(f"{api}/api/calls", "sup-token-0123456789")[1]
                          if c["uniqueid"] == placed["uniqueid"] and c["state"] == "waiting"], "caller queued again")
        assert post(f"{base}/desks/1001/transfer", {"number": "200"}, "switch-token-1")[0] == 409  # not in a call
        # Faults: every AMI connection dropped, then the switch restarted: the engine comes back.
        assert post(f"{base}/faults/drop-ami", {}, "switch-token-1")[1]["dropped"] >= 1
        assert post(f"{base}/faults/restart", {}, "switch-token-1")[1]["restarted"] is True
        wait_for(lambda: get(f"{api}/health")[1].get("ami") == "up", "engine reconnected", timeout=20)
        wait_for(lambda: get(f"{api}/api/calls", "sup-token-0123456789")[1] == [], "the restart's hung-up call is gone")
    finally:
        for process in (engine, switch):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    output = switch.stdout.read().decode()  # type: ignore[union-attr]
    assert "control request refused" in output and "switch-token-1" not in output


def test_sighup_reloads_the_plan_and_a_bad_one_leaves_the_running_plan(tmp_path: Path) -> None:
    """What `systemctl reload sas-router` does: a broken plan is refused with its line and the
    engine keeps serving the old one; a good one is taken without a restart."""
    ami, http = free_port(), free_port()
    env = {**os.environ, "SAS_AMI_SECRET": "cli-secret", "SAS_API_TOKENS": "sup-token-0123456789:sup-1:supervisor"}
    config = tmp_path / "engine.yaml"
    config.write_text(f"ami: {{port: {ami}}}\nhttp: {{port: {http}}}\nlog_format: json\n")
    plan = tmp_path / "sas-69.yaml"
    original = (ROOT / "dialplans" / "sas-69.yaml").read_text(encoding="utf-8")
    plan.write_text(original, encoding="utf-8")
    switch = subprocess.Popen([str(BIN), "softswitch", "--plan", str(plan), "--port", str(ami)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    engine = None
    api = f"http://127.0.0.1:{http}"
    try:
        time.sleep(1.0)
        engine = subprocess.Popen([str(BIN), "run", "--plan", str(plan), "--config", str(config)],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: get(f"{api}/health")[1].get("ami") == "up", "engine up")

        plan.write_text(original.replace("  n2-mg:\n", "  N2_MG:\n", 1), encoding="utf-8")
        engine.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        queues = lambda: [q["queue"] for q in get(f"{api}/api/queues", "sup-token-0123456789")[1]]  # noqa: E731
        assert queues() == ["n1-arm", "n2-amu", "n2-mg", "pdsa", "psy"], "the running plan stays"

        plan.write_text(original.replace("queues:\n", "queues:\n  n2-ped: {role: specialist, specialty: pédiatrie}\n",
                                         1), encoding="utf-8")
        engine.send_signal(signal.SIGHUP)
        wait_for(lambda: "n2-ped" in queues(), "the new plan taken")
    finally:
        for process in (engine, switch):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)
    assert engine is not None
    out, err = engine.communicate()
    assert "plan reload refused; the running plan stays" in err
    assert "'N2_MG' is not a valid queue name" in err and "sas-69.yaml:" in err
    assert "plan reloaded: {'queues': ['+n2-ped']}" in out


def test_a_weak_or_unbound_token_stops_the_engine_before_it_serves(tmp_path: Path) -> None:
    env = {**os.environ, "SAS_AMI_SECRET": "cli-secret", "SAS_API_TOKENS": "short:lrm-1:desk:1001"}
    config = tmp_path / "engine.yaml"
    config.write_text(f"ami: {{port: {free_port()}}}\nhttp: {{port: {free_port()}}}\n")
    done = subprocess.run([str(BIN), "run", "--plan", "dialplans/sas-69.yaml", "--config", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "SAS_API_TOKENS entry 1 (lrm-1): token: Value error, a token is 16 to 256" in done.stderr
    env["SAS_API_TOKENS"] = "lrm1-token-0123456789:lrm-1:desk:9999"
    done = subprocess.run([str(BIN), "run", "--plan", "dialplans/sas-69.yaml", "--config", str(config)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "desk 9999 is not declared by sas-69" in done.stderr
    assert "lrm1-token-0123456789" not in done.stderr + done.stdout
