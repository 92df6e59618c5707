"""A plan file cannot be turned against the switch: hostile names and texts are refused by `plan
check` with their line, column and rule; bombs are refused fast; and whatever the loader accepts
renders into exactly the contexts, sections, settings and applications a site plan produces."""

from __future__ import annotations

import dataclasses
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sas_router.engine.plan import PlanError, load_plan, parse_plan
from sas_router.engine.plan.grammar import RenderRefused, check_rendered
from sas_router.engine.plan.model import Plan, QueueSpec, Role
from sas_router.engine.plan.render import render_all

ROOT = Path(__file__).resolve().parents[2]

BASE = textwrap.dedent(
    """\
    site:
      id: sas-69
      name: SITE_NAME
      departements: ["69"]
    queues:
      n1-arm: {role: n1, label: QUEUE_LABEL}
      QUEUE_KEY: {role: n2-amu}
      n2-mg: {role: n2-mg}
      psy: {role: specialist, specialty: SPECIALTY, members: [PJSIP/1001]}
    lines:
      "15": {kind: emergency, numbers: ["15"], queue: n1-arm, priority: 5, label: LINE_LABEL}
      LINE_KEY: {kind: care, numbers: ["116117"], queue: n1-arm, priority: 3}
    partners:
      PARTNER_KEY: {name: PARTNER_NAME, host: 203.0.113.38, match: [203.0.113.38], overflow_number: "6938",
                    accepts: ["6938", "15"]}
    desks:
      "1001-1004": {template: phone, label: DESK_LABEL}
    schedule:
      holidays: day
      week:
        mon-sun: [day 00:00-24:00]
    qualification:
      P0: stay
      P1: QUEUE_KEY
      P2: n2-mg
    switchovers:
      PRESET_KEY: {line: "15", partner: PARTNER_KEY, label: PRESET_LABEL, window: {from: "22:00", to: "06:00"}}
    """
)
SAFE = {"SITE_NAME": "SAS du Rhône", "QUEUE_LABEL": "ARM N1", "QUEUE_KEY": "n2-amu", "SPECIALTY": "psychiatrie",
        "LINE_LABEL": "Urgences", "LINE_KEY": "116117", "PARTNER_KEY": "sas-38", "PARTNER_NAME": "Isère",
        "DESK_LABEL": "ARM", "PRESET_KEY": "nuit", "PRESET_LABEL": "Nuit"}


def plan_text(**values: str) -> str:
    text = BASE
    for slot, safe in SAFE.items():
        value = values.get(slot, safe)
        text = text.replace(slot, _yaml_string(value))
    return text


def _yaml_string(value: str) -> str:
    """A double-quoted YAML scalar holding exactly ``value`` (the attacker controls the content,
    not the file's syntax: this is what a hostile name written in a plan looks like once parsed)."""
    escaped = "".join(ch if ch.isprintable() and ch not in '"\\' else f"\\U{ord(ch):08x}" for ch in value)
    return f'"{escaped}"'


