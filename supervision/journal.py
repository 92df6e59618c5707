"""Writing the call journal without ever holding up a call.

The engine hands rows to :meth:`Journal.add` (a deque append, nothing else); a background task
writes them in batches from a worker thread. If the database is away the rows wait, up to
``max_buffer``; beyond that the oldest are dropped and counted, and when the database is back a
``journal_gaps`` row says how many rows of which period are missing. Writes are "insert or
ignore" on each table's natural key (calls: upsert), so writing a call twice — after an engine
restart, or a retried batch — never duplicates a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from sas_router.engine.aio import cancel_and_wait
from sas_router.engine.core.calls import AgentLeg, Call, QueueVisit, VisitOutcome
from sas_router.supervision.models import TABLES, CallRow, GapRow, LegRow, QuarantineRow, VisitRow
from sqlalchemy import Engine, String, case, create_engine, event, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

log = structlog.get_logger("supervision.journal")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite:///var/journal.sqlite3"

Row = tuple[str, dict[str, Any]]  # (table, values)
#: A pseudo-row: close the site's calls left open (ended_at NULL) that the switch no longer has.
CLOSE_UNSEEN = "close-unseen"


def make_db_engine(url: str) -> Engine:
    """An SQLAlchemy engine; SQLite gets WAL (readers never block the writer) and a busy timeout."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    db = create_engine(url, pool_pre_ping=True)
    if db.dialect.name == "sqlite":
        @event.listens_for(db, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
    return db


class JournalMissing(LookupError):
    """A report asked for a journal that is not there (a wrong path or URL, or never written)."""


def open_existing_journal(url: str) -> Engine:
    """The journal for reading, refused with a clear message when it does not exist: a report
    must neither create an empty database where it was pointed by mistake nor print a traceback."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    shown = make_url(url).render_as_string(hide_password=True)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.is_file():
            raise JournalMissing(f"no journal at {path}: give the engine's journal with --db or SAS_JOURNAL_URL "
                                 "(the settings' journal.database), e.g. --db sqlite:///var/journal.sqlite3")
    db = make_db_engine(url)
    try:
        present = inspect(db).has_table("calls")
    except SQLAlchemyError as exc:
        db.dispose()
        raise JournalMissing(f"cannot read the journal at {shown}: {str(exc).splitlines()[0]}") from None
    if not present:
        db.dispose()
        raise JournalMissing(f"{shown} holds no call journal (no 'calls' table): is it the engine's journal?")
    return db


def upgrade(db: Engine) -> None:
    """Bring the schema to the latest migration (Alembic); safe to run at every start."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def call_rows(site: str, call: Call, role_of: Callable[[str], str]) -> list[Row]:
    """Everything the journal keeps of one call, as rows (the call first: the others refer to it)."""
    call_id = call.call_id or f"{site}-{call.uniqueid}"
    answered_at = call.legs[0].connected_at if call.legs else None
    first_wait = answered_at - call.visits[0].joined_at if answered_at is not None and call.visits else None
    last = call.visits[-1].outcome.value if call.visits else ("switched" if call.switched_to else "")
    outcome = "answered" if call.legs else last
    rows: list[Row] = [("calls", {
        "call_id": call_id, "site": site, "uniqueid": call.uniqueid, "line": call.line, "dialed": call.dialed,
        "caller": call.caller_num, "origin": call.origin, "inbound": call.inbound, "started_at": call.started_at,
        "answered_at": answered_at, "first_wait": first_wait, "ended_at": call.ended_at, "outcome": outcome,
        "qualification": call.qualification, "switched_to": call.switched_to, "hangup_cause": call.hangup_cause,
        "repeat": call.repeat})]
    for visit in call.visits:
        if visit.outcome == VisitOutcome.WAITING:
            continue
        rows.append(("queue_visits", {"call_id": call_id, "queue": visit.queue, "joined_at": visit.joined_at,
                                      "left_at": visit.left_at, "outcome": visit.outcome.value,
                                      "destination": visit.destination, "wait": visit.wait}))
        if visit.outcome == VisitOutcome.OVERFLOWED and visit.left_at is not None:
            rows.append(("overflows", {"call_id": call_id, "at": visit.left_at, "direction": "out",
                                       "queue": visit.queue, "partner": visit.destination}))
    if call.inbound and call.visits:
        rows.append(("overflows", {"call_id": call_id, "at": call.visits[0].joined_at, "direction": "in",
                                   "queue": call.visits[0].queue, "partner": call.origin, "reason": call.inbound}))
    for leg in call.legs:
        if leg.ended_at is None:
            continue
        rows.append(("agent_legs", {"call_id": call_id, "queue": leg.queue, "interface": leg.interface,
                                    "member_name": leg.member_name, "role": role_of(leg.interface),
                                    "connected_at": leg.connected_at, "ended_at": leg.ended_at,
                                    "talk_time": leg.talk_time, "end_reason": leg.end_reason}))
    for transfer in call.transfers:
        rows.append(("transfers", {"call_id": call_id, "at": transfer.at, "source_queue": transfer.source_queue,
                                   "target_queue": transfer.target_queue, "by": transfer.requested_by,
                                   "reason": transfer.reason, "mechanism": transfer.mechanism,
                                   "confirmed": transfer.confirmed_at is not None,
                                   "fallback_queue": transfer.fallback_queue}))
    return rows


def load_calls(db: Engine, site: str, since: float) -> tuple[list[Call], dict[str, str]]:
    """The site's finished calls started since ``since``, rebuilt from the journal (visits and
    desk legs), oldest first, with the role each desk interface had on its legs."""
    with db.connect() as connection:
        rows = connection.execute(select(CallRow).where(CallRow.site == site, CallRow.started_at >= since,
                                                        CallRow.ended_at.is_not(None))
                                  .order_by(CallRow.started_at)).all()
        ids = [row.call_id for row in rows]
        visits: dict[str, list[Any]] = {}
        legs: dict[str, list[Any]] = {}
        roles: dict[str, str] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk:chunk + 500]
            for visit in connection.execute(select(VisitRow).where(VisitRow.call_id.in_(part))):
                visits.setdefault(visit.call_id, []).append(visit)
            for leg in connection.execute(select(LegRow).where(LegRow.call_id.in_(part))):
                legs.setdefault(leg.call_id, []).append(leg)
                roles[leg.interface] = leg.role
    calls = []
    for row in rows:
        call = Call(uniqueid=row.uniqueid, linkedid=row.uniqueid, channel="", started_at=row.started_at,
                    call_id=row.call_id, line=row.line, origin=row.origin, inbound=row.inbound,
                    switched_to=row.switched_to, ended_at=row.ended_at)
        call.visits = [QueueVisit(v.queue, v.joined_at, left_at=v.left_at, outcome=VisitOutcome(v.outcome),
                                  destination=v.destination)
                       for v in sorted(visits.get(row.call_id, []), key=lambda v: v.joined_at)]
        call.legs = [AgentLeg(queue=leg.queue, interface=leg.interface, member_name=leg.member_name,
                              connected_at=leg.connected_at, ended_at=leg.ended_at, end_reason=leg.end_reason)
                     for leg in sorted(legs.get(row.call_id, []), key=lambda leg: leg.connected_at)]
        calls.append(call)
    return calls, roles


