"""The socket fan-out's publications (realtime/fanout): what other nodes read."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from contactd.realtime import wire_json
from contactd.realtime.fanout import FanOut
from contactd.storage.autopipe import auto_pipeline


async def test_publications_go_through_the_given_clients_auto_pipeline(
    redis: Redis, redis_url: str, site: str
) -> None:
    channel = f"contactd-{site}"
    fanout = FanOut(redis_url, channel=channel)
    fanout.publish_through(redis)
    listener = Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    try:
        emit = fanout._message("message", [{"n": 1}], "/agent", "agent:a1", None)
        await fanout._send([emit])
        got = await pubsub.get_message(timeout=2.0)
        for _ in range(20):
            if got is not None:
                break
            got = await pubsub.get_message(timeout=0.1)
        assert got is not None
        head = f"contactd-batch:{fanout.host_id}".encode()
        assert got["data"].startswith(head)
        assert wire_json.loads(got["data"][len(head) :]) == [emit]
        # the app's client carried it (its auto-pipeline holds a connection now); the
        # manager's own client was never opened for it
        assert auto_pipeline(redis)._conn is not None
        assert getattr(fanout, "redis", None) is None or not fanout.connected
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await asyncio.sleep(0)
