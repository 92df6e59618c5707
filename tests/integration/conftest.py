"""Fixtures of the scenarios run on both switches (see ``switches.py``)."""

from __future__ import annotations

import pytest

from tests.integration.switches import BACKENDS, EmulatedSwitch, RealSwitch, load


@pytest.fixture(scope="session")
def real_rhone(tmp_path_factory: pytest.TempPathFactory) -> RealSwitch:
    """The Rhône's rendered site on one real Asterisk for the session (started on first use)."""
    switch = RealSwitch(load("sas-69"), tmp_path_factory.mktemp("asterisk-sas-69"))
    yield switch
    switch.stop()


@pytest.fixture(params=BACKENDS)
async def switch(request: pytest.FixtureRequest):
    if request.param == "emulator":
        emulated = EmulatedSwitch(load("sas-69"))
        await emulated.start()
        yield emulated
        await emulated.close()
    else:
        real = request.getfixturevalue("real_rhone")
        await real.reset()
        await real.open_trunk()
        yield real
        await real.reset()


#: Lines the chaos test wants in CI's output whatever the outcome (its figures are the evidence).
CHAOS_FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CHAOS_FIGURES:
        terminalreporter.section("chaos figures")
        for line in CHAOS_FIGURES:
            terminalreporter.write_line(line)
