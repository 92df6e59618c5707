"""Benchmarks, run on demand (``make bench``), never as timed tests: they print figures.

1. Engine throughput on the recorded real-Asterisk AMI stream, against panoramisk's own parse
   of the same bytes (a ratio, same run): how much the call tracker costs on top of reading.
2. Memory per tracked call with 10 000 live calls.
3. Desk-perceived transfer latency on a live site over TCP and HTTP (real time): from the
   qualify request to the caller seen joining the target queue (the caller's gap), p50/p99, and
   the AMI action round trips behind it.
4. A whole simulated SAS day through the real engine (fast-forward): wall time, new calls per
   second sustained, AMI events per second, CPU, peak RSS.
5. On a real Asterisk 22 (when one is available): a transfer's caller gap through the engine
   beside the same BlindTransfer sent raw over AMI, p50/p99 and their ratio.
"""

from __future__ import annotations

import asyncio
import json
import platform
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from panoramisk.message import Message as PanoramiskMessage
from sas_router.engine.ami import as_event
from sas_router.engine.api import Client
from sas_router.engine.core.tracker import Tracker
from sas_router.engine.logs import configure_logging
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan import load_plan
from sas_router.simulator.day import DaySimulation
from sas_router.simulator.live import eventually, start_live_site
from sas_router.simulator.load import LoadProfile, local_midnight
from sas_router.simulator.softswitch.ami_codec import encode
from sas_router.simulator.softswitch.site import add_agent
from sas_router.simulator.transcripts import load_transcript

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "tests" / "fixtures" / "transcripts"
IDS = ("Uniqueid", "Linkedid", "DestUniqueid", "DestLinkedid", "Channel", "DestChannel")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def recorded_stream(replicas: int) -> list[bytes]:
    """Every event the real Asterisk sent in the recordings, repeated with fresh ids per copy."""
    events = [frame.message for path in sorted(RECORDINGS.glob("*.log")) for frame in load_transcript(path)
              if frame.is_event]
    blocks = []
    for copy in range(replicas):
        for message in events:
            pairs = [(k, f"{v}-{copy}" if k in IDS and v else v) for k, v in message.pairs]
            blocks.append(encode(pairs))
    return blocks


def bench_throughput() -> dict[str, Any]:
    blocks = recorded_stream(150)
    texts = [b.decode("ascii", "ignore").rstrip("\r\n") for b in blocks]
    started = time.perf_counter()
    for text in texts:
        PanoramiskMessage.from_line(text)
    parse = time.perf_counter() - started
    tracker = Tracker()
    clock = 1_800_000_000.0
    started = time.perf_counter()
    for index, text in enumerate(texts):
        message = PanoramiskMessage.from_line(text)
        tracker.feed(as_event(message), clock + index * 0.001)
    engine = time.perf_counter() - started
    return {"events": len(texts), "panoramisk_parse_events_per_s": round(len(texts) / parse),
            "engine_events_per_s": round(len(texts) / engine), "engine_over_parse": round(engine / parse, 2)}


def bench_memory(calls: int = 10_000) -> dict[str, Any]:
    tracker = Tracker()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for n in range(calls):
        uid = f"1800000000.{n}"
        base = {"Uniqueid": uid, "Linkedid": uid, "Channel": f"PJSIP/operator-{n:08x}"}
        for variable, value in ((C.VAR_LINE, "15"), (C.VAR_CALL_ID, f"sas-69-{uid}"), (C.VAR_CALLER_NUM, "0612"),
                                (C.VAR_PRIO, "3")):
            tracker.feed({"Event": "VarSet", **base, "Variable": f"__{variable}", "Value": value}, 1.8e9 + n)
        tracker.feed({"Event": "QueueCallerJoin", **base, "Queue": "n1-arm", "Position": "1", "Count": "1"},
                     1.8e9 + n)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(tracker.calls) == calls
    return {"calls": calls, "bytes_per_call": round(used / calls)}


