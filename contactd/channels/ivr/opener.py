"""Group commit for the sessions of incoming calls: calls arriving together share one SQL
transaction (one fsync on SQLite, one hop to the lane's thread) and one service-number
increment instead of one each (none for calls that took their number with their claim).
A call is answered only once its session is stored, so nothing is lost."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from contactd.channels.ivr.batch import Batcher
from contactd.sessions.service import NewSession, SessionService
from contactd.storage.bulk import insert_rows
from contactd.storage.db import SqlLane
from contactd.storage.tables import service_sessions

_Item = tuple[str | None, NewSession]


class SessionOpener:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.lane = SqlLane(sessions.engine, "ivr-sessions")
        self.batch: Batcher[_Item, str] = Batcher(self._store, "ivr-session-writer")

    async def open(self, number: str | None = None, **fields: Unpack[NewSession]) -> str:
        """The stored session's id; ``number``: its service number when the call has one
        already (``SessionService.number_counter``), else one is taken now."""
        return await self.batch.submit((number, fields))

    async def _store(self, batch: Sequence[_Item]) -> list[str]:
        missing = sum(1 for number, _ in batch if number is None)
        fresh = iter(await self.sessions.next_numbers(missing) if missing else ())
        rows = [self.sessions.row(n or next(fresh), **f) for n, f in batch]
        await self.lane.write(lambda conn: insert_rows(conn, service_sessions, rows))
        return [row["id"] for row in rows]
