"""SQL for the phone channel: the record of each call the IVR handled, and callback
requests (voicemails)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.channels.ivr.models import Callback, CallState
from contactd.storage.db import write_transaction
from contactd.storage.tables import ivr_callbacks as cb
from contactd.storage.tables import ivr_calls as calls


class IvrRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def record_call(self, state: CallState, ended_at: int) -> None:
        """Write the finished call once (a second end of the same call changes nothing)."""
        values = {
            "call_id": state.call_id,
            "caller": state.caller,
            "dialled": state.dialled,
            "ivr_path": state.ivr_path,
            "customer_id": state.customer_id,
            "session_id": state.session_id,
            "outcome": state.outcome,
            "menu_log": [s.model_dump() for s in state.log],
            "started_at": state.started_at,
            "ended_at": ended_at,
        }
        try:
            async with write_transaction(self.engine) as conn:
                await conn.execute(sa.insert(calls).values(**values))
        except IntegrityError:
            pass

    async def add_callback(
        self,
        state: CallState,
        reason: str,
        recording_url: str | None,
        recording_s: int | None,
        now: int,
    ) -> tuple[Callback, bool]:
        """The call's callback request, created on first call (one per call)."""
        values = {
            "call_id": state.call_id,
            "caller": state.caller,
            "customer_id": state.customer_id,
            "session_id": state.session_id,
            "reason": reason,
            "recording_url": recording_url,
            "recording_s": recording_s,
            "state": "open",
            "ticket_id": None,
            "created_at": now,
        }
        created = True
        try:
            async with write_transaction(self.engine) as conn:
                await conn.execute(sa.insert(cb).values(**values))
        except IntegrityError:
            created = False
        found = await self.callback_of_call(state.call_id)
        assert found is not None
        return found, created

    async def set_ticket(self, callback_id: int, ticket_id: str) -> None:
        async with write_transaction(self.engine) as conn:
            await conn.execute(
                sa.update(cb).where(cb.c.id == callback_id).values(ticket_id=ticket_id)
            )

    async def callback_of_call(self, call_id: str) -> Callback | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(cb).where(cb.c.call_id == call_id))).mappings()
            found = row.first()
        return None if found is None else Callback.model_validate(dict(found))

    async def callbacks(self, state: str | None, limit: int, offset: int) -> list[Callback]:
        q = sa.select(cb).order_by(cb.c.created_at.desc(), cb.c.id.desc())
        if state is not None:
            q = q.where(cb.c.state == state)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(limit).offset(offset))).mappings().all()
        return [Callback.model_validate(dict(r)) for r in rows]

    async def close_callback(self, callback_id: int) -> Callback | None:
        async with write_transaction(self.engine) as conn:
            await conn.execute(sa.update(cb).where(cb.c.id == callback_id).values(state="done"))
            row = (await conn.execute(sa.select(cb).where(cb.c.id == callback_id))).mappings()
            found = row.first()
        return None if found is None else Callback.model_validate(dict(found))

    async def calls_of(self, caller: str, limit: int = 20) -> list[dict[str, object]]:
        q = (
            sa.select(calls)
            .where(calls.c.caller == caller)
            .order_by(calls.c.started_at.desc())
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(q)).mappings().all()]

    async def outcomes(self, since: int, until: int) -> dict[str, int]:
        """Finished calls started in [since, until), counted by outcome."""
        q = (
            sa.select(calls.c.outcome, sa.func.count())
            .where(calls.c.started_at >= since, calls.c.started_at < until)
            .group_by(calls.c.outcome)
        )
        async with self.engine.connect() as conn:
            return {str(o): int(n) for o, n in (await conn.execute(q)).all()}
