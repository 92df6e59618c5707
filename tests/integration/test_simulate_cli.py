"""``sas-router simulate`` from the command line: a morning hour of the Rhône through the real
engine, its summary, and the day's plot."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_hour_of_load_runs_through_the_engine_and_is_plotted(tmp_path: Path) -> None:
    png = tmp_path / "day.png"
    run = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--day", "2026-11-24", "--from", "10",
                          "--hours", "1", "--seed", "2", "--plot", str(png)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = re.search(r"SAS: offered (\d+), answered (\d+), QS30 ([\d.]+)%", run.stdout)
    assert summary, run.stdout
    offered, answered, qs30 = int(summary[1]), int(summary[2]), float(summary[3])
    assert 150 < offered < 280 and answered > 0.85 * offered and qs30 > 50  # staffed by Erlang C for the hour
    assert re.search(r"n1-arm\s+\d+\s+\d+", run.stdout) and "transfers: n1-arm>n2-amu" in run.stdout
    assert "dashboard http://127.0.0.1:" in run.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000


def test_an_unplanned_surge_overflows_to_the_linked_partner_which_answers_most_of_them() -> None:
    run = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--day", "2026-11-24", "--from", "10",
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
    run = subprocess.run([sys.executable, "-m", "engine.cli", "simulate", "--hours", "1",
                          "--partner", "dialplans/sas-69.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "sas-69 and sas-69 are not partners of each other" in run.stderr
