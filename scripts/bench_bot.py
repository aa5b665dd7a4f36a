"""Bot front line benchmark: customer questions answered by contactd's bot, against a bare
python-socketio server that answers from a dict.

What one "answer" is here: a customer socket in a bot-first chat sends ``message.send``
(a question, with an acknowledgement) on ``/customer``; contactd validates it, stores it
(the message log, group-committed to SQL with its ``seq``), checks the hand-over rules,
searches the knowledge base (the demo FAQs, Chinese and English: TF-IDF over CJK bigrams
and stemmed words), stores the bot's answer as the next message, pushes it as
``message`` and pushes the chips as ``bot.prompt``. It counts when the customer's socket
has received the bot's answer. The questions are the demo entries' own wordings (zh and
en, in turn), so every one is answered and nobody is handed over.

The bare baseline is a minimal ``socketio.AsyncServer`` on aiohttp in its own process with
the same transport settings: ``message.send`` looks the text up in a dict, emits the
answer as ``message`` to the sender and acknowledges. No storage, no search, no Redis.

1. **answers/s**: closed loop, every customer keeps one question in flight (a person
   waits for the answer before asking the next); answers received ÷ the window.
2. **latency**: open loop at ``--latency-load`` (0.5) of contactd's measured rate,
   spread over the customers; question sent → answer received, p50/p99. The bare server
   is timed at the same absolute rate.

contactd runs as ``python -m contactd serve`` in a subprocess after ``contactd
seed-demo`` (demo FAQs), with a temporary data directory (SQLite), a fresh site, a private
redis-server, log level WARNING, the per-connection event limit raised to 1000/s and
``bot.first_queues = ["presales"]``.

Usage::

    python scripts/bench_bot.py            # 100 customers, 15 s + 15 s, a table
    python scripts/bench_bot.py --quick    # 30 customers, 5 s + 5 s: under 45 s
    python scripts/bench_bot.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench_common import (
    CpuWatch,
    RedisServer,
    format_table,
    free_port,
    latency_summary_ms,
    machine_info,
    paced,
    print_json,
    progress_line,
    stop,
    unique_site,
    wait_ready,
)

from contactd.channels.bot.demo import DEMO_FAQS

QUESTIONS: dict[str, str] = {q: f.answer for f in DEMO_FAQS for q in (f.question, *f.variants)}


# --------------------------------------------------------------------------- servers


def bare_server(port: int) -> None:
    """The baseline: look the question up, answer it to the sender."""
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", transports=["websocket"], ping_interval=15)
    app = web.Application()
    sio.attach(app)
    seqs: dict[str, int] = {}

    @sio.on("connect", namespace="/customer")  # type: ignore[misc]
    async def connect(sid: str, environ: Any, auth: Any) -> None:
        seqs[sid] = 0
        await sio.emit("hello", {"session": None}, to=sid, namespace="/customer")

    @sio.on("chat.start", namespace="/customer")  # type: ignore[misc]
    async def start(sid: str, data: Any) -> Any:
        seqs[sid] += 1
        greeting = {"seq": seqs[sid], "sender": {"type": "bot"}, "kind": "text", "text": "hi"}
        await sio.emit("message", {"message": greeting}, to=sid, namespace="/customer")
        return {"ok": True, "session": {"session_id": sid, "state": "bot"}}

    @sio.on("message.send", namespace="/customer")  # type: ignore[misc]
    async def send(sid: str, data: Any) -> Any:
        seqs[sid] += 2
        answer = QUESTIONS.get(data.get("text", ""), "?")
        msg = {"seq": seqs[sid], "sender": {"type": "bot"}, "kind": "text", "text": answer}
        await sio.emit("message", {"message": msg}, to=sid, namespace="/customer")
        return {"ok": True, "message": {"seq": seqs[sid] - 1}}

    app.router.add_get("/readyz", lambda _: web.Response(text="ok"))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def contactd_env(tmp: str, redis_url: str, site: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTACTD_")}
    env.update(
        CONTACTD_DATA_DIR=str(Path(tmp) / "data"),
        CONTACTD_REDIS_URL=redis_url,
        CONTACTD_SITE=site,
        CONTACTD_PORT=str(port),
        CONTACTD_LOG_LEVEL="WARNING",
        CONTACTD_ARGON2_TIME_COST="1",  # demo accounts only: seed-demo runs faster
        CONTACTD_ARGON2_MEMORY_KIB="1024",
        CONTACTD_IM__EVENTS_PER_S="1000",
        CONTACTD_IM__EVENTS_BURST="1000",
        CONTACTD_BOT__FIRST_QUEUES='["presales"]',
    )
    return env


# --------------------------------------------------------------------------- load


class Customer:
    """One customer socket in a bot chat; ``ask`` sends a question and waits for the
    bot's answer."""

    def __init__(self, n: int) -> None:
        import socketio

        self.client = socketio.AsyncClient(reconnection=False)
        self.sid = ""
        self.n = n
        self.waiter: asyncio.Future[str] | None = None
        self.sent = itertools.count()
        self.questions = itertools.cycle(list(QUESTIONS)[n % len(QUESTIONS) :] + list(QUESTIONS))
        self.client.on("message", self._on_message, namespace="/customer")

    async def _on_message(self, data: Any) -> None:
        m = data.get("message") or {}
        if m.get("sender", {}).get("type") == "bot" and self.waiter and not self.waiter.done():
            self.waiter.set_result(str(m.get("text")))

    async def open(self, url: str) -> None:
        hello: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.client.on("hello", lambda _: hello.done() or hello.set_result(None), "/customer")
        await self.client.connect(url, namespaces=["/customer"], transports=["websocket"], auth={})
        await asyncio.wait_for(hello, 10)
        self.waiter = asyncio.get_running_loop().create_future()  # the greeting
        ack = await self.client.call("chat.start", {"entry_point": "home"}, "/customer", 10)
        if not ack.get("ok"):
            raise SystemExit(f"chat.start failed: {ack}")
        self.sid = ack["session"]["session_id"]
        if ack["session"]["state"] != "bot":
            raise SystemExit("the chat did not start with the bot")
        await asyncio.wait_for(self.waiter, 10)

    async def ask(self) -> bool:
        question = next(self.questions)
        self.waiter = asyncio.get_running_loop().create_future()
        payload = {
            "session_id": self.sid,
            "client_msg_id": f"b{self.n}-{next(self.sent)}",
            "kind": "text",
            "text": question,
        }
        ack = await self.client.call("message.send", payload, "/customer", 10)
        answer = await asyncio.wait_for(self.waiter, 10)
        return bool(ack.get("ok")) and answer == QUESTIONS[question]


