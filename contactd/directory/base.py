"""The directory interface: where contactd looks up customers, their orders and products.

Two implementations: :class:`~contactd.directory.embedded.EmbeddedDirectory` (SQL tables
filled with demo data, the default) and :class:`~contactd.directory.http.HttpDirectory`
(a company's own systems behind a small HTTP contract, see ``docs/directory.md``).

Lookups return ``None`` (or an empty list) when the thing does not exist; a source that
cannot answer raises ``ContactdError(ErrorCode.unavailable, ...)``. Callers such as the
screen-pop should show what they have and carry on when the directory is unavailable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from contactd.directory.models import Customer, Order, Product

DEFAULT_ORDERS_LIMIT = 10
DEFAULT_SEARCH_LIMIT = 20
MAX_LIMIT = 100  # every implementation clamps ``limit`` to 1..MAX_LIMIT


class Directory(Protocol):
    async def customer(self, customer_id: str) -> Customer | None:
        """The customer with this id."""
        ...

    async def customer_by_phone(self, phone: str) -> Customer | None:
        """The customer with this phone number, in any common spelling (``+86 138…``)."""
        ...

    async def customers_by_phone(self, phones: Sequence[str]) -> dict[str, Customer]:
        """``customer_by_phone`` for many numbers at once (one query where the source can):
        the customers found, by the number as given."""
        ...

    async def orders_of(self, customer_id: str, limit: int = DEFAULT_ORDERS_LIMIT) -> list[Order]:
        """The customer's most recent orders, newest first (empty for an unknown customer)."""
        ...

    async def order(self, order_no: str) -> Order | None:
        """The order with this number."""
        ...

    async def product(self, sku: str) -> Product | None:
        """The product with this SKU."""
        ...

    async def search_customers(
        self, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> list[Customer]:
        """Customers whose id or phone number is ``query``, or whose name or phone number
        contains it. An empty query finds nothing."""
        ...

    async def close(self) -> None:
        """Release connections (a no-op for the embedded store)."""
        ...


def clamp_limit(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))