class Journal:
    def __init__(self, url: str, site: str, *, max_buffer: int = 100_000, flush_every: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.site = url, site
        self.db = make_db_engine(url)
        self.buffer: deque[Row] = deque()
        self.max_buffer = max_buffer
        self.flush_every = flush_every
        self.clock = clock
        self.written = 0
        self.dropped = 0
        self.failures = 0
        self.quarantined = 0
        self.up = True
        self._gap: tuple[float, float, int] | None = None  # rows lost while down: (from, to, count)
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self.log = log.bind(site=site, database=self.db.url.render_as_string(hide_password=True))

    # --- feeding (never blocks) -----------------------------------------------------------------

    def add(self, table: str, values: dict[str, Any]) -> None:
        if len(self.buffer) >= self.max_buffer:
            self.buffer.popleft()
            self.dropped += 1
            now = self.clock()
            start = self._gap[0] if self._gap else now
            self._gap = (start, now, (self._gap[2] if self._gap else 0) + 1)
        self.buffer.append((table, values))

    def add_call(self, call: Call, role_of: Callable[[str], str]) -> None:
        for table, values in call_rows(self.site, call, role_of):
            self.add(table, values)

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.to_thread(upgrade, self.db)
        except SQLAlchemyError as exc:
            self.up = False
            self.log.error("journal database unreachable at start; rows are buffered", error=str(exc))
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task], within=5.0, what="journal")
        with contextlib.suppress(SQLAlchemyError):
            await self.flush()
        self.db.dispose()

    async def _run(self) -> None:
        backoff = self.flush_every
        while True:
            await asyncio.sleep(backoff)
            ok = await self.flush()
            backoff = self.flush_every if ok else min(backoff * 2, 30.0)

    async def flush(self) -> bool:
        """Write what is buffered; on failure the rows stay, in order, for the next try."""
        async with self._flush_lock:
            if not self.buffer:
                return True
            batch = list(self.buffer)
            gap = self._gap
            try:
                await asyncio.to_thread(self._write, batch, gap)
            except SQLAlchemyError as exc:
                self.failures += 1
                if self.up:
                    self.log.error("journal database unreachable; rows are buffered", error=str(exc).splitlines()[0],
                                   buffered=len(self.buffer))
                self.up = False
                return False
            for _ in range(len(batch)):
                self.buffer.popleft()
            self.written += len(batch)
            if gap is not None and self._gap == gap:
                self._gap = None
            if not self.up:
                self.log.warning("journal database back; buffered rows written", rows=len(batch),
                                 dropped=gap[2] if gap else 0)
            self.up = True
            return True

    def _write(self, batch: list[Row], gap: tuple[float, float, int] | None) -> None:
        """One transaction for the batch; if a row's content is refused, row by row, with the
        refused ones quarantined. The database being away (OperationalError) is raised: the
        batch stays buffered."""
        try:
            with self.db.begin() as connection:
                self._write_gap(connection, gap)
                for table, values in batch:
                    self._write_row(connection, table, values)
        except StatementError as exc:
            if not _content_error(exc):
                raise
            self._write_one_by_one(batch, gap)

    def _write_one_by_one(self, batch: list[Row], gap: tuple[float, float, int] | None) -> None:
        with self.db.begin() as connection:
            self._write_gap(connection, gap)
        for table, values in batch:
            try:
                with self.db.begin() as connection:
                    self._write_row(connection, table, values)
            except StatementError as exc:
                if not _content_error(exc):
                    raise
                self.quarantined += 1
                error = str(getattr(exc, "orig", exc) or exc).splitlines()[0][:500]
                self.log.error("journal row refused; quarantined", table=table, error=error,
                               call_id=values.get("call_id"))
                with self.db.begin() as connection:
                    connection.execute(insert(QuarantineRow).values(
                        site=self.site, at=self.clock(), table_name=table[:40], error=error,
                        row=json.dumps(values, default=str, ensure_ascii=False)))

    def _write_gap(self, connection: Any, gap: tuple[float, float, int] | None) -> None:
        if gap is not None:
            connection.execute(insert(TABLES["journal_gaps"]).values(
                site=self.site, from_at=gap[0], to_at=gap[1], dropped_rows=gap[2]))
            self.log.error("journal gap recorded", dropped_rows=gap[2], from_at=gap[0], to_at=gap[1])

    def _write_row(self, connection: Any, table: str, values: dict[str, Any]) -> None:
        if table == CLOSE_UNSEEN:
            connection.execute(_close_unseen(self.site, values["at"], values["live"]))
            return
        dialect = postgresql if self.db.dialect.name == "postgresql" else sqlite
        model = TABLES[table]
        values = self._fit(model, values)
        statement = dialect.insert(model.__table__).values(**values)
        if model is CallRow:
            statement = statement.on_conflict_do_update(index_elements=["call_id"],
                                                        set_=_call_merge(statement.excluded, values))
        elif model is TABLES["recordings"]:
            # A hold, a release and the retention's deletion update the recording's row.
            statement = statement.on_conflict_do_update(index_elements=["call_id"],
                                                        set_={k: v for k, v in values.items() if k != "call_id"})
        elif table == "agent_sessions" and values.get("logout_at") is not None:
            statement = statement.on_conflict_do_update(
                index_elements=["site", "interface", "login_at"], set_={"logout_at": values["logout_at"]})
        else:
            statement = statement.on_conflict_do_nothing()
        connection.execute(statement)

    def _fit(self, model: Any, values: dict[str, Any]) -> dict[str, Any]:
        """Text cut to its column's length (a 41-digit caller number must not block the journal);
        the cut is logged with the call id."""
        fitted = values
        for column in model.__table__.columns:
            value = values.get(column.name)
            length = getattr(column.type, "length", None) if isinstance(column.type, String) else None
            if isinstance(value, str) and length is not None and len(value) > length:
                if fitted is values:
                    fitted = dict(values)
                fitted[column.name] = value[:length]
                self.log.warning("journal value cut to its column", table=model.__tablename__, column=column.name,
                                 length=len(value), call_id=values.get("call_id"))
        return fitted

    def status(self) -> dict[str, Any]:
        return {"up": self.up, "buffered": len(self.buffer), "written": self.written, "dropped": self.dropped,
                "failures": self.failures, "quarantined": self.quarantined}


