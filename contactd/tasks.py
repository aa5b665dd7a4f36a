"""Background tasks: running one every so often, and stopping them for sure.

On Python 3.11, ``asyncio.wait_for`` (which redis-py uses around every command) can swallow
a cancellation that arrives just as the inner call finishes, leaving a loop running after
``task.cancel()``; a plain ``await task`` then waits forever. Cancel until it is done."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)


async def every(interval_s: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """Run ``step`` every ``interval_s`` seconds (after the first wait), for ever; a pass
    that fails is logged as "``what`` failed" and the next one goes ahead."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await step()
        except Exception:
            log.exception("%s failed", what)


async def stop_tasks(tasks: Iterable[asyncio.Task[object] | asyncio.Task[None]]) -> None:
    pending = [t for t in tasks if not t.done()]
    while pending:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
