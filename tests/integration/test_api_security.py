"""The control API as an attacker with a desk token, a forged header or a hostile body would use
it: per-desk authority, tokens that cannot be blank or bent, bodies refused with a 4xx and a
reason, and an audit trail that records who asked for what — allowed or not."""

from __future__ import annotations

import asyncio
import json
import os
import random
from pathlib import Path
from urllib.parse import quote, urlparse

import pytest
from sas_router.engine.api import Client, ClientError, bind_clients
from sas_router.engine.plan import load_plan
from sas_router.engine.settings import Settings, SettingsError

from tests.integration.harness import ROOT, Site, eventually, start_site

LRM1 = "lrm1-token-0123456789"
LRM2 = "lrm2-token-0123456789"


@pytest.fixture
async def site(tmp_path: Path):
    s = await start_site(journal_url=f"sqlite:///{tmp_path}/journal.sqlite3")
    yield s
    await s.close()


async def lrm1_talking(site: Site) -> str:
    """lrm-1 (desk 1001) in N1 talking to a 15 caller; lrm-2 (desk 1002) logged in N1 too."""
    one, two = site.desk("1001"), site.desk("1002", answer_after=30)
    for interface, token in ((one, LRM1), (two, LRM2)):
        status, body = await site.post("/api/agents/login", {"interface": interface, "queues": ["n1-arm"],
                                                             "name": interface[-4:], "role": "arm-n1"}, token)
        assert status == 200, body
    caller = site.call("15", "0612345678")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    assert call.current_leg.interface == one
    return call.call_id


async def test_a_desk_acts_on_its_own_phone_and_call_only(site: Site) -> None:
    call_id = await lrm1_talking(site)
    site.desk("2001")
    await site.login("PJSIP/2001", ["n2-amu"], "arm-amu")

    status, body = await site.post("/api/agents/pause", {"interface": "PJSIP/1001", "reason": "x"}, LRM2)
    assert status == 403 and "PJSIP/1001 is not a desk of lrm-2" in body["error"]
    assert not site.engine.tracker.agents["PJSIP/1001"].paused
    status, body = await site.post(f"/api/calls/{call_id}/qualify", {"level": "P1"}, LRM2)
    assert status == 403 and "neither talking to nor waiting for a desk of lrm-2" in body["error"]
    call = site.engine.tracker.call_by_id(call_id)
    assert call is not None and call.qualification == "" and call.current_leg.queue == "n1-arm"

    status, body = await site.post(f"/api/calls/{call_id}/qualify", {"level": "P1"}, LRM1)
    assert status == 200 and body["target"] == "n2-amu", body
    status, _ = await site.post("/api/agents/pause", {"interface": "PJSIP/1002", "reason": "pause"}, LRM2)
    assert status == 200
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="in AMU")
    status, _ = await site.post(f"/api/calls/{call_id}/transfer", {"queue": "n2-mg"}, "super-token")
    assert status == 200, "a supervisor acts on every call"


async def test_a_desk_may_take_a_caller_waiting_in_its_own_queue_but_not_in_another(site: Site) -> None:
    site.desk("1001", answer_after=60)
    status, _ = await site.post("/api/agents/login", {"interface": "PJSIP/1001", "queues": ["n1-arm"],
                                                      "name": "1001", "role": "arm-n1"}, LRM1)
    assert status == 200
    site.desk("2001", answer_after=60)
    await site.login("PJSIP/2001", ["n2-amu"], "arm-amu")  # someone to move the N1 caller to
    waiting_n1 = site.call("15", "0611111111")
    waiting_amu = site.call("0472000019", "0622222222")  # the SDMIS line straight to AMU: not lrm-1's queue
    engine = site.engine
    n1 = await eventually(lambda: engine.tracker.calls.get(waiting_n1.uniqueid), what="n1 call")
    amu = await eventually(lambda: engine.tracker.calls.get(waiting_amu.uniqueid), what="AMU call")
    await eventually(lambda: n1.current_visit is not None and amu.current_visit is not None, what="both wait")
    refused = await site.post(f"/api/calls/{amu.call_id}/transfer", {"queue": "n2-mg"}, LRM1)
    assert refused[0] == 403, refused
    status, body = await site.post(f"/api/calls/{n1.call_id}/transfer", {"queue": "n2-amu"}, LRM1)
    assert status == 200, body


