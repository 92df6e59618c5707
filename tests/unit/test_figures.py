"""QS30 and the other figures from the pure core, on the scripted hour with known waits."""

from __future__ import annotations

from pathlib import Path

import pytest
from sas_router.engine.core.notices import Notice
from sas_router.engine.core.tracker import Tracker
from sas_router.engine.plan import load_plan
from sas_router.supervision.figures import Figures, ratios

from tests.scripted import END, EXPECTED, ROLES, T0, scripted_events

ROOT = Path(__file__).resolve().parents[2]


def play(figures: Figures) -> Tracker:
    tracker = Tracker()
    for at, event in scripted_events():
        for notice in tracker.feed(event, at):
            figures.observe(notice, tracker.call_any(notice.uniqueid), ROLES.get)
    return tracker


@pytest.fixture
def figures() -> Figures:
    book = Figures(load_plan(ROOT / "dialplans" / "sas-69.yaml"))
    play(book)
    return book


def test_qs30_of_the_scripted_hour(figures: Figures) -> None:
    today = figures.summary("today", END)
    sas = today["sas"]
    assert (sas["offered"], sas["answered"]) == (EXPECTED["offered"], EXPECTED["answered"])
    assert sas["qs30"] == EXPECTED["qs30"]  # 5, 8, 12, 20, 29 s: 30.0 s is not under 30
    assert sas["qs60"] == EXPECTED["qs60"]  # all but the 61 s call
    assert sas["qs30_of_offered"] == EXPECTED["qs30_of_offered"]  # short abandon out of the base
    assert sas["abandoned"] == EXPECTED["abandoned"] and sas["short_abandoned"] == EXPECTED["short_abandoned"]
    assert sas["overflowed_out"] == EXPECTED["overflowed_out"]
    assert today["transfers"] == EXPECTED["transfers"]
    assert today["partners"] == {"sas-38": {"overflowed_out": 1}}


def test_moves_are_not_abandons_and_levels_are_apart(figures: Figures) -> None:
    today = figures.summary("today", END)
    n1 = today["queues"]["n1-arm"]
    assert n1["answered"] == 10 and n1["abandoned"] == 2 and n1["overflowed_out"] == 1
    assert today["queues"]["n2-amu"]["answered"] == 1
    assert today["levels"]["n1"]["qs30"] == 0.5
    assert today["levels"]["n2"] == {**today["levels"]["n2"], "answered": EXPECTED["n2_answered"],
                                     "qs30": EXPECTED["n2_qs30"], "mean_wait": 15.0}


def test_handle_time_by_role(figures: Figures) -> None:
    handle = figures.summary("today", END)["handle_time"]
    for role, (calls, mean) in EXPECTED["talk"].items():
        assert handle[role] == {"calls": calls, "mean_talk": mean}


def test_lines_are_counted_apart(figures: Figures) -> None:
    lines = figures.summary("today", END)["lines"]
    assert lines["15"]["answered"] == 5 and lines["116117"]["answered"] == 5
    assert lines["116117"]["offered"] == 8  # 5 answered, 2 abandons, 1 overflow


def test_windows(figures: Figures) -> None:
    # Every window is a sum of 30-second buckets or daily totals, and they nest.
    for when in (T0 + 40, T0 + 95, T0 + 200, END):
        small = ratios(figures.window("15m", when), "sas").answered
        hour = ratios(figures.window("hour", when), "sas").answered
        today = ratios(figures.window("today", when), "sas").answered
        month = ratios(figures.window("month", when), "sas").answered
        assert small <= hour <= today <= month
    # Calls 1 (T0 + 5 s) and 2 (T0 + 10 + 12 s) are picked up in the interval [T0, T0 + 30 s);
    # call 3 (T0 + 20 + 29 s) in the next one, with call 4 (T0 + 30 + 30 s) in the one after.
    interval = ratios(figures.window("30s", T0 + 10), "sas")
    assert interval.answered == 2 and interval.qs30 == 1.0
    assert ratios(figures.window("last_30s", T0 + 40), "sas").answered == 2
    assert ratios(figures.window("30s", T0 + 40), "sas").answered == 1
    with pytest.raises(ValueError, match="unknown window"):
        figures.window("week", END)


