"""Test fixtures: a private redis-server per test session (never the machine's shared one
unless CONTACTD_TEST_REDIS_URL says so), a unique site per test so keys never collide, and
cleanup of exactly the keys a test created."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import redis as redis_sync
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.bus import Bus
from contactd.clock import ManualClock
from contactd.routing.service import RoutingEngine
from contactd.settings import QueueConfig, Settings, load_settings
from contactd.storage.autopipe import close_auto_pipeline
from contactd.storage.db import migrate, open_database
from contactd.storage.keyspace import SiteKeys

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def while_another_process_writes(database: str, work: Awaitable[T]) -> T:
    """``work``'s result, started while another process (a second SQLite connection) holds
    the write lock: it must wait for the lock without holding up the event loop, and
    finish once the lock is free."""
    other = sqlite3.connect(database, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        pending = asyncio.ensure_future(work)
        started = time.monotonic()
        for _ in range(20):
            await asyncio.sleep(0.01)
        assert time.monotonic() - started < 2.0  # the loop was not held by the wait
        assert not pending.done()
        other.execute("COMMIT")
    finally:
        other.close()
    return await asyncio.wait_for(pending, 10)


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.exit(
            "redis-server is not installed: run `make test` (it installs it) "
            "or apt-get install redis-server",
            returncode=3,
        )
    port = free_port()
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis_sync.Redis.from_url(url)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis_sync.ConnectionError:
            time.sleep(0.02)
    else:
        proc.kill()
        pytest.exit("the private redis-server did not start", returncode=3)
    client.close()
    return proc, url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("CONTACTD_TEST_REDIS_URL"):
        yield url
        return
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def site() -> str:
    return "t" + secrets.token_hex(6)


@pytest.fixture
async def redis(redis_url: str, site: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    # remove exactly the keys of this test's site
    keys = [k async for k in client.scan_iter(match=f"cd:{{{site}}}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await close_auto_pipeline(client)
    await client.aclose()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_settings(site: str, queues: list[QueueConfig] | None = None, **kw: object) -> Settings:
    # cheap password hashing: the tests are about behaviour, not brute-force resistance
    base: dict[str, object] = {"site": site, "argon2_time_cost": 1, "argon2_memory_kib": 1024}
    if queues is not None:
        base["queues"] = tuple(queues)
    base.update(kw)
    return load_settings(None, **base)


@pytest.fixture
def queues() -> list[QueueConfig]:
    return [
        QueueConfig(id="sales", name="Sales", strategy="idle", wrap_up_s=0),
        QueueConfig(id="support", name="Support", strategy="round_robin", wrap_up_s=0),
        QueueConfig(id="vip", name="VIP", strategy="designated", fallback_after_s=30, wrap_up_s=0),
        QueueConfig(id="phone", name="Phone", channel="voice", wrap_up_s=5),
    ]


@pytest.fixture
def settings(site: str, queues: list[QueueConfig]) -> Settings:
    return make_settings(site, queues)


@pytest.fixture
def events() -> list[object]:
    return []


@pytest.fixture
def engine(
    redis: Redis, settings: Settings, clock: ManualClock, events: list[object]
) -> RoutingEngine:
    bus = Bus()
    bus.subscribe(events.append)
    return RoutingEngine(redis, settings, clock, bus, SiteKeys(settings.site))


PG_URL = os.environ.get("CONTACTD_TEST_POSTGRES_URL")
BACKENDS = [
    "sqlite",
    pytest.param(
        "postgres",
        marks=pytest.mark.skipif(not PG_URL, reason="CONTACTD_TEST_POSTGRES_URL is not set"),
    ),
]


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """A migrated, empty database of this test's own: SQLite, and PostgreSQL (in a fresh
    schema, dropped afterwards) when CONTACTD_TEST_POSTGRES_URL is set."""
    if request.param == "sqlite":
        engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'contactd.sqlite3'}")
        await migrate(engine)
        yield engine
        await engine.dispose()
        return
    assert PG_URL is not None
    schema = "contactd_test_" + secrets.token_hex(6)
    admin = await open_database(PG_URL)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = await open_database(PG_URL, connect_args={"server_settings": {"search_path": schema}})
    try:
        await migrate(engine)
        yield engine
    finally:
        await engine.dispose()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        await admin.dispose()
