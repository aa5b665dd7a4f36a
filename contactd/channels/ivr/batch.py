"""Batching for the phone channel's hot path: work submitted while a batch is running is
done together in the next one (one SQL transaction, one query), so a burst of calls costs
a few round trips instead of one each. Owned by ``ivr_ctx`` (start/stop)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from contactd.tasks import stop_tasks

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


class Batcher(Generic[In, Out]):
    """``submit(item)`` returns ``work([..., item, ...])``'s answer for that item. While not
    started (a tool, a test), each item is a batch of its own."""

    def __init__(
        self,
        work: Callable[[Sequence[In]], Awaitable[Sequence[Out]]],
        name: str,
        max_batch: int = 500,
    ) -> None:
        self.work = work
        self.name = name
        self.max_batch = max_batch
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Finish what is pending, then stop."""
        if self._task is None:
            return
        await self._flush()
        await stop_tasks([self._task])
        self._task = None

    async def submit(self, item: In) -> Out:
        if self._task is None:
            return (await self.work([item]))[0]
        return await self.later(item)

    def later(self, item: In) -> asyncio.Future[Out]:
        """``item``'s answer as a future, the item queued for the next batch now: work that
        starts beside something else without a task of its own. Cancelling the future
        drops the answer (the item is still looked at). While not started: a task."""
        if self._task is None:
            return asyncio.ensure_future(self.submit(item))
        done: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        self._wake.set()
        return done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            self._pending = self._pending[self.max_batch :]
            try:
                results = await self.work([item for item, _ in batch])
            except Exception as exc:  # every caller hears of it; the loop goes on
                log.warning("%s: a batch of %d failed: %r", self.name, len(batch), exc)
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)
