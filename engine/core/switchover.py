"""Line switch-over ("bascule de lignes"): a whole line, or a share of its new calls, answered by a
partner SAS for a while. Pure decisions; the engine writes them to AstDB.

The state lives in Asterisk, not in the engine: ``sas-switch/<line>`` = ``partner:share[:number]``
is read by the rendered dialplan for every new call on the line, so a switch-over holds while
the engine is stopped and ends the instant the key is deleted. Who asked and why is kept beside
it in ``sas-switch-meta/<line>`` (JSON), so a restarted engine still knows. A supervisor who ends
a scheduled switch-over inside its window leaves a hold (``sas-switch-hold/<preset>``) so the
schedule does not start it again until the window has closed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sas_router.engine.plan.model import LineKind, Plan
from sas_router.engine.plan.schedule import window_active

DB_META = "sas-switch-meta"
DB_HOLD = "sas-switch-hold"
SCHEDULE = "schedule"


class SwitchoverError(ValueError):
    """A switch-over the plan cannot carry (unknown line or partner, number not accepted)."""


@dataclass(frozen=True)
class Switchover:
    line: str
    partner: str
    share: int
    number: str = ""
    #: "manual" or "preset:<name>".
    source: str = "manual"
    by: str = ""
    reason: str = ""
    since: float = 0.0

    def db_value(self) -> str:
        """The value the rendered dialplan reads: ``partner:share[:number]``."""
        return f"{self.partner}:{self.share}" + (f":{self.number}" if self.number else "")

    def meta(self) -> str:
        return json.dumps({"source": self.source, "by": self.by, "reason": self.reason, "since": self.since},
                          ensure_ascii=True, separators=(",", ":"))

    @property
    def preset(self) -> str | None:
        return self.source.removeprefix("preset:") if self.source.startswith("preset:") else None

    @classmethod
    def from_db(cls, line: str, value: str, meta: str | None) -> Switchover:
        """Read back what is in AstDB (possibly written by hand with ``database put``)."""
        partner, _, rest = value.partition(":")
        share_text, _, number = rest.partition(":")
        try:
            share = int(share_text or 100)
        except ValueError:
            share = 100
        details: dict[str, Any] = {}
        if meta:
            try:
                loaded = json.loads(meta)
                details = loaded if isinstance(loaded, dict) else {}
            except ValueError:
                details = {}
        return cls(line=line, partner=partner, share=max(0, min(share, 100)), number=number,
                   source=str(details.get("source", "manual")), by=str(details.get("by", "unknown (set in AstDB)")),
                   reason=str(details.get("reason", "")), since=float(details.get("since", 0.0) or 0.0))

    def public(self) -> dict[str, Any]:
        return asdict(self)


def check_request(plan: Plan, line: str, partner: str, share: int, number: str = "") -> None:
    """Refuse, with the reason an admin needs, a switch-over the rendered dialplan could not carry."""
    spec = plan.lines.get(line)
    if spec is None:
        raise SwitchoverError(f"unknown line {line!r}; the plan has {', '.join(plan.lines)}")
    if spec.kind == LineKind.PARTNER:
        raise SwitchoverError(f"{line} is a partner line: its calls cannot be switched over again")
    target = plan.partners.get(partner)
    if target is None:
        raise SwitchoverError(f"unknown partner {partner!r}; the plan has {', '.join(plan.partners) or 'none'}")
    if not 0 < share <= 100:
        raise SwitchoverError("share must be a percentage from 1 to 100")
    dialled = [number] if number else spec.numbers
    refused = [n for n in dialled if n not in target.accepts]
    if refused:
        raise SwitchoverError(f"{partner} does not accept {', '.join(refused)} (it accepts "
                              f"{', '.join(target.accepts)}); give a number it accepts")


@dataclass(frozen=True)
class Decision:
    kind: str  # "start" | "end" | "release-hold"
    line: str
    preset: str
    switchover: Switchover | None = None


def preset_decisions(plan: Plan, instant: datetime, now: float, current: dict[str, Switchover],
                     holds: set[str]) -> list[Decision]:
    """What the schedule wants now: start presets whose window opened, end those whose closed.

    A manual switch-over on the line is never replaced or ended by the schedule; a held preset
    (ended by a supervisor inside its window) waits for its window to close."""
    out: list[Decision] = []
    for name, preset in plan.switchovers.items():
        active = window_active(preset, plan, instant)
        running = current.get(preset.line)
        if active:
            if running is None and name not in holds:
                out.append(Decision("start", preset.line, name, Switchover(
                    line=preset.line, partner=preset.partner, share=preset.share, number=preset.number or "",
                    source=f"preset:{name}", by=SCHEDULE,
                    reason=f"preset {name}" + (f": {preset.label}" if preset.label else ""), since=now)))
            continue
        if running is not None and running.preset == name:
            out.append(Decision("end", preset.line, name))
        if name in holds:
            out.append(Decision("release-hold", preset.line, name))
    return out
