"""Compensation orders through the running app, over real HTTP and sockets, on SQLite and
PostgreSQL: the open API (API keys with scopes, Idempotency-Key), no IDOR, clear 4xx for
bad input, the review-to-payout path with its live pushes, the admin policy API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from contactd.app import create_app
from contactd.keys import AUTH, COMPENSATION, DB, DIRECTORY, VISITORS
from contactd.settings import QueueConfig
from contactd.storage.db import open_database
from tests.chat_helpers import Held, Peer, recancel_swallowed, wait_for
from tests.compensation_helpers import CUSTOMERS, ORDER_NO, ORDERS, PHONE, ROLES, add_session
from tests.conftest import PG_URL, make_settings

PASSWORD = "correct horse battery"
BODY: dict[str, Any] = {
    "customer_phone": PHONE,
    "order_no": ORDER_NO,
    "items": [{"sku": "SKU-1", "qty": 1}],
    "scene": "defect",
    "asset_type": "balance",
    "amount": 15_000,
    "reason": "杯子有裂纹",
}
DB_BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not PG_URL, reason="CONTACTD_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(params=DB_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A database of the test's own for the app: SQLite, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite3'}"
        return
    assert PG_URL is not None
    name = "contactd_t_" + secrets.token_hex(6)
    engine = await open_database(PG_URL)
    admin = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    await engine.dispose()


class Api:
    def __init__(self, base: str, app: Any, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.app = app
        self.http = http
        self.tokens: dict[str, str] = {}
        self.peers: list[Peer] = []

    async def auth(self, who: str) -> dict[str, str]:
        if who not in ROLES:  # an API key, or a forged credential
            return {"Authorization": f"Bearer {who}"}
        if who not in self.tokens:
            async with self.http.post(
                self.base + "/api/v1/auth/login", json={"username": who, "password": PASSWORD}
            ) as r:
                self.tokens[who] = (await r.json())["token"]
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(
        self,
        method: str,
        path: str,
        who: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, Any]:
        h = {**(await self.auth(who)), **(headers or {})}
        kw: dict[str, Any] = {"json": body} if raw is None else {"data": raw}
        async with self.http.request(method, self.base + path, headers=h, **kw) as r:
            return r.status, await r.json(), r.headers

    async def key(self, *scopes: str) -> str:
        _, secret = await self.app[AUTH].create_api_key("after-sales system", scopes, None)
        return str(secret)

    async def peer(self, namespace: str, who: str) -> Peer:
        token = (await self.auth(who))["Authorization"].removeprefix("Bearer ")
        peer = await Peer(namespace).connect(self.base, {"token": token})
        self.peers.append(peer)
        return peer


@pytest.fixture
async def api(
    database_url: str,  # first: its database outlives the app (torn down after it)
    aiohttp_server: Callable[..., Awaitable[Any]],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[Api]:
    guard = asyncio.create_task(recancel_swallowed())
    settings = make_settings(
        site,
        [QueueConfig(id="sales", name="Sales", wrap_up_s=0)],
        redis_url=redis_url,
        data_dir=tmp_path,
        database_url=database_url,
        compensation={"payout": {"poll_s": 0.2}},
    )
    server = await aiohttp_server(create_app(settings))
    app = server.app
    for username, role in ROLES.items():
        await app[AUTH].create_user(username, PASSWORD, role)
    await app[DIRECTORY].add(customers=CUSTOMERS, orders=ORDERS)
    async with aiohttp.ClientSession() as http:
        client = Api(str(server.make_url("")).rstrip("/"), app, http)
        yield client
        for p in client.peers:
            await p.disconnect()
    await server.close()
    guard.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await guard


async def count_orders(api: Api) -> int:
    _, page, _ = await api.call("GET", "/api/v1/compensations", "boss")
    return int(page["total"])


async def test_idempotency_key_replays_refuses_other_bodies_and_creates_once(api: Api) -> None:
    key = await api.key("compensation.create")
    h = {"Idempotency-Key": "as-20261123-0001"}
    s1, first, _ = await api.call("POST", "/api/v1/compensations", key, BODY, h)
    assert s1 == 201 and first["status"] == "pending_review" and first["creator_kind"] == "api_key"
    # the same request with other spacing and key order is the same request
    raw = json.dumps(dict(reversed(list(BODY.items()))), indent=2).encode()
    s2, again, headers = await api.call(
        "POST",
        "/api/v1/compensations",
        key,
        headers={**h, "Content-Type": "application/json"},
        raw=raw,
    )
    assert s2 == 201 and again == first and headers["Idempotent-Replayed"] == "true"
    s3, err, _ = await api.call("POST", "/api/v1/compensations", key, {**BODY, "amount": 1}, h)
    assert s3 == 422 and err["error"]["code"] == "idempotency_key_reused"
    assert await count_orders(api) == 1
    # the key belongs to its caller: another caller's same key is another order
    other = await api.key("compensation.create")
    s4, theirs, _ = await api.call("POST", "/api/v1/compensations", other, BODY, h)
    assert s4 == 201 and theirs["id"] != first["id"]
    # query the status
    s5, status, _ = await api.call("GET", f"/api/v1/compensations/{first['id']}", key)
    assert s5 == 200 and status["status"] == "pending_review" and status["version"] == 1


async def test_concurrent_duplicates_create_one_and_the_rest_get_409(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = await api.key("compensation.create")
    # the first request waits while its duplicates arrive
    create = Held(monkeypatch, api.app[COMPENSATION].service, "create")
    h = {"Idempotency-Key": "dup-1"}
    first = asyncio.create_task(api.call("POST", "/api/v1/compensations", key, BODY, h))
    await wait_for(lambda: create.calls, 5, "the first request to start")
    dupes = await asyncio.gather(
        *(api.call("POST", "/api/v1/compensations", key, BODY, h) for _ in range(4))
    )
    create.release.set()
    status, created, _ = await first
    assert status == 201
    assert [(s, b["error"]["code"]) for s, b, _ in dupes] == [(409, "idempotency_in_progress")] * 4
    assert await count_orders(api) == 1
    s, replay, _ = await api.call("POST", "/api/v1/compensations", key, BODY, h)
    assert s == 201 and replay["id"] == created["id"]


async def test_a_failed_request_releases_its_key(api: Api) -> None:
    key = await api.key("compensation.create")
    h = {"Idempotency-Key": "fix-and-retry"}
    s1, err, _ = await api.call("POST", "/api/v1/compensations", key, {**BODY, "scene": "x"}, h)
    assert s1 == 422 and err["error"]["code"] == "validation_failed"
    s2, ok, _ = await api.call("POST", "/api/v1/compensations", key, BODY, h)
    assert s2 == 201 and ok["scene"] == "defect"
    s3, err, _ = await api.call(
        "POST", "/api/v1/compensations", key, BODY, {"Idempotency-Key": " "}
    )
    assert s3 == 422 and await count_orders(api) == 1


async def test_no_idor_and_scopes_are_enforced(api: Api) -> None:
    key_a = await api.key("compensation.create")
    key_b = await api.key("compensation.create")
    _, mine, _ = await api.call("POST", "/api/v1/compensations", key_a, BODY)
    oid = mine["id"]
    for who in (key_b, "ag2"):
        s, body, _ = await api.call("GET", f"/api/v1/compensations/{oid}", who)
        assert s == 404 and body["error"]["code"] == "compensation_not_found"
        s, body, _ = await api.call("GET", f"/api/v1/compensations/{oid}/history", who)
        assert s == 404
        _, page, _ = await api.call("GET", "/api/v1/compensations", who)
        assert page["total"] == 0
    s, body, _ = await api.call(
        "POST", f"/api/v1/compensations/{oid}/approve", "ag2", {"version": 1}
    )
    assert s == 403 and body["error"]["code"] == "forbidden"
    s, body, _ = await api.call(
        "POST", f"/api/v1/compensations/{oid}/approve", key_a, {"version": 1}
    )
    assert s == 403  # the key has no review scope
    viewer = await api.key("compensation.view")
    assert (await api.call("POST", "/api/v1/compensations", viewer, BODY))[0] == 403
    assert (await api.call("GET", f"/api/v1/compensations/{oid}", viewer))[0] == 200
    for path in ("/api/v1/payouts", "/api/v1/ledger/reconciliation", "/api/v1/ledger/accounts/c1"):
        assert (await api.call("GET", path, "rev1"))[0] == 403
        assert (await api.call("GET", path, "fin1"))[0] == 200
    assert (await api.call("GET", "/api/v1/compensations", "ck_ak_forged_secret"))[0] == 401


@pytest.mark.parametrize(
    ("raw", "ctype", "status", "code"),
    [
        (b"{nope", "application/json", 400, "bad_request"),
        (b"[1]", "application/json", 400, "bad_request"),
        (b"a=b", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (
            json.dumps({**BODY, "colour": "red"}).encode(),
            "application/json",
            422,
            "validation_failed",
        ),
        (json.dumps({**BODY, "amount": 0}).encode(), "application/json", 422, "validation_failed"),
        (
            json.dumps({**BODY, "asset_type": "gold"}).encode(),
            "application/json",
            422,
            "validation_failed",
        ),
        (
            json.dumps({**BODY, "scene": "late", "asset_type": "cash"}).encode(),
            "application/json",
            422,
            "asset_not_allowed",
        ),
    ],
)
async def test_bad_input_gets_a_clear_error_and_changes_nothing(
    api: Api, raw: bytes, ctype: str, status: int, code: str
) -> None:
    s, body, _ = await api.call(
        "POST", "/api/v1/compensations", "ag1", raw=raw, headers={"Content-Type": ctype}
    )
    assert (s, body["error"]["code"]) == (status, code)
    assert await count_orders(api) == 0


@pytest.mark.parametrize(
    "query", ["status=nope", "since=2026-11-23T08:00:00", "limit=0", "limit=x", "colour=red"]
)
async def test_bad_filters_are_422(api: Api, query: str) -> None:
    s, body, _ = await api.call("GET", f"/api/v1/compensations?{query}", "rev1")
    assert s == 422 and body["error"]["code"] == "validation_failed"


async def test_review_to_payout_over_http_with_live_pushes(api: Api) -> None:
    reviewer = await api.peer("/review", "rev1")
    finance = await api.peer("/review", "fin1")
    creator = await api.peer("/agent", "ag1")
    s, order, _ = await api.call("POST", "/api/v1/compensations", "ag1", BODY)
    assert s == 201 and order["needs_l2"]
    push = await reviewer.wait(
        "compensation.to_review", lambda d: d["compensation"]["id"] == order["id"]
    )
    assert push["compensation"]["stage"] == "l1"
    assert not finance.got("compensation.to_review")
    s, err, _ = await api.call(
        "POST", f"/api/v1/compensations/{order['id']}/approve", "rev1", {"version": 7}
    )
    assert s == 409 and err["error"]["code"] == "version_conflict"
    s, order, _ = await api.call(
        "POST",
        f"/api/v1/compensations/{order['id']}/approve",
        "rev1",
        {"version": order["version"]},
    )
    assert s == 200 and order["stage"] == "l2"
    await finance.wait("compensation.to_review", lambda d: d["compensation"]["stage"] == "l2")
    await creator.wait("compensation.updated", lambda d: d["compensation"]["stage"] == "l2")
    s, order, _ = await api.call(
        "POST",
        f"/api/v1/compensations/{order['id']}/approve",
        "fin1",
        {"version": order["version"]},
    )
    assert s == 200 and order["status"] == "approved"
    paid = await creator.wait(
        "compensation.updated", lambda d: d["compensation"]["status"] == "paid", timeout=10
    )
    assert paid["topic"] == "compensation.paid"
    _, account, _ = await api.call("GET", "/api/v1/ledger/accounts/c1", "fin1")
    assert account["balances"]["available"] == 15_000
    assert [j["ref"] for j in account["journal"]] == [order["payout_id"]]
    _, rec, _ = await api.call("GET", "/api/v1/ledger/reconciliation", "fin1")
    assert rec["ok"] is True
    async with api.http.get(api.base + "/metrics") as r:
        metrics = await r.text()
    assert 'contactd_compensation_changes_total{topic="paid"} 1.0' in metrics
    assert 'contactd_compensation_paid_fen_total{asset="balance"} 15000.0' in metrics
    assert 'contactd_payouts_total{outcome="paid"} 1.0' in metrics
    _, payouts, _ = await api.call("GET", "/api/v1/payouts?state=succeeded", "fin1")
    assert [p["compensation_id"] for p in payouts["items"]] == [order["id"]]
    _, history, _ = await api.call("GET", f"/api/v1/compensations/{order['id']}/history", "ag1")
    assert [h["action"] for h in history] == [
        "compensation.created",
        "compensation.reviewed",
        "compensation.approved",
        "compensation.paid",
    ]


async def test_batch_over_http_reports_each_order(api: Api) -> None:
    _, a, _ = await api.call("POST", "/api/v1/compensations", "ag1", {**BODY, "amount": 5_000})
    _, b, _ = await api.call("POST", "/api/v1/compensations", "sup1", {**BODY, "amount": 5_000})
    s, out, _ = await api.call(
        "POST",
        "/api/v1/compensations/batch",
        "sup1",
        {
            "action": "reject",
            "comment": "缺少照片",
            "items": [{"id": a["id"], "version": 1}, {"id": b["id"], "version": 1}],
        },
    )
    assert s == 200 and (out["succeeded"], out["failed"]) == (1, 1)
    assert out["results"][1]["error"]["code"] == "own_order"
    s, closed, _ = await api.call(
        "POST", f"/api/v1/compensations/{a['id']}/close", "ag1", {"version": 2}
    )
    assert s == 200 and closed["status"] == "closed"


async def test_the_policy_admin_api_is_versioned_and_for_admins(api: Api) -> None:
    s, current, _ = await api.call("GET", "/api/v1/case-config/compensation", "rev1")
    assert s == 200 and current["version"] == 0
    policy = current["policy"]
    policy["reviewer_limits"]["reviewer"] = 1_000
    body = {"version": 0, "policy": policy}
    assert (await api.call("PUT", "/api/v1/case-config/compensation", "rev1", body))[0] == 403
    s, saved, _ = await api.call("PUT", "/api/v1/case-config/compensation", "boss", body)
    assert s == 200 and saved["version"] == 1
    s, err, _ = await api.call("PUT", "/api/v1/case-config/compensation", "boss", body)
    assert s == 409 and err["error"]["code"] == "version_conflict"
    broken = {"version": 1, "policy": {**policy, "rules": [{"scene": "defect"}]}}
    s, err, _ = await api.call("PUT", "/api/v1/case-config/compensation", "boss", broken)
    assert s == 422
    _, order, _ = await api.call("POST", "/api/v1/compensations", "ag1", {**BODY, "amount": 5_000})
    s, err, _ = await api.call(
        "POST", f"/api/v1/compensations/{order['id']}/approve", "rev1", {"version": 1}
    )
    assert s == 403 and err["error"]["code"] == "over_amount_limit"


async def test_openapi_documents_the_open_api_with_examples(api: Api) -> None:
    async with api.http.get(api.base + "/openapi.json") as r:
        doc = await r.json()
    create = doc["paths"]["/api/v1/compensations"]["post"]
    assert create["requestBody"]["content"]["application/json"]["example"]["scene"] == "defect"
    [header] = [p for p in create["parameters"] if p["in"] == "header"]
    assert header["name"] == "Idempotency-Key"
    assert "idempotency_key_reused" in create["responses"]["422"]["description"]
    assert "idempotency_in_progress" in create["responses"]["409"]["description"]
    assert "/api/v1/compensations/{compensation_id}" in doc["paths"]
    assert "/api/v1/webhook-deliveries" in doc["paths"]


async def test_the_phone_is_masked_for_callers_without_pii_view(api: Api) -> None:
    s, created, _ = await api.call("POST", "/api/v1/compensations", "ag1", BODY)
    assert s == 201 and created["customer_phone"] == "138****8000"
    oid = created["id"]
    for who in ("ag1", "rev1", "fin1"):
        _, seen, _ = await api.call("GET", f"/api/v1/compensations/{oid}", who)
        assert seen["customer_phone"] == "138****8000", who
    _, page, _ = await api.call("GET", "/api/v1/compensations", "rev1")
    assert page["items"][0]["customer_phone"] == "138****8000"
    for who in ("boss", "sup1"):  # pii.view
        _, seen, _ = await api.call("GET", f"/api/v1/compensations/{oid}", who)
        assert seen["customer_phone"] == PHONE, who


async def test_the_widget_reads_the_customers_orders_with_its_visitor_token(api: Api) -> None:
    visitor, token = api.app[VISITORS].issue()
    _, stranger = api.app[VISITORS].issue()
    await add_session(api.app[DB], "S20261123-000077", "ag1", customer_id="c1", visitor_id=visitor)
    body = {**BODY, "amount": 5_000, "session_id": "S20261123-000077"}
    _, order, _ = await api.call("POST", "/api/v1/compensations", "ag1", body)
    path = "/api/v1/im/compensations?session_id=S20261123-000077"
    async with api.http.get(api.base + path, headers={"Authorization": f"Visitor {token}"}) as r:
        assert r.status == 200
        [notice] = await r.json()
    assert notice == {
        "compensation_id": order["id"],
        "status": "pending_review",
        "label": "处理中",
        "asset_type": "balance",
        "asset_label": "余额",
        "amount": 5_000,
    }
    async with api.http.get(api.base + path, headers={"Authorization": f"Visitor {stranger}"}) as r:
        assert r.status == 404  # not their chat: the same answer as no chat at all
    async with api.http.get(api.base + path) as r:
        assert r.status == 401
    bare = api.base + "/api/v1/im/compensations"
    async with api.http.get(bare, headers={"Authorization": f"Visitor {token}"}) as r:
        assert r.status == 422
