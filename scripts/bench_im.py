"""Live chat (IM relay) benchmark: contactd's customer→agent message relay against a bare
python-socketio relay.

What one "relayed message" is here: a customer socket sends ``message.send`` (with an
acknowledgement) on ``/customer``; contactd validates it, stores it (group-committed to
SQL, with its per-session ``seq``), acknowledges it and pushes a ``message`` event to the
agent holding the conversation on ``/agent`` (and to the customer's own session room).
It counts once the agent's socket has received it. The timestamp travels in the text.

The bare baseline is a minimal ``socketio.AsyncServer`` on aiohttp, in its own process,
with the same transport settings (websocket only, same ping interval): a customer socket
connects naming its agent, and ``message.send`` is re-emitted to that agent's room and
acknowledged. No persistence, no validation, no Redis fan-out.

Both servers get the same conversations, the same clients and the same phases:

1. agents connect (and, on contactd, ``agent.login`` with chat capacity for their share);
2. **connects/s**: every customer socket connects (websocket + Engine.IO open + namespace
   connect with auth, until the server's ``hello`` event), a fixed number in flight;
3. **RSS per idle connection**: the server process's RSS growth over phase 2 (psutil on
   the server's PID, measured after the sockets settle) ÷ the customer sockets connected.
   The baseline is taken after as many sockets as phase 2 keeps in flight were connected
   at once, so pools that grow with concurrency have grown already;
4. contactd only: every customer starts a chat on its queue and an agent accepts it
   (agents get 3 spare chat slots: a chat that never becomes active — the server lost
   its offer or its acceptance — is abandoned and started again by a new visitor, and
   the output counts these);
5. **relayed messages/s**: closed loop, every conversation keeps ``--inflight`` messages
   in flight; messages received by agents during the timed window ÷ its length;
6. **latency**: open loop at ``--latency-load`` (0.5) of contactd's measured throughput,
   messages spread over all conversations; customer→agent time per message (from the
   moment the send is started to the agent socket's receipt), p50/p99. The bare relay is
   timed at the same absolute rate.

The load comes from ``--workers`` client processes (2 by default) speaking the Socket.IO
v4 wire protocol directly over aiohttp websockets (a much thinner client than
python-socketio's, so the load generator is not the bottleneck); each worker holds its
own agents, its own queue and its customers, so a conversation never crosses processes
and one clock times it. CPU use of the server, Redis and every client process is recorded
per phase, and the output says when a client process was saturated.

The contactd server runs as ``python -m contactd serve`` in a subprocess with a temporary
data directory (SQLite), a fresh site, a private redis-server on a free port, log level
WARNING and the per-connection event rate limit raised to 1000/s (burst 1000) via
``CONTACTD_IM__EVENTS_PER_S`` / ``CONTACTD_IM__EVENTS_BURST``. Agent accounts are created
before the server starts, with a cheap argon2 setting (benchmark accounts only).

The contactd server's log is summarised (errors and exception types, counted).
Diagnosis: ``--sql-timings FILE`` runs contactd with timers around its SQL write
transactions (write-lock wait and hold, by caller), the message log's group commit and
``message.send``, per phase; ``--py-spy FILE`` samples it during one phase (py-spy must be
on PATH); ``--server-cprofile FILE`` runs it under cProfile.

Usage::

    python scripts/bench_im.py            # 1,000 conversations, table on stdout
    python scripts/bench_im.py --quick    # 100 conversations, short phases: under 45 s
    python scripts/bench_im.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import (
    RedisServer,
    format_table,
    free_port,
    latency_summary_ms,
    machine_info,
    print_json,
    progress_line,
    unique_site,
    write_timeline,
)

GOALS = {
    "relay_per_s": 2000.0,
    "ratio": 0.5,
    "p99_ms": 10.0,
    "rss_kb_per_conn": 48.0,
    "connects_per_s": 800.0,
}

FULL = {
    "conversations": 1000,
    "agents": 50,
    "warm_s": 2.0,
    "throughput_s": 10.0,
    "latency_s": 10.0,
    "settle_s": 1.5,
}
QUICK = {
    "conversations": 100,
    "agents": 10,
    "warm_s": 0.5,
    "throughput_s": 2.5,
    "latency_s": 2.5,
    "settle_s": 0.7,
}

AGENT_PASSWORD = "bench-agent-password"
SERVER_START_TIMEOUT_S = 60.0


# --------------------------------------------------------------------------- bare relay


def serve_bare(port: int, redis_url: str | None = None) -> None:
    """The baseline: a bare python-socketio relay (runs in its own process). With
    ``redis_url`` it is one of several processes on the port, joined the way
    python-socketio joins processes: its ``AsyncRedisManager``."""
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        transports=["websocket"],
        ping_interval=15,
        ping_timeout=10,
        client_manager=socketio.AsyncRedisManager(redis_url) if redis_url else None,
    )
    app = web.Application()
    sio.attach(app, socketio_path="socket.io")
    peers: dict[str, str] = {}

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app.router.add_get("/readyz", readyz)

    @sio.on("connect", namespace="/agent")  # type: ignore[misc]
    async def agent_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        name = (auth or {}).get("agent")
        if not name:
            raise socketio.exceptions.ConnectionRefusedError({"code": "unauthenticated"})
        await sio.enter_room(sid, "agent:" + name, namespace="/agent")

    @sio.on("connect", namespace="/customer")  # type: ignore[misc]
    async def customer_connect(sid: str, environ: dict[str, Any], auth: Any) -> None:
        peer = (auth or {}).get("peer")
        if not peer:
            raise socketio.exceptions.ConnectionRefusedError({"code": "unauthenticated"})
        peers[sid] = peer
        await sio.emit("hello", {"visitor_id": sid}, to=sid, namespace="/customer")

    @sio.on("disconnect", namespace="/customer")  # type: ignore[misc]
    async def customer_disconnect(sid: str, *args: Any) -> None:
        peers.pop(sid, None)

    @sio.on("message.send", namespace="/customer")  # type: ignore[misc]
    async def send(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        msg = {**data, "sender": {"type": "customer"}, "created_at": int(time.time() * 1000)}
        await sio.emit("message", {"message": msg}, room="agent:" + peers[sid], namespace="/agent")
        return {"ok": True, "message": msg}

    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, reuse_port=bool(redis_url)
    )


def serve_bare_pool(count: int, port: int, redis_url: str) -> None:
    """``count`` bare relays on one port (``SO_REUSEPORT``), as ``contactd serve
    --workers`` runs its workers; SIGTERM stops them all."""
    me = str(Path(__file__).resolve())
    procs = [
        subprocess.Popen([sys.executable, me, "--serve-bare", str(port), "--bare-redis", redis_url])
        for _ in range(count)
    ]

    def stop(*_: Any) -> None:
        for p in procs:
            p.terminate()

    signal.signal(signal.SIGTERM, stop)
    for p in procs:
        p.wait()


# --------------------------------------------------------------------------- instrumented contactd


def serve_contactd_instrumented(out_path: str) -> None:
    """``contactd serve`` with timers wrapped around its SQL write path (diagnosis only;
    nothing in contactd changes): how long each write transaction waited for SQLite's
    write lock (BEGIN IMMEDIATE) and held it, by caller; the group commit's batch sizes
    and durations; how long ``message.send`` spent in the message log, in all. Written as
    JSON to ``out_path`` when the server exits."""
    import atexit
    import contextlib as ctx
    from collections import defaultdict

    import contactd.sessions.messages as messages_mod
    import contactd.storage.db as db_mod
    from contactd.channels.im import ChatService
    from contactd.cli import main as contactd_main

    samples: dict[str, list[float]] = defaultdict(list)
    original = db_mod.write_transaction

    @ctx.asynccontextmanager
    async def timed_write_transaction(engine: Any) -> Any:
        caller = sys._getframe(2).f_code.co_qualname
        t0 = time.perf_counter()
        entered = False
        try:
            async with original(engine) as conn:
                entered = True
                t1 = time.perf_counter()
                samples[f"lock_wait_ms {caller}"].append((t1 - t0) * 1e3)
                try:
                    yield conn
                finally:
                    samples[f"lock_held_ms {caller}"].append((time.perf_counter() - t1) * 1e3)
        except Exception:
            if not entered:  # BEGIN IMMEDIATE gave up ("database is locked")
                samples[f"lock_wait_failed_ms {caller}"].append((time.perf_counter() - t0) * 1e3)
            raise

    for mod in list(sys.modules.values()):
        name = getattr(mod, "__name__", "")
        if name.startswith("contactd") and getattr(mod, "write_transaction", None) is original:
            mod.write_transaction = timed_write_transaction  # type: ignore[attr-defined]

    write = messages_mod.MessageLog._write

    async def timed_write(self: Any, batch: list[Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return await write(self, batch)
        finally:
            samples["group_commit_ms"].append((time.perf_counter() - t0) * 1e3)
            samples["group_commit_batch"].append(float(len(batch)))
            sessions = {pending[0].session_id for pending in batch}
            samples["group_commit_sessions"].append(float(len(sessions)))

    messages_mod.MessageLog._write = timed_write  # type: ignore[method-assign]

    append = messages_mod.MessageLog.append

    async def timed_append(self: Any, msg: Any, guard: Any = None) -> Any:
        t0 = time.perf_counter()
        try:
            return await append(self, msg, guard)
        finally:
            samples["message_log_append_ms"].append((time.perf_counter() - t0) * 1e3)

    messages_mod.MessageLog.append = timed_append  # type: ignore[method-assign]

    customer_send = ChatService.customer_send

    async def timed_customer_send(self: Any, visitor_id: str, req: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await customer_send(self, visitor_id, req)
        finally:
            samples["customer_send_ms"].append((time.perf_counter() - t0) * 1e3)

    ChatService.customer_send = timed_customer_send  # type: ignore[method-assign]

    def dump(path: str) -> None:
        out = {}
        for key, vals in sorted(samples.items()):
            v = sorted(vals)
            out[key] = {
                "n": len(v),
                "mean": round(sum(v) / len(v), 3),
                "p50": round(v[len(v) // 2], 3),
                "p99": round(v[min(len(v) - 1, int(len(v) * 0.99))], 3),
                "max": round(v[-1], 3),
                "sum": round(sum(v), 1),
            }
        Path(path).write_text(json.dumps(out, indent=1), "utf-8")

    def dump_phase(signum: int, frame: Any) -> None:
        """SIGUSR1: start a new phase (the samples so far go to ``out_path``.N)."""
        n = len(phases)
        dump(f"{out_path}.{n}")
        phases.append(n)
        samples.clear()

    phases: list[int] = []
    signal.signal(signal.SIGUSR1, dump_phase)
    atexit.register(lambda: dump(out_path))
    sys.exit(contactd_main(["serve"]))


# --------------------------------------------------------------------------- wire client


_SEP = (",", ":")


class SocketError(Exception):
    pass


class Sock:
    """One Socket.IO v4 client socket on one namespace, over an aiohttp websocket.

    Just enough of the protocol for the benchmark: Engine.IO open and ping/pong, namespace
    connect with auth, events with acknowledgements, server events (only the ones the
    socket listens to are parsed)."""

    __slots__ = ("_acks", "_ids", "_reader", "handlers", "ns", "prefix", "ws")

    def __init__(self, ns: str, handlers: dict[str, Callable[[Any], None]]) -> None:
        self.ns = ns
        self.prefix = "42" + ns + ","
        self.handlers = handlers
        self.ws: Any = None
        self._acks: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, session: Any, url: str, auth: dict[str, Any]) -> dict[str, Any]:
        """Open the socket; returns the namespace CONNECT payload."""
        self.ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
        first = await self.ws.receive_str()
        if not first.startswith("0"):
            raise SocketError(f"no Engine.IO open packet: {first[:80]!r}")
        await self.ws.send_str("40" + self.ns + "," + json.dumps(auth))
        connected: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[0] = connected
        self._reader = asyncio.create_task(self._read())
        result: dict[str, Any] = await connected
        return result

    async def call(self, event: str, data: Any) -> Any:
        """Emit ``event`` with an acknowledgement; returns the ack payload."""
        ack = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._acks[ack] = fut
        await self.ws.send_str(f"{self.prefix}{ack}{json.dumps([event, data], separators=_SEP)}")
        return await fut

    async def _read(self) -> None:
        ws = self.ws
        try:
            while True:
                msg = await ws.receive()
                if msg.type != 1:  # aiohttp.WSMsgType.TEXT
                    break
                data: str = msg.data
                kind = data[0]
                if kind == "4":
                    self._packet(data)
                elif kind == "2":  # Engine.IO ping
                    await ws.send_str("3")
                elif kind == "1":
                    break
        except Exception as exc:  # the socket is gone: fail whatever waits
            err: BaseException = exc
        else:
            err = SocketError("the socket closed")
        for fut in self._acks.values():
            if not fut.done():
                fut.set_exception(err)
        self._acks.clear()

    def _packet(self, data: str) -> None:
        ptype = data[1]
        body = data[2:]
        if body.startswith("/"):
            body = body[body.index(",") + 1 :]
        if ptype == "2":  # EVENT: '["name",{...}]'
            end = body.index('"', 2)
            handler = self.handlers.get(body[2:end])
            if handler is not None:
                args = json.loads(body)
                handler(args[1] if len(args) > 1 else None)
            return
        if ptype == "3":  # ACK: '12[{...}]'
            i = 0
            while body[i].isdigit():
                i += 1
            fut = self._acks.pop(int(body[:i]), None)
            if fut is not None and not fut.done():
                args = json.loads(body[i:])
                fut.set_result(args[0] if args else None)
            return
        if ptype in "04":  # CONNECT / CONNECT_ERROR
            fut = self._acks.pop(0, None)
            if fut is not None and not fut.done():
                payload = json.loads(body) if body else None
                if ptype == "0":
                    fut.set_result(payload)
                else:
                    fut.set_exception(SocketError(f"connect refused: {payload}"))
            return
        if ptype == "1":  # DISCONNECT from the server
            for fut in self._acks.values():
                if not fut.done():
                    fut.set_exception(SocketError("disconnected by the server"))

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self._reader is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)


# --------------------------------------------------------------------------- client worker


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


class Worker:
    """A client process: its agents, its customers (one conversation each), its queue."""

    def __init__(self, index: int, cfg: dict[str, Any]) -> None:
        self.index = index
        self.mode: str = cfg["mode"]  # "contactd" | "bare"
        self.url: str = cfg["ws_url"]
        self.agent_auth: list[dict[str, Any]] = cfg["agent_auth"]
        self.agent_names: list[str] = cfg["agent_names"]
        self.queue: str = cfg["queue"]
        self.capacity: int = cfg["capacity"]
        self.n_customers: int = cfg["customers"]
        self.session: Any = None
        self.agents: list[Sock] = []
        self.customers: list[Sock] = []
        self.warm: list[Sock] = []
        self.session_ids: list[str] = []
        self.active: set[str] = set()
        self.lost_accepts = 0
        self._hello: dict[Sock, asyncio.Future[Any]] = {}
        self.received = 0  # customer messages received by agents
        self._want = 1 << 62
        self._got_all = asyncio.Event()
        self.lat_from_ns = 1 << 62
        self.lat_ns: list[int] = []
        self.lat_sent_ns: list[int] = []  # when each of lat_ns was sent (for --timeline)
        self.errors: list[str] = []
        self._msg_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()

    def _spawn(self, coro: Any) -> None:
        t = asyncio.create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _error(self, what: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(what)

    # event handlers ----------------------------------------------------------------
    def _on_agent_message(self, data: Any) -> None:
        now = time.perf_counter_ns()
        msg = data["message"]
        if msg["sender"]["type"] != "customer":
            return
        self.received += 1
        if self.received >= self._want:
            self._got_all.set()
        text = msg["text"]
        if text[0] == "m":
            t0 = int(text[1:])
            if t0 >= self.lat_from_ns:
                self.lat_ns.append(now - t0)
                self.lat_sent_ns.append(t0)

    def _agent_handlers(self, sock_index: int) -> dict[str, Callable[[Any], None]]:
        handlers: dict[str, Callable[[Any], None]] = {"message": self._on_agent_message}
        if self.mode == "contactd":

            def on_offer(data: Any) -> None:
                self._spawn(self._accept(sock_index, data["offer_id"]))

            handlers["offer"] = on_offer
        return handlers

    async def _accept(self, agent_index: int, offer_id: str) -> None:
        try:
            r = await self.agents[agent_index].call("offer.accept", {"offer_id": offer_id})
        except Exception as exc:
            self._error(f"offer.accept: {exc!r}")
            return
        if not r.get("ok"):
            self._error(f"offer.accept: {r.get('error')}")
            return
        session = r["session"]
        if session["state"] != "active":  # contactd did not record the acceptance
            self.lost_accepts += 1
            return
        self.active.add(session["session_id"])

    # phases ------------------------------------------------------------------------
    async def connect_agents(self) -> dict[str, Any]:
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        t0 = time.perf_counter()
        for i, auth in enumerate(self.agent_auth):
            s = Sock("/agent", self._agent_handlers(i))
            await s.connect(self.session, self.url, auth)
            self.agents.append(s)
            if self.mode == "contactd":
                r = await s.call(
                    "agent.login", {"queues": [self.queue], "capacity": {"chat": self.capacity}}
                )
                if not r.get("ok"):
                    raise SocketError(f"agent.login failed: {r}")
        return {"seconds": time.perf_counter() - t0}

    def _customer_auth(self, i: int) -> dict[str, Any]:
        if self.mode == "contactd":
            return {}
        return {"peer": self.agent_names[i % len(self.agent_names)]}

    async def _connect_customer(self, i: int, into: list[Sock]) -> int:
        sock, ns = await self._new_customer(i)
        into.append(sock)
        return ns

    async def _new_customer(self, i: int) -> tuple[Sock, int]:
        loop = asyncio.get_running_loop()
        hello: asyncio.Future[Any] = loop.create_future()

        def on_hello(data: Any) -> None:
            if not hello.done():
                hello.set_result(data)

        s = Sock("/customer", {"hello": on_hello})
        t0 = time.perf_counter_ns()
        await s.connect(self.session, self.url, self._customer_auth(i))
        await asyncio.wait_for(hello, 30)
        s.handlers = {}
        return s, time.perf_counter_ns() - t0

    async def connect_warm(self, n: int) -> dict[str, Any]:
        """Sockets connected (all at once) before the RSS baseline, so that pools that
        grow with the number of connects in flight have grown already."""
        await asyncio.gather(*(self._connect_customer(i, self.warm) for i in range(n)))
        return {}

    async def connect_customers(self, start_at: float, concurrency: int) -> dict[str, Any]:
        lat: list[int] = []
        todo = iter(range(self.n_customers))
        out: list[Sock] = []

        async def run() -> None:
            for i in todo:
                lat.append(await self._connect_customer(i, out))

        await _sleep_until(start_at)
        cpu0 = time.process_time()
        t0 = time.time()
        await asyncio.gather(*(run() for _ in range(concurrency)))
        t1 = time.time()
        cpu = time.process_time() - cpu0
        self.customers = out
        return {"t0": t0, "t1": t1, "n": len(out), "lat_ns": lat, "cpu_s": cpu}

    async def start_chats(self, concurrency: int) -> dict[str, Any]:
        """Every customer starts a chat; this worker's agents accept the offers. A chat
        that does not become active (its offer or acceptance was lost on the server) is
        abandoned: that customer reconnects as a new visitor and starts again."""
        t0 = time.perf_counter()
        n = len(self.customers)
        if self.mode == "bare":
            self.session_ids = [f"bare-{self.index}-{i}" for i in range(n)]
            return {"seconds": 0.0, "restarted": 0}
        self.session_ids = [""] * n
        todo = list(range(n))
        restarted = 0
        for _attempt in range(4):
            await self._start(todo, concurrency)
            # wait while chats keep becoming active; give up on the rest after a stall
            last, stalled_at = -1, time.monotonic()
            while True:
                done = sum(1 for i in todo if self.session_ids[i] in self.active)
                if done == len(todo):
                    break
                if done != last:
                    last, stalled_at = done, time.monotonic()
                elif time.monotonic() - stalled_at > 3.0:
                    break
                await asyncio.sleep(0.05)
            todo = [i for i in todo if self.session_ids[i] not in self.active]
            if not todo:
                break
            restarted += len(todo)
            for i in todo:
                await self.customers[i].close()
                self.customers[i], _ = await self._new_customer(i)
        if todo:
            raise SocketError(f"{len(todo)} chats never became active; {self.errors[:3]}")
        return {
            "seconds": time.perf_counter() - t0,
            "restarted": restarted,
            "lost_accepts": self.lost_accepts,
        }

    async def _start(self, which: list[int], concurrency: int) -> None:
        todo = iter(which)

        async def run() -> None:
            for i in todo:
                r = await self.customers[i].call(
                    "chat.start", {"entry_point": "home", "queue_id": self.queue}
                )
                if r.get("ok"):
                    self.session_ids[i] = r["session"]["session_id"]
                else:
                    self._error(f"chat.start: {r.get('error')}")

        await asyncio.gather(*(run() for _ in range(concurrency)))

    def _payload(self, i: int, t0_ns: int) -> dict[str, Any]:
        return {
            "session_id": self.session_ids[i],
            "client_msg_id": f"w{self.index}-{next(self._msg_ids)}",
            "kind": "text",
            "text": f"m{t0_ns}",
        }

    async def _send(self, i: int, t0_ns: int, ack_lat: list[int] | None) -> bool:
        try:
            r = await self.customers[i].call("message.send", self._payload(i, t0_ns))
        except Exception as exc:
            self._error(f"message.send: {exc!r}")
            return False
        if not r.get("ok"):
            self._error(f"message.send: {r.get('error')}")
            return False
        if ack_lat is not None:
            ack_lat.append(time.perf_counter_ns() - t0_ns)
        return True

    async def _drain(self, sent_ok: int, received0: int, timeout_s: float = 20.0) -> None:
        """Wait until the agents got every acknowledged message (or the timeout)."""
        self._want = received0 + sent_ok
        if self.received < self._want:
            self._got_all.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._got_all.wait(), timeout_s)
        self._want = 1 << 62

    async def saturate(
        self, start_at: float, warm_s: float, secs: float, inflight: int
    ) -> dict[str, Any]:
        stop = False
        ok = 0
        received0 = self.received

        async def loop(i: int) -> None:
            nonlocal ok
            while not stop:
                if await self._send(i, time.perf_counter_ns(), None):
                    ok += 1
                else:
                    await asyncio.sleep(0.05)

        await _sleep_until(start_at)
        tasks = [
            asyncio.create_task(loop(i))
            for _ in range(inflight)
            for i in range(len(self.customers))
        ]
        await _sleep_until(start_at + warm_s)
        r0, cpu0, t0 = self.received, time.process_time(), time.time()
        await _sleep_until(start_at + warm_s + secs)
        r1, cpu1, t1 = self.received, time.process_time(), time.time()
        stop = True
        await asyncio.wait(tasks, timeout=30)
        await self._drain(ok, received0)
        return {
            "received": r1 - r0,
            "t0": t0,
            "t1": t1,
            "cpu_s": cpu1 - cpu0,
            "sent_ok": ok,
            "delivered": self.received - received0,
        }

    async def paced(
        self, start_at: float, warm_s: float, secs: float, rate: float
    ) -> dict[str, Any]:
        """Open loop at ``rate`` messages/s, spread over this worker's conversations."""
        interval = 1.0 / rate
        total = int((warm_s + secs) * rate)
        n = len(self.customers)
        ack_lat: list[int] = []
        self.lat_ns, self.lat_sent_ns = [], []
        received0 = self.received
        tasks: list[asyncio.Task[bool]] = []
        await _sleep_until(start_at)
        base = time.perf_counter()
        self.lat_from_ns = time.perf_counter_ns() + int(warm_s * 1e9)
        cpu0 = cpu1 = 0.0
        measuring = False
        i = 0
        while i < total:
            now = time.perf_counter()
            if not measuring and now - base >= warm_s:
                measuring, cpu0 = True, time.process_time()
            due = min(total, int((now - base) / interval) + 1)
            while i < due:
                tasks.append(
                    asyncio.create_task(
                        self._send(i % n, time.perf_counter_ns(), ack_lat if measuring else None)
                    )
                )
                i += 1
            await asyncio.sleep(max(0.0, base + i * interval - time.perf_counter()))
        cpu1 = time.process_time()
        wall = time.perf_counter() - base
        results = await asyncio.gather(*tasks)
        await self._drain(sum(results), received0)
        lat, self.lat_ns, self.lat_from_ns = self.lat_ns, [], 1 << 62
        sent, self.lat_sent_ns = self.lat_sent_ns, []
        return {
            "lat_ns": lat,
            "lat_sent_ns": sent,
            "ack_ns": ack_lat,
            "sent": total,
            "sent_ok": sum(results),
            "delivered": self.received - received0,
            "cpu_s": cpu1 - cpu0,
            "wall_s": wall,
            "measured_s": max(1e-9, wall - warm_s),
        }

    async def close(self) -> dict[str, Any]:
        socks = self.customers + self.warm + self.agents
        self.customers, self.warm, self.agents = [], [], []
        for i in range(0, len(socks), 100):
            await asyncio.gather(*(s.close() for s in socks[i : i + 100]))
        if self.session is not None:
            await self.session.close()
            self.session = None
        return {}


