"""Builds the Socket.IO server on the aiohttp app: namespaces, fan-out through Redis (so
sockets on every node receive emits made on any node), listeners and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import socketio
from aiohttp import web

from contactd.auth.service import AuthService
from contactd.auth.visitors import VisitorAuth
from contactd.bus import Bus
from contactd.channels.im import ChatService
from contactd.metrics import Metrics
from contactd.realtime import wire_json
from contactd.realtime.agent import AgentNamespace
from contactd.realtime.customer import CustomerNamespace
from contactd.realtime.fanout import FanOut, Packet
from contactd.realtime.listeners import SocketListeners
from contactd.realtime.presence import AgentPresence, CustomerPresence
from contactd.realtime.supervisor import SupervisorNamespace
from contactd.routing.service import RoutingEngine
from contactd.settings import Settings
from contactd.tasks import stop_tasks


@dataclass
class Realtime:
    sio: socketio.AsyncServer
    listeners: SocketListeners
    agents: AgentPresence
    customers: CustomerPresence
    supervisor: SupervisorNamespace


def make_server(redis_url: str, settings: Settings, app: web.Application) -> socketio.AsyncServer:
    """The Socket.IO server, attached to the app (routes must exist before start-up);
    namespaces are registered by build_realtime once the services exist."""
    origins: str | list[str] | None = settings.im.allowed_origins or None
    if origins == ["*"]:
        origins = "*"
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=FanOut(redis_url, channel=f"contactd-{settings.site}"),
        json=wire_json,
        serializer=Packet,
        cors_allowed_origins=origins,
        transports=["websocket"],
        max_http_buffer_size=settings.im.max_event_bytes,
        ping_interval=15,
        ping_timeout=10,
    )
    sio.attach(app, socketio_path="socket.io")
    return sio


def build_realtime(
    sio: socketio.AsyncServer,
    settings: Settings,
    metrics: Metrics,
    bus: Bus,
    chat: ChatService,
    auth: AuthService,
    routing: RoutingEngine,
    visitors: VisitorAuth,
    customers: CustomerPresence,
) -> Realtime:
    agents = AgentPresence(routing, settings)
    supervisor = SupervisorNamespace(settings, metrics, auth, routing)
    sio.register_namespace(CustomerNamespace(settings, metrics, chat, visitors, customers))
    sio.register_namespace(AgentNamespace(settings, metrics, chat, auth, routing, agents))
    sio.register_namespace(supervisor)
    if isinstance(sio.manager, FanOut):
        sio.manager.publish_through(routing.redis)
    listeners = SocketListeners(sio, chat, routing, supervisor)
    bus.subscribe(listeners.on_event)
    return Realtime(sio, listeners, agents, customers, supervisor)


@contextlib.asynccontextmanager
async def running(rt: Realtime) -> AsyncIterator[None]:
    if isinstance(rt.sio.manager, FanOut):
        rt.sio.manager.start()  # subscribed and announced before the first socket
    tasks = [
        asyncio.create_task(rt.agents.run(), name="agent-presence"),
        asyncio.create_task(rt.customers.run(), name="customer-presence"),
        asyncio.create_task(rt.supervisor.run(), name="supervisor-feed"),
        asyncio.create_task(rt.listeners.push_positions(), name="queue-positions"),
    ]
    try:
        yield
    finally:
        # disconnect this node's clients (they reconnect to another node) and stop the
        # Redis fan-out listener before Redis itself goes away
        await rt.sio.shutdown()
        manager = rt.sio.manager
        # the Redis pub/sub listener, and our publisher
        for name in ("thread", "flusher", "heart"):
            task = getattr(manager, name, None)
            if isinstance(task, asyncio.Task):
                tasks.append(task)
        await stop_tasks(tasks)
        if isinstance(manager, FanOut):
            await manager.close()
