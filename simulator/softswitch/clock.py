"""Time for the emulator: one timer heap that either follows the wall clock or a virtual one.

The softswitch model never sleeps; it schedules callbacks here. A test advances virtual time
(``advance(300)`` runs five minutes of calls instantly); the AMI server runs the same heap
against the real clock. Callbacks due at the same instant run in the order they were scheduled,
which is what makes the emulator's event order reproducible.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    when: float
    seq: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class Scheduler:
    """A discrete-event timer heap. ``now`` is epoch seconds (float)."""

    def __init__(self, start: float | None = None, *, virtual: bool = True) -> None:
        self.virtual = virtual
        self._now = start if start is not None else time.time()
        self._offset = self._now - time.monotonic()
        self._heap: list[Timer] = []
        self._seq = itertools.count()
        self.on_schedule: Callable[[], None] | None = None

    @property
    def now(self) -> float:
        if not self.virtual:
            self._now = max(self._now, time.monotonic() + self._offset)
        return self._now

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(when, next(self._seq), callback)
        heapq.heappush(self._heap, timer)
        if self.on_schedule is not None:
            self.on_schedule()
        return timer

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now + max(0.0, delay), callback)

    def call_soon(self, callback: Callable[[], None]) -> Timer:
        return self.call_at(self.now, callback)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    def run_due(self) -> int:
        """Run every callback due by ``now`` (including ones they schedule for now)."""
        ran = 0
        now = self.now
        while self._heap:
            timer = self._heap[0]
            if timer.cancelled:
                heapq.heappop(self._heap)
                continue
            if timer.when > now:
                break
            heapq.heappop(self._heap)
            timer.callback()
            ran += 1
        return ran

    def advance(self, seconds: float) -> None:
        """Virtual time only: step through every timer up to ``now + seconds``."""
        if not self.virtual:
            raise RuntimeError("advance() is for virtual time; the real-time driver runs timers itself")
        target = self._now + seconds
        while True:
            due = self.next_due()
            if due is None or due > target:
                break
            self._now = max(self._now, due)
            self.run_due()
        self._now = target
        self.run_due()
