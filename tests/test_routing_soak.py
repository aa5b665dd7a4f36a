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
import contextlib
import json
import multiprocessing
import random
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
ARRIVALS_PER_S = 160.0  # per process
LOAD_LIMIT_S = 25.0
DRAIN_LIMIT_S = 25.0
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
        fallback_after_s=0.6,
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
QUEUE_MIX = [("chat-idle", 40), ("chat-rr", 28), ("vip", 14), ("phone", 18)]
HEARTBEAT_TTL_S = 1.0


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
    try:
        asyncio.run(_Worker(args).run())
    except BaseException:
        (out / f"error-{args.index}.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise


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
        self.signals = {p.agent_id: asyncio.Event() for p in self.plans}
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
        if row["type"] == "offer.created" and row["agent_id"] in self.signals:
            self.signals[row["agent_id"]].set()

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
        while True:
            if await self.redis.scard(key) >= PROCESSES:
                return
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        for p in self.plans:
            await self.engine.login(p.agent_id, queues=p.queues, capacity=p.cap)
        await self._barrier("ready")
        sweeper = asyncio.create_task(self._sweep_loop())
        agents = [asyncio.create_task(self._agent(p)) for p in self.plans]
        customers = [asyncio.create_task(self._customer(i)) for i in range(CUSTOMERS_PER_PROCESS)]
        watched = [sweeper, *agents]
        done, _ = await asyncio.wait(
            [asyncio.gather(*customers), *watched],
            return_when=asyncio.FIRST_EXCEPTION,
            timeout=LOAD_LIMIT_S,
        )
        self._raise_failed(done)
        if len(self.enqueued) < CONTACTS_PER_PROCESS:
            raise AssertionError(f"only {len(self.enqueued)} contacts enqueued in time")
        if self.tasks:
            await asyncio.gather(*self.tasks)  # pending customer hang-ups
        self.phase = "drain"
        t0 = time.monotonic()
        drained = asyncio.create_task(self._wait_drained())
        done, _ = await asyncio.wait([drained, *watched], return_when=asyncio.FIRST_COMPLETED)
        self._raise_failed(done)
        self.counts["drain_ms"] = int((time.monotonic() - t0) * 1000)
        self.stop.set()
        for s in self.signals.values():
            s.set()
        await asyncio.gather(*agents)
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper

    @staticmethod
    def _raise_failed(done: set[asyncio.Future[Any]]) -> None:
        for t in done:
            if not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]

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
            if left and time.monotonic() > deadline:
                self.counts["drain_cancelled"] += len(left)
                for cid in left:
                    view = await self.engine.contact(cid)
                    self.counts[f"drain_cancelled_{view.state}"] += 1
                    await self.engine.cancel(cid, "drain")
                break
            await asyncio.sleep(0.1)
        await self._barrier("drained")

    async def _sweep_loop(self) -> None:
        while True:
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
            if q == "vip" or (q == "chat-idle" and rng.random() < 0.1):
                target = rng.choice(self.all_agents)
            cid = f"s{self.args.seed}-p{self.args.index}-{n:02d}-{self.counts['attempts']:05d}"
            self.counts["attempts"] += 1
            try:
                await self.engine.enqueue(q, priority=prio, contact_id=cid, target_agent_id=target)
            except ContactdError as exc:
                if exc.code != ErrorCode.queue_full:
                    raise
                self.counts["refused queue_full"] += 1
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

        while not self.stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sig.wait(), timeout=rng.uniform(0.02, 0.05))
            sig.clear()
            if self.stop.is_set():
                break
            now = loop.time()
            draining = self.phase == "drain"
            if not online and (draining or now >= back_at):
                await eng.login(aid, queues=plan.queues, capacity=plan.cap)
                self.counts["relogin"] += 1
                online, next_hb, frozen_until = True, 0.0, 0.0
            if online and not draining:
                r = rng.random()
                if r < 0.002:
                    await eng.agent_lost(aid, "disconnected")
                    self.counts["disconnect"] += 1
                    online, back_at = False, now + rng.uniform(0.1, 0.6)
                elif r < 0.004:
                    await quietly(eng.set_state(aid, "offline", "logout"), ErrorCode.agent_offline)
                    self.counts["logout"] += 1
                    online, back_at = False, now + rng.uniform(0.1, 0.6)
                elif r < 0.006:
                    frozen_until = now + HEARTBEAT_TTL_S + rng.uniform(0.2, 0.6)
                    self.counts["heartbeat pause"] += 1
                elif r < 0.011:
                    view = await quietly(
                        eng.set_state(aid, "away", "break"), ErrorCode.agent_offline
                    )
                    if view is not None:
                        away_until = now + rng.uniform(0.1, 0.5)
                        self.counts["away"] += 1
            if not online:
                continue
            if now >= next_hb and now >= frozen_until:
                if await quietly(eng.heartbeat(aid), ErrorCode.agent_offline) is None:
                    online, back_at = False, now  # the sweeper declared us lost
                    continue
                next_hb = now + 0.3
            view = await eng.agent(aid)
            if view.state == "offline":
                online, back_at = False, now + rng.uniform(0.0, 0.3)
                self.counts["found lost"] += 1
                continue
            if view.state == "away" and (draining or now >= away_until):
                await quietly(eng.set_state(aid, "available"), ErrorCode.agent_offline)
            offered_now = {s.contact_id for s in view.slots if s.state == "offered"}
            for cid in [c for c in decided if c not in offered_now]:
                del decided[cid]  # gone (timed out, revoked, cancelled) before we acted
            for slot in view.slots:
                cid = slot.contact_id
                if slot.state == "offered" and cid not in decided:
                    c = await eng.contact(cid)
                    if c.state != "offered" or c.agent_id != aid or c.offer_id is None:
                        continue
                    r = rng.random()
                    if draining or r < 0.74:
                        when = now if draining else now + rng.uniform(0, 0.12)
                        decided[cid] = (c.offer_id, "accept", when)
                    elif r < 0.87:
                        decided[cid] = (c.offer_id, "decline", now + rng.uniform(0, 0.1))
                    else:
                        decided[cid] = (c.offer_id, "ignore", 0.0)
                elif slot.state == "active" and cid not in ends:
                    ends[cid] = now + (0 if draining else rng.uniform(0.05, 0.4))
                elif slot.state == "wrap" and not draining and rng.random() < 0.02:
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
            if view.state == "wrap_up" and not draining and rng.random() < 0.05:
                await quietly(eng.set_state(aid, "available"), ErrorCode.agent_offline)


