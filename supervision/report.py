"""The annex-3 indicators from the call journal: monthly table 1 and the telephony rows of table 3.

Annex 3 counts only **SAS hours**: working days (Monday to Friday, not a public holiday of the
site's calendar), in daytime, outside PDSA hours — here: a call counts when it *started* at a
time the site's schedule gives to the ``day`` period on a weekday. Only calls of this site count
(``calls.site``); calls overflowed or switched over *to* us are answered by us and count here.

Table 1: calls answered, QS30 (answered in under 30 s of the first queue join / answered),
regulation files (DRM: calls qualified), of which AMU (P0, P1) and ambulatory (P2), and simple
medical advices when the desk recorded them. Table 3: average talk time per desk role
(``arm-n1`` item 9, ``arm-amu`` 10, ``osnp`` 11, ``mrg`` 12, ``mrh``/``mru`` 13).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sas_router.engine.plan import Plan
from sas_router.engine.plan.schedule import holiday_name, period_at
from sas_router.supervision.models import CallRow, LegRow, QualificationRow, RecordingRow
from sas_router.supervision.recordings import FAILED
from sas_router.supervision.service import ROLE_LABELS
from sqlalchemy import Engine, select


def in_sas_hours(plan: Plan, at: float) -> bool:
    instant = datetime.fromtimestamp(at, UTC)
    local = instant.astimezone(ZoneInfo(plan.site.timezone))
    if local.weekday() >= 5 or holiday_name(plan, local.date()) is not None:
        return False
    return period_at(plan, instant) == "day"


def month_bounds(plan: Plan, year: int, month: int) -> tuple[float, float]:
    tz = ZoneInfo(plan.site.timezone)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=tz)
    return start.timestamp(), end.timestamp()


@dataclass
class MonthlyReport:
    site: str
    month: str
    calls_offered: int = 0
    calls_answered: int = 0
    answered_30: int = 0
    regulation_files: int = 0
    amu_files: int = 0
    ambulatory_files: int = 0
    medical_advices: int = 0
    #: Answered calls whose recording is whole, and recorded calls whose recording failed.
    recorded_answered: int = 0
    recording_failures: int = 0
    #: role -> (agent legs, mean talk seconds)
    durations: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def qs30(self) -> float | None:
        return self.answered_30 / self.calls_answered if self.calls_answered else None

    def figures(self) -> list[Row]:
        """The indicators in the annex's order (table 3's roles by item number, 9 to 13)."""
        out = [Row("calls answered by the SAS", "T1.1", self.calls_answered, "calls"),
               Row("QS30 (answered < 30 s / answered)", "T1.2", self.qs30, "ratio", self.calls_answered),
               Row("regulation files (DRM)", "T1.3", self.regulation_files, "files"),
               Row("  of which AMU (P0, P1)", "T1.4", self.amu_files, "files"),
               Row("  of which ambulatory (P2)", "T1.5", self.ambulatory_files, "files"),
               Row("simple medical advices (MG regulation)", "T1.6", self.medical_advices, "advices")]
        order = list(ROLE_LABELS)
        for role in sorted(self.durations, key=lambda r: (order.index(r) if r in order else len(order), r)):
            legs, mean = self.durations[role]
            out.append(Row(f"average call duration, {ROLE_LABELS.get(role, role)}", "T3", mean, "s", legs))
        recorded = self.recorded_answered / self.calls_answered if self.calls_answered else None
        out.append(Row("answered calls recorded (recorder)", "REC", recorded, "ratio", self.calls_answered))
        out.append(Row("recordings failed (missing, cut, never started)", "REC", self.recording_failures, "calls"))
        return out

    def rows(self) -> list[tuple[str, str, str]]:
        """(indicator, annex item, value as a reader reads it)."""
        return [(row.indicator, row.item, row.shown()) for row in self.figures()]


@dataclass(frozen=True)
class Row:
    indicator: str
    item: str
    value: float | int | None
    unit: str
    #: The calls the figure is taken over (QS30's answered calls, a role's calls), if it is a mean or a ratio.
    over: int | None = None

    def shown(self) -> str:
        if self.value is None:
            return ""
        if self.unit == "ratio":
            return f"{self.value:.1%}"
        if self.unit == "s":
            return f"{self.value:.0f} s ({self.over} calls)"
        return str(self.value)

    def number(self) -> str:
        """For a spreadsheet: a plain number (ratio as a fraction, seconds to the tenth)."""
        if self.value is None:
            return ""
        if self.unit == "ratio":
            return f"{self.value:.4f}"
        if self.unit == "s":
            return f"{self.value:.1f}"
        return str(self.value)


def monthly(db: Engine, plan: Plan, year: int, month: int) -> MonthlyReport:
    site = plan.site.id
    start, end = month_bounds(plan, year, month)
    report = MonthlyReport(site=site, month=f"{year:04d}-{month:02d}")
    with db.connect() as connection:
        calls = connection.execute(select(CallRow.call_id, CallRow.started_at, CallRow.answered_at,
                                          CallRow.first_wait)
                                   .where(CallRow.site == site, CallRow.started_at >= start,
                                          CallRow.started_at < end)).all()
        counted = {row.call_id for row in calls if in_sas_hours(plan, row.started_at)}
        for row in calls:
            if row.call_id not in counted:
                continue
            report.calls_offered += 1
            if row.answered_at is not None:
                report.calls_answered += 1
                if row.first_wait is not None and row.first_wait < 30:
                    report.answered_30 += 1
        qualifications = connection.execute(select(QualificationRow.call_id, QualificationRow.at,
                                                   QualificationRow.level, QualificationRow.medical_advice)
                                            .join(CallRow, CallRow.call_id == QualificationRow.call_id)
                                            .where(CallRow.site == site, CallRow.started_at >= start,
                                                   CallRow.started_at < end)
                                            .order_by(QualificationRow.at)).all()
        level: dict[str, str] = {}
        advised: set[str] = set()
        for qualification in qualifications:
            if qualification.call_id in counted:
                level[qualification.call_id] = qualification.level  # the last qualification of the file stands
                if qualification.medical_advice:
                    advised.add(qualification.call_id)
        report.regulation_files = len(level)
        report.amu_files = sum(1 for v in level.values() if v in ("P0", "P1"))
        report.ambulatory_files = sum(1 for v in level.values() if v == "P2")
        report.medical_advices = len(advised)
        legs = connection.execute(select(LegRow.call_id, LegRow.role, LegRow.talk_time)
                                  .join(CallRow, CallRow.call_id == LegRow.call_id)
                                  .where(CallRow.site == site, CallRow.started_at >= start,
                                         CallRow.started_at < end, LegRow.talk_time.is_not(None))).all()
        talk: dict[str, list[float]] = {}
        for leg in legs:
            if leg.call_id in counted:
                talk.setdefault(leg.role or "unknown", []).append(leg.talk_time)
        report.durations = {role: (len(values), sum(values) / len(values)) for role, values in talk.items()}
        answered = {row.call_id for row in calls if row.call_id in counted and row.answered_at is not None}
        recordings = connection.execute(select(RecordingRow.call_id, RecordingRow.status)
                                        .where(RecordingRow.site == site, RecordingRow.started_at >= start - 86_400,
                                               RecordingRow.started_at < end)).all()
        for recording in recordings:
            if recording.call_id not in counted:
                continue
            if recording.status == "ok" and recording.call_id in answered:
                report.recorded_answered += 1
            elif recording.status in FAILED:
                report.recording_failures += 1
    return report


def render_table(report: MonthlyReport, baseline: MonthlyReport | None = None) -> str:
    head = f"Annex 3 indicators — {report.site} — {report.month} (SAS hours: working days, daytime, outside PDSA)"
    rows = report.rows()
    base = {label: value for label, _, value in baseline.rows()} if baseline else {}
    width = max(len(label) for label, _, _ in rows)
    lines = [head, "=" * len(head)]
    title = f"{'indicator':<{width}}  item  {report.month:>16}"
    if baseline:
        title += f"  {baseline.month:>16}"
    lines.append(title)
    for label, item, value in rows:
        line = f"{label:<{width}}  {item:<4}  {value:>16}"
        if baseline:
            line += f"  {base.get(label, ''):>16}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def to_csv(report: MonthlyReport, baseline: MonthlyReport | None = None) -> str:
    """One row per indicator, numbers only (a ratio as a fraction, durations in seconds), with
    the unit and the number of calls a ratio or a mean is taken over."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["site", "indicator", "item", "unit", report.month, f"{report.month} over"]
    if baseline:
        header += [baseline.month, f"{baseline.month} over"]
    writer.writerow(header)
    base = {row.indicator: row for row in baseline.figures()} if baseline else {}
    for row in report.figures():
        line = [report.site, row.indicator.strip(), row.item, row.unit, row.number(),
                "" if row.over is None else row.over]
        if baseline:
            other = base.get(row.indicator)
            line += ["", ""] if other is None else [other.number(), "" if other.over is None else other.over]
        writer.writerow(line)
    return out.getvalue()


def parse_month(text: str) -> tuple[int, int]:
    try:
        parsed = date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM, e.g. 2026-11") from None
    return parsed.year, parsed.month