async def run_against(
    url: str, customers: int, window_s: float, rate: float | None, load: float
) -> dict[str, Any]:
    """Closed loop for ``window_s``, then open loop at ``rate`` (or ``load`` × the closed
    loop's rate) for as long."""
    crowd = [Customer(i) for i in range(customers)]
    await asyncio.gather(*(c.open(url) for c in crowd))
    wrong = 0

    async def asker(c: Customer, until: float, counter: list[int]) -> None:
        nonlocal wrong
        while time.perf_counter() < until:
            if await c.ask():
                counter[0] += 1
            else:
                wrong += 1

    await asyncio.gather(*(c.ask() for c in crowd))  # warm-up: one question each
    counter = [0]
    t0 = time.perf_counter()
    await asyncio.gather(*(asker(c, t0 + window_s, counter) for c in crowd))
    per_s = counter[0] / (time.perf_counter() - t0)
    rate = rate or per_s * load
    free: asyncio.Queue[Customer] = asyncio.Queue()
    for c in crowd:
        free.put_nowait(c)

    async def one() -> None:
        nonlocal wrong
        c = await free.get()
        try:
            if not await c.ask():
                wrong += 1
        finally:
            free.put_nowait(c)

    samples: list[int] = []
    await paced(one, max(1, int(rate * window_s)), rate, samples, max_in_flight=customers)
    await asyncio.gather(*(c.client.disconnect() for c in crowd))
    for c in crowd:  # python-socketio leaves its aiohttp session to the garbage collector
        http = getattr(c.client.eio, "http", None)
        if http is not None and not http.closed:
            await http.close()
    return {
        "answers_per_s": round(per_s, 1),
        "latency": latency_summary_ms(samples),
        "latency_rate_per_s": round(rate, 1),
        "wrong": wrong,
    }


def measure(
    url: str, customers: int, window_s: float, rate: float | None, load: float
) -> dict[str, Any]:
    return asyncio.run(run_against(url, customers, window_s, rate, load))