def refusal(**values: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(plan_text(**values), "site.yaml")
    return [str(d) for d in info.value.diagnostics]


def test_the_safe_base_plan_renders() -> None:
    plan = parse_plan(plan_text())
    assert set(plan.queues) == {"n1-arm", "n2-amu", "n2-mg", "psy"}
    render_all(plan)


@pytest.mark.parametrize(("slot", "value", "rule"), [
    ("LINE_KEY", "116117\n same => n,System(touch pwned)", "is not a valid line name"),
    ("LINE_KEY", "sis-n1${SHELL(id)}", "is not a valid line name"),
    ("QUEUE_KEY", "n2-amu]\n[attacker", "is not a valid queue name"),
    ("PARTNER_KEY", "sas-38]\n[operator", "is not a valid partner name"),
    ("PRESET_KEY", "nuit;x", "is not a valid switch-over preset name"),
    ("SPECIALTY", "psy\nmember => Local/0600000000@attacker-context", "is not plain text on one line"),
    ("SITE_NAME", "Rhône\r\n[sas-from-pstn]", "is not plain text on one line"),
    ("DESK_LABEL", "ARM\u2028exten", "is not plain text on one line"),
])
def test_the_attacks_found_are_refused_with_their_line_and_rule(slot: str, value: str, rule: str) -> None:
    messages = refusal(**{slot: value})
    hostile_line = next(i for i, line in enumerate(plan_text().splitlines(), 1) if _yaml_string(SAFE[slot]) in line)
    assert any(m.startswith(f"site.yaml:{hostile_line}:") and rule in m for m in messages), messages
    assert all("\n" not in m for m in messages), "a refusal message never spans lines"


def test_a_static_member_in_a_foreign_context_or_an_undeclared_desk_is_refused() -> None:
    text = plan_text().replace("members: [PJSIP/1001]", "members: [Local/0600000000@attacker-context]")
    assert any("Local/0600000000@attacker-context" in str(d) for d in _diagnostics(text))
    text = plan_text().replace("members: [PJSIP/1001]", "members: [PJSIP/9999]")
    assert any("'PJSIP/9999' is not a declared desk" in str(d) for d in _diagnostics(text))


def _diagnostics(text: str) -> list[object]:
    with pytest.raises(PlanError) as info:
        parse_plan(text)
    return list(info.value.diagnostics)


# --- bounded parsing ---------------------------------------------------------------------------

def test_an_alias_bomb_is_refused_at_the_line_that_crosses_the_limit() -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        bomb += f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n"
    (message,) = _messages(bomb + "site: *i\n")
    assert re.match(r"plan\.yaml:\d+:\d+: the plan's aliases expand to more than 200,000 values", message)


def test_a_plan_nested_a_hundred_thousand_deep_is_refused_not_a_traceback() -> None:
    (message,) = _messages("site: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert message.startswith("plan.yaml:1:") and "nests deeper than 20 levels" in message


def test_a_fifty_megabyte_plan_is_refused_before_it_is_parsed(tmp_path: object) -> None:
    (message,) = _messages("site:\n" + "  # padding\n" * 5_000_000)
    assert message == "plan.yaml:1:1: the plan file is larger than 1,000,000 bytes; a site plan is a few hundred lines"


def test_a_few_aliases_as_admins_write_them_still_work() -> None:
    text = plan_text().replace("    week:\n      mon-sun: [day 00:00-24:00]",
                               "    week:\n      mon-fri: &all [day 00:00-24:00]\n      sat: *all\n      sun: *all")
    assert parse_plan(text).schedule is not None


def _messages(text: str) -> list[str]:
    with pytest.raises(PlanError) as info:
        parse_plan(text)
    return [str(d) for d in info.value.diagnostics]


# --- the renderer's own lock -------------------------------------------------------------------

def _with_queue(plan: Plan, name: str, spec: QueueSpec | None = None) -> Plan:
    return dataclasses.replace(plan, queues={**plan.queues, name: spec or QueueSpec(role=Role.N2_AMU)})


@pytest.mark.parametrize(("name", "spec", "reason"), [
    ("x\n same => n,System(touch pwned)", None, "refused to render"),
    ("x${SHELL(id)}", None, "refused to render"),
    ("ok", QueueSpec.model_construct(role=Role.N2_AMU, members=["Local/0600@attacker"], label="", specialty=None),
     "a queue member that is neither a desk nor a remote regulator"),
])
def test_the_renderer_refuses_what_the_loader_would_have_refused(name: str, spec: QueueSpec | None,
                                                                 reason: str) -> None:
    """Defence in depth: a model built without the loader cannot smuggle structure into a file."""
    plan = parse_plan(plan_text())
    with pytest.raises(RenderRefused, match=re.escape(reason)):
        render_all(_with_queue(plan, name, spec))


# --- property: whatever is accepted renders into exactly the expected structure -----------------

HOSTILE = st.text(alphabet=st.sampled_from(list("az09-_ .;,=>[](){}$#!&|\"'\\/@\n\r\t\x00\u2028\u00e9\u00a0*^?:")),
                  min_size=1, max_size=24)
APPLICATIONS = {"Answer", "Dial", "ExecIf", "Goto", "GotoIf", "NoOp", "Queue", "Return", "Set", "TryExec"}
LINE_SHAPES = re.compile(r"^(|;[^\n]*|\[[a-z0-9-]+\](\((!|[a-z-]+)\))?|#tryinclude [a-z0-9-]+/[a-z-]+\.conf|"
                         r"exten => [A-Za-z0-9_.+-]+,1(\([a-z-]+\))?,[A-Za-z]+\(.*\)|"
                         r" same => n(\([a-z-]+\))?,[A-Za-z]+\(.*\)|[a-z_-]+ *=>? *[^;\[\]$\n]*(;[^\n]*)?)$")


def structure(files: dict[str, str]) -> dict[str, set[str]]:
    """What an attacker would want to change: sections per file and dialplan applications."""
    found: dict[str, set[str]] = {"apps": set()}
    for name, text in files.items():
        found[name] = {line for line in text.split("\n") if line.startswith("[")}
        for line in text.split("\n"):
            assert LINE_SHAPES.match(line), f"{name}: {line!r}"
            app = re.match(r"^(?:exten => [^,]+,1|\s?same => n)(?:\([a-z-]+\))?,([A-Za-z]+)\(", line)
            if app:
                found["apps"].add(app[1])
    return found


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slot=st.sampled_from(sorted(SAFE)), value=HOSTILE)
def test_whatever_plan_check_accepts_renders_only_the_expected_structure(slot: str, value: str) -> None:
    try:
        plan = parse_plan(plan_text(**{slot: value}))
    except PlanError as error:
        assert all("\n" not in str(d) and "\r" not in str(d) for d in error.diagnostics)
        return
    files = render_all(plan)  # never RenderRefused: the loader refuses first
    found = structure(files)
    partner = next(iter(plan.partners))
    assert {line[1:-1] for line in found["extensions.conf"]} == {
        "sas-from-pstn", "sas-queue", "sas-route", "sas-desk-transfer", "sas-overflow-out", "sas-switch-out",
        "sas-trunk-headers", "sas-remote-agent", f"sas-from-{partner}"}
    assert {line[1:-1] for line in found["queues.conf"]} == set(plan.queues)
    assert found["apps"] <= APPLICATIONS
    assert "SHELL" not in files["extensions.conf"] and "System(" not in files["extensions.conf"]
    # The recorder is started one way only, with no command after the recording (MixMonitor's
    # third argument is run by a shell).
    assert set(re.findall(r",TryExec\((.*)\)$", files["extensions.conf"], re.M)) <= {"MixMonitor(${SAS_REC})"}
    members = re.findall(r"^member => (.*)$", files["queues.conf"], re.M)
    assert members == ["PJSIP/1001"]
    pjsip_sections = {re.sub(r"\(.*\)$", "", line)[1:-1] for line in found["pjsip.conf"]}
    assert pjsip_sections == {"operator", partner, "sas-desk-phone", "sas-desk-webrtc",
                              "sas-desk-auth", "sas-desk-aor", "1001", "1002", "1003", "1004",
                              "1001-auth", "1002-auth", "1003-auth", "1004-auth"}


@pytest.mark.parametrize("line", [
    " same => n,TryExec(MixMonitor(${SAS_REC},,rm -rf /var/spool))",
    " same => n,TryExec(System(id))",
    " same => n,MixMonitor(/tmp/x.wav)",
    " same => n,Set(X=${SHELL(id)})",
])
def test_the_renderer_refuses_a_recorder_line_that_could_run_a_command(line: str) -> None:
    plan = load_plan(ROOT / "dialplans" / "sas-69.yaml")
    files = render_all(plan)
    files["extensions.conf"] = files["extensions.conf"].replace(
        " same => n,TryExec(MixMonitor(${SAS_REC}))", line, 1)
    with pytest.raises(RenderRefused):
        check_rendered(files, plan)
