"""``Idempotency-Key`` on ticket creation (``POST /api/v1/tickets``): the same rules as for
compensation orders, over HTTP on real Redis, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from contactd.keys import TICKETS
from tests import test_chat_sockets, tickets_helpers
from tests.chat_helpers import Held, wait_for
from tests.tickets_helpers import Desk, MakeDesk

# the fixtures this module uses
shutdown_guard = test_chat_sockets.shutdown_guard
database_url = tickets_helpers.database_url
make_desk = tickets_helpers.make_desk

T = "/api/v1/tickets"
BODY = {
    "type": "partial_refund",
    "order_no": "O2026111100000004",  # u1001, completed
    "items": [{"sku": "SKU10007", "qty": 1}],
    "amount": 5000,
    "reason": "一件破损",
    "queue_id": "aftersales",
}


async def api_key(desk: Desk) -> str:
    scopes = ["tickets.create", "tickets.view"]
    made = await desk.ok("POST", "/api/v1/api-keys", "admin1", {"name": "oms", "scopes": scopes})
    return "Bearer " + made["secret"]


async def post(
    desk: Desk, auth: str, key: str | None, body: Any = BODY, raw: bytes | None = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    if key is not None:
        headers["Idempotency-Key"] = key
    data = raw if raw is not None else json.dumps(body).encode()
    async with desk.http.post(desk.base + T, data=data, headers=headers) as r:
        return r.status, await r.json(), dict(r.headers)


async def count(desk: Desk, auth: str) -> int:
    status, found, _ = await get(desk, auth, f"{T}?order_no={BODY['order_no']}")
    assert status == 200
    return len(found["items"])


async def get(desk: Desk, auth: str, path: str) -> tuple[int, Any, dict[str, str]]:
    async with desk.http.get(desk.base + path, headers={"Authorization": auth}) as r:
        return r.status, await r.json(), dict(r.headers)


async def test_a_retry_returns_the_same_ticket_and_another_body_is_refused(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    auth = await api_key(desk)
    s1, first, h1 = await post(desk, auth, "oms-20261123-1")
    assert s1 == 201 and first["ticket"]["state"] == "pending_review"
    assert "Idempotent-Replayed" not in h1
    # the same body with other spacing and key order is the same request
    raw = json.dumps(dict(reversed(list(BODY.items()))), indent=2).encode()
    s2, again, h2 = await post(desk, auth, "oms-20261123-1", raw=raw)
    assert s2 == 201 and again == first and h2["Idempotent-Replayed"] == "true"
    s3, err, _ = await post(desk, auth, "oms-20261123-1", {**BODY, "amount": 100})
    assert s3 == 422 and err["error"]["code"] == "idempotency_key_reused"
    assert await count(desk, auth) == 1
    # the key is its caller's: another system's same key is its own request (and here the
    # order already has an open partial refund: refused, nothing new)
    other = await api_key(desk)
    s4, err, _ = await post(desk, other, "oms-20261123-1")
    assert s4 == 409 and err["error"]["code"] == "conflict"
    assert await count(desk, auth) == 1


async def test_a_failed_request_releases_its_key_and_bad_keys_are_refused(
    make_desk: MakeDesk,
) -> None:
    desk = await make_desk()
    auth = await api_key(desk)
    s1, err, _ = await post(desk, auth, "fix-and-retry", {**BODY, "amount": 10**7})
    assert s1 == 422 and err["error"]["code"] == "ticket_order_mismatch"
    s2, ok, _ = await post(desk, auth, "fix-and-retry")
    assert s2 == 201 and ok["ticket"]["amount"] == 5000
    for bad in (" ", "x" * 256):
        s3, err, _ = await post(desk, auth, bad, {**BODY, "reason": "another"})
        assert s3 == 422 and err["error"]["code"] == "validation_failed"
    assert await count(desk, auth) == 1


async def test_concurrent_retries_open_exactly_one_ticket(
    make_desk: MakeDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = await make_desk()
    auth = await api_key(desk)
    create = Held(monkeypatch, desk.app[TICKETS], "create")  # the first waits for its retries
    first = asyncio.create_task(post(desk, auth, "dup-1"))
    await wait_for(lambda: create.calls, 5, "the first request to start")
    retries = await asyncio.gather(*(post(desk, auth, "dup-1") for _ in range(4)))
    create.release.set()
    status, created, _ = await first
    assert status == 201
    assert [(s, b["error"]["code"]) for s, b, _ in retries] == [
        (409, "idempotency_in_progress")
    ] * 4
    assert create.calls == 1 and await count(desk, auth) == 1
    s, replay, headers = await post(desk, auth, "dup-1")
    assert s == 201 and replay["ticket"]["id"] == created["ticket"]["id"]
    assert headers["Idempotent-Replayed"] == "true"


async def test_openapi_documents_the_idempotency_key(make_desk: MakeDesk) -> None:
    desk = await make_desk()
    async with desk.http.get(desk.base + "/openapi.json") as r:
        doc = await r.json()
    create = doc["paths"][T]["post"]
    [header] = [p for p in create["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert "idempotency_key_reused" in create["responses"]["422"]["description"]
    assert "idempotency_in_progress" in create["responses"]["409"]["description"]
