"""The machinery under the ticket use cases: reading tickets, and the one write path.

Every change is one write transaction that reads the ticket, checks it (the caller's
``check``), updates it only if its ``version`` is still the one read (so two people acting
at once: one wins, the other gets ``ticket_changed``), appends a timeline node and an
audit entry (before/after), commits, then publishes a bus event.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.bus import Bus
from contactd.cases import tickets_repository as repo
from contactd.cases.idempotency import IdempotencyKeys
from contactd.cases.tickets_events import TicketChanged
from contactd.cases.tickets_models import (
    FINAL_STATES,
    Actor,
    PoolSummary,
    TicketDetail,
    TicketView,
)
from contactd.clock import Clock
from contactd.directory.base import Directory
from contactd.errors import ContactdError, ErrorCode
from contactd.sessions.models import Attachment
from contactd.settings import Settings
from contactd.storage.db import write_transaction

E = ErrorCode
NameOf = Callable[[str], Awaitable[tuple[str, frozenset[str]] | None]]


class ChatFiles(Protocol):
    """The images and files customers sent in chats (the chat context's uploads)."""

    async def attachment(self, attachment_id: str, session_id: str) -> Attachment:
        """The file, if it was sent in this session (else ``not_found``)."""
        ...

    async def of_session(self, session_id: str) -> list[Attachment]:
        """Every file sent in the session, oldest first."""
        ...


class TicketCore:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        clock: Clock,
        bus: Bus,
        audit: AuditLog,
        directory: Directory,
        staff: NameOf,
        files: ChatFiles | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._cfg = settings.tickets
        self._clock = clock
        self._bus = bus
        self._audit = audit
        self._directory = directory
        self._staff = staff
        self._files = files
        self._tz = ZoneInfo(settings.timezone)
        # Idempotency-Key records of ticket creation (the open API's one table and retention)
        self.idempotency = IdempotencyKeys(engine, clock, settings.compensation.idempotency_ttl_s)
        wanted = self._cfg.default_queue
        if wanted is not None and settings.queue(wanted) is None:
            raise ValueError(f"tickets.default_queue {wanted!r} is not a queue")

    @property
    def _stall_ms(self) -> int:
        return int(self._cfg.stall_after_s * 1000)

    def _view(self, row: Mapping[Any, Any]) -> TicketView:
        return repo.to_view(row, self._clock.now_ms(), self._stall_ms)

    async def _row(self, conn: AsyncConnection, ticket_id: str) -> RowMapping:
        row = await repo.get(conn, ticket_id)
        if row is None:
            raise ContactdError(E.ticket_not_found, "no such ticket")
        return row

    async def get(self, ticket_id: str) -> TicketView:
        async with self._engine.connect() as conn:
            return self._view(await self._row(conn, ticket_id))

    async def detail(self, ticket_id: str) -> TicketDetail:
        async with self._engine.connect() as conn:
            row = await self._row(conn, ticket_id)
            nodes = await repo.timeline(conn, ticket_id)
        return TicketDetail(ticket=self._view(row), timeline=nodes)

    async def search(self, **filters: Any) -> list[TicketView]:
        async with self._engine.connect() as conn:
            rows = await repo.search(conn, **filters)
        return [self._view(r) for r in rows]

    async def pools(self) -> list[PoolSummary]:
        async with self._engine.connect() as conn:
            found = {p.queue_id: p for p in await repo.pools(conn, self._clock.now_ms())}
        queues = [q.id for q in self._settings.queues]
        empty = [
            PoolSummary(queue_id=q, count=0, oldest_created_at=None, oldest_age_s=None, urgent=0)
            for q in queues
            if q not in found
        ]
        return sorted(
            [*found.values(), *empty],
            key=lambda p: queues.index(p.queue_id) if p.queue_id in queues else len(queues),
        )

    def _new_id(self) -> str:
        day = datetime.fromtimestamp(self._clock.now_ms() / 1000, tz=self._tz)
        return f"T{day:%Y%m%d}-{secrets.token_hex(4).upper()}"

    def _queue(self, wanted: str | None) -> str:
        queue_id = wanted or self._cfg.default_queue or self._settings.queues[0].id
        if self._settings.queue(queue_id) is None:
            raise ContactdError(E.unknown_queue, f"no queue {queue_id!r}")
        return queue_id

    async def _node(
        self,
        conn: AsyncConnection,
        ticket_id: str,
        actor: Actor,
        action: str,
        from_state: str | None,
        to_state: str | None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        await repo.add_event(
            conn,
            ticket_id,
            {
                "at": self._clock.now_ms(),
                "action": action,
                "actor_type": actor.kind,
                "actor_id": actor.id,
                "actor_name": actor.name,
                "from_state": from_state,
                "to_state": to_state,
                "note": note,
                "data": data,
            },
        )

    async def _record(
        self,
        conn: AsyncConnection,
        actor: Actor,
        action: str,
        after: TicketView,
        before: TicketView | None,
    ) -> None:
        extra = {"customer": actor.id} if actor.kind == "customer" else {}
        await self._audit.record(
            actor.principal,
            action,
            "ticket",
            after.id,
            before=before.model_dump(mode="json") if before else None,
            after={**after.model_dump(mode="json"), **extra},
            conn=conn,
        )

    async def _publish(self, event: BaseModel) -> None:
        await self._bus.publish([event])

    async def _change(
        self,
        ticket_id: str,
        actor: Actor,
        action: str,
        check: Callable[[TicketView], dict[str, Any]],
        *,
        version: int | None = None,
        note: str | None = None,
        data: dict[str, Any] | None = None,
        progress: bool = True,
    ) -> TicketView:
        """The one write path: read, ``check`` (raises, or returns the column changes),
        conditional update, timeline node, audit; then the event."""
        async with write_transaction(self._engine) as conn:
            row = await self._row(conn, ticket_id)
            before = self._view(row)
            if version is not None and version != before.version:
                raise ContactdError(
                    E.ticket_changed,
                    "the ticket changed since you loaded it: reload it",
                    version=before.version,
                )
            changes = check(before)
            now = self._clock.now_ms()
            if progress:
                changes.setdefault("updated_at", now)
                if actor.kind == "staff" and before.first_action_at is None:
                    changes.setdefault("first_action_at", now)
            if changes.get("state") in FINAL_STATES:
                changes["closed_at"] = now
            if not await repo.update(conn, ticket_id, before.version, changes):
                raise ContactdError(E.ticket_changed, "someone else changed the ticket first")
            await self._node(
                conn,
                ticket_id,
                actor,
                action,
                before.state,
                changes.get("state", before.state),
                note,
                data,
            )
            after = self._view({**row, **changes, "version": before.version + 1})
            await self._record(conn, actor, f"ticket.{action}", after, before)
        await self._publish(
            TicketChanged(
                action=action,
                ticket=after,
                previous_owner_id=before.owner_id,
                visitor_id=row["visitor_id"],
            )
        )
        return after

    def _may_act(self, actor: Actor, t: TicketView) -> None:
        if t.final:
            raise ContactdError(E.ticket_closed, f"the ticket is closed ({t.state_label})")
        if actor.kind == "api_key":
            return  # another system (after-sales, payment centre) reports progress
        if t.owner_id != actor.id:
            raise ContactdError(
                E.ticket_not_owner,
                "claim the ticket first"
                if t.owner_id is None
                else "only the ticket's owner may act on it",
            )

    async def _target(self, agent_id: str) -> str:
        found = await self._staff(agent_id)
        if found is None or "tickets.handle" not in found[1]:
            raise ContactdError(
                E.agent_not_found, f"{agent_id!r} is not an active staff member who handles tickets"
            )
        return found[0]
