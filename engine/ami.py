"""The AMI link: panoramisk underneath, with the guarantees a switchboard needs on top.

* **One gate for every value sent.** panoramisk writes ``Key: value`` lines as given, so a
  caller name like ``"x\\r\\nAction: Hangup"`` would become a second action. :func:`safe_action`
  refuses any control character in a key or value before anything reaches the socket.
* **No blind replay.** panoramisk queues unanswered actions on a disconnect and re-sends them
  after the next login; a Redirect re-sent minutes later could move a caller who has since been
  answered. The link fails those actions (:class:`AmiLinkDown`) and empties panoramisk's queue.
* **Bounded.** At most ``max_in_flight`` actions wait for an answer; each has a timeout, so no
  coroutine waits forever on a switch that stopped answering.
* **Reconnect with back-off**, and a callback after every login so the engine resynchronises.
* **Cannot hang or lie.** A switch that accepts TCP but never answers ``Login`` is left after
  ``login_timeout`` and tried again; once logged in, a ``Ping`` every ``ping_every`` seconds must
  be answered within ``stall_after`` — or the switch heard from otherwise (an answer, an event)
  — else the link is declared stalled (``/health`` and ``sas_ami_up`` say so at once) and
  re-established. A switch busy with a surge still talks, so it is slow, not stalled.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

log = structlog.get_logger("engine.ami")

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Actions whose success answer panoramisk 1.4 would mistake for the start of a list.
_SINGLE_ANSWER = {"queueadd", "queueremove", "queuepause", "queuepenalty", "redirect", "setvar", "hangup",
                  "queuewithdrawcaller", "dbput", "dbdel", "getvar", "blindtransfer"}
# DBGet is neither: a found key is a list (EventList start ... DBGetComplete), a missing one a
# single Error; panoramisk tells them apart by the first response when left to decide.
#: Bounds of the AMI action latency histogram, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_LISTS = {"coreshowchannels", "queuestatus", "queuesummary", "status"}


#: The largest AMI frame accepted; a real one is a few kilobytes (a long CoreShowChannel at most).
MAX_FRAME = 256 * 1024
_EOF = "\r\n\r\n"


class GuardedProtocol(AMIProtocol):
    """panoramisk's protocol with a guard around every frame: one malformed frame (a repeated
    ``Event`` or ``ActionID`` header makes panoramisk fail on a list) is logged and skipped instead
    of tearing the link down, and a frame that never ends cannot grow the buffer past MAX_FRAME."""

    malformed = 0
    oversized = 0
    _skipping = False
    version: str | None = None  # panoramisk sets it from the banner

    def data_received(self, data: bytes) -> None:
        text = data.decode(getattr(self, "encoding", "ascii"), "ignore")
        if self.version is None and text.startswith("Asterisk Call Manager/"):
            self.version = text.partition("\r\n")[0].partition("/")[2].strip()
        pending = (self.queue.popleft() if self.queue else "") + text
        frames = pending.split(_EOF)
        rest = frames.pop()
        if self._skipping:
            if not frames:  # still inside the oversized frame: drop what came
                return
            frames.pop(0)  # its tail, up to the blank line that ends it
            self._skipping = False
        if len(rest) > MAX_FRAME:
            GuardedProtocol.oversized += 1
            log.error("AMI frame too large; skipped", size=len(rest), start=rest[:80])
            rest, self._skipping = "", True
        self.queue.append(rest)
        for frame in frames:
            self._one(frame.strip())

    def _one(self, frame: str) -> None:
        try:
            message = Message.from_line(frame)
            if message is not None:
                self.handle_message(message)
        except Exception as exc:  # one bad frame must not end the link
            GuardedProtocol.malformed += 1
            log.error("malformed AMI frame skipped", error=f"{type(exc).__name__}: {exc}"[:200], frame=frame[:200])


class UnsafeValue(ValueError):
    """An action value carried a control character (CR/LF injection attempt or corrupt data)."""


class AmiLinkDown(ConnectionError):
    """The AMI link is down, or dropped before the switch answered: the action was not applied
    as far as we know, and it will not be re-sent."""


class AmiBusy(RuntimeError):
    """Too many actions are waiting for the switch; the caller should retry later."""


class AmiActionFailed(RuntimeError):
    def __init__(self, action: str, message: str) -> None:
        super().__init__(f"{action}: {message}")
        self.action, self.message = action, message


def safe_action(action: Mapping[str, object]) -> dict[str, str]:
    """The action as plain strings, or :class:`UnsafeValue` naming the offending field."""
    clean: dict[str, str] = {}
    for key, value in action.items():
        if not _KEY.match(key):
            raise UnsafeValue(f"invalid AMI header name {key!r}")
        text = "" if value is None else str(value)
        if _CONTROL.search(text):
            raise UnsafeValue(f"{key} contains a control character; refused")
        clean[key] = text
    if "Action" not in clean:
        raise UnsafeValue("no Action")
    return clean


def as_event(message: Mapping[str, Any]) -> dict[str, str]:
    """A panoramisk message as a plain dict (repeated headers joined by newlines)."""
    return {k: v if isinstance(v, str) else "\n".join(map(str, v)) for k, v in message.items()}


class AmiLink:
    def __init__(self, host: str, port: int, username: str, secret: str, *,
                 on_event: Callable[[dict[str, str]], None],
                 on_login: Callable[[], Awaitable[None]] | None = None,
                 on_down: Callable[[], None] | None = None,
                 action_timeout: float = 5.0, max_in_flight: int = 256,
                 reconnect_min: int = 1, reconnect_max: int = 30, ping_every: float = 2.0,
                 stall_after: float = 5.0, login_timeout: float = 10.0) -> None:
        self.host, self.port = host, port
        self._on_event, self._on_login, self._on_down = on_event, on_login, on_down
        self.action_timeout = action_timeout
        self._slots = asyncio.Semaphore(max_in_flight)
        self._in_flight: set[asyncio.Future[Any]] = set()
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.connected = False
        self.logins = 0
        self.latencies: list[float] = []  # seconds per answered action, the most recent ones
        #: Lifetime histogram of action latencies (Prometheus): counts per LATENCY_BUCKETS bound + overflow.
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.ping_every, self.stall_after, self.login_timeout = ping_every, stall_after, login_timeout
        #: Set when the switch stopped answering pings; cleared at the next login.
        self.stalled = False
        #: When the switch was last heard (an answer or an event, monotonic): one that talks is alive.
        self.last_answer = time.monotonic()
        self.stalls = 0
        self._connection = 0  # which TCP connection a login deadline belongs to
        # panoramisk's own pinger only writes Ping and never looks at the answer: ours does.
        self._manager = Manager(host=host, port=port, username=username, secret=secret, events="on",
                                reconnect_timeout=reconnect_min, ping_delay=86_400, ping_interval=86_400,
                                on_login=self._logged_in, on_disconnect=self._disconnected,
                                on_connect=self._tcp_connected, protocol_factory=GuardedProtocol)
        self._manager.register_event("*", self._dispatch)
        self._started = False
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._started = True
        self._manager.connect()
        self._watchdog = asyncio.ensure_future(self._watch())

    async def stop(self) -> None:
        self._started = False
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.connected = False  # a deliberate stop is not a link failure
        self._fail_in_flight()
        self._manager.reconnect_timeout = 3600
        self._manager.close()

    # --- liveness ------------------------------------------------------------------------------

    def _tcp_connected(self, _manager: Manager) -> None:
        self._connection += 1
        connection = self._connection
        asyncio.get_running_loop().call_later(self.login_timeout, self._login_overdue, connection)

    def _login_overdue(self, connection: int) -> None:
        if connection == self._connection and not self.connected and self._started:
            log.error("AMI login not answered; connecting again", host=self.host, port=self.port,
                      waited=self.login_timeout)
            self._drop_transport()

    async def _watch(self) -> None:
        """Ping the switch; no answer within ``stall_after`` is a stall: say so, and reconnect."""
        while self._started:
            await asyncio.sleep(self.ping_every)
            if not self.connected:
                continue
            ping = asyncio.ensure_future(self.send({"Action": "Ping"}))
            ping.add_done_callback(lambda task: task.cancelled() or task.exception())  # looked at below
            try:
                await asyncio.wait_for(asyncio.shield(ping), timeout=self.stall_after)
            except (TimeoutError, AmiLinkDown, AmiBusy) as exc:
                if not self.connected or not self._started:
                    ping.cancel()
                    continue
                # Our own loop may have been the slow one (a timer fires late after a long step):
                # let the reader take what the socket already holds before judging the switch.
                await asyncio.sleep(0.2)
                answered = ping.done() and not ping.cancelled() and not isinstance(
                    ping.exception(), (AmiLinkDown, AmiBusy))
                if answered or time.monotonic() - self.last_answer < self.stall_after:
                    continue  # busy, not stalled: it answered within the bound
                ping.cancel()
                self.stalled, self.stalls = True, self.stalls + 1
                log.error("AMI link stalled: no answer to Ping; reconnecting", host=self.host,
                          waited=self.stall_after, error=str(exc) or type(exc).__name__)
                self._disconnected(self._manager, exc)  # up=False at once, in-flight actions failed
                self._drop_transport()
            except AmiActionFailed:
                pass  # an answer, even an error, is a live switch

    def _drop_transport(self) -> None:
        protocol = getattr(self._manager, "protocol", None)
        transport = getattr(protocol, "transport", None)
        if transport is not None:
            transport.close()

    # --- panoramisk callbacks -------------------------------------------------------------------

    def _logged_in(self, _manager: Manager) -> None:
        self.connected = True
        self.stalled = False
        self.last_answer = time.monotonic()  # the Login was answered
        self.logins += 1
        self._manager.reconnect_timeout = self.reconnect_min
        log.info("ami logged in", host=self.host, port=self.port, logins=self.logins)
        if self._on_login is not None:
            task = asyncio.ensure_future(self._on_login())
            task.add_done_callback(self._after_login_done)

    def _after_login_done(self, task: asyncio.Future[None]) -> None:
        """A resync that failed leaves the engine blind: log it and log in again (with back-off)
        rather than route on a picture of the switch that was never taken."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("after-login task failed; logging in again", error=repr(task.exception()))
        if self.connected:
            self._disconnected(self._manager, task.exception())
            self._drop_transport()

    def _disconnected(self, _manager: Manager, exc: BaseException | None) -> None:
        was = self.connected
        self.connected = False
        self._fail_in_flight()
        # Back-off: every failed attempt doubles the delay up to reconnect_max.
        self._manager.reconnect_timeout = min(self.reconnect_max, max(self.reconnect_min,
                                                                      self._manager.reconnect_timeout * 2))
        if not self._started:
            self._manager.reconnect_timeout = 3600
        if was:
            log.warning("ami link down", reason=str(exc) if exc else "closed",
                        retry_in=self._manager.reconnect_timeout)
            if self._on_down is not None:
                self._on_down()

    def _fail_in_flight(self) -> None:
        # Never replay: actions left unanswered are failed and dropped from panoramisk's queue.
        awaiting = getattr(self._manager, "awaiting_actions", None)
        if awaiting is not None:
            while awaiting:
                action = awaiting.popleft()
                if not action.future.done():
                    action.future.set_exception(AmiLinkDown("AMI link dropped before the answer"))
        for future in list(self._in_flight):
            if not future.done():
                future.set_exception(AmiLinkDown("AMI link dropped before the answer"))
        self._in_flight.clear()

    def _dispatch(self, _manager: Manager, message: Mapping[str, Any]) -> None:
        self.last_answer = time.monotonic()  # a switch that talks is alive, however slow its answers
        try:
            self._on_event(as_event(message))
        except Exception:  # one bad event must not stop the stream
            log.exception("event handling failed", event=message.get("Event"))

    # --- actions ----------------------------------------------------------------------------------

    async def send(self, action: Mapping[str, object]) -> Any:
        """Send one action; returns panoramisk's answer (a message, or a list for list actions)."""
        return (await self.send_in_order([action]))[0]

    async def send_in_order(self, actions: Sequence[Mapping[str, object]]) -> list[Any]:
        """Write several actions back to back, then wait for their answers together.

        Asterisk runs one AMI session's actions one after another, in the order they arrive, so a
        move's ``Setvar`` still takes effect before its ``BlindTransfer`` while the two round trips
        overlap: the caller's gap is one round trip, not two. The first error, in order, is raised
        once every answer is in (or timed out)."""
        cleans = [safe_action(action) for action in actions]
        if not self.connected:
            raise AmiLinkDown("AMI link is down")
        taken = 0
        try:
            for _ in cleans:
                try:
                    await asyncio.wait_for(self._slots.acquire(), timeout=self.action_timeout)
                except TimeoutError as exc:
                    raise AmiBusy("too many AMI actions waiting") from exc
                taken += 1
            started = time.perf_counter()
            futures = []
            for clean in cleans:  # no await between the writes: they leave in this order
                name = clean["Action"].lower()
                as_list = True if name in _LISTS else (False if name in _SINGLE_ANSWER else None)
                future = self._manager.send_action(clean, as_list=as_list)
                self._in_flight.add(future)
                futures.append(future)
            answers: list[Any] = []
            failure: Exception | None = None
            for clean, future in zip(cleans, futures, strict=True):
                try:
                    answers.append(await self._answer(clean, future, started))
                except (AmiActionFailed, AmiLinkDown) as exc:
                    answers.append(None)
                    failure = failure or exc
            if failure is not None:
                raise failure
            return answers
        finally:
            for _ in range(taken):
                self._slots.release()

    async def _answer(self, clean: dict[str, str], future: Any, started: float) -> Any:
        try:
            answer = await asyncio.wait_for(asyncio.shield(future), timeout=self.action_timeout)
        except TimeoutError as exc:
            with contextlib.suppress(Exception):
                future.cancel()
            raise AmiLinkDown(f"{clean['Action']}: no answer within {self.action_timeout}s") from exc
        finally:
            self._in_flight.discard(future)
        elapsed = time.perf_counter() - started
        self.last_answer = time.monotonic()
        self.latencies.append(elapsed)
        self.latency_sum += elapsed
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        if len(self.latencies) > 10_000:
            del self.latencies[:5_000]
        first = answer[0] if isinstance(answer, list) and answer else answer
        if getattr(first, "get", None) and first.get("Response") == "Error":
            raise AmiActionFailed(clean["Action"], first.get("Message", ""))
        return answer