def search_speed(entries: int = 1000, variants: int = 5, queries: int = 2000) -> dict[str, Any]:
    """The knowledge-base search alone, in this process: the demo entries plus
    ``entries`` generated ones (half Chinese, half English, ``variants`` wordings each)."""
    import random

    from contactd.channels.bot.text import TfIdfIndex

    rng = random.Random(7)
    zh = "退款发票运费物流快递订单地址积分会员优惠券售后换货质量包装颜色尺码价格活动支付登录密码"
    en = [
        "refund",
        "invoice",
        "shipping",
        "order",
        "address",
        "points",
        "member",
        "coupon",
        "return",
        "exchange",
        "quality",
        "package",
        "colour",
        "size",
        "price",
        "payment",
        "login",
        "password",
        "cancel",
        "delivery",
    ]
    docs = [(i, v) for i, f in enumerate(DEMO_FAQS) for v in (f.question, *f.variants)]
    for k in range(entries):
        for _ in range(variants):
            if k % 2:
                text = "".join(rng.choice(zh) for _ in range(rng.randint(5, 12)))
            else:
                text = " ".join(rng.choice(en) for _ in range(rng.randint(3, 7)))
            docs.append((100 + k, text))
    t0 = time.perf_counter()
    index = TfIdfIndex(docs)
    build = time.perf_counter() - t0
    asked = list(QUESTIONS)
    t0 = time.perf_counter()
    for i in range(queries):
        index.search(asked[i % len(asked)])
    per_query = (time.perf_counter() - t0) / queries
    return {
        "documents": len(docs),
        "index_build_ms": round(build * 1000, 1),
        "search_us": round(per_query * 1e6, 1),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small and short: under 45 s")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.add_argument("--customers", type=int)
    p.add_argument("--window-s", type=float)
    p.add_argument("--latency-load", type=float, default=0.5)
    p.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return
    customers = args.customers or (30 if args.quick else 100)
    window = args.window_s or (5.0 if args.quick else 15.0)

    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="contactd-bench-bot-") as tmp:
        port = free_port()
        env = contactd_env(tmp, redis.url, unique_site("bbot"), port)
        progress_line("seeding the demo data (FAQs, shop)")
        subprocess.run(
            [sys.executable, "-m", "contactd", "seed-demo"],
            env=env,
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen([sys.executable, "-m", "contactd", "serve"], env=env)
        bare_port = free_port()
        bare = subprocess.Popen([sys.executable, __file__, "--bare-server", str(bare_port)])
        cd_url, bare_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        try:
            wait_ready(cd_url, server)
            wait_ready(bare_url, bare)
            watch = CpuWatch()
            watch.start()
            progress_line(f"contactd: {customers} customers, {window:.0f} s + {window:.0f} s")
            cd = measure(cd_url, customers, window, None, args.latency_load)
            rate = cd["latency_rate_per_s"]
            progress_line(f"bare: {customers} customers, {window:.0f} s + {window:.0f} s")
            bare_res = measure(bare_url, customers, window, rate, args.latency_load)
            cpu = watch.stop(0.0)
        finally:
            stop(server)
            stop(bare)

    result = {
        "bot_answers_per_s": cd["answers_per_s"],
        "bare_answers_per_s": bare_res["answers_per_s"],
        "ratio": round(cd["answers_per_s"] / bare_res["answers_per_s"], 3),
        "p50_ms": cd["latency"]["p50_ms"],
        "p99_ms": cd["latency"]["p99_ms"],
        "bare_p50_ms": bare_res["latency"]["p50_ms"],
        "bare_p99_ms": bare_res["latency"]["p99_ms"],
        "latency_rate_per_s": cd["latency_rate_per_s"],
        "wrong_answers": cd["wrong"] + bare_res["wrong"],
        "search": search_speed(),
        "customers": customers,
        "window_s": window,
        "cpu": cpu,
        "machine": machine_info(),
    }
    if args.json:
        print_json(result)
        return
    print(
        format_table(
            ["server", "answers/s", f"p50 ms @{rate:.0f}/s", "p99 ms", "wrong"],
            [
                [
                    "contactd bot",
                    cd["answers_per_s"],
                    cd["latency"]["p50_ms"],
                    cd["latency"]["p99_ms"],
                    cd["wrong"],
                ],
                [
                    "bare socket.io dict",
                    bare_res["answers_per_s"],
                    bare_res["latency"]["p50_ms"],
                    bare_res["latency"]["p99_ms"],
                    bare_res["wrong"],
                ],
            ],
        )
    )
    sr = result["search"]
    print(
        f"\nknowledge-base search alone: {sr['search_us']} µs per question over "
        f"{sr['documents']} wordings (index built in {sr['index_build_ms']} ms)"
    )
    print(
        f"ratio {result['ratio']} · machine busy share {cpu['machine_busy_share']} "
        f"(others {cpu['other_cpu_share']}) · {json.dumps(result['machine'])}"
    )


if __name__ == "__main__":
    main()
