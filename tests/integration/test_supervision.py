"""The scripted hour (known waits) through the real engine and every supervision output:
Prometheus (checked by promtool), MQTT (a real Mosquitto), the journal (SQLite and PostgreSQL)
and the annex-3 report — each must give the same QS30 and counts as the pure core."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sas_router.engine.cli import app
from sas_router.engine.mqtt import MqttConfig
from sas_router.engine.plan import load_plan
from sas_router.engine.plan.model import Priority
from sas_router.engine.service import Engine
from sas_router.engine.settings import with_journal_password
from sas_router.simulator.broker import Broker, start_broker
from sas_router.simulator.live import eventually
from sas_router.supervision.journal import Journal
from sas_router.supervision.models import TABLES, CallRow, GapRow, LegRow, QualificationRow, VisitRow
from sas_router.supervision.report import monthly
from sas_router.supervision.service import Supervision
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.integration.postgres import Cluster, start_cluster
from tests.scripted import END, EXPECTED, ROLES, scripted_events
from tests.stubs import StubLink

ROOT = Path(__file__).resolve().parents[2]
PLAN = load_plan(ROOT / "dialplans" / "sas-69.yaml")
#: Qualifications the desks make during the scripted hour: (seconds after T0, call number, level, advice).
QUALIFICATIONS = [(35, 1, Priority.P1, False), (42, 2, Priority.P0, False), (69, 3, Priority.P0, False),
                  (80, 4, Priority.P2, True)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def play_scripted(engine: Engine, clock: Clock) -> None:
    from tests.scripted import T0, _uid

    engine.roles.update(ROLES)
    pending = list(QUALIFICATIONS)
    for at, event in scripted_events():
        while pending and T0 + pending[0][0] <= at:
            offset, n, level, advice = pending.pop(0)
            clock.now = T0 + offset
            await engine.qualify(f"sas-69-{_uid(n)}", level, by="lrm-1", medical_advice=advice)
        clock.now = at
        engine.on_event(event)
    clock.now = END


@pytest.fixture(scope="module")
def postgres() -> Iterator[Cluster]:
    cluster = start_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture
def broker() -> Iterator[Broker]:
    running = start_broker()
    yield running
    running.stop()


async def supervised(journal_url: str, mqtt: MqttConfig | None = None,
                     now: float = 0.0) -> tuple[Engine, Supervision, Clock]:
    clock = Clock()
    clock.now = now
    engine = Engine(plan=PLAN, link_factory=lambda _e: StubLink(), clock=clock, mqtt=mqtt)  # type: ignore[arg-type,return-value]
    supervision = Supervision(engine, journal=Journal(journal_url, "sas-69", clock=clock))
    await supervision.start()
    return engine, supervision, clock


@pytest.fixture
async def sqlite_run(tmp_path: Path) -> AsyncIterator[tuple[Engine, Supervision, Clock]]:
    engine, supervision, clock = await supervised(f"sqlite:///{tmp_path}/journal.sqlite3")
    await play_scripted(engine, clock)
    yield engine, supervision, clock
    await supervision.stop()
    await engine.stop()


def samples(text: str, name: str, **labels: str) -> list[float]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                out.append(sample.value)
    return out


async def test_prometheus_exposition_gives_the_scripted_figures(sqlite_run, tmp_path: Path) -> None:
    _, supervision, _ = sqlite_run
    response = await supervision.metrics(None)  # type: ignore[arg-type]
    text = response.body.decode()
    assert sum(samples(text, "sas_calls_answered_total")) == EXPECTED["answered"]
    assert sum(samples(text, "sas_calls_answered_within_30s_total")) == EXPECTED["answered_30"]
    assert sum(samples(text, "sas_calls_offered_total")) == EXPECTED["offered"]
    assert sum(samples(text, "sas_calls_abandoned_total")) == EXPECTED["abandoned"]
    assert sum(samples(text, "sas_calls_short_abandoned_total")) == EXPECTED["short_abandoned"]
    assert sum(samples(text, "sas_calls_overflowed_out_total")) == EXPECTED["overflowed_out"]
    assert samples(text, "sas_qs30_ratio", scope="sas", window="today") == [EXPECTED["qs30"]]
    assert samples(text, "sas_qs60_ratio", scope="sas", window="today") == [EXPECTED["qs60"]]
    assert samples(text, "sas_transfers_total", from_queue="n1-arm", to_queue="n2-amu") == [1.0]
    # The histogram has a 30 s bucket; Prometheus buckets are "less or equal", so the 30.0 s
    # answer is in it while QS30 (strictly under 30 s) leaves it out.
    assert samples(text, "sas_queue_wait_seconds_bucket", queue="n1-arm", le="30.0") == [6.0]
    assert samples(text, "sas_agent_talk_seconds_total", role="arm-n1") == [580.0]
    # Levels count their offers: never answered without offered (the issue saw "offered: 0").
    n1_offered, n1_answered = (samples(text, f"sas_level_{m}_total", level="n1") for m in ("offered", "answered"))
    n2_offered, n2_answered = (samples(text, f"sas_level_{m}_total", level="n2") for m in ("offered", "answered"))
    assert (n1_offered, n1_answered, n2_offered, n2_answered) == ([13.0], [10.0], [1.0], [1.0])  # one call to AMU
    # Each desk in exactly one state: the states sum to the desks logged in, role by role.
    for role in {s_.labels["role"] for f in text_string_to_metric_families(text) for s_ in f.samples
                 if s_.name == "sas_agents_logged_in"}:
        assert sum(samples(text, "sas_agents", role=role)) == samples(text, "sas_agents_logged_in", role=role)[0]
    assert samples(text, "sas_build_info", plan="sas-69.yaml") == [1.0]
    assert samples(text, "process_resident_memory_bytes") and samples(text, "python_info")
    assert samples(text, "sas_overflow_enabled", queue="n1-arm") == [1.0]
    assert sum(samples(text, "sas_partner_state", partner="sas-38")) == 1.0
    exposition = tmp_path / "metrics.txt"
    exposition.write_text(text, encoding="utf-8")
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/setup.sh (Debian package 'prometheus')"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_journal_and_report_give_the_same_figures(sqlite_run, tmp_path: Path) -> None:
    engine, supervision, _ = sqlite_run
    journal = supervision.journal
    assert journal is not None
    assert await journal.flush()
    report = monthly(journal.db, PLAN, 2026, 11)
    assert (report.calls_offered, report.calls_answered, report.answered_30) == (13, 10, 5)
    assert report.qs30 == EXPECTED["qs30"]
    assert (report.regulation_files, report.amu_files, report.ambulatory_files, report.medical_advices) == (4, 3, 1, 1)
    assert report.durations == {role: (calls, mean) for role, (calls, mean) in EXPECTED["talk"].items()}
    # Written twice (a restarted engine re-writing what it knows): no row doubles.
    with journal.db.connect() as connection:
        before = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                  for table in (CallRow, VisitRow, LegRow, QualificationRow)}
    for call in engine.tracker.ended:
        journal.add_call(call, supervision.role_of)
    assert await journal.flush()
    with journal.db.connect() as connection:
        after = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                 for table in (CallRow, VisitRow, LegRow, QualificationRow)}
    assert after == before == {"calls": 13, "queue_visits": 14, "agent_legs": 11, "qualifications": 4}
    # The command line prints the same table, and the CSV.
    url = journal.db.url.render_as_string(hide_password=False)
    csv_file = tmp_path / "2026-11.csv"
    result = CliRunner().invoke(app, ["report", "monthly", "--month", "2026-11", "--db", url, "--csv",
                                      str(csv_file), "--baseline", "2025"])
    assert result.exit_code == 0, result.output
    assert "QS30 (answered < 30 s / answered)" in result.output and "50.0%" in result.output
    assert "ARM N1 (item 9)" in result.output and "58 s (10 calls)" in result.output
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8"))))
    by_item = {(row["item"], row["indicator"]): row for row in rows}
    assert by_item[("T1.1", "calls answered by the SAS")]["2026-11"] == "10"
    assert by_item[("T1.1", "calls answered by the SAS")]["2025-11"] == "0"
    qs30 = by_item[("T1.2", "QS30 (answered < 30 s / answered)")]
    assert (qs30["unit"], float(qs30["2026-11"]), qs30["2026-11 over"]) == ("ratio", 0.5, "10")  # a number
    n1 = by_item[("T3", "average call duration, ARM N1 (item 9)")]
    assert (n1["unit"], float(n1["2026-11"]), n1["2026-11 over"]) == ("s", 58.0, "10")
    # Table 3 in the annex's item order (9, 10, ...), not alphabetical (10, 9, 12, 13, 11).
    assert [row["indicator"] for row in rows if row["item"] == "T3"] == [
        "average call duration, ARM N1 (item 9)", "average call duration, ARM AMU (item 10)"]
    bad = CliRunner().invoke(app, ["report", "monthly", "--month", "2026-13", "--db", url])
    assert bad.exit_code == 1 and "not a month" in bad.output


def test_a_report_on_a_journal_that_is_not_there_says_so_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "var" / "journal.sqlite3"
    result = CliRunner().invoke(app, ["report", "monthly", "--month", "2026-11", "--db", f"sqlite:///{missing}"])
    assert result.exit_code == 1 and "no journal at" in result.output and "Traceback" not in result.output
    assert not missing.exists() and not missing.parent.exists()
    empty = tmp_path / "empty.sqlite3"
    sqlite3.connect(empty).close()
    result = CliRunner().invoke(app, ["report", "monthly", "--month", "2026-11", "--db", f"sqlite:///{empty}"])
    assert result.exit_code == 1 and "holds no call journal" in result.output


def test_the_journal_password_comes_from_the_environment_for_a_url_given_by_hand(monkeypatch) -> None:
    monkeypatch.setenv("SAS_JOURNAL_PASSWORD", "s3cret-from-env")
    assert with_journal_password("postgresql+psycopg://sas@db/sas") == "postgresql+psycopg://sas:s3cret-from-env@db/sas"
    assert with_journal_password("postgresql+psycopg://sas:given@db/sas") == "postgresql+psycopg://sas:given@db/sas"
    assert with_journal_password("sqlite:///var/journal.sqlite3") == "sqlite:///var/journal.sqlite3"


async def test_a_restarted_engine_finds_the_days_figures_in_the_journal(sqlite_run, tmp_path: Path) -> None:
    _, supervision, clock = sqlite_run
    journal = supervision.journal
    assert journal is not None and await journal.flush()
    before = supervision.figures.summary("today", clock())
    # A new process: fresh engine and supervision on the same journal, later the same day. Its
    # start reads the month's finished calls back.
    again, restarted, again_clock = await supervised(journal.url, now=clock() + 600)
    try:
        after = restarted.figures.summary("today", again_clock())
        assert after["sas"] == before["sas"] and after["sas"]["qs30"] == EXPECTED["qs30"]
        assert after["queues"] == before["queues"] and after["lines"] == before["lines"]
        assert after["levels"] == before["levels"] and after["transfers"] == EXPECTED["transfers"]
        assert after["handle_time"] == before["handle_time"]
    finally:
        await restarted.stop()
        await again.stop()


async def test_mqtt_snapshot_every_30_seconds_carries_the_figures(broker: Broker, tmp_path: Path) -> None:
    mqtt = MqttConfig(port=broker.port, prefix=f"t{uuid.uuid4().hex[:8]}", publish_every=0.5)
    engine, supervision, clock = await supervised(f"sqlite:///{tmp_path}/journal.sqlite3", mqtt)
    assert engine.bus is not None
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe(f"{mqtt.prefix}/sas-69/#")
        await engine.bus.start()
        await eventually(lambda: engine.bus.connected, what="engine on the broker")
        await play_scripted(engine, clock)
        # The live call events go out as they happen, ahead of the 30-second snapshot.
        await eventually(supervision.live_events.empty, what="live events published")
        await supervision.publish_snapshot()
        snapshot, live = None, []
        async with asyncio.timeout(10):
            async for message in client.messages:
                topic = str(message.topic)
                if topic.endswith("/events/call"):
                    live.append(json.loads(message.payload))
                if topic.endswith("/supervision"):
                    snapshot = json.loads(message.payload)
                    break
    try:
        assert snapshot is not None
        assert snapshot["site"] == "sas-69" and snapshot["version"] == 2
        assert snapshot["today"]["sas"]["qs30"] == EXPECTED["qs30"]
        assert snapshot["today"]["sas"]["answered"] == EXPECTED["answered"]
        assert snapshot["windows"]["today"]["qs60"] == EXPECTED["qs60"]
        assert snapshot["today"]["transfers"] == EXPECTED["transfers"]
        assert "qs30" in {a["key"] for a in snapshot["alarms"]}  # 50 % over 15 min: under the 90 % target
        assert {e["kind"] for e in live} >= {"queue-joined", "queue-left", "agent-connected", "call-ended"}
        # Retained: a supervisor's screen that connects later gets the last snapshot at once.
        async with aiomqtt.Client("127.0.0.1", broker.port) as late:
            await late.subscribe(f"{mqtt.prefix}/sas-69/supervision")
            async with asyncio.timeout(5):
                message = await anext(aiter(late.messages))
        assert message.retain and json.loads(message.payload)["today"]["sas"]["qs30"] == EXPECTED["qs30"]
    finally:
        await supervision.stop()
        await engine.stop()


async def test_journal_round_trip_on_postgresql(postgres: Cluster) -> None:
    engine, supervision, clock = await supervised(postgres.url)
    journal = supervision.journal
    assert journal is not None
    try:
        await play_scripted(engine, clock)
        assert await journal.flush()
        report = monthly(journal.db, PLAN, 2026, 11)
        assert (report.calls_answered, report.qs30, report.regulation_files) == (10, 0.5, 4)
        for call in engine.tracker.ended:
            journal.add_call(call, supervision.role_of)
        assert await journal.flush()
        with journal.db.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(CallRow)) == 13
            assert connection.scalar(select(func.count()).select_from(VisitRow)) == 14
    finally:
        await supervision.stop()
        await engine.stop()
        with journal.db.begin() as connection:  # leave the shared cluster empty for the next test
            for table in (*TABLES, "alembic_version"):  # every table the migrations made
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")


async def test_database_outage_buffers_then_flushes_and_reports_the_gap(postgres: Cluster) -> None:
    engine, supervision, clock = await supervised(postgres.url)
    journal = supervision.journal
    assert journal is not None
    journal.max_buffer = 30
    try:
        postgres.stop()
        await play_scripted(engine, clock)  # the calls go on; rows wait in memory
        assert not await journal.flush()
        assert not journal.up and len(journal.buffer) == 30 and journal.dropped > 0
        assert any(a["key"] == "journal" and "injoignable" in a["text"] for a in supervision.alarms(clock()))
        postgres.start()
        assert await journal.flush()
        with journal.db.connect() as connection:
            gap = connection.execute(select(GapRow.__table__)).one()
            assert gap.dropped_rows == journal.dropped and gap.site == "sas-69"
            assert connection.scalar(select(func.count()).select_from(CallRow)) > 0
        assert journal.up and not journal.buffer
    finally:
        await supervision.stop()
        await engine.stop()


# --- a journal that never loses what it knew -------------------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/journal.sqlite3"
    else:
        url = request.getfixturevalue("postgres").url
    book = Journal(url, "sas-69", clock=lambda: 5000.0)
    await book.start()
    yield book
    await book.stop()
    if request.param == "postgresql":
        with book.db.begin() as connection:
            for table in (*TABLES, "alembic_version"):
                connection.exec_driver_sql(f"DROP TABLE IF EXISTS {table} CASCADE")
    book.db.dispose()


def call_row(call_id: str, **values: Any) -> dict[str, Any]:
    return {"call_id": call_id, "site": "sas-69", "uniqueid": call_id.removeprefix("sas-69-"), "line": "15",
            "dialed": "15", "caller": "0612345678", "origin": "sas-69", "inbound": "", "started_at": 1000.0,
            "answered_at": None, "first_wait": None, "ended_at": None, "outcome": "", "qualification": "",
            "switched_to": "", "hangup_cause": None, "repeat": False, **values}


def stored(book: Journal, call_id: str) -> Any:
    with book.db.connect() as connection:
        return connection.execute(select(CallRow).where(CallRow.call_id == call_id)).one()


async def test_a_call_written_again_with_unknowns_keeps_what_was_known(journal: Journal) -> None:
    """What an engine restart used to do: the adopted call's row came back with first_wait NULL,
    answered_at at the restart and no line, and the month counted it answered late."""
    journal.add("calls", call_row("sas-69-1.1", answered_at=1012.0, first_wait=12.0, outcome="answered"))
    assert await journal.flush()
    journal.add("calls", call_row("sas-69-1.1", line="", caller="", started_at=1900.0, answered_at=1900.0,
                                  first_wait=None, outcome="ended-while-away", ended_at=1950.0))
    assert await journal.flush()
    row = stored(journal, "sas-69-1.1")
    assert (row.line, row.caller, row.started_at, row.answered_at, row.first_wait, row.outcome, row.ended_at) == \
        ("15", "0612345678", 1000.0, 1012.0, 12.0, "answered", 1950.0)


async def test_a_poison_row_is_quarantined_and_the_rest_is_written(journal: Journal) -> None:
    journal.add("calls", call_row("sas-69-2.1"))
    journal.add("calls", call_row("sas-69-2.2", caller="0" * 41))  # one digit too many for the column
    journal.add("calls", call_row("sas-69-2.3", started_at=None))  # NOT NULL: refused for its content
    journal.add("calls", call_row("sas-69-2.4"))
    assert await journal.flush()
    assert stored(journal, "sas-69-2.2").caller == "0" * 40
    assert stored(journal, "sas-69-2.4").call_id == "sas-69-2.4" and not journal.buffer
    with journal.db.connect() as connection:
        (quarantined,) = connection.execute(select(TABLES["journal_quarantine"])).all()
    assert quarantined.table_name == "calls" and json.loads(quarantined.row)["call_id"] == "sas-69-2.3"
    assert journal.status()["quarantined"] == 1


async def test_calls_left_open_while_the_engine_was_away_are_closed_at_the_next_resync(journal: Journal) -> None:
    journal.add("calls", call_row("sas-69-3.1"))  # was waiting when the engine died
    journal.add("calls", call_row("sas-69-3.2", answered_at=1010.0, first_wait=10.0, outcome="answered"))
    journal.add("calls", call_row("sas-69-3.3"))  # still live: the switch has it
    journal.add("close-unseen", {"at": 2000.0, "live": ["sas-69-3.3"]})
    assert await journal.flush()
    assert (stored(journal, "sas-69-3.1").outcome, stored(journal, "sas-69-3.1").ended_at) == \
        ("ended-while-away", 2000.0)
    assert (stored(journal, "sas-69-3.2").outcome, stored(journal, "sas-69-3.2").ended_at) == ("answered", 2000.0)
    assert stored(journal, "sas-69-3.3").ended_at is None


RULES = ROOT / "supervision" / "prometheus" / "sas-alerts.yml"
GRAFANA = ROOT / "supervision" / "grafana" / "sas-router.json"


def test_the_alert_rules_are_valid_and_fire_as_their_fixtures_say() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run scripts/setup.sh (Debian package 'prometheus')"
    checked = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([promtool, "test", "rules", "tests/fixtures/prometheus/sas-alerts-test.yml"],
                            cwd=ROOT, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr


async def test_the_grafana_dashboard_and_the_rules_read_only_metrics_the_engine_exports(sqlite_run) -> None:
    """A renamed metric would leave a panel empty and an alert silent: every name they query is in
    the engine's own exposition (the scripted hour's)."""
    _, supervision, _ = sqlite_run
    families = list(text_string_to_metric_families((await supervision.metrics(None)).body.decode()))  # type: ignore[arg-type]
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "info": ("",)}
    exposed = {family.name + suffix for family in families for suffix in suffixes.get(family.type, ("",))}
    dashboard = json.loads(GRAFANA.read_text(encoding="utf-8"))
    queries = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(queries) >= 12 and all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    queries.append(RULES.read_text(encoding="utf-8"))
    wanted = {name for query in queries for name in re.findall(r"\b((?:sas|process)_[a-z0-9_]+)", query)}
    assert "sas_queue_long_wait_limit_seconds" in wanted and "sas_switchover_failed_dials_total" in wanted
    assert wanted - exposed == set()
