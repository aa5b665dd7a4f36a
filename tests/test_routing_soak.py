"""Concurrency soak: two OS processes, each with its own RoutingEngine and Sweeper on the
same Redis and site, hammer the routing scripts at once with a real (fast) clock.

Each process simulates half of 50 agents (mixed chat capacity 1..5, voice 1) and a crowd
of customers: offers are accepted, declined or left to time out, agents disconnect, let
their heartbeat lapse, go away and come back, customers hang up. Every script call runs
in a MULTI/EXEC with an INCR, so the events of both processes merge into the order Redis
executed them. Afterwards everything is drained and the test checks, from Redis and from
the merged event logs, that no contact was ever held by two agents, no agent went over
capacity, and every contact ended exactly once.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import multiprocessing
import random
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from contactd.bus import Bus
from contactd.clock import SystemClock
from contactd.errors import ContactdError, ErrorCode
from contactd.routing.service import RoutingEngine
from contactd.routing.sweeper import Sweeper
from contactd.settings import QueueConfig, Settings, load_settings
from contactd.storage.keyspace import SiteKeys
from tests.routing_invariants import (
    CALL_SEQ,
    FINAL_STATES,
    SequencedScripts,
    check_structure,
    replay,
    snapshot,
)

PROCESSES = 2
AGENTS = 50
CONTACTS_PER_PROCESS = 1050
CUSTOMERS_PER_PROCESS = 25
ARRIVALS_PER_S = 130.0  # per process
LOAD_LIMIT_S = 25.0
DRAIN_LIMIT_S = 25.0
BARRIER_LIMIT_S = 30.0
PROCESS_LIMIT_S = LOAD_LIMIT_S + DRAIN_LIMIT_S + BARRIER_LIMIT_S + 10
SEEDS = [11, 23, 47]

QUEUES = [
    QueueConfig(
        id="chat-idle",
        name="Chat (idle)",
        strategy="idle",
        offer_timeout_s=0.3,
        wrap_up_s=0.1,
        reoffer_after_s=0.4,
        max_no_answer=3,
        max_wait_s=4.0,
        overflow_to="chat-rr",
        max_waiting=150,
    ),
    QueueConfig(
        id="chat-rr",
        name="Chat (round robin)",
        strategy="round_robin",
        offer_timeout_s=0.25,
        wrap_up_s=0,
        reoffer_after_s=0.3,
        max_wait_s=6.0,
        overflow_to="message",
        max_waiting=150,
    ),
    QueueConfig(
        id="vip",
        name="VIP (designated)",
        strategy="designated",
        fallback_after_s=1.5,
        fallback_strategy="round_robin",
        offer_timeout_s=0.3,
        wrap_up_s=0.15,
        reoffer_after_s=0.5,
    ),
    QueueConfig(
        id="phone",
        name="Phone",
        channel="voice",
        strategy="idle",
        offer_timeout_s=0.4,
        wrap_up_s=0.2,
        reoffer_after_s=0.5,
    ),
]
QUEUE_MIX = [("chat-idle", 38), ("chat-rr", 26), ("vip", 20), ("phone", 16)]
HEARTBEAT_TTL_S = 1.5
HEARTBEAT_EVERY_S = 0.5
POLL_S = 0.08


def soak_settings(site: str) -> Settings:
    return load_settings(
        None,
        site=site,
        queues=tuple(QUEUES),
        routing={"heartbeat_ttl_s": HEARTBEAT_TTL_S, "sweep_interval_s": 0.05},
    )


@dataclass(frozen=True)
class AgentPlan:
    agent_id: str
    queues: list[str]
    cap: dict[str, int]


def agent_plans(seed: int) -> list[AgentPlan]:
    rng = random.Random(seed * 7919)
    plans = []
    for i in range(AGENTS):
        queues = [q for q in ("chat-idle", "chat-rr", "vip") if rng.random() < 0.6]
        if not queues or rng.random() < 0.1:
            queues.append(rng.choice(["chat-idle", "chat-rr"]))
        if rng.random() < 0.45:
            queues.append("phone")
        cap = {"chat": rng.randint(1, 5), "voice": 1}
        plans.append(AgentPlan(f"a{i:02d}", sorted(set(queues)), cap))
    return plans


@dataclass(frozen=True)
class WorkerArgs:
    index: int
    seed: int
    redis_url: str
    site: str
    out_dir: str


def worker_main(args: WorkerArgs) -> None:
    """Entry point of one soak process (multiprocessing, spawn context)."""
    out = Path(args.out_dir)
    with (out / f"stacks-{args.index}.txt").open("w") as stacks:
        # a stuck process dumps its stack and exits instead of hanging the test
        faulthandler.dump_traceback_later(PROCESS_LIMIT_S, exit=True, file=stacks)
        try:
            asyncio.run(_Worker(args).run())
        except BaseException:
            err = out / f"error-{args.index}.txt"
            if not err.exists():
                err.write_text(traceback.format_exc(), encoding="utf-8")
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()


class _Worker:
    def __init__(self, args: WorkerArgs) -> None:
        self.args = args
        self.rng = random.Random(args.seed * 1000 + args.index)
        self.out = Path(args.out_dir)
        self.settings = soak_settings(args.site)
        self.keys = SiteKeys(args.site)
        self.events: list[dict[str, Any]] = []
        self.counts: Counter[str] = Counter()
        self.enqueued: list[str] = []
        self.phase = "load"
        self.stop = asyncio.Event()
        self.plans = [
            p for p in agent_plans(args.seed) if int(p.agent_id[1:]) % PROCESSES == args.index
        ]
        self.all_agents = [p.agent_id for p in agent_plans(args.seed)]
        # members of each queue, those with the fewest chat slots (busy account managers) first
        self.members = {
            q.id: [
                p.agent_id
                for p in sorted(agent_plans(args.seed), key=lambda p: (p.cap["chat"], p.agent_id))
                if q.id in p.queues
            ]
            for q in QUEUES
        }
        self.signals = {p.agent_id: asyncio.Event() for p in self.plans}
        self.views: dict[str, dict[str, Any]] = {}
        self.offers: dict[str, tuple[str, str]] = {}
        self._last_seq = -1
        self._idx = 0
        self.tasks: set[asyncio.Task[None]] = set()

    # event log ---------------------------------------------------------------------
    def _on_event(self, event: Any) -> None:
        seq = CALL_SEQ.get()
        if seq != self._last_seq:
            self._last_seq, self._idx = seq, 0
        row = event.model_dump(mode="json")
        row.update(seq=seq, idx=self._idx, proc=self.args.index)
        self._idx += 1
        self.events.append(row)

    async def run(self) -> None:
        self.redis = Redis.from_url(self.args.redis_url)
        bus = Bus()
        bus.subscribe(self._on_event)
        self.engine = RoutingEngine(self.redis, self.settings, SystemClock(), bus, self.keys)
        self.engine.scripts = SequencedScripts(  # type: ignore[assignment]
            self.engine.scripts, self.redis, self.keys.base + "soak:seq"
        )
        self.sweeper = Sweeper(self.engine, self.settings.routing.sweep_interval_s)
        try:
            await self._run()
        except BaseException:
            (self.out / f"error-{self.args.index}.txt").write_text(traceback.format_exc())
            raise
        finally:
            with (self.out / f"events-{self.args.index}.jsonl").open("w") as f:
                for row in self.events:
                    f.write(json.dumps(row, separators=(",", ":")) + "\n")
            result = {"enqueued": self.enqueued, "counts": dict(self.counts)}
            (self.out / f"result-{self.args.index}.json").write_text(json.dumps(result))
            await self.redis.aclose()

    async def _barrier(self, name: str) -> None:
        key = self.keys.base + f"soak:{name}"
        await self.redis.sadd(key, self.args.index)
        deadline = time.monotonic() + BARRIER_LIMIT_S
        while True:
            if await self.redis.scard(key) >= PROCESSES:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the other soak process never reached {name!r}")
            await asyncio.sleep(0.02)

    def _note(self, what: str) -> None:
        with (self.out / f"progress-{self.args.index}.txt").open("a") as f:
            f.write(f"{time.monotonic():.2f} {what} enqueued={len(self.enqueued)}\n")

    async def _run(self) -> None:
        self._note("start")
        for p in self.plans:
            await self.engine.login(p.agent_id, queues=p.queues, capacity=p.cap)
        await self._barrier("ready")
        self._note("ready")
        load_started = time.monotonic()
        sweeper = asyncio.create_task(self._sweep_loop())
        agents = [asyncio.create_task(self._agent(p)) for p in self.plans]
        agents.append(asyncio.create_task(self._poll_loop()))
        customers = [asyncio.create_task(self._customer(i)) for i in range(CUSTOMERS_PER_PROCESS)]
        watched = [sweeper, *agents]
        arrivals = asyncio.gather(*customers)
        done, _ = await asyncio.wait(
            [arrivals, *watched], return_when=asyncio.FIRST_COMPLETED, timeout=LOAD_LIMIT_S
        )
        self._raise_failed(done)
        if arrivals not in done or len(self.enqueued) < CONTACTS_PER_PROCESS:
            raise AssertionError(f"only {len(self.enqueued)} contacts enqueued in time")
        if self.tasks:
            await asyncio.gather(*self.tasks)  # pending customer hang-ups
        self.counts["load_ms"] = int((time.monotonic() - load_started) * 1000)
        self.phase = "drain"
        self._note("drain")
        t0 = time.monotonic()
        drained = asyncio.create_task(self._wait_drained())
        done, _ = await asyncio.wait([drained, *watched], return_when=asyncio.FIRST_COMPLETED)
        self._raise_failed(done)
        if drained not in done:
            raise AssertionError(f"a simulation task stopped early: {done}")
        self.counts["drain_ms"] = int((time.monotonic() - t0) * 1000)
        self._note("drained")
        self.stop.set()
        for s in self.signals.values():
            s.set()
        done, pending = await asyncio.wait(watched, timeout=10)
        self._raise_failed(done)
        if pending:
            with (self.out / f"stacks-{self.args.index}.txt").open("a") as f:
                for t in pending:
                    t.print_stack(file=f)
            raise AssertionError(f"{len(pending)} simulation tasks did not stop")

    @staticmethod
    def _raise_failed(done: set[asyncio.Future[Any]]) -> None:
        for t in done:
            if t.cancelled():
                raise AssertionError(f"{t} was cancelled")
            if (exc := t.exception()) is not None:
                raise exc

    async def _wait_drained(self) -> None:
        deadline = time.monotonic() + DRAIN_LIMIT_S
        left = list(self.enqueued)
        while left:
            raws = await self.redis.hmget(self.keys.contacts, left)
            left = [
                cid
                for cid, raw in zip(left, raws, strict=True)
                if raw is None or json.loads(raw)["st"] not in FINAL_STATES
            ]
            if int(time.monotonic() * 10) % 20 == 0:
                self._note(f"draining: {len(left)} left, e.g. {left[:3]}")
            if left and time.monotonic() > deadline:
                self.counts["drain_cancelled"] += len(left)
                for cid in left:
                    view = await self.engine.contact(cid)
                    self.counts[f"drain_cancelled_{view.state}"] += 1
                    await self.engine.cancel(cid, "drain")
                break
            await asyncio.sleep(0.1)
        self._note("waiting for the other process")
        await self._barrier("drained")

    async def _sweep_loop(self) -> None:
        while not self.stop.is_set():
            done = await self.sweeper.sweep_once()
            for kind, n in done.items():
                self.counts[f"swept {kind}"] += n
            await asyncio.sleep(self.settings.routing.sweep_interval_s)

    # customers ---------------------------------------------------------------------
    async def _customer(self, n: int) -> None:
        rng = random.Random(self.rng.random())
        rate = ARRIVALS_PER_S / CUSTOMERS_PER_PROCESS
        queues, weights = zip(*QUEUE_MIX, strict=True)
        while len(self.enqueued) < CONTACTS_PER_PROCESS:
            await asyncio.sleep(rng.expovariate(rate))
            if len(self.enqueued) >= CONTACTS_PER_PROCESS:
                break
            q = rng.choices(queues, weights)[0]
            prio = rng.choice([0, 0, 0, 0, 1, 2, 3, 5, 9])
            target = None
            if q == "vip" or (q == "chat-idle" and rng.random() < 0.2):
                # mostly one of a few busy account managers of that queue, sometimes anyone
                r = rng.random()
                pool = self.members[q][:4] if r < 0.7 else self.members[q]
                target = rng.choice(pool if r < 0.9 else self.all_agents)
            cid = f"s{self.args.seed}-p{self.args.index}-{n:02d}-{self.counts['attempts']:05d}"
            self.counts["attempts"] += 1
            try:
                await self.engine.enqueue(q, priority=prio, contact_id=cid, target_agent_id=target)
            except ContactdError as exc:
                if exc.code != ErrorCode.queue_full:
                    raise
                self.counts["refused queue_full"] += 1
                await asyncio.sleep(rng.uniform(0.1, 0.4))  # "all lines busy, call back later"
                continue
            self.enqueued.append(cid)
            if rng.random() < 0.12:
                self._spawn(self._hang_up(cid, rng.uniform(0.05, 1.5)))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _hang_up(self, cid: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        view = await self.engine.cancel(cid, "customer_left")
        self.counts[f"cancel -> {view.state}"] += 1

    # agents ------------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        """What each agent's screen would show: its record and the offer ids of its offers,
        read for all agents of this process in two round trips, then every agent wakes."""
        ids = [p.agent_id for p in self.plans]
        while not self.stop.is_set():
            raws = await self.redis.hmget(self.keys.agents, ids)
            views = {aid: json.loads(raw) for aid, raw in zip(ids, raws, strict=True) if raw}
            cids = [
                cid
                for rec in views.values()
                for cid, slot in (rec.get("ct") or {}).items()
                if slot["s"] == "offered"
            ]
            offers: dict[str, tuple[str, str]] = {}
            if cids:
                rows = await self.redis.hmget(self.keys.contacts, cids)
                for cid, raw in zip(cids, rows, strict=True):
                    c = json.loads(raw) if raw else {}
                    if c.get("st") == "offered":
                        offers[cid] = (c["ag"], c["of"])
            self.views, self.offers = views, offers
            for sig in self.signals.values():
                sig.set()
            await asyncio.sleep(POLL_S)

    async def _agent(self, plan: AgentPlan) -> None:
        aid = plan.agent_id
        rng = random.Random(self.rng.random())
        eng = self.engine
        loop = asyncio.get_running_loop()
        online = True
        back_at = 0.0  # when to log in again after going offline
        frozen_until = 0.0  # no heartbeats before this (lets the lease lapse)
        away_until = 0.0
        next_hb = 0.0
        decided: dict[str, tuple[str, str, float]] = {}  # contact -> (offer, action, when)
        ends: dict[str, float] = {}  # contact id -> when to end it
        sig = self.signals[aid]

        async def quietly(coro: Any, *ok: ErrorCode) -> Any:
            try:
                return await coro
            except ContactdError as exc:
                if exc.code not in ok:
                    raise
                self.counts[f"agent error {exc.code.value}"] += 1
                return None

        while True:
            await sig.wait()
            sig.clear()
            if self.stop.is_set():
                return
            now = loop.time()
            draining = self.phase == "drain"
            if not online and (draining or now >= back_at):
                await eng.login(aid, queues=plan.queues, capacity=plan.cap)
                self.counts["relogin"] += 1
                online, next_hb, frozen_until = True, now + HEARTBEAT_EVERY_S, 0.0
                continue  # the next poll shows the new record
            if not online:
                continue
            if not draining:
                r = rng.random()
                if r < 0.003:
                    await eng.agent_lost(aid, "disconnected")
                    self.counts["disconnect"] += 1
                    online, back_at = False, now + rng.uniform(0.1, 0.6)
                    continue
                if r < 0.006:
                    await quietly(eng.set_state(aid, "offline", "logout"), ErrorCode.agent_offline)
                    self.counts["logout"] += 1
                    online, back_at = False, now + rng.uniform(0.1, 0.6)
                    continue
                if r < 0.009:
                    frozen_until = now + HEARTBEAT_TTL_S + rng.uniform(0.3, 1.0)
                    self.counts["heartbeat pause"] += 1
                elif r < 0.017:
                    got = await quietly(
                        eng.set_state(aid, "away", "break"), ErrorCode.agent_offline
                    )
                    if got is not None:
                        away_until = now + rng.uniform(0.1, 0.5)
                        self.counts["away"] += 1
            if now >= next_hb and now >= frozen_until:
                if await quietly(eng.heartbeat(aid), ErrorCode.agent_offline) is None:
                    online, back_at = False, now  # the sweeper found our lease lapsed
                    continue
                next_hb = now + HEARTBEAT_EVERY_S
            rec = self.views.get(aid)
            if rec is None:
                continue
            if rec["st"] == "offline":
                online, back_at = False, now + rng.uniform(0.0, 0.3)
                self.counts["found lost"] += 1
                continue
            if rec["st"] == "away" and (draining or now >= away_until):
                await quietly(eng.set_state(aid, "available"), ErrorCode.agent_offline)
            slots = rec.get("ct") or {}
            for cid in [c for c in decided if slots.get(c, {}).get("s") != "offered"]:
                del decided[cid]  # gone (timed out, revoked, cancelled) before we acted
            for cid, slot in slots.items():
                offer = self.offers.get(cid)
                if slot["s"] == "offered" and cid not in decided and offer and offer[0] == aid:
                    r = rng.random()
                    if draining or r < 0.62:
                        when = now if draining else now + rng.uniform(0, 0.12)
                        decided[cid] = (offer[1], "accept", when)
                    elif r < 0.88:
                        decided[cid] = (offer[1], "decline", now + rng.uniform(0, 0.1))
                    else:
                        decided[cid] = (offer[1], "ignore", 0.0)
                elif slot["s"] == "active" and cid not in ends:
                    ends[cid] = now + (0 if draining else rng.uniform(0.05, 0.4))
                elif slot["s"] == "wrap" and not draining and rng.random() < 0.02:
                    await quietly(
                        eng.complete_wrap(cid, agent_id=aid),
                        ErrorCode.not_your_contact,
                        ErrorCode.contact_not_found,
                    )
            for cid, (offer_id, action, when) in list(decided.items()):
                if action == "ignore" or when > now:
                    continue
                del decided[cid]
                if action == "accept":
                    got = await quietly(
                        eng.accept(offer_id, aid), ErrorCode.offer_expired, ErrorCode.not_your_offer
                    )
                    if got is not None:
                        self.counts["accepted"] += 1
                        ends[cid] = now + (0 if draining else rng.uniform(0.05, 0.4))
                else:
                    got = await quietly(
                        eng.decline(offer_id, aid),
                        ErrorCode.offer_expired,
                        ErrorCode.not_your_offer,
                    )
                    if got is not None:
                        self.counts["declined"] += 1
            for cid, when in list(ends.items()):
                if when > now:
                    continue
                del ends[cid]
                got = await quietly(
                    eng.end(cid, agent_id=aid),
                    ErrorCode.contact_not_active,
                    ErrorCode.not_your_contact,
                    ErrorCode.contact_finished,
                )
                if got is not None:
                    self.counts["ended"] += 1
            if rec["st"] == "wrap_up" and not draining and rng.random() < 0.05:
                await quietly(eng.set_state(aid, "available"), ErrorCode.agent_offline)


# the test ----------------------------------------------------------------------------------


def _why(out: Path, i: int) -> str:
    for name in (f"error-{i}.txt", f"stacks-{i}.txt"):
        if (out / name).exists() and (text := (out / name).read_text().strip()):
            return text
    return "(no traceback: killed after the other process failed)"


def _load_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("seed", SEEDS)
async def test_two_processes_never_double_book(
    seed: int, redis_url: str, site: str, redis: Redis, tmp_path: Path
) -> None:
    """Two processes, one site, ≥ 2,000 contacts: never two holders, never over capacity,
    exactly one final state each, nothing lost (Redis state and merged event logs)."""
    settings = soak_settings(site)
    keys = SiteKeys(site)
    qids = [q.id for q in settings.queues]
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=worker_main, args=(WorkerArgs(i, seed, redis_url, site, str(tmp_path)),))
        for i in range(PROCESSES)
    ]
    started = time.monotonic()
    for p in procs:
        p.start()
    mid_run: list[str] = []
    snapshots = 0
    try:
        while any(p.is_alive() for p in procs):
            await asyncio.sleep(1.0)
            if any(p.exitcode for p in procs):
                break  # one failed: the other would wait for it at a barrier
            if time.monotonic() - started > PROCESS_LIMIT_S + 15:
                break
            # a consistent snapshot while both processes are writing
            found = check_structure(await snapshot(redis, keys, qids), settings)
            mid_run += [f"mid-run: {p}" for p in found if f"mid-run: {p}" not in mid_run]
            snapshots += 1
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
    elapsed = time.monotonic() - started
    failures = [
        f"soak process {i} exited with {p.exitcode}:\n" + _why(tmp_path, i)
        for i, p in enumerate(procs)
        if p.exitcode != 0
    ]
    assert not failures, "\n".join(failures)

    results = [json.loads((tmp_path / f"result-{i}.json").read_text()) for i in range(PROCESSES)]
    enqueued = [cid for r in results for cid in r["enqueued"]]
    counts: Counter[str] = Counter()
    for r in results:
        counts.update(r["counts"])
    events = sorted(
        (row for i in range(PROCESSES) for row in _load_rows(tmp_path / f"events-{i}.jsonl")),
        key=lambda row: (row["seq"], row["idx"]),
    )
    seqs = Counter((row["seq"], row["idx"]) for row in events)
    assert all(n == 1 for n in seqs.values()), "two events share a call number and index"

    # final Redis state
    snap = await snapshot(redis, keys, qids)
    problems = mid_run + check_structure(snap, settings)
    caps = {p.agent_id: p.cap for p in agent_plans(seed)}
    for cid in enqueued:
        rec = snap.contacts.get(cid)
        if rec is None:
            problems.append(f"contact {cid} was enqueued but has no record")
        elif rec["st"] not in FINAL_STATES:
            problems.append(f"contact {cid} is {rec['st']} after the drain")
    if counts["drain_cancelled"]:
        stuck = {k: n for k, n in counts.items() if k.startswith("drain_cancelled_")}
        problems.append(
            f"{counts['drain_cancelled']} contacts were not served within {DRAIN_LIMIT_S}s of "
            f"draining with every agent available and accepting: {stuck}"
        )
    if len(set(enqueued)) != len(enqueued):
        problems.append("a contact id was enqueued twice")
    for aid, a in snap.agents.items():
        held = {k: s for k, s in (a.get("ct") or {}).items() if s["s"] != "wrap"}
        if held:
            problems.append(f"agent {aid} still holds {held} after the drain")
    for q in qids:
        if snap.waiting[q]:
            problems.append(f"queue {q} still has waiting contacts {snap.waiting[q][:5]}")
    if snap.designated or snap.offers:
        problems.append(f"still waiting/offered: {snap.designated[:5]} {list(snap.offers)[:5]}")

    # merged event logs
    rep = replay(events, caps, settings.routing.chat_during_voice)
    problems += rep.violations
    enq_events = {row["contact_id"] for row in events if row["type"] == "contact.enqueued"}
    if enq_events != set(enqueued):
        problems.append(
            f"enqueued ids and contact.enqueued events differ: "
            f"{sorted(enq_events ^ set(enqueued))[:10]}"
        )
    final_of = {
        "contact.ended": "ended",
        "contact.abandoned": "abandoned",
        "contact.overflowed": "left_message",
    }
    for cid in enqueued:
        terms = rep.terminal.get(cid, [])
        rec = snap.contacts.get(cid)
        if len(terms) == 1 and rec is not None and final_of[terms[0]] != rec["st"]:
            problems.append(f"{cid}: terminal event {terms[0]} but the record is {rec['st']}")
    for aid, a in snap.agents.items():
        for ch in ("chat", "voice"):
            if sum(1 for s in (a.get("ct") or {}).values() if s["ch"] == ch) > caps[aid][ch]:
                problems.append(f"agent {aid} over {ch} capacity at the end")

    st = rep.stats
    finals = Counter(snap.contacts[c]["st"] for c in enqueued if c in snap.contacts)
    holds = sum(len(h) for h in rep.holds.values())
    print(
        f"\nsoak seed={seed}: {elapsed:.1f}s, {len(enqueued)} contacts "
        f"({counts['refused queue_full']} refused full), {st['offer.created']} offers "
        f"({holds} holds), {st['offer.accepted']} accepted, {st['offer.declined']} declined, "
        f"{st['offer.expired']} timed out, {st['offer.revoked']} revoked, "
        f"{st['contact.requeued']} requeues, {st['contact.overflowed']} overflows, "
        f"{st['contact.fell_back']} fallbacks, {st['agent.lost']} agents lost, "
        f"finals {dict(finals)}, max agent load "
        f"{max(m['chat'] for m in rep.max_load.values())} chats, "
        f"{snapshots} mid-run snapshots checked, drain {counts['drain_ms']} ms, "
        f"drain cancels {counts['drain_cancelled']}"
    )
    print("  worker counts:", dict(sorted(counts.items())))
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(_digest(problems))
    assert len(enqueued) >= PROCESSES * CONTACTS_PER_PROCESS
    assert st["offer.accepted"] and st["offer.declined"] and st["offer.expired"]
    assert st["contact.requeued"] and st["agent.lost"]


def _digest(problems: list[str], per_kind: int = 4) -> list[str]:
    """A few examples of each kind of problem (kind: the text without ids and numbers)."""
    shown: Counter[str] = Counter()
    out = []
    for p in problems:
        kind = re.sub(r"[\w.:-]*\d[\w.:~-]*", "#", p)[:60]
        shown[kind] += 1
        if shown[kind] <= per_kind:
            out.append(p)
    out += [f"({n} x) {k}" for k, n in shown.items() if n > per_kind]
    return out