async def bench_transfers(rounds: int = 200) -> dict[str, Any]:
    token = "bench"
    site = await start_live_site(ROOT / "dialplans" / "sas-69.yaml", {token: Client("bench", "admin")},
                                 record_events=False)
    gaps: list[float] = []
    # Event to action: the emulator stamps each caller's QueueCallerJoin as it writes it, and the
    # engine's reaction to it — the repeat-caller memo (DBPut sas-recent/<number>) — as it reads it.
    joined_at: dict[str, float] = {}
    reactions: list[float] = []
    site.switch.listeners.append(lambda event: joined_at.setdefault(event.get("CallerIDNum", ""),
                                                                    time.perf_counter())
                                 if event.name == "QueueCallerJoin" else None)
    handle = site.server._handle

    def stamped(session: Any, message: Any) -> None:
        if message.get("Action").lower() == "dbput" and message.get("Key") in joined_at:
            reactions.append(time.perf_counter() - joined_at[message.get("Key")])
        handle(session, message)
    site.server._handle = stamped  # type: ignore[method-assign]
    try:
        await eventually(lambda: site.engine.link.connected and site.engine.resyncs >= 1, what="engine up")
        async with aiohttp.ClientSession(base_url=site.base_url,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            # Ten N1 desks: each has a 5 s wrap-up after a transfer, the rounds must not wait for it.
            for ext, queue in [(str(1001 + i), "n1-arm") for i in range(10)] + [(str(2001 + i), "n2-amu")
                                                                               for i in range(8)]:
                add_agent(site.switch, ext, answer_after=0.0)
                async with http.post("/api/agents/login", json={"interface": f"PJSIP/{ext}", "queues": [queue],
                                                                "name": ext, "role": "arm-n1"}) as response:
                    response.raise_for_status()
            await eventually(lambda: len(site.engine.tracker.agents) == 18, what="desks")
            site.engine.link.latencies.clear()
            for n in range(rounds):
                channel = site.switch.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num=f"06{n:08d}")
                assert channel is not None
                site.server._wake.set()
                call = await eventually(lambda ch=channel: (c := site.engine.tracker.calls.get(ch.uniqueid))
                                        and c.current_leg and c, timeout=15, what="N1 answer")
                started = time.perf_counter()
                async with http.post(f"/api/calls/{channel.uniqueid}/qualify", json={"level": "P1"}) as response:
                    response.raise_for_status()
                while call.current_queue != "n2-amu":
                    await asyncio.sleep(0)
                gaps.append(time.perf_counter() - started)
                site.switch.request_hangup(channel, 16, soft=False)
                site.server._wake.set()
        latencies = list(site.engine.link.latencies)
    finally:
        await site.stop()
    return {"transfers": len(gaps), "event_to_action_p50_ms": round(1000 * percentile(reactions, 0.5), 2),
            "event_to_action_p99_ms": round(1000 * percentile(reactions, 0.99), 2),
            "caller_gap_p50_ms": round(1000 * percentile(gaps, 0.5), 2),
            "caller_gap_p99_ms": round(1000 * percentile(gaps, 0.99), 2),
            "ami_action_p50_ms": round(1000 * percentile(latencies, 0.5), 2),
            "ami_action_p99_ms": round(1000 * percentile(latencies, 0.99), 2)}


