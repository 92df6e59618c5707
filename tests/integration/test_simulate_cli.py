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