def test_calls_per_hour(figures: Figures) -> None:
    hours = figures.calls_per_hour(END)
    assert hours[10] == {"hour": 10, "offered": 13, "answered": 10}
    assert sum(h["offered"] for h in hours[:10]) == 0


def test_every_ratio_stays_at_most_one_in_every_window_and_levels_count_their_offers(figures: Figures) -> None:
    for window in ("30s", "last_30s", "15m", "hour", "today", "month", "all"):
        for at in range(int(T0), int(END) + 1, 15):
            totals = figures.window(window, float(at))
            for scope, names in (("sas", [""]), ("line", figures.names("line")), ("queue", figures.names("queue")),
                                 ("level", ["n1", "n2"])):
                for name in names:
                    r = ratios(totals, scope, name)
                    assert all(v is None or v <= 1 for v in (r.qs30, r.qs60, r.qs30_offered, r.qs60_offered)), \
                        (window, at, scope, name, r)
    levels = figures.summary("today", END)["levels"]
    assert levels["n1"]["offered"] >= levels["n1"]["answered"] > 0
    assert levels["n2"]["offered"] >= levels["n2"]["answered"] > 0


def test_a_call_adopted_after_a_restart_is_offered_once_and_never_answered_without_offer() -> None:
    """The engine restarts while a caller waits: the new process adopts it (its join, from the
    switch's Wait, is when it is offered), then it is answered. Offered 1, answered 1."""
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    book, tracker = Figures(plan), Tracker()
    channel = {"Channel": "PJSIP/operator-00000001", "Uniqueid": "500.1", "Linkedid": "500.1",
               "Application": "Queue", "ApplicationData": "n1-arm,t", "Duration": "00:00:40"}
    entry = {"Queue": "n1-arm", "Uniqueid": "500.1", "Wait": "40", "Position": "1", "Priority": "5"}
    at = T0 + 600
    for notice in tracker.resync([channel], [entry], {"500.1": {"SAS_LINE": "15", "SAS_CALL_ID": "sas-69-500.1"}}, at):
        book.observe(notice, tracker.call_any(notice.uniqueid))
    for event, when in (({"Event": "QueueCallerLeave", "Queue": "n1-arm", "Uniqueid": "500.1", "Linkedid": "500.1",
                          "Channel": channel["Channel"], "Position": "1"}, at + 1),
                        ({"Event": "AgentConnect", "Queue": "n1-arm", "Uniqueid": "500.1", "Linkedid": "500.1",
                          "Channel": channel["Channel"], "Interface": "PJSIP/1001", "MemberName": "1001",
                          "DestChannel": "PJSIP/1001-00000002", "HoldTime": "41", "RingTime": "1"}, at + 1)):
        for notice in tracker.feed(event, when):
            book.observe(notice, tracker.call_any(notice.uniqueid))
    sas = book.summary("today", at + 2)["sas"]
    assert (sas["offered"], sas["answered"], sas["qs30"], sas["qs60"]) == (1, 1, 0.0, 1.0)
    book.observe(Notice("call-adopted", at + 5, "500.1", {}), tracker.call_any("500.1"))  # a second resync
    assert book.summary("today", at + 6)["sas"]["offered"] == 1


def test_calls_replayed_from_the_journal_fill_today_but_not_the_prometheus_counters(figures: Figures) -> None:
    tracker = play(Figures(load_plan(ROOT / "dialplans" / "sas-69.yaml")))
    restarted = Figures(load_plan(ROOT / "dialplans" / "sas-69.yaml"))
    for call in tracker.ended:
        restarted.replay(call)
    assert restarted.summary("today", END)["sas"]["offered"] == EXPECTED["offered"]
    assert sum(restarted.lifetime.values()) == 0, "a restart starts the exported counters at zero"
