"""`sas-router plan check`: every error a telecom admin can make is named with line, column and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sas_router.engine.cli import app
from sas_router.engine.plan import PlanError, load_plan, parse_plan
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "dialplans").glob("*.yaml"))

BASE = textwrap.dedent(
    """\
    site:
      id: sas-69
      name: SAS du Rhône
      departements: ["69"]
      timezone: Europe/Paris
      holidays: FR
    queues:
      n1-arm: {role: n1}
      n2-amu: {role: n2-amu}
      n2-mg: {role: n2-mg}
      pdsa: {role: pdsa}
    lines:
      "15": {kind: emergency, numbers: ["15"], queue: n1-arm, priority: 5}
      "116117": {kind: care, numbers: ["116117"], queue: n1-arm, priority: 3}
    partners:
      sas-38: {name: Isère, host: 203.0.113.38, overflow_number: "6938", accepts: ["6938", "116117"]}
    schedule:
      holidays: pdsa
      week:
        mon-fri: [pdsa 00:00-08:00, day 08:00-20:00, pdsa 20:00-24:00]
        sat: [pdsa 00:00-08:00, day 08:00-12:00, pdsa 12:00-24:00]
        sun: [pdsa 00:00-24:00]
    qualification:
      P0: stay
      P1: n2-amu
      P2: {day: n2-mg, pdsa: pdsa}
    """
)


def errors_of(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "site.yaml")
    return [(d.line, d.column, d.message) for d in info.value.diagnostics]


def line_of(text: str, needle: str) -> int:
    """1-based line number of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_shipped_examples_are_valid(path: Path) -> None:
    plan = load_plan(path)
    assert plan.queues_with_role("n1"), "every example has its N1 queue"


def test_base_fixture_is_valid() -> None:
    plan = parse_plan(BASE)
    assert plan.site.id == "sas-69"


def test_unknown_queue_reference_is_named_with_a_suggestion() -> None:
    text = BASE.replace('queue: n1-arm, priority: 3', 'queue: n1-armm, priority: 3')
    (line, column, message), = errors_of(text)
    assert line == line_of(text, "n1-armm")
    assert column == text.splitlines()[line - 1].index("n1-armm") + 1
    assert message == "unknown queue 'n1-armm'; did you mean 'n1-arm'?"


def test_unknown_partner_in_overflow_rule() -> None:
    text = BASE.replace("n1-arm: {role: n1}",
                        "n1-arm: {role: n1, overflow: {partners: [sas-01], when: {longest_wait_over: 60}}}")
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "sas-01")
    assert message.startswith("unknown partner 'sas-01'")


def test_duplicate_number_across_lines() -> None:
    text = BASE.replace('numbers: ["116117"]', 'numbers: ["116117", "15"]')
    (line, column, message), = errors_of(text)
    assert (line, message) == (line_of(text, '"116117", "15"'), "number 15 is already used by line '15'")
    assert column == text.splitlines()[line - 1].index('"15"]') + 1


def test_same_number_on_a_partner_trunk_is_not_a_duplicate() -> None:
    text = BASE.replace(
        "partners:",
        '  from-38: {kind: partner, partner: sas-38, numbers: ["116117"], queue: n1-arm}\npartners:',
    )
    assert parse_plan(text).lines["from-38"].partner == "sas-38"


def test_line_without_entry_queue() -> None:
    text = BASE.replace(', queue: n1-arm, priority: 3}', ', priority: 3}')
    (line, column, message), = errors_of(text)
    assert (line, column) == (line_of(text, '"116117": {'), 3)
    assert message == "line '116117' has no 'queue': name its entry queue"


def test_missing_n1_queue() -> None:
    text = BASE.replace("n1-arm: {role: n1}", "n1-arm: {role: n2-amu}")
    messages = [m for _, _, m in errors_of(text)]
    assert "no queue has role n1: every SAS needs its N1 front-office (ARM) queue" in messages


def test_queue_with_no_role() -> None:
    text = BASE.replace("pdsa: {role: pdsa}", "pdsa: {label: PDSA}")
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "pdsa: {label")
    assert message == "queue 'pdsa' has no 'role' (n1, n2-amu, n2-mg, pdsa or specialist)"


def test_schedule_gap_is_reported_once_for_a_day_range() -> None:
    text = BASE.replace("pdsa 20:00-24:00]", "pdsa 21:00-24:00]")
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "mon-fri")
    assert message == "Monday to Friday 20:00-21:00 is not covered by any period"


def test_schedule_overlap() -> None:
    text = BASE.replace("day 08:00-12:00, pdsa 12:00-24:00", "day 08:00-12:30, pdsa 12:00-24:00")
    (_, _, message), = errors_of(text)
    assert message == "Saturday 12:00-12:30 is covered twice"


def test_time_that_is_not_a_time() -> None:
    text = BASE.replace("sun: [pdsa 00:00-24:00]", "sun: [pdsa 00:00-25:00]")
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "25:00")
    assert message == "'25:00' is not a time of day (HH:MM, 00:00 to 24:00)"


def test_switchover_window_time_that_is_not_a_time() -> None:
    text = BASE + 'switchovers:\n  night: {line: "116117", partner: sas-38, window: {from: "8h", to: "20:00"}}\n'
    (_, _, message), = errors_of(text)
    assert message == "'8h' is not a time of day (HH:MM, 00:00 to 24:00)"


def test_overflow_cycle_back_to_the_same_site() -> None:
    text = BASE.replace("n1-arm: {role: n1}",
                        "n1-arm: {role: n1, overflow: {partners: [sas-69], when: {callers_waiting_over: 5}}}")
    (_, _, message), = errors_of(text)
    assert message == "'sas-69' is this site itself: a call sent there would come straight back (overflow cycle)"


