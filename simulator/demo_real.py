"""The demo's calls on a real Asterisk 22, when this machine has one (``SAS_ASTERISK`` or the
release tarball beside the repository): the Rhône's plan installed as an admin installs it, the
engine on its AMI, desks as registered SIP phones, callers as SIP calls from the operator trunk's
address. Says plainly when there is no real switch, and which one ran.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import secrets
import shutil
from pathlib import Path

import aiohttp
from sas_router.engine.api import Client
from sas_router.engine.logs import configure_logging
from sas_router.engine.plan import load_plan
from sas_router.engine.service import EngineOptions
from sas_router.simulator.live import eventually, start_engine_stack
from sas_router.simulator.real_asterisk import AsteriskUnavailable, locate, prepare
from sas_router.simulator.sip_phone import Trunk, register_desk

ROOT = Path(__file__).resolve().parents[1]
OPERATOR, DESKS = "127.0.0.2", "127.0.0.3"
_step = functools.partial(eventually, timeout=15.0)


async def run(workdir: Path) -> bool:
    try:
        prefix = locate()
    except AsteriskUnavailable as exc:
        print(f"no real Asterisk here ({exc}); the steps above ran on the emulator only")
        return False
    shutil.rmtree(workdir, ignore_errors=True)
    host = prepare(load_plan(ROOT / "dialplans" / "sas-69.yaml"), workdir, operator_addresses=[OPERATOR])
    await host.start()
    version = (await host.cli("core show version")).strip().splitlines()[0]
    print(f"real switch: {version} from {prefix}, configured by `sas-router plan install` in {host.etc}")
    token = secrets.token_urlsafe(16)
    stack = await start_engine_stack(host.plan, {token: Client("demo-desk", "admin")}, ami_port=host.ami_port,
                                     secret=host.ami_secret, options=EngineOptions(confirm_within=3.0),
                                     recordings_path=host.run_dir / "spool" / "monitor")
    trunk = await Trunk.open(OPERATOR, (host.sip_address, host.sip_port))
    phones = []
    try:
        await _step(lambda: stack.engine.resyncs >= 1)
        async with aiohttp.ClientSession(base_url=stack.base_url,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            for ext, queue, role in (("1001", "n1-arm", "arm-n1"), ("2001", "n2-amu", "emergency-doctor"),
                                     ("3001", "n2-mg", "gp-regulator"), ("4001", "pdsa", "pdsa-regulator")):
                phones.append(await register_desk(extension=ext, password=host.desk_password(ext),
                                                  switch=(host.sip_address, host.sip_port), address=DESKS,
                                                  answer_after=1.0))
                async with http.post("/api/agents/login", json={"interface": f"PJSIP/{ext}", "queues": [queue],
                                                                "name": ext, "role": role}) as resp:
                    resp.raise_for_status()
            print("4 SIP desk phones registered (digest auth) and logged in through the API")
            leg = trunk.dial("15", "0612345678", name="Dupont", headers={"Geolocation": "<geo:45.76,4.83>"})
            tracker = stack.engine.tracker
            call = await _step(lambda: next((c for c in tracker.calls.values() if c.caller_num == "0612345678"), None))
            await _step(lambda: call.current_leg is not None)
            print(f"    a SIP caller dials 15: {call.call_id} answered in {call.current_leg.queue} by desk "
                  f"{call.current_leg.member_name}; geolocation {call.geolocation}")
            async with http.post(f"/api/calls/{call.call_id}/qualify", json={"level": "P1"}) as resp:
                body = await resp.json()
            print(f"    the N1 desk qualifies P1 → {body['target']} ({body['mechanism']})")
            await _step(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu")
            async with http.post(f"/api/calls/{call.call_id}/transfer", json={"queue": "n2-mg"}) as resp:
                body = await resp.json()
            print(f"    the emergency doctor transfers it AMU → MG ({body['mechanism']})")
            await _step(lambda: call.current_leg is not None and call.current_leg.queue == "n2-mg")
            path = " → ".join(f"{v.queue}({v.outcome.value})" for v in call.visits)
            print(f"    {call.call_id}: {path}; the caller's SIP side received no BYE: {not leg.dropped}")
            leg.hangup()
            await _step(lambda: call.ended_at is not None)
        return not leg.dropped
    finally:
        await trunk.close()
        for phone in phones:
            await phone.close()
        await stack.stop()
        await host.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "demo" / "asterisk")
    args = parser.parse_args()
    configure_logging("json", level=30)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.workdir))


if __name__ == "__main__":
    main()