def worker_main(conn: Connection, index: int) -> None:
    """Entry point of a client process: run the commands the parent sends (the first,
    ``setup``, says which server and which share of the conversations)."""
    with contextlib.suppress(ValueError, OSError):
        _raise_fd_limit()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us

    async def serve() -> None:
        w: Worker | None = None
        while True:
            cmd, kwargs = await asyncio.to_thread(conn.recv)
            if cmd == "exit":
                if w is not None:
                    with contextlib.suppress(Exception):
                        await w.close()
                return
            try:
                if cmd == "setup":
                    if w is not None:
                        await w.close()
                    w = Worker(index, kwargs["cfg"])
                    result: dict[str, Any] = {}
                else:
                    assert w is not None, "setup first"
                    result = await getattr(w, cmd)(**kwargs)
                result["errors"] = w.errors
                conn.send(("ok", result))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))

    asyncio.run(serve())


_INTERRUPTED = [False]  # set by SIGTERM / Ctrl-C: clean up quickly
_LIVE_WORKERS: list[Workers] = []


class Workers:
    """The parent's handle on the client processes."""

    def __init__(self, n: int) -> None:
        _LIVE_WORKERS.append(self)
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for i in range(n):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(child, i), daemon=True)
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def setup(self, cfgs: list[dict[str, Any]]) -> None:
        for c, cfg in zip(self.conns, cfgs, strict=True):
            c.send(("setup", {"cfg": cfg}))
        self.recv()

    def send(self, cmd: str, **kwargs: Any) -> None:
        for c in self.conns:
            c.send((cmd, kwargs))

    def recv(self, timeout_s: float = 300.0) -> list[dict[str, Any]]:
        out = []
        for c in self.conns:
            if not c.poll(timeout_s):
                raise SystemExit(f"a client process did not answer within {timeout_s:.0f}s")
            status, result = c.recv()
            if status != "ok":
                raise SystemExit(f"a client process failed: {result}")
            out.append(result)
        return out

    def call(self, cmd: str, **kwargs: Any) -> list[dict[str, Any]]:
        self.send(cmd, **kwargs)
        return self.recv()

    def stop(self) -> None:
        for c in self.conns:
            with contextlib.suppress(Exception):
                c.send(("exit", {}))
        for p in self.procs:
            p.join(0.5 if _INTERRUPTED[0] else 10)
            if p.is_alive():
                p.terminate()
                p.join(5)

    def terminate(self) -> None:
        for p in self.procs:
            if p.is_alive():
                p.terminate()


