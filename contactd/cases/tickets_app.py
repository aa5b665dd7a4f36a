"""Wiring of the ticket context (called from app.py's ``tickets_ctx``): the service, the
screen-pop provider, the socket listeners and the stall-warning task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

# the case REST routes register themselves on import (app.py installs the registry)
from contactd.api import routes_audit, routes_dashboard, routes_tickets  # noqa: F401
from contactd.cases.screenpop import compensations_provider
from contactd.cases.tickets_service import TicketService
from contactd.clock import Clock
from contactd.errors import ContactdError
from contactd.keys import (
    AUDIT,
    AUTH,
    BUS,
    CASE_POP,
    CLOCK,
    DB,
    DIRECTORY,
    SESSIONS,
    SETTINGS,
    SIO,
    TICKETS,
    UPLOADS,
)
from contactd.realtime.tickets import TicketListeners
from contactd.sessions.models import Attachment
from contactd.tasks import stop_tasks

log = logging.getLogger(__name__)


async def _stall_loop(tickets: TicketService, every_s: float) -> None:
    while True:
        try:
            await tickets.warn_stalled()
        except Exception:
            log.exception("stalled-ticket check failed")
        await asyncio.sleep(every_s)


class _ChatFiles:
    """Chat files for tickets, looked up when needed (the session service starts after
    the ticket context)."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    async def attachment(self, attachment_id: str, session_id: str) -> Attachment:
        return await self._app[UPLOADS].attachment(attachment_id, session_id)

    async def of_session(self, session_id: str) -> list[Attachment]:
        messages = await self._app[SESSIONS].messages(session_id, 0, 500)
        return [m.attachment for m in messages if m.attachment is not None]


def build_tickets(app: web.Application) -> TicketService:
    auth = app[AUTH]
    settings = app[SETTINGS]

    async def staff(username: str) -> tuple[str, frozenset[str]] | None:
        try:
            user = await auth.get_user_by_username(username)
        except ContactdError:
            return None
        if not user.active:
            return None
        return user.display_name, settings.permissions_of(user.role)

    clock: Clock = app[CLOCK]
    files = _ChatFiles(app)
    return TicketService(
        app[DB], settings, clock, app[BUS], app[AUDIT], app[DIRECTORY], staff, files
    )


async def tickets_context(app: web.Application) -> AsyncIterator[None]:
    tickets = build_tickets(app)
    app[TICKETS] = tickets
    app[CASE_POP].providers["tickets"] = tickets.screen_pop
    app[CASE_POP].providers.setdefault("compensations", compensations_provider(app[DB]))
    listeners = TicketListeners(app[SIO], tickets)
    unsubscribe = app[BUS].subscribe(listeners.on_event, *TicketListeners.EVENTS)
    task = asyncio.create_task(
        _stall_loop(tickets, app[SETTINGS].tickets.stall_check_s), name="ticket-stalls"
    )
    yield
    await stop_tasks([task])
    unsubscribe()
