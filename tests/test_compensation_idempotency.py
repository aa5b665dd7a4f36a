"""Idempotency-Key records on SQLite and PostgreSQL: claim, replay, another body, release,
expiry and the purge of expired records."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.cases.idempotency import IdempotencyKeys, Replay, check_key, request_hash
from contactd.clock import ManualClock
from contactd.errors import ContactdError

TTL_S = 3600


@pytest.fixture
def keys(db: AsyncEngine, clock: ManualClock) -> IdempotencyKeys:
    return IdempotencyKeys(db, clock, TTL_S)


async def finish(db: AsyncEngine, keys: IdempotencyKeys, key: str, body: dict[str, str]) -> None:
    from contactd.storage.db import write_transaction

    async with write_transaction(db) as conn:
        await keys.finish(conn, "api_key:ak_1", key, 201, body)


async def test_a_key_replays_refuses_another_body_and_expires(
    keys: IdempotencyKeys, db: AsyncEngine, clock: ManualClock
) -> None:
    first = request_hash("POST", "/x", b'{"a": 1, "b": 2}')
    assert first == request_hash("POST", "/x", b'{"b":2,"a":1}')  # same JSON, same request
    assert await keys.begin("api_key:ak_1", "k1", first) is None
    with pytest.raises(ContactdError) as info:
        await keys.begin("api_key:ak_1", "k1", first)  # still running
    assert info.value.code.value == "idempotency_in_progress"
    await finish(db, keys, "k1", {"id": "C1"})
    assert await keys.begin("api_key:ak_1", "k1", first) == Replay(201, {"id": "C1"})
    other = request_hash("POST", "/x", b'{"a": 2}')
    with pytest.raises(ContactdError) as info:
        await keys.begin("api_key:ak_1", "k1", other)
    assert info.value.code.value == "idempotency_key_reused"
    assert await keys.begin("api_key:ak_2", "k1", other) is None  # another caller's key
    clock.advance(TTL_S + 1)
    assert await keys.purge() == 2
    assert await keys.begin("api_key:ak_1", "k1", other) is None  # forgotten: a new request


async def test_a_released_key_can_be_used_again(keys: IdempotencyKeys) -> None:
    digest = request_hash("POST", "/x", b"{}")
    assert await keys.begin("staff:1", "k", digest) is None
    await keys.release("staff:1", "k")
    assert await keys.begin("staff:1", "k", request_hash("POST", "/x", b'{"a":1}')) is None


@pytest.mark.parametrize("bad", ["", "   ", "x" * 256, "tab\there"])
def test_bad_keys_are_refused(bad: str) -> None:
    with pytest.raises(ContactdError):
        check_key(bad)
