"""A running contactd (real Redis, SQLite or PostgreSQL, real sockets) for the ticket and
dashboard tests, with staff of every role and the demo directory."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from contactd.app import create_app
from contactd.directory.demo import seed_demo_directory
from contactd.keys import AUTH, DB
from contactd.settings import QueueConfig
from contactd.storage.db import open_database
from tests.chat_helpers import Payload, Peer, identity, login
from tests.conftest import PG_URL, make_settings

SECRET = "identity-secret-for-tests"
PASSWORD = "correct horse battery"
STAFF = {
    "agent1": ("agent", "客服一 Agent One"),
    "agent2": ("agent", "客服二 Agent Two"),
    "senior1": ("senior_agent", "资深 Senior"),
    "lead1": ("team_lead", "组长 Lead"),
    "super1": ("supervisor", "主管 Supervisor"),
    "admin1": ("admin", "管理员 Admin"),
    "qa1": ("qa", "质检 QA"),
    "review1": ("reviewer", "审核 Reviewer"),
    "finance1": ("finance", "财务 Finance"),
}
DB_BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not PG_URL, reason="CONTACTD_TEST_POSTGRES_URL is not set"),
    ),
]


class Desk:
    """One running server: REST as any staff member, sockets, the app itself."""

    def __init__(self, base: str, app: Any, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.app = app
        self.http = http
        self.tokens: dict[str, str] = {}
        self.peers: list[Peer] = []

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            self.tokens[username] = await login(self.base, username, PASSWORD)
        return self.tokens[username]

    async def call(
        self,
        method: str,
        path: str,
        who: str | None = None,
        body: Any = None,
        *,
        auth: str | None = None,
    ) -> tuple[int, Any]:
        headers = {}
        if who is not None:
            headers["Authorization"] = "Bearer " + await self.token(who)
        if auth is not None:
            headers["Authorization"] = auth
        async with self.http.request(method, self.base + path, json=body, headers=headers) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def ok(self, method: str, path: str, who: str | None, body: Any = None) -> Any:
        status, data = await self.call(method, path, who, body)
        assert 200 <= status < 300, f"{method} {path} as {who}: {status} {data}"
        return data

    async def error(
        self, method: str, path: str, who: str | None, body: Any = None, *, auth: str | None = None
    ) -> tuple[int, str]:
        status, data = await self.call(method, path, who, body, auth=auth)
        assert status >= 400, f"{method} {path} as {who} unexpectedly gave {status} {data}"
        return status, str(data["error"]["code"])

    async def peer(self, namespace: str, auth: Payload | None) -> Peer:
        peer = Peer(namespace)
        self.peers.append(peer)
        return await peer.connect(self.base, auth)

    async def agent(self, username: str, queues: list[str] | None = None) -> Peer:
        peer = await self.peer("/agent", {"token": await self.token(username)})
        if queues is not None:
            await peer.ok("agent.login", {"queues": queues})
        return peer

    async def customer(self, customer_id: str | None = None, name: str = "张三") -> Peer:
        auth = identity(SECRET, customer_id, name) if customer_id else {}
        peer = await self.peer("/customer", auth)
        await peer.wait("hello")
        return peer

    async def chat(
        self, customer_id: str | None = "u1001", order_no: str | None = None, agent: str = "agent1"
    ) -> tuple[Peer, Peer, str, str]:
        """A customer in an active chat with ``agent``: (customer, agent, session, visitor
        token)."""
        ag = await self.agent(agent, ["sales"])
        cust = await self.customer(customer_id)
        req: Payload = {"entry_point": "home", "queue_id": "sales"}
        if order_no:
            req["order_no"] = order_no
        sid = (await cust.ok("chat.start", req))["session"]["session_id"]
        offer = await ag.wait("offer", lambda d: d["session"]["session_id"] == sid)
        await ag.ok("offer.accept", {"offer_id": offer["offer_id"]})
        await cust.wait("session.updated", lambda d: d["session"]["state"] == "active")
        visitor = cust.got("hello")[0]["visitor_token"]
        return cust, ag, sid, str(visitor)

    async def close(self) -> None:
        for peer in self.peers:
            await peer.disconnect()


MakeDesk = Callable[..., Awaitable[Desk]]


@pytest.fixture(params=DB_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """SQLite in the test's directory, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'contactd.sqlite3'}"
        return
    assert PG_URL is not None
    name = "contactd_t_" + secrets.token_hex(6)
    admin = await open_database(PG_URL)
    async with admin.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


@pytest.fixture
async def make_desk(
    shutdown_guard: None,
    database_url: str,  # first: its database outlives the app (torn down after it)
    aiohttp_server: Callable[..., Any],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[MakeDesk]:
    desks: list[Desk] = []
    http = aiohttp.ClientSession()

    async def make(**overrides: Any) -> Desk:
        assert not desks, "one server per test"
        settings = make_settings(
            site,
            [
                QueueConfig(id="sales", name="Sales", strategy="idle", wrap_up_s=0),
                QueueConfig(id="aftersales", name="After-sales", strategy="idle", wrap_up_s=0),
            ],
            redis_url=redis_url,
            data_dir=tmp_path,
            database_url=database_url,
            im={"identity_secret": SECRET, "entry_points": {"home": "sales"}},
            **{"routing": {"sweep_interval_s": 0.05}, **overrides},
        )
        server = await aiohttp_server(create_app(settings))
        for username, (role, name) in STAFF.items():
            await server.app[AUTH].create_user(username, PASSWORD, role, name)
        await seed_demo_directory(server.app[DB], customers=2)
        desk = Desk(f"http://{server.host}:{server.port}", server.app, http)
        desks.append(desk)
        return desk

    yield make
    for desk in desks:
        await desk.close()
    await http.close()
