"""Checks shared by the routing soak and model tests.

* ``snapshot``: one consistent read (MULTI/EXEC) of a site's routing keys.
* ``check_structure``: what every routing state must satisfy whatever happened before
  (capacity, contact record and agent slot agree, one waiting place per queued contact,
  queue scores follow priority / enqueue time / head requeue, leases match records).
* ``check_work_conservation``: nobody waits in a queue while an agent could take them.
* ``replay``: rebuilds, from the events of every process ordered by script call, who
  held each contact when and how full each agent was, and reports every overlap.
* ``SequencedScripts``: wraps an engine's scripts so every call runs in a MULTI/EXEC with
  an INCR of a counter; the call number (a total order across processes) is left in a
  context variable for the bus listener that records the call's events.

The scripts' data layout (field names, score formula) is read here on purpose: these are
white-box checks of the Redis state, next to black-box checks through the engine.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contactd.routing.models import queue_config_for_lua
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys

HEAD_BASE = -(2**45)
PRIO_STEP = 2**41
MAX_PRIO = 9
FINAL_STATES = frozenset({"ended", "abandoned", "left_message"})
HELD_STATES = frozenset({"offered", "active"})


def base_score(priority: int, t0: int) -> int:
    return (MAX_PRIO - priority) * PRIO_STEP + t0


def head_score(t0: int) -> int:
    return HEAD_BASE + t0


def desig_member(c: Mapping[str, Any]) -> str:
    return f"{c['tgt']}|{int(c['sc']) - HEAD_BASE:016d}|{c['id']}"


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


# snapshot ---------------------------------------------------------------------------


@dataclass
class Snapshot:
    contacts: dict[str, dict[str, Any]]
    agents: dict[str, dict[str, Any]]
    rstate: dict[str, str]
    waiting: dict[str, list[tuple[str, float]]]
    designated: list[str]
    offers: dict[str, float]
    wraps: dict[str, float]
    heartbeats: dict[str, float]
    fallbacks: dict[str, float]
    maxwait: dict[str, float]
    reoffer: dict[str, float]
    finals: dict[str, float]


_LEASES = ("offers", "wraps", "heartbeats", "fallbacks", "maxwait", "reoffer", "finals")


async def snapshot(redis: Redis, keys: SiteKeys, queue_ids: Iterable[str]) -> Snapshot:
    qids = list(queue_ids)
    async with redis.pipeline(transaction=True) as p:
        p.hgetall(keys.contacts)
        p.hgetall(keys.agents)
        p.hgetall(keys.routing_state)
        p.zrange(keys.designated, 0, -1)
        for name in _LEASES:
            p.zrange(getattr(keys, name), 0, -1, withscores=True)
        for q in qids:
            p.zrange(keys.waiting(q), 0, -1, withscores=True)
        res = await p.execute()
    contacts, agents, rstate, desig = res[:4]
    leases = res[4 : 4 + len(_LEASES)]
    waits = res[4 + len(_LEASES) :]

    def zmap(rows: list[tuple[bytes, float]]) -> dict[str, float]:
        return {_s(m): float(sc) for m, sc in rows}

    return Snapshot(
        contacts={_s(k): json.loads(v) for k, v in contacts.items()},
        agents={_s(k): json.loads(v) for k, v in agents.items()},
        rstate={_s(k): _s(v) for k, v in rstate.items()},
        waiting={
            q: [(_s(m), float(sc)) for m, sc in rows] for q, rows in zip(qids, waits, strict=True)
        },
        designated=[_s(m) for m in desig],
        **{name: zmap(rows) for name, rows in zip(_LEASES, leases, strict=True)},
    )


def slots_of(agent: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    ct = agent.get("ct") or {}
    return dict(ct) if isinstance(ct, dict) else {}


def load_on(agent: Mapping[str, Any], channel: str) -> int:
    return sum(1 for s in slots_of(agent).values() if s["ch"] == channel)


def can_take(agent: Mapping[str, Any], channel: str, cdv: bool) -> bool:
    if agent["st"] != "available":
        return False
    if load_on(agent, channel) >= int(agent["cap"].get(channel, 0)):
        return False
    return not (channel == "chat" and not cdv and load_on(agent, "voice") > 0)


def excluded(contact: Mapping[str, Any], agent_id: str, now: int) -> bool:
    ex = contact.get("ex") or {}
    return isinstance(ex, dict) and agent_id in ex and ex[agent_id] > now


# structural invariants ------------------------------------------------------------------


def check_structure(snap: Snapshot, settings: Settings) -> list[str]:
    """Every violation of the state rules, as readable lines (empty when all hold)."""
    bad: list[str] = []
    qcfg = {q.id: queue_config_for_lua(q) for q in settings.queues}

    # agents: capacity, each held slot matches its contact, leases
    holders: dict[str, list[str]] = defaultdict(list)
    for aid, a in snap.agents.items():
        slots = slots_of(a)
        for ch in ("chat", "voice"):
            n = load_on(a, ch)
            if n > int(a["cap"].get(ch, 0)):
                bad.append(f"agent {aid} holds {n} {ch} slots over cap {a['cap']}: {slots}")
        for cid, slot in slots.items():
            c = snap.contacts.get(cid)
            if slot["s"] in HELD_STATES:
                holders[cid].append(aid)
                if c is None:
                    bad.append(f"agent {aid} slot {slot} for missing contact {cid}")
                elif c.get("ag") != aid or c["st"] != slot["s"]:
                    bad.append(
                        f"agent {aid} slot {slot['s']} for {cid} but contact is "
                        f"{c['st']} with agent {c.get('ag')}"
                    )
                elif c["ch"] != slot["ch"] or c["q"] != slot["q"]:
                    bad.append(f"agent {aid} slot {slot} disagrees with contact {c}")
            elif slot["s"] == "wrap":
                if c is not None and (c["st"] != "ended" or c.get("la") != aid):
                    bad.append(f"agent {aid} wraps up {cid} which is {c['st']} of {c.get('la')}")
                if cid not in snap.wraps:
                    bad.append(f"agent {aid} wraps up {cid} without a wrap-up lease")
            else:
                bad.append(f"agent {aid} slot {cid} in unknown state {slot}")
        if a["st"] == "offline":
            if slots:
                bad.append(f"offline agent {aid} still has slots {slots}")
            if aid in snap.heartbeats:
                bad.append(f"offline agent {aid} still has a heartbeat lease")
        else:
            if snap.heartbeats.get(aid) != a.get("hbd"):
                bad.append(
                    f"agent {aid} ({a['st']}) heartbeat lease {snap.heartbeats.get(aid)} "
                    f"!= record {a.get('hbd')}"
                )
        if a["st"] == "wrap_up":
            states = [s["s"] for s in slots.values()]
            if "wrap" not in states or any(s in HELD_STATES for s in states):
                bad.append(f"agent {aid} is in wrap_up with slots {slots}")
    for cid, aids in holders.items():
        if len(aids) > 1:
            bad.append(f"contact {cid} held by several agents at once: {sorted(aids)}")
    wrap_owners = {
        cid for a in snap.agents.values() for cid, s in slots_of(a).items() if s["s"] == "wrap"
    }
    for cid in snap.wraps:
        if cid not in wrap_owners:
            bad.append(f"wrap-up lease for {cid} but no agent wraps it up")

    # contacts: held ones have their agent's slot; waiting ones are in exactly one place
    in_queue: dict[str, list[str]] = defaultdict(list)
    for qid, rows in snap.waiting.items():
        for cid, score in rows:
            in_queue[cid].append(qid)
            c = snap.contacts.get(cid)
            if c is None or c["st"] != "queued" or c["q"] != qid or c.get("dw"):
                bad.append(f"queue {qid} lists {cid} but the record is {c}")
            elif score != float(c["sc"]):
                bad.append(f"queue {qid} scores {cid} {score} but the record says {c['sc']}")
        scores = [s for _, s in rows]
        if scores != sorted(scores):
            bad.append(f"queue {qid} is not in score order: {rows}")
    in_desig: dict[str, list[str]] = defaultdict(list)
    for member in snap.designated:
        cid = member.rsplit("|", 1)[-1]
        in_desig[cid].append(member)
    dw_count: Counter[str] = Counter()
    for cid, c in snap.contacts.items():
        st = c["st"]
        if st in HELD_STATES:
            a = snap.agents.get(c.get("ag") or "")
            slot = slots_of(a).get(cid) if a else None
            if not slot or slot["s"] != st:
                bad.append(f"contact {cid} is {st} by {c.get('ag')} whose slot is {slot}")
        if st == "offered":
            if snap.offers.get(cid) != c.get("od"):
                bad.append(f"offered {cid}: offer lease {snap.offers.get(cid)} != {c.get('od')}")
        elif cid in snap.offers:
            bad.append(f"{st} contact {cid} still has an offer lease")
        if st == "queued":
            if c["sc"] not in (base_score(c["p"], c["t0"]), head_score(c["t0"])):
                bad.append(f"queued {cid} has score {c['sc']} (p={c['p']}, t0={c['t0']})")
            if c.get("dw"):
                dw_count[c["q"]] += 1
                want = [desig_member(c)]
                if in_desig.get(cid) != want or in_queue.get(cid):
                    bad.append(
                        f"{cid} waits for agent {c.get('tgt')} but is in queues "
                        f"{in_queue.get(cid)} and designated {in_desig.get(cid)} (want {want})"
                    )
            elif in_queue.get(cid) != [c["q"]] or in_desig.get(cid):
                bad.append(
                    f"queued {cid} of {c['q']} is in queues {in_queue.get(cid)} "
                    f"and designated {in_desig.get(cid)}"
                )
        else:
            if in_queue.get(cid) or in_desig.get(cid):
                bad.append(f"{st} contact {cid} is still waiting somewhere")
            if c.get("dw"):
                bad.append(f"{st} contact {cid} still flagged as waiting for an agent")
            if cid in snap.fallbacks:
                bad.append(f"{st} contact {cid} still has a designated-wait lease")
        if st in FINAL_STATES:
            if c.get("ag") is not None or c.get("of") is not None:
                bad.append(f"final contact {cid} still names agent/offer: {c}")
            for name in ("maxwait", "reoffer"):
                if cid in getattr(snap, name):
                    bad.append(f"final contact {cid} still has a {name} lease")
            if cid not in snap.finals:
                bad.append(f"final contact {cid} missing from the finals index")
        elif cid in snap.finals:
            bad.append(f"{st} contact {cid} is in the finals index")
    for cid in set(in_queue) | set(in_desig):
        if cid not in snap.contacts:
            bad.append(f"waiting entry for unknown contact {cid}")
    for qid in qcfg:
        have = int(snap.rstate.get(f"dw:{qid}", "0"))
        if have != dw_count[qid]:
            bad.append(f"queue {qid}: designated-waiting counter {have} != {dw_count[qid]}")
    for name in ("offers", "fallbacks", "maxwait", "reoffer"):
        for cid in getattr(snap, name):
            if cid not in snap.contacts:
                bad.append(f"{name} lease for unknown contact {cid}")
    return bad


def check_work_conservation(snap: Snapshot, settings: Settings, now: int) -> list[str]:
    """A waiting contact must not have an agent who could take it right now."""
    bad: list[str] = []
    cdv = settings.routing.chat_during_voice
    for cid, c in snap.contacts.items():
        if c["st"] != "queued":
            continue
        if c.get("dw"):
            a = snap.agents.get(c["tgt"])
            if a and can_take(a, c["ch"], cdv) and not excluded(c, a["id"], now):
                bad.append(
                    f"{cid} waits for agent {a['id']} who could take it now: "
                    f"st={a['st']} slots={slots_of(a)} cap={a['cap']} queues={a.get('q')}"
                )
            continue
        for aid, a in snap.agents.items():
            if (
                c["q"] in (a.get("q") or [])
                and can_take(a, c["ch"], cdv)
                and not excluded(c, aid, now)
            ):
                bad.append(
                    f"{cid} waits in {c['q']} while agent {aid} could take it: "
                    f"slots={slots_of(a)} cap={a['cap']} ex={c.get('ex')}"
                )
                break
    return bad


# event replay ---------------------------------------------------------------------------


@dataclass
class Hold:
    agent: str
    offer: str
    start: tuple[int, int]
    end: tuple[int, int] | None = None
    accepted: bool = False


@dataclass
class _C:
    st: str
    ch: str
    q: str
    holder: str | None = None
    offer: str | None = None
    released_by: str | None = None  # agent whose offer was just released, until requeue
    terminal: list[str] = field(default_factory=list)


@dataclass
class _A:
    st: str = "offline"
    slots: dict[str, tuple[str, str]] = field(default_factory=dict)  # cid -> (s, ch)

    def load(self, ch: str) -> int:
        return sum(1 for _, c in self.slots.values() if c == ch)


@dataclass
class Replay:
    violations: list[str]
    stats: Counter[str]
    holds: dict[str, list[Hold]]
    terminal: dict[str, list[str]]
    max_load: dict[str, dict[str, int]]


def replay(
    events: Iterable[Mapping[str, Any]],
    caps: Mapping[str, Mapping[str, int]],
    cdv: bool = False,
) -> Replay:
    """Replay events ordered by (script call, index in call); report every rule broken."""
    bad: list[str] = []
    stats: Counter[str] = Counter()
    contacts: dict[str, _C] = {}
    agents: dict[str, _A] = defaultdict(_A)
    holds: dict[str, list[Hold]] = defaultdict(list)
    max_load: dict[str, dict[str, int]] = defaultdict(lambda: {"chat": 0, "voice": 0})

    def close(cid: str, pos: tuple[int, int]) -> None:
        h = holds[cid][-1] if holds[cid] else None
        if h is None or h.end is not None:
            bad.append(f"{pos}: hold of {cid} closed but none is open")
        else:
            h.end = pos

    for e in events:
        pos = (int(e["seq"]), int(e["idx"]))
        kind = e["type"]
        stats[kind] += 1
        cid = e.get("contact_id")
        c = contacts.get(cid) if cid else None
        if cid and c is None and kind != "contact.enqueued":
            bad.append(f"{pos}: {kind} for {cid} which was never enqueued")
            continue
        if kind == "contact.enqueued":
            if c is not None:
                bad.append(f"{pos}: {cid} enqueued twice")
            contacts[cid] = _C("queued", e["channel"], e["queue_id"])
        elif kind == "offer.created":
            aid = e["agent_id"]
            a = agents[aid]
            if c.st != "queued" or c.holder is not None:
                bad.append(f"{pos}: {e['offer_id']} to {aid} while {cid} is {c.st} by {c.holder}")
            if a.st != "available":
                bad.append(f"{pos}: {e['offer_id']} to {aid} who is {a.st}")
            ch = e["channel"]
            if a.load(ch) >= caps[aid].get(ch, 0):
                bad.append(f"{pos}: {e['offer_id']} to {aid} at {ch} cap: {a.slots}")
            if ch == "chat" and not cdv and a.load("voice") > 0:
                bad.append(f"{pos}: chat {e['offer_id']} to {aid} holding voice: {a.slots}")
            c.st, c.holder, c.offer, c.q, c.ch = "offered", aid, e["offer_id"], e["queue_id"], ch
            a.slots[cid] = ("offered", ch)
            ml = max_load[aid]
            ml[ch] = max(ml[ch], a.load(ch))
            if holds[cid] and holds[cid][-1].end is None:
                bad.append(f"{pos}: {cid} offered to {aid} while still held by {holds[cid][-1]}")
            holds[cid].append(Hold(aid, e["offer_id"], pos))
        elif kind == "offer.accepted":
            aid = e["agent_id"]
            if c.st != "offered" or c.holder != aid or c.offer != e["offer_id"]:
                bad.append(f"{pos}: {aid} accepted {e['offer_id']} but {cid} is {c}")
            c.st = "active"
            agents[aid].slots[cid] = ("active", c.ch)
            if holds[cid]:
                holds[cid][-1].accepted = True
        elif kind in ("offer.declined", "offer.expired", "offer.revoked"):
            aid = e["agent_id"]
            if c.st != "offered" or c.holder != aid or c.offer != e["offer_id"]:
                bad.append(f"{pos}: {kind} {e['offer_id']} by {aid} but {cid} is {c}")
            if agents[aid].slots.pop(cid, None) is None:
                bad.append(f"{pos}: {kind} {cid} but {aid} had no slot for it")
            close(cid, pos)
            c.st, c.holder, c.offer, c.released_by = "released", None, None, aid
        elif kind == "contact.requeued":
            aid = e["agent_id"]
            if c.st == "released" and c.released_by == aid:
                pass
            elif c.st == "active" and c.holder == aid and e.get("was") == "active":
                agents[aid].slots.pop(cid, None)
                close(cid, pos)
            else:
                bad.append(f"{pos}: {cid} requeued from {aid} ({e.get('was')}) but it is {c}")
            c.st, c.holder, c.released_by, c.q = "queued", None, None, e["queue_id"]
        elif kind == "contact.ended":
            aid = e["agent_id"]
            if c.st != "active" or c.holder != aid:
                bad.append(f"{pos}: {cid} ended by {aid} but it is {c}")
            close(cid, pos)
            if e["wrap_up_ms"] > 0:
                agents[aid].slots[cid] = ("wrap", c.ch)
            else:
                agents[aid].slots.pop(cid, None)
            c.st, c.holder = "ended", None
            c.terminal.append(kind)
        elif kind == "contact.abandoned":
            if c.st not in ("queued", "released"):
                bad.append(f"{pos}: {cid} abandoned while {c}")
            c.st, c.holder = "abandoned", None
            c.terminal.append(kind)
        elif kind == "contact.overflowed":
            if c.st != "queued":
                bad.append(f"{pos}: {cid} overflowed while {c}")
            if e["to"] == "message":
                c.st = "left_message"
                c.terminal.append(kind)
            else:
                c.q = e["to"]
        elif kind == "contact.fell_back":
            if c.st != "queued":
                bad.append(f"{pos}: {cid} fell back while {c}")
        elif kind == "wrap_up.ended":
            a = agents[e["agent_id"]]
            if a.slots.get(cid, ("",))[0] != "wrap":
                bad.append(f"{pos}: wrap-up of {cid} ended but {e['agent_id']} has {a.slots}")
            a.slots.pop(cid, None)
        elif kind == "agent.state_changed":
            a = agents[e["agent_id"]]
            if a.st != e["previous"]:
                bad.append(f"{pos}: {e['agent_id']} went {e['previous']}->{e['state']} from {a.st}")
            a.st = e["state"]
            if a.st == "offline":
                held = {k: v for k, v in a.slots.items() if v[0] != "wrap"}
                if held:
                    bad.append(f"{pos}: {e['agent_id']} offline still holding {held}")
                a.slots.clear()
    for cid, c in contacts.items():
        if len(c.terminal) != 1:
            bad.append(f"{cid} has {len(c.terminal)} terminal events: {c.terminal} ({c.st})")
        if holds[cid] and holds[cid][-1].end is None:
            bad.append(f"{cid} is still held at the end: {holds[cid][-1]}")
        spans = holds[cid]
        for prev, nxt in pairwise(spans):
            if prev.end is None or prev.end > nxt.start:
                bad.append(f"{cid}: holds overlap: {prev} and {nxt}")
    for aid, ml in max_load.items():
        for ch, n in ml.items():
            if n > caps[aid].get(ch, 0):
                bad.append(f"agent {aid} reached {n} {ch} slots over cap {caps[aid]}")
    return Replay(
        bad, stats, dict(holds), {k: v.terminal for k, v in contacts.items()}, dict(max_load)
    )


# script call numbering ------------------------------------------------------------------

CALL_SEQ: ContextVar[int] = ContextVar("routing_call_seq", default=0)


class SequencedScripts:
    """Stands in for ``RoutingEngine.scripts``: the same routing functions, each call run in
    MULTI/EXEC after an INCR of ``seq_key``, so the events of every call get a number that
    orders all calls of all processes as Redis executed them."""

    def __init__(self, inner: Any, redis: Redis, seq_key: str) -> None:
        self.inner = inner
        self.redis = redis
        self.seq_key = seq_key
        self._loaded = False

    async def call(self, name: str, keys: list[str], args: list[Any]) -> str:
        from contactd.routing.scripts import function_name

        fname = function_name(name, self.inner.version)
        for attempt in (1, 2):
            if not self._loaded:
                await self.inner.load()  # FUNCTION LOAD ... REPLACE: harmless when loaded
                self._loaded = True
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    pipe.incr(self.seq_key)
                    pipe.fcall(fname, len(keys), *keys, *args)
                    seq, raw = await pipe.execute()
                break
            except ResponseError as exc:
                if "Function not found" not in str(exc) or attempt == 2:
                    raise
                self._loaded = False
        CALL_SEQ.set(int(seq))
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def __getitem__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """The same for an engine that runs its scripts with EVALSHA (``scripts[name]``)."""
        script = self.inner[name]

        async def call(keys: list[str], args: list[Any]) -> Any:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(self.seq_key)
                await script(keys=keys, args=args, client=pipe)
                seq, raw = await pipe.execute()
            CALL_SEQ.set(int(seq))
            return raw

        return call
