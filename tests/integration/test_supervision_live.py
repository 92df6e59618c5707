"""Supervision on a live site: the figures survive an engine restart without counting twice."""

from __future__ import annotations

import asyncio

import sqlalchemy
from sas_router.supervision.figures import ratios

from tests.integration.harness import MovableClock, eventually, start_site


async def test_an_engine_restart_counts_no_call_twice() -> None:
    site = await start_site()
    try:
        supervision = site.live.supervision
        assert supervision is not None
        await site.login(site.desk("1001", answer_after=0.1), ["n1-arm"], "arm-n1")
        talking = site.call("15", "0612345678")
        await eventually(lambda: (c := site.engine.tracker.calls.get(talking.uniqueid)) and c.current_leg,
                         what="first call answered")
        waiting = site.call("116117", "0478112233")  # the only desk is busy: this one waits
        await eventually(lambda: (c := site.engine.tracker.calls.get(waiting.uniqueid)) and c.current_visit,
                         what="second call queued")
        before = ratios(supervision.figures.window("today", site.engine.clock()), "sas")
        assert (before.offered, before.answered) == (2, 1)

        engine = await site.live.restart_engine()
        await eventually(lambda: engine.resyncs >= 1 and waiting.uniqueid in engine.tracker.calls,
                         what="restarted engine adopted the live calls")
        site.switch.request_hangup(talking, 16, soft=False)  # the desk is free: the waiting call is answered
        site.server._wake.set()
        await eventually(lambda: (c := engine.tracker.calls.get(waiting.uniqueid)) and c.current_leg,
                         timeout=15, what="second call answered after the restart (after the 5 s wrap-up)")
        after = ratios(supervision.figures.window("today", engine.clock()), "sas")
        assert (after.offered, after.answered) == (2, 2)
    finally:
        await site.close()


async def test_a_long_wait_in_amu_is_alarmed_acknowledged_and_cleared_and_the_journal_tells_it(tmp_path) -> None:
    """N2 AMU has no overflow rule and no fallback: before, two callers could wait there 145 s
    with "aucune alarme". The engine clock jumps past the minute a caller may wait in AMU."""
    clock = MovableClock("2026-11-24T10:00:00")
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    site = await start_site(clock=clock, journal_url=url)
    try:
        supervision = site.live.supervision
        assert supervision is not None
        await site.login(site.desk("2001", answer_after=0.1), ["n2-amu"], "mru")
        status, _ = await site.post("/api/agents/pause", {"interface": "PJSIP/2001", "reason": "brancard"})
        assert status == 200
        waiting = site.call("0472000019", "0472999999", name="SIS 69")  # the SIS line straight into AMU
        await eventually(lambda: (c := site.engine.tracker.calls.get(waiting.uniqueid)) and c.current_visit,
                         what="SIS caller waiting in AMU")
        assert "long-wait:n2-amu" not in {a["key"] for a in supervision.alarm_board.active(clock())}
        clock.offset += 70
        await eventually(lambda: "long-wait:n2-amu" in supervision.alarm_board.alarms, what="long-wait alarm")
        status, alarms = await site.get("/api/alarms", "wall-screen-token-0123")
        assert status == 200
        alarm = next(a for a in alarms if a["key"] == "long-wait:n2-amu")
        assert alarm["level"] == "critical" and "un appelant attend depuis 1 min 1" in alarm["text"]

        status, _ = await site.post("/api/alarms/long-wait:n2-amu/ack", {}, "desk-token")
        assert status == 403  # acknowledging is a supervisor's
        status, body = await site.post("/api/alarms/long-wait:n2-amu/ack", {}, "super-token")
        assert status == 200 and body["acknowledged_by"] == "sup-1"
        status, body = await site.post("/api/alarms/no-such:alarm/ack", {}, "super-token")
        assert status == 404

        await site.post("/api/agents/resume", {"interface": "PJSIP/2001"})
        await eventually(lambda: (c := site.engine.tracker.calls.get(waiting.uniqueid)) and c.current_leg,
                         what="caller answered")
        await asyncio.sleep(1.5)
        assert "long-wait:n2-amu" in supervision.alarm_board.alarms  # held: no flicker
        clock.offset += supervision.plan.alarms.clear_after
        await eventually(lambda: "long-wait:n2-amu" not in supervision.alarm_board.alarms, what="alarm cleared")
        assert supervision.journal is not None and await supervision.journal.flush()
        with sqlalchemy.create_engine(url).connect() as connection:
            rows = connection.execute(sqlalchemy.text(
                "select kind, by from alarm_journal where key = 'long-wait:n2-amu' order by at")).all()
        assert [tuple(row) for row in rows] == [("raised", ""), ("acknowledged", "sup-1"), ("cleared", "")]
        status, audit = await site.get("/api/audit?limit=5", "super-token")
        assert any(e["action"].endswith("/ack") and e["client"] == "sup-1" and e["status"] == 200 for e in audit)
    finally:
        await site.close()
