"""The REST surface through the real app: real Redis, real SQLite, real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contactd.app import create_app
from contactd.keys import AUTH
from contactd.settings import QueueConfig
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
USERS = {"sup": "supervisor", "ag1": "agent", "ag2": "agent", "boss": "admin", "qa1": "qa"}


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], redis_url: str, site: str, tmp_path: Path, redis: Any
) -> AsyncIterator[TestClient]:
    settings = make_settings(
        site,
        [
            QueueConfig(id="sales", name="Sales", wrap_up_s=0, max_waiting=3),
            QueueConfig(id="support", name="Support", strategy="round_robin"),
        ],
        redis_url=redis_url,
        data_dir=tmp_path,
    )
    c: TestClient = await aiohttp_client(create_app(settings))
    for username, role in USERS.items():
        await c.app[AUTH].create_user(username, PASSWORD, role)
    yield c


async def token(client: TestClient, username: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()
    return {"Authorization": "Bearer " + (await r.json())["token"]}


async def error_code(resp: Any) -> str:
    body = await resp.json()
    return str(body["error"]["code"])


async def test_health_ready_openapi(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["redis"] is True
    doc = await (await client.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    create = doc["paths"]["/api/v1/contacts"]["post"]
    assert (
        "409" in create["responses"] and "queue_full" in create["responses"]["409"]["description"]
    )
    assert "EnqueueBody" in doc["components"]["schemas"]


async def test_login_refuses_wrong_password_and_unknown_user_alike(client: TestClient) -> None:
    bad = await client.post("/api/v1/auth/login", json={"username": "ag1", "password": "nope"})
    ghost = await client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    assert bad.status == ghost.status == 401
    assert (await bad.json()) == (await ghost.json())
    assert await error_code(bad) == "invalid_credentials"


async def test_requests_without_or_with_a_bad_token_are_refused(client: TestClient) -> None:
    assert await error_code(await client.get("/api/v1/queues")) == "unauthenticated"
    r = await client.get("/api/v1/queues", headers={"Authorization": "Bearer forged"})
    assert r.status == 401
    h = await token(client, "ag1")
    await client.post("/api/v1/auth/logout", headers=h)
    assert (await client.get("/api/v1/queues", headers=h)).status == 401


async def test_missing_permission_is_403_and_changes_nothing(client: TestClient) -> None:
    agent = await token(client, "ag1")
    r = await client.post("/api/v1/contacts", json={"queue_id": "sales"}, headers=agent)
    assert r.status == 403 and await error_code(r) == "forbidden"
    sup = await token(client, "sup")
    snap = await (await client.get("/api/v1/queues/sales", headers=sup)).json()
    assert snap["waiting"] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "bad_request"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 400, "bad_request"),
        (
            b"queue_id=sales",
            {"Content-Type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (
            b'{"queue_id": "sales", "colour": "red"}',
            {"Content-Type": "application/json"},
            422,
            "validation_failed",
        ),
        (
            b'{"queue_id": "sales", "priority": 42}',
            {"Content-Type": "application/json"},
            422,
            "validation_failed",
        ),
        (b'{"queue_id": "nowhere"}', {"Content-Type": "application/json"}, 404, "unknown_queue"),
        (
            b'{"queue_id": "sales", "contact_id": "a b|c"}',
            {"Content-Type": "application/json"},
            422,
            "validation_failed",
        ),
    ],
)
async def test_bad_enqueue_bodies_get_a_clear_4xx_and_change_nothing(
    client: TestClient, body: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    sup = await token(client, "sup")
    r = await client.post("/api/v1/contacts", data=body, headers={**sup, **headers})
    assert r.status == status
    assert await error_code(r) == code
    assert (await (await client.get("/api/v1/queues/sales", headers=sup)).json())["waiting"] == 0


async def test_oversized_body_is_413(client: TestClient) -> None:
    sup = await token(client, "sup")
    big = b'{"queue_id": "sales", "customer": {"x": "' + b"a" * (2 << 20) + b'"}}'
    r = await client.post(
        "/api/v1/contacts", data=big, headers={**sup, "Content-Type": "application/json"}
    )
    assert r.status == 413 and await error_code(r) == "payload_too_large"


async def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status == 404 and await error_code(r) == "not_found"
    r = await client.delete("/api/v1/queues")
    assert r.status == 405 and await error_code(r) == "method_not_allowed"


async def test_whole_contact_lifecycle_over_rest_is_audited(client: TestClient) -> None:
    sup, ag1, boss = (
        await token(client, "sup"),
        await token(client, "ag1"),
        await token(client, "boss"),
    )
    r = await client.post(
        "/api/v1/agents/me/login", json={"queues": ["sales"], "capacity": {"chat": 2}}, headers=ag1
    )
    assert r.status == 200 and (await r.json())["state"] == "available"
    r = await client.post(
        "/api/v1/contacts",
        json={"queue_id": "sales", "priority": 3, "contact_id": "web-1"},
        headers=sup,
    )
    assert r.status == 201
    contact = await r.json()
    assert contact["state"] == "offered" and contact["agent_id"] == "ag1"
    again = await client.post(
        "/api/v1/contacts", json={"queue_id": "sales", "contact_id": "web-1"}, headers=sup
    )
    assert again.status == 200 and (await again.json())["existing"] is True
    me = await (await client.get("/api/v1/agents/ag1", headers=ag1)).json()
    assert me["slots"] == [
        {"contact_id": "web-1", "state": "offered", "channel": "chat", "queue_id": "sales"}
    ]
    r = await client.post(f"/api/v1/offers/{contact['offer_id']}/accept", headers=ag1)
    assert r.status == 200 and (await r.json())["state"] == "active"
    r = await client.post(
        "/api/v1/contacts/web-1/end", json={"disposition": "answered"}, headers=ag1
    )
    assert r.status == 200 and (await r.json())["state"] == "ended"
    r = await client.put(
        "/api/v1/agents/ag1/state", json={"state": "away", "reason": "lunch"}, headers=ag1
    )
    assert (await r.json())["state"] == "away"
    audit = await (await client.get("/api/v1/audit?target_type=contact", headers=boss)).json()
    assert {e["action"] for e in audit} >= {"contact.enqueued", "contact.ended"}
    assert any(e["actor_name"] == "ag1" for e in audit)
    states = await (
        await client.get("/api/v1/audit?action=agent.state_changed", headers=boss)
    ).json()
    assert states[0]["before"]["state"] == "available" and states[0]["after"]["state"] == "away"


async def test_queue_full_over_rest(client: TestClient) -> None:
    sup = await token(client, "sup")
    for _ in range(3):
        assert (
            await client.post("/api/v1/contacts", json={"queue_id": "sales"}, headers=sup)
        ).status == 201
    r = await client.post("/api/v1/contacts", json={"queue_id": "sales"}, headers=sup)
    assert r.status == 409 and await error_code(r) == "queue_full"
    assert (await (await client.get("/api/v1/queues/sales", headers=sup)).json())["waiting"] == 3


async def test_agents_cannot_touch_each_others_work(client: TestClient) -> None:
    sup, ag1, ag2 = (
        await token(client, "sup"),
        await token(client, "ag1"),
        await token(client, "ag2"),
    )
    await client.post("/api/v1/agents/me/login", json={"queues": ["sales"]}, headers=ag1)
    contact = await (
        await client.post("/api/v1/contacts", json={"queue_id": "sales"}, headers=sup)
    ).json()
    assert contact["agent_id"] == "ag1"
    r = await client.post(f"/api/v1/offers/{contact['offer_id']}/accept", headers=ag2)
    assert r.status == 403 and await error_code(r) == "not_your_offer"
    r = await client.get(f"/api/v1/contacts/{contact['contact_id']}", headers=ag2)
    assert r.status == 404  # does not even learn that it exists
    r = await client.put("/api/v1/agents/ag1/state", json={"state": "away"}, headers=ag2)
    assert r.status == 403
    r = await client.get("/api/v1/agents/ag1", headers=ag2)
    assert r.status == 403
    still = await (
        await client.get(f"/api/v1/contacts/{contact['contact_id']}", headers=ag1)
    ).json()
    assert still["state"] == "offered"


async def test_api_key_with_scope_can_enqueue_and_without_cannot(client: TestClient) -> None:
    boss = await token(client, "boss")
    r = await client.post(
        "/api/v1/api-keys",
        json={"name": "order system", "scopes": ["contacts.create"]},
        headers=boss,
    )
    assert r.status == 201
    key = {"Authorization": "Bearer " + (await r.json())["secret"]}
    assert (
        await client.post("/api/v1/contacts", json={"queue_id": "support"}, headers=key)
    ).status == 201
    assert (await client.get("/api/v1/queues", headers=key)).status == 403


async def test_metrics_count_what_happened(client: TestClient) -> None:
    sup, ag1 = await token(client, "sup"), await token(client, "ag1")
    await client.post("/api/v1/agents/me/login", json={"queues": ["sales"]}, headers=ag1)
    c = await (
        await client.post("/api/v1/contacts", json={"queue_id": "sales"}, headers=sup)
    ).json()
    await client.post(f"/api/v1/offers/{c['offer_id']}/decline", headers=ag1)
    text = await (await client.get("/metrics")).text()
    assert 'contactd_offers_total{outcome="declined",queue="sales"} 1.0' in text
    assert 'contactd_queue_waiting{queue="sales"} 1.0' in text
    assert 'contactd_agents{state="available"} 1.0' in text
