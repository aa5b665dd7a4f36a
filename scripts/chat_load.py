"""Chat load for a running contactd: simulated customers start chats, some give up while
waiting, simulated agents accept, reply and end them. Open /supervisor while it runs to
watch the floor move (queues fill and drain, agents change state, SL moves).

    python scripts/chat_load.py --url http://127.0.0.1:8080 --agents agent1,agent2,agent3 \\
        --rate 0.5 --duration 300

Agents sign in with --password (the demo's by default: `contactd seed-demo` creates them).
Everything random comes from --seed, so a run can be repeated. Prints one line every
--report-every seconds and a summary at the end (--json: the summary as one JSON object).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import socketio

ENTRY_POINTS = ("home", "product_page", "order_page")
QUESTIONS = ("耳机左边没有声音", "什么时候发货？", "能开发票吗", "想退货", "优惠券用不了")
REPLIES = ("您好，马上为您查询", "请稍等", "已为您处理好了", "还有其他可以帮您的吗？")


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)

    def error(self, where: str, exc: BaseException) -> None:
        self.counts["errors"] += 1
        self.problems[f"{where}: {type(exc).__name__} {exc}"[:120]] += 1

    waits: list[float] = field(default_factory=list)

    def line(self, elapsed: float) -> str:
        c = self.counts
        return (
            f"{elapsed:6.0f}s started={c['started']} answered={c['answered']} "
            f"abandoned={c['abandoned']} ended={c['ended']} refused={c['refused']} "
            f"errors={c['errors']}"
        )


async def _login(url: str, username: str, password: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            url + "/api/v1/auth/login", json={"username": username, "password": password}
        ) as r,
    ):
        body = await r.json()
        if r.status != 200:
            raise SystemExit(f"cannot sign in {username}: {body['error']['message']}")
        return str(body["token"])


async def agent(
    url: str, username: str, password: str, rng: random.Random, tally: Tally, stop: asyncio.Event
) -> None:
    sio = socketio.AsyncClient(reconnection=True)
    token = await _login(url, username, password)
    busy: set[str] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def handle(offer: dict[str, Any]) -> None:
        await asyncio.sleep(rng.uniform(0.5, 4.0))  # reading the screen pop
        ack = await sio.call("offer.accept", {"offer_id": offer["offer_id"]}, namespace="/agent")
        if not ack.get("ok"):
            return
        sid = offer["session"]["session_id"]
        busy.add(sid)
        try:
            for i in range(rng.randint(1, 3)):
                await asyncio.sleep(rng.uniform(2, 8))
                await sio.call(
                    "message.send",
                    {
                        "session_id": sid,
                        "client_msg_id": f"{username}-{sid}-{i}",
                        "text": rng.choice(REPLIES),
                    },
                    namespace="/agent",
                )
            await sio.call("session.end", {"session_id": sid}, namespace="/agent")
            await sio.call("wrapup.done", {"session_id": sid}, namespace="/agent")
        except Exception as exc:
            tally.error("agent", exc)
        finally:
            busy.discard(sid)

    @sio.on("offer", namespace="/agent")  # type: ignore[untyped-decorator]
    async def on_offer(data: dict[str, Any]) -> None:
        if rng.random() < 0.1:  # sometimes an agent lets an offer go
            await sio.call("offer.decline", {"offer_id": data["offer_id"]}, namespace="/agent")
            return
        task = asyncio.create_task(handle(data))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    await sio.connect(url, namespaces=["/agent"], transports=["websocket"], auth={"token": token})
    await sio.call("agent.login", {"state": "available"}, namespace="/agent")
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(20, 60))
        if stop.is_set():
            break
        if rng.random() < 0.3:  # a short break now and then
            await sio.call("agent.state", {"state": "away", "reason": "break"}, namespace="/agent")
            await asyncio.sleep(rng.uniform(5, 20))
            await sio.call("agent.state", {"state": "available"}, namespace="/agent")
    if tasks:  # finish the chats in hand before signing out
        await asyncio.wait(set(tasks), timeout=60)
    await sio.call("agent.state", {"state": "offline"}, namespace="/agent")
    await sio.disconnect()


async def customer(url: str, n: int, rng: random.Random, tally: Tally) -> None:
    sio = socketio.AsyncClient(reconnection=False)
    answered = asyncio.Event()
    ended = asyncio.Event()

    @sio.on("session.updated", namespace="/customer")  # type: ignore[untyped-decorator]
    async def on_session(data: dict[str, Any]) -> None:
        state = data["session"]["state"]
        if state == "active":
            answered.set()
        elif state == "ended":
            ended.set()

    try:
        await sio.connect(url, namespaces=["/customer"], transports=["websocket"], auth={})
        ack = await sio.call(
            "chat.start",
            {"entry_point": rng.choice(ENTRY_POINTS), "question": rng.choice(QUESTIONS)},
            namespace="/customer",
        )
        if not ack.get("ok"):
            tally.counts["refused"] += 1
            tally.problems[f"refused: {ack.get('error', {}).get('code')}"] += 1
            return
        tally.counts["started"] += 1
        sid = ack["session"]["session_id"]
        started = time.monotonic()
        patience = rng.uniform(10, 120)
        try:
            await asyncio.wait_for(answered.wait(), patience)
        except TimeoutError:
            await sio.call("chat.end", {"session_id": sid}, namespace="/customer")
            tally.counts["abandoned"] += 1
            return
        tally.counts["answered"] += 1
        tally.waits.append(time.monotonic() - started)
        await sio.call(
            "message.send",
            {"session_id": sid, "client_msg_id": f"c{n}", "text": "好的，谢谢"},
            namespace="/customer",
        )
        await asyncio.wait_for(ended.wait(), 600)
        tally.counts["ended"] += 1
    except Exception as exc:
        tally.error("customer", exc)
    finally:
        await sio.disconnect()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tally = Tally()
    stop = asyncio.Event()
    agents = [
        asyncio.create_task(
            agent(args.url, name, args.password, random.Random(rng.random()), tally, stop)
        )
        for name in args.agents.split(",")
        if name
    ]
    customers: list[asyncio.Task[None]] = []
    started = time.monotonic()
    next_report = args.report_every
    n = 0
    while (elapsed := time.monotonic() - started) < args.duration:
        await asyncio.sleep(rng.expovariate(args.rate))
        customers.append(
            asyncio.create_task(customer(args.url, n, random.Random(rng.random()), tally))
        )
        n += 1
        if elapsed >= next_report and not args.json:
            print(tally.line(elapsed), flush=True)
            next_report += args.report_every
    await asyncio.wait(customers, timeout=args.drain_s) if customers else None
    stop.set()
    await asyncio.gather(*agents, return_exceptions=True)
    waits = sorted(tally.waits)
    return {
        **dict(tally.counts),
        "duration_s": round(time.monotonic() - started, 1),
        "wait_p50_s": round(waits[len(waits) // 2], 2) if waits else None,
        "wait_max_s": round(waits[-1], 2) if waits else None,
        "problems": dict(tally.problems),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8080")
    p.add_argument("--agents", default="agent1,agent2,agent3", help="comma-separated usernames")
    p.add_argument("--password", default="contactd-demo")
    p.add_argument("--rate", type=float, default=0.5, help="new chats per second (Poisson)")
    p.add_argument("--duration", type=float, default=300, help="seconds of arrivals")
    p.add_argument("--drain-s", type=float, default=120, help="then wait this long for chats")
    p.add_argument("--report-every", type=float, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print only the summary, as JSON")
    args = p.parse_args()
    summary = asyncio.run(run(args))
    print(json.dumps(summary) if args.json else f"summary: {summary}")


if __name__ == "__main__":
    main()
