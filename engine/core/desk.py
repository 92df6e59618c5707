"""What one desk's telephony bar shows: its state, the call it is on, where each qualification
would send the caller now, the queues it serves and its own day — computed from the tracker and
the plan, nothing else (no I/O). The bar shows only what its desk may see."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sas_router.engine.core.calls import Agent, Call
from sas_router.engine.core.routing import qualification_target, utcnow_from
from sas_router.engine.plan.model import Plan, Priority, Role


def call_card(call: Call, plan: Plan, now: float) -> dict[str, Any]:
    """The current call as a regulator reads it."""
    line = plan.lines.get(call.line)
    n1 = set(plan.queues_with_role(Role.N1))
    first = call.visits[0] if call.visits else None
    first_pickup = call.legs[0].connected_at if call.legs else None
    n2_visits = [v for v in call.visits if v.queue not in n1]
    n2_pickup = next((leg.connected_at for leg in call.legs if leg.queue not in n1), None)
    leg = call.current_leg
    return {
        "call_id": call.call_id or call.uniqueid,
        "line": call.line, "line_label": line.label if line else "", "line_kind": line.kind.value if line else "",
        "caller": call.caller_num, "caller_name": call.caller_name,
        "unmasked": bool(line and line.unmasks), "geolocation": call.geolocation, "repeat": call.repeat,
        "origin": call.origin if call.origin and call.origin != plan.site.id else "", "inbound": call.inbound,
        "band": plan.band_of(call.line),
        "qualification": call.qualification,
        "queue": leg.queue if leg else call.current_queue,
        "wait_n1": round(first_pickup - first.joined_at, 1) if first and first_pickup else None,
        "wait_n2": round((n2_pickup or now) - n2_visits[0].joined_at, 1) if n2_visits else None,
        "talking_for": round(now - leg.connected_at, 1) if leg else None,
    }


def desk_view(agent: Agent | None, interface: str, calls: Iterable[Call], ended: Iterable[Call], plan: Plan,
              queues: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """The bar's state for ``interface``: logged in or not, the call it talks to, the targets."""
    instant = utcnow_from(now)
    local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(plan.site.timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    live = list(calls)
    current = next((c for c in live if c.current_leg is not None and c.current_leg.interface == interface), None)
    talks = [leg.talk_time for c in [*live, *ended] for leg in c.legs
             if leg.interface == interface and leg.ended_at is not None and leg.ended_at >= midnight]
    done = [t for t in talks if t is not None]
    serving = set(agent.memberships) if agent else set()
    return {
        "interface": interface, "at": now, "timezone": plan.site.timezone, "logged_in": agent is not None,
        "name": agent.name if agent else "", "role": agent.role if agent else "",
        "status": agent.state(now).value if agent else "logged-out",
        "paused": bool(agent and agent.paused),
        "pause_reason": next((m.paused_reason for m in agent.memberships.values() if m.paused_reason), "")
        if agent else "",
        "queues": sorted(serving),
        "call": call_card(current, plan, now) if current else None,
        "qualify": {level.value: qualification_target(plan, level, instant) for level in Priority},
        "transfer_to": [{"queue": name, "label": spec.label or name} for name, spec in plan.queues.items()],
        "queue_states": [q for q in queues if q["queue"] in serving] or queues,
        "day": {"calls": len(done), "mean_handle": round(sum(done) / len(done), 1) if done else None},
    }
