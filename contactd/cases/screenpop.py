"""The case part of the agent's screen-pop: the customer's open tickets and compensation
orders. Each case context registers one provider under its key ("tickets",
"compensations"); the session recorder calls :class:`CasePop` with the customer id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.cases.compensation_models import Status
from contactd.storage.tables import compensations

log = logging.getLogger(__name__)

Provider = Callable[[str | None], Awaitable[list[dict[str, Any]]]]
_UNFINISHED = (Status.pending_review.value, Status.rejected.value, Status.approved.value)


class CasePop:
    def __init__(self) -> None:
        self.providers: dict[str, Provider] = {}

    async def __call__(self, customer_id: str | None) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {"tickets": [], "compensations": []}
        for name, provider in self.providers.items():
            try:
                found[name] = await provider(customer_id)
            except Exception:  # the screen-pop shows what it has and carries on
                log.exception("screen-pop: %s lookup failed", name)
        return found


def compensations_provider(engine: AsyncEngine) -> Provider:
    """The customer's unfinished compensation orders (read-only), until the compensation
    context registers a provider of its own."""

    async def lookup(customer_id: str | None) -> list[dict[str, Any]]:
        if not customer_id:
            return []
        c = compensations
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(c.c.id, c.c.order_no, c.c.status, c.c.amount, c.c.asset_type)
                .where(c.c.customer_id == customer_id, c.c.status.in_(_UNFINISHED))
                .order_by(c.c.created_at.desc())
                .limit(20)
            )
            return [{**dict(r), "status_label": Status(r["status"]).label} for r in rows.mappings()]

    return lookup
