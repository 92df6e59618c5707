"""The recorder on the emulated switch (the real Asterisk's test is in test_on_both_switches): a call
recorded from its first queue to its end across two moves, indexed by its call id with a checksum,
heard only by those allowed to (every listen audited), kept as the plan says unless held, and a
recording that fails raises the room's alarm without touching the call."""

from __future__ import annotations

import hashlib
import wave
from pathlib import Path

import numpy as np
import sqlalchemy
from sas_router.engine.plan.model import Priority
from sas_router.supervision.report import monthly

from tests.integration.harness import MovableClock, Site, eventually, start_site

TONE = 1000.0


def dominant_frequency(path: Path) -> float:
    with wave.open(str(path), "rb") as audio:
        rate = audio.getframerate()
        samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum[1:])) + 1])


async def record_a_call_through_two_moves(site: Site) -> tuple[str, Path]:
    """A 15 caller saying a 1 kHz tone: N1 answers, qualifies P1 (AMU), AMU transfers to MG, the
    caller hangs up. Returns the call id and where the recording should be."""
    await site.login(site.desk("1001", answer_after=0.2), ["n1-arm"], "arm-n1")
    await site.login(site.desk("2001", answer_after=0.2), ["n2-amu"], "mru")
    await site.login(site.desk("3001", answer_after=0.2), ["n2-mg"], "mrg")
    caller = site.call("15", "0611223344")
    caller.tone_hz = TONE
    call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="call tracked")
    await eventually(lambda: call.current_leg is not None, what="N1 answer")
    status, body = await site.post(f"/api/calls/{call.call_id}/qualify", {"level": Priority.P1.value})
    assert status == 200, body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-amu", what="AMU")
    status, body = await site.post(f"/api/calls/{call.call_id}/transfer", {"queue": "n2-mg", "reason": "avis MG"},
                                   "super-token")
    assert status == 200, body
    await eventually(lambda: call.current_leg is not None and call.current_leg.queue == "n2-mg", what="MG")
    assert call.recording and call.recording_started
    site.switch.request_hangup(caller, 16)
    site.server._wake.set()
    await eventually(lambda: call.ended_at is not None, what="call ended")
    assert site.switch.monitor_dir is not None
    return call.call_id, site.switch.monitor_dir / call.recording