async def bench_real_transfers(rounds: int = 40) -> dict[str, Any] | None:
    """The caller's gap of an N1 -> N2 AMU transfer on a real Asterisk 22: through the engine (HTTP
    qualify -> Setvar + BlindTransfer -> the caller joins n2-amu) beside the same BlindTransfer
    sent raw over AMI, alternating in one run, measured on a separate AMI session's
    QueueCallerJoin. SIP desks (answer at once) and SIP callers are real user agents."""
    import shutil

    from panoramisk import Manager
    from sas_router.simulator.live import start_engine_stack
    from sas_router.simulator.real_asterisk import AsteriskUnavailable, prepare
    from sas_router.simulator.sip_phone import Trunk, register_desk

    workdir = ROOT / "var" / "bench-asterisk"
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        host = prepare(load_plan(ROOT / "dialplans" / "sas-69.yaml"), workdir, operator_addresses=["127.0.0.2"])
    except AsteriskUnavailable as exc:
        print(f"5. skipped: {exc}")
        return None
    await host.start()
    token = "bench"
    stack = await start_engine_stack(host.plan, {token: Client("bench", "admin")}, ami_port=host.ami_port,
                                     secret=host.ami_secret, supervise=False)
    switch = (host.sip_address, host.sip_port)
    trunk = await Trunk.open("127.0.0.2", switch)
    listener = Manager(host="127.0.0.1", port=host.ami_port, username="sas-router", secret=host.ami_secret,
                       ping_delay=0)
    joined: dict[tuple[str, str], float] = {}
    desk_leg: dict[str, str] = {}

    def on_event(_: Any, event: Any) -> None:
        if event.get("Event") == "QueueCallerJoin":
            joined.setdefault((event.get("CallerIDNum"), event.get("Queue")), time.perf_counter())
        elif event.get("Event") == "AgentConnect":
            desk_leg[event.get("CallerIDNum")] = event.get("DestChannel")

    listener.register_event("*", on_event)
    await listener.connect()
    phones = []
    gaps: dict[str, list[float]] = {"engine": [], "raw": []}
    try:
        await eventually(lambda: stack.engine.resyncs >= 1, what="engine up")
        async with aiohttp.ClientSession(base_url=stack.base_url,
                                         headers={"Authorization": f"Bearer {token}"}) as http:
            for ext, queue in [(str(1001 + i), "n1-arm") for i in range(10)] + [(str(2001 + i), "n2-amu")
                                                                               for i in range(10)]:
                phones.append(await register_desk(extension=ext, password=host.desk_password(ext), switch=switch,
                                                  address="127.0.0.3", answer_after=0.0))
                async with http.post("/api/agents/login", json={"interface": f"PJSIP/{ext}", "queues": [queue],
                                                                "name": ext, "role": "arm-n1"}) as response:
                    response.raise_for_status()
            for n in range(rounds):
                mode = "engine" if n % 2 == 0 else "raw"
                number = f"0691{n:06d}"
                leg = trunk.dial("15", number)
                call = await eventually(lambda num=number: next((c for c in stack.engine.tracker.calls.values()
                                                                  if c.caller_num == num and c.current_leg), None),
                                        timeout=15, what="N1 answer")
                await eventually(lambda num=number: num in desk_leg, what="AgentConnect")
                started = time.perf_counter()
                if mode == "engine":
                    async with http.post(f"/api/calls/{call.call_id}/qualify", json={"level": "P1"}) as response:
                        response.raise_for_status()
                else:
                    await listener.send_action({"Action": "BlindTransfer", "Channel": desk_leg[number],
                                                "Context": C.CTX_ROUTE, "Exten": C.route_to_queue("n2-amu")})
                await eventually(lambda num=number: (num, "n2-amu") in joined, timeout=10, what="joined N2")
                gaps[mode].append(joined[(number, "n2-amu")] - started)
                leg.hangup()
                await asyncio.sleep(1.0)  # N2 desks' 10 s wrap-up: ten desks, one call a second
    finally:
        listener.close()
        await trunk.close()
        for phone in phones:
            await phone.close()
        await stack.stop()
        await host.stop()
    engine_p99, raw_p99 = percentile(gaps["engine"], 0.99), percentile(gaps["raw"], 0.99)
    return {"rounds": rounds,
            "engine_gap_p50_ms": round(1000 * percentile(gaps["engine"], 0.5), 2),
            "engine_gap_p99_ms": round(1000 * engine_p99, 2),
            "raw_gap_p50_ms": round(1000 * percentile(gaps["raw"], 0.5), 2),
            "raw_gap_p99_ms": round(1000 * raw_p99, 2),
            "p99_ratio": round(engine_p99 / raw_p99, 2)}


async def bench_resync(calls: int = 1000) -> dict[str, Any]:
    """A fresh engine logging in to a switch carrying ``calls`` live calls, half waiting in queues
    and half talking with desks: the time from the AMI login to a consistent picture (every call
    tracked, with its tags, visits and desks)."""
    token = "bench"
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    site = await start_live_site(ROOT / "dialplans" / "sas-69.yaml", {token: Client("bench", "admin")},
                                 record_events=False, plan=plan)
    try:
        await eventually(lambda: site.engine.resyncs >= 1, what="engine up")
        # Every desk the Rhône declares in four queues (150), all answering at once; the rest wait.
        desks = [(f"{1001 + i}", "n1-arm") for i in range(60)] + [(f"{2001 + i}", "n2-amu") for i in range(40)] + \
                [(f"{3001 + i}", "n2-mg") for i in range(30)] + [(f"{4001 + i}", "pdsa") for i in range(20)]
        for extension, queue in desks:
            add_agent(site.switch, extension, answer_after=0.0)
            await site.engine.agent_login(f"PJSIP/{extension}", [queue], name=extension, role="bench", by="bench")
        numbers = ["15", "0472000019", "0472000021", "0472333333"]
        for n in range(calls):
            site.switch.inbound_call(C.OPERATOR_ENDPOINT, numbers[n % 4], caller_num=f"07{n:08d}")
        site.server._wake.set()
        await eventually(lambda: len(site.switch.channels) >= calls, timeout=60, what="calls placed")
        await eventually(lambda: len(site.engine.tracker.calls) >= calls, timeout=60, what="calls tracked")
        await asyncio.sleep(1.0)
        await site.stack.engine.stop()
        started = time.perf_counter()
        engine = await site.restart_engine()
        await eventually(lambda: engine.resyncs >= 1, timeout=60, what="resynchronised")
        elapsed = time.perf_counter() - started
        tracked = len(engine.tracker.calls)
        waiting = sum(1 for c in engine.tracker.calls.values() if c.state.value == "waiting")
    finally:
        await site.stop()
    return {"live_calls": tracked, "waiting": waiting, "talking": tracked - waiting,
            "connect_to_consistent_s": round(elapsed, 3)}


