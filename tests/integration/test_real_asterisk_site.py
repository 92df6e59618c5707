"""The rendered site as a real Asterisk 22 loads it, installed the way the README tells an admin."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sas_router.engine.plan import load_plan

from tests.integration.switches import ROOT, real_asterisk_or_skip


@pytest.mark.parametrize("site", ["sas-69", "sas-38"])
def test_a_real_asterisk_loads_the_render_without_an_error_or_a_warning(site: str, tmp_path: Path) -> None:
    real_asterisk_or_skip()
    from sas_router.simulator.real_asterisk import prepare

    host = prepare(load_plan(ROOT / "dialplans" / f"{site}.yaml"), tmp_path, operator_addresses=["127.0.0.2"])
    host.start_sync()
    try:
        endpoints = host.cli_sync("pjsip show endpoints")
        contexts = host.cli_sync("dialplan show sas-desk-transfer")
        queues = host.cli_sync("queue show")
        modules = host.cli_sync("module show like pjsip_header_funcs")
        remote = host.cli_sync("pjsip show endpoint 6001")
        transports = host.cli_sync("pjsip show transports")
    finally:
        host.stop_sync()
    assert host.problems() == []
    plan = host.plan
    assert f"Objects found: {1 + len(plan.partners) + len(plan.desks)}" in endpoints  # operator, partners, desks
    assert "Match: 127.0.0.2/32" in endpoints and "sas-desk-phone" not in endpoints  # templates are not objects
    assert "'_X.' =>" in contexts
    assert all(f"{queue} has 0 calls" in queues for queue in plan.queues)
    assert "res_pjsip_header_funcs.so" in modules and "Running" in modules
    # The remote regulators' browser desks: WebRTC (DTLS-SRTP, ICE) over the secure websocket.
    assert re.search(r"webrtc\s+: yes", remote) and re.search(r"transport\s+: sas-transport-wss", remote)
    assert re.search(r"media_encryption\s+: dtls", remote)
    assert all(f"sas-transport-{proto}" in transports for proto in plan.sip.transports)
