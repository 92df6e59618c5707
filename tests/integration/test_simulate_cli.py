"""``sas-router simulate`` from the command line: a morning hour of the Rhône through the real
engine, its summary, and the day's plot."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_hour_of_load_runs_through_the_engine_and_is_plotted(tmp_path: Path) -> None:
    png, journal = tmp_path / "day.png", f"sqlite:///{tmp_path / 'journal.sqlite3'}"
    run = subprocess.run([sys.executable, "-m", "sas_router.engine.cli", "simulate", "--day", "2026-11-24",
                          "--from", "10",
                          "--hours", "1", "--seed", "2", "--plot", str(png), "--journal", journal],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = re.search(r"SAS: offered (\d+), answered (\d+), QS30 ([\d.]+)%", run.stdout)
    assert summary, run.stdout
    offered, answered, qs30 = int(summary[1]), int(summary[2]), float(summary[3])
    assert 150 < offered < 280 and answered > 0.85 * offered and qs30 > 50  # staffed by Erlang C for the hour
    assert re.search(r"n1-arm\s+\d+\s+\d+", run.stdout) and "transfers: n1-arm>n2-amu" in run.stdout
    assert "dashboard http://127.0.0.1:" in run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # The period's one hour, with every call of it (the plot used to lose the last hour).
    hours = re.findall(r"^  (\d\d:00)\s+(\d+)\s+(\d+)", run.stdout, re.MULTILINE)
    assert [(h, int(o)) for h, o, _ in hours] == [("10:00", offered)], run.stdout
    # The journal of the simulated hour feeds the monthly report: P0 files (kept by the ARM) and
    # GP regulators' simple medical advices are there (items 4 and 6 were always short).
    report = subprocess.run([sys.executable, "-m", "sas_router.engine.cli", "report", "monthly", "--month", "2026-11",
                             "--db", journal], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    item = {m[1]: int(m[2]) for m in re.finditer(r"\s(T1\.\d)\s+(\d+)$", report.stdout, re.MULTILINE)}
    assert item["T1.1"] == answered and item["T1.3"] == item["T1.4"] + item["T1.5"] and item["T1.6"] > 0
    with sqlite3.connect(tmp_path / "journal.sqlite3") as db:
        levels = dict(db.execute("select level, count(*) from qualifications group by level").fetchall())
    assert levels.get("P0", 0) > 0 and levels.get("P1", 0) > 0


def test_an_unplanned_surge_overflows_to_the_linked_partner_which_answers_most_of_them() -> None:
    run = subprocess.run([sys.executable, "-m", "sas_router.engine.cli", "simulate", "--day", "2026-11-24",
                          "--from", "10",
                          "--hours", "1", "--seed", "2", "--surge", "3", "--unplanned-surge",
                          "--partner", "dialplans/sas-38.yaml", "--partner-desks", "12"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    overflowed = int(re.search(r"overflowed out (\d+)", run.stdout)[1])
    partner = re.search(r"partner sas-38 \(12 desks per queue\): received (\d+), answered (\d+)", run.stdout)
    assert partner, run.stdout
    received, answered = int(partner[1]), int(partner[2])
    # Three times the calls the room was staffed for: the overflow rule sends callers to sas-38,
    # every one of them arrives there (a few may hang up on the way), and its desks take most.
    assert overflowed >= 50
    assert 0.9 * overflowed <= received <= overflowed + 5
    assert answered > 0.6 * received


def test_a_partner_that_is_not_one_in_the_plans_is_refused() -> None:
    run = subprocess.run([sys.executable, "-m", "sas_router.engine.cli", "simulate", "--hours", "1",
                          "--partner", "dialplans/sas-69.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "sas-69 and sas-69 are not partners of each other" in run.stderr
