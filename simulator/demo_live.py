"""The live demo: an emulated Rhône switchboard, the routing engine and its control API, with
desks qualifying and transferring calls through the API as a telephony bar would.

``python -m sas_router.simulator.demo_live`` runs the script and keeps the site up until Ctrl-C (the API
token it prints works with curl); ``--once`` exits after the script (used by ``make demo`` in CI).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import secrets
from pathlib import Path

import aiohttp
from sas_router.engine.api import Client
from sas_router.engine.logs import configure_logging
from sas_router.engine.plan import contexts as C
from sas_router.engine.service import EngineOptions
from sas_router.simulator.live import LiveSite, eventually, start_live_site
from sas_router.simulator.softswitch.site import add_agent

ROOT = Path(__file__).resolve().parents[1]
#: Each demo step is given ten seconds (desks answer after one second).
_step = functools.partial(eventually, timeout=10.0)


def _table(site: LiveSite) -> None:
    for queue in site.engine.queues_view():
        print(f"    {queue['queue']:<7} waiting={queue['waiting']} longest={queue['longest_wait']:>4}s "
              f"agents logged={queue['logged_in']} available={queue['available']}")


async def run(once: bool, port: int) -> None:
    token = secrets.token_urlsafe(16)
    site = await start_live_site(ROOT / "dialplans" / "sas-69.yaml", {token: Client("demo-desk", "admin")},
                                 options=EngineOptions(confirm_within=2.0), http_port=port)
    headers = {"Authorization": f"Bearer {token}"}
    print(f"SAS du Rhône up: control API {site.base_url} (token {token}), AMI on 127.0.0.1:{site.server.port}")
    async with aiohttp.ClientSession(base_url=site.base_url, headers=headers) as http:
        await _step(lambda: site.engine.resyncs >= 1)
        desks = {"1001": ("n1-arm", "arm-n1", "ARM Martin"), "1002": ("n1-arm", "arm-n1", "ARM Diallo"),
                 "2001": ("n2-amu", "emergency-doctor", "Dr Petit"), "2002": ("n2-amu", "arm-amu", "ARM Leroy"),
                 "3001": ("n2-mg", "gp-regulator", "Dr Roux"), "3002": ("n2-mg", "gp-regulator", "Dr Morel"),
                 "4001": ("pdsa", "pdsa-regulator", "Dr Blanc")}
        for ext, (queue, role, name) in desks.items():
            add_agent(site.switch, ext, answer_after=1.0)
            async with http.post("/api/agents/login", json={"interface": f"PJSIP/{ext}", "queues": [queue],
                                                           "name": name, "role": role}) as resp:
                resp.raise_for_status()
        await _step(lambda: len(site.engine.tracker.agents) == len(desks))
        print(f"{len(desks)} desks logged in through the API:")
        _table(site)

        calls = [site.switch.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0612345678", caller_name="Dupont"),
                 site.switch.inbound_call(C.OPERATOR_ENDPOINT, "116117", caller_num="0478112233"),
                 site.switch.inbound_call(C.OPERATOR_ENDPOINT, "0472000019", caller_num="0472999999",
                                          caller_name="SDMIS")]
        print("a 15 call, a 116 117 call and an SIS call on the direct AMU line arrive:")
        tracker = site.engine.tracker
        await _step(lambda: sum(1 for c in tracker.calls.values() if c.current_leg) == 3)
        for ch in calls:
            call = tracker.calls[ch.uniqueid]
            leg = call.current_leg
            print(f"    {call.call_id}: line {call.line:<7} → {leg.queue if leg else '-':<7} answered by "
                  f"{leg.member_name if leg else '-'} after {call.visits[0].wait:.1f}s")

        first, second = (tracker.calls[c.uniqueid] for c in calls[:2])
        for call, level in ((first, "P1"), (second, "P2")):
            async with http.post(f"/api/calls/{call.call_id}/qualify", json={"level": level}) as resp:
                body = await resp.json()
            print(f"    desk qualifies {call.call_id} {level} → {body['target']} ({body['mechanism']})")
        await _step(lambda: first.current_leg is not None and first.current_leg.queue == "n2-amu"
                    and second.current_leg is not None and second.current_leg.queue in ("n2-mg", "pdsa"))
        async with http.post(f"/api/calls/{first.call_id}/transfer", json={"queue": "n2-mg",
                                                                        "reason": "avis MG"}) as resp:
            body = await resp.json()
        print(f"    the emergency doctor transfers {first.call_id} AMU → MG ({body['mechanism']})")
        await _step(lambda: first.current_leg is not None and first.current_leg.queue == "n2-mg")
        for call in (first, second):
            path = " → ".join(f"{v.queue}({v.outcome.value}, {v.wait:.1f}s)" for v in call.visits)
            print(f"    {call.call_id}: {path}; caller channel {call.channel} never hung up")
        _table(site)
        if not once:
            print("the site keeps running: try `curl -H 'Authorization: Bearer <token>' "
                  f"{site.base_url}/api/calls` — Ctrl-C stops it")
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
    await site.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="exit after the scripted calls")
    parser.add_argument("--port", type=int, default=8080, help="control API port (0 = any free port)")
    args = parser.parse_args()
    configure_logging("console" if not args.once else "json", level=30)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.once, args.port))
    print("demo stopped")


if __name__ == "__main__":
    main()