async def test_a_desk_logs_in_only_its_own_declared_phone(site: Site) -> None:
    login = {"queues": ["n1-arm"], "name": "x", "role": "arm-n1"}
    status, body = await site.post("/api/agents/login", {**login, "interface": "PJSIP/1002"}, LRM1)
    assert status == 403 and "not a desk of lrm-1" in body["error"]
    status, body = await site.post("/api/agents/login", {**login, "interface": "Local/0899123456@attacker/n"},
                                   LRM1)
    assert status == 403 and "is not a desk of sas-69" in body["error"]
    assert "PJSIP/1002" not in site.engine.tracker.agents


async def test_every_control_request_is_in_the_audit_trail_and_the_journal(site: Site) -> None:
    call_id = await lrm1_talking(site)
    await site.post(f"/api/calls/{call_id}/qualify", {"level": "P1", "reason": "douleur"}, LRM2)
    await site.post("/api/agents/pause", {"interface": "PJSIP/1002", "reason": "café"}, "forged-token")
    await site.post(f"/api/calls/{call_id}/qualify", {"level": "P1", "reason": "douleur thoracique"}, LRM1)

    assert (await site.get("/api/audit", LRM1))[0] == 403, "desks do not read the audit trail"
    status, trail = await site.get(f"/api/audit?call={call_id}", "super-token")
    assert status == 200
    assert [(e["client"], e["action"], e["status"]) for e in reversed(trail)] == [
        ("lrm-2", "POST /api/calls/{call}/qualify", 403), ("lrm-1", "POST /api/calls/{call}/qualify", 200)]
    assert trail[0]["reason"] == "douleur thoracique" and trail[0]["target"] == "level=P1"
    status, everything = await site.get("/api/audit", "super-token")
    forged = [e for e in everything if e["client"] == "(no valid token)"]
    assert [(e["action"], e["status"]) for e in forged] == [("POST /api/agents/pause", 401)]
    logins = [e for e in everything if e["action"] == "POST /api/agents/login"]
    assert {(e["client"], e["target"]) for e in logins} == {("lrm-1", "interface=PJSIP/1001"),
                                                            ("lrm-2", "interface=PJSIP/1002")}


# --- tokens ------------------------------------------------------------------------------------

async def raw_request(site: Site, head: bytes, body: bytes = b"") -> tuple[int, dict[str, object]]:
    """An HTTP request written byte by byte (headers no client library would send)."""
    url = urlparse(site.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(head + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    payload = rest.partition(b"\r\n\r\n")[2]
    try:
        answer = json.loads(payload or b"{}")
    except ValueError:  # aiohttp's own refusal of a malformed request line or header: plain text
        answer = {"raw": payload.decode("utf-8", "replace")}
    return int(status_line.split()[1]), answer


@pytest.mark.parametrize("bearer", [b"Bearer \xe2\x80\x83\xe2\x80\x83", b"Bearer \xff\xfe", b"Bearer ",
                                    b"Bearer  super-token", b"bearer super-token"])
async def test_a_malformed_authorization_header_is_a_401_never_a_500(site: Site, bearer: bytes) -> None:
    status, body = await raw_request(site, b"POST /api/admin/resync HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                     + bearer + b"\r\nContent-Type: application/json\r\n", b"{}")
    assert status == 401 and body == {"error": "missing or unknown bearer token"}


async def test_a_control_character_in_a_header_is_refused_by_the_http_parser(site: Site) -> None:
    url = urlparse(site.base_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    writer.write(b"POST /api/admin/resync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer admin-token\x01\r\n"
                 b"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
    answer = await reader.read()
    writer.close()
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request"), answer[:80]


@pytest.mark.parametrize(("listed", "problem"), [
    ("tok-0123456789abcdef:sup-1:supervisor,,", "entry 2 is empty"),
    (":sup-1:supervisor", "a token is 16 to 256 visible ASCII characters"),
    ("short:sup-1:supervisor", "a token is 16 to 256 visible ASCII characters"),
    ("\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003\u2003:a:admin",
     "a token is 16 to 256 visible ASCII characters"),
    ("tok-0123456789abcdef:sup-1:supervisor,tok-0123456789abcdef:sup-2:admin", "already given to sup-1"),
    ("tok-0123456789abcdef:sup-1:supervisor,tok-fedcba9876543210:sup-1:admin", "sup-1 has two tokens"),
    ("tok-0123456789abcdef:lrm-1:desk", "names no desk"),
])
def test_weak_empty_or_repeated_tokens_stop_the_engine_at_start(monkeypatch: pytest.MonkeyPatch, listed: str,
                                                                problem: str) -> None:
    monkeypatch.setenv("SAS_API_TOKENS", listed)
    with pytest.raises(SettingsError, match=problem) as info:
        Settings().api_clients()
    assert "0123456789abcdef" not in str(info.value), "a refusal never prints a token"


def test_a_desk_token_binds_to_declared_desks_and_remote_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAS_API_TOKENS", "tok-0123456789abcdef:lrm-1:desk:1001-1003/0612345678")
    clients = Settings().api_clients()
    assert clients["tok-0123456789abcdef"] == Client("lrm-1", "desk", ("1001-1003", "0612345678"))
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    assert bind_clients(clients, plan)["lrm-1"] == {"PJSIP/1001", "PJSIP/1002", "PJSIP/1003",
                                                    "Local/0612345678@sas-remote-agent/n"}
    with pytest.raises(ClientError, match="desk 9999 is not declared by sas-69"):
        bind_clients({"t": Client("lrm-9", "desk", ("9999",))}, plan)


# --- bodies ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "reason"), [
    (b"[" * 50_000 + b"]" * 50_000, 413, "larger than"),
    (b"[" * 20_000 + b"]" * 20_000, 400, "the body nests too deeply"),
    (b'{"interface": "PJSIP/1001", "reason": "caf\xe9"}', 400, "not UTF-8"),
    (b'{"interface": ', 400, "the body is not JSON"),
    (b'"PJSIP/1001"', 400, "must be a JSON object"),
    (b'{"interface": "PJSIP/1001", "extra": 1}', 422, "extra"),
])
async def test_a_malformed_or_oversized_body_is_refused_with_its_reason(site: Site, body: bytes, status: int,
                                                                       reason: str) -> None:
    got, answer = await raw_request(site, b"POST /api/agents/pause HTTP/1.1\r\nHost: x\r\n"
                                    b"Authorization: Bearer super-token\r\nContent-Type: application/json\r\n", body)
    assert got == status and reason in str(answer["error"]), answer


# --- fuzzing -----------------------------------------------------------------------------------

HOSTILE_TEXT = ["", "P1", "n2-amu", "PJSIP/1001", "x\r\nAction: Hangup", "${SHELL(id)}", "\u2028", "\x00",
                "é" * 300, "../../etc/passwd", "Local/1@attacker/n", "1" * 100, "116117", "sas-38", "🚑"]


def hostile_value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return rng.choice(HOSTILE_TEXT)
    if kind == 1:
        return rng.choice([0, -1, 2**70, 1.5e308, float("nan")]) if rng.random() < 0.5 else rng.randrange(-5, 200)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randrange(0, 30)))
    if kind in (5, 6):
        keys = ["level", "queue", "interface", "reason", "queues", "role", "name", "line", "partner", "share",
                "enabled", "priority", "number", "medical_advice", "state_interface", "x"]
        return {rng.choice(keys): hostile_value(rng, depth + 1) for _ in range(rng.randrange(0, 6))}
    return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]


