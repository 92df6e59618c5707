"""Stopping background tasks so that a stop can never hang.

Python 3.11's ``asyncio.wait_for`` (used inside aiomqtt's publish) can swallow a cancellation
that arrives just as its inner future completes (CPython gh-86296, fixed in 3.12). A loop that
awaits such a call may then never see its ``cancel()``, and ``await task`` would wait forever —
a supervisor's restart hanging on a stopped broker. Loops check ``cancelling()`` themselves and
stops wait a bounded time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import structlog

log = structlog.get_logger("engine.aio")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], *, within: float = 2.0, what: str = "") -> None:
    """Cancel ``tasks`` and wait for them at most ``within`` seconds; stragglers are logged."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    _, stuck = await asyncio.wait(pending, timeout=within)
    for task in stuck:
        task.cancel()
        log.warning("task did not stop in time", task=task.get_name(), what=what, within=within)


def cancel_requested() -> bool:
    """True when the current task was asked to stop (even if a library swallowed the CancelledError)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
