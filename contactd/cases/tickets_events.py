"""Ticket domain events on the bus; realtime/tickets.py decides who receives them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from contactd.cases.tickets_models import TicketView


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketChanged(_Event):
    """Anything about the ticket changed (created, claimed, moved, advanced, urged)."""

    type: Literal["ticket.changed"] = "ticket.changed"
    action: str
    ticket: TicketView
    previous_owner_id: str | None = None
    visitor_id: str | None = None


class TicketUrged(_Event):
    type: Literal["ticket.urged"] = "ticket.urged"
    ticket: TicketView


class TicketStalled(_Event):
    type: Literal["ticket.stalled"] = "ticket.stalled"
    ticket: TicketView
    idle_s: int
