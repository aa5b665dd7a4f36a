"""Fan-out of socket emits across server processes: python-socketio's Redis manager, made
cheap per emit.

python-socketio's ``AsyncRedisManager`` delivers an emit to this node's sockets and then
PUBLISHes it for the others, one Redis round trip per emit (contactd makes two per chat
message), and every node — the sender too — reads and parses every publication back. Here:

- emits wait in an outbox and a flusher publishes all that accumulated in **one** PUBLISH
  (a JSON list); under load one round trip carries hundreds of emits, when idle an emit
  leaves at once. Order is kept: one flusher, one connection, publications in order;
- a publication starts with its sender's host id, so a node skips its own without parsing;
- an emit addressed to one socket of this node (``to=sid``) is not published at all;
- looking for bytes in a payload (Socket.IO's binary events) is one quick walk instead of
  upstream's recursive ``functools.reduce`` over lists built at every level, which was 5–8 %
  of the server's time under load (``Packet``, used for every packet, and ``emit``).

Delivery stays best-effort, as it is upstream: messages are stored before they are
emitted, and a client that missed some asks for them (``sync`` with its last ``seq``).
Nodes of one site must all run this manager (they read each other's batches)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import socketio
from redis.asyncio import Redis
from socketio.packet import Packet as _UpstreamPacket

from contactd.storage.redis import blocking_pool

log = logging.getLogger(__name__)

_BATCH = "contactd-batch:"  # + sender host id (32 hex) + JSON list of messages
_MAX_BATCH = 500  # messages per publication


def has_bytes(data: Any) -> bool:
    """Whether a payload holds bytes anywhere (then it travels as a binary event)."""
    todo = [data]
    while todo:
        item = todo.pop()
        if isinstance(item, bytes | bytearray):
            return True
        if isinstance(item, list | tuple):
            todo.extend(item)
        elif isinstance(item, dict):
            todo.extend(item.values())
    return False


class Packet(_UpstreamPacket):  # type: ignore[misc]
    """Socket.IO's packet with the quick bytes check (``AsyncServer(serializer=Packet)``)."""

    @classmethod
    def data_is_binary(cls, data: Any) -> bool:
        return has_bytes(data)


class FanOut(socketio.AsyncRedisManager):  # type: ignore[misc]
    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._outbox: list[dict[str, Any]] = []
        self._ready = asyncio.Event()
        self.flusher: asyncio.Task[None] | None = None

    def _redis_connect(self) -> None:
        # a blocking pool: under a burst the default pool fails ("Too many connections"),
        # the manager reconnects and leaks the old client's connections
        self.redis = Redis(connection_pool=blocking_pool(self.redis_url))
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: str | list[str] | None = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: str | list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        target = to or room
        ns = namespace or "/"
        if isinstance(target, str) and (
            self.is_connected(target, ns) or self.is_pre_connected(target, ns)
        ):
            kwargs["ignore_queue"] = True  # one of this node's own sockets: nobody to tell
        if callback is not None or kwargs.get("ignore_queue") or has_bytes(data):
            await super().emit(
                event,
                data,
                namespace=ns,
                room=target,
                skip_sid=skip_sid,
                callback=callback,
                **kwargs,
            )
            return
        # upstream's emit for the plain case (no acknowledgement, no bytes), without its
        # slow bytes check: deliver here, then publish for the other nodes
        message = {
            "method": "emit",
            "event": event,
            "data": list(data) if isinstance(data, tuple) else [data],
            "binary": False,
            "namespace": ns,
            "room": target,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }
        await self._handle_emit(message)
        await self._publish(message)

    async def _publish(self, data: dict[str, Any]) -> None:
        self._outbox.append(data)
        self._ready.set()
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.get_running_loop().create_task(
                self._flush_forever(), name="socket-fan-out"
            )

    async def _flush_forever(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._outbox = self._outbox[:_MAX_BATCH], self._outbox[_MAX_BATCH:]
            if self._outbox:
                self._ready.set()
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[dict[str, Any]]) -> None:
        try:
            payload = _BATCH + self.host_id + self.json.dumps(batch)
        except Exception:  # (the emits reached this node's sockets, so they were JSON)
            log.exception("cannot encode %d emits for the other nodes; dropped", len(batch))
            return
        for retries_left in (1, 0):
            try:
                if not self.connected:
                    self._redis_connect()
                await self.redis.publish(self.channel, payload)
                return
            except Exception as exc:
                log.error(
                    "cannot publish %d emits to Redis (%s)%s",
                    len(batch),
                    exc,
                    "; retrying" if retries_left else "; dropped",
                )
                self.connected = False

    async def _listen(self) -> AsyncIterator[Any]:
        head = len(_BATCH) + len(self.host_id)
        own = (_BATCH + self.host_id).encode()
        mark = _BATCH.encode()
        async for data in super()._listen():
            if isinstance(data, bytes) and data.startswith(mark):
                if not data.startswith(own):
                    for message in self.json.loads(data[head:]):
                        yield message
            else:  # a plain python-socketio publication
                yield data
