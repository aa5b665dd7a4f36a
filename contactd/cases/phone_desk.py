"""The case module as the phone channel sees it (``channels.ivr.cases.CaseDesk``): a
caller's open after-sales tickets and compensation orders, read out by the IVR's
self-service menu ("3: refunds and compensation")."""

from __future__ import annotations

from aiohttp import web

from contactd.cases.tickets_models import Lang
from contactd.cases.tickets_service import TicketService
from contactd.channels.ivr.cases import CaseStatus
from contactd.channels.ivr.models import Callback
from contactd.keys import COMPENSATION

_MAX = 3  # what a caller can follow by ear


class PhoneCaseDesk:
    def __init__(self, app: web.Application, tickets: TicketService, lang: str) -> None:
        self._app = app  # the compensation module starts after the phone channel
        self._tickets = tickets
        self._lang: Lang = "zh" if lang.lower().startswith("zh") else "en"

    async def open_cases(self, customer_id: str | None, phone: str) -> list[CaseStatus]:
        """Only a caller whose number is on an account hears anything (``customer_id``)."""
        if not customer_id:
            return []
        found = [
            CaseStatus(kind="ticket", number=t.id, title=t.type_label, status=t.status)
            for t in await self._tickets.for_customer(customer_id, None, self._lang)
            if not t.final
        ]
        money = self._app.get(COMPENSATION)
        if money is not None:
            found += [
                CaseStatus(
                    kind="compensation",
                    number=n.compensation_id,
                    title=f"{n.asset_label} ¥{n.amount / 100:.2f}",
                    status=n.label,
                )
                for n in await money.service.for_customer(customer_id, "")
                if n.status not in ("paid", "closed")
            ]
        return found[:_MAX]

    async def ticket_for_voicemail(self, callback: Callback) -> str | None:
        return None  # a voicemail is a callback request (GET /api/v1/ivr/callbacks)
