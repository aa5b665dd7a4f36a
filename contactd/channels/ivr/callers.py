"""Who is calling: the directory looked up by the caller's number, the numbers of calls
arriving together in one query (``Directory.customers_by_phone``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from contactd.channels.ivr.batch import Batcher
from contactd.directory.base import Directory
from contactd.directory.models import Customer


class CallerLookup:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.batch: Batcher[str, Customer | None] = Batcher(self._find, "ivr-caller-lookup")

    async def customer(self, phone: str) -> Customer | None:
        return await self.batch.submit(phone)

    def later(self, phone: str) -> asyncio.Future[Customer | None]:
        """The look-up started now, its answer a future (``Batcher.later``)."""
        return self.batch.later(phone)

    async def _find(self, phones: Sequence[str]) -> list[Customer | None]:
        found = await self.directory.customers_by_phone(phones)
        return [found.get(p) for p in phones]
