"""Ownership of an order for someone we do not know (an anonymous visitor, a caller whose
number is on no account): the last four digits of the order's customer's phone.

Wrong answers are counted per order over every channel for an hour; from ``MAX_TRIES``
on no answer passes, right or wrong, so four digits cannot be guessed by trying them all
across chats and calls."""

from __future__ import annotations

from redis.asyncio import Redis

from contactd.directory.base import Directory
from contactd.directory.models import Order, normalize_phone
from contactd.storage.keyspace import SiteKeys

MAX_TRIES = 5  # wrong checks per order and hour, over all channels
_WINDOW_S = 3600


class PhoneCheck:
    def __init__(self, redis: Redis, keys: SiteKeys, directory: Directory) -> None:
        self.redis = redis
        self.keys = keys
        self.directory = directory

    async def locked(self, order_no: str) -> bool:
        """Too many wrong answers for this order lately: no check passes now."""
        return int(await self.redis.get(self.keys.order_phone_tries(order_no)) or 0) >= MAX_TRIES

    async def passes(self, order: Order, answer: str) -> bool:
        """``answer`` holds exactly the last four digits of the order's customer's phone.
        A wrong answer is counted; a locked order never passes."""
        if await self.locked(order.order_no):
            return False
        digits = "".join(ch for ch in answer if ch.isascii() and ch.isdigit())
        customer = await self.directory.customer(order.customer_id)
        phone = normalize_phone(customer.phone) if customer else ""
        if len(digits) == 4 and len(phone) >= 4 and phone.endswith(digits):
            return True
        key = self.keys.order_phone_tries(order.order_no)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, _WINDOW_S, nx=True)
            await pipe.execute()
        return False
