"""Validate a plan file into a :class:`Plan`, reporting every problem with its line and column.

The admin sees all errors in one run: each section entry is validated on its own, then the
cross-references are checked on whatever parsed, so a typo in one queue does not hide an unknown
partner three screens down.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from pydantic import BaseModel, ValidationError
from sas_router.engine.plan.model import (
    CARE_KINDS,
    DESK_KEY_PATTERN,
    EMERGENCY_KINDS,
    ID_PATTERN,
    AlarmPolicy,
    Desk,
    DeskSpec,
    LineKind,
    LineSpec,
    OverflowRule,
    PartnerSpec,
    Plan,
    Priority,
    QueueSpec,
    RecordingSpec,
    Role,
    Route,
    Schedule,
    ScheduleSlot,
    SipSpec,
    SiteSpec,
    SwitchoverPreset,
    expand_desks,
    minutes_of,
    parse_clock,
)
from sas_router.engine.plan.source import Diagnostic, PathKey, PlanError, PositionedSource, load_source, parse_source

M = TypeVar("M", bound=BaseModel)

#: What one entry of a section is called in messages.
SECTION_ITEM = {"queues": "queue", "lines": "line", "partners": "partner", "switchovers": "switch-over preset"}

SECTIONS = ("site", "sip", "queues", "lines", "partners", "desks", "schedule", "qualification", "switchovers",
            "alarms", "recording")
#: Desks one range may declare; a typo such as 1001-10010 would otherwise render ten thousand phones.
MAX_DESKS_PER_RANGE = 500
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: What a field's value should look like, for messages that say more than "pattern mismatch".
FIELD_FORMS = {
    "id": "an identifier: lower-case letters, digits and '-' (e.g. sas-69)",
    "numbers": "a dialled number: digits only, optionally a leading + (e.g. 116117, 0472000018)",
    "overflow_number": "a dialled number: digits only, optionally a leading +",
    "accepts": "a dialled number: digits only, optionally a leading +",
    "number": "a dialled number: digits only, optionally a leading +",
    "partners": "a partner id: lower-case letters, digits and '-'",
    "departements": "a département code such as 69, 2A or 974",
    "geolocation_header": "a SIP header name such as Geolocation",
    "members": "a declared desk such as PJSIP/1001, or a remote regulator Local/0612345678@sas-remote-agent/n",
    "music": "a music-on-hold class name",
    "host": "a host name or IP address",
    "transfer_code": "digits a desk keys on its phone, 1 to 8 of them (e.g. 200)",
    "tls_cert": "an absolute path on the Asterisk host",
    "name": "plain text on one line, 1 to 80 characters, without control characters",
    "label": "plain text on one line, 1 to 80 characters, without control characters",
    "specialty": "plain text on one line, 1 to 80 characters, without control characters",
    "tls_key": "an absolute path on the Asterisk host",
}


#: Extra words for a missing setting, where the bare name would leave an admin guessing.
MISSING_HINTS = {
    "role": " (n1, n2-amu, n2-mg, pdsa or specialist)",
    "queue": ": name its entry queue",
    "kind": " (emergency, care, local, sis, atsu or partner)",
    "numbers": ": list the numbers that reach it",
}


def holiday_calendars() -> dict[str, str]:
    """Calendar names an admin may write, with what each one means."""
    names = {"FR": "metropolitan France"}
    aliases = getattr(holidays.France, "subdivisions_aliases", {})
    for code in holidays.France.subdivisions:
        if " " in code:  # "Zone A/B/C" are school-holiday zones, not public-holiday calendars
            continue
        described = [alias for alias, target in aliases.items() if target == code and len(alias) > 3]
        names[f"FR-{code}"] = described[0] if described else code
    return names


def holiday_calendar(name: str, years: Iterable[int] | None = None) -> holidays.HolidayBase:
    """The holidays library calendar for a plan's ``site.holidays`` value."""
    subdiv = name.split("-", 1)[1] if "-" in name else None
    return holidays.country_holidays("FR", subdiv=subdiv, years=years)


