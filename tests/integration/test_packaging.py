"""What a production install is: one import name of its own, and no simulator dependency."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE = {"engine", "supervision", "simulator"}


def test_a_wheel_installs_only_sas_router_and_needs_the_simulator_s_packages_only_for_the_sim_extra(
        tmp_path: Path) -> None:
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                            "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = tmp_path.glob("sas_router-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = next(archive.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"sas_router"}
    assert "sas_router/supervision/migrations/versions/0004_alarm_journal.py" in names
    assert "sas_router/supervision/prometheus/sas-alerts.yml" in names
    assert {"sas_router/engine/static/js/sas.js", "sas_router/engine/static/vendor/jssip.min.js"} <= set(names)
    requires = [line.removeprefix("Requires-Dist: ") for line in metadata.splitlines()
                if line.startswith("Requires-Dist:")]
    production = [r for r in requires if "extra ==" not in r]
    assert production and not [r for r in production if r.startswith(("matplotlib", "aiosipua"))]
    assert any(r.startswith("matplotlib") and "extra == \"sim\"" in r for r in requires)
    assert "sim = sas_router.simulator.cli:register" in entry_points


def test_nothing_is_imported_under_a_bare_top_level_name() -> None:
    """Every module of the engine and supervision, imported as installed: none is reached as
    ``engine.…`` (a name another distribution could own), and they pull in no simulator module."""
    for package in ("sas_router.engine", "sas_router.supervision"):
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            importlib.import_module(module.name)
    assert not {name for name in sys.modules if name.split(".")[0] in BARE}
