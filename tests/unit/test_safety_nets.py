"""Two rules the room relies on and that nothing else would notice missing (a removed rule must
fail here): the transfer that is never seen arriving sends the caller back to the front of a
queue, and QS30 counts a caller's wait from the first queue they joined, not the last."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sas_router.engine.core.calls import AgentLeg, Call, QueueVisit, VisitOutcome
from sas_router.engine.core.notices import Notice
from sas_router.engine.plan import load_plan
from sas_router.engine.service import Engine, EngineOptions
from sas_router.supervision.figures import Figures, ratios

from tests.stubs import StubLink

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan(ROOT / "dialplans" / "sas-69.yaml")
UID, CHANNEL = "1795510800.1", "PJSIP/operator-00000001"


def _event(name: str, **fields: str) -> dict[str, str]:
    return {"Event": name, "Uniqueid": UID, "Linkedid": UID, "Channel": CHANNEL, **fields}


async def test_a_transfer_never_seen_arriving_sends_the_caller_to_the_front_of_a_queue() -> None:
    link = StubLink()
    engine = Engine(plan=PLAN, link_factory=lambda _e: link, options=EngineOptions(confirm_within=0.05))  # type: ignore[arg-type,return-value]
    for variable, value in (("__SAS_LINE", "15"), ("__SAS_CALL_ID", f"sas-69-{UID}"), ("__SAS_PRIO", "5")):
        engine.on_event(_event("VarSet", Variable=variable, Value=value))
    engine.on_event(_event("QueueCallerJoin", Queue="n1-arm", Position="1", Count="1"))
    await engine.transfer(UID, "n2-amu", by="sup-1", reason="test")
    assert [a["Action"] for a in link.sent] == ["Setvar", "QueueWithdrawCaller"]
    # The switch lets the caller out of N1 ... and it never joins N2 AMU (a dialplan gone wrong).
    engine.on_event(_event("QueueCallerLeave", Queue="n1-arm", Position="1", Count="0"))
    await asyncio.sleep(0.3)
    redirect = [a for a in link.sent if a["Action"] == "Redirect"]
    assert len(redirect) == 1 and redirect[0]["Channel"] == CHANNEL, link.sent
    priority = [a for a in link.sent if a["Action"] == "Setvar"][-1]
    assert priority["Value"] == str(PLAN.front_priority_for("15"))  # the front of the urgent band
    assert engine.tracker.calls[UID].transfers[-1].fallback_queue


def test_qs30_counts_the_wait_from_the_first_queue_joined() -> None:
    """20 s in N1, then the caller moves to N2 AMU and is answered 15 s later: the caller waited
    35 s, not 15 — not under 30 s."""
    figures = Figures(PLAN)
    t0 = 1_795_510_800.0
    call = Call(uniqueid=UID, linkedid=UID, channel=CHANNEL, started_at=t0, line="15")
    call.visits.append(QueueVisit("n1-arm", t0))
    figures.observe(Notice("queue-joined", t0, UID, {"queue": "n1-arm"}), call)
    call.visits[0].left_at, call.visits[0].outcome = t0 + 20, VisitOutcome.TIMED_OUT
    figures.observe(Notice("queue-left", t0 + 20, UID, {"queue": "n1-arm", "outcome": "timed-out", "wait": 20.0}),
                    call)
    call.visits.append(QueueVisit("n2-amu", t0 + 20))
    figures.observe(Notice("queue-joined", t0 + 20, UID, {"queue": "n2-amu"}), call)
    call.legs.append(AgentLeg(queue="n2-amu", interface="PJSIP/2001", member_name="2001", connected_at=t0 + 35))
    figures.observe(Notice("agent-connected", t0 + 35, UID, {"queue": "n2-amu"}), call)
    sas = ratios(figures.window("today", t0 + 40), "sas")
    assert (sas.answered, sas.qs30, sas.mean_wait) == (1, 0.0, 35.0)
