"""The case part of the agent's screen-pop: the customer's open tickets and compensation
orders. Each case context registers one provider under its key ("tickets",
"compensations"); the session recorder calls :class:`CasePop` with the customer id."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Provider = Callable[[str | None], Awaitable[list[dict[str, Any]]]]


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
