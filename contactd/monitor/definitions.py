"""The metric definitions of docs/metrics.md, implemented once.

Pure functions over event rows (no I/O): the live monitor, the reports and the tests all
call :func:`compute`, so they cannot disagree. Prometheus counts the same bus events
(contactd/metrics.py) with the same rules for offers, answers and abandons.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from contactd.monitor.intervals import Interval, clip, subtract, total, union
from contactd.settings import Settings

AGENT_STATES = ("available", "away", "wrap_up", "offline")
FIRST_RESPONSE = "first.response"  # synthetic row made from a session's first reply
_MOVES = ("contact.moved", "contact.overflowed")


@dataclass(frozen=True, slots=True)
class EventRow:
    """One persisted routing event (table monitor_events) or a first-response row."""

    at: int
    type: str
    queue_id: str | None = None
    agent_id: str | None = None
    contact_id: str | None = None
    value_ms: int | None = None
    detail: str | None = None
    previous: str | None = None
    id: int = 0


class Window(NamedTuple):
    """[start, end) in ms since the epoch."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Rules:
    """What the definitions need from configuration."""

    service_level_ms: dict[str, int]  # queue id → T
    short_abandon_ms: int

    def t(self, queue_id: str) -> int:
        return self.service_level_ms.get(queue_id, 20_000)


def rules_of(settings: Settings) -> Rules:
    return Rules(
        service_level_ms={q.id: int(q.service_level_s * 1000) for q in settings.queues},
        short_abandon_ms=int(settings.monitor.short_abandon_s * 1000),
    )


def answered_in_sl(rules: Rules, queue_id: str, waited_ms: int) -> bool:
    """Answered within the queue's service-level time T (inclusive)."""
    return waited_ms <= rules.t(queue_id)


AbandonKind = str  # "short" | "in_sl" | "after_sl"


def abandon_kind(rules: Rules, queue_id: str, waited_ms: int) -> AbandonKind:
    """Short abandons (under the threshold) are left out of SL2; the rest are within T or
    after it."""
    if waited_ms < rules.short_abandon_ms:
        return "short"
    return "in_sl" if waited_ms <= rules.t(queue_id) else "after_sl"


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueStats(_Out):
    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    abandoned_short: int = 0
    abandoned_in_sl: int = 0
    left_message: int = 0
    moved_out: int = 0
    overflowed_out: int = 0
    handled: int = 0
    offers_created: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    offers_timed_out: int = 0
    offers_revoked: int = 0
    wait_ms_total: int = 0
    handle_ms_total: int = 0
    wrap_ms_total: int = 0
    first_responses: int = 0
    first_response_ms_total: int = 0
    service_level: float | None = None
    service_level2: float | None = None
    asa_s: float | None = None
    aht_s: float | None = None
    frt_s: float | None = None


class AgentStats(_Out):
    offers_created: int = 0
    offers_accepted: int = 0
    offers_declined: int = 0
    offers_timed_out: int = 0
    offers_revoked: int = 0
    handled: int = 0
    handle_ms_total: int = 0
    wrap_ms_total: int = 0
    first_responses: int = 0
    first_response_ms_total: int = 0
    busy_ms: int = 0
    idle_ms: int = 0
    time_in_state_ms: dict[str, int] = {}
    occupancy: float | None = None
    aht_s: float | None = None
    frt_s: float | None = None


class BucketStats(_Out):
    start: int
    end: int
    queues: dict[str, QueueStats]
    agents: dict[str, AgentStats]


def _ratio(n: int, d: int) -> float | None:
    return None if d <= 0 else n / d


def _avg_s(total_ms: int, n: int) -> float | None:
    return None if n <= 0 else total_ms / n / 1000


def _queue_stats(c: dict[str, int]) -> QueueStats:
    sl2_den = c["answered"] + c["abandoned"] - c["abandoned_short"]
    return QueueStats(
        **c,
        service_level=_ratio(c["answered_in_sl"], c["answered"]),
        service_level2=_ratio(c["answered_in_sl"] + c["abandoned_in_sl"], sl2_den),
        asa_s=_avg_s(c["wait_ms_total"], c["answered"]),
        aht_s=_avg_s(c["handle_ms_total"] + c["wrap_ms_total"], c["handled"]),
        frt_s=_avg_s(c["first_response_ms_total"], c["first_responses"]),
    )


