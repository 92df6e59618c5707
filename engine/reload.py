"""Reloading the site plan in a running engine (SIGHUP, or ``POST /api/admin/plan/reload``).

The new plan is validated completely before anything changes: a plan that does not load, names
another site, drops a queue that callers or desks are still in, or no longer declares a desk an
API token is bound to is refused with its reasons, and the running plan stays in force. A good
plan is installed on the switch first (when the engine manages the site's Asterisk files, then
``dialplan reload`` and the queue and PJSIP module reloads, which keep live calls), and only then
adopted by the engine; the answer says what changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sas_router.engine.plan import Plan, PlanError, load_plan
from sas_router.engine.plan.grammar import RenderRefused

if TYPE_CHECKING:
    from sas_router.engine.api import Client
    from sas_router.engine.service import Engine

#: What Asterisk is asked to re-read after the files changed; none of them hangs up a call.
SWITCH_RELOADS = ("dialplan reload", "module reload app_queue.so", "module reload res_pjsip.so")


class ReloadRefused(Exception):
    """The new plan cannot be taken; ``problems`` says why, one line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class ReloadResult:
    source: str
    sha256: str
    changes: dict[str, list[str]]
    switch: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {"plan": self.source, "sha256": self.sha256, "changes": self.changes, "switch": self.switch}


def plan_changes(old: Plan, new: Plan) -> dict[str, list[str]]:
    """What an admin would want to read after a reload: entries added, removed or changed."""
    changes: dict[str, list[str]] = {}
    for section in ("queues", "lines", "partners", "switchovers"):
        before, after = getattr(old, section), getattr(new, section)
        items = [f"+{name}" for name in sorted(set(after) - set(before))]
        items += [f"-{name}" for name in sorted(set(before) - set(after))]
        items += [f"~{name}" for name in sorted(set(before) & set(after)) if before[name] != after[name]]
        if items:
            changes[section] = items
    added, removed = sorted(set(new.desks) - set(old.desks)), sorted(set(old.desks) - set(new.desks))
    if added or removed:
        changes["desks"] = ([f"+{len(added)} ({added[0]}..{added[-1]})"] if added else []) + \
                           ([f"-{len(removed)} ({removed[0]}..{removed[-1]})"] if removed else [])
    for section in ("site", "sip", "schedule", "routes"):
        if getattr(old, section) != getattr(new, section):
            changes[section] = ["~"]
    return changes


def check_reload(engine: Engine, new: Plan, clients: dict[str, Client]) -> None:
    """Everything that would make the new plan lose a caller or lock a desk out."""
    from sas_router.engine.api import ClientError, bind_clients

    problems: list[str] = []
    old = engine.plan
    if new.site.id != old.site.id:
        problems.append(f"the plan is for {new.site.id}, this engine serves {old.site.id}")
    for queue in sorted(set(old.queues) - set(new.queues)):
        waiting = [c for c in engine.tracker.calls.values() if c.current_queue == queue]
        members = [i for i, agent in engine.tracker.agents.items() if queue in agent.memberships]
        if waiting or members:
            problems.append(f"queue {queue} is removed but {len(waiting)} caller(s) and {len(members)} desk(s) "
                            "are still in it: move them first")
    try:
        bind_clients(clients, new)
    except ClientError as exc:
        problems.append(str(exc))
    if problems:
        raise ReloadRefused(problems)


async def reload_plan(engine: Engine, path: Path, clients: dict[str, Client], *,
                      switch_config: Path | None) -> ReloadResult:
    """Validate, install on the switch (when managed here), then adopt; raises ReloadRefused."""
    try:
        new = await asyncio.to_thread(load_plan, path)
    except PlanError as exc:
        raise ReloadRefused([str(d) for d in exc.diagnostics]) from None
    check_reload(engine, new, clients)
    result = ReloadResult(new.source, new.source_sha256, plan_changes(engine.plan, new))
    if switch_config is not None:
        from sas_router.engine.plan.install import install

        try:
            done = await asyncio.to_thread(install, new, switch_config)
        except (RenderRefused, OSError) as exc:
            raise ReloadRefused([f"could not install the plan in {switch_config}: {exc}"]) from None
        result.switch += done
        for command in SWITCH_RELOADS:
            answer = await engine.link.send({"Action": "Command", "Command": command})
            result.switch.append(f"{command}: {_command_output(answer)}")
    else:
        result.switch.append("the switch's files are not managed by this engine: run `sas-router plan install` "
                             "and reload Asterisk on its host")
    engine.adopt_plan(new)
    engine.log.info("plan reloaded", plan=new.source, sha256=new.source_sha256[:16], changes=result.changes)
    return result


def _command_output(answer: Any) -> str:
    """What Asterisk said to a CLI command sent over AMI (its Output lines), on one line."""
    message = answer[0] if isinstance(answer, list) and answer else answer
    output = message.get("Output") or message.get("Response") if hasattr(message, "get") else None
    if isinstance(output, list):
        output = " / ".join(output)
    return str(output or "done")[:200]