class _Collector:
    def __init__(self, src: PositionedSource) -> None:
        self.src = src
        self.diagnostics: list[Diagnostic] = []

    def error(self, path: PathKey, message: str, *, key: bool = False) -> None:
        self.diagnostics.append(self.src.diag(path, message, key=key))

    def model(self, cls: type[M], data: Any, path: PathKey) -> M | None:
        """Validate one entry; translate pydantic's errors into admin-readable ones."""
        if not isinstance(data, dict):
            self.error(path, f"expected a mapping of settings here, found {_describe(data)}")
            return None
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            for err in exc.errors():
                self._pydantic_error(cls, data, path, err)
            return None

    def _pydantic_error(self, cls: type[BaseModel], data: Any, path: PathKey, err: Any) -> None:
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and "[" in part))
        # Pydantic reports the alias we validated with; our YAML uses the alias too.
        full = path + loc
        field = next((p for p in reversed(loc) if isinstance(p, str)), "")
        kind = err["type"]
        value = err.get("input")
        ctx = err.get("ctx") or {}
        if kind == "missing":
            where = path + loc[:-1]
            entry = f"{where[0].rstrip('s')} '{where[-1]}'" if len(where) == 2 else "this section"
            self.error(where, f"{entry} has no '{loc[-1]}'{MISSING_HINTS.get(str(loc[-1]), '')}", key=True)
        elif kind == "extra_forbidden":
            known = _field_names(cls, loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (known settings: {', '.join(known)})"
            self.error(full, f"unknown setting {_shown(loc[-1])}{extra}", key=True)
        elif kind == "enum" or kind == "literal_error":
            self.error(full, f"{_shown(value)} is not allowed for '{field}'; use one of: {ctx.get('expected', '')}")
        elif kind == "string_pattern_mismatch":
            form = FIELD_FORMS.get(field, "the expected form")
            verb = "is not" if form[0] in "adp" else "does not have"
            self.error(full, f"{_shown(value)} {verb} {form}")
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            if field == "share":
                self.error(full, f"share {value} is not a percentage: it must be between 0 and 100")
            else:
                bound = ctx.get("ge", ctx.get("gt", ctx.get("le", ctx.get("lt"))))
                word = "at least" if kind.startswith("greater") else "at most"
                self.error(full, f"'{field}' is {value}; it must be {word} {bound}")
        elif kind in ("int_parsing", "int_type", "int_from_float"):
            self.error(full, f"'{field}' must be a whole number, not {_describe(value)}")
        elif kind in ("float_parsing", "float_type"):
            self.error(full, f"'{field}' must be a number, not {_describe(value)}")
        elif kind in ("bool_parsing", "bool_type"):
            self.error(full, f"'{field}' must be yes/no (true/false), not {_describe(value)}")
        elif kind in ("list_type",):
            self.error(full, f"'{field}' must be a list, not {_describe(value)}")
        elif kind in ("string_type",):
            self.error(full, f"'{field}' must be text, not {_describe(value)}")
        elif kind == "too_short":
            self.error(full, f"'{field}' must not be empty")
        elif kind in ("model_type", "dict_type"):
            self.error(full, f"'{field}' must be a mapping of settings, not {_describe(value)}")
        elif kind == "value_error":
            self.error(full, str(ctx.get("error", err["msg"])))
        else:
            self.error(full, f"'{field}': {err['msg']}")


def _field_names(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names allowed at ``loc`` inside ``cls`` (for did-you-mean hints on nested settings)."""
    model: Any = cls
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) and hasattr(model, "model_fields") else None
        if field is None:
            continue
        annotation = field.annotation
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if nested:
            model = nested[0]
    return sorted((f.alias or name) for name, f in model.model_fields.items())


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"'{'yes' if value else 'no'}'"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return _shown(value)


def _shown(value: Any) -> str:
    """A value quoted for a message on one line: control characters escaped, long ones cut, so a
    hostile plan cannot forge extra lines in the admin's terminal or the engine's log."""
    text = str(value)
    if not text.isprintable():
        text = text.encode("unicode_escape").decode("ascii")
    return f"'{text[:60]}...'" if len(text) > 60 else f"'{text}'"


def _entries(c: _Collector, data: dict[str, Any], section: str, *, required: bool) -> dict[str, Any]:
    raw = data.get(section)
    if raw is None:
        if required:
            c.error((), f"the '{section}' section is missing")
        return {}
    if not isinstance(raw, dict):
        c.error((section,), f"'{section}' must be a mapping (name: settings), found {_describe(raw)}")
        return {}
    return raw


def _models(c: _Collector, raw: dict[str, Any], section: str, cls: type[M]) -> dict[str, M]:
    """Every key becomes a context, extension, queue, endpoint or AstDB key in the rendered files,
    so a name that is not a plain identifier is refused here, before anything is written."""
    out: dict[str, M] = {}
    for name, entry in raw.items():
        if not isinstance(name, str) or not re.fullmatch(ID_PATTERN, name):
            c.error((section, name), f"{_describe(name)} is not a valid {SECTION_ITEM[section]} name: "
                                     "1 to 39 lower-case letters, digits and '-', starting with a letter or a "
                                     "digit (it becomes an Asterisk context, queue or endpoint name)", key=True)
            continue
        parsed = c.model(cls, entry, (section, name))
        if parsed is not None:
            out[str(name)] = parsed
    return out


def _parse_desks(c: _Collector, raw: dict[str, Any]) -> dict[str, Desk]:
    """Desk keys are extensions or ranges (``1001-1020``); every desk is declared once."""
    desks: dict[str, Desk] = {}
    for key, entry in raw.items():
        path: PathKey = ("desks", key)
        text = str(key)
        if not re.fullmatch(DESK_KEY_PATTERN, text):
            c.error(path, f"{_shown(text)} is not a desk extension or range: 2 to 8 digits (1001) or two of them "
                          "joined by '-' (1001-1020)", key=True)
            continue
        first, _, last = text.partition("-")
        if last and (len(first) != len(last) or int(last) < int(first)):
            c.error(path, f"range {text} must go up, with both ends of the same length", key=True)
            continue
        if last and int(last) - int(first) + 1 > MAX_DESKS_PER_RANGE:
            c.error(path, f"range {text} declares {int(last) - int(first) + 1} desks; at most "
                          f"{MAX_DESKS_PER_RANGE} per range", key=True)
            continue
        spec = c.model(DeskSpec, entry if entry is not None else {}, path)
        if spec is None:
            continue
        for desk in expand_desks(text, spec):
            if desk.extension in desks:
                c.error(path, f"desk {desk.extension} is declared twice", key=True)
                break
            desks[desk.extension] = desk
    return desks


def _check_site(c: _Collector, site: SiteSpec | None) -> None:
    if site is None:
        return
    try:
        ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        c.error(("site", "timezone"),
                f"{_shown(site.timezone)} is not a known time zone (e.g. Europe/Paris, Indian/Reunion)")
    calendars = holiday_calendars()
    if site.holidays not in calendars:
        hint = difflib.get_close_matches(site.holidays, list(calendars), n=1)
        listing = ", ".join(f"{k} ({v})" if k != v else k for k, v in calendars.items())
        extra = f"did you mean '{hint[0]}'? " if hint else ""
        c.error(("site", "holidays"), f"unknown holiday calendar '{site.holidays}'; {extra}known calendars: {listing}")


def _parse_schedule(c: _Collector, raw: Any) -> Schedule | None:
    """The MG-flow week; defaults to DOMAIN.md (MG 8-20 working days, Saturday 8-12, PDSA otherwise)."""
    if raw is None:
        day = (ScheduleSlot("pdsa", 0, 480), ScheduleSlot("day", 480, 1200), ScheduleSlot("pdsa", 1200, 1440))
        sat = (ScheduleSlot("pdsa", 0, 480), ScheduleSlot("day", 480, 720), ScheduleSlot("pdsa", 720, 1440))
        default = {d: day for d in range(5)} | {5: sat, 6: (ScheduleSlot("pdsa", 0, 1440),)}
        return Schedule(week=default, holiday_period="pdsa")
    if not isinstance(raw, dict):
        c.error(("schedule",), f"'schedule' must be a mapping, found {_describe(raw)}")
        return None
    ok = True
    for key in raw:
        if key not in ("holidays", "week"):
            c.error(("schedule", key), f"unknown setting '{key}' in schedule (known: holidays, week)", key=True)
            ok = False
    holiday_period = raw.get("holidays")
    if not isinstance(holiday_period, str) or not holiday_period:
        c.error(("schedule",), "'holidays' is missing: say which period applies all day on a public holiday")
        ok = False
    week_raw = raw.get("week")
    if not isinstance(week_raw, dict):
        c.error(("schedule",), "'week' is missing: list the periods of each day (mon-fri, sat, sun ...)")
        return None
    # Slots per weekday, with the path each came from, for gap/overlap messages.
    per_day: dict[int, list[tuple[ScheduleSlot, PathKey]]] = {d: [] for d in range(7)}
    broken_days: set[int] = set()
    for key, slots in week_raw.items():
        path: PathKey = ("schedule", "week", key)
        days = _day_range(str(key))
        if days is None:
            c.error(path, f"{_shown(key)} is not a day or day range (use mon..sun, e.g. mon-fri)", key=True)
            ok = False
            continue
        if not isinstance(slots, list):
            c.error(path, f"{_shown(key)} must be a list such as [pdsa 00:00-08:00, day 08:00-20:00, pdsa 20:00-24:00]")
            ok = False
            continue
        for index, text in enumerate(slots):
            slot = _parse_slot(c, text, path + (index,))
            if slot is None:
                ok = False
                broken_days.update(days)
                continue
            for d in days:
                per_day[d].append((slot, path + (index,)))
    week: dict[int, tuple[ScheduleSlot, ...]] = {}
    # (path, message template) -> days, so "mon-fri" reports one line for five days.
    problems: dict[tuple[PathKey, str], list[int]] = {}
    for d in range(7):
        items = sorted(per_day[d], key=lambda item: (item[0].start, item[0].end))
        week[d] = tuple(slot for slot, _ in items)
        if d in broken_days:
            continue
        cursor = 0
        last_path: PathKey = ("schedule", "week")
        for slot, path in items:
            if slot.start > cursor:
                gap = f"{_hhmm(cursor)}-{_hhmm(slot.start)} is not covered by any period"
                problems.setdefault((path, gap), []).append(d)
            elif slot.start < cursor:
                twice = f"{_hhmm(slot.start)}-{_hhmm(min(cursor, slot.end))} is covered twice"
                problems.setdefault((path, twice), []).append(d)
            cursor = max(cursor, slot.end)
            last_path = path
        if cursor < 24 * 60:
            problems.setdefault((last_path, f"{_hhmm(cursor)}-24:00 is not covered by any period"), []).append(d)
    for (path, message), days_hit in problems.items():
        c.error(path, f"{_days_text(days_hit)} {message}")
        ok = False
    if not ok or not isinstance(holiday_period, str):
        return None
    return Schedule(week=week, holiday_period=holiday_period)


def _day_range(key: str) -> list[int] | None:
    parts = key.split("-")
    if len(parts) == 1 and parts[0] in DAYS:
        return [DAYS.index(parts[0])]
    if len(parts) == 2 and parts[0] in DAYS and parts[1] in DAYS:
        first, last = DAYS.index(parts[0]), DAYS.index(parts[1])
        if first <= last:
            return list(range(first, last + 1))
    return None


def _parse_slot(c: _Collector, text: Any, path: PathKey) -> ScheduleSlot | None:
    if not isinstance(text, str) or len(text.split()) != 2 or "-" not in text.split()[1]:
        c.error(path, f"{_describe(text)} is not a period slot; "
                      "write it as 'PERIOD HH:MM-HH:MM' (e.g. day 08:00-20:00)")
        return None
    period, span = text.split()
    start_text, _, end_text = span.partition("-")
    start, end = parse_clock(start_text), parse_clock(end_text, allow_24=True)
    if start is None:
        c.error(path, f"{_shown(start_text)} is not a time of day (HH:MM, 00:00 to 23:59)")
    if end is None:
        c.error(path, f"{_shown(end_text)} is not a time of day (HH:MM, 00:00 to 24:00)")
    if start is None or end is None:
        return None
    if minutes_of(end) <= minutes_of(start):
        c.error(path, f"{_shown(span)} ends before it starts; split a slot that crosses midnight into two days")
        return None
    return ScheduleSlot(period, minutes_of(start), minutes_of(end))


def _days_text(days: list[int]) -> str:
    """'Monday to Friday' for a run of days, else a list: reads like the admin's own week."""
    days = sorted(set(days))
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{DAY_NAMES[days[0]]} to {DAY_NAMES[days[-1]]}"
    return ", ".join(DAY_NAMES[d] for d in days)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_routes(c: _Collector, raw: Any, queues: dict[str, QueueSpec]) -> dict[Priority, Route] | None:
    """Qualification routes; the default is DOMAIN.md's: P0 stays, P1 to N2 AMU, P2 to MG/PDSA."""
    if raw is None:
        amu = next((n for n, q in queues.items() if q.role == Role.N2_AMU), None)
        mg = next((n for n, q in queues.items() if q.role == Role.N2_MG), None)
        pdsa = next((n for n, q in queues.items() if q.role == Role.PDSA), mg)
        if amu is None or mg is None:
            c.error((), "'qualification' is missing and cannot be guessed: the plan needs an n2-amu and an n2-mg queue")
            return None
        return {
            Priority.P0: Route(stay=True),
            Priority.P1: Route(queue=amu),
            Priority.P2: Route(by_period={"day": mg, "pdsa": pdsa or mg}),
        }
    if not isinstance(raw, dict):
        c.error(("qualification",), f"'qualification' must be a mapping P0/P1/P2, found {_describe(raw)}")
        return None
    routes: dict[Priority, Route] = {}
    for key, value in raw.items():
        path: PathKey = ("qualification", key)
        if key not in Priority.__members__:
            c.error(path, f"{_shown(key)} is not a qualification level (use P0, P1, P2)", key=True)
            continue
        route = _parse_route(c, value, path)
        if route is not None:
            routes[Priority(key)] = route
    for level in Priority:
        if level.value in raw:
            continue
        c.error(("qualification",), f"qualification {level.value} has no route")
    return routes


def _parse_route(c: _Collector, value: Any, path: PathKey) -> Route | None:
    if value == "stay":
        return Route(stay=True)
    if isinstance(value, str):
        return Route(queue=value)
    if not isinstance(value, dict):
        c.error(path, f"a route is 'stay', a queue name, or a mapping; found {_describe(value)}")
        return None
    priority = value.get("priority")
    if priority is not None and (not isinstance(priority, int) or not 0 <= priority <= 90):
        c.error(path + ("priority",), f"priority {_describe(priority)} must be a whole number from 0 to 90")
        return None
    if "queue" in value:
        extra = set(value) - {"queue", "priority"}
        if extra:
            c.error(path + (sorted(extra)[0],), f"unknown setting '{sorted(extra)[0]}' in a queue route", key=True)
            return None
        return Route(queue=str(value["queue"]), priority=priority)
    by_period = {str(k): str(v) for k, v in value.items() if k != "priority"}
    if not by_period:
        c.error(path, "a route needs 'queue: NAME' or one queue per schedule period (e.g. day: n2-mg, pdsa: pdsa)")
        return None
    return Route(by_period=by_period, priority=priority)


def _cross_check(
    c: _Collector,
    declared: dict[str, set[str]],
    site: SiteSpec | None,
    queues: dict[str, QueueSpec],
    lines: dict[str, LineSpec],
    partners: dict[str, PartnerSpec],
    schedule: Schedule | None,
    routes: dict[Priority, Route] | None,
    switchovers: dict[str, SwitchoverPreset],
) -> None:
    def known_queue(name: str | None, path: PathKey) -> None:
        if name is not None and name not in declared["queues"]:
            c.error(path, _unknown("queue", name, declared["queues"]))

    def known_partner(name: str | None, path: PathKey) -> None:
        if name is None:
            return
        if site is not None and name == site.id:
            c.error(path, f"'{name}' is this site itself: a call sent there would come straight back (overflow cycle)")
        elif name not in declared["partners"]:
            c.error(path, _unknown("partner", name, declared["partners"]))

    if declared["n1"] == set() and declared["queues"]:
        c.error(("queues",), "no queue has role n1: every SAS needs its N1 front-office (ARM) queue")
    transfer_codes: dict[str, str] = {}
    for name, queue in queues.items():
        if queue.transfer_code is not None:
            if queue.transfer_code in transfer_codes:
                c.error(("queues", name, "transfer_code"), f"transfer code {queue.transfer_code} is already used by "
                                                           f"queue '{transfer_codes[queue.transfer_code]}'")
            else:
                transfer_codes[queue.transfer_code] = name
        if queue.fallback is not None:
            known_queue(queue.fallback.queue, ("queues", name, "fallback", "queue"))
        if queue.overflow is not None:
            _check_overflow(c, name, queue.overflow, known_partner)
        if queue.role == Role.SPECIALIST and not queue.specialty:
            c.error(("queues", name, "role"), "a specialist queue needs 'specialty' (psychiatry, paediatrics, ...)")
    if site is not None and site.id in partners:
        c.error(("partners", site.id), f"'{site.id}' is this site itself; a partner must be another SAS", key=True)
    _check_emergency_first(c, lines)
    for name, partner in partners.items():
        if not partner.match and not _is_address(partner.host):
            c.error(("partners", name), f"partner '{name}' needs 'match': the IP addresses its calls come from "
                                        f"('{partner.host}' is a host name, resolved only once when Asterisk loads)")
        if partner.overflow_number not in partner.accepts:
            c.error(("partners", name, "overflow_number"),
                    f"overflow number {partner.overflow_number} is not among the numbers {name} accepts")

    seen_numbers: dict[tuple[str | None, str], str] = {}
    for name, line in lines.items():
        known_queue(line.queue, ("lines", name, "queue"))
        if line.kind == LineKind.PARTNER:
            if line.partner is None:
                c.error(("lines", name), "a partner line needs 'partner': the SAS whose trunk it arrives on")
            known_partner(line.partner, ("lines", name, "partner"))
        elif line.partner is not None:
            c.error(("lines", name, "partner"), f"only a partner line names a partner (this line is kind {line.kind})")
        for index, number in enumerate(line.numbers):
            key = (line.partner, number)
            if key in seen_numbers:
                c.error(("lines", name, "numbers", index),
                        f"number {number} is already used by line '{seen_numbers[key]}'")
            else:
                seen_numbers[key] = name
    if routes is not None:
        periods = schedule.periods if schedule is not None else frozenset()
        for level, route in routes.items():
            path: PathKey = ("qualification", level.value)
            known_queue(route.queue, path)
            for period, routed in route.by_period.items():
                known_queue(routed, path + (period,))
                if schedule is not None and period not in periods:
                    known = ", ".join(sorted(periods))
                    c.error(path + (period,), f"{_shown(period)} is not a period of the schedule ({known})", key=True)
            if route.by_period and schedule is not None:
                for missing in sorted(periods - set(route.by_period)):
                    c.error(path, f"{level.value} has no queue for schedule period '{missing}'")
    for name, preset in switchovers.items():
        path = ("switchovers", name)
        if preset.line not in declared["lines"]:
            c.error(path + ("line",), _unknown("line", preset.line, declared["lines"]))
        elif preset.line in lines and lines[preset.line].kind == LineKind.PARTNER:
            c.error(path + ("line",), "a partner line cannot be switched over to another partner")
        known_partner(preset.partner, path + ("partner",))
        target = partners.get(preset.partner)
        switched = lines.get(preset.line)
        dialled = preset.number or (switched.numbers[0] if switched else None)
        if target is not None and dialled is not None and dialled not in target.accepts:
            c.error(path + ("number",) if preset.number else path,
                    f"{preset.partner} does not accept number {dialled} (it accepts {', '.join(target.accepts)})")


def _check_overflow(c: _Collector, queue: str, rule: OverflowRule, known_partner: Callable[..., None]) -> None:
    path: PathKey = ("queues", queue, "overflow")
    when = rule.when
    if not (when.longest_wait_over or when.callers_waiting_over is not None or when.no_agent_logged_in
            or when.all_agents_busy_for):
        c.error(path + ("when",), "an overflow rule needs at least one condition in 'when'")
    seen: set[str] = set()
    for index, partner in enumerate(rule.partners):
        if partner in seen:
            c.error(path + ("partners", index), f"partner '{partner}' is listed twice")
        seen.add(partner)
        known_partner(partner, path + ("partners", index))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_emergency_first(c: _Collector, lines: dict[str, LineSpec]) -> None:
    """A non-urgent caller, even sent back to the front of a queue, must wait behind every
    emergency: care lines' priorities (+1 for their front) stay below every emergency line's."""
    urgent = {name: line.priority for name, line in lines.items() if line.kind in EMERGENCY_KINDS}
    if not urgent:
        return
    lowest_name = min(urgent, key=lambda name: urgent[name])
    for name, line in lines.items():
        if line.kind in CARE_KINDS and line.priority + 1 >= urgent[lowest_name]:
            c.error(("lines", name, "priority"),
                    f"priority {line.priority} of {line.kind} line {_shown(name)} must stay at least 2 below the "
                    f"emergency line {_shown(lowest_name)} ({urgent[lowest_name]}): a non-urgent caller sent back "
                    "to the front of a queue must still wait behind every emergency")


def _check_members(c: _Collector, queues: dict[str, QueueSpec], desks: dict[str, Desk]) -> None:
    """A static member rings a phone for every caller of its queue: only a declared desk may be one."""
    for name, queue in queues.items():
        for index, member in enumerate(queue.members):
            extension = member.removeprefix("PJSIP/")
            if member.startswith("PJSIP/") and extension not in desks:
                c.error(("queues", name, "members", index), f"{_shown(member)} is not a declared desk: declare "
                                                            f"{extension} under 'desks' first")


def _unknown(kind: str, name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    hint = difflib.get_close_matches(name, list(known), n=1)
    suffix = f"; did you mean '{hint[0]}'?" if hint else (f"; known: {', '.join(known)}" if known else "")
    return f"unknown {kind} {_shown(name)}{suffix}"


def build_plan(src: PositionedSource) -> Plan:
    """Validate positioned data into a Plan, or raise :class:`PlanError` with every problem found."""
    c = _Collector(src)
    data = src.data
    for key in data:
        if key not in SECTIONS:
            hint = difflib.get_close_matches(str(key), SECTIONS, n=1)
            extra = f" (did you mean '{hint[0]}'?)" if hint else f" (sections: {', '.join(SECTIONS)})"
            c.error((key,), f"unknown section {_shown(key)}{extra}", key=True)
    site = c.model(SiteSpec, data.get("site"), ("site",)) if "site" in data else None
    if "site" not in data:
        c.error((), "the 'site' section is missing")
    _check_site(c, site)
    queues = _models(c, _entries(c, data, "queues", required=True), "queues", QueueSpec)
    lines = _models(c, _entries(c, data, "lines", required=True), "lines", LineSpec)
    partners = _models(c, _entries(c, data, "partners", required=False), "partners", PartnerSpec)
    sip = c.model(SipSpec, data.get("sip"), ("sip",)) if data.get("sip") is not None else None
    desks = _parse_desks(c, _entries(c, data, "desks", required=False))
    switchovers = _models(c, _entries(c, data, "switchovers", required=False), "switchovers", SwitchoverPreset)
    alarms = c.model(AlarmPolicy, data.get("alarms") or {}, ("alarms",)) if "alarms" in data else AlarmPolicy()
    recording = (c.model(RecordingSpec, data.get("recording") or {}, ("recording",)) if "recording" in data
                 else RecordingSpec())
    if recording is not None and recording.lines is not None:
        for index, line_id in enumerate(recording.lines):
            if line_id not in lines and line_id not in (data.get("lines") or {}):
                c.error(("recording", "lines", index), _unknown("line", line_id, lines))
    _check_members(c, queues, desks)
    schedule = _parse_schedule(c, data.get("schedule"))
    routes = _parse_routes(c, data.get("qualification"), queues)
    declared = {
        section: {str(k) for k in (data.get(section) or {})} if isinstance(data.get(section), dict) else set()
        for section in ("queues", "lines", "partners")
    }
    # A queue whose entry is broken still counts as declared (its own error is already listed);
    # the N1 check looks at what the admin wrote as role, valid entry or not.
    declared["n1"] = {
        str(name) for name, entry in (data.get("queues") or {}).items()
        if isinstance(entry, dict) and entry.get("role") == "n1"
    } if isinstance(data.get("queues"), dict) else set()
    _cross_check(c, declared, site, queues, lines, partners, schedule, routes, switchovers)
    if c.diagnostics or site is None or schedule is None or routes is None:
        raise PlanError(c.diagnostics or [Diagnostic(src.file, 1, 1, "the plan is incomplete")])
    return Plan(
        source=Path(src.file).name,
        source_sha256=hashlib.sha256(src.text.encode()).hexdigest(),
        site=site,
        queues=queues,
        lines=lines,
        partners=partners,
        schedule=schedule,
        routes=routes,
        switchovers=switchovers,
        sip=sip,
        desks=desks,
        alarms=alarms or AlarmPolicy(),
        recording=recording or RecordingSpec(),
    )


def load_plan(path: Path | str) -> Plan:
    """Load and validate a plan file (raises :class:`PlanError` listing every problem)."""
    return build_plan(load_source(path))


def parse_plan(text: str, name: str = "plan.yaml") -> Plan:
    return build_plan(parse_source(text, name))
