"""Shared helpers for the chat socket tests: a recording Socket.IO peer, polling waits,
REST logins and signed identities. Real clients against a real server; nothing mocked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import socketio

from contactd.auth.visitors import sign_identity

Payload = dict[str, Any]


class Held:
    """A coroutine method replaced so that its calls wait for ``release`` before they run
    (``calls`` counts them): to hold a first request while its retries arrive."""

    def __init__(self, monkeypatch: Any, target: object, name: str) -> None:
        self.release = asyncio.Event()
        self.calls = 0
        real = getattr(target, name)

        async def held(*args: Any, **kw: Any) -> Any:
            self.calls += 1
            await self.release.wait()
            return await real(*args, **kw)

        monkeypatch.setattr(target, name, held)


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy (which is returned); fail with
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


class Peer:
    """One Socket.IO client on one namespace that records every server event it gets."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Payload]] = []
        self.refusal: Any = None
        self.disconnects = 0

        async def on_any(event: str, data: Any = None) -> None:
            self.events.append((event, data))

        async def on_refused(data: Any = None) -> None:
            self.refusal = data

        async def on_disconnect(*_: Any) -> None:
            self.disconnects += 1

        self.client.on("*", on_any, namespace=namespace)
        self.client.on("connect_error", on_refused, namespace=namespace)
        self.client.on("disconnect", on_disconnect, namespace=namespace)

    async def connect(self, base: str, auth: Payload | None) -> Peer:
        await self.client.connect(
            base,
            namespaces=[self.namespace],
            auth=auth,
            transports=["websocket"],
            wait_timeout=5,
        )
        return self

    @property
    def connected(self) -> bool:
        return bool(self.client.connected) and self.namespace in self.client.namespaces

    async def disconnect(self) -> None:
        if self.client.connected:
            await self.client.disconnect()
        # the client's engine.io tasks stop on their own; give them a moment
        await asyncio.sleep(0)

    async def call(self, event: str, data: Any = None, timeout: float = 5.0) -> Payload:
        ack = await self.client.call(event, data, namespace=self.namespace, timeout=timeout)
        assert isinstance(ack, dict), f"{event}: ack is not an object: {ack!r}"
        return ack

    async def ok(self, event: str, data: Any = None) -> Payload:
        ack = await self.call(event, data)
        assert ack.get("ok") is True, f"{event} {data!r} failed: {ack!r}"
        return ack

    async def error(self, event: str, data: Any = None) -> str:
        """Call ``event`` expecting an error ack; returns its code."""
        ack = await self.call(event, data)
        assert ack.get("ok") is False, f"{event} {data!r} unexpectedly succeeded: {ack!r}"
        return str(ack["error"]["code"])

    def mark(self) -> int:
        return len(self.events)

    def got(self, event: str, since: int = 0) -> list[Payload]:
        return [d for e, d in self.events[since:] if e == event]

    async def wait(
        self,
        event: str,
        pred: Callable[[Payload], bool] | None = None,
        *,
        since: int = 0,
        timeout: float = 5.0,
    ) -> Payload:
        """The first ``event`` received at or after index ``since`` that matches ``pred``."""

        def find() -> Payload | None:
            for e, d in self.events[since:]:
                if e == event and (pred is None or pred(d)):
                    return d
            return None

        found = await wait_for(find, timeout, f"{event!r} on {self.namespace}")
        assert isinstance(found, dict)
        return found


BACKGROUND_TASKS = frozenset(
    {
        "routing-sweeper",
        "agent-presence",
        "customer-presence",
        "supervisor-feed",
        "queue-positions",
        "chat-timeouts",
        "message-log-writer",
        "monitor-recorder",  # --- monitor ---
    }
)


async def recancel_swallowed(names: frozenset[str] = BACKGROUND_TASKS) -> None:
    """Run during an in-process server's shutdown: cancel again any of the server's
    background tasks whose cancellation was swallowed.

    Works around a server bug (reported): on Python 3.11 ``asyncio.wait_for`` — which
    redis-py uses for every command while ``socket_timeout`` is set (its default is 5 s) —
    can swallow a ``cancel()`` that arrives as the command completes, so
    ``task.cancel(); await task`` in the app's cleanup can wait forever. A no-op once the
    server stops its loops reliably."""
    while True:
        await asyncio.sleep(0.1)
        for task in asyncio.all_tasks():
            if task.get_name() in names and task.cancelling() and not task.done():
                task.cancel()


def refusal_code(refusal: Any) -> str | None:
    """The error code a refused connect carries. docs/protocol.md: ``connect_error`` with
    ``{"code": ...}``; socket.io puts the refusal's data under ``data`` next to
    ``message``, so both places count."""
    if not isinstance(refusal, dict):
        return None
    if isinstance(refusal.get("code"), str):
        return str(refusal["code"])
    data = refusal.get("data")
    if isinstance(data, dict) and isinstance(data.get("code"), str):
        return str(data["code"])
    return None


async def connect_refused(base: str, namespace: str, auth: Payload | None) -> Any:
    """Connect expecting a refusal; returns what ``connect_error`` carried."""
    peer = Peer(namespace)
    try:
        await peer.connect(base, auth)
    except socketio.exceptions.ConnectionError:
        return peer.refusal
    finally:
        await peer.disconnect()
    raise AssertionError(f"{namespace} accepted a connection with auth {auth!r}")


async def login(base: str, username: str, password: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + "/api/v1/auth/login", json={"username": username, "password": password}
        ) as r,
    ):
        assert r.status == 200, await r.text()
        return str((await r.json())["token"])


async def rest_get(base: str, path: str, token: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(base + path, headers={"Authorization": "Bearer " + token}) as r,
    ):
        return r.status, await r.json()


def identity(secret: str, customer_id: str, name: str, *, age_s: int = 0) -> Payload:
    ts = int(time.time()) - age_s
    return {
        "identity": {
            "customer_id": customer_id,
            "name": name,
            "ts": ts,
            "sig": sign_identity(secret, customer_id, ts),
        }
    }


def paths_containing(obj: Any, needle: str, path: str = "") -> list[str]:
    """Where in a JSON-like value a string containing ``needle`` occurs (for leak checks)."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in paths_containing(v, needle, f"{path}.{k}")]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in paths_containing(v, needle, f"{path}[{i}]")]
    return [path] if isinstance(obj, str) and needle in obj else []


def seqs(messages: list[Payload]) -> list[int]:
    return [int(m["seq"]) for m in messages]