def _content_error(exc: StatementError) -> bool:
    """A row the database refuses for what it holds (a constraint, a type, a value), as opposed to
    the database being away (OperationalError and the like: the batch stays buffered)."""
    if isinstance(exc, (DataError, IntegrityError)):
        return True
    return not isinstance(exc, DBAPIError)  # a value SQLAlchemy could not even bind


def _call_merge(excluded: Any, values: dict[str, Any]) -> dict[str, Any]:
    """How a call row written again (answer, end, restart, retried batch) merges with what is
    there: nothing known is replaced by something unknown; the first join, first answer and its
    wait keep the earliest; an answered call stays answered."""
    row = CallRow.__table__.c

    def earliest(name: str) -> Any:
        return case((row[name].is_(None), excluded[name]), (excluded[name].is_(None), row[name]),
                    (excluded[name] < row[name], excluded[name]), else_=row[name])

    def known(name: str) -> Any:
        return case((or_(excluded[name].is_(None), excluded[name] == ""), row[name]), else_=excluded[name])

    merged: dict[str, Any] = {}
    for name in values:
        if name == "call_id":
            continue
        if name in ("started_at", "answered_at"):
            merged[name] = earliest(name)
        elif name == "first_wait":
            merged[name] = case((row.answered_at.is_(None), excluded.first_wait),
                                (excluded.answered_at.is_(None), row.first_wait),
                                (excluded.answered_at < row.answered_at, excluded.first_wait), else_=row.first_wait)
        elif name == "outcome":
            merged[name] = case((row.outcome == "answered", row.outcome), (excluded.outcome == "", row.outcome),
                                else_=excluded.outcome)
        elif name in ("ended_at", "hangup_cause"):
            merged[name] = case((excluded[name].is_(None), row[name]), else_=excluded[name])
        elif name == "repeat":
            merged[name] = or_(row.repeat, excluded.repeat)
        else:
            merged[name] = known(name)
    return merged


def _close_unseen(site: str, at: float, live: list[str]) -> Any:
    """Calls still open in the journal that the switch no longer has ended while the engine was
    away: closed now, answered ones kept answered, the rest 'ended-while-away' (never 'waiting')."""
    row = CallRow.__table__.c
    return (update(CallRow)
            .where(row.site == site, row.ended_at.is_(None), row.started_at < at, row.call_id.not_in(live))
            .values(ended_at=at, outcome=case((row.outcome == "answered", row.outcome), else_="ended-while-away")))


__all__ = ["DEFAULT_URL", "GapRow", "Journal", "call_rows", "make_db_engine", "upgrade"]
