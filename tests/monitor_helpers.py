"""A running contactd (real aiohttp server, Redis, database) for the monitor tests, with
staff of every role, REST helpers and the Prometheus text parsed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contactd.app import create_app
from contactd.clock import Clock
from contactd.keys import AUTH
from contactd.settings import QueueConfig
from tests.chat_helpers import Peer, login, recancel_swallowed
from tests.conftest import make_settings

PASSWORD = "correct horse battery"
STAFF = {
    "a1": "agent",
    "a2": "agent",
    "a3": "agent",
    "a4": "agent",
    "sup": "supervisor",
    "lead": "team_lead",
    "qa1": "qa",
}
# team_lead sees only the support queue and the team "north" (a3, a4)
SCOPED = {
    "teams": {"north": ["a3", "a4"], "south": ["a1", "a2"]},
    "scopes": {"team_lead": {"queues": ["support"], "teams": ["north"]}},
}


def monitor_queues() -> list[QueueConfig]:
    return [
        QueueConfig(id="sales", name="Sales", wrap_up_s=0, service_level_s=20),
        QueueConfig(id="support", name="Support", wrap_up_s=0, service_level_s=30),
        QueueConfig(id="phone", name="Phone", channel="voice", wrap_up_s=0),
    ]


class Floor:
    def __init__(self, base: str, app: Any) -> None:
        self.base = base
        self.app = app
        self.tokens: dict[str, str] = {}
        self.peers: list[Peer] = []

    async def token(self, username: str) -> str:
        if username not in self.tokens:
            self.tokens[username] = await login(self.base, username, PASSWORD)
        return self.tokens[username]

    async def call(
        self, method: str, path: str, username: str, body: Any = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": "Bearer " + await self.token(username)}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, self.base + path, json=body, headers=headers) as r,
        ):
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.text()

    async def supervisor(self, username: str) -> Peer:
        peer = Peer("/supervisor")
        self.peers.append(peer)
        return await peer.connect(self.base, {"token": await self.token(username)})

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with aiohttp.ClientSession() as http, http.get(self.base + "/metrics") as r:
            text = await r.text()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    async def close(self) -> None:
        for peer in self.peers:
            await peer.disconnect()


MakeFloor = Callable[..., Awaitable[Floor]]


@pytest.fixture
async def floor_guard() -> AsyncIterator[None]:
    """Set up before the server, so torn down after it (see recancel_swallowed)."""
    task = asyncio.create_task(recancel_swallowed())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def make_floor(
    floor_guard: None,
    aiohttp_server: Callable[..., Any],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[MakeFloor]:
    floors: list[Floor] = []

    async def make(
        *,
        clock: Clock | None = None,
        monitor: dict[str, Any] | None = None,
        users: bool = True,
        **kw: Any,
    ) -> Floor:
        """``users=False``: another node of the same site (the users exist already)."""
        settings = make_settings(
            site,
            monitor_queues(),
            redis_url=redis_url,
            data_dir=tmp_path,
            routing={"sweep_interval_s": 0.05, "heartbeat_ttl_s": 86400},
            monitor={**SCOPED, **(monitor or {})},
            **kw,
        )
        server = await aiohttp_server(create_app(settings, clock=clock))
        for username, role in STAFF.items() if users else ():
            await server.app[AUTH].create_user(username, PASSWORD, role, username.upper())
        floor = Floor(f"http://{server.host}:{server.port}", server.app)
        floors.append(floor)
        return floor

    yield make
    for floor in floors:
        await floor.close()
