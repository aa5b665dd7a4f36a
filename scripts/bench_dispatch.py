"""Dispatch benchmark: the routing engine's enqueue→offer against a bare Lua baseline.

What one "dispatch" is here: ``await engine.enqueue("bench")`` while at least one agent
of the queue has a free chat slot. That is one call of the routing library's ``enqueue``
function (FCALL; ``enqueue.lua``) that creates the contact, picks the agent (idle
strategy) and creates the offer, plus everything the engine does around it in Python
(JSON in/out, event validation, an empty ``Bus``, the ``ContactView``). Only those calls
are timed.

Agents have chat capacity 50. Dispatches run in windows of ``--batch`` calls; after each
window the clock stops and every offer of the window is accepted and ended through the
engine (``accept`` + ``end``, wrap-up 0), so the next window starts with free agents
again. Accept/end are never timed.

The grid: M agents logged in (10, 1,000, 10,000) × N contacts waiting (100, 10,000,
100,000). A contact only waits while no agent can take it, so N waiting contacts and a
free agent cannot share one queue: the N wait in a second queue of the same site
(``backlog``) that none of the benchmark agents serves. They share the site's contacts
hash and every site-wide key with the dispatches.

The bare baseline is the same Redis, the same client, the same drivers, and a ~6-line
script: ZPOPMIN an agent from a free-agents zset, HSET the contact with the agent, ZADD the
agent back with load+1. Its contacts hash holds the same N waiting records and its zset
the same M agents.

Latency: per grid point, an open-loop load at half the engine's measured throughput
(``--latency-load``) starts calls on a schedule and records each enqueue→offer time; the
bare script is timed at the same absolute rate for comparison.

Usage::

    python scripts/bench_dispatch.py            # full grid, table on stdout
    python scripts/bench_dispatch.py --quick    # under 45 s
    python scripts/bench_dispatch.py --json     # one JSON object on stdout
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_common import (
    CpuWatch,
    RedisCounters,
    RedisServer,
    closed_loop,
    delete_matching,
    for_each,
    format_table,
    install_uvloop,
    latency_summary_ms,
    machine_info,
    paced,
    peak_rss_mib,
    print_json,
    progress_line,
    redis_counters,
    redis_version,
    unique_site,
)
from redis import __version__ as redis_py_version
from redis.asyncio import Redis
from redis.utils import HIREDIS_AVAILABLE

from contactd.bus import Bus
from contactd.clock import SystemClock
from contactd.routing.service import RoutingEngine, new_contact_id
from contactd.settings import QueueConfig, Settings, load_settings
from contactd.storage.keyspace import SiteKeys
from contactd.storage.redis import blocking_pool

BENCH_QUEUE = "bench"
BACKLOG_QUEUE = "backlog"
AGENT_CHAT_CAPACITY = 50  # the most Capacity allows

# The bare baseline: the least a dispatch can be in one script.
BARE_DISPATCH_LUA = """
local top = redis.call('ZPOPMIN', KEYS[1])
if #top == 0 then return false end
local agent, load = top[1], tonumber(top[2])
redis.call('HSET', KEYS[2], ARGV[1], agent)
redis.call('ZADD', KEYS[1], load + 1, agent)
return agent
"""

GOALS = {"dispatch_per_s": 5000.0, "ratio": 0.5, "p99_ms": 2.0, "scale_penalty": 1.5}

FULL = {
    "agents": [10, 1_000, 10_000],
    "waiting": [100, 10_000, 100_000],
    "seconds": 2.0,
    "latency_samples": 6000,
    "budget": None,
}
QUICK = {
    "agents": [10, 1_000, 10_000],
    "waiting": [100, 10_000, 100_000],
    "seconds": 0.4,
    "latency_samples": 1000,
    "budget": 38.0,
}


# --------------------------------------------------------------------------- accounting


@dataclass
class Phase:
    """What the timed windows of one phase took, and what Redis spent meanwhile."""

    calls: int = 0
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    redis: RedisCounters = field(default_factory=RedisCounters.zero)

    @property
    def per_s(self) -> float:
        return self.calls / self.wall_s if self.wall_s else 0.0

    def figures(self) -> dict[str, float | None]:
        n = self.calls or 1
        lua = self.redis.usec_per_call("evalsha", "fcall")
        busiest_us = 1e6 * max(self.client_cpu_s, self.redis.cpu_s) / n
        return {
            "per_s": round(self.per_s, 1),
            # what the CPU time says one client process + one Redis could do with a core
            # each to themselves (contention from other processes inflates wall time,
            # CPU time much less)
            "cpu_bound_per_s": round(1e6 / busiest_us, 1) if busiest_us else None,
            "calls": self.calls,
            "us_per_call": round(1e6 * self.wall_s / n, 2),
            "client_cpu_us": round(1e6 * self.client_cpu_s / n, 2),
            "redis_cpu_us": round(1e6 * self.redis.cpu_s / n, 2),
            "lua_us": None if lua is None else round(lua, 2),
        }


# --------------------------------------------------------------------------- the harness


class Bench:
    def __init__(self, redis: Redis, site: str, args: argparse.Namespace) -> None:
        self.redis = redis
        self.site = site
        self.args = args
        self.settings = bench_settings(site)
        if self.settings.site != site:
            raise SystemExit("CONTACTD_SITE is set in the environment: unset it to benchmark")
        self.keys = SiteKeys(site)
        self.bare_free = self.keys.base + "bare:free"
        self.bare_contacts = self.keys.base + "bare:contacts"
        self.bare_waiting = self.keys.base + "bare:waiting"
        self.bare_script = redis.register_script(BARE_DISPATCH_LUA)
        self.engine = self.new_engine()
        self.offers: list[tuple[str, str, str]] = []  # offer id, agent id, contact id
        self.bare_ids: list[str] = []
        self.agents = 0
        self.waiting = 0
        self.backlog_record: str | None = None
        self.profiler = cProfile.Profile() if args.cprofile else None
        self.pool_size = pool_size(args)
        self.peak_in_flight = [0, 0]

    def new_engine(self) -> RoutingEngine:
        return RoutingEngine(
            self.redis, self.settings, SystemClock(), Bus(), SiteKeys(self.settings.site)
        )

    # the measured calls ----------------------------------------------------------
    async def engine_dispatch(self) -> None:
        view = await self.engine.enqueue(BENCH_QUEUE)
        if view.state != "offered" or view.offer_id is None or view.agent_id is None:
            raise RuntimeError(f"enqueue did not dispatch: contact is {view.state!r}")
        self.offers.append((view.offer_id, view.agent_id, view.contact_id))

    async def bare_dispatch(self) -> None:
        cid = new_contact_id()
        agent = await self.bare_script(keys=[self.bare_free, self.bare_contacts], args=[cid])
        if agent is None:
            raise RuntimeError("bare dispatch found no agent")
        self.bare_ids.append(cid)

    # untimed upkeep --------------------------------------------------------------
    async def release_offers(self) -> None:
        """Accept and end every offer made so far, freeing the agents' slots."""
        offers, self.offers = self.offers, []

        async def finish(o: tuple[str, str, str]) -> None:
            offer_id, agent_id, contact_id = o
            await self.engine.accept(offer_id, agent_id)
            await self.engine.end(contact_id, agent_id=agent_id)

        await for_each(finish, offers, self.args.concurrency)

    async def forget_finished(self) -> None:
        """Drop the contacts earlier windows finished, so each grid point starts with
        the contacts hash holding the N waiting contacts (and the agents' nothing)."""
        before = SystemClock().now_ms() + 1
        while await self.engine.purge_finals(before, limit=2000):
            pass
        ids, self.bare_ids = self.bare_ids, []
        for i in range(0, len(ids), 5000):
            await self.redis.hdel(self.bare_contacts, *ids[i : i + 5000])

    # set-up ----------------------------------------------------------------------
    async def reset(self) -> None:
        await delete_matching(self.redis, f"cd:{{{self.site}}}:*")
        self.engine = self.new_engine()
        self.offers, self.bare_ids = [], []
        self.agents = self.waiting = 0
        self.backlog_record = None

    async def login_agents(self, m: int) -> None:
        async def login(i: int) -> None:
            await self.engine.login(
                f"a{i:05d}", queues=[BENCH_QUEUE], capacity={"chat": AGENT_CHAT_CAPACITY}
            )

        await for_each(login, range(self.agents, m), self.args.concurrency)
        await self.redis.zadd(self.bare_free, {f"a{i:05d}": 0 for i in range(self.agents, m)})
        self.agents = m

    async def fill_backlog(self, n: int) -> None:
        """Top the backlog queue up to n waiting contacts. The first one is enqueued
        through the engine; the rest are copies of its record (same size, same score),
        written with pipelines because 100,000 enqueues would dominate the run."""
        waiting_key = self.keys.waiting(BACKLOG_QUEUE)
        if self.backlog_record is None:
            await self.engine.enqueue(BACKLOG_QUEUE, contact_id=backlog_id(0))
            raw = await self.redis.hget(self.keys.contacts, backlog_id(0))
            score = await self.redis.zscore(waiting_key, backlog_id(0))
            assert raw is not None and score is not None
            self.backlog_record = raw.decode()
            self.backlog_score = score
            await self.redis.hset(self.bare_contacts, backlog_id(0), self.backlog_record)
            await self.redis.zadd(self.bare_waiting, {backlog_id(0): score})
            self.waiting = 1
        template = self.backlog_record
        for lo in range(self.waiting, n, 5000):
            ids = [backlog_id(i) for i in range(lo, min(n, lo + 5000))]
            records = {i: template.replace(backlog_id(0), i) for i in ids}
            scores = dict.fromkeys(ids, self.backlog_score)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(self.keys.contacts, mapping=records)
                pipe.zadd(waiting_key, scores)
                pipe.hset(self.bare_contacts, mapping=records)
                pipe.zadd(self.bare_waiting, scores)
                await pipe.execute()
        self.waiting = max(self.waiting, n)
        snap = await self.engine.queue_snapshot(BACKLOG_QUEUE, head=1)
        if snap.waiting != n or await self.redis.zcard(self.bare_waiting) != n:
            raise RuntimeError(f"backlog holds {snap.waiting} contacts, wanted {n}")

    # phases ----------------------------------------------------------------------
    async def window(self, engine: bool, acc: Phase) -> None:
        """One timed closed-loop window of --batch calls, --concurrency in flight; the
        engine's offers are then accepted and ended, untimed."""
        call = self.engine_dispatch if engine else self.bare_dispatch
        before = await redis_counters(self.redis)
        cpu0 = time.process_time()
        if self.profiler and engine:
            self.profiler.enable()
        acc.wall_s += await closed_loop(call, self.args.batch, self.args.concurrency)
        if self.profiler and engine:
            self.profiler.disable()
        acc.client_cpu_s += time.process_time() - cpu0
        acc.redis = acc.redis + (await redis_counters(self.redis) - before)
        acc.calls += self.args.batch
        if engine:
            await self.release_offers()

    async def throughput(self, seconds: float) -> tuple[Phase, Phase]:
        """Engine and bare windows taken in turn (so a change in the machine's load hits
        both alike) until the engine's timed windows add up to ``seconds``."""
        eng, bare = Phase(), Phase()
        while True:
            await self.window(True, eng)
            await self.window(False, bare)
            if eng.wall_s >= seconds:
                return eng, bare

    async def latency(
        self, rate: float, samples: int, bare_samples: int
    ) -> tuple[list[int], list[int]]:
        """Open loop at ``rate`` calls/s in windows of --batch calls, engine and bare in
        turn; the engine's offers are accepted and ended between windows, untimed.
        Per-call latencies in ns."""
        eng: list[int] = []
        bare: list[int] = []
        batch, cap = self.args.batch, self.pool_size
        while len(eng) < samples or len(bare) < bare_samples:
            if len(eng) < samples:
                n = min(batch, samples - len(eng))
                got = await paced(self.engine_dispatch, n, rate, eng, cap)
                self.peak_in_flight[0] = max(self.peak_in_flight[0], got.max_in_flight)
                await self.release_offers()
            if len(bare) < bare_samples:
                n = min(batch, bare_samples - len(bare))
                got = await paced(self.bare_dispatch, n, rate, bare, cap)
                self.peak_in_flight[1] = max(self.peak_in_flight[1], got.max_in_flight)
        return eng, bare

    async def point(
        self, m: int, n: int, scale: float = 1.0, warm_up: bool = True
    ) -> dict[str, Any]:
        args = self.args
        await self.fill_backlog(n)
        await self.forget_finished()
        gc.collect()
        if warm_up:  # connections open, scripts loaded, caches filled
            await self.window(True, Phase())
            await self.window(False, Phase())
        eng, bare = await self.throughput(args.seconds * scale)
        rate = eng.per_s * args.latency_load
        samples = max(500, int(args.latency_samples * scale))
        self.peak_in_flight = [0, 0]
        eng_ns, bare_ns = await self.latency(rate, samples, max(500, samples // 3))
        eng_lat, bare_lat = latency_summary_ms(eng_ns), latency_summary_ms(bare_ns)
        eng_lat["max_in_flight"], bare_lat["max_in_flight"] = self.peak_in_flight
        await self.forget_finished()
        ef, bf = eng.figures(), bare.figures()
        return {
            "agents": m,
            "waiting": n,
            "dispatch_per_s": ef["per_s"],
            "bare_per_s": bf["per_s"],
            "ratio": round(eng.per_s / bare.per_s, 3),
            "cpu_bound_ratio": round(ef["cpu_bound_per_s"] / bf["cpu_bound_per_s"], 3),
            "us_per_dispatch": ef["us_per_call"],
            "p50_ms": eng_lat["p50_ms"],
            "p99_ms": eng_lat["p99_ms"],
            "latency_rate_per_s": round(rate, 1),
            "engine": {**ef, "latency": eng_lat},
            "bare": {**bf, "latency": bare_lat},
        }

    async def probes(self) -> dict[str, Any]:
        """Where the time goes, on the last grid point's data: a PING floor for the
        client stack, and the Lua µs of the routing library's per-call set-up alone
        (``begin(KEYS, ARGV)`` with the engine's keys and arguments for an enqueue)."""
        conc = self.args.concurrency
        n = 5000 if not self.args.quick else 1500
        wall = await closed_loop(self.redis.ping, n, conc)
        one_wall = await closed_loop(self.redis.ping, 500, 1)
        engine = self.engine
        keys = engine.keys.routing_site_keys() + engine.keys.queue_keys(BENCH_QUEUE)
        argv = [
            engine.clock.now_ms(),
            "[" + engine._queue_arg(BENCH_QUEUE) + "]",
            '{"id":"c_0000000000000000","q":"bench","p":0}',
            engine._globals,
        ]
        lib = (resources.files("contactd.routing") / "lua" / "_lib.lua").read_text("utf-8")
        name = f"cdbench_probe_{self.site}"
        source = (
            f"#!lua name={name}\n{lib}\nredis.register_function('{name}', "
            "function(KEYS, ARGV) begin(KEYS, ARGV) return 1 end)\n"
        )
        setup_us = None
        try:
            await self.redis.function_load(source, replace=True)
        except Exception as exc:  # the library's layout changed: skip this probe
            progress_line(f"set-up probe skipped: {exc}")
        else:
            try:

                async def setup_only() -> None:
                    await self.redis.fcall(name, len(keys), *keys, *argv)

                await setup_only()
                before = await redis_counters(self.redis)
                await closed_loop(setup_only, n, conc)
                spent = await redis_counters(self.redis) - before
                setup_us = spent.usec_per_call("fcall")
            finally:
                await self.redis.function_delete(name)
        empty = self.redis.register_script("return 1")
        await empty(keys=keys, args=argv)
        before = await redis_counters(self.redis)
        await closed_loop(lambda: empty(keys=keys, args=argv), n, conc)
        empty_us = (await redis_counters(self.redis) - before).usec_per_call("evalsha")
        return {
            "ping_per_s": round(n / wall, 1),
            "ping_rtt_us_one_in_flight": round(1e6 * one_wall / 500, 1),
            "empty_script_lua_us": None if empty_us is None else round(empty_us, 2),
            "routing_setup_lua_us": None if setup_us is None else round(setup_us, 2),
        }


def pool_size(args: argparse.Namespace) -> int:
    """Connections in the client's pool; the open-loop phases keep at most this many
    calls in flight (more wait for a slot, and that wait counts in their latency)."""
    return max(64, args.concurrency)


def backlog_id(i: int) -> str:
    return f"w_{i:09d}"


def bench_settings(site: str) -> Settings:
    return load_settings(
        None,
        site=site,
        queues=(
            QueueConfig(
                id=BENCH_QUEUE,
                name="Bench",
                strategy="idle",
                wrap_up_s=0,
                max_waiting=1_000_000,
                offer_timeout_s=600,
            ),
            QueueConfig(
                id=BACKLOG_QUEUE,
                name="Backlog",
                strategy="idle",
                wrap_up_s=0,
                max_waiting=1_000_000,
            ),
        ),
    )


# --------------------------------------------------------------------------- summary


def summarize(points: list[dict[str, Any]]) -> dict[str, Any]:
    worst = min(points, key=lambda p: p["dispatch_per_s"])
    per = [p["us_per_dispatch"] for p in points]
    summary = {
        "dispatch_per_s": worst["dispatch_per_s"],
        "bare_per_s": worst["bare_per_s"],
        "ratio": worst["ratio"],
        "p50_ms": max(p["p50_ms"] for p in points),
        "p99_ms": max(p["p99_ms"] for p in points),
        "scale_penalty": round(max(per) / min(per), 3),
        "worst_point": {"agents": worst["agents"], "waiting": worst["waiting"]},
        "min_ratio": min(p["ratio"] for p in points),
        "cpu_bound_dispatch_per_s": min(p["engine"]["cpu_bound_per_s"] for p in points),
        "cpu_bound_ratio": min(p["cpu_bound_ratio"] for p in points),
        "best_dispatch_per_s": max(p["dispatch_per_s"] for p in points),
    }
    summary["goals"] = {
        "dispatch_per_s>=5000": summary["dispatch_per_s"] >= GOALS["dispatch_per_s"],
        "ratio>=0.5": summary["ratio"] >= GOALS["ratio"],
        "p99_ms<=2": summary["p99_ms"] <= GOALS["p99_ms"],
        "scale_penalty<=1.5": summary["scale_penalty"] <= GOALS["scale_penalty"],
    }
    return summary


def render(result: dict[str, Any]) -> str:
    speed, cost = [], []
    for p in result["points"]:
        e, b = p["engine"], p["bare"]
        where = [f"{p['agents']:,}", f"{p['waiting']:,}"]
        speed.append(
            [
                *where,
                f"{p['dispatch_per_s']:,.0f}",
                f"{p['bare_per_s']:,.0f}",
                f"{p['ratio']:.2f}",
                f"{p['latency_rate_per_s']:,.0f}",
                f"{p['p50_ms']:.2f}",
                f"{p['p99_ms']:.2f}",
                f"{b['latency']['p50_ms']:.2f}",
                f"{b['latency']['p99_ms']:.2f}",
            ]
        )
        cost.append(
            [
                *where,
                f"{p['us_per_dispatch']:.0f}",
                f"{b['us_per_call']:.0f}",
                f"{e['client_cpu_us']:.0f}",
                f"{b['client_cpu_us']:.0f}",
                f"{e['lua_us']:.1f}",
                f"{b['lua_us']:.1f}",
                f"{e['redis_cpu_us']:.0f}",
                f"{b['redis_cpu_us']:.0f}",
            ]
        )
    table = format_table(
        [
            "agents",
            "waiting",
            "dispatch/s",
            "bare/s",
            "ratio",
            "latency load/s",
            "p50 ms",
            "p99 ms",
            "bare p50 ms",
            "bare p99 ms",
        ],
        speed,
    )
    table += "\n\nPer dispatch, engine vs bare (µs):\n\n" + format_table(
        [
            "agents",
            "waiting",
            "wall",
            "bare wall",
            "client CPU",
            "bare client CPU",
            "Lua",
            "bare Lua",
            "Redis CPU",
            "bare Redis CPU",
        ],
        cost,
    )
    s = result["summary"]
    lines = [
        table,
        "",
        f"dispatch_per_s {s['dispatch_per_s']:,.0f} (slowest point; fastest "
        f"{s['best_dispatch_per_s']:,.0f})  bare_per_s {s['bare_per_s']:,.0f}  "
        f"ratio {s['ratio']:.2f}",
        f"p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms (worst point, at "
        f"{result['settings']['latency_load']:.0%} of that point's throughput)  "
        f"scale_penalty {s['scale_penalty']:.2f}",
        "goals: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in s["goals"].items()),
        f"CPU-bound estimate (a core each for client and Redis): engine "
        f"{s['cpu_bound_dispatch_per_s']:,.0f}/s, ratio {s['cpu_bound_ratio']:.2f}",
    ]
    load = result["machine_load"]
    lines.append(
        f"machine: {load['machine_busy_share']:.0%} busy, of which other processes "
        f"{load['other_cpu_share']:.0%}"
    )
    if "probes" in result:
        pr = result["probes"]
        lines.append(
            f"probes: PING {pr['ping_per_s']:,.0f}/s at the same concurrency, "
            f"PING round trip {pr['ping_rtt_us_one_in_flight']:.0f} µs alone; in Lua: "
            f"empty script {pr['empty_script_lua_us']} µs, routing per-call set-up "
            f"{pr['routing_setup_lua_us']} µs"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


async def run(args: argparse.Namespace, url: str, loop_name: str) -> dict[str, Any]:
    started = time.perf_counter()
    redis = Redis(connection_pool=blocking_pool(url, pool_size(args)))  # as the server builds it
    site = unique_site("bench")
    bench = Bench(redis, site, args)
    points: list[dict[str, Any]] = []
    watch = CpuWatch()
    total = len(args.agents) * len(args.waiting)
    point_walls: list[tuple[float, float]] = []
    login_s_per_agent = 0.0004  # until a large login measures it
    probes_s = 0.0 if args.no_probes else 1.5
    try:
        ver = await redis_version(redis)
        progress_line(
            f"redis {ver}, site {site}, loop {loop_name}, {args.concurrency} in flight, "
            f"windows of {args.batch}, load avg {os.getloadavg()[0]:.2f}"
        )
        redis_cpu0 = (await redis_counters(redis)).cpu_s
        watch.start()
        for m in args.agents:
            await bench.reset()
            t = time.perf_counter()
            await bench.login_agents(m)
            login_s = time.perf_counter() - t
            if m >= 500:
                login_s_per_agent = login_s / m
            progress_line(f"logged in {m:,} agents in {login_s:.1f}s")
            for n in args.waiting:
                later_agents = sum(a for a in args.agents if a > m)
                reserve = later_agents * login_s_per_agent + probes_s
                scale = budget_scale(
                    args.budget, started, point_walls, total - len(points), reserve
                )
                t = time.perf_counter()
                p = await bench.point(m, n, scale, warm_up=n == args.waiting[0])
                point_walls.append((time.perf_counter() - t, scale))
                points.append(p)
                progress_line(
                    f"agents {m:>6,} waiting {n:>7,}: engine {p['dispatch_per_s']:>6,.0f}/s "
                    f"bare {p['bare_per_s']:>6,.0f}/s ratio {p['ratio']:.2f}  "
                    f"p50 {p['p50_ms']:.2f} p99 {p['p99_ms']:.2f} ms "
                    f"@ {p['latency_rate_per_s']:,.0f}/s  "
                    f"lua {p['engine']['lua_us']:.0f} vs {p['bare']['lua_us']:.0f} µs"
                    + (f"  (phases ×{scale:.2f})" if scale < 1 else "")
                )
        probes = await bench.probes() if not args.no_probes else None
        load = watch.stop((await redis_counters(redis)).cpu_s - redis_cpu0)
    finally:
        await delete_matching(redis, f"cd:{{{site}}}:*")
        await redis.aclose()
    if load["other_cpu_share"] > 0.1:
        progress_line(
            f"warning: other processes used {load['other_cpu_share']:.0%} of the machine's "
            "CPU during the run; the figures are lower than on a quiet machine"
        )
    result: dict[str, Any] = {
        "benchmark": "dispatch",
        "summary": summarize(points),
        "settings": {
            "quick": args.quick,
            "concurrency": args.concurrency,
            "batch": args.batch,
            "seconds_per_phase": args.seconds,
            "latency_samples": args.latency_samples,
            "latency_load": args.latency_load,
            "agent_chat_capacity": AGENT_CHAT_CAPACITY,
            "loop": loop_name,
            "private_redis": args.redis_url is None,
            "redis_py": redis_py_version,
            "hiredis": HIREDIS_AVAILABLE,
        },
        "machine": machine_info(ver),
        "machine_load": load,
        "points": points,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    if probes is not None:
        result["probes"] = probes
    # the headline keys at the top level too, as the issue asks
    for k in ("dispatch_per_s", "bare_per_s", "ratio", "p50_ms", "p99_ms", "scale_penalty"):
        result[k] = result["summary"][k]
    if bench.profiler is not None:
        bench.profiler.dump_stats(args.cprofile)
        progress_line(f"cProfile of the engine's timed windows written to {args.cprofile}")
    return result


def budget_scale(
    budget_s: float | None,
    started: float,
    walls: list[tuple[float, float]],
    remaining: int,
    reserve_s: float,
) -> float:
    """With a time budget (--quick), shorten the phases of the points still to run when
    the points so far (wall seconds, phase scale) say the budget would be overrun.
    ``reserve_s``: time still needed outside the points (agent logins, probes)."""
    if budget_s is None or not walls or remaining <= 0:
        return 1.0
    left = budget_s - (time.perf_counter() - started) - reserve_s
    full = sum(w / s for w, s in walls) / len(walls)  # a point's wall time at scale 1
    return 1.0 if full * remaining <= left else max(0.2, left / (full * remaining))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter phases (under 45 s)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--redis-url", help="use this Redis instead of a private redis-server")
    ap.add_argument("--uvloop", action="store_true", help="use uvloop if it is installed")
    ap.add_argument("--concurrency", type=int, default=48, help="calls in flight (48)")
    ap.add_argument(
        "--batch",
        type=int,
        default=500,
        help="dispatches per window before the agents are freed (500)",
    )
    ap.add_argument("--agents", type=int, nargs="+", help="agent counts (10 1000 10000)")
    ap.add_argument(
        "--waiting", type=int, nargs="+", help="waiting-contact counts (100 10000 100000)"
    )
    ap.add_argument("--seconds", type=float, help="timed seconds per throughput phase")
    ap.add_argument("--latency-samples", type=int, help="latency samples per grid point")
    ap.add_argument(
        "--latency-load",
        type=float,
        default=0.5,
        help="latency load as a share of the measured throughput (0.5)",
    )
    ap.add_argument(
        "--budget",
        type=float,
        help="seconds the run should fit in; phases shrink to fit (quick: 38)",
    )
    ap.add_argument("--no-probes", action="store_true", help="skip the PING/prelude probes")
    ap.add_argument(
        "--cprofile", metavar="FILE", help="write a cProfile of the engine's timed windows to FILE"
    )
    args = ap.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for k in ("agents", "waiting", "seconds", "latency_samples", "budget"):
        if getattr(args, k) is None:
            setattr(args, k, preset[k])
    if args.batch > min(args.agents) * AGENT_CHAT_CAPACITY:
        ap.error(f"--batch must be at most {AGENT_CHAT_CAPACITY} × the smallest agent count")
    args.agents = sorted(set(args.agents))
    args.waiting = sorted(set(args.waiting))
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # stop cleanly (site keys deleted, private redis-server stopped) on Ctrl-C or SIGTERM,
    # also when started in the background, where SIGINT starts out ignored
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    loop_name = install_uvloop(args.uvloop)
    server = None
    url = args.redis_url
    if url is None:
        server = RedisServer()
        url = server.start()
    try:
        result = asyncio.run(run(args, url, loop_name))
    except KeyboardInterrupt:
        progress_line("interrupted: the benchmark's keys were deleted")
        return 130
    finally:
        if server is not None:
            server.stop()
    if args.json:
        print_json(result)
    else:
        print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