def test_percentage_outside_0_100() -> None:
    text = BASE + 'switchovers:\n  night: {line: "116117", partner: sas-38, share: 130}\n'
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "share: 130")
    assert message == "share 130 is not a percentage: it must be between 0 and 100"


def test_unknown_holiday_calendar_lists_the_known_ones() -> None:
    text = BASE.replace("holidays: FR\n", "holidays: FR-99\n")
    (line, _, message), = errors_of(text)
    assert line == 6
    assert message.startswith("unknown holiday calendar 'FR-99'")
    assert "FR-57 (Moselle)" in message and "FR-974 (La Réunion)" in message


def test_all_errors_are_listed_at_once_in_file_order() -> None:
    text = (BASE.replace("holidays: FR\n", "holidays: FR-99\n")
            .replace('queue: n1-arm, priority: 3', 'queue: nope, priority: 3')
            .replace("sun: [pdsa 00:00-24:00]", "sun: [pdsa 00:00-23:00]"))
    found = errors_of(text)
    assert len(found) == 3
    assert [line for line, _, _ in found] == sorted(line for line, _, _ in found)


def test_unknown_setting_suggests_the_right_one() -> None:
    text = BASE.replace("n2-mg: {role: n2-mg}", "n2-mg: {role: n2-mg, ring_timout: 20}")
    (_, _, message), = errors_of(text)
    assert message == "unknown setting 'ring_timout' (did you mean 'ring_timeout'?)"


def test_yaml_syntax_error_has_a_position() -> None:
    (line, _, message), = errors_of(BASE.replace("queues:\n", "queues:\n  n1-arm: [\n", 1))
    assert line > 1 and message.startswith("YAML syntax error")


def test_duplicate_key_is_refused() -> None:
    (_, _, message), = errors_of(BASE.replace("n2-mg: {role: n2-mg}", "n2-mg: {role: n2-mg}\n  n2-mg: {role: n2-mg}"))
    assert "written twice" in message


def test_cli_check_prints_every_error_and_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace('queue: n1-arm, priority: 3', 'queue: nope, priority: 3')
                   .replace("holidays: FR\n", "holidays: XX\n"))
    result = CliRunner().invoke(app, ["plan", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:6:13: unknown holiday calendar 'XX'" in result.output
    assert "unknown queue 'nope'" in result.output
    assert "2 errors; the plan is refused" in result.output


def test_cli_check_accepts_the_examples() -> None:
    result = CliRunner().invoke(app, ["plan", "check", *map(str, EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "sas-69.yaml: OK" in result.output


def test_a_transfer_code_used_by_two_queues_is_refused_where_it_is_repeated() -> None:
    text = BASE.replace("n2-amu: {role: n2-amu}", 'n2-amu: {role: n2-amu, transfer_code: "200"}') \
               .replace("n2-mg: {role: n2-mg}", 'n2-mg: {role: n2-mg, transfer_code: "200"}')
    (line, _, message), = errors_of(text)
    assert (line, message) == (line_of(text, "n2-mg: {role"), "transfer code 200 is already used by queue 'n2-amu'")


def test_a_transfer_code_must_be_digits_a_desk_can_key() -> None:
    text = BASE.replace("n2-amu: {role: n2-amu}", 'n2-amu: {role: n2-amu, transfer_code: "amu"}')
    (line, _, message), = errors_of(text)
    assert line == line_of(text, 'transfer_code: "amu"') and "digits a desk keys on its phone" in message


def test_a_partner_identified_by_a_host_name_is_refused() -> None:
    text = BASE.replace("host: 203.0.113.38,", "host: sas38.example.net,")
    (line, _, message), = errors_of(text)
    assert line == line_of(text, "sas38.example.net")
    assert "needs 'match'" in message and "resolved only once" in message


def test_sip_section_addresses_must_be_addresses() -> None:
    text = BASE + textwrap.dedent("""\
        sip:
          bind: pbx.example.net
          operator: {match: ["192.0.2.0/28", "sbc.example.net"]}
        """)
    found = errors_of(text)
    assert [(line, message.split(" (")[0]) for line, _, message in found] == [
        (line_of(text, "bind: pbx"), "'pbx.example.net' is not an IP address"),
        (line_of(text, "sbc.example.net"), "'sbc.example.net' is not an IP address or network"),
    ]


@pytest.mark.parametrize(("key", "problem"), [
    ('"1001-0999"', "must go up"),
    ('"1001-99999"', "must go up, with both ends of the same length"),
    ('"1000-9999"', "at most 500 per range"),
    ('"10x1"', "is not a desk extension or range"),
])
def test_desk_ranges_that_make_no_sense_are_refused(key: str, problem: str) -> None:
    text = BASE + f"desks:\n  {key}: {{template: phone}}\n"
    (line, _, message), = errors_of(text)
    assert line == line_of(text, key) and problem in message


def test_a_desk_declared_twice_is_refused() -> None:
    text = BASE + 'desks:\n  "1001-1010": {template: phone}\n  "1010": {template: webrtc}\n'
    (line, _, message), = errors_of(text)
    assert line == line_of(text, '"1010":') and message == "desk 1010 is declared twice"


def test_a_non_urgent_line_may_not_be_raised_to_the_level_of_an_emergency_line() -> None:
    text = BASE.replace('"116117": {kind: care, numbers: ["116117"], queue: n1-arm, priority: 3}',
                        '"116117": {kind: care, numbers: ["116117"], queue: n1-arm, priority: 4}')
    (line, _column, message), = errors_of(text)
    assert line == line_of(text, '"116117": {kind: care')
    assert message == ("priority 4 of care line '116117' must stay at least 2 below the emergency line '15' (5): "
                       "a non-urgent caller sent back to the front of a queue must still wait behind every emergency")
