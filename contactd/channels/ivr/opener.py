"""Group commit for the sessions of incoming calls: calls arriving together share one SQL
transaction (one fsync on SQLite, one hop to the lane's thread) and one service-number
increment instead of one each. A call is answered only once its session is stored, so
nothing is lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from contactd.channels.ivr.batch import Batcher
from contactd.sessions.models import SessionRecord
from contactd.sessions.service import NewSession, SessionService
from contactd.storage.bulk import insert_rows
from contactd.storage.db import SqlLane
from contactd.storage.tables import service_sessions

_EMPTY = {name: None for name in SessionRecord.model_fields}


class SessionOpener:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.lane = SqlLane(sessions.engine, "ivr-sessions")
        self.batch: Batcher[NewSession, SessionRecord] = Batcher(self._store, "ivr-session-writer")

    async def open(self, **fields: Unpack[NewSession]) -> SessionRecord:
        return await self.batch.submit(fields)

    async def _store(self, batch: Sequence[NewSession]) -> list[SessionRecord]:
        numbers = await self.sessions.next_numbers(len(batch))
        rows = [self.sessions.row(n, **f) for n, f in zip(numbers, batch, strict=True)]
        await self.lane.write(lambda conn: insert_rows(conn, service_sessions, rows))
        return [SessionRecord.model_validate({**_EMPTY, **row}) for row in rows]