async def test_a_call_is_recorded_across_its_moves_indexed_with_its_checksum_and_heard_by_supervisors_only(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    site = await start_site(journal_url=url, clock=MovableClock("2026-11-24T10:00:00"))  # a Tuesday, SAS hours
    try:
        call_id, file = await record_a_call_through_two_moves(site)
        recorder = site.live.supervision.recorder  # type: ignore[union-attr]
        await eventually(lambda: call_id in recorder.index, timeout=15, what="recording indexed")
        entry = recorder.index[call_id]
        call = site.engine.tracker.call_any(call_id.removeprefix("sas-69-"))
        assert call is not None and call.ended_at is not None and call.recording_at is not None
        assert file.is_file() and file.name == call_id.replace("-", "") + ".wav"  # as Asterisk's FILTER names it
        assert entry.status == "ok" and abs(entry.duration - (call.ended_at - call.recording_at)) <= 1.0
        assert entry.sha256 == hashlib.sha256(file.read_bytes()).hexdigest() and entry.size == file.stat().st_size
        assert (entry.desks, entry.queues, entry.line, entry.caller) == ("1001,2001,3001", "n1-arm,n2-amu,n2-mg",
                                                                         "15", "0611223344")
        assert abs(dominant_frequency(file) - TONE) < 5  # the caller is in it

        status, found = await site.get("/api/recordings?number=0611223344", "super-token")
        assert status == 200 and [r["call_id"] for r in found] == [call_id] and found[0]["sha256"] == entry.sha256
        status, _ = await site.get("/api/recordings", "desk-token")
        assert status == 403  # a desk does not browse the recorder
        status, _ = await site.get(f"/api/recordings/{call_id}", "wall-screen-token-0123")
        assert status == 403
        async with site.http.get(f"{site.base_url}/api/recordings/{call_id}/audio",
                                 headers={"Authorization": "Bearer desk-token"}) as refused:
            assert refused.status == 403
        async with site.http.get(f"{site.base_url}/api/recordings/{call_id}/audio?download=1",
                                 headers={"Authorization": "Bearer super-token"}) as response:
            assert response.status == 200 and await response.read() == file.read_bytes()
            assert "attachment" in response.headers["Content-Disposition"]
        status, audit = await site.get(f"/api/audit?call={call_id}", "super-token")
        actions = [(e["client"], e["action"], e["status"]) for e in audit]
        assert ("sup-1", "GET download recording", 200) in actions
        assert ("desk-12", "GET listen recording", 403) in actions
        # In the journal too, the way a report or an inquiry reads it.
        assert site.live.supervision is not None and await site.live.supervision.journal.flush()  # type: ignore[union-attr]
        with sqlalchemy.create_engine(url).connect() as connection:
            row = connection.execute(sqlalchemy.text(
                "select status, sha256, duration from recordings where call_id = :c"), {"c": call_id}).one()
        assert (row.status, row.sha256) == ("ok", entry.sha256)
        # The month's report: every answered call recorded, no failure.
        rows = monthly(sqlalchemy.create_engine(url), site.plan, 2026, 11).rows()
        report = {label: value for label, _, value in rows}
        assert report["answered calls recorded (recorder)"] == "100.0%"
        assert report["recordings failed (missing, cut, never started)"] == "0"
    finally:
        await site.close()


async def test_retention_deletes_old_recordings_but_never_one_under_legal_hold(tmp_path: Path) -> None:
    clock = MovableClock("2026-11-24T10:00:00")
    site = await start_site(clock=clock, journal_url=f"sqlite:///{tmp_path / 'journal.sqlite3'}")
    try:
        await site.login(site.desk("1001", answer_after=0.1), ["n1-arm"], "arm-n1")
        calls = []
        for number in ("0611000001", "0611000002"):
            caller = site.call("116117", number)
            call = await eventually(lambda c=caller: site.engine.tracker.calls.get(c.uniqueid), what="tracked")
            await eventually(lambda c=call: c.current_leg is not None, what="answered")
            site.switch.request_hangup(caller, 16)
            site.server._wake.set()
            calls.append(call)
        recorder = site.live.supervision.recorder  # type: ignore[union-attr]
        await eventually(lambda: all(c.call_id in recorder.index for c in calls), timeout=15, what="indexed")
        kept, dropped = calls
        status, body = await site.post(f"/api/recordings/{kept.call_id}/hold", {"reason": "réquisition judiciaire"},
                                       "super-token")
        assert status == 200 and body["held"] and body["hold_by"] == "sup-1", body
        status, _ = await site.post(f"/api/recordings/{kept.call_id}/hold", {"reason": "pas moi"}, "desk-token")
        assert status == 403

        assert await recorder.expire(clock() + 364 * 86_400) == []  # within the 365 days: nothing goes
        clock.offset += 366 * 86_400
        assert await recorder.expire(clock()) == [dropped.call_id]
        assert not (site.switch.monitor_dir / dropped.recording).exists()  # type: ignore[operator]
        assert (site.switch.monitor_dir / kept.recording).exists()  # type: ignore[operator]
        status, found = await site.get(f"/api/recordings/{dropped.call_id}", "super-token")
        assert status == 200 and found["deleted"] and found["deleted_by"] == "retention"
        async with site.http.get(f"{site.base_url}/api/recordings/{dropped.call_id}/audio",
                                 headers={"Authorization": "Bearer super-token"}) as gone:
            assert gone.status == 404
        status, _ = await site.post(f"/api/recordings/{kept.call_id}/release", {"reason": "fin de la procédure"},
                                    "super-token")
        assert status == 200
        assert await recorder.expire(clock()) == [kept.call_id]
    finally:
        await site.close()


async def test_a_recording_that_cannot_be_made_leaves_the_call_flowing_and_alarms_the_room() -> None:
    site = await start_site()
    try:
        site.switch.monitor_dir = None  # the recorder has nowhere to write (disk gone, module down)
        await site.login(site.desk("1001", answer_after=0.1), ["n1-arm"], "arm-n1")
        caller = site.call("15", "0622334455")
        call = await eventually(lambda: site.engine.tracker.calls.get(caller.uniqueid), what="tracked")
        await eventually(lambda: call.current_leg is not None, what="answered all the same")
        assert not caller.hungup and not call.recording_started
        site.switch.request_hangup(caller, 16)
        site.server._wake.set()
        supervision = site.live.supervision
        assert supervision is not None
        await eventually(lambda: call.call_id in supervision.recorder.index, timeout=15, what="failure indexed")
        assert supervision.recorder.index[call.call_id].status == "missing"
        alarm = next(a for a in supervision.alarms(site.engine.clock()) if a["key"] == "recording")
        assert alarm["level"] == "critical" and call.call_id in alarm["text"]
    finally:
        await site.close()
