"""Stopping background tasks for sure.

On Python 3.11, ``asyncio.wait_for`` (which redis-py uses around every command) can swallow
a cancellation that arrives just as the inner call finishes, leaving a loop running after
``task.cancel()``; a plain ``await task`` then waits forever. Cancel until it is done."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def stop_tasks(tasks: Iterable[asyncio.Task[object] | asyncio.Task[None]]) -> None:
    pending = [t for t in tasks if not t.done()]
    while pending:
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=0.5)
        pending = [t for t in pending if not t.done()]
