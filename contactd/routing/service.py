"""Routing use cases. Every state change is one Lua script call; this module only picks
the keys, passes the arguments, turns error codes into ContactdError and publishes events.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from contactd import fastjson
from contactd.bus import Bus
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.routing.events import EVENTS_ADAPTER
from contactd.routing.models import (
    ID_RE,
    OFFER_RE,
    AgentView,
    ContactView,
    QueueSnapshot,
    WaitingContact,
    queue_config_for_lua,
    removed_queue_for_lua,
)
from contactd.routing.scripts import RoutingScripts
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys

log = logging.getLogger(__name__)

Channel = Literal["chat", "voice"]
_MAX_NEED_ROUNDS = 4
_HINT_CACHE = 100_000
_PARTS_CACHE = 1_000


def new_contact_id() -> str:
    return "c_" + secrets.token_hex(8)


def contact_id_of_offer(offer_id: str) -> str:
    m = OFFER_RE.match(offer_id)
    if not m:
        raise ContactdError(ErrorCode.offer_not_found, f"no offer {offer_id!r}")
    return m.group(1)


def check_id(kind: str, value: str) -> str:
    if not ID_RE.match(value):
        raise ContactdError(
            ErrorCode.validation_failed,
            f"{kind} must be 1-64 characters of letters, digits and _ . : -",
        )
    return value


class RoutingEngine:
    def __init__(
        self, redis: Redis, settings: Settings, clock: Clock, bus: Bus, keys: SiteKeys
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.bus = bus
        self.keys = keys
        self.scripts = RoutingScripts(redis)
        self._queue_json = {
            q.id: json.dumps(queue_config_for_lua(q), separators=(",", ":"))
            for q in settings.queues
        }
        self._globals = json.dumps({"cdv": settings.routing.chat_during_voice})
        # hints only: the scripts say which queues they need when a hint is wrong
        self._agent_queues: dict[str, list[str]] = {}
        self._contact_queue: OrderedDict[str, str] = OrderedDict()
        # KEYS and the queues' config argument for a tuple of queue ids: the same strings on
        # every call, so built once (bounded: the configured queues and the few removed
        # ones a contact can still sit in)
        self._call_parts: dict[tuple[str, ...], tuple[list[str], str]] = {}
        # --- monitor: called with (operation, seconds) after every script call ---
        self.observe_call: Callable[[str, float], None] | None = None

    # plumbing ------------------------------------------------------------------
    def _queue_arg(self, queue_id: str) -> str:
        found = self._queue_json.get(queue_id)
        return found if found is not None else json.dumps(removed_queue_for_lua(queue_id))

    def _parts(self, qids: list[str]) -> tuple[list[str], str]:
        tag = tuple(qids)
        found = self._call_parts.get(tag)
        if found is None:
            keys = self.keys.routing_site_keys()
            for qid in qids:
                keys.extend(self.keys.queue_keys(qid))
            found = (keys, "[" + ",".join(self._queue_arg(q) for q in qids) + "]")
            if len(self._call_parts) < _PARTS_CACHE:
                self._call_parts[tag] = found
        return found

    def _remember(self, contact_id: str, queue_id: str) -> None:
        self._contact_queue[contact_id] = queue_id
        self._contact_queue.move_to_end(contact_id)
        if len(self._contact_queue) > _HINT_CACHE:
            self._contact_queue.popitem(last=False)

    async def _run(self, name: str, args: Mapping[str, Any], queues: Iterable[str] = ()) -> Any:
        qids = list(dict.fromkeys(queues))
        payload = fastjson.dumps(args)
        for _ in range(_MAX_NEED_ROUNDS):
            keys, queues_arg = self._parts(qids)
            argv: list[str | int] = [self.clock.now_ms(), queues_arg, payload, self._globals]
            started = time.perf_counter()
            raw = await self.scripts.call(name, keys, argv)
            if self.observe_call is not None:
                self.observe_call(name, time.perf_counter() - started)
            reply = orjson.loads(raw)
            if "need" in reply:
                qids.extend(q for q in reply["need"] if q not in qids)
                continue
            if reply["ev"]:
                await self.bus.publish(EVENTS_ADAPTER.validate_python(reply["ev"]))
            if not reply["ok"]:
                raise ContactdError(ErrorCode(reply["code"]), reply["msg"])
            return reply["r"]
        raise RuntimeError(f"routing script {name} kept asking for more queues: {qids}")

    def _agent_hint(self, agent_id: str | None) -> list[str]:
        return self._agent_queues.get(agent_id, []) if agent_id else []

    def _contact_hint(self, contact_id: str) -> list[str]:
        q = self._contact_queue.get(contact_id)
        return [q] if q else []

    def _agent_result(self, raw: Any) -> AgentView:
        view = AgentView.model_validate(_fix_empty_lists(raw))
        self._agent_queues[view.agent_id] = list(view.queues)
        return view

    def _contact_result(self, raw: Any) -> ContactView:
        view = ContactView.model_validate(raw)
        self._remember(view.contact_id, view.queue_id)
        return view

    def queue_known(self, queue_id: str) -> bool:
        return queue_id in self._queue_json

    # contacts ------------------------------------------------------------------
    async def enqueue(
        self,
        queue_id: str,
        *,
        priority: int = 0,
        contact_id: str | None = None,
        target_agent_id: str | None = None,
        target_wait_s: float | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> ContactView:
        """Queue a contact; with ``target_agent_id`` it goes to that agent, waiting for them
        ``target_wait_s`` (default: the queue's ``fallback_after_s``) before joining the
        queue."""
        if not self.queue_known(queue_id):
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {queue_id!r}")
        if not 0 <= priority <= 9:
            raise ContactdError(ErrorCode.validation_failed, "priority must be 0..9")
        cid = check_id("contact_id", contact_id) if contact_id else new_contact_id()
        args: dict[str, Any] = {"id": cid, "q": queue_id, "p": priority}
        if target_agent_id:
            args["tgt"] = check_id("target_agent_id", target_agent_id)
            if target_wait_s is not None:
                args["fb"] = max(1, round(target_wait_s * 1000))
        if meta:
            args["meta"] = dict(meta)
        return self._contact_result(await self._run("enqueue", args, [queue_id]))

    async def cancel(self, contact_id: str, reason: str = "customer_left") -> ContactView:
        raw = await self._run(
            "cancel", {"id": contact_id, "reason": reason}, self._contact_hint(contact_id)
        )
        return self._contact_result(raw)

    async def accept(self, offer_id: str, agent_id: str) -> ContactView:
        cid = contact_id_of_offer(offer_id)
        raw = await self._run("accept", {"id": cid, "offer": offer_id, "agent": agent_id})
        return self._contact_result(raw)

    async def decline(self, offer_id: str, agent_id: str) -> ContactView:
        cid = contact_id_of_offer(offer_id)
        hint = self._agent_hint(agent_id) + self._contact_hint(cid)
        raw = await self._run(
            "decline", {"id": cid, "offer": offer_id, "agent": agent_id, "timeout": False}, hint
        )
        return self._contact_result(raw)

    async def expire_offer(self, contact_id: str) -> ContactView | None:
        raw = await self._run(
            "decline", {"id": contact_id, "timeout": True}, self._contact_hint(contact_id)
        )
        return None if raw is None else self._contact_result(raw)

    async def end(
        self,
        contact_id: str,
        *,
        agent_id: str | None,
        reason: str = "resolved",
        disposition: str | None = None,
    ) -> ContactView:
        args: dict[str, Any] = {"id": contact_id, "reason": reason}
        if agent_id:
            args["agent"] = agent_id
        if disposition:
            args["disposition"] = disposition
        hint = self._agent_hint(agent_id) + self._contact_hint(contact_id)
        return self._contact_result(await self._run("end_contact", args, hint))

    async def complete_wrap(
        self, contact_id: str, *, agent_id: str | None = None, expired: bool = False
    ) -> bool:
        args: dict[str, Any] = {"id": contact_id, "expired": expired}
        if agent_id:
            args["agent"] = agent_id
        raw = await self._run("complete_wrap", args, self._agent_hint(agent_id))
        return bool(raw["done"])

    # agents --------------------------------------------------------------------
    async def login(
        self,
        agent_id: str,
        *,
        queues: list[str],
        capacity: Mapping[str, int] | None = None,
        state: Literal["available", "away"] = "available",
        reason: str = "",
    ) -> AgentView:
        check_id("agent_id", agent_id)
        unknown = [q for q in queues if not self.queue_known(q)]
        if unknown:
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {unknown[0]!r}")
        cap = self.settings.routing.default_capacity.model_dump()
        cap.update(capacity or {})
        args = {
            "agent": agent_id,
            "queues": list(dict.fromkeys(queues)),
            "cap": cap,
            "state": state,
            "reason": reason,
            "ttl": int(self.settings.routing.heartbeat_ttl_s * 1000),
        }
        hint = list(queues) + self._agent_hint(agent_id)
        return self._agent_result(await self._run("agent_login", args, hint))

    async def set_state(
        self, agent_id: str, state: Literal["available", "away", "offline"], reason: str = ""
    ) -> AgentView:
        raw = await self._run(
            "agent_state",
            {"agent": agent_id, "state": state, "reason": reason},
            self._agent_hint(agent_id),
        )
        return self._agent_result(raw)

    async def heartbeat(self, agent_id: str, ttl_s: float | None = None) -> int:
        ttl = ttl_s if ttl_s is not None else self.settings.routing.heartbeat_ttl_s
        raw = await self._run("heartbeat", {"agent": agent_id, "ttl": int(ttl * 1000)})
        return int(raw["deadline"])

    async def agent_lost(self, agent_id: str, reason: str, *, expired: bool = False) -> bool:
        raw = await self._run(
            "agent_lost",
            {"agent": agent_id, "reason": reason, "expired": expired},
            self._agent_hint(agent_id),
        )
        return bool(raw["lost"])

    # supervisor actions (monitor) -----------------------------------------------------
    async def move_contact(self, contact_id: str, to_queue: str) -> ContactView:
        """Move a waiting contact to another queue (keeps its priority and wait)."""
        if not self.queue_known(to_queue):
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {to_queue!r}")
        raw = await self._run(
            "move_contact",
            {"id": contact_id, "to": to_queue},
            [*self._contact_hint(contact_id), to_queue],
        )
        return self._contact_result(raw)

    async def force_offer(self, contact_id: str, agent_id: str) -> ContactView:
        """Offer a waiting contact to this agent now, whatever their free capacity."""
        hint = self._agent_hint(agent_id) + self._contact_hint(contact_id)
        raw = await self._run("force_offer", {"id": contact_id, "agent": agent_id}, hint)
        return self._contact_result(raw)

    async def drain(self, agent_id: str) -> AgentView:
        """The agent finishes what they hold, takes nothing new, then goes offline."""
        raw = await self._run("agent_drain", {"agent": agent_id}, self._agent_hint(agent_id))
        return self._agent_result(raw)

    # sweeper entry points --------------------------------------------------------
    async def overflow(self, contact_id: str) -> str | None:
        raw = await self._run("overflow", {"id": contact_id}, self._contact_hint(contact_id))
        moved = raw["moved_to"]
        return None if moved is None else str(moved)

    async def fallback(self, contact_id: str) -> bool:
        raw = await self._run("fallback", {"id": contact_id}, self._contact_hint(contact_id))
        return bool(raw["fell_back"])

    async def reoffer(self, contact_id: str) -> int:
        raw = await self._run("reoffer", {"id": contact_id}, self._contact_hint(contact_id))
        return int(raw["dispatched"])

    async def dispatch(self, queues: list[str]) -> int:
        raw = await self._run("dispatch", {"queues": queues}, queues)
        return int(raw["offers"])

    async def purge_finals(self, before_ms: int, limit: int = 500) -> int:
        raw = await self._run("purge", {"before": before_ms, "limit": limit})
        return int(raw["purged"])

    # reads (snapshots; not atomic across keys, each value is) ---------------------
    async def contact(self, contact_id: str) -> ContactView:
        raw = await self.redis.hget(self.keys.contacts, contact_id)
        if raw is None:
            raise ContactdError(ErrorCode.contact_not_found, f"no contact {contact_id!r}")
        return ContactView.model_validate(_contact_view_from_record(json.loads(raw)))

    async def agent(self, agent_id: str) -> AgentView:
        raw = await self.redis.hget(self.keys.agents, agent_id)
        if raw is None:
            raise ContactdError(ErrorCode.agent_not_found, f"agent {agent_id!r} never logged in")
        return AgentView.model_validate(_agent_view_from_record(json.loads(raw)))

    async def agents(self) -> list[AgentView]:
        """Every agent known to routing (one HSCAN pass)."""
        return [
            AgentView.model_validate(_agent_view_from_record(json.loads(raw)))
            async for _, raw in self.redis.hscan_iter(self.keys.agents, count=1000)
        ]

    async def position(self, contact_id: str, queue_id: str) -> int | None:
        rank = await self.redis.zrank(self.keys.waiting(queue_id), contact_id)
        return rank if isinstance(rank, int) else None

    async def queue_snapshot(self, queue_id: str, head: int = 20) -> QueueSnapshot:
        q = self.settings.queue(queue_id)
        if q is None:
            raise ContactdError(ErrorCode.unknown_queue, f"no queue {queue_id!r}")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.keys.waiting(queue_id))
            pipe.hget(self.keys.routing_state, f"dw:{queue_id}")
            pipe.zcard(self.keys.eligible(queue_id))
            pipe.zrange(self.keys.waiting(queue_id), 0, head - 1)
            waiting, dw, eligible, ids = await pipe.execute()
        records = await self.redis.hmget(self.keys.contacts, ids) if ids else []
        now = self.clock.now_ms()
        items = []
        for pos, (cid, raw) in enumerate(zip(ids, records, strict=True)):
            if raw is None:
                continue
            rec = json.loads(raw)
            items.append(
                WaitingContact(
                    contact_id=_s(cid),
                    position=pos,
                    priority=rec["p"],
                    waited_ms=now - rec["t0"],
                    target_agent_id=rec.get("tgt"),
                    entry_point=_entry_point(rec),
                )
            )
        return QueueSnapshot(
            queue_id=q.id,
            name=q.name,
            channel=q.channel,
            strategy=q.strategy,
            max_waiting=q.max_waiting,
            waiting=int(waiting) + int(dw or 0),
            waiting_designated=int(dw or 0),
            longest_wait_ms=max((i.waited_ms for i in items), default=0),
            eligible_agents=int(eligible),
            head=items,
        )


def _entry_point(rec: dict[str, Any]) -> str | None:
    meta = rec.get("meta")
    entry = meta.get("entry") if isinstance(meta, dict) else None
    return str(entry) if entry else None


def _s(v: bytes | str) -> str:
    return v.decode() if isinstance(v, bytes) else v


def _fix_empty_lists(raw: dict[str, Any]) -> dict[str, Any]:
    # cjson writes an empty Lua table as {}; the views want lists there
    for k in ("queues", "slots"):
        if raw.get(k) == {}:
            raw[k] = []
    return raw


def _contact_view_from_record(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "contact_id": c["id"],
        "queue_id": c["q"],
        "state": c["st"],
        "channel": c["ch"],
        "priority": c["p"],
        "enqueued_at": c["t0"],
        "agent_id": c.get("ag") or c.get("la"),
        "offer_id": c.get("of"),
        "target_agent_id": c.get("tgt"),
        "final_reason": c.get("fr"),
        "ended_at": c.get("te"),
        "accepted_at": c.get("ta"),
        "offers": c.get("n", 0),
    }


def _agent_view_from_record(a: dict[str, Any]) -> dict[str, Any]:
    slots = [
        {"contact_id": cid, "state": s["s"], "channel": s["ch"], "queue_id": s["q"]}
        for cid, s in (a.get("ct") or {}).items()
    ]
    return _fix_empty_lists(
        {
            "agent_id": a["id"],
            "state": a["st"],
            "reason": a.get("rsn", ""),
            "since": a["since"],
            "queues": a.get("q") or [],
            "capacity": a.get("cap") or {},
            "slots": slots,
            "no_answer": a.get("miss", 0),
            "draining": bool(a.get("dr")),
        }
    )
