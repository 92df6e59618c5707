"""Build an emulated SAS switch from a site plan: the rendered files, endpoints and trunks.

The emulator runs exactly what ``sas-router plan render`` writes (never a private copy), so a test
against it exercises the configuration a real Asterisk would load.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from sas_router.engine.plan import Plan, load_plan
from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.render import render_all
from sas_router.simulator.softswitch.clock import Scheduler
from sas_router.simulator.softswitch.core import Endpoint, Softswitch, TrunkLink
from sas_router.simulator.softswitch.server import User, users_from_manager_conf


def build_site(plan: Plan | Path | str, scheduler: Scheduler | None = None, *, seed: int = 1,
               monitor_dir: Path | None = None) -> Softswitch:
    """A softswitch running the plan's rendered dialplan and queues, with its PJSIP endpoints, and
    a monitor spool directory for its recordings (a fresh temporary one unless given)."""
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    files = render_all(plan)
    sw = Softswitch(files["extensions.conf"], files["queues.conf"], scheduler=scheduler, seed=seed,
                    system_name=plan.site.id, filename=f"asterisk/{plan.site.id}/extensions.conf")
    sw.monitor_dir = monitor_dir or Path(tempfile.mkdtemp(prefix=f"sas-monitor-{plan.site.id}-"))
    sw.endpoint_contexts[C.OPERATOR_ENDPOINT] = C.CTX_PSTN
    sw.endpoints[C.OPERATOR_ENDPOINT] = Endpoint(C.OPERATOR_ENDPOINT, answer_after=None)
    for partner in plan.partners:
        sw.endpoint_contexts[partner] = C.partner_context(partner)
    return sw


def ami_users(plan: Plan, secrets: dict[str, str]) -> dict[str, User]:
    """The AMI users of the plan's rendered ``manager.conf`` (classes, event filters), with their
    secrets from elsewhere: the emulator serves exactly what a real Asterisk with that file would."""
    return users_from_manager_conf(render_all(plan)["manager.conf"], secrets)


def link_sites(a: Softswitch, a_id: str, b: Softswitch, b_id: str) -> tuple[TrunkLink, TrunkLink]:
    """Join two emulated SAS by a trunk: A dials ``PJSIP/n@<b_id>`` and the call arrives at B."""
    a_to_b = TrunkLink(remote=b, remote_endpoint=a_id)
    b_to_a = TrunkLink(remote=a, remote_endpoint=b_id)
    a.trunks[b_id] = a_to_b
    b.trunks[a_id] = b_to_a
    return a_to_b, b_to_a


def add_agent(sw: Softswitch, extension: str, *, answer_after: float | None = 2.0,
              talk_for: float | None = None) -> Endpoint:
    """An agent desk phone PJSIP/<extension>."""
    endpoint = Endpoint(extension, answer_after=answer_after, talk_for=talk_for)
    sw.endpoints[extension] = endpoint
    return endpoint
