"""Auto-pipelining on a real Redis: concurrent callers share round trips, each gets its own
replies in order, one caller's error is theirs alone, and a script Redis forgot is loaded
again."""

from __future__ import annotations

import asyncio
import time

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from contactd.storage.autopipe import AutoPipeline, auto_pipeline
from contactd.storage.redis import connect


async def test_concurrent_callers_share_pipelines_and_get_their_own_replies(
    redis_url: str, site: str
) -> None:
    client = connect(redis_url)
    pipe = AutoPipeline(client)
    sent: list[int] = []
    real_send = pipe._send

    async def counting(batch: list) -> None:  # type: ignore[type-arg]
        sent.append(len(batch))
        await real_send(batch)

    pipe._send = counting  # type: ignore[method-assign]
    key = f"cd:{{{site}}}:ap"
    try:

        async def caller(i: int) -> list[object]:
            return await pipe.many(
                [("HSET", key, f"f{i}", i), ("HGET", key, f"f{i}"), ("HINCRBY", key, f"f{i}", 1)]
            )

        replies = await asyncio.gather(*(caller(i) for i in range(200)))
        assert replies == [[1, str(i).encode(), i + 1] for i in range(200)]
        assert sum(sent) == 200  # every caller went out exactly once...
        assert len(sent) < 20  # ...in a few pipelines, not one round trip each
        assert await pipe.execute("HLEN", key) == 200
        await pipe.aclose()
    finally:
        await client.delete(key)
        await client.aclose()


async def test_an_error_is_the_callers_own(redis_url: str, site: str) -> None:
    client = connect(redis_url)
    pipe = auto_pipeline(client)
    assert auto_pipeline(client) is pipe
    key, other = f"cd:{{{site}}}:ap:s", f"cd:{{{site}}}:ap:h"
    try:
        await client.set(key, "text")
        results = await asyncio.gather(
            pipe.execute("INCR", key),  # not a number: this caller's error
            pipe.execute("HSET", other, "a", "1"),
            pipe.many([("HSET", other, "b", "2"), ("INCR", key), ("HSET", other, "c", "3")]),
            return_exceptions=True,
        )
        assert isinstance(results[0], ResponseError)
        assert results[1] == 1
        assert isinstance(results[2], ResponseError)  # raised after the whole group ran
        assert await client.hgetall(other) == {b"a": b"1", b"b": b"2", b"c": b"3"}
    finally:
        await client.delete(key, other)
        await client.aclose()


async def test_a_forgotten_script_is_loaded_again(redis_url: str, site: str) -> None:
    client = connect(redis_url)
    pipe = auto_pipeline(client)
    # a script no one has loaded yet (unique to this test run): Redis answers NOSCRIPT first
    script = client.register_script(f"return ARGV[1] .. '{site}' .. redis.call('GET', KEYS[1])")
    key = f"cd:{{{site}}}:ap:k"
    try:
        await client.set(key, "!")
        assert await pipe.evalsha(script, [key], ["hi "]) == f"hi {site}!".encode()
        assert await pipe.evalsha(script, [key], ["again "]) == f"again {site}!".encode()
    finally:
        await client.delete(key)
        await client.aclose()


async def test_callers_hear_of_a_connection_that_fails(site: str) -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    pipe = AutoPipeline(client)
    with pytest.raises(RedisConnectionError):
        await asyncio.gather(*(pipe.execute("GET", f"cd:{{{site}}}:x") for _ in range(3)))
    await client.aclose()


async def test_a_redis_that_never_answers_times_out_and_the_next_round_trip_reconnects(
    site: str,
) -> None:
    """The round trip's one deadline (the client's socket timeout) holds when Redis
    takes the command and never answers; the half-read connection is dropped, and the next
    command goes out on a new one."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=0.3)
    pipe = AutoPipeline(client)
    try:
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await asyncio.gather(*(pipe.execute("GET", f"cd:{{{site}}}:x") for _ in range(3)))
        assert time.monotonic() - started < 2.0
        with pytest.raises(RedisTimeoutError):
            await pipe.execute("GET", f"cd:{{{site}}}:x")
        assert len(accepted) == 2  # the first connection was not reused half-read
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await client.aclose()


async def test_replies_longer_than_one_socket_read_arrive_whole_and_in_order(
    redis_url: str, site: str
) -> None:
    """Replies are read off the parser as the socket delivers them: a reply split across
    reads, and hundreds of replies in one round trip, come back whole and in order."""
    client = connect(redis_url)
    pipe = AutoPipeline(client)
    big, key = "界" * 200_000, f"cd:{{{site}}}:ap-big"  # 600 KB of UTF-8: several reads
    small = [f"cd:{{{site}}}:ap-{i}" for i in range(300)]
    try:
        await pipe.many([("SET", key, big), *[("SET", k, k) for k in small]])
        replies = await pipe.many(
            [("GET", key), *[("GET", k) for k in small], ("STRLEN", key), ("GET", key + "-no")]
        )
        assert replies[0] == big.encode()
        assert replies[1:301] == [k.encode() for k in small]
        assert replies[301:] == [len(big.encode()), None]
    finally:
        await client.delete(key, *small)
        await pipe.aclose()
        await client.aclose()
