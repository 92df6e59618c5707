"""Reloading the site plan in a running engine, on the emulator and on a real Asterisk: a bad plan
is refused with its errors and the running plan stays; a good one is installed on the switch,
takes effect and says what changed — and a caller waiting through the reload is never dropped."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from sas_router.engine.reload import SWITCH_RELOADS
from sas_router.simulator.live import eventually

from tests.integration.harness import ROOT
from tests.integration.switches import Room, open_room

PEDIATRIC = {"role": "specialist", "specialty": "pédiatrie", "label": "Pédiatrie", "transfer_code": "600"}


@pytest.fixture
async def room(switch):
    r = await open_room(switch)
    yield r
    await r.close()
    if real(switch):  # the session's switch gets its own plan back for the next tests
        await asyncio.to_thread(switch.host.configure)
        for command in SWITCH_RELOADS:
            await switch.host.cli(command)


def real(switch: Any) -> bool:
    return getattr(switch, "name", "") == "asterisk"


def write_plan(switch: Any, directory: Path, edit: Any = None) -> Path:
    """The plan file the switch runs (its SIP and partner addresses as the test switch has them),
    optionally edited the way an admin would edit it."""
    yaml = YAML()
    data = yaml.load((ROOT / "dialplans" / "sas-69.yaml").read_text(encoding="utf-8"))
    plan = switch.plan
    if plan.sip is not None:
        data["sip"] = plan.sip.model_dump(mode="json", exclude_none=True, by_alias=True)
    for name, partner in plan.partners.items():
        data["partners"][name].update({"host": partner.host, "port": partner.port, "transport": partner.transport,
                                       "match": list(partner.match)})
    if edit is not None:
        edit(data)
    out = io.StringIO()
    yaml.dump(data, out)
    path = directory / "sas-69.yaml"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def managed(room: Room, switch: Any, path: Path) -> None:
    room.stack.api.plan_file = path
    room.stack.api.switch_config = switch.host.etc if real(switch) else None


async def test_a_bad_plan_is_refused_and_the_running_plan_stays(room: Room, switch: Any, tmp_path: Path) -> None:
    before = room.stack.engine.plan
    path = write_plan(switch, tmp_path, lambda d: d["queues"].__setitem__("n2-ped\nsame => n,System(x)", PEDIATRIC))
    managed(room, switch, path)
    leg = room.call("15", "0610000077")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")

    status, body = await room.post("/api/admin/plan/reload", {}, "admin-token")
    assert status == 422 and body["error"] == "plan refused; the running plan stays"
    assert any(":n2-ped\\nsame => n,System(x)" not in p and "is not a valid queue name" in p
               for p in body["problems"]), body
    assert room.stack.engine.plan is before
    if real(switch):
        assert "System(x)" not in (switch.host.etc / "sas-69" / "extensions.conf").read_text()
    assert (await room.post("/api/admin/plan/reload", {}, "super-token"))[0] == 403, "admins only"
    await room.waiting_in(call, "n1-arm")
    assert not leg.dropped


async def test_a_good_plan_takes_effect_on_the_switch_without_dropping_a_waiting_caller(
        room: Room, switch: Any, tmp_path: Path) -> None:
    managed(room, switch, write_plan(switch, tmp_path, lambda d: d["queues"].__setitem__("n2-ped", PEDIATRIC)))
    # Nobody serves N1 here: without this, N1's overflow rule may withdraw the waiting caller
    # towards the (absent) partner while the test moves it, and the switch refuses the second withdraw.
    status, body = await room.post("/api/overflow/n1-arm", {"enabled": False, "reason": "test du rechargement"},
                                   token="super-token")
    assert status == 200, body
    leg = room.call("15", "0610000078")
    call = await room.tracked(leg)
    await room.waiting_in(call, "n1-arm")

    status, body = await room.post("/api/admin/plan/reload", {}, "admin-token")
    assert status == 200, body
    assert body["changes"]["queues"] == ["+n2-ped"]
    assert "n2-ped" in room.stack.engine.plan.queues
    status, queues = await room.get("/api/queues")
    assert "n2-ped" in {q["queue"] for q in queues}
    if real(switch):
        assert any(line.startswith("dialplan reload") for line in body["switch"]), body["switch"]
        shown = await switch.host.cli("queue show n2-ped")
        assert shown.startswith("n2-ped has 0 calls"), shown
        # The new queue is a real destination at once: the waiting caller is moved into it.
        await room.desk("5001", ["n2-ped"], "psy", answer_after=None)
        status, moved = await room.post(f"/api/calls/{call.call_id}/transfer", {"queue": "n2-ped"}, "super-token")
        assert status == 200, moved
        await room.waiting_in(call, "n2-ped")
    else:
        assert body["switch"][0].startswith("the switch's files are not managed by this engine")
    audit = (await room.get("/api/audit?client=admin", "super-token"))[1]
    assert audit[0]["action"] == "POST /api/admin/plan/reload" and audit[0]["status"] == 200
    assert not leg.dropped


async def test_a_plan_that_removes_a_queue_in_use_is_refused(room: Room, switch: Any, tmp_path: Path) -> None:
    await room.desk("2001", ["n2-amu"], "arm-amu")
    managed(room, switch, write_plan(switch, tmp_path, _without_amu))
    status, body = await room.post("/api/admin/plan/reload", {}, "admin-token")
    assert status == 422
    assert body["problems"] == ["queue n2-amu is removed but 0 caller(s) and 1 desk(s) are still in it: "
                                "move them first"]
    await eventually(lambda: "n2-amu" in room.stack.engine.plan.queues, what="the running plan stays")


def _without_amu(data: Any) -> None:
    del data["queues"]["n2-amu"]
    for line in ("sis-amu", "atsu-amu"):
        data["lines"][line]["queue"] = "n1-arm"
    data["qualification"]["P1"] = "n2-mg"
    for queue in data["queues"].values():
        if queue.get("fallback", {}).get("queue") == "n2-amu":
            queue["fallback"]["queue"] = "n1-arm"
