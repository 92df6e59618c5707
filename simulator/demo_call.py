"""A short scripted call through the emulated Rhône SAS, printed as it happens (demo step).

Runs on a virtual clock: a 15 call, a withheld 15 call and an SIS call arrive, an ARM picks up,
the supervisor's view of each queue is printed. The engine joins this demo with the routing issue.
"""

from __future__ import annotations

from pathlib import Path

from sas_router.engine.plan import contexts as C
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.model import Event
from sas_router.simulator.softswitch.site import add_agent, build_site

SHOWN = {"QueueCallerJoin", "QueueCallerLeave", "AgentCalled", "AgentConnect", "AgentComplete",
         "QueueCallerAbandon", "DialBegin", "DialEnd"}


ROOT = Path(__file__).resolve().parents[1]


def main(root: Path = ROOT) -> None:
    clock = Scheduler(start=1_795_420_800.0)  # a Tuesday, 10:00 in Lyon
    switch = build_site(root / "dialplans" / "sas-69.yaml", clock)
    start = clock.now

    def show(event: Event) -> None:
        if event.name in SHOWN:
            what = " ".join(f"{k}={event.get(k)}" for k in ("Queue", "Channel", "DestChannel", "MemberName",
                                                           "HoldTime", "DialStatus", "Reason") if event.get(k))
            print(f"  t+{clock.now - start:5.1f}s  {event.name:<18} {what}")

    switch.listeners.append(show)
    add_agent(switch, "1001", answer_after=3, talk_for=20)
    switch.queues.add_member("n1-arm", "PJSIP/1001", "ARM Martin")
    print("15 call from 06 12 34 56 78, a withheld 15 call, then an SIS call; one ARM on N1:")
    switch.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0612345678", caller_name="Dupont")
    clock.advance(0.2)
    withheld = switch.inbound_call(C.OPERATOR_ENDPOINT, "15", caller_num="0611223344", withheld=True)
    clock.advance(0.2)
    switch.inbound_call(C.OPERATOR_ENDPOINT, "0472000018", caller_num="0472999999", caller_name="SDMIS")
    clock.advance(60)
    print(f"withheld caller shown to the desk as {withheld.variables.get(C.VAR_CALLER_NUM)} (15 unmasks)")
    for name, queue in switch.queues.queues.items():
        print(f"  queue {name:<7} waiting={len(queue.callers)} completed={queue.completed}")


if __name__ == "__main__":
    main()
