"""The directory over HTTP: a company's own customer, order and product systems.

The company exposes (directly or through a thin facade) six read-only JSON endpoints
under one base URL. Every request carries ``Accept: application/json`` and, when a token
is configured, ``Authorization: Bearer <token>``::

    GET {base}/customers/{id}                  -> Customer
    GET {base}/customers?phone={digits}        -> {"items": [Customer, ...]}  (first is used)
    GET {base}/customers?q={text}&limit={n}    -> {"items": [Customer, ...]}
    GET {base}/customers/{id}/orders?limit={n} -> {"items": [Order, ...]}     (newest first)
    GET {base}/orders/{order_no}               -> Order
    GET {base}/products/{sku}                  -> Product

Path segments are percent-encoded; ``phone`` is sent in the normal form of
``normalize_phone`` (a Chinese mobile as its 11 digits). Objects have exactly the fields
of the models in :mod:`contactd.directory.models` (unknown fields are refused; the
``items`` envelope may carry others, e.g. paging); money is integer fen; datetimes are
ISO 8601 with an offset. See ``docs/directory.md`` for examples.

Answers: 200 with the JSON above; 404 means "no such record" and becomes ``None`` (or
``[]``). Anything else — a timeout, a refused connection, another status, a body that
is not JSON or not of the contract's shape, a record other than the one asked for — raises
``ContactdError(ErrorCode.unavailable, ...)``.

Found customers, order lists, orders and products are cached for ``cache_ttl_s``
(misses are not cached, so a newly registered customer shows up at once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar
from urllib.parse import quote

import aiohttp
from pydantic import BaseModel, ConfigDict, ValidationError

from contactd.clock import Clock
from contactd.directory.base import DEFAULT_ORDERS_LIMIT, DEFAULT_SEARCH_LIMIT, clamp_limit
from contactd.directory.cache import TtlCache
from contactd.directory.models import Customer, Order, Product, mask_phone, normalize_phone
from contactd.errors import ContactdError, ErrorCode

log = logging.getLogger(__name__)

DEFAULT_CACHE_MAX_ENTRIES = 1000
NOT_FOUND: Final = object()  # what _get returns for a 404
M = TypeVar("M", bound=BaseModel)


class _CustomerList(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    items: tuple[Customer, ...]


class _OrderList(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    items: tuple[Order, ...]


CachedValue = Customer | Order | Product | tuple[Order, ...]


def _segment(value: str) -> str:
    return quote(value, safe="")


class HttpDirectory:
    """The :class:`~contactd.directory.base.Directory` over the HTTP contract above."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        cache_ttl_s: float,
        token: str | None,
        clock: Clock,
        cache_max_entries: int = DEFAULT_CACHE_MAX_ENTRIES,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._cache: TtlCache[CachedValue] = TtlCache(
            clock, ttl_s=cache_ttl_s, max_entries=cache_max_entries
        )
        self._session: aiohttp.ClientSession | None = None

    # the interface ----------------------------------------------------------------
    async def customer(self, customer_id: str) -> Customer | None:
        key = ("customer", customer_id)
        if isinstance(hit := self._cache.get(key), Customer):
            return hit
        data = await self._get(f"/customers/{_segment(customer_id)}")
        if data is NOT_FOUND:
            return None
        found = self._parse(Customer, data, "customer")
        self._expect(found.id == customer_id, "customer", customer_id)
        self._cache.put(key, found)
        return found

    async def customer_by_phone(self, phone: str) -> Customer | None:
        digits = normalize_phone(phone)
        if not digits:
            return None
        key = ("phone", digits)
        if isinstance(hit := self._cache.get(key), Customer):
            return hit
        data = await self._get("/customers", {"phone": digits})
        if data is NOT_FOUND:
            return None
        items = self._parse(_CustomerList, data, "customer list").items
        if not items:
            return None
        found = items[0]
        same = normalize_phone(found.phone) == digits
        self._expect(same, "customer with phone", mask_phone(digits))
        self._cache.put(key, found)
        self._cache.put(("customer", found.id), found)
        return found

    async def customers_by_phone(self, phones: Sequence[str]) -> dict[str, Customer]:
        # the contract has no batch look-up: one request per number (cached), in parallel
        found = await asyncio.gather(*(self.customer_by_phone(p) for p in phones))
        return {p: c for p, c in zip(phones, found, strict=True) if c is not None}

    async def orders_of(self, customer_id: str, limit: int = DEFAULT_ORDERS_LIMIT) -> list[Order]:
        limit = clamp_limit(limit)
        key = ("orders", customer_id, limit)
        hit = self._cache.get(key)
        if isinstance(hit, tuple):
            return list(hit)
        path = f"/customers/{_segment(customer_id)}/orders"
        data = await self._get(path, {"limit": str(limit)})
        if data is NOT_FOUND:
            return []
        items = self._parse(_OrderList, data, "order list").items
        self._expect(all(o.customer_id == customer_id for o in items), "orders of", customer_id)
        orders = sorted(items, key=lambda o: o.created_at, reverse=True)[:limit]
        self._cache.put(key, tuple(orders))
        return orders

    async def order(self, order_no: str) -> Order | None:
        key = ("order", order_no)
        if isinstance(hit := self._cache.get(key), Order):
            return hit
        data = await self._get(f"/orders/{_segment(order_no)}")
        if data is NOT_FOUND:
            return None
        found = self._parse(Order, data, "order")
        self._expect(found.order_no == order_no, "order", order_no)
        self._cache.put(key, found)
        return found

    async def product(self, sku: str) -> Product | None:
        key = ("product", sku)
        if isinstance(hit := self._cache.get(key), Product):
            return hit
        data = await self._get(f"/products/{_segment(sku)}")
        if data is NOT_FOUND:
            return None
        found = self._parse(Product, data, "product")
        self._expect(found.sku == sku, "product", sku)
        self._cache.put(key, found)
        return found

    async def search_customers(
        self, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> list[Customer]:
        q = query.strip()
        if not q:
            return []
        limit = clamp_limit(limit)
        data = await self._get("/customers", {"q": q, "limit": str(limit)})
        if data is NOT_FOUND:
            return []
        return list(self._parse(_CustomerList, data, "customer list").items[:limit])

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def clear_cache(self) -> None:
        """Forget every cached record, e.g. after an agent changed something upstream."""
        self._cache.clear()

    # plumbing ---------------------------------------------------------------------
    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self._session

    async def _get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The decoded JSON body, or ``NOT_FOUND`` for a 404."""
        try:
            async with self._client().get(self._base + path, params=params) as resp:
                if resp.status == 404:
                    return NOT_FOUND
                if resp.status != 200:
                    raise _unavailable(f"the directory answered HTTP {resp.status}", path)
                return await resp.json(content_type=None)
        except TimeoutError as exc:
            raise _unavailable("the directory did not answer in time", path) from exc
        except aiohttp.ClientError as exc:
            raise _unavailable(
                f"the directory cannot be reached ({type(exc).__name__})", path
            ) from exc
        except ValueError as exc:  # the body is not JSON (or not text)
            raise _unavailable("the directory answered with a body that is not JSON", path) from exc

    @staticmethod
    def _parse(model: type[M], data: Any, what: str) -> M:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}"
                for e in exc.errors()[:3]
            )
            log.warning("directory answered an invalid %s: %s", what, problems)
            raise ContactdError(
                ErrorCode.unavailable, f"the directory answered an invalid {what}"
            ) from exc

    @staticmethod
    def _expect(ok: bool, what: str, wanted: str) -> None:
        if not ok:
            log.warning("directory answered another record than the %s %r", what, wanted)
            raise ContactdError(
                ErrorCode.unavailable, f"the directory answered another record than the {what}"
            )


def _unavailable(message: str, path: str) -> ContactdError:
    log.warning("%s (GET %s)", message, path)
    return ContactdError(ErrorCode.unavailable, message)
