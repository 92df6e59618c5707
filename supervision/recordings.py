"""The recorder's index: every recorded call found by its call id, checked when its file closes,
heard only by those allowed to, kept as long as the plan says — never under legal hold.

Asterisk records (MixMonitor, started by the rendered dialplan at the call's first queue, so it
does not need the engine); this module only watches. When a recorded call ends it finds the file
(``SAS_REC``, relative to Asterisk's monitor directory, as the engine sees it through
``recordings_path``), waits for it to stop growing, and writes its duration, size and sha256 to
the journal. A file that is missing, or shorter than the call by more than ``SHORT_BY`` seconds,
is journaled as such and counts in the room's recording alarm. Nothing here can delay a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shutil
import wave
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import structlog
from sas_router.engine.core.calls import Call
from sas_router.engine.plan import Plan
from sas_router.supervision.journal import Journal
from sas_router.supervision.models import RecordingRow
from sqlalchemy import select

log = structlog.get_logger("supervision.recordings")
#: A recording this much shorter than its call was cut (disk full, recorder stopped).
SHORT_BY = 2.0
#: GSM 06.10 as Asterisk writes it: 33 bytes every 20 ms.
GSM_BYTES_PER_SECOND = 1650.0
FAILED = ("missing", "short", "not-started")


@dataclass
class Recording:
    call_id: str
    site: str
    file: str
    line: str
    caller: str
    desks: str
    queues: str
    started_at: float
    ended_at: float | None = None
    duration: float | None = None
    size: int | None = None
    sha256: str = ""
    status: str = ""
    hold_by: str = ""
    hold_at: float | None = None
    hold_reason: str = ""
    deleted_at: float | None = None
    deleted_by: str = ""

    def row(self) -> dict[str, Any]:
        return asdict(self)

    def public(self) -> dict[str, Any]:
        return {**self.row(), "held": bool(self.hold_by), "deleted": self.deleted_at is not None}


def measure(path: Path) -> tuple[int, float, str]:
    """(size, seconds, sha256) of a closed recording."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    size = path.stat().st_size
    if path.suffix.lower() == ".wav":
        with wave.open(str(path), "rb") as audio:
            seconds = audio.getnframes() / float(audio.getframerate() or 8000)
    else:
        seconds = size / GSM_BYTES_PER_SECOND
    return size, round(seconds, 2), digest.hexdigest()


