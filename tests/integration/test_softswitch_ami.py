"""The emulator's AMI server over real TCP: Asterisk's answers, panoramisk unmodified, bad input."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from panoramisk import Manager
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Softswitch
from sas_router.simulator.softswitch.server import AmiServer

ETC = Path(__file__).resolve().parents[1] / "fixtures" / "transcripts" / "asterisk-etc"


@pytest.fixture
async def server():
    sw = Softswitch((ETC / "extensions.conf").read_text(), (ETC / "queues.conf").read_text(),
                    scheduler=Scheduler(virtual=False))
    srv = AmiServer(sw)
    await srv.start()
    yield srv
    await srv.stop()


async def raw(port: int, payload: bytes, wait: float = 0.2) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    await writer.drain()
    await asyncio.sleep(wait)
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 0.3):
            data += chunk
    except TimeoutError:
        pass
    writer.close()
    return data


LOGIN = b"Action: Login\r\nActionID: 1\r\nUsername: engine\r\nSecret: engine-secret\r\n\r\n"


async def test_banner_and_login(server) -> None:
    data = await raw(server.port, LOGIN)
    assert data.startswith(b"Asterisk Call Manager/11.0.0\r\n")
    assert b"Response: Success\r\nActionID: 1\r\nMessage: Authentication accepted\r\n\r\n" in data
    assert b"Event: FullyBooted\r\nPrivilege: system,all\r\n" in data


async def test_bad_login_is_refused_and_the_connection_closed(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"Action: Login\r\nActionID: 7\r\nUsername: engine\r\nSecret: wrong\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 2)  # read() returns only at EOF: the server closed it
    assert data.endswith(b"Response: Error\r\nActionID: 7\r\nMessage: Authentication failed\r\n\r\n")
    writer.close()


async def test_actions_before_login_are_denied(server) -> None:
    data = await raw(server.port, b"Action: Ping\r\nActionID: 2\r\n\r\n")
    assert b"Response: Error\r\nActionID: 2\r\nMessage: Permission denied\r\n" in data


async def test_garbage_missing_action_and_unknown_action(server) -> None:
    payload = (LOGIN + b"this is not a header\r\n\r\nFoo: bar\r\nActionID: 3\r\n\r\n"
               b"Action: Frobnicate\r\nActionID: 4\r\n\r\n")
    data = await raw(server.port, payload + b"Action: Ping\r\nActionID: 5\r\n\r\n")
    assert b"Response: Error\r\nActionID: 3\r\nMessage: Missing action in request\r\n" in data
    assert (b"Response: Error\r\nActionID: 4\r\nMessage: Invalid/unknown command: Frobnicate. "
            b"Use Action: ListCommands to show available commands.\r\n") in data
    assert b"Ping: Pong" in data


async def test_huge_frame_closes_that_connection_only(server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(LOGIN)
    await writer.drain()
    greeting = await asyncio.wait_for(reader.readuntil(b"Status: Fully Booted\r\n\r\n"), 2)
    assert b"Message: Authentication accepted" in greeting
    writer.write(b"Action: Ping\r\nX: " + b"A" * 200_000 + b"\r\n\r\n")
    await writer.drain()
    rest = b""
    # EOF, or a reset since the server closed with our unread bytes pending: either way, dropped.
    with contextlib.suppress(ConnectionResetError):
        rest = await asyncio.wait_for(reader.read(), 3)
    assert b"Pong" not in rest
    writer.close()
    assert b"Ping: Pong" in await raw(server.port, LOGIN + b"Action: Ping\r\n\r\n")


async def test_carriage_return_inside_a_value_does_not_start_an_action(server) -> None:
    payload = LOGIN + b"Action: UserEvent\r\nActionID: 9\r\nUserEvent: probe\r\nNote: x\rAction: Hangup\r\n\r\n"
    data = await raw(server.port, payload)
    assert b"ActionID: 9\r\nMessage: Event Sent" in data
    assert b"Channel Hungup" not in data and b"No channel specified" not in data


async def test_panoramisk_drives_a_call_through_a_queue(server) -> None:
    manager = Manager(host="127.0.0.1", port=server.port, username="engine", secret="engine-secret",
                      ping_delay=0, reconnect_timeout=0.1)
    events: list[str] = []
    manager.register_event("*", lambda _m, message: events.append(message.event))
    await manager.connect()
    try:
        added = await manager.send_action({"Action": "QueueAdd", "Queue": "n1-arm",
                                           "Interface": "Local/1001@agents/n", "MemberName": "1001"}, as_list=False)
        assert added.message == "Added interface to queue"
        again = await manager.send_action({"Action": "QueueAdd", "Queue": "n1-arm",
                                           "Interface": "Local/1001@agents/n"}, as_list=False)
        assert (again.response, again.message) == ("Error", "Unable to add interface: Already there")
        result = await manager.send_action({"Action": "Originate", "Channel": "Local/15@from-pstn",
                                            "Context": "caller", "Exten": "talk", "Priority": "1",
                                            "Async": "true", "CallerID": "Dupont <0612345678>"})
        assert result[-1].event == "OriginateResponse" and result[-1].response == "Success"
        for _ in range(50):
            if "AgentConnect" in events:
                break
            await asyncio.sleep(0.1)
        channels = await manager.send_action({"Action": "CoreShowChannels"})
        apps = {m.channel: m.application for m in channels if m.get("Event") == "CoreShowChannel"}
        caller = next(name for name in apps if name.startswith("Local/15@from-pstn") and name.endswith(";2"))
        assert apps[caller] == "Queue"
        order = [e for e in events if e in ("QueueCallerJoin", "QueueCallerLeave", "AgentConnect")]
        assert order == ["QueueCallerJoin", "QueueCallerLeave", "AgentConnect"]
        hung = await manager.send_action({"Action": "Hangup", "Channel": caller.replace(";2", ";1")})
        assert hung.message == "Channel Hungup"
        for _ in range(30):
            if "AgentComplete" in events:
                break
            await asyncio.sleep(0.1)
        assert "AgentComplete" in events
    finally:
        manager.close()


async def test_the_rendered_manager_conf_decides_which_events_the_engine_gets() -> None:
    from sas_router.engine.plan import contexts as C
    from sas_router.engine.plan import load_plan
    from sas_router.simulator.softswitch.site import add_agent, ami_users, build_site

    plan = load_plan(Path(__file__).resolve().parents[2] / "dialplans" / "sas-69.yaml")
    users = ami_users(plan, {"sas-router": "s3cret"})
    assert set(users) == {"sas-router"} and "!Event: Newexten" in users["sas-router"].eventfilters
    sw = build_site(plan, Scheduler(virtual=False))
    srv = AmiServer(sw, users)
    await srv.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"Action: Login\r\nUsername: sas-router\r\nSecret: s3cret\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        add_agent(sw, "1001", answer_after=0.05)
        sw.queues.add_member("n1-arm", "PJSIP/1001")
        assert sw.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0612345678") is not None
        srv._wake.set()
        data = b""
        with contextlib.suppress(TimeoutError):  # the greeting plays first: wait for the desk's answer
            while b"Event: AgentConnect" not in data and (chunk := await asyncio.wait_for(reader.read(65536), 5)):
                data += chunk
        writer.close()
    finally:
        await srv.stop()
    names = {line.split(b": ", 1)[1] for line in data.split(b"\r\n") if line.startswith(b"Event: ")}
    assert {b"QueueCallerJoin", b"AgentConnect", b"VarSet", b"Newchannel", b"FullyBooted"} <= names
    # Filtered out by the rendered eventfilter lines, or not in the user's read classes (security).
    assert not names & {b"Newexten", b"DeviceStateChange", b"SuccessfulAuth"}


async def test_atxfer_answers_with_manager_c_checks_in_order(server) -> None:
    frames = (b"Action: Atxfer\r\nActionID: 2\r\nExten: 200\r\n\r\n"
              b"Action: Atxfer\r\nActionID: 3\r\nChannel: Local/1001@agents-00000001;1\r\n\r\n"
              b"Action: Atxfer\r\nActionID: 4\r\nChannel: Local/1001@agents-00000001;1\r\nExten: 200\r\n\r\n")
    data = await raw(server.port, LOGIN + frames)
    assert b"ActionID: 2\r\nMessage: No channel specified\r\n" in data
    assert b"ActionID: 3\r\nMessage: No extension specified\r\n" in data
    assert b"ActionID: 4\r\nMessage: Channel specified does not exist\r\n" in data
