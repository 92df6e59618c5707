"""Supervision on a live site: the figures survive an engine restart without counting twice."""

from __future__ import annotations

from supervision.figures import ratios
from tests.integration.harness import eventually, start_site


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
