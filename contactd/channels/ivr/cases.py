"""What the IVR needs from the case module (after-sales tickets and compensation orders):
a small interface, implemented by ``contactd.cases.phone_desk.PhoneCaseDesk`` (wired in
``app.phone_ctx``), and a stand-in for an IVR run without the case module."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from contactd.channels.ivr.models import Callback


class CaseStatus(BaseModel):
    """One open after-sales ticket or compensation order, as a customer may hear it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["ticket", "compensation"]
    number: str
    title: str  # e.g. 退货退款 / return and refund
    status: str  # the simple customer-facing status, e.g. 审核中 / under review


class CaseDesk(Protocol):
    async def open_cases(self, customer_id: str | None, phone: str) -> list[CaseStatus]:
        """The caller's open tickets and compensations, newest first (at most a few)."""
        ...

    async def ticket_for_voicemail(self, callback: Callback) -> str | None:
        """Open a ticket for a voicemail; its number, or None when tickets are not kept."""
        ...


class NoCaseModule:
    """Without the case module: no cases, and voicemails stay callback requests (listed by
    ``GET /api/v1/ivr/callbacks``)."""

    async def open_cases(self, customer_id: str | None, phone: str) -> list[CaseStatus]:
        return []

    async def ticket_for_voicemail(self, callback: Callback) -> str | None:
        return None