# --------------------------------------------------------------------------- servers


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _get_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return int(r.status) == 200
    except Exception:
        return False


class Server:
    """A server subprocess (contactd or the bare relay) with its log in a temp file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, tmp: str):
        self.name = name
        self.port = port
        self.log_path = Path(tmp) / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(argv, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.phases: list[str] = []  # timing phases of the instrumented server

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _get_ok(f"http://127.0.0.1:{self.port}/readyz"):
                return
            time.sleep(0.1)
        raise SystemExit(f"the {self.name} server did not start:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text("utf-8", "replace").splitlines()
        return "\n".join(text[-lines:])

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/socket.io/?EIO=4&transport=websocket"

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self._log.closed:
            return self.proc.returncode
        if _INTERRUPTED[0]:
            timeout_s = min(timeout_s, 5.0)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                progress_line(f"{self.name} did not exit within {timeout_s:g}s of SIGTERM: killed")
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


def contactd_config(queues: list[str]) -> str:
    out = []
    for q in queues:
        out.append(
            f'[[queues]]\nid = "{q}"\nname = "Bench {q}"\nstrategy = "idle"\n'
            "max_waiting = 100000\noffer_timeout_s = 600\nwrap_up_s = 0\n"
        )
    return "\n".join(out)


async def create_agents(names: list[str]) -> dict[str, str]:
    """Create the agent accounts and sign each in: name → bearer token. Uses a cheap argon2
    setting for these throw-away accounts (login then sees no need to rehash)."""
    from argon2 import PasswordHasher

    from contactd.auth.passwords import Passwords
    from contactd.auth.service import AuthService
    from contactd.clock import SystemClock
    from contactd.settings import load_settings
    from contactd.storage.db import migrate, open_database

    settings = load_settings()
    engine = await open_database(settings.effective_database_url)
    try:
        await migrate(engine)
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        auth = AuthService(engine, settings, SystemClock(), passwords=Passwords(hasher))
        tokens = {}
        for name in names:
            await auth.create_user(name, AGENT_PASSWORD, "agent", f"Bench {name}")
            token, _, _ = await auth.login(name, AGENT_PASSWORD)
            tokens[name] = token
        return tokens
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- measurement


class Cpu:
    """CPU seconds of the server and Redis processes and of the whole machine."""

    def __init__(
        self, server_pid: int, redis_pid: int | None, redis_url: str | None = None
    ) -> None:
        import psutil

        self.psutil = psutil
        self.server = psutil.Process(server_pid)
        self.redis = psutil.Process(redis_pid) if redis_pid else None
        self.redis_url = redis_url  # a Redis not started here: its CPU comes from INFO

    def _redis_s(self) -> float:
        if self.redis is not None:
            t = self.redis.cpu_times()
            return float(t.user + t.system)
        if self.redis_url is None:
            return 0.0
        import redis as redis_py

        with redis_py.Redis.from_url(self.redis_url) as r:
            cpu = r.info("cpu")
        return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])

    def _tree(self) -> list[Any]:
        """The server process and its children (``--server-workers``: the workers)."""
        procs = [self.server]
        with contextlib.suppress(self.psutil.Error):
            procs += self.server.children(recursive=True)
        return procs

    def snap(self) -> dict[str, float]:
        def proc_s(p: Any) -> float:
            try:
                t = p.cpu_times()
            except self.psutil.Error:  # gone since it was listed
                return 0.0
            return float(t.user + t.system)

        m = self.psutil.cpu_times()
        busy = m.user + m.system + m.nice + getattr(m, "irq", 0) + getattr(m, "softirq", 0)
        server = main = 0.0
        n_threads = 0
        for p in self._tree():
            try:
                threads = p.threads()
            except self.psutil.Error:
                continue
            server += proc_s(p)
            main += sum(t.user_time + t.system_time for t in threads if t.id == p.pid)
            n_threads += len(threads)
        return {
            "t": time.time(),
            "server": server,
            "server_main_thread": float(main),
            "server_threads": n_threads,
            "redis": self._redis_s(),
            "machine_busy": float(busy),
        }

    def rss_kb(self) -> float:
        total = 0
        for p in self._tree():
            try:
                total += p.memory_info().rss
            except self.psutil.Error:
                continue
        return float(total) / 1024.0

    @staticmethod
    def shares(a: dict[str, float], b: dict[str, float], clients_cpu_s: list[float]) -> dict:
        wall = max(1e-9, b["t"] - a["t"])
        cpus = os.cpu_count() or 1
        server = b["server"] - a["server"]
        main = b["server_main_thread"] - a["server_main_thread"]
        return {
            "server_cpu_s": round(server, 3),
            "server_core_share": round(server / wall, 3),
            "server_main_thread_core_share": round(main / wall, 3),
            "server_other_threads_core_share": round((server - main) / wall, 3),
            "server_threads": b["server_threads"],
            "redis_core_share": round((b["redis"] - a["redis"]) / wall, 3),
            "client_core_shares": [round(c / wall, 3) for c in clients_cpu_s],
            "machine_busy_share": round((b["machine_busy"] - a["machine_busy"]) / (wall * cpus), 3),
            # cores used by processes that are not part of the benchmark
            "other_cores": round(
                max(
                    0.0,
                    b["machine_busy"]
                    - a["machine_busy"]
                    - server
                    - (b["redis"] - a["redis"])
                    - sum(clients_cpu_s),
                )
                / wall,
                3,
            ),
        }


def _sleep_until_wall(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def run_server_phases(
    name: str,
    server: Server,
    workers: Workers,
    cpu: Cpu,
    args: argparse.Namespace,
    latency_rate: float | None,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Every phase against one running server; returns its figures."""
    res: dict[str, Any] = {"server": name}
    n = args.conversations

    def redis_clients() -> int | None:
        if redis_url is None:
            return None
        import redis as redis_py

        with redis_py.Redis.from_url(redis_url) as r:
            return int(r.info("clients")["connected_clients"])

    def mark(phase: str) -> None:
        """With --sql-timings: the instrumented server starts a new timing phase."""
        if args.sql_timings and name == "contactd":
            server.phases.append(phase)
            server.proc.send_signal(signal.SIGUSR1)

    r = workers.call("connect_agents")
    progress_line(f"{name}: {args.agents} agents connected in {max(x['seconds'] for x in r):.1f}s")
    workers.call("connect_warm", n=args.warm_customers or args.connect_concurrency)
    time.sleep(args.settle_s)
    rss0 = cpu.rss_kb()
    mark("start-up")

    # connects/s -------------------------------------------------------------------
    start_at = time.time() + 0.3
    workers.send("connect_customers", start_at=start_at, concurrency=args.connect_concurrency)
    _sleep_until_wall(start_at)
    spy = start_py_spy(args, server.proc.pid, name, "connect")
    c0 = cpu.snap()
    r = workers.recv()
    c1 = cpu.snap()
    stop_py_spy(spy)
    t0, t1 = min(x["t0"] for x in r), max(x["t1"] for x in r)
    connected = sum(x["n"] for x in r)
    lat = latency_summary_ms(itertools.chain.from_iterable(x["lat_ns"] for x in r))
    res["connects_per_s"] = round(connected / (t1 - t0), 1)
    res["connect"] = {
        "sockets": connected,
        "in_flight": args.connect_concurrency * args.workers,
        "seconds": round(t1 - t0, 3),
        "p50_ms": lat["p50_ms"],
        "p99_ms": lat["p99_ms"],
        "cpu": Cpu.shares(c0, c1, [x["cpu_s"] for x in r]),
    }
    mark("connect")
    time.sleep(args.settle_s)
    rss1 = cpu.rss_kb()
    res["connect"]["server_cpu_ms_per_connect"] = round(
        1e3 * res["connect"]["cpu"]["server_cpu_s"] / connected, 3
    )
    res["rss_kb_per_conn"] = round((rss1 - rss0) / connected, 2)
    res["rss"] = {
        "before_kb": round(rss0),
        "after_kb": round(rss1),
        "idle_sockets": connected,
        "redis_clients_after_connects": redis_clients(),
        "baseline_sockets": args.agents
        + (args.warm_customers or args.connect_concurrency) * args.workers,
    }
    progress_line(
        f"{name}: {connected:,} customer sockets connected at {res['connects_per_s']:,.0f}/s "
        f"(p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms); RSS "
        f"{rss0 / 1024:.1f} → {rss1 / 1024:.1f} MiB = {res['rss_kb_per_conn']:.1f} KB per socket"
    )

    # conversations ----------------------------------------------------------------
    r = workers.call("start_chats", concurrency=args.start_concurrency)
    if name == "contactd":
        secs = max(x["seconds"] for x in r)
        restarted = sum(x["restarted"] for x in r)
        res["chat_setup"] = {
            "seconds": round(secs, 2),
            "per_s": round(n / secs, 1),
            "in_flight": args.start_concurrency * args.workers,
            "restarted": restarted,
            "lost_accepts": sum(x["lost_accepts"] for x in r),
        }
        progress_line(
            f"{name}: {n:,} chats started and accepted in {secs:.1f}s ({n / secs:,.0f}/s)"
            + (f"; {restarted} had to be restarted (lost by the server)" if restarted else "")
        )

    mark("chat set-up")

    # throughput -------------------------------------------------------------------
    start_at = time.time() + 0.3
    workers.send(
        "saturate",
        start_at=start_at,
        warm_s=args.warm_s,
        secs=args.throughput_s,
        inflight=args.inflight,
    )
    _sleep_until_wall(start_at + args.warm_s)
    mark("throughput warm-up")
    spy = start_py_spy(args, server.proc.pid, name, "throughput")
    c0 = cpu.snap()
    _sleep_until_wall(start_at + args.warm_s + args.throughput_s)
    c1 = cpu.snap()
    mark("throughput")
    stop_py_spy(spy)
    r = workers.recv()
    received = sum(x["received"] for x in r)
    wall = max(x["t1"] for x in r) - min(x["t0"] for x in r)
    per_s = received / wall
    sent_ok, delivered = sum(x["sent_ok"] for x in r), sum(x["delivered"] for x in r)
    res["relay_per_s"] = round(per_s, 1)
    res["throughput"] = {
        "in_flight": args.inflight * n,
        "seconds": round(wall, 3),
        "received": received,
        "acked_total": sent_ok,
        "delivered_total": delivered,
        "cpu": Cpu.shares(c0, c1, [x["cpu_s"] for x in r]),
        "redis_clients_after": redis_clients(),
    }
    cpu_t = res["throughput"]["cpu"]
    res["throughput"]["server_cpu_ms_per_msg"] = round(
        1e3 * cpu_t["server_cpu_s"] / max(1, received), 3
    )
    progress_line(
        f"{name}: {per_s:,.0f} messages/s relayed ({args.inflight * n:,} in flight); CPU: "
        f"server {cpu_t['server_core_share']:.0%} of a core "
        f"(main thread {cpu_t['server_main_thread_core_share']:.0%}), redis "
        f"{cpu_t['redis_core_share']:.0%}, clients "
        + "+".join(f"{c:.0%}" for c in cpu_t["client_core_shares"])
        + f", machine {cpu_t['machine_busy_share']:.0%} busy "
        f"(other processes {cpu_t['other_cores']:.0%} of a core)"
    )
    if delivered < sent_ok:
        progress_line(f"{name}: warning: {sent_ok - delivered} acknowledged messages not delivered")

    # latency ----------------------------------------------------------------------
    rate = latency_rate if latency_rate is not None else per_s * args.latency_load
    start_at = time.time() + 0.3
    workers.send(
        "paced",
        start_at=start_at,
        warm_s=args.warm_s,
        secs=args.latency_s,
        rate=rate / args.workers,
    )
    mark("throughput drain")
    _sleep_until_wall(start_at + args.warm_s)
    mark("latency warm-up")
    spy = start_py_spy(args, server.proc.pid, name, "latency")
    c0 = cpu.snap()
    _sleep_until_wall(start_at + args.warm_s + args.latency_s)
    c1 = cpu.snap()
    stop_py_spy(spy)
    mark("latency")
    r = workers.recv()
    lat = latency_summary_ms(itertools.chain.from_iterable(x["lat_ns"] for x in r))
    ack = latency_summary_ms(itertools.chain.from_iterable(x["ack_ns"] for x in r))
    achieved = sum(len(x["lat_ns"]) / x["measured_s"] for x in r)
    res["p50_ms"], res["p99_ms"] = lat["p50_ms"], lat["p99_ms"]
    res["latency"] = {
        "rate_per_s": round(rate, 1),
        "achieved_per_s": round(achieved, 1),
        "delivery": lat,
        "ack": ack,
        "sent": sum(x["sent"] for x in r),
        "acked": sum(x["sent_ok"] for x in r),
        "delivered": sum(x["delivered"] for x in r),
        "cpu": Cpu.shares(c0, c1, [x["cpu_s"] for x in r]),
    }
    # CPU per message at half load (the timed window: achieved rate × its length); it is
    # not the throughput phase's figure: per message, a server that idles between messages
    # pays more (wake-ups, smaller batches)
    cpu_l = res["latency"]["cpu"]
    res["latency"]["server_cpu_ms_per_msg"] = round(
        1e3 * cpu_l["server_cpu_s"] / max(1.0, achieved * args.latency_s), 3
    )
    progress_line(
        f"{name}: at {rate:,.0f} messages/s customer→agent p50 {lat['p50_ms']:.2f} ms "
        f"p99 {lat['p99_ms']:.2f} ms (ack p50 {ack['p50_ms']:.2f} p99 {ack['p99_ms']:.2f} ms, "
        f"{lat['samples']:,} samples); server CPU "
        f"{res['latency']['server_cpu_ms_per_msg']:.3f} ms per message, main thread "
        f"{cpu_l['server_main_thread_core_share']:.0%} of a core"
    )
    if args.timeline:
        pairs = (p for x in r for p in zip(x["lat_sent_ns"], x["lat_ns"], strict=True))
        n = write_timeline(args.timeline, name, pairs)
        progress_line(f"{name}: latency timeline ({n} buckets) written to {args.timeline}")
    errors = list(itertools.chain.from_iterable(x["errors"] for x in r))
    if errors:
        res["client_errors"] = errors[:10]
        progress_line(f"{name}: client errors: {errors[:3]}")
    workers.call("close")
    return res


