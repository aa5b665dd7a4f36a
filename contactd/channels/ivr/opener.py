"""Group commit for the sessions of incoming calls: calls arriving together share one SQL
transaction (one fsync on SQLite) instead of one each. A call is answered only once its
session is stored, so nothing is lost; a burst of calls costs one commit."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Unpack

import sqlalchemy as sa

from contactd.sessions.models import SessionRecord
from contactd.sessions.service import NewSession, SessionService
from contactd.storage.db import write_transaction
from contactd.storage.tables import service_sessions
from contactd.tasks import stop_tasks

log = logging.getLogger(__name__)

_EMPTY = {name: None for name in SessionRecord.model_fields}
MAX_BATCH = 500


class SessionOpener:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self._pending: list[tuple[dict[str, Any], asyncio.Future[SessionRecord]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ivr-session-writer")

    async def stop(self) -> None:
        """Store what is pending, then stop."""
        if self._task is None:
            return
        await self._flush()
        await stop_tasks([self._task])
        self._task = None

    async def open(self, **fields: Unpack[NewSession]) -> SessionRecord:
        if self._task is None:  # not started (a tool, a test): one transaction of its own
            return await self.sessions.open(**fields)
        values = await self.sessions.new_values(**fields)
        done: asyncio.Future[SessionRecord] = asyncio.get_running_loop().create_future()
        self._pending.append((values, done))
        self._wake.set()
        return await done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                async with write_transaction(self.sessions.engine) as conn:
                    await conn.execute(sa.insert(service_sessions), [v for v, _ in batch])
            except Exception as exc:
                log.exception("storing %d new call sessions failed", len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for values, done in batch:
                if not done.done():
                    done.set_result(SessionRecord.model_validate({**_EMPTY, **values}))
