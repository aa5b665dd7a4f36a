"""The socket fan-out's publications (realtime/fanout): what other nodes read."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import socketio
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


def _node(
    redis_url: str, channel: str
) -> tuple[socketio.AsyncServer, FanOut, list[dict[str, Any]]]:
    """A Socket.IO server on the fan-out (short heartbeat for the test) and the emits other
    nodes delivered to it."""
    fanout = FanOut(redis_url, channel=channel)
    fanout.heartbeat_s, fanout.peer_ttl_s, fanout.replay_s = 0.1, 0.4, 1.0
    sio = socketio.AsyncServer(async_mode="aiohttp", client_manager=fanout)
    got: list[dict[str, Any]] = []

    async def delivered(message: dict[str, Any]) -> None:
        got.append(message)

    fanout._handle_emit = delivered  # type: ignore[method-assign]
    return sio, fanout, got


async def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_node_alone_publishes_nothing_and_a_newcomer_gets_what_it_just_emitted(
    redis_url: str, site: str
) -> None:
    channel = f"contactd-{site}-solo"
    listener = Redis.from_url(redis_url)
    pubsub = listener.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    _, a, _ = _node(redis_url, channel)
    b: FanOut | None = None
    try:
        a.start()
        await _until(a.alone)
        while await pubsub.get_message(timeout=0.05) is not None:
            pass  # (a's announcements so far)
        await a.emit("x", {"n": 1}, room="r1", namespace="/agent")
        await asyncio.sleep(0.3)
        published = []
        while (m := await pubsub.get_message(timeout=0.05)) is not None:
            published.append(m["data"])
        assert not [p for p in published if p.startswith(b"contactd-batch:")]

        # a second node subscribes and announces itself: the first hears it, sends on
        # what it emitted in the moment before, and publishes from then on
        _, b, b_got = _node(redis_url, channel)
        b.start()
        await _until(lambda: any(m["event"] == "x" for m in b_got))
        assert not a.alone()
        await a.emit("y", {"n": 2}, room="r1", namespace="/agent")
        await _until(lambda: any(m["event"] == "y" for m in b_got))
        assert [m["data"] for m in b_got if m["event"] in ("x", "y")] == [[{"n": 1}], [{"n": 2}]]
    finally:
        for node in (a, b):
            if node is None:
                continue
            for task in (node.thread, node.flusher, node.heart):
                if isinstance(task, asyncio.Task):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            if node.redis is not None:
                await node.redis.aclose()
        await pubsub.aclose()
        await listener.aclose()