# --------------------------------------------------------------------------- orchestration


def clean_env() -> tuple[dict[str, str], list[str]]:
    """This process's environment without CONTACTD_* (the benchmark sets its own)."""
    dropped = sorted(k for k in os.environ if k.startswith("CONTACTD_"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTD_")}
    return env, dropped


def worker_cfgs(
    args: argparse.Namespace, mode: str, ws_url: str, agents: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    cfgs = []
    w = args.workers
    for i in range(w):
        mine = agents[i::w]
        customers = args.conversations // w + (1 if i < args.conversations % w else 0)
        cfgs.append(
            {
                "mode": mode,
                "ws_url": ws_url,
                "agent_auth": [a for _, a in mine],
                "agent_names": [n for n, _ in mine],
                "queue": f"bench{i}",
                # spare slots: a chat whose offer the server lost still holds one
                "capacity": min(50, math.ceil(customers / len(mine)) + 3),
                "customers": customers,
            }
        )
    return cfgs


def run_contactd(
    args: argparse.Namespace,
    base_env: dict[str, str],
    redis_url: str,
    redis_pid: int | None,
    site: str,
    tmp: str,
    workers: Workers,
) -> dict[str, Any]:
    data_dir = Path(tmp) / "data"
    data_dir.mkdir()
    config = Path(tmp) / "contactd.toml"
    config.write_text(contactd_config([f"bench{i}" for i in range(args.workers)]), "utf-8")
    port = free_port()
    env = {
        **base_env,
        "CONTACTD_CONFIG": str(config),
        "CONTACTD_DATA_DIR": str(data_dir),
        "CONTACTD_PORT": str(port),
        "CONTACTD_REDIS_URL": redis_url,
        "CONTACTD_SITE": site,
        "CONTACTD_LOG_LEVEL": "WARNING",
        "CONTACTD_IM__EVENTS_PER_S": "1000",
        "CONTACTD_IM__EVENTS_BURST": "1000",
    }
    if args.database_url:
        env["CONTACTD_DATABASE_URL"] = args.database_url
    names = [f"bench{i:03d}" for i in range(args.agents)]
    t = time.perf_counter()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        tokens = asyncio.run(create_agents(names))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    progress_line(
        f"contactd: created {len(names)} agent accounts in {time.perf_counter() - t:.1f}s"
    )
    argv = [sys.executable, "-m", "contactd", "serve", "--workers", str(args.server_workers)]
    timings = Path(tmp) / "timings.json"
    if args.sql_timings:
        argv = [sys.executable, str(Path(__file__).resolve()), "--serve-instrumented", str(timings)]
    elif args.server_cprofile:
        argv = [sys.executable, "-m", "cProfile", "-o", args.server_cprofile, *argv[1:]]
    server = Server("contactd", argv, env, port, tmp)
    try:
        server.wait_ready()
        progress_line(f"contactd: serving (site {site}, pid {server.proc.pid})")
        cpu = Cpu(server.proc.pid, redis_pid, redis_url)
        agents = [(n, {"token": tokens[n]}) for n in names]
        workers.setup(worker_cfgs(args, "contactd", server.ws_url, agents))
        res = run_server_phases("contactd", server, workers, cpu, args, None, redis_url)
    finally:
        # --quick keeps to its time budget; a profile or timings need a clean exit
        graceful = args.sql_timings or args.server_cprofile or not args.quick
        code = server.stop(30.0 if graceful else 5.0)
        if args.sql_timings:
            by_phase = {}
            for i, phase in enumerate([*server.phases, "end"]):
                f = timings.with_name(f"{timings.name}.{i}") if phase != "end" else timings
                if f.exists():
                    by_phase[phase] = json.loads(f.read_text("utf-8"))
            Path(args.sql_timings).write_text(json.dumps(by_phase, indent=1), "utf-8")
            progress_line(f"contactd: SQL write timings written to {args.sql_timings}")
        if args.server_log:
            shutil.copyfile(server.log_path, args.server_log)
        if code not in (0, -signal.SIGTERM, -signal.SIGKILL):
            progress_line(f"contactd exited with {code}:\n{server.log_tail()}")
    res["server_log"] = summarize_log(server.log_path.read_text("utf-8", "replace"))
    for line, n in list(res["server_log"]["errors"].items())[:6]:
        progress_line(f"contactd log: {n:>5} × {line}")
    return res


_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (ERROR|WARNING|CRITICAL)\s+(.*)$")
_SESSION_ID = re.compile(r"\bS\d{8}-\d+\S*")
_EXC_LINE = re.compile(r"^([a-z_][\w.]*\.)?[A-Z]\w*(Error|Exception|Exhausted)\b:?")


def summarize_log(text: str) -> dict[str, dict[str, int]]:
    """Error/warning lines and exception types of a server log, counted, commonest first."""
    errors: collections.Counter[str] = collections.Counter()
    exceptions: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if m:
            what = _SESSION_ID.sub("S…", m.group(2))[:120]
            errors[f"{m.group(1)} {what}"] += 1
        elif _EXC_LINE.match(line):
            exceptions[line.split(":", 1)[0]] += 1
    return {"errors": dict(errors.most_common()), "exceptions": dict(exceptions.most_common())}


def start_bare(base_env: dict[str, str], tmp: str, count: int, redis_url: str) -> Server:
    port = free_port()
    me = str(Path(__file__).resolve())
    argv = [sys.executable, me, "--serve-bare", str(port)]
    if count > 1:
        argv = [sys.executable, me, "--serve-bare-pool", str(count), str(port), redis_url]
    return Server("bare", argv, base_env, port, tmp)


def run_bare(
    args: argparse.Namespace, server: Server, workers: Workers, latency_rate: float
) -> dict[str, Any]:
    try:
        server.wait_ready()
        progress_line(f"bare relay: serving (pid {server.proc.pid})")
        cpu = Cpu(server.proc.pid, None)
        names = [f"bench{i:03d}" for i in range(args.agents)]
        agents = [(n, {"agent": n}) for n in names]
        workers.setup(worker_cfgs(args, "bare", server.ws_url, agents))
        return run_server_phases("bare relay", server, workers, cpu, args, latency_rate)
    finally:
        server.stop()


def start_py_spy(
    args: argparse.Namespace, pid: int, server: str, phase: str
) -> subprocess.Popen[bytes] | None:
    """Sample the contactd server with py-spy during one phase (--py-spy FILE)."""
    if not args.py_spy or server != "contactd" or phase != args.py_spy_phase:
        return None
    exe = shutil.which("py-spy")
    if exe is None:
        progress_line("py-spy is not installed: no sampling profile")
        return None
    cmd = [exe, "record", "--pid", str(pid), "--rate", "200", "--format", "raw"]
    if args.py_spy_gil:
        cmd += ["--gil", "--threads"]
    return subprocess.Popen(
        [*cmd, "-o", args.py_spy],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_py_spy(spy: subprocess.Popen[bytes] | None) -> None:
    if spy is None:
        return
    spy.send_signal(signal.SIGINT)
    try:
        spy.wait(30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait(5)


def summarize(cd: dict[str, Any], bare: dict[str, Any]) -> dict[str, Any]:
    s = {
        "relay_per_s": cd["relay_per_s"],
        "bare_relay_per_s": bare["relay_per_s"],
        "ratio": round(cd["relay_per_s"] / bare["relay_per_s"], 3),
        "p50_ms": cd["p50_ms"],
        "p99_ms": cd["p99_ms"],
        "rss_kb_per_conn": cd["rss_kb_per_conn"],
        "connects_per_s": cd["connects_per_s"],
    }
    s["goals"] = {
        "relay_per_s>=2000": s["relay_per_s"] >= GOALS["relay_per_s"],
        "ratio>=0.5": s["ratio"] >= GOALS["ratio"],
        "p99_ms<=10": s["p99_ms"] <= GOALS["p99_ms"],
        "rss_kb_per_conn<=48": s["rss_kb_per_conn"] <= GOALS["rss_kb_per_conn"],
        "connects_per_s>=800": s["connects_per_s"] >= GOALS["connects_per_s"],
    }
    return s


def client_saturation(res: dict[str, Any]) -> list[str]:
    """Phases in which a client process used ≥ 90% of a core, or the machine was full."""
    notes = []
    for phase in ("connect", "throughput", "latency"):
        cpu = res[phase]["cpu"]
        if max(cpu["client_core_shares"]) >= 0.9:
            notes.append(f"{res['server']} {phase}: a client process was CPU-bound")
        if cpu["machine_busy_share"] >= 0.95:
            notes.append(
                f"{res['server']} {phase}: every core of the machine was busy "
                f"({cpu['other_cores']:.2f} cores used by processes outside the benchmark)"
            )
    return notes


def render(result: dict[str, Any]) -> str:
    cd, bare, s = result["contactd"], result["bare"], result["summary"]

    def cpu_cell(r: dict[str, Any], phase: str) -> str:
        c = r[phase]["cpu"]
        clients = "+".join(f"{x:.2f}" for x in c["client_core_shares"])
        return (
            f"server {c['server_core_share']:.2f}, redis {c['redis_core_share']:.2f}, "
            f"clients {clients}, others {c['other_cores']:.2f}"
        )

    rows = [
        ["relayed messages/s (closed loop)", f"{cd['relay_per_s']:,.0f}",
         f"{bare['relay_per_s']:,.0f}", f"ratio {s['ratio']:.2f}"],
        ["messages in flight", f"{cd['throughput']['in_flight']:,}",
         f"{bare['throughput']['in_flight']:,}", ""],
        ["latency load (messages/s)", f"{cd['latency']['rate_per_s']:,.0f}",
         f"{bare['latency']['rate_per_s']:,.0f}", "same absolute rate"],
        ["customer→agent p50 ms", f"{cd['p50_ms']:.2f}", f"{bare['p50_ms']:.2f}", ""],
        ["customer→agent p99 ms", f"{cd['p99_ms']:.2f}", f"{bare['p99_ms']:.2f}", ""],
        ["ack p50 / p99 ms",
         f"{cd['latency']['ack']['p50_ms']:.2f} / {cd['latency']['ack']['p99_ms']:.2f}",
         f"{bare['latency']['ack']['p50_ms']:.2f} / {bare['latency']['ack']['p99_ms']:.2f}", ""],
        ["connects/s", f"{cd['connects_per_s']:,.0f}", f"{bare['connects_per_s']:,.0f}", ""],
        ["connect p50 / p99 ms", f"{cd['connect']['p50_ms']:.1f} / {cd['connect']['p99_ms']:.1f}",
         f"{bare['connect']['p50_ms']:.1f} / {bare['connect']['p99_ms']:.1f}", ""],
        ["RSS per idle connection (KB)", f"{cd['rss_kb_per_conn']:.1f}",
         f"{bare['rss_kb_per_conn']:.1f}", ""],
        ["server CPU per relayed message (ms)",
         f"{cd['throughput']['server_cpu_ms_per_msg']:.2f}",
         f"{bare['throughput']['server_cpu_ms_per_msg']:.2f}", "while saturated"],
        ["server CPU per message at the latency load (ms)",
         f"{cd['latency']['server_cpu_ms_per_msg']:.2f}",
         f"{bare['latency']['server_cpu_ms_per_msg']:.2f}", "half load"],
        ["CPU at the latency load (cores)", cpu_cell(cd, "latency"), cpu_cell(bare, "latency"),
         ""],
        ["server CPU per connect (ms)", f"{cd['connect']['server_cpu_ms_per_connect']:.2f}",
         f"{bare['connect']['server_cpu_ms_per_connect']:.2f}", ""],
        ["CPU while saturated (cores)", cpu_cell(cd, "throughput"), cpu_cell(bare, "throughput"),
         ""],
        ["CPU while connecting (cores)", cpu_cell(cd, "connect"), cpu_cell(bare, "connect"), ""],
    ]  # fmt: skip
    out = []
    st = result["settings"]
    if st["quick"]:
        out.append(
            f"QUICK RUN: {st['conversations']:,} conversations (not 1,000), "
            f"{st['throughput_s']:g}s throughput and {st['latency_s']:g}s latency phases — "
            "rougher figures than the full run"
        )
        out.append("")
    out.append(format_table(["", "contactd", "bare relay", ""], rows))
    out.append("")
    out.append(
        f"{st['conversations']:,} conversations, {st['agents']} agents, {st['workers']} client "
        f"processes; chat set-up {cd['chat_setup']['per_s']:,.0f}/s"
    )
    out.append(
        "goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in s["goals"].items())
    )
    for note in result["client_saturation"]:
        out.append("note: " + note)
    log = cd.get("server_log", {})
    for line, n in list(log.get("errors", {}).items())[:4]:
        out.append(f"contactd log: {n:,} × {line}")
    for exc, n in list(log.get("exceptions", {}).items())[:3]:
        out.append(f"contactd log: {n:,} × {exc}")
    return "\n".join(out)


async def postgres_database(server_url: str, name: str, *, create: bool) -> str:
    """--postgres: a throw-away database ``name`` on that server (created, or dropped);
    returns its URL for contactd."""
    import asyncpg
    from sqlalchemy import make_url

    url = make_url(server_url)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
    )
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False)


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    _raise_fd_limit()
    base_env, dropped = clean_env()
    if dropped:
        progress_line(f"ignoring {', '.join(dropped)} from the environment")
    if args.quick:
        progress_line(
            f"quick run: {args.conversations} conversations, {args.throughput_s:g}s throughput "
            f"and {args.latency_s:g}s latency phases"
        )
    import redis as redis_py

    redis = None
    redis_url = args.redis_url
    if redis_url is None:
        redis = RedisServer()
        redis_url = redis.start()
    site = unique_site("benchim")
    tmp = tempfile.mkdtemp(prefix="contactd-bench-im-")
    workers: Workers | None = None
    bare_server: Server | None = None
    if args.postgres:
        args.database_url = asyncio.run(postgres_database(args.postgres, site, create=True))
        progress_line(f"contactd stores in PostgreSQL (database {site}, dropped afterwards)")
    try:
        with redis_py.Redis.from_url(redis_url) as r:
            ver = str(r.info("server")["redis_version"])
        progress_line(
            f"redis {ver}; {args.conversations:,} conversations, {args.agents} agents, "
            f"{args.workers} client processes, load avg {os.getloadavg()[0]:.2f}"
        )
        # the client processes and the (idle) bare relay start while contactd is set up
        workers = Workers(args.workers)
        bare_server = start_bare(base_env, tmp, args.server_workers, redis_url)
        redis_pid = redis.proc.pid if redis is not None and redis.proc is not None else None
        cd = run_contactd(args, base_env, redis_url, redis_pid, site, tmp, workers)
        bare = run_bare(args, bare_server, workers, cd["latency"]["rate_per_s"])
    finally:
        if workers is not None:
            workers.stop()
        if bare_server is not None:
            bare_server.stop()
        if redis is not None:
            redis.stop()
        else:  # someone else's Redis: leave no keys of this run's site behind
            with redis_py.Redis.from_url(redis_url) as r:
                keys = list(r.scan_iter(match=f"cd:{{{site}}}:*", count=1000))
                for i in range(0, len(keys), 1000):
                    r.unlink(*keys[i : i + 1000])
        if args.postgres:
            asyncio.run(postgres_database(args.postgres, site, create=False))
        shutil.rmtree(tmp, ignore_errors=True)
    from importlib.metadata import version

    import aiohttp

    result: dict[str, Any] = {"benchmark": "im"}
    summary = summarize(cd, bare)
    result.update({k: v for k, v in summary.items() if k != "goals"})
    result["goals"] = summary["goals"]
    result["summary"] = summary
    result["settings"] = {
        "quick": args.quick,
        "conversations": args.conversations,
        "agents": args.agents,
        "workers": args.workers,
        "server_workers": args.server_workers,
        "inflight_per_conversation": args.inflight,
        "connect_in_flight_per_worker": args.connect_concurrency,
        "warm_s": args.warm_s,
        "throughput_s": args.throughput_s,
        "latency_s": args.latency_s,
        "latency_load": args.latency_load,
        "server_env": {
            "CONTACTD_IM__EVENTS_PER_S": "1000",
            "CONTACTD_IM__EVENTS_BURST": "1000",
            "CONTACTD_LOG_LEVEL": "WARNING",
            "database": "PostgreSQL (throw-away database)"
            if args.postgres
            else "SQLite (temporary data directory)",
        },
        "private_redis": args.redis_url is None,
        "python_socketio": version("python-socketio"),
        "aiohttp": aiohttp.__version__,
    }
    result["machine"] = machine_info(ver)
    result["contactd"] = cd
    result["bare"] = bare
    result["client_saturation"] = client_saturation(cd) + client_saturation(bare)
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    progress_line(f"done in {result['elapsed_s']:.1f}s")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer conversations, shorter phases")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--conversations", type=int, help="concurrent conversations (1000)")
    ap.add_argument("--agents", type=int, help="agents sharing them (50)")
    ap.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    ap.add_argument("--workers", type=int, default=2, help="client processes (2)")
    ap.add_argument(
        "--inflight",
        type=int,
        default=1,
        help="messages in flight per conversation when saturating",
    )
    ap.add_argument("--warm-s", type=float, help="untimed warm-up before each timed phase")
    ap.add_argument("--throughput-s", type=float, help="timed seconds of the throughput phase")
    ap.add_argument("--latency-s", type=float, help="timed seconds of the latency phase")
    ap.add_argument(
        "--latency-load",
        type=float,
        default=0.5,
        help="latency load as a share of contactd's measured throughput (0.5)",
    )
    ap.add_argument(
        "--connect-concurrency", type=int, default=25, help="connects in flight per client process"
    )
    ap.add_argument(
        "--start-concurrency", type=int, default=5, help="chat.start in flight per client process"
    )
    ap.add_argument(
        "--warm-customers",
        type=int,
        help="customer sockets per client process connected before the RSS baseline "
        "(default: --connect-concurrency)",
    )
    ap.add_argument("--settle-s", type=float, help="wait before each RSS reading (1.5; quick 0.7)")
    ap.add_argument(
        "--py-spy",
        metavar="FILE",
        help="py-spy record contactd during one phase to FILE (raw format)",
    )
    ap.add_argument(
        "--py-spy-phase",
        choices=["connect", "throughput", "latency"],
        default="throughput",
        help="the phase --py-spy samples (throughput)",
    )
    ap.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="--py-spy samples only the thread holding the GIL (where the CPU goes), by thread",
    )
    ap.add_argument(
        "--server-cprofile", metavar="FILE", help="run the contactd server under cProfile"
    )
    ap.add_argument("--server-log", metavar="FILE", help="copy the contactd server's log to FILE")
    ap.add_argument(
        "--sql-timings",
        metavar="FILE",
        help="diagnosis: time contactd's SQL write transactions and group commit, write to FILE",
    )
    ap.add_argument(
        "--postgres",
        metavar="URL",
        help="contactd stores in a throw-away database on this PostgreSQL server "
        "(postgresql+asyncpg://user@host:port/db; created and dropped by the run) "
        "instead of SQLite",
    )
    ap.add_argument(
        "--timeline",
        metavar="FILE",
        help="diagnosis: the latency phase's deliveries in 100 ms buckets (count, p50, max) "
        "by send time, per server, written to FILE (JSON)",
    )
    ap.add_argument(
        "--server-workers",
        type=int,
        default=1,
        help="serving processes of each server: contactd serve --workers N; the bare relay "
        "as N processes on one port joined by python-socketio's AsyncRedisManager (1)",
    )
    ap.add_argument("--serve-bare", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--bare-redis", help=argparse.SUPPRESS)
    ap.add_argument("--serve-bare-pool", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--serve-instrumented", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.database_url = None  # --postgres: the throw-away database's, once created
    preset = QUICK if args.quick else FULL
    for k in ("conversations", "agents", "warm_s", "throughput_s", "latency_s", "settle_s"):
        if getattr(args, k) is None:
            setattr(args, k, preset[k])
    if args.agents < args.workers:
        ap.error("--agents must be at least --workers")
    if math.ceil(args.conversations / args.agents) > 47:
        ap.error("at most 47 conversations per agent (chat capacity 50): add agents")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_bare_pool is not None:
        count, port, redis_url = args.serve_bare_pool
        serve_bare_pool(int(count), int(port), redis_url)
        return
    if args.serve_bare is not None:
        serve_bare(args.serve_bare, args.bare_redis)
        return 0
    if args.serve_instrumented is not None:
        serve_contactd_instrumented(args.serve_instrumented)
        return 0

    def on_signal(signum: int, frame: Any) -> None:
        if _INTERRUPTED[0]:
            return  # already cleaning up
        _INTERRUPTED[0] = True
        for w in _LIVE_WORKERS:  # stop the load first
            w.terminate()
        raise KeyboardInterrupt  # unwinds through the clean-up of servers and Redis

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = run(args)
    except KeyboardInterrupt:
        progress_line("interrupted: servers, clients and Redis stopped")
        return 130
    if args.json:
        print_json(result)
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