async def bench_day() -> dict[str, Any]:
    plan_file = ROOT / "dialplans" / "sas-69.yaml"
    plan = load_plan(plan_file)
    cpu = time.process_time()
    sim = DaySimulation(plan, plan_file, LoadProfile(), start=local_midnight(plan, "2026-11-24"), duration=86400)
    try:
        result = await sim.run()
        latencies = list(sim.site.engine.link.latencies) if sim.site else []
    finally:
        await sim.close()
    sas = result.summary["sas"]
    return {"calls": result.planned_calls, "wall_seconds": round(result.wall_seconds, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "new_calls_per_s": round(result.planned_calls / result.wall_seconds, 1),
            "ami_events": result.ami_events, "ami_events_per_s": round(result.ami_events / result.wall_seconds),
            "ami_action_p50_ms": round(1000 * percentile(latencies, 0.5), 2) if latencies else None,
            "ami_action_p99_ms": round(1000 * percentile(latencies, 0.99), 2) if latencies else None,
            "qs30": sas["qs30"], "abandoned": sas.get("abandoned", 0)}


def main() -> None:
    configure_logging("console", level=40)
    machine = f"{platform.machine()}, {platform.processor() or 'cpu'}, Python {platform.python_version()}"
    print(f"sas-router benchmarks on {machine}")
    figures: dict[str, Any] = {"machine": machine}
    figures["throughput"] = bench_throughput()
    t = figures["throughput"]
    print(f"1. recorded stream, {t['events']} events: panoramisk parse {t['panoramisk_parse_events_per_s']:,} ev/s, "
          f"parse + tracker {t['engine_events_per_s']:,} ev/s (x{t['engine_over_parse']} the parse alone)")
    figures["memory"] = bench_memory()
    memory = figures["memory"]
    print(f"2. {memory['calls']:,} live calls tracked: {memory['bytes_per_call']:,} bytes per call")
    figures["transfers"] = asyncio.run(bench_transfers())
    t = figures["transfers"]
    print(f"3. {t['transfers']} transfers N1 -> N2 over TCP/HTTP: caller gap p50 {t['caller_gap_p50_ms']} ms, "
          f"p99 {t['caller_gap_p99_ms']} ms; AMI actions p50 {t['ami_action_p50_ms']} ms, "
          f"p99 {t['ami_action_p99_ms']} ms; AMI event to the engine's action (QueueCallerJoin -> DBPut) "
          f"p50 {t['event_to_action_p50_ms']} ms, p99 {t['event_to_action_p99_ms']} ms")
    figures["real_transfers"] = asyncio.run(bench_real_transfers())
    r = figures["real_transfers"]
    if r is not None:
        print(f"5. real Asterisk 22, {r['rounds']} transfers N1 -> N2 AMU with SIP desks and callers: caller gap "
              f"through the engine p50 {r['engine_gap_p50_ms']} ms, p99 {r['engine_gap_p99_ms']} ms; the same "
              f"BlindTransfer raw over AMI p50 {r['raw_gap_p50_ms']} ms, p99 {r['raw_gap_p99_ms']} ms; "
              f"p99 ratio x{r['p99_ratio']} (target <= 1.5)")
    figures["resync"] = asyncio.run(bench_resync())
    r = figures["resync"]
    print(f"6. engine (re)start onto {r['live_calls']} live calls ({r['waiting']} waiting, {r['talking']} talking): "
          f"from connecting to a consistent state in {r['connect_to_consistent_s']} s (target < 1 s)")
    figures["day"] = asyncio.run(bench_day())
    d = figures["day"]
    print(f"4. simulated 24 h day, {d['calls']} calls: {d['wall_seconds']} s wall, {d['cpu_seconds']} s CPU, "
          f"{d['new_calls_per_s']} new calls/s, {d['ami_events_per_s']:,} AMI events/s; AMI actions p50 "
          f"{d['ami_action_p50_ms']} ms, p99 {d['ami_action_p99_ms']} ms; QS30 {d['qs30']:.1%}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["peak_rss_mb"] = round(peak)
    print(f"peak RSS of the whole run: {peak:.0f} MB")
    out = ROOT / "var" / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    print(f"figures written to {out.relative_to(ROOT)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
