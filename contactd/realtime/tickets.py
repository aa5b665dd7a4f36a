"""Ticket events to sockets, and who receives each (kept beside listeners.py, the same
security boundary): the full ticket only to its owner (and the previous one), the
customer-facing status only to the customer's own visitor room, pool counts (no customer
data) to every agent, urges and stall warnings to the owner or, in a pool, supervisors."""

from __future__ import annotations

import socketio
from pydantic import BaseModel

from contactd.cases.tickets_events import TicketChanged, TicketStalled, TicketUrged
from contactd.cases.tickets_models import TicketView
from contactd.cases.tickets_service import TicketService
from contactd.realtime.agent import agent_room
from contactd.realtime.gateway import dump
from contactd.realtime.supervisor import ROOM as SUPERVISORS

_MOVES = frozenset({"create", "claim", "assign", "dispatch", "transfer"})


class TicketListeners:
    EVENTS = (TicketChanged, TicketUrged, TicketStalled)  # what on_event handles

    def __init__(self, sio: socketio.AsyncServer, tickets: TicketService) -> None:
        self.sio = sio
        self.tickets = tickets

    async def on_event(self, event: BaseModel) -> None:
        match event:
            case TicketChanged():
                await self._changed(event)
            case TicketUrged():
                await self._alert("ticket.urged", event.ticket, {})
            case TicketStalled():
                await self._alert("ticket.stalled", event.ticket, {"idle_s": event.idle_s})
            case _:
                pass

    async def _changed(self, event: TicketChanged) -> None:
        t = event.ticket
        payload = {"action": event.action, "ticket": dump(t)}
        for agent_id in {t.owner_id, event.previous_owner_id} - {None}:
            await self.sio.emit(
                "ticket.updated", payload, room=agent_room(str(agent_id)), namespace="/agent"
            )
        if event.action in _MOVES or t.final:
            pools = [dump(p) for p in await self.tickets.pools()]
            await self.sio.emit("tickets.pool", {"pools": pools}, namespace="/agent")
        if event.visitor_id:  # the chat's visitor follows it live in the widget
            mine = await self.tickets.for_customer(t.customer_id, event.visitor_id)
            view = next((c for c in mine if c.id == t.id), None)
            if view is not None:
                await self.sio.emit(
                    "ticket.updated",
                    {"ticket": dump(view)},
                    room=f"visitor:{event.visitor_id}",
                    namespace="/customer",
                )

    async def _alert(self, name: str, t: TicketView, extra: dict[str, object]) -> None:
        payload = {"ticket": dump(t), **extra}
        if t.owner_id:
            await self.sio.emit(name, payload, room=agent_room(t.owner_id), namespace="/agent")
        if not t.owner_id or name == "ticket.stalled":
            await self.sio.emit(name, payload, room=SUPERVISORS, namespace="/supervisor")
