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
- this node's sockets get their packets straight away: one encoded packet per emit, put on
  each recipient's queue in turn, instead of upstream's task per recipient and a wait for
  them all (a trip round the event loop per emit before the emitter may go on);
- ``emit_to`` sends one event to several rooms in different namespaces (a chat message goes
  to the customer's, the agent's and the watching supervisors' rooms) encoding its JSON once;
- looking for bytes in a payload (Socket.IO's binary events) is one quick walk instead of
  upstream's recursive ``functools.reduce`` over lists built at every level, which was 5–8 %
  of the server's time under load (``Packet``, used for every packet, and ``emit``).

- a node that hears no other node publishes nothing: every node announces itself on the
  channel every ``_HEARTBEAT_S``; one that has heard no other for ``_PEER_TTL_S`` (and
  has been up that long) keeps its emits to itself — most sites run one process, which
  then skips a PUBLISH per flush and reading its own batches back. When a node is heard
  again (one starting, one whose Redis link came back), the emits of the last
  ``_REPLAY_S`` are published for it, so a socket that joined a room on it in the moment
  before it was heard gets what was emitted there meanwhile.

Delivery stays best-effort, as it is upstream: messages are stored before they are
emitted, and a client that missed some asks for them (``sync`` with its last ``seq``).
Nodes of one site must all run this manager (they read each other's batches)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet
from redis.asyncio import Redis
from socketio.packet import EVENT
from socketio.packet import Packet as _UpstreamPacket

from contactd.realtime import wire_json
from contactd.storage.autopipe import auto_pipeline, close_auto_pipeline
from contactd.storage.redis import blocking_pool

log = logging.getLogger(__name__)

_BATCH = "contactd-batch:"  # + sender host id (32 hex) + JSON list of messages
_HELLO = "contactd-hello:"  # + sender host id: a node subscribed to the channel
_MAX_BATCH = 500  # messages per publication
_HEARTBEAT_S = 2.0  # how often a node announces itself
_PEER_TTL_S = 3 * _HEARTBEAT_S  # a node not heard for this long is gone
_REPLAY_S = 2.0  # emits kept, while alone, for a node heard again


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
        self.publisher: Redis | None = None  # see ``publish_through``
        self.heart: asyncio.Task[None] | None = None  # the announcements (``start``)
        self._peers: dict[str, float] = {}  # other nodes' host ids → last heard (monotonic)
        self._heard_self_at: float | None = None  # our own announcement came back: subscribed
        self._kept: deque[tuple[float, dict[str, Any]]] = deque()  # emits not published
        self.heartbeat_s, self.peer_ttl_s, self.replay_s = _HEARTBEAT_S, _PEER_TTL_S, _REPLAY_S

    def start(self) -> None:
        """Subscribe and start announcing this node now (before it serves), rather than
        at the first socket connection as upstream does."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()
        if self.heart is None:
            self.heart = asyncio.get_running_loop().create_task(
                self._announce_forever(), name="socket-fan-out-heartbeat"
            )

    async def _announce_forever(self) -> None:
        while True:
            client = self.publisher if self.publisher is not None else self.redis
            # only once subscribed: a node that hears us may send us what it kept at once
            subscribed = self.pubsub is not None and self.pubsub.subscribed
            try:
                if client is not None and subscribed:
                    await auto_pipeline(client).execute(
                        "PUBLISH", self.channel, _HELLO + self.host_id
                    )
            except Exception as exc:  # Redis away: the listener reconnects; so do we
                log.debug("fan-out heartbeat not sent: %s", exc)
            await asyncio.sleep(self.heartbeat_s)

    def alone(self) -> bool:
        """No other node heard for ``peer_ttl_s``, this one subscribed that long."""
        now = time.monotonic()
        if self._heard_self_at is None or now - self._heard_self_at < self.peer_ttl_s:
            return False
        return not any(now - at < self.peer_ttl_s for at in self._peers.values())

    def _heard(self, host_id: str) -> None:
        now = time.monotonic()
        if host_id == self.host_id:
            if self._heard_self_at is None:
                self._heard_self_at = now
            return
        was_alone = self.alone()
        self._peers[host_id] = now
        if was_alone:  # publish what the newcomer's sockets may have missed
            recent = [data for at, data in self._kept if now - at < self.replay_s]
            self._kept.clear()
            log.info("another node joined the fan-out: %d recent emits sent on", len(recent))
            for data in recent:
                self._queue(data)

    def publish_through(self, redis: Redis) -> None:
        """Publish with ``redis``'s auto-pipeline (the app's client, on the same Redis): a
        batch of emits then shares its round trip with the other commands of that turn of
        the event loop (the chat timeouts armed for the same messages), one write and one
        read for both instead of one each. The listener keeps the manager's own client."""
        self.publisher = redis

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
        if self._local_only(target, ns):
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
        args = _args(list(data) if isinstance(data, tuple) else [data])
        await self._deliver(ns, target, skip_sid, _body(event, args))
        await self._publish(self._message(event, args, ns, target, skip_sid))

    async def emit_to(self, event: str, data: Any, targets: Sequence[tuple[str, str]]) -> None:
        """``event`` with ``data`` (one argument, no acknowledgement) to each ``(namespace,
        room)`` of ``targets`` in turn, on every node; the JSON is encoded once for all."""
        if has_bytes(data) or any(self._local_only(room, ns) for ns, room in targets):
            for ns, room in targets:
                await self.emit(event, data, namespace=ns, room=room)
            return
        args = _args([data])
        body = _body(event, args)
        for ns, room in targets:
            await self._deliver(ns, room, None, body)
            await self._publish(self._message(event, args, ns, room, None))

    def _local_only(self, target: Any, ns: str) -> bool:
        return isinstance(target, str) and (
            self.is_connected(target, ns) or self.is_pre_connected(target, ns)
        )

    def _message(
        self, event: str, args: list[Any], ns: str, room: Any, skip_sid: Any
    ) -> dict[str, Any]:
        """The publication of an emit, as upstream's ``_handle_emit`` reads it."""
        return {
            "method": "emit",
            "event": event,
            "data": args,
            "binary": False,
            "namespace": ns,
            "room": room,
            "skip_sid": skip_sid,
            "callback": None,
            "host_id": self.host_id,
        }

    async def _deliver(self, ns: str, room: Any, skip_sid: Any, body: str) -> None:
        """One encoded event packet to this node's sockets in ``room``, each put on its
        socket's queue in turn (what upstream does in a task per recipient)."""
        if ns not in self.rooms:
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        head = f"{EVENT}{ns}," if ns != "/" else f"{EVENT}"
        pkt = eio_packet.Packet(eio_packet.MESSAGE, head + body)
        for sid, eio_sid in self.get_participants(ns, room):
            if sid in skip:
                continue
            try:
                await self.server._send_eio_packet(eio_sid, pkt)
            except Exception as exc:  # a socket closed meanwhile (upstream ignores it too)
                log.debug("emit to %s on %s not sent: %s", sid, ns, exc)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """An emit published by another node (or upstream's own path): plain ones are
        delivered like this node's own."""
        data = message.get("data")
        if message.get("callback") is not None or message.get("binary"):
            await super()._handle_emit(message)
            return
        args = _args(data if isinstance(data, list) else [data])
        await self._deliver(
            message.get("namespace") or "/",
            message.get("room"),
            message.get("skip_sid"),
            _body(message["event"], args),
        )

    async def _publish(self, data: dict[str, Any]) -> None:
        if self.alone():  # nobody to tell; kept a moment for a node that appears
            now = time.monotonic()
            kept = self._kept
            kept.append((now, data))
            while kept and now - kept[0][0] > self.replay_s:
                kept.popleft()
            return
        self._kept.clear()
        self._queue(data)

    def _queue(self, data: dict[str, Any]) -> None:
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
                client = self.publisher
                if client is None:
                    if not self.connected:
                        self._redis_connect()
                    client = self.redis
                # an auto-pipeline: no pool checkout and reply timer per publication (a
                # third less of the client's CPU than ``redis.publish``)
                await auto_pipeline(client).execute("PUBLISH", self.channel, payload)
                return
            except Exception as exc:
                log.error(
                    "cannot publish %d emits to Redis (%s)%s",
                    len(batch),
                    exc,
                    "; retrying" if retries_left else "; dropped",
                )
                if client is not self.publisher:
                    self.connected = False

    async def close(self) -> None:
        """Close the publishing connection (after the flusher stopped)."""
        redis = getattr(self, "redis", None)
        if isinstance(redis, Redis):
            await close_auto_pipeline(redis)

    async def _listen(self) -> AsyncIterator[Any]:
        head = len(_BATCH) + len(self.host_id)
        own = (_BATCH + self.host_id).encode()
        mark, hello = _BATCH.encode(), _HELLO.encode()
        async for data in super()._listen():
            if isinstance(data, bytes) and data.startswith(mark):
                if not data.startswith(own):
                    self._heard(data[len(_BATCH) : head].decode())
                    for message in self.json.loads(data[head:]):
                        yield message
            elif isinstance(data, bytes) and data.startswith(hello):
                self._heard(data[len(hello) :].decode())
            else:  # a plain python-socketio publication
                yield data


def _args(data: list[Any]) -> list[Any]:
    """An emit's arguments as upstream sends them: ``None`` alone is no argument."""
    return [] if data == [None] else data


def _body(event: str, args: list[Any]) -> str:
    """The JSON part of an event packet (after its type and namespace)."""
    return wire_json.dumps([event, *args])