async def test_fuzzed_bodies_and_paths_never_crash_nor_reach_the_switch_unclean(site: Site) -> None:
    """A seeded stream of hostile bodies, path values and tokens on every POST route: every answer
    is a deliberate status (never a 500), and nothing sent to the switch carries a control character."""
    sent: list[dict[str, object]] = []
    original = site.engine.link._manager.send_action

    def spy(action, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(dict(action))
        return original(action, *args, **kwargs)

    site.engine.link._manager.send_action = spy
    site.desk("1001")
    await site.login("PJSIP/1001", ["n1-arm"], "arm-n1")
    caller = site.call("15", "0612345678")
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    routes = [path for method, path, _role, _summary in site.live.stack.api._routes if method == "POST"]
    rng = random.Random(20261202)
    statuses: dict[int, int] = {}
    for _ in range(400):
        path = rng.choice(routes)
        for name in ("call", "line", "queue"):
            value = rng.choice([call.call_id, call.uniqueid, *HOSTILE_TEXT[:6], "%0d%0aAction:%20Hangup"])
            path = path.replace("{" + name + "}", quote(str(value), safe="%"))
        token = rng.choice(["desk-token", "super-token", "admin-token", LRM2, "", "x" * 300])
        body = json.dumps(hostile_value(rng), allow_nan=True).encode() if rng.random() < 0.9 else os.urandom(64)
        got, _answer = await raw_request(site, f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
                                         + (f"Authorization: Bearer {token}\r\n".encode() if token else b"")
                                         + b"Content-Type: application/json\r\n", body)
        statuses[got] = statuses.get(got, 0) + 1
        assert got in (200, 400, 401, 403, 404, 409, 413, 422, 502, 503), (path, body[:200], got)
    assert statuses.get(401, 0) and statuses.get(400, 0) and statuses.get(422, 0), statuses
    for action in sent:
        for key, value in action.items():
            assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in f"{key}{value}"), action
    assert site.engine.link.connected and not caller.hungup
