"""``Idempotency-Key`` for creating requests of the open API.

Per caller and key: the first request inserts a ``started`` record (the primary key makes
exactly one of several concurrent requests win), then runs, and its response is stored
in the same transaction as what it created. Afterwards:

* same key, same body → the stored response again (nothing new is created);
* same key, another body → 422 ``idempotency_key_reused``;
* same key while the first is still running → 409 ``idempotency_in_progress``.

A request that fails (an error response) releases its key, so a corrected retry may use
it. A ``started`` record older than the lease (its process died) is taken over.

:meth:`IdempotencyKeys.run` is the whole sequence for a creating route (compensation
orders, tickets); :meth:`IdempotencyKeys.once` serves callers inside the server too (the
bot opens a refund ticket once per order under its own key). One table and one retention
(``compensation.idempotency_ttl_s``) serve them all; the key belongs to its caller, and a
key reused on another route is another body (422).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.models import Principal
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.storage.db import write_transaction
from contactd.storage.tables import idempotency_keys as t

MAX_KEY_LEN = 255
STALE_START_MS = 60_000
HEADER = "Idempotency-Key"
REPLAYED = {"Idempotent-Replayed": "true"}  # the header on a replayed response
T = TypeVar("T")
# stores the response inside the transaction that creates the resource: (conn, status, body)
Remember = Callable[[AsyncConnection, int, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: bytes) -> str:
    try:  # the same JSON with other spacing or key order is the same request
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LEN or not key.isprintable():
        raise ContactdError(
            ErrorCode.validation_failed,
            f"Idempotency-Key must be 1 to {MAX_KEY_LEN} printable characters",
        )
    return key


class IdempotencyKeys:
    def __init__(self, engine: AsyncEngine, clock: Clock, ttl_s: int) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl_ms = ttl_s * 1000

    def _where(self, principal: str, key: str) -> sa.ColumnElement[bool]:
        return sa.and_(t.c.principal == principal, t.c.key == key)

    async def begin(self, principal: str, key: str, digest: str) -> Replay | None:
        """Claim ``key`` (None: go ahead) or return the stored response to replay."""
        now = self._clock.now_ms()
        try:
            async with write_transaction(self._engine) as conn:
                await conn.execute(
                    sa.delete(t).where(
                        self._where(principal, key), t.c.created_at < now - self._ttl_ms
                    )
                )
                await conn.execute(
                    sa.insert(t).values(
                        principal=principal,
                        key=key,
                        request_hash=digest,
                        state="started",
                        created_at=now,
                    )
                )
            return None
        except IntegrityError:
            pass
        async with write_transaction(self._engine) as conn:
            row = (
                (await conn.execute(sa.select(t).where(self._where(principal, key))))
                .mappings()
                .first()
            )
            if row is None:  # released meanwhile
                raise ContactdError(ErrorCode.idempotency_in_progress, "retry the request")
            if row["request_hash"] != digest:
                raise ContactdError(
                    ErrorCode.idempotency_key_reused,
                    "this Idempotency-Key was used with another request body",
                )
            if row["state"] == "done":
                return Replay(int(row["status"]), dict(row["response"]))
            if row["created_at"] < now - STALE_START_MS:  # its request died: take over
                await conn.execute(
                    sa.update(t).where(self._where(principal, key)).values(created_at=now)
                )
                return None
        raise ContactdError(
            ErrorCode.idempotency_in_progress, "a request with this Idempotency-Key is running"
        )

    async def once(
        self, principal: str, key: str, digest: str, create: Callable[[Remember], Awaitable[T]]
    ) -> T | Replay:
        """Run ``create`` once for this caller's ``key``: it gets ``remember`` to call in the
        transaction that creates the resource; a repeat gets the stored :class:`Replay`, one
        while it runs ``idempotency_in_progress``; a failure releases the key."""
        replay = await self.begin(principal, key, digest)
        if replay is not None:
            return replay

        async def remember(conn: AsyncConnection, status: int, body: dict[str, Any]) -> None:
            await self.finish(conn, principal, key, status, body)

        try:
            return await create(remember)
        except BaseException:
            await self.release(principal, key)
            raise

    async def run(
        self,
        who: Principal,
        key: str | None,
        digest: str,
        create: Callable[[Remember | None], Awaitable[T]],
    ) -> T | Replay:
        """A creating request of the open API with its ``Idempotency-Key`` header value
        (None: no header, ``create`` runs as it is); ``digest`` is its ``request_hash``."""
        if key is None:
            return await create(None)
        return await self.once(f"{who.kind}:{who.id}", check_key(key), digest, create)

    async def finish(
        self, conn: AsyncConnection, principal: str, key: str, status: int, body: dict[str, Any]
    ) -> None:
        """Store the response, in the transaction that created the resource."""
        await conn.execute(
            sa.update(t)
            .where(self._where(principal, key))
            .values(state="done", status=status, response=body)
        )

    async def release(self, principal: str, key: str) -> None:
        async with write_transaction(self._engine) as conn:
            await conn.execute(
                sa.delete(t).where(self._where(principal, key), t.c.state == "started")
            )

    async def purge(self) -> int:
        """Forget keys older than the TTL (the worker calls this now and then)."""
        async with write_transaction(self._engine) as conn:
            gone = await conn.execute(
                sa.delete(t).where(t.c.created_at < self._clock.now_ms() - self._ttl_ms)
            )
        return int(gone.rowcount or 0)
