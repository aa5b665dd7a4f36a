"""Two real ``python -m contactd serve`` processes sharing one SQLite database and one Redis:
customers on one node talk to agents on the other, and losing a node (SIGKILL) loses no
queued customer and no stored message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from tests.chat_helpers import Payload, Peer, identity, login, rest_get, seqs, wait_for
from tests.conftest import free_port

SECRET = "cluster-identity-secret"
PASSWORD = "contactd-demo"  # seed-demo's accounts
ORDER = "O2026112300000001"  # seed-demo's u1001 order


def _config(site: str) -> str:
    return f"""
site = "{site}"
log_level = "WARNING"
argon2_time_cost = 1
argon2_memory_kib = 1024

[routing]
sweep_interval_s = 0.1

[im]
identity_secret = "{SECRET}"

[im.entry_points]
home = "sales"
order_page = "sales"

[[queues]]
id = "sales"
name = "Sales"
strategy = "idle"
wrap_up_s = 0
"""


class Node:
    """One server process."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.env = env
        self.log = log
        self.port = int(env["CONTACTD_PORT"])
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "contactd",
                "serve",
                env=self.env,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
            )

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    async def ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while True:
                assert self.proc is not None and self.proc.returncode is None, (
                    f"node {self.name} exited:\n{self.log_tail()}"
                )
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base + "/readyz") as r:
                        if r.status == 200:
                            return
                assert time.monotonic() < deadline, (
                    f"node {self.name} not ready:\n{self.log_tail()}"
                )
                await asyncio.sleep(0.1)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``grace_s``."""
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), grace_s)
        except TimeoutError:
            await self.kill()
            return None


async def _peer(node: Node, namespace: str, auth: Payload | None, peers: list[Peer]) -> Peer:
    peer = Peer(namespace)
    peers.append(peer)
    await peer.connect(node.base, auth)
    if namespace == "/customer":
        await peer.wait("hello")
    return peer


async def _send(peer: Peer, sid: str, cmid: str, text: str) -> Payload:
    ack = await peer.ok("message.send", {"session_id": sid, "client_msg_id": cmid, "text": text})
    message: Payload = ack["message"]
    return message


@contextlib.asynccontextmanager
async def _cluster(
    tmp_path: Path, redis_url: str, site: str, redis: Redis
) -> AsyncIterator[tuple[Node, Node, list[Peer]]]:
    """Nodes A and B on one seeded database and one Redis; yields them and a list where
    the test puts its socket peers (all disconnected at the end)."""
    data = tmp_path / "data"
    config = tmp_path / "contactd.toml"
    config.write_text(_config(site))
    base_env = {
        **os.environ,
        "CONTACTD_CONFIG": str(config),
        "CONTACTD_DATA_DIR": str(data),
        "CONTACTD_REDIS_URL": redis_url,
        # one key for visitor tokens on every node (a token issued by A verifies on B)
        "CONTACTD_SECRET_KEY": "cluster-test-secret-key-0123456789abcdef",
    }
    seed = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "contactd",
        "seed-demo",
        env=base_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(seed.communicate(), 60)
    assert seed.returncode == 0, out.decode()

    a = Node("A", {**base_env, "CONTACTD_PORT": str(free_port())}, tmp_path / "a.log")
    b = Node("B", {**base_env, "CONTACTD_PORT": str(free_port())}, tmp_path / "b.log")
    peers: list[Peer] = []
    try:
        await asyncio.gather(a.start(), b.start())
        await asyncio.gather(a.ready(), b.ready())
        yield a, b, peers
    finally:
        for peer in peers:
            with contextlib.suppress(Exception):
                await peer.disconnect()
        await a.kill()
        await b.stop()
        keys = [k async for k in redis.scan_iter(match=f"cd:{{{site}}}:*", count=1000)]
        if keys:
            await redis.delete(*keys)


async def test_two_nodes_share_chats_and_survive_losing_one(
    tmp_path: Path, redis_url: str, site: str, redis: Redis
) -> None:
    async with _cluster(tmp_path, redis_url, site, redis) as (a, b, peers):
        token = await login(b.base, "agent1", PASSWORD)
        agent = await _peer(b, "/agent", {"token": token}, peers)
        await agent.ok("agent.login", {"queues": ["sales"], "capacity": {"chat": 1}})

        # 1. a whole conversation across the nodes: customer on A, agent on B ------------
        c1 = await _peer(a, "/customer", identity(SECRET, "u1001", "张三"), peers)
        s1 = (
            await c1.ok(
                "chat.start",
                {
                    "entry_point": "order_page",
                    "order_no": "O2026112300000001",
                    "question": "到哪了",
                },
            )
        )["session"]["session_id"]
        offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == s1)
        assert offer["screen_pop"]["customer"]["name"] == "张三"
        assert offer["screen_pop"]["customer"]["phone"] == "138****1234"
        await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
        await c1.wait("session.updated", lambda d: d["session"]["state"] == "active")
        m = await _send(agent, s1, "a1", "您好")
        await c1.wait("message", lambda d: d["message"]["id"] == m["id"])
        m = await _send(c1, s1, "c1", "谢谢")
        await agent.wait("message", lambda d: d["message"]["id"] == m["id"])
        await c1.ok("typing", {"session_id": s1, "on": True})
        assert (await agent.wait("typing"))["sender"]["type"] == "customer"
        await agent.ok("typing", {"session_id": s1, "on": True})
        assert (await c1.wait("typing"))["sender"]["type"] == "agent"
        await agent.ok("session.end", {"session_id": s1})
        await c1.wait("session.updated", lambda d: d["session"]["state"] == "ended")
        await c1.ok("rating.submit", {"session_id": s1, "score": 5})

        # 2. an active chat and a queued customer, both on A --------------------------
        c2 = await _peer(a, "/customer", None, peers)
        t2 = c2.got("hello")[0]["visitor_token"]
        s2 = (await c2.ok("chat.start", {"entry_point": "home"}))["session"]["session_id"]
        offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == s2)
        await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
        await c2.wait("session.updated", lambda d: d["session"]["state"] == "active")
        acked: list[Payload] = []
        for i in range(5):
            acked.append(await _send(agent, s2, f"a{i}", f"agent {i}"))
            acked.append(await _send(c2, s2, f"c{i}", f"customer {i}"))
        await c2.wait("message", lambda d: d["message"]["id"] == acked[-2]["id"])
        seen = max(seqs([d["message"] for d in c2.got("message")]))

        c3 = await _peer(a, "/customer", None, peers)
        t3 = c3.got("hello")[0]["visitor_token"]
        queued = (await c3.ok("chat.start", {"entry_point": "home", "question": "有人吗"}))[
            "session"
        ]
        s3 = queued["session_id"]
        assert queued["state"] == "queued" and queued["position"] == 0  # the agent is full

        # 3. node A dies -------------------------------------------------------------
        await a.kill()
        await wait_for(lambda: not c2.connected and not c3.connected, 10, "A's sockets to drop")
        # the agent on B carries on; these are stored while the customer is away
        while_away = [await _send(agent, s2, f"away{i}", f"稍等 {i}") for i in range(3)]

        r2 = await _peer(b, "/customer", {"visitor_token": t2}, peers)
        hello = r2.got("hello")[0]["session"]
        assert hello["session_id"] == s2 and hello["state"] == "active"
        assert hello["agent"]["id"] == "agent1"
        synced = await r2.ok("sync", {"session_id": s2, "after_seq": seen})
        missed = [x for x in acked if x["seq"] > seen] + while_away
        assert [x["id"] for x in synced["messages"]] == [x["id"] for x in missed]
        r3 = await _peer(b, "/customer", {"visitor_token": t3}, peers)
        hello3 = r3.got("hello")[0]["session"]
        assert hello3["session_id"] == s3 and hello3["state"] in ("queued", "offered")
        synced3 = await r3.ok("sync", {"session_id": s3, "after_seq": 0})
        assert [x["text"] for x in synced3["messages"]] == ["有人吗"]

        # the conversation resumes on B; seq continues without a gap
        last = synced["messages"][-1]["seq"]
        resumed = await _send(r2, s2, "back", "我回来了")
        assert resumed["seq"] == last + 1
        await agent.wait("message", lambda d: d["message"]["id"] == resumed["id"])
        reply = await _send(agent, s2, "ok", "好的")
        await r2.wait("message", lambda d: d["message"]["id"] == reply["id"])

        # the queued customer was not lost: the agent frees up and gets them
        await agent.ok("session.end", {"session_id": s2})
        offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == s3)
        await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
        await r3.wait("session.updated", lambda d: d["session"]["state"] == "active")
        hi = await _send(agent, s3, "hi", "久等了")
        await r3.wait("message", lambda d: d["message"]["id"] == hi["id"])

        # every acknowledged message is stored, once, gap-free
        for sid, expected in ((s2, [*acked, *while_away, resumed, reply]), (s3, [hi])):
            status, detail = await rest_get(b.base, f"/api/v1/sessions/{sid}", token)
            assert status == 200, detail
            stored = detail["messages"]
            assert seqs(stored) == list(range(1, len(stored) + 1))
            ids = [x["id"] for x in stored]
            assert len(set(ids)) == len(ids)
            assert [x["id"] for x in expected] == [
                i for i in ids if i in {x["id"] for x in expected}
            ]
        status, detail = await rest_get(b.base, f"/api/v1/sessions/{s1}", token)
        assert detail["session"]["rating"] == 5 and detail["session"]["state"] == "ended"


async def test_a_chat_moved_or_ended_on_one_node_is_seen_at_once_on_the_other(
    tmp_path: Path, redis_url: str, site: str, redis: Redis
) -> None:
    """A node checks who may post against its last-seen copy of the session (no database
    read per message). Here node A's copy goes stale — the chat is accepted, transferred
    and ended on node B — and A must still let exactly the right people post, at once."""
    async with _cluster(tmp_path, redis_url, site, redis) as (a, b, peers):
        t1 = await login(b.base, "agent1", PASSWORD)
        t2 = await login(b.base, "agent2", PASSWORD)
        one_b = await _peer(b, "/agent", {"token": t1}, peers)  # agent1 works on B...
        one_a = await _peer(a, "/agent", {"token": t1}, peers)  # ...with a second tab on A
        two_b = await _peer(b, "/agent", {"token": t2}, peers)
        two_a = await _peer(a, "/agent", {"token": t2}, peers)
        await one_b.ok("agent.login", {"queues": ["sales"], "capacity": {"chat": 1}})
        customer = await _peer(a, "/customer", None, peers)
        sid = (await customer.ok("chat.start", {"entry_point": "home"}))["session"]["session_id"]

        # accepted on B: A last saw it queued, without an agent
        offer = await one_b.wait("offer", lambda d: d["session"]["session_id"] == sid)
        await one_b.ok("offer.accept", {"offer_id": offer["offer_id"]})
        hello = await _send(one_a, sid, "a1", "您好")
        await customer.wait("message", lambda d: d["message"]["id"] == hello["id"])
        asked = await _send(customer, sid, "c1", "在吗")
        await one_a.wait("message", lambda d: d["message"]["id"] == asked["id"])

        # transferred to agent2 and accepted, both on B: A's copy still names agent1
        await two_b.ok("agent.login", {"queues": ["sales"], "capacity": {"chat": 1}})
        await one_b.ok("session.transfer", {"session_id": sid, "agent_id": "agent2"})
        offer = await two_b.wait("offer", lambda d: d["session"]["session_id"] == sid)
        await two_b.ok("offer.accept", {"offer_id": offer["offer_id"]})
        late = {"session_id": sid, "client_msg_id": "a2", "text": "还是我"}
        assert await one_a.error("message.send", late) == "not_found"
        took_over = await _send(two_a, sid, "b1", "我是客服二")
        await customer.wait("message", lambda d: d["message"]["id"] == took_over["id"])
        mark = one_a.mark()
        thanks = await _send(customer, sid, "c2", "好的")
        await two_a.wait("message", lambda d: d["message"]["id"] == thanks["id"])
        await two_b.wait("message", lambda d: d["message"]["id"] == thanks["id"])
        assert thanks["id"] not in {d["message"]["id"] for d in one_a.got("message", mark)}

        # ended on B: nobody posts to it through A any more
        await two_b.ok("session.end", {"session_id": sid})
        after = {"session_id": sid, "client_msg_id": "c3", "text": "还有一个问题"}
        assert await customer.error("message.send", after) == "contact_finished"
        after = {"session_id": sid, "client_msg_id": "b2", "text": "再见"}
        assert await two_a.error("message.send", after) == "contact_not_active"

        status, detail = await rest_get(b.base, f"/api/v1/sessions/{sid}", t1)
        assert status == 200, detail
        mine = [m["client_msg_id"] for m in detail["messages"] if m["sender"]["type"] != "system"]
        assert mine == ["a1", "c1", "b1", "c2"]
