"""The server's Redis pool packs commands with hiredis: values reach Redis exactly as
redis-py's own packer sends them, and values Redis cannot take are refused unchanged."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from contactd.storage.redis import connect


async def test_values_round_trip_and_bad_ones_are_refused(redis_url: str, site: str) -> None:
    client = connect(redis_url)
    key = f"cd:{{{site}}}:pool"
    try:
        cases: list[tuple[object, bytes]] = [
            ("héllo 世界", "héllo 世界".encode()),
            (b"\x00\xffraw", b"\x00\xffraw"),
            (bytearray(b"ba"), b"ba"),
            (memoryview(b"mv"), b"mv"),
            (42, b"42"),
            (-7, b"-7"),
            (10**20, b"100000000000000000000"),
            (1.5, b"1.5"),
            (0.1, b"0.1"),
        ]
        for value, stored in cases:
            await client.set(key, value)  # type: ignore[arg-type]
            assert await client.get(key) == stored
        for bad in (True, None, object()):
            with pytest.raises(DataError):
                await client.set(key, bad)  # type: ignore[arg-type]
        assert await client.get(key) == b"0.1"  # the refused writes changed nothing
        # a command name with a space is split, as redis-py does
        assert await client.execute_command("CONFIG GET", "maxmemory") is not None
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(key, 1)
            pipe.incrbyfloat(key, 0.5)
            assert await pipe.execute() == [True, 1.5]
    finally:
        await client.delete(key)
        await client.aclose()


def test_packed_bytes_match_redis_py() -> None:
    client = connect("redis://127.0.0.1:1/0")
    conn = client.connection_pool.make_connection()  # type: ignore[attr-defined]
    args = ("FCALL", "fn", 2, "cd:{s}:a", b"cd:{s}:b", 1763900000000, 2.25, '{"x":"é"}')
    assert b"".join(conn.pack_command(*args)) == b"".join(Connection().pack_command(*args))


async def test_a_burst_that_grows_the_pool_does_not_read_package_metadata(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py reads its version from the installed package's metadata (a scan of the
    site-packages, a millisecond or more of the event loop) for every connection it makes
    unless told it once: a burst that opens 40 connections must not stall the loop 40 times."""
    import importlib.metadata

    connect(redis_url)  # the driver info is looked up once per process, before counting
    reads: list[str] = []
    real = importlib.metadata.version

    def counting(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", counting)
    client = connect(redis_url)
    try:
        blockers = [await client.connection_pool.get_connection() for _ in range(40)]
        assert all(c.is_connected for c in blockers)
        for c in blockers:
            await client.connection_pool.release(c)
        assert await client.ping()
    finally:
        await client.aclose()
    assert reads == []
