"""Model-based test of the routing engine: a Hypothesis state machine drives the real Lua
scripts (through RoutingEngine, with a ManualClock and Sweeper.sweep_once) and a small
pure-Python model of the routing rules side by side.

How it checks:

* every script call the engine makes is recorded (name, arguments, time, reply); the model
  performs the same operation on its own state and must predict the reply (ok or which
  error) and every event except the dispatch decisions (``offer.created``);
* dispatch decisions are the engine's to make, so the model checks each one instead: the
  contact was waiting, the agent available, under capacity, not excluded, a member of the
  queue (or the designated target), no better-ranked waiting contact was passed over for
  that agent, and the agent is the one the queue's strategy picks (idle: least loaded,
  then longest idle; round robin: next after the cursor);
* after every step the whole Redis state must equal the model's (records, queues, leases)
  and satisfy the invariants of ``tests/routing_invariants.py``, including work
  conservation: nobody waits while an agent who may take them has a free slot.

Choices the model makes where the rules leave room (the engine agrees today):

* a contact requeued at the head (its agent was lost) keeps its head place for the rest of
  its life, also after a later decline or an overflow; head contacts are ordered by their
  original enqueue time, the others by priority then enqueue time, ties by contact id;
* the re-offer lease is checked as a rule, not as a value: a waiting contact with a pending
  decline exclusion must be looked at again no later than that exclusion lapses.

The tests at the end are the smallest reproductions of what this machine and the soak
found, kept as plain regressions.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hsettings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from contactd.bus import Bus
from contactd.clock import ManualClock
from contactd.errors import ContactdError
from contactd.routing.events import EVENTS_ADAPTER
from contactd.routing.models import queue_config_for_lua
from contactd.routing.service import RoutingEngine
from contactd.routing.sweeper import Sweeper
from contactd.settings import QueueConfig, Settings
from contactd.storage.keyspace import SiteKeys
from tests.conftest import make_settings
from tests.routing_invariants import (
    FINAL_STATES,
    Snapshot,
    base_score,
    check_structure,
    check_work_conservation,
    head_score,
    snapshot,
)

QUEUES = [
    QueueConfig(
        id="idle",
        name="Chat, least busy",
        strategy="idle",
        offer_timeout_s=5,
        wrap_up_s=3,
        reoffer_after_s=10,
        max_no_answer=2,
        max_wait_s=25,
        overflow_to="rr",
        max_waiting=4,
        fallback_after_s=6,
    ),
    QueueConfig(
        id="rr",
        name="Chat, round robin",
        strategy="round_robin",
        offer_timeout_s=5,
        wrap_up_s=0,
        reoffer_after_s=0,
        max_wait_s=40,
        overflow_to="message",
        max_waiting=5,
        fallback_after_s=6,
    ),
    QueueConfig(
        id="vip",
        name="Chat, designated",
        strategy="designated",
        fallback_after_s=8,
        fallback_strategy="round_robin",
        offer_timeout_s=6,
        wrap_up_s=2,
        reoffer_after_s=8,
    ),
    QueueConfig(
        id="voice",
        name="Voice",
        channel="voice",
        strategy="idle",
        offer_timeout_s=5,
        wrap_up_s=2,
        reoffer_after_s=6,
        fallback_after_s=0,
    ),
]
QUEUE_IDS = [q.id for q in QUEUES]
AGENTS: dict[str, tuple[list[str], dict[str, int]]] = {
    "a1": (["idle", "rr"], {"chat": 2, "voice": 1}),
    "a2": (["idle", "voice"], {"chat": 1, "voice": 1}),
    "a3": (["rr", "vip", "voice"], {"chat": 3, "voice": 1}),
    "a4": (["idle", "vip"], {"chat": 1, "voice": 0}),
}
AGENT_IDS = sorted(AGENTS)
TARGETS = [*AGENT_IDS, "a9"]  # a9 never logs in
HEARTBEAT_TTL_S = 20.0


def model_settings(site: str) -> Settings:
    return make_settings(site, QUEUES, routing={"heartbeat_ttl_s": HEARTBEAT_TTL_S})


# the model ----------------------------------------------------------------------------------


@dataclass
class MContact:
    id: str
    q: str
    q0: str
    ch: str
    p: int
    t0: int
    st: str = "queued"
    ag: str | None = None
    la: str | None = None
    of: str | None = None
    od: int | None = None
    n: int = 0
    tgt: str | None = None
    dw: bool = False  # waiting for its designated agent
    head: bool = False  # requeued at the head once (agent lost): stays ahead of its queue
    ex: dict[str, int] = field(default_factory=dict)
    fr: str | None = None
    te: int | None = None
    ta: int | None = None
    lo: str | None = None
    offer_ids: list[str] = field(default_factory=list)

    @property
    def sc(self) -> int:
        return head_score(self.t0) if self.head else base_score(self.p, self.t0)

    @property
    def rank(self) -> tuple[int, str]:
        return (self.sc, self.id)


@dataclass
class MAgent:
    id: str
    q: list[str]
    cap: dict[str, int]
    st: str = "offline"
    rsn: str = ""
    ct: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # cid -> (s, ch, q)
    le: int = 0
    miss: int = 0
    hbd: int = 0

    def load(self, ch: str) -> int:
        return sum(1 for _, c, _ in self.ct.values() if c == ch)

    def busy(self) -> int:
        return sum(1 for s, _, _ in self.ct.values() if s != "wrap")


@dataclass
class Reply:
    ok: bool
    code: str | None = None
    r: Any = None  # compared when not None
    check_r: bool = False


class ModelError(AssertionError):
    pass


class Model:
    """The routing rules, written from SPEC §1 and the scripts' documented contracts."""

    def __init__(self, settings: Settings) -> None:
        self.cfg = {q.id: queue_config_for_lua(q) for q in settings.queues}
        self.cdv = settings.routing.chat_during_voice
        self.contacts: dict[str, MContact] = {}
        self.agents: dict[str, MAgent] = {}
        self.wraps: dict[str, int] = {}
        self.heartbeats: dict[str, int] = {}
        self.fallbacks: dict[str, int] = {}
        self.maxwait: dict[str, int] = {}
        self.finals: dict[str, int] = {}
        self.rr: dict[str, str] = {}
        self.now = 0
        self.expected: list[dict[str, Any]] = []

    # helpers -------------------------------------------------------------------------
    def emit(self, kind: str, **data: Any) -> None:
        self.expected.append({"type": kind, **data})

    def can_take(self, a: MAgent, ch: str) -> bool:
        if a.st != "available" or a.load(ch) >= a.cap.get(ch, 0):
            return False
        return not (ch == "chat" and not self.cdv and a.load("voice") > 0)

    def excluded(self, c: MContact, aid: str) -> bool:
        return c.ex.get(aid, 0) > self.now

    def waiting_in(self, qid: str) -> list[MContact]:
        return sorted(
            (c for c in self.contacts.values() if c.st == "queued" and not c.dw and c.q == qid),
            key=lambda c: c.rank,
        )

    def waiting_for(self, aid: str) -> list[MContact]:
        return sorted(
            (c for c in self.contacts.values() if c.st == "queued" and c.dw and c.tgt == aid),
            key=lambda c: c.rank,
        )

    def waiting_count(self, qid: str) -> int:
        return sum(1 for c in self.contacts.values() if c.st == "queued" and c.q == qid)

    def set_state(self, a: MAgent, st_: str, reason: str) -> None:
        if a.st == st_ and a.rsn == reason:
            return
        self.emit("agent.state_changed", agent_id=a.id, state=st_, reason=reason, previous=a.st)
        a.st, a.rsn = st_, reason

    def leave_waiting(self, c: MContact) -> None:
        if c.dw:
            c.dw = False
            self.fallbacks.pop(c.id, None)

    def finalize(self, c: MContact, state: str, reason: str) -> None:
        c.st, c.fr, c.te = state, reason, self.now
        c.ag = c.of = c.od = None
        for lease in (self.maxwait, self.fallbacks):
            lease.pop(c.id, None)
        self.finals[c.id] = self.now

    def requeue(self, c: MContact, at_head: bool) -> None:
        c.st, c.ag, c.of, c.od = "queued", None, None, None
        if at_head:
            c.head = True
        if c.tgt and not at_head and self.cfg[c.q]["fallback_ms"] is None:
            c.dw = True  # back to waiting for the designated agent, indefinitely
        else:
            c.tgt, c.dw = None, False

    def free_slot(self, a: MAgent, cid: str) -> None:
        a.ct.pop(cid, None)
        a.le = self.now
        self.wraps.pop(cid, None)

    def finish_active(
        self, c: MContact, a: MAgent, reason: str, disposition: str | None = None
    ) -> None:
        wrap_ms = self.cfg[c.q]["wrap_ms"]
        self.finalize(c, "ended", reason)
        if wrap_ms > 0 and a.st != "offline":
            a.ct[c.id] = ("wrap", c.ch, c.q)
            self.wraps[c.id] = self.now + wrap_ms
            if a.st == "available" and a.busy() == 0:
                self.set_state(a, "wrap_up", "")
        else:
            self.free_slot(a, c.id)
        self.emit(
            "contact.ended",
            contact_id=c.id,
            queue_id=c.q,
            agent_id=a.id,
            reason=reason,
            handle_ms=self.now - (c.ta if c.ta is not None else self.now),
            wrap_up_ms=wrap_ms,
            disposition=disposition,
        )

    def lose_agent(self, a: MAgent, reason: str) -> None:
        for cid, (s, _, _) in sorted(a.ct.items()):
            c = self.contacts.get(cid)
            if s == "wrap":
                self.wraps.pop(cid, None)
            elif c and c.st in ("offered", "active") and c.ag == a.id:
                was = c.st
                if was == "offered":
                    c.lo = c.of
                    self.emit(
                        "offer.revoked",
                        offer_id=c.of,
                        contact_id=cid,
                        agent_id=a.id,
                        queue_id=c.q,
                        reason=reason,
                    )
                self.requeue(c, True)
                self.emit(
                    "contact.requeued",
                    contact_id=cid,
                    queue_id=c.q,
                    agent_id=a.id,
                    reason="agent_lost",
                    was=was,
                    at_head=True,
                )
        a.ct = {}
        a.le = self.now
        self.heartbeats.pop(a.id, None)
        self.set_state(a, "offline", reason)

    # operations: one per script; return the reply the script must give ------------------
    def apply(self, name: str, args: dict[str, Any], now: int) -> Reply:
        self.now = now
        self.expected = []
        return getattr(self, "op_" + name)(args)

    def op_enqueue(self, A: dict[str, Any]) -> Reply:
        cfg = self.cfg[A["q"]]
        old = self.contacts.get(A["id"])
        if old is not None:
            return Reply(True) if old.q0 == A["q"] else Reply(False, "contact_exists")
        if cfg["strategy"] == "designated" and not A.get("tgt"):
            return Reply(False, "designated_target_required")
        if self.waiting_count(A["q"]) >= cfg["max_waiting"]:
            return Reply(False, "queue_full")
        c = MContact(A["id"], A["q"], A["q"], cfg["channel"], A["p"], self.now)
        self.contacts[c.id] = c
        self.emit(
            "contact.enqueued",
            contact_id=c.id,
            queue_id=c.q,
            channel=c.ch,
            priority=c.p,
            target_agent_id=A.get("tgt"),
        )
        if cfg["max_wait_ms"] is not None:
            self.maxwait[c.id] = self.now + cfg["max_wait_ms"]
        if A.get("tgt"):
            c.tgt, c.dw = A["tgt"], True
            if cfg["fallback_ms"] is not None:
                self.fallbacks[c.id] = self.now + cfg["fallback_ms"]
        return Reply(True)

    def op_cancel(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        if c is None:
            return Reply(False, "contact_not_found")
        if c.st in FINAL_STATES:
            return Reply(True)
        a = self.agents.get(c.ag) if c.ag else None
        if c.st == "active":
            assert a is not None
            self.finish_active(c, a, A["reason"])
            return Reply(True)
        was = c.st
        if was == "queued":
            self.leave_waiting(c)
        elif a is not None:
            self.emit(
                "offer.revoked",
                offer_id=c.of,
                contact_id=c.id,
                agent_id=a.id,
                queue_id=c.q,
                reason=A["reason"],
            )
            a.ct.pop(c.id, None)
        self.emit(
            "contact.abandoned",
            contact_id=c.id,
            queue_id=c.q,
            reason=A["reason"],
            waited_ms=self.now - c.t0,
            was=was,
        )
        self.finalize(c, "abandoned", A["reason"])
        return Reply(True)

    def op_accept(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        if c is None:
            return Reply(False, "offer_not_found")
        if c.st == "active" and c.of == A["offer"] and c.ag == A["agent"]:
            return Reply(True)
        if c.of != A["offer"] or c.st != "offered":
            return Reply(False, "offer_expired")
        if c.ag != A["agent"]:
            return Reply(False, "not_your_offer")
        if c.od is not None and c.od <= self.now:
            return Reply(False, "offer_expired")
        a = self.agents[A["agent"]]
        c.st, c.ta, c.la = "active", self.now, a.id
        a.ct[c.id] = ("active", c.ch, c.q)
        a.miss = 0
        self.maxwait.pop(c.id, None)
        self.emit(
            "offer.accepted",
            offer_id=c.of,
            contact_id=c.id,
            agent_id=a.id,
            queue_id=c.q,
            channel=c.ch,
            waited_ms=self.now - c.t0,
        )
        return Reply(True)

    def op_decline(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        offer = A.get("offer")
        if A["timeout"]:
            if c is None or c.st != "offered":
                return Reply(True)
            offer = c.of
        if c is None:
            return Reply(False, "offer_not_found")
        if c.lo == offer:
            return Reply(True)
        if c.st != "offered" or c.of != offer:
            return Reply(False, "offer_expired")
        if A.get("agent") and c.ag != A["agent"]:
            return Reply(False, "not_your_offer")
        assert c.od is not None and c.ag is not None
        if A["timeout"] and c.od > self.now:
            return Reply(True)
        a = self.agents[c.ag]
        cfg = self.cfg[c.q]
        outcome = "expired" if A["timeout"] else "declined"
        self.emit(
            "offer." + outcome,
            offer_id=c.of,
            contact_id=c.id,
            agent_id=a.id,
            queue_id=c.q,
            channel=c.ch,
        )
        a.ct.pop(c.id, None)
        c.lo = c.of
        if cfg["reoffer_ms"] > 0:
            c.ex[a.id] = self.now + cfg["reoffer_ms"]
        if A["timeout"]:
            a.miss += 1
            if a.miss >= cfg["max_no_answer"] and a.st == "available":
                self.set_state(a, "away", "no_answer")
        self.requeue(c, False)
        self.emit(
            "contact.requeued",
            contact_id=c.id,
            queue_id=c.q,
            agent_id=a.id,
            reason=outcome,
            at_head=False,
            was=None,
        )
        return Reply(True)

    def op_end_contact(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        if c is None:
            return Reply(False, "contact_not_found")
        if c.st == "ended" and (not A.get("agent") or c.la == A["agent"]):
            return Reply(True)
        if c.st in FINAL_STATES:
            return Reply(False, "contact_finished")
        if c.st != "active":
            return Reply(False, "contact_not_active")
        if A.get("agent") and c.ag != A["agent"]:
            return Reply(False, "not_your_contact")
        assert c.ag is not None
        self.finish_active(c, self.agents[c.ag], A["reason"], A.get("disposition"))
        return Reply(True)

    def op_complete_wrap(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        if c is None:
            self.wraps.pop(A["id"], None)
            return Reply(False, "contact_not_found")
        if A.get("agent") and c.la != A["agent"]:
            return Reply(False, "not_your_contact")
        a = self.agents.get(c.la) if c.la else None
        if a is None or a.ct.get(c.id, ("",))[0] != "wrap":
            self.wraps.pop(c.id, None)
            return Reply(True, r={"done": False}, check_r=True)
        if A["expired"] and self.wraps.get(c.id, 0) > self.now:
            return Reply(True, r={"done": False}, check_r=True)
        self.free_slot(a, c.id)
        self.emit("wrap_up.ended", contact_id=c.id, agent_id=a.id, expired=bool(A["expired"]))
        if a.st == "wrap_up" and not any(s == "wrap" for s, _, _ in a.ct.values()):
            self.set_state(a, "available", "")
        return Reply(True, r={"done": True}, check_r=True)

    def op_agent_login(self, A: dict[str, Any]) -> Reply:
        a = self.agents.get(A["agent"])
        if a is None:
            a = self.agents[A["agent"]] = MAgent(A["agent"], [], {}, le=self.now)
        if a.st == "offline":
            a.le, a.miss = self.now, 0
            self.emit("agent.logged_in", agent_id=a.id, queues=A["queues"])
        a.q, a.cap = list(A["queues"]), dict(A["cap"])
        a.hbd = self.now + A["ttl"]
        self.heartbeats[a.id] = a.hbd
        self.set_state(a, A["state"], A["reason"])
        return Reply(True)

    def op_agent_state(self, A: dict[str, Any]) -> Reply:
        a = self.agents.get(A["agent"])
        if a is None:
            return Reply(False, "agent_not_found")
        if a.st == "offline" and A["state"] != "offline":
            return Reply(False, "agent_offline")
        if A["state"] == "offline":
            if a.st != "offline":
                self.lose_agent(a, A["reason"] or "logout")
            return Reply(True)
        if A["state"] == "available":
            for cid, (s, _, _) in sorted(a.ct.items()):
                if s == "wrap":
                    self.free_slot(a, cid)
                    self.emit("wrap_up.ended", contact_id=cid, agent_id=a.id, expired=False)
            a.miss = 0
        self.set_state(a, A["state"], A["reason"])
        return Reply(True)

    def op_heartbeat(self, A: dict[str, Any]) -> Reply:
        a = self.agents.get(A["agent"])
        if a is None:
            return Reply(False, "agent_not_found")
        if a.st == "offline":
            return Reply(False, "agent_offline")
        a.hbd = self.now + A["ttl"]
        self.heartbeats[a.id] = a.hbd
        return Reply(True)

    def op_agent_lost(self, A: dict[str, Any]) -> Reply:
        a = self.agents.get(A["agent"])
        if a is None or a.st == "offline":
            self.heartbeats.pop(A["agent"], None)
            return Reply(True, r={"lost": False}, check_r=True)
        if A["expired"] and a.hbd > self.now:
            return Reply(True, r={"lost": False}, check_r=True)
        self.emit("agent.lost", agent_id=a.id, reason=A["reason"])
        self.lose_agent(a, A["reason"])
        return Reply(True, r={"lost": True}, check_r=True)

    def op_overflow(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        none = Reply(True, r={"moved_to": None}, check_r=True)
        if c is None or c.st != "queued":
            if c is not None and c.st == "offered":
                assert c.od is not None
                self.maxwait[c.id] = c.od  # looked at again when the offer is over
            else:
                self.maxwait.pop(A["id"], None)
            return none
        if self.maxwait.get(c.id, 0) > self.now:
            return none
        target = self.cfg[c.q]["overflow_to"]
        self.maxwait.pop(c.id, None)
        tq = self.cfg.get(target) if target not in (None, "message") else None
        if tq is not None and self.waiting_count(tq["id"]) >= tq["max_waiting"]:
            tq = None
        self.leave_waiting(c)
        src = c.q
        if tq is None:
            self.emit(
                "contact.overflowed",
                contact_id=c.id,
                queue_id=src,
                to="message",
                waited_ms=self.now - c.t0,
            )
            self.finalize(c, "left_message", "max_wait")
            return Reply(True, r={"moved_to": "message"}, check_r=True)
        c.q, c.ch, c.tgt, c.dw, c.ex = tq["id"], tq["channel"], None, False, {}
        if tq["max_wait_ms"] is not None:
            self.maxwait[c.id] = self.now + tq["max_wait_ms"]
        self.emit(
            "contact.overflowed",
            contact_id=c.id,
            queue_id=src,
            to=c.q,
            waited_ms=self.now - c.t0,
        )
        return Reply(True, r={"moved_to": c.q}, check_r=True)

    def op_fallback(self, A: dict[str, Any]) -> Reply:
        c = self.contacts.get(A["id"])
        if c is None or c.st != "queued" or not c.dw:
            self.fallbacks.pop(A["id"], None)
            return Reply(True, r={"fell_back": False}, check_r=True)
        if self.fallbacks.get(c.id, 0) > self.now:
            return Reply(True, r={"fell_back": False}, check_r=True)
        target = c.tgt
        self.leave_waiting(c)
        c.tgt = None
        self.emit("contact.fell_back", contact_id=c.id, queue_id=c.q, target_agent_id=target)
        return Reply(True, r={"fell_back": True}, check_r=True)

    def op_reoffer(self, A: dict[str, Any]) -> Reply:
        # the lease itself is checked by rule (see compare), the dispatch like any other
        return Reply(True)

    def op_dispatch(self, A: dict[str, Any]) -> Reply:
        return Reply(True)

    def op_purge(self, A: dict[str, Any]) -> Reply:
        due = sorted((t, cid) for cid, t in self.finals.items() if t <= A["before"])
        for _, cid in due[: A["limit"]]:
            del self.finals[cid]
            del self.contacts[cid]
        return Reply(True, r={"purged": len(due[: A["limit"]])}, check_r=True)

    # dispatch decisions: the engine chooses, the model checks --------------------------
    def check_offer(self, e: dict[str, Any]) -> None:
        cid, aid = e["contact_id"], e["agent_id"]
        c = self.contacts.get(cid)
        a = self.agents.get(aid)
        bad: list[str] = []
        if c is None or a is None:
            raise ModelError(f"offer {e} for an unknown contact or agent")
        if c.st != "queued":
            bad.append(f"{cid} is {c.st} (by {c.ag}), not waiting")
        if not self.can_take(a, c.ch):
            bad.append(f"{aid} cannot take a {c.ch}: st={a.st} slots={a.ct} cap={a.cap}")
        if self.excluded(c, aid):
            bad.append(f"{aid} declined/missed {cid} until {c.ex[aid]}")
        cfg = self.cfg[c.q]
        want = {
            "queue_id": c.q,
            "channel": c.ch,
            "priority": c.p,
            "attempt": c.n + 1,
            "deadline": self.now + cfg["offer_ms"],
            "waited_ms": self.now - c.t0,
        }
        got = {k: e[k] for k in want}
        if got != want:
            bad.append(f"offer fields {got} != {want}")
        if c.dw:
            if aid != c.tgt:
                bad.append(f"{cid} waits for {c.tgt}, offered to {aid}")
            for other in self.waiting_for(aid):
                if other.rank >= c.rank:
                    break
                if self.can_take(a, other.ch) and not self.excluded(other, aid):
                    bad.append(f"{other.id} waited for {aid} longer (rank) and was passed over")
        else:
            if c.q not in a.q:
                bad.append(f"{aid} is not in queue {c.q}")
            for other in self.waiting_in(c.q):
                if other.rank >= c.rank:
                    break
                if not self.excluded(other, aid):
                    bad.append(f"{other.id} is ahead of {cid} in {c.q} and {aid} could take it")
            cands = [
                b
                for b in self.agents.values()
                if c.q in b.q and self.can_take(b, c.ch) and not self.excluded(c, b.id)
            ]
            strategy = cfg["strategy"]
            if strategy == "designated":
                strategy = cfg["fallback_strategy"]
            if cands and strategy == "idle":
                best = min(cands, key=lambda b: (b.load(c.ch) / b.cap[c.ch], b.le, b.id))
                if best.id != aid:
                    bad.append(
                        f"idle strategy should pick {best.id} "
                        f"(loads {[(b.id, b.load(c.ch), b.cap[c.ch], b.le) for b in cands]})"
                    )
            elif cands and strategy == "round_robin":
                ids = sorted(b.id for b in cands)
                cursor = self.rr.get(c.q, "")
                nxt = next((i for i in ids if i > cursor), ids[0])
                if nxt != aid:
                    bad.append(f"round robin after {cursor!r} should pick {nxt} of {ids}")
                self.rr[c.q] = aid
        if bad:
            raise ModelError(f"bad offer {e['offer_id']} to {aid}: " + "; ".join(bad))
        self.leave_waiting(c)
        c.st, c.ag, c.of, c.od, c.n = "offered", aid, e["offer_id"], e["deadline"], c.n + 1
        c.offer_ids.append(e["offer_id"])
        a.ct[cid] = ("offered", c.ch, c.q)

    # leases due now (after a sweep none may be left) ------------------------------------
    def due_leases(self) -> list[str]:
        now = self.now
        out = [
            f"offer {c.id}"
            for c in self.contacts.values()
            if c.st == "offered" and c.od is not None and c.od <= now
        ]
        for name in ("wraps", "heartbeats", "fallbacks", "maxwait"):
            out += [f"{name} {k}" for k, t in getattr(self, name).items() if t <= now]
        return out


# comparing the model with Redis -------------------------------------------------------------


def compare(m: Model, snap: Snapshot) -> list[str]:
    bad: list[str] = []
    for cid in sorted(set(m.contacts) | set(snap.contacts)):
        mc, rc = m.contacts.get(cid), snap.contacts.get(cid)
        if mc is None or rc is None:
            bad.append(f"contact {cid}: model {mc} vs redis {rc}")
            continue
        want = {
            "st": mc.st,
            "q": mc.q,
            "q0": mc.q0,
            "ch": mc.ch,
            "p": mc.p,
            "t0": mc.t0,
            "ag": mc.ag,
            "la": mc.la,
            "of": mc.of,
            "od": mc.od,
            "n": mc.n,
            "tgt": mc.tgt,
            "dw": mc.dw,
            "sc": mc.sc,
            "ex": mc.ex,
            "fr": mc.fr,
            "te": mc.te,
            "ta": mc.ta,
            "lo": mc.lo,
        }
        have = {k: rc.get(k) for k in want}
        have["dw"] = bool(rc.get("dw"))
        have["ex"] = dict(rc.get("ex") or {})
        diff = {k: (want[k], have[k]) for k in want if want[k] != have[k]}
        if diff:
            bad.append(f"contact {cid} (model, redis): {diff}")
    for aid in sorted(set(m.agents) | set(snap.agents)):
        ma, ra = m.agents.get(aid), snap.agents.get(aid)
        if ma is None or ra is None:
            bad.append(f"agent {aid}: model {ma} vs redis {ra}")
            continue
        slots = {k: (v["s"], v["ch"], v["q"]) for k, v in (ra.get("ct") or {}).items()}
        want = {
            "st": ma.st,
            "rsn": ma.rsn,
            "q": ma.q,
            "cap": ma.cap,
            "ct": ma.ct,
            "le": ma.le,
            "miss": ma.miss,
        }
        have = {
            "st": ra["st"],
            "rsn": ra.get("rsn", ""),
            "q": ra.get("q") or [],
            "cap": ra.get("cap"),
            "ct": slots,
            "le": ra.get("le"),
            "miss": ra.get("miss", 0),
        }
        if ma.st != "offline":
            want["hbd"], have["hbd"] = ma.hbd, ra.get("hbd")
        diff = {k: (want[k], have[k]) for k in want if want[k] != have[k]}
        if diff:
            bad.append(f"agent {aid} (model, redis): {diff}")
    leases = {
        "offers": {c.id: c.od for c in m.contacts.values() if c.st == "offered"},
        "wraps": m.wraps,
        "heartbeats": m.heartbeats,
        "fallbacks": m.fallbacks,
        "maxwait": m.maxwait,
        "finals": m.finals,
    }
    for name, want_l in leases.items():
        have_l = {k: int(v) for k, v in getattr(snap, name).items()}
        if dict(want_l) != have_l:
            bad.append(f"lease {name} (model, redis): {dict(want_l)} vs {have_l}")
    # a decline / no-answer exclusion must be acted on when it lapses: a waiting contact
    # has a re-offer lease no later than its first exclusion to lapse
    for cid, mc in m.contacts.items():
        future = [t for t in mc.ex.values() if t > m.now]
        lease = snap.reoffer.get(cid)
        if mc.st == "queued" and future and (lease is None or lease > min(future)):
            bad.append(
                f"{cid} is excluded for {mc.ex} (now {m.now}) but will only be offered "
                f"again at {lease}: the first exclusion lapses at {min(future)}"
            )
        if lease is not None and lease <= m.now:
            bad.append(f"{cid}: re-offer lease {lease} is overdue (now {m.now})")
    for qid in QUEUE_IDS:
        want_w = [(c.id, c.sc) for c in m.waiting_in(qid)]
        have_w = [(cid, int(sc)) for cid, sc in snap.waiting[qid]]
        if want_w != have_w:
            bad.append(f"queue {qid} order (model, redis): {want_w} vs {have_w}")
        if qid in m.rr and snap.rstate.get(f"rr:{qid}") != m.rr[qid]:
            bad.append(f"round-robin cursor {qid}: {m.rr[qid]} vs {snap.rstate.get(f'rr:{qid}')}")
    want_d = sorted(
        f"{c.tgt}|{c.sc - head_score(0):016d}|{c.id}"
        for c in m.contacts.values()
        if c.st == "queued" and c.dw
    )
    if want_d != sorted(snap.designated):
        bad.append(f"designated waits (model, redis): {want_d} vs {sorted(snap.designated)}")
    return bad


def _key(e: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in e.items() if k != "at"}, sort_keys=True)


# recording the engine's script calls ----------------------------------------------------------


@dataclass
class Call:
    name: str
    args: dict[str, Any]
    now: int
    reply: dict[str, Any]


class RecordingScripts:
    """Stands in for ``RoutingEngine.scripts``: runs the real routing function, keeps a
    record of every call (name, arguments, time, reply)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Call] = []

    def _record(self, name: str, args: list[Any], raw: Any) -> None:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        self.calls.append(Call(name, json.loads(args[2]), int(args[0]), json.loads(text)))

    async def call(self, name: str, keys: list[str], args: list[Any]) -> str:
        raw: str = await self.inner.call(name, keys, args)
        self._record(name, args, raw)
        return raw

    def __getitem__(self, name: str) -> Callable[..., Awaitable[Any]]:
        """The same for an engine that runs its scripts with EVALSHA (``scripts[name]``)."""
        script = self.inner[name]

        async def call(keys: list[str], args: list[Any]) -> Any:
            raw = await script(keys=keys, args=args)
            self._record(name, args, raw)
            return raw

        return call


# the state machine ----------------------------------------------------------------------------


class RoutingMachine(RuleBasedStateMachine):
    redis_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.site = "m" + secrets.token_hex(6)
        self.settings = model_settings(self.site)
        self.keys = SiteKeys(self.site)
        self.clock = ManualClock()
        self.redis = Redis.from_url(self.redis_url)
        self.bus_events: list[Any] = []
        bus = Bus()
        bus.subscribe(self.bus_events.append)
        self.engine = RoutingEngine(self.redis, self.settings, self.clock, bus, self.keys)
        self.recorder = RecordingScripts(self.engine.scripts)
        self.engine.scripts = self.recorder  # type: ignore[assignment]
        self.sweeper = Sweeper(self.engine, 0.25)
        self.model = Model(self.settings)
        self.model.now = self.clock.now_ms()
        self.next_id = 0
        self.log: list[str] = []

    def teardown(self) -> None:
        async def clean() -> None:
            keys = [k async for k in self.redis.scan_iter(match=f"cd:{{{self.site}}}:*")]
            if keys:
                await self.redis.delete(*keys)
            await self.redis.aclose()

        try:
            self.loop.run_until_complete(clean())
        finally:
            self.loop.close()

    # running one engine operation against the model --------------------------------------
    def _do(self, what: str, make: Callable[[], Awaitable[Any]]) -> ContactdError | None:
        self.recorder.calls.clear()
        self.bus_events.clear()
        self.log.append(what)
        err: ContactdError | None = None
        try:
            self.loop.run_until_complete(make())
        except ContactdError as exc:
            err = exc
        self._replay(what)
        return err

    def _replay(self, what: str) -> None:
        published: list[dict[str, Any]] = []
        for call in self.recorder.calls:
            if "need" in call.reply:
                continue
            events = [
                e.model_dump() for e in EVENTS_ADAPTER.validate_python(call.reply["ev"] or [])
            ]
            published += events
            ctx = f"{what}: script {call.name}({call.args}) at {call.now}"
            want = self.model.apply(call.name, call.args, call.now)
            got_code = None if call.reply["ok"] else call.reply["code"]
            if call.reply["ok"] != want.ok or got_code != want.code:
                raise ModelError(
                    f"{ctx}: engine said ok={call.reply['ok']} {got_code}, model "
                    f"ok={want.ok} {want.code}"
                )
            got_r = call.reply.get("r") or {}
            if want.check_r and {k: got_r.get(k) for k in want.r} != want.r:
                raise ModelError(f"{ctx}: engine returned {call.reply['r']}, model {want.r}")
            firsts = [e for e in events if e["type"] != "offer.created"]
            n = len(firsts)
            if any(e["type"] == "offer.created" for e in events[:n]):
                raise ModelError(f"{ctx}: events after a dispatch decision: {events}")
            # fields the model does not know (added to an event later) are not compared
            known = {e["type"]: set(e) | {"at"} for e in self.model.expected}
            seen = [{k: v for k, v in e.items() if k in known.get(e["type"], e)} for e in firsts]
            if Counter(map(_key, seen)) != Counter(map(_key, self.model.expected)):
                raise ModelError(
                    f"{ctx}: events differ\n  engine: {firsts}\n  model:  {self.model.expected}"
                )
            for e in events:
                if e["at"] != call.now:
                    raise ModelError(f"{ctx}: event time {e['at']} != {call.now}")
            for e in events[n:]:
                try:
                    self.model.check_offer(e)
                except ModelError as exc:
                    raise ModelError(f"{ctx}: {exc}") from None
            if call.name == "enqueue" and call.reply["ok"]:
                self._check_position(ctx, call.args["id"], call.reply["r"])
        bus = [e.model_dump() for e in self.bus_events]
        if bus != published:
            raise ModelError(f"{what}: the bus got {bus}, the scripts returned {published}")

    def _check_position(self, ctx: str, cid: str, view: dict[str, Any]) -> None:
        """enqueue answers with the contact's place in its queue while it waits there."""
        c = self.model.contacts[cid]
        want = None
        if c.st == "queued" and not c.dw:
            want = [w.id for w in self.model.waiting_in(c.q)].index(cid)
        pos = view.get("position")
        if isinstance(pos, bool):  # a Lua false (nil from ZRANK) is no position
            pos = f"{pos!r} (a Lua false)"
        if (view.get("state"), view.get("queue_id"), pos) != (c.st, c.q, want):
            raise ModelError(
                f"{ctx}: enqueue answered state={view.get('state')} "
                f"queue={view.get('queue_id')} position={pos}, model: {c.st} in {c.q} at {want}"
            )

    # rules ------------------------------------------------------------------------------
    @initialize(
        states=st.lists(
            st.sampled_from(["available", "available", "away", "never"]), min_size=4, max_size=4
        )
    )
    def start(self, states: list[str]) -> None:
        for agent, state in zip(AGENT_IDS, states, strict=True):
            if state != "never":
                self.login(agent, state)

    @rule(
        queue=st.sampled_from(QUEUE_IDS),
        priority=st.integers(0, 9),
        to=st.one_of(st.none(), st.sampled_from(TARGETS)),
    )
    def enqueue(self, queue: str, priority: int, to: str | None) -> None:
        cid = f"c{self.next_id:03d}"
        self.next_id += 1
        self._do(
            f"enqueue {cid} {queue} p{priority} -> {to}",
            lambda: self.engine.enqueue(
                queue, priority=priority, contact_id=cid, target_agent_id=to
            ),
        )

    @rule(
        queue=st.sampled_from(QUEUE_IDS),
        priority=st.integers(0, 9),
        to=st.one_of(st.none(), st.sampled_from(TARGETS)),
    )
    def another_enqueue(self, queue: str, priority: int, to: str | None) -> None:
        self.enqueue(queue, priority, to)

    @precondition(lambda self: self.model.contacts)
    @rule(pick=st.integers(0, 99), same_queue=st.booleans())
    def enqueue_again(self, pick: int, same_queue: bool) -> None:
        c = self._pick(list(self.model.contacts.values()), pick)
        queue = c.q0 if same_queue else next(q for q in QUEUE_IDS if q != c.q0)
        self._do(
            f"enqueue {c.id} again into {queue}",
            lambda: self.engine.enqueue(queue, priority=c.p, contact_id=c.id),
        )

    @rule(
        agent=st.sampled_from(AGENT_IDS), state=st.sampled_from(["available", "available", "away"])
    )
    def login(self, agent: str, state: str) -> None:
        queues, cap = AGENTS[agent]
        self._do(
            f"login {agent} {state}",
            lambda: self.engine.login(agent, queues=queues, capacity=cap, state=state),  # type: ignore[arg-type]
        )

    @rule(
        agent=st.sampled_from(AGENT_IDS),
        state=st.sampled_from(["available", "available", "available", "away", "offline"]),
    )
    def set_state(self, agent: str, state: str) -> None:
        reason = "lunch" if state == "away" else ""
        self._do(
            f"set {agent} {state}",
            lambda: self.engine.set_state(agent, state, reason),  # type: ignore[arg-type]
        )

    def _pick(self, items: list[Any], pick: int) -> Any:
        items = sorted(items, key=lambda x: x.id)
        return items[pick % len(items)]

    def _offered(self) -> list[MContact]:
        return [c for c in self.model.contacts.values() if c.st == "offered"]

    def _other_agent(self, aid: str | None) -> str:
        return next(a for a in AGENT_IDS if a != aid)

    @precondition(lambda self: self._offered())
    @rule(pick=st.integers(0, 99), how=st.sampled_from(["own", "own", "own", "other", "stale"]))
    def accept(self, pick: int, how: str) -> None:
        c = self._pick(self._offered(), pick)
        offer, agent = c.of, c.ag
        if how == "other":
            agent = self._other_agent(c.ag)
        elif how == "stale" and len(c.offer_ids) > 1:
            offer = c.offer_ids[-2]
        assert offer is not None and agent is not None
        self._do(f"{agent} accepts {offer}", lambda: self.engine.accept(offer, agent))

    @precondition(lambda self: self._offered())
    @rule(pick=st.integers(0, 99))
    def accept_own(self, pick: int) -> None:
        self.accept(pick, "own")

    @precondition(lambda self: self._offered())
    @rule(pick=st.integers(0, 99))
    def accept_at_once(self, pick: int) -> None:
        self.accept(pick, "own")

    @precondition(lambda self: self._offered())
    @rule(pick=st.integers(0, 99))
    def decline_own(self, pick: int) -> None:
        self.decline(pick, "own")

    @precondition(lambda self: self._offered())
    @rule(pick=st.integers(0, 99), how=st.sampled_from(["own", "own", "own", "other", "stale"]))
    def decline(self, pick: int, how: str) -> None:
        c = self._pick(self._offered(), pick)
        offer, agent = c.of, c.ag
        if how == "other":
            agent = self._other_agent(c.ag)
        elif how == "stale" and len(c.offer_ids) > 1:
            offer = c.offer_ids[-2]
        assert offer is not None and agent is not None
        self._do(f"{agent} declines {offer}", lambda: self.engine.decline(offer, agent))

    def _active(self) -> list[MContact]:
        return [c for c in self.model.contacts.values() if c.st == "active"]

    @precondition(lambda self: self._active())
    @rule(pick=st.integers(0, 99), who=st.sampled_from(["own", "own", "own", "none"]))
    def end(self, pick: int, who: str) -> None:
        c = self._pick(self._active(), pick)
        agent = c.ag if who == "own" else None
        self._do(f"end {c.id} by {agent}", lambda: self.engine.end(c.id, agent_id=agent))

    @precondition(lambda self: self._active())
    @rule(pick=st.integers(0, 99))
    def end_own(self, pick: int) -> None:
        self.end(pick, "own")

    @precondition(lambda self: self.model.contacts)
    @rule(
        pick=st.integers(0, 99),
        agent=st.sampled_from(TARGETS),
        what=st.sampled_from(["end", "accept", "decline", "wrap"]),
    )
    def poke(self, pick: int, agent: str, what: str) -> None:
        """An operation on any contact by any agent: mostly refused, never harmful."""
        c = self._pick(list(self.model.contacts.values()), pick)
        offer = c.offer_ids[-1] if c.offer_ids else f"{c.id}~1"
        call: Callable[[], Awaitable[Any]] = {
            "end": lambda: self.engine.end(c.id, agent_id=agent),
            "accept": lambda: self.engine.accept(offer, agent),
            "decline": lambda: self.engine.decline(offer, agent),
            "wrap": lambda: self.engine.complete_wrap(c.id, agent_id=agent),
        }[what]
        self._do(f"poke: {what} {c.id} ({offer}) by {agent}", call)

    @precondition(lambda self: self.model.contacts)
    @rule(pick=st.integers(0, 99))
    def cancel(self, pick: int) -> None:
        c = self._pick(list(self.model.contacts.values()), pick)
        self._do(f"customer leaves {c.id}", lambda: self.engine.cancel(c.id, "customer_left"))

    @precondition(lambda self: self.model.wraps)
    @rule(pick=st.integers(0, 99), by_agent=st.booleans())
    def complete_wrap(self, pick: int, by_agent: bool) -> None:
        cid = sorted(self.model.wraps)[pick % len(self.model.wraps)]
        agent = self.model.contacts[cid].la if by_agent else None
        self._do(
            f"wrap-up of {cid} done by {agent}",
            lambda: self.engine.complete_wrap(cid, agent_id=agent),
        )

    @rule(agent=st.sampled_from(AGENT_IDS), lost=st.sampled_from([False, False, False, True]))
    def connection(self, agent: str, lost: bool) -> None:
        if lost:
            self._do(f"{agent} disconnected", lambda: self.engine.agent_lost(agent, "gone"))
        else:
            self._do(f"{agent} heartbeat", lambda: self.engine.heartbeat(agent))

    @rule(seconds=st.sampled_from([0.5, 1, 2, 3, 4, 5, 6, 8, 13, 30]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self._do(f"{seconds}s pass; sweep", self.sweeper.sweep_once)
        # the sweeper removes a lease whose script refused it; the model does the same
        kinds = {
            "decline": None,
            "complete_wrap": "wraps",
            "agent_lost": "heartbeats",
            "fallback": "fallbacks",
            "overflow": "maxwait",
            "reoffer": None,
        }
        for call in self.recorder.calls:
            if not call.reply.get("ok", True) and kinds.get(call.name):
                member = call.args.get("id") or call.args.get("agent")
                getattr(self.model, str(kinds[call.name])).pop(member, None)
        self.model.now = self.clock.now_ms()
        left = self.model.due_leases()
        if left:
            raise ModelError(f"the sweep left due leases: {left}")

    # invariants -------------------------------------------------------------------------
    @invariant()
    def state_matches_model_and_rules(self) -> None:
        snap = self.loop.run_until_complete(snapshot(self.redis, self.keys, QUEUE_IDS))
        now = self.clock.now_ms()
        self.model.now = now
        problems = compare(self.model, snap)
        problems += check_structure(snap, self.settings)
        problems += check_work_conservation(snap, self.settings, now)
        if problems:
            steps = "\n  ".join(self.log[-12:])
            raise ModelError("after:\n  " + steps + "\nproblems:\n  " + "\n  ".join(problems))


MODEL_SETTINGS = hsettings(
    max_examples=250,
    stateful_step_count=30,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
    # no "explain" phase: it traces every line of every replay and makes a failure take minutes
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_routing_engine_follows_the_model(redis_url: str) -> None:
    RoutingMachine.redis_url = redis_url
    run_state_machine_as_test(RoutingMachine, settings=MODEL_SETTINGS)


# regressions: the smallest sequences the state machine and the soak found -------------------


def _engine(redis: Redis, site: str, clock: ManualClock, queues: list[QueueConfig]) -> Any:
    settings = make_settings(site, queues)
    return RoutingEngine(redis, settings, clock, Bus(), SiteKeys(site))


async def test_designated_contact_reaches_its_agent_outside_that_queue(
    redis: Redis, site: str, clock: ManualClock
) -> None:
    """A contact waiting for a named agent (account manager, last agent) is offered as soon
    as that agent is free, whether or not the agent works the contact's queue (enqueue
    already offers it at once to such an agent when they are free)."""
    engine = _engine(
        redis,
        site,
        clock,
        [
            QueueConfig(id="sales", name="Sales"),
            QueueConfig(id="vip", name="VIP", strategy="designated", fallback_after_s=0),
        ],
    )
    await engine.login("ann", queues=["sales"], state="away")
    waiting = await engine.enqueue("vip", contact_id="v1", target_agent_id="ann")
    assert waiting.state == "queued"
    await engine.set_state("ann", "available")
    c = await engine.contact("v1")
    assert (c.state, c.agent_id) == ("offered", "ann"), "v1 still waits for ann, who is free"


async def test_decline_does_not_lose_the_slot_of_an_offer_made_in_the_same_call(
    redis: Redis, site: str, clock: ManualClock
) -> None:
    """Declining frees a slot; the same script offers the agent a queued contact and then a
    designated one: the agent must hold both offers, within capacity."""
    engine = _engine(
        redis,
        site,
        clock,
        [
            QueueConfig(id="sales", name="Sales"),
            QueueConfig(id="vip", name="VIP", strategy="designated", fallback_after_s=0),
        ],
    )
    await engine.login("ann", queues=["sales", "vip"], capacity={"chat": 2})
    s1 = await engine.enqueue("sales", contact_id="s1")
    await engine.enqueue("sales", contact_id="s2")
    await engine.enqueue("vip", contact_id="v1", target_agent_id="ann")
    await engine.enqueue("sales", contact_id="s3")
    assert s1.offer_id is not None
    await engine.decline(s1.offer_id, "ann")
    ann = await engine.agent("ann")
    held = sorted(s.contact_id for s in ann.slots)
    offered_to_ann = []
    for cid in ("s1", "s2", "s3", "v1"):
        c = await engine.contact(cid)
        if c.state == "offered" and c.agent_id == "ann":
            offered_to_ann.append(cid)
    assert held == offered_to_ann
    assert len(held) <= 2


async def test_contact_is_offered_again_when_the_first_exclusion_lapses(
    redis: Redis, site: str, clock: ManualClock
) -> None:
    """Two agents decline one after the other: when the first one's exclusion lapses the
    contact must be offered to them, not when the second one's does."""
    engine = _engine(redis, site, clock, [QueueConfig(id="sales", name="Sales", reoffer_after_s=4)])
    sweeper = Sweeper(engine, 0.25)
    await engine.login("ann", queues=["sales"])
    await engine.login("bob", queues=["sales"])
    c = await engine.enqueue("sales", contact_id="c1")
    first = c.agent_id
    assert c.offer_id is not None and first is not None
    await engine.decline(c.offer_id, first)  # t=0: excluded until t=4
    clock.advance(1)
    c = await engine.contact("c1")
    assert c.offer_id is not None and c.agent_id is not None and c.agent_id != first
    await engine.decline(c.offer_id, c.agent_id)  # t=1: excluded until t=5
    clock.advance(3.5)  # t=4.5: the first agent may have it again
    await sweeper.sweep_once()
    c = await engine.contact("c1")
    assert (c.state, c.agent_id) == ("offered", first), "c1 waits while its first agent is free"


async def test_exclusion_lapse_is_acted_on_after_a_requeue_from_a_lost_agent(
    redis: Redis, site: str, clock: ManualClock
) -> None:
    """The decline exclusion outlives an accept by another agent who then disconnects:
    when it lapses, the requeued contact must be offered to the agent who declined."""
    engine = _engine(
        redis, site, clock, [QueueConfig(id="sales", name="Sales", reoffer_after_s=10)]
    )
    sweeper = Sweeper(engine, 0.25)
    await engine.login("ann", queues=["sales"], capacity={"chat": 1})
    await engine.login("bob", queues=["sales"], capacity={"chat": 1})
    c = await engine.enqueue("sales", contact_id="c1")
    first = c.agent_id
    assert c.offer_id is not None and first is not None
    await engine.decline(c.offer_id, first)  # excluded until t=10
    c = await engine.contact("c1")
    assert c.offer_id is not None and c.agent_id is not None
    await engine.accept(c.offer_id, c.agent_id)
    await engine.agent_lost(c.agent_id, "disconnected")  # c1 back at the head, nobody free
    c = await engine.contact("c1")
    assert c.state == "queued"
    clock.advance(11)
    await sweeper.sweep_once()
    c = await engine.contact("c1")
    assert (c.state, c.agent_id) == ("offered", first), "c1 waits while its first agent is free"


async def test_retried_enqueue_after_overflow_tells_the_real_position(
    redis: Redis, site: str, clock: ManualClock
) -> None:
    """An IVR retries enqueue (same id, same queue) after the contact overflowed to another
    queue: the answer must give its place in the queue it is in now, not a made-up one."""
    engine = _engine(
        redis,
        site,
        clock,
        [
            QueueConfig(id="first", name="First", max_wait_s=10, overflow_to="second"),
            QueueConfig(id="second", name="Second"),
        ],
    )
    await engine.enqueue("second", contact_id="ahead")
    await engine.enqueue("first", contact_id="c1")
    clock.advance(11)
    await Sweeper(engine, 0.25).sweep_once()
    assert (await engine.contact("c1")).queue_id == "second"
    again = await engine.enqueue("first", contact_id="c1")
    assert again.existing and again.queue_id == "second"
    assert again.position == await engine.position("c1", "second") == 1
