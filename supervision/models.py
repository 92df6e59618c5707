"""The durable call journal (SQLAlchemy 2.x): what the monthly reports and audits read.

Times are UTC epoch seconds (double precision): the same in SQLite and PostgreSQL, exact to the
millisecond, and converted to the site's local time only when a report is made. Every table
has a natural unique key, and every write is "insert, or ignore what is already there", so a
restarted engine that writes a call again never duplicates a row.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Double, ForeignKey, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CallRow(Base):
    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    site: Mapped[str] = mapped_column(String(40), index=True)
    uniqueid: Mapped[str] = mapped_column(String(80))
    line: Mapped[str] = mapped_column(String(40), default="")
    dialed: Mapped[str] = mapped_column(String(40), default="")
    caller: Mapped[str] = mapped_column(String(40), default="")
    origin: Mapped[str] = mapped_column(String(40), default="")
    inbound: Mapped[str] = mapped_column(String(20), default="")
    started_at: Mapped[float] = mapped_column(Double, index=True)
    answered_at: Mapped[float | None] = mapped_column(Double)
    first_wait: Mapped[float | None] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    outcome: Mapped[str] = mapped_column(String(20), default="")
    qualification: Mapped[str] = mapped_column(String(4), default="")
    switched_to: Mapped[str] = mapped_column(String(40), default="")
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)


class VisitRow(Base):
    __tablename__ = "queue_visits"
    __table_args__ = (UniqueConstraint("call_id", "queue", "joined_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    queue: Mapped[str] = mapped_column(String(40))
    joined_at: Mapped[float] = mapped_column(Double)
    left_at: Mapped[float | None] = mapped_column(Double)
    outcome: Mapped[str] = mapped_column(String(20))
    destination: Mapped[str] = mapped_column(String(40), default="")
    wait: Mapped[float | None] = mapped_column(Double)


class LegRow(Base):
    __tablename__ = "agent_legs"
    __table_args__ = (UniqueConstraint("call_id", "interface", "connected_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    queue: Mapped[str] = mapped_column(String(40))
    interface: Mapped[str] = mapped_column(String(100))
    member_name: Mapped[str] = mapped_column(String(80), default="")
    role: Mapped[str] = mapped_column(String(40), default="")
    connected_at: Mapped[float] = mapped_column(Double)
    ended_at: Mapped[float | None] = mapped_column(Double)
    talk_time: Mapped[float | None] = mapped_column(Double)
    end_reason: Mapped[str] = mapped_column(String(20), default="")


class QualificationRow(Base):
    __tablename__ = "qualifications"
    __table_args__ = (UniqueConstraint("call_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    at: Mapped[float] = mapped_column(Double)
    level: Mapped[str] = mapped_column(String(4))
    by: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    medical_advice: Mapped[bool] = mapped_column(Boolean, default=False)


class TransferRow(Base):
    __tablename__ = "transfers"
    __table_args__ = (UniqueConstraint("call_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    at: Mapped[float] = mapped_column(Double)
    source_queue: Mapped[str] = mapped_column(String(40))
    target_queue: Mapped[str] = mapped_column(String(40))
    by: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    mechanism: Mapped[str] = mapped_column(String(20))
    confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    fallback_queue: Mapped[str] = mapped_column(String(40), default="")


class OverflowRow(Base):
    """A caller sent to a partner (direction ``out``) or received from one (``in``)."""

    __tablename__ = "overflows"
    __table_args__ = (UniqueConstraint("call_id", "at", "direction"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    at: Mapped[float] = mapped_column(Double)
    direction: Mapped[str] = mapped_column(String(3))
    queue: Mapped[str] = mapped_column(String(40))
    partner: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(20), default="overflow")


class MutualAidRow(Base):
    """Switch-over starts and ends, overflow episodes and switches: who, why, when."""

    __tablename__ = "mutual_aid_journal"
    __table_args__ = (UniqueConstraint("site", "at", "kind", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    at: Mapped[float] = mapped_column(Double, index=True)
    kind: Mapped[str] = mapped_column(String(30))
    subject: Mapped[str] = mapped_column(String(40))
    partner: Mapped[str] = mapped_column(String(80), default="")
    by: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(Text, default="")
    share: Mapped[int | None] = mapped_column(Integer)


class AgentSessionRow(Base):
    __tablename__ = "agent_sessions"
    __table_args__ = (UniqueConstraint("site", "interface", "login_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    interface: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(80), default="")
    role: Mapped[str] = mapped_column(String(40), default="")
    login_at: Mapped[float] = mapped_column(Double)
    logout_at: Mapped[float | None] = mapped_column(Double)


class GapRow(Base):
    """Rows the journal could not keep while the database was away (buffer full)."""

    __tablename__ = "journal_gaps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    from_at: Mapped[float] = mapped_column(Double)
    to_at: Mapped[float] = mapped_column(Double)
    dropped_rows: Mapped[int] = mapped_column(Integer)


class AuditRow(Base):
    """Every control request — allowed, refused or failed: who (token's client and role), what,
    on which call or desk, with which result. Written, never updated."""

    __tablename__ = "audit_trail"
    __table_args__ = (UniqueConstraint("site", "at", "client", "action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    at: Mapped[float] = mapped_column(Double, index=True)
    client: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(80))
    call_id: Mapped[str] = mapped_column(String(80), default="", index=True)
    target: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(Text, default="")


class QuarantineRow(Base):
    """A row the database refused for its content (not for being away): kept here, as JSON, with
    the error, so one bad value never blocks the journal and nothing is silently lost."""

    __tablename__ = "journal_quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    at: Mapped[float] = mapped_column(Double)
    table_name: Mapped[str] = mapped_column(String(40))
    row: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)


class AlarmRow(Base):
    """Every alarm's life: raised, escalated, acknowledged (by whom), cleared — what the room was
    told and when, for the incident review."""

    __tablename__ = "alarm_journal"
    __table_args__ = (UniqueConstraint("site", "at", "key", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(40))
    at: Mapped[float] = mapped_column(Double, index=True)
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(40), default="")


class RecordingRow(Base):
    """One call's recording: where, how long, its sha256 taken when the file was closed (so a
    change is detectable), what happened to it (ok, missing, short, not-started), its legal hold
    and its deletion at the end of retention. Updated in place (hold, deletion), never deleted."""

    __tablename__ = "recordings"

    call_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    site: Mapped[str] = mapped_column(String(40), index=True)
    file: Mapped[str] = mapped_column(String(200), default="")
    line: Mapped[str] = mapped_column(String(40), default="")
    caller: Mapped[str] = mapped_column(String(40), default="", index=True)
    desks: Mapped[str] = mapped_column(String(200), default="")
    queues: Mapped[str] = mapped_column(String(200), default="")
    started_at: Mapped[float] = mapped_column(Double, index=True)
    ended_at: Mapped[float | None] = mapped_column(Double)
    duration: Mapped[float | None] = mapped_column(Double)
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(20), default="")
    hold_by: Mapped[str] = mapped_column(String(40), default="")
    hold_at: Mapped[float | None] = mapped_column(Double)
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    deleted_at: Mapped[float | None] = mapped_column(Double)
    deleted_by: Mapped[str] = mapped_column(String(40), default="")


TABLES = {cls.__tablename__: cls for cls in (CallRow, VisitRow, LegRow, QualificationRow, TransferRow, OverflowRow,
                                             MutualAidRow, AgentSessionRow, GapRow, AuditRow, QuarantineRow,
                                             AlarmRow, RecordingRow)}