class Recorder:
    def __init__(self, plan: Plan, base: Path | None, journal: Journal | None, *, clock: Callable[[], float],
                 settle: float = 0.5, wait_for_file: float = 3.0) -> None:
        self.plan = plan
        #: Asterisk's monitor directory as this process sees it (None: recordings not reachable).
        self.base = base
        self.journal = journal
        self.clock = clock
        self.settle, self.wait_for_file = settle, wait_for_file
        self.index: OrderedDict[str, Recording] = OrderedDict()
        self.counts: Counter[str] = Counter()
        #: When each failure was seen, for the room's alarm (the last hour is enough).
        self.failures: deque[tuple[float, str]] = deque(maxlen=1000)
        self._tasks: set[asyncio.Task[None]] = set()

    # --- a call ends --------------------------------------------------------------------------

    def expected(self, call: Call) -> bool:
        """A call the plan records and that reached a queue (where the recording starts)."""
        return bool(call.visits) and self.plan.recording.records(call.line)

    def call_ended(self, call: Call) -> None:
        if not self.expected(call) and not call.recording:
            return
        task = asyncio.ensure_future(self._finish(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, call: Call) -> None:
        call_id = call.call_id or f"{self.plan.site.id}-{call.uniqueid}"
        entry = Recording(call_id=call_id, site=self.plan.site.id, file=call.recording, line=call.line,
                          caller=call.caller_num, desks=",".join(dict.fromkeys(leg.member_name for leg in call.legs)),
                          queues=",".join(dict.fromkeys(v.queue for v in call.visits)),
                          started_at=call.recording_at or call.started_at, ended_at=call.ended_at)
        if not call.recording:
            self._record(entry, "not-started", "the dialplan started no recording for this call")
            return
        path = self.path_of(call.recording)
        if path is None:
            self._record(entry, "missing", "recordings_path is not set (the engine cannot see Asterisk's monitor "
                         "directory)" if self.base is None else "the recording's path is outside its directory")
            return
        if not await self._closed(path):
            self._record(entry, "missing", f"no file {call.recording} in {self.base}")
            return
        try:
            size, seconds, digest = await asyncio.to_thread(measure, path)
        except (OSError, wave.Error, EOFError) as exc:
            self._record(entry, "missing", f"unreadable recording: {exc}")
            return
        entry.size, entry.duration, entry.sha256 = size, seconds, digest
        expected = (call.ended_at - call.recording_at) if call.ended_at and call.recording_at else None
        if expected is not None and seconds < expected - SHORT_BY:
            self._record(entry, "short", f"recording {seconds:.1f} s for a call of {expected:.1f} s")
            return
        self._record(entry, "ok", "")

    async def _closed(self, path: Path) -> bool:
        """Wait for the file to exist and stop growing (MixMonitor closes it after the hang-up)."""
        await asyncio.sleep(self.settle)
        waited, last = 0.0, -1
        while waited <= self.wait_for_file:
            with contextlib.suppress(OSError):
                size = path.stat().st_size
                if size == last:
                    return True
                last = size
            await asyncio.sleep(0.25)
            waited += 0.25
        return last >= 0

    def _record(self, entry: Recording, status: str, why: str) -> None:
        entry.status = status
        self.counts[status] += 1
        self._keep(entry)
        if status in FAILED:
            self.failures.append((self.clock(), entry.call_id))
            log.error("recording failed", call_id=entry.call_id, status=status, why=why, file=entry.file)
        else:
            log.info("recording indexed", call_id=entry.call_id, file=entry.file, seconds=entry.duration,
                     size=entry.size, sha256=entry.sha256)
        if self.journal is not None:
            self.journal.add("recordings", entry.row())

    def _keep(self, entry: Recording) -> None:
        self.index[entry.call_id] = entry
        self.index.move_to_end(entry.call_id)
        while len(self.index) > 20_000:
            self.index.popitem(last=False)

    def path_of(self, file: str) -> Path | None:
        """The recording's file, only if it lies inside the recordings directory."""
        if self.base is None or not file:
            return None
        base = self.base.resolve()
        path = (base / file).resolve()
        return path if path.is_relative_to(base) else None

    def failures_since(self, since: float) -> list[str]:
        return [call_id for at, call_id in self.failures if at >= since]

    def free_bytes(self) -> int | None:
        if self.base is None:
            return None
        try:
            return shutil.disk_usage(self.base).free
        except OSError:
            return None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- finding and keeping ------------------------------------------------------------------

    async def find(self, *, call: str = "", number: str = "", line: str = "", since: float = 0.0,
                   until: float | None = None, limit: int = 200) -> list[Recording]:
        if self.journal is not None and await self.journal.flush():
            return await asyncio.to_thread(self._query, call, number, line, since, until, limit)
        found = [r for r in reversed(self.index.values())
                 if (not call or r.call_id == call) and (not number or r.caller == number)
                 and (not line or r.line == line) and r.started_at >= since
                 and (until is None or r.started_at < until)]
        return found[:limit]

    def _query(self, call: str, number: str, line: str, since: float, until: float | None,
               limit: int) -> list[Recording]:
        assert self.journal is not None
        statement = select(RecordingRow).where(RecordingRow.site == self.plan.site.id,
                                               RecordingRow.started_at >= since)
        if call:
            statement = statement.where(RecordingRow.call_id == call)
        if number:
            statement = statement.where(RecordingRow.caller == number)
        if line:
            statement = statement.where(RecordingRow.line == line)
        if until is not None:
            statement = statement.where(RecordingRow.started_at < until)
        with self.journal.db.connect() as connection:
            rows = connection.execute(statement.order_by(RecordingRow.started_at.desc()).limit(limit)).all()
        fields = Recording.__dataclass_fields__
        return [Recording(**{name: getattr(row, name) for name in fields}) for row in rows]

    async def one(self, call_id: str) -> Recording | None:
        found = await self.find(call=call_id, limit=1)
        return found[0] if found else None

    async def hold(self, call_id: str, *, by: str, reason: str, held: bool) -> Recording:
        entry = await self.one(call_id)
        if entry is None:
            raise LookupError(f"no recording for call {call_id}")
        if held:
            entry.hold_by, entry.hold_at, entry.hold_reason = by, self.clock(), reason
        else:
            entry.hold_by, entry.hold_at, entry.hold_reason = "", None, ""
        log.warning("recording hold placed" if held else "recording hold released", call_id=call_id, by=by,
                    reason=reason)
        self._keep(entry)
        if self.journal is not None:
            self.journal.add("recordings", entry.row())
        return entry

    async def expire(self, now: float) -> list[str]:
        """Delete the recordings past the plan's retention that are not under legal hold; each
        deletion is written to the recording's row (when, by the retention)."""
        limit = now - self.plan.recording.retention_days * 86_400
        expired = [r for r in await self.find(until=limit, limit=100_000)
                   if r.deleted_at is None and not r.hold_by]
        deleted = []
        for entry in expired:
            path = self.path_of(entry.file)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    await asyncio.to_thread(path.unlink)
            entry.deleted_at, entry.deleted_by = now, "retention"
            self._keep(entry)
            if self.journal is not None:
                self.journal.add("recordings", entry.row())
            deleted.append(entry.call_id)
            log.info("recording deleted at the end of its retention", call_id=entry.call_id, file=entry.file,
                     started_at=entry.started_at, retention_days=self.plan.recording.retention_days)
        return deleted