def _count(
    rules: Rules,
    row: EventRow,
    qid: str,
    v: int,
    q: dict[str, int],
    extra_queue: dict[str, int] | None,
    ag: dict[str, int] | None,
) -> None:
    """Apply one event (of queue ``qid``, value ``v``) to its queue's and agent's counters."""
    t = row.type
    if t == "contact.enqueued":
        q["offered"] += 1
    elif t in _MOVES:
        if row.detail == "message":
            q["left_message"] += 1
        else:
            q["moved_out" if t == "contact.moved" else "overflowed_out"] += 1
            if extra_queue is not None:
                extra_queue["offered"] += 1
    elif t == "contact.requeued" and row.previous == "active":
        q["offered"] += 1  # answered, then its agent was lost: offered to the queue again
    elif t == "offer.accepted":
        q["answered"] += 1
        q["wait_ms_total"] += v
        q["answered_in_sl"] += answered_in_sl(rules, qid, v)
    elif t == "contact.abandoned":
        q["abandoned"] += 1
        kind = abandon_kind(rules, qid, v)
        if kind != "after_sl":
            q["abandoned_short" if kind == "short" else "abandoned_in_sl"] += 1
    elif t == "contact.ended":
        q["handled"] += 1
        q["handle_ms_total"] += v
    elif t == "wrap_up.ended":
        q["wrap_ms_total"] += v
    elif t == FIRST_RESPONSE:
        q["first_responses"] += 1
        q["first_response_ms_total"] += v
    if t.startswith("offer."):
        key = {
            "offer.created": "offers_created",
            "offer.accepted": "offers_accepted",
            "offer.declined": "offers_declined",
            "offer.expired": "offers_timed_out",
            "offer.revoked": "offers_revoked",
        }[t]
        q[key] += 1
        if ag is not None:
            ag[key] += 1
    if ag is not None and t in ("contact.ended", "wrap_up.ended", FIRST_RESPONSE):
        name = {
            "contact.ended": ("handled", "handle_ms_total"),
            "wrap_up.ended": (None, "wrap_ms_total"),
            FIRST_RESPONSE: ("first_responses", "first_response_ms_total"),
        }[t]
        if name[0]:
            ag[name[0]] += 1
        ag[name[1]] += v


class _Timeline(NamedTuple):
    states: dict[str, list[Interval]]  # state → intervals
    busy: list[Interval]


def _timelines(rows: Sequence[EventRow], until: int) -> dict[str, _Timeline]:
    """Per agent: intervals in each state and busy intervals (handling or in wrap-up)."""
    states: dict[str, dict[str, list[Interval]]] = defaultdict(lambda: defaultdict(list))
    current: dict[str, tuple[str, int]] = {}
    busy: dict[str, list[Interval]] = defaultdict(list)
    open_contacts: dict[str, tuple[str, int]] = {}  # contact → (agent, accepted at)
    ended_at: dict[str, tuple[str, int]] = {}
    for row in rows:
        aid = row.agent_id
        if aid is None:
            continue
        if row.type == "agent.state_changed":
            if aid in current:
                st, since = current[aid]
                states[aid][st].append((since, row.at))
            current[aid] = (row.detail or "offline", row.at)
        elif row.type == "offer.accepted" and row.contact_id:
            open_contacts[row.contact_id] = (aid, row.at)
        elif row.type == "contact.ended" and row.contact_id:
            open_contacts.pop(row.contact_id, None)
            busy[aid].append((row.at - (row.value_ms or 0), row.at))
            ended_at[row.contact_id] = (aid, row.at)
        elif row.type == "wrap_up.ended" and row.contact_id in ended_at:
            _, end = ended_at.pop(row.contact_id or "")
            busy[aid].append((end, row.at))
    for aid, (st, since) in current.items():
        states[aid][st].append((since, until))
    for aid, at in open_contacts.values():
        busy[aid].append((at, until))
    agents = set(states) | set(busy)
    return {a: _Timeline(dict(states[a]), union(busy[a])) for a in agents}


