"""Group commit for the sessions of incoming calls: calls arriving together share one SQL
transaction (one fsync on SQLite) instead of one each. A call is answered only once its
session is stored, so nothing is lost; a burst of calls costs one commit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Unpack

import sqlalchemy as sa

from contactd.channels.ivr.batch import Batcher
from contactd.sessions.models import SessionRecord
from contactd.sessions.service import NewSession, SessionService
from contactd.storage.db import write_transaction
from contactd.storage.tables import service_sessions

_EMPTY = {name: None for name in SessionRecord.model_fields}


class SessionOpener:
    def __init__(self, sessions: SessionService) -> None:
        self.sessions = sessions
        self.batch: Batcher[dict[str, Any], SessionRecord] = Batcher(
            self._store, "ivr-session-writer"
        )

    async def open(self, **fields: Unpack[NewSession]) -> SessionRecord:
        return await self.batch.submit(await self.sessions.new_values(**fields))

    async def _store(self, rows: Sequence[dict[str, Any]]) -> list[SessionRecord]:
        async with write_transaction(self.sessions.engine) as conn:
            await conn.execute(sa.insert(service_sessions), list(rows))
        return [SessionRecord.model_validate({**_EMPTY, **row}) for row in rows]