# the test ----------------------------------------------------------------------------------


def _load_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("seed", SEEDS)
async def test_two_processes_never_double_book(
    seed: int, redis_url: str, site: str, redis: Redis, tmp_path: Path
) -> None:
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
            await asyncio.sleep(0.25)
            if time.monotonic() - started > LOAD_LIMIT_S + DRAIN_LIMIT_S + 30:
                raise AssertionError("soak processes did not finish in time")
            # a consistent snapshot while both processes are writing
            mid_run += check_structure(await snapshot(redis, keys, qids), settings)
            snapshots += 1
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(10)
    elapsed = time.monotonic() - started
    for i, p in enumerate(procs):
        err = tmp_path / f"error-{i}.txt"
        detail = err.read_text() if err.exists() else ""
        assert p.exitcode == 0, f"soak process {i} failed (exit {p.exitcode}):\n{detail}"
    assert not mid_run, "state rules broken mid-run:\n" + "\n".join(mid_run[:30])

    results = [json.loads((tmp_path / f"result-{i}.json").read_text()) for i in range(2)]
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
    problems = check_structure(snap, settings)
    caps = {p.agent_id: p.cap for p in agent_plans(seed)}
    for cid in enqueued:
        rec = snap.contacts.get(cid)
        if rec is None:
            problems.append(f"contact {cid} was enqueued but has no record")
        elif rec["st"] not in FINAL_STATES:
            problems.append(f"contact {cid} is {rec['st']} after the drain")
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
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    assert len(enqueued) >= PROCESSES * CONTACTS_PER_PROCESS
    assert st["offer.accepted"] and st["offer.declined"] and st["offer.expired"]
    assert st["contact.requeued"] and st["agent.lost"]