def _agent_time(tl: _Timeline, w: Window, c: dict[str, int]) -> dict[str, int]:
    in_state = {st: total(clip(iv, w.start, w.end)) for st, iv in tl.states.items()}
    busy = clip(tl.busy, w.start, w.end)
    available = clip(union(tl.states.get("available", [])), w.start, w.end)
    c["busy_ms"] = total(busy)
    c["idle_ms"] = total(subtract(available, busy))
    return {st: in_state.get(st, 0) for st in AGENT_STATES}


def _agent_stats(c: dict[str, int], in_state: dict[str, int]) -> AgentStats:
    return AgentStats(
        **c,
        time_in_state_ms=in_state,
        occupancy=_ratio(c["busy_ms"], c["busy_ms"] + c["idle_ms"]),
        aht_s=_avg_s(c["handle_ms_total"] + c["wrap_ms_total"], c["handled"]),
        frt_s=_avg_s(c["first_response_ms_total"], c["first_responses"]),
    )


def compute(
    rows: Iterable[EventRow], buckets: Sequence[Window], rules: Rules, now: int
) -> list[BucketStats]:
    """Stats per window. Windows may overlap (the live 15 min / 60 min / today: one pass
    serves all three) or be sorted and disjoint (report buckets: found by bisection).
    ``rows`` may start before the first window (state before it and contacts still open
    are taken from them); states and contacts still open count until ``now``, never into
    the future."""
    ordered = sorted(rows, key=lambda r: (r.at, r.id))
    starts = [b.start for b in buckets]
    disjoint = all(a.end <= b.start for a, b in pairwise(buckets))
    qc: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in buckets]
    ac: list[dict[str, dict[str, int]]] = [defaultdict(lambda: defaultdict(int)) for _ in buckets]
    ended: dict[str, EventRow] = {}  # contact → its contact.ended row (for the wrap-up)
    for row in ordered:
        qid, v = row.queue_id, row.value_ms or 0
        if row.type == "contact.ended" and row.contact_id:
            ended[row.contact_id] = row
        elif row.type == "wrap_up.ended":
            end = ended.pop(row.contact_id or "", None)
            if end is None:
                continue  # its contact ended before the rows we were given
            qid, v = end.queue_id, row.at - end.at
        if disjoint:
            i = bisect_right(starts, row.at) - 1
            hits = [i] if i >= 0 and row.at < buckets[i].end else []
        else:
            hits = [i for i, b in enumerate(buckets) if b.start <= row.at < b.end]
        moved_to = row.detail if row.type in _MOVES and row.detail != "message" else None
        for i in hits:
            q = qc[i][qid] if qid else defaultdict(int)
            extra = qc[i][moved_to] if moved_to else None
            ag = ac[i][row.agent_id] if row.agent_id else None
            _count(rules, row, qid or "", v, q, extra, ag)
    timelines = _timelines(ordered, min(max((b.end for b in buckets), default=now), now))
    out = []
    for i, w in enumerate(buckets):
        agents: dict[str, AgentStats] = {}
        for aid in sorted(set(ac[i]) | set(timelines)):
            c = ac[i][aid]
            in_state = _agent_time(timelines[aid], w, c) if aid in timelines else {}
            if not any(c.values()) and not any(in_state.values()):
                continue
            agents[aid] = _agent_stats(_fill_agent(c), in_state)
        queues = {qid: _queue_stats(_fill_queue(c)) for qid, c in sorted(qc[i].items())}
        out.append(BucketStats(start=w.start, end=w.end, queues=queues, agents=agents))
    return out


_QUEUE_COUNTS = [n for n, f in QueueStats.model_fields.items() if f.annotation is int]
_AGENT_COUNTS = [n for n, f in AgentStats.model_fields.items() if f.annotation is int]


def _fill_queue(c: dict[str, int]) -> dict[str, int]:
    return {k: int(c.get(k, 0)) for k in _QUEUE_COUNTS}


def _fill_agent(c: dict[str, int]) -> dict[str, int]:
    return {k: int(c.get(k, 0)) for k in _AGENT_COUNTS}
