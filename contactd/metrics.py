"""Prometheus metrics on a per-app registry. Label sets are bounded: queue ids, states and
outcomes come from configuration or enums, never customer, contact or session ids.

Under ``contactd serve --workers N`` the supervisor sets ``PROMETHEUS_MULTIPROC_DIR``
before it starts the workers: prometheus_client then keeps every value in a file per
process there, and ``/metrics`` on any worker renders all of them together (counters and
histograms summed; the node's socket count summed over live workers; the at-scrape
figures, which every worker reads from the same Redis, from the latest scrape)."""

from __future__ import annotations

import os
import weakref
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from pydantic import BaseModel

from contactd.monitor.definitions import Rules, abandon_kind, answered_in_sl
from contactd.routing import events as ev
from contactd.routing.scripts import SCRIPT_NAMES

# set by the workers' supervisor (contactd/workers.py): every worker's values in one place
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
_WAIT_BUCKETS = (1, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
_HANDLE_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600)


_CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, remembered on the metric: the hot paths (every request,
    every routing event) skip prometheus_client's validation and lock for a label set it
    has seen. Label sets are bounded by design here (queues, routes, outcomes).

    In one process, a counter's or histogram's child is a tally kept in plain numbers
    and added to the real one when the metrics are rendered (``flush_tallies``): an
    increment is then an addition, not prometheus_client's lock, checks and per-bucket
    loop, on every request and routing call. Among workers (multiprocess mode, where
    each worker's values live in its file for the others to read) the real child."""
    children: dict[tuple[str, ...], Any] | None = metric.__dict__.get("_contactd_children")
    if children is None:
        children = metric.__dict__["_contactd_children"] = {}
    found = children.get(values)
    if found is None:
        found = metric.labels(*values)
        if not os.environ.get(MULTIPROC_DIR):
            if isinstance(metric, Counter):
                found = _CountTally(found)
            elif isinstance(metric, Histogram):
                found = _ObserveTally(found)
        children[values] = found
    return found


_TALLIES: weakref.WeakSet[_CountTally | _ObserveTally] = weakref.WeakSet()


def flush_tallies() -> None:
    """Add what every tally kept since the last flush to its real child (on the event
    loop: tallies are not locked)."""
    for tally in list(_TALLIES):
        tally.flush()


class _CountTally:
    __slots__ = ("__weakref__", "pending", "real")

    def __init__(self, real: Any) -> None:
        self.real = real
        self.pending = 0.0
        _TALLIES.add(self)

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters can only be incremented by non-negative amounts")
        self.pending += amount

    def flush(self) -> None:
        if self.pending:
            pending, self.pending = self.pending, 0.0
            self.real.inc(pending)


class _ObserveTally:
    __slots__ = ("__weakref__", "bounds", "counts", "real", "total")

    def __init__(self, real: Any) -> None:
        self.real = real
        self.bounds: list[float] = list(real._upper_bounds)  # (the last one is +Inf)
        self.counts = [0] * len(self.bounds)
        self.total = 0.0
        _TALLIES.add(self)

    def observe(self, amount: float) -> None:
        # the bucket prometheus_client's observe picks: the first bound >= amount
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.total += amount

    def flush(self) -> None:
        if not any(self.counts):
            return
        counts, self.counts = self.counts, [0] * len(self.bounds)
        total, self.total = self.total, 0.0
        self.real._sum.inc(total)
        for bucket, n in zip(self.real._buckets, counts, strict=True):
            if n:
                bucket.inc(n)


class Metrics:
    def __init__(self, rules: Rules | None = None) -> None:
        self.registry = CollectorRegistry()
        self.rules = rules or Rules(service_level_ms={}, short_abandon_ms=5000)
        r = self.registry
        self.http_requests = Counter(
            "contactd_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "contactd_http_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            registry=r,
        )
        self.enqueued = Counter(
            "contactd_contacts_enqueued", "Contacts that entered a queue", ["queue"], registry=r
        )
        self.refused = Counter(
            "contactd_contacts_refused",
            "Contacts refused at enqueue",
            ["queue", "reason"],
            registry=r,
        )
        self.offers = Counter(
            "contactd_offers", "Offers by outcome", ["queue", "outcome"], registry=r
        )
        self.finished = Counter(
            "contactd_contacts_finished",
            "Contacts that reached a final state",
            ["queue", "state"],
            registry=r,
        )
        self.requeued = Counter(
            "contactd_contacts_requeued",
            "Contacts put back to waiting",
            ["queue", "reason"],
            registry=r,
        )
        self.wait_seconds = Histogram(
            "contactd_wait_seconds",
            "Wait from enqueue to accepted offer",
            ["queue"],
            buckets=_WAIT_BUCKETS,
            registry=r,
        )
        self.handle_seconds = Histogram(
            "contactd_handle_seconds",
            "Handle time from accept to end",
            ["queue"],
            buckets=_HANDLE_BUCKETS,
            registry=r,
        )
        self.agent_state_changes = Counter(
            "contactd_agent_state_changes",
            "Agent state changes",
            ["state", "reason"],
            registry=r,
        )
        self.socket_events = Counter(
            "contactd_socket_events",
            "Socket events by namespace, event and result",
            ["namespace", "event", "result"],
            registry=r,
        )
        self.socket_connections = Gauge(
            "contactd_socket_connections",
            "Open socket connections on this node",
            ["namespace"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_waiting = Gauge(
            "contactd_queue_waiting",
            "Contacts waiting per queue (at scrape)",
            ["queue"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.agents = Gauge(
            "contactd_agents",
            "Agents by state (at scrape)",
            ["state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        # --- monitor --- (definitions: docs/metrics.md)
        self.offered = Counter(
            "contactd_contacts_offered",
            "Contacts offered to a queue (arrived, moved or overflowed in, re-offered)",
            ["queue"],
            registry=r,
        )
        self.answered = Counter(
            "contactd_contacts_answered",
            "Contacts answered (offer accepted), by whether within the queue's SL time",
            ["queue", "within_sl"],
            registry=r,
        )
        self.abandoned = Counter(
            "contactd_contacts_abandoned",
            "Contacts abandoned while waiting: short (left out of SL), in_sl, after_sl",
            ["queue", "kind"],
            registry=r,
        )
        self.moved = Counter(
            "contactd_contacts_moved",
            "Waiting contacts moved out of a queue (supervisor move or overflow)",
            ["queue", "how"],
            registry=r,
        )
        self.dispatch_seconds = Histogram(
            "contactd_dispatch_latency_seconds",
            "Routing operation latency (one atomic Redis function call) by operation",
            ["op"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.active_sessions = Gauge(
            "contactd_active_sessions",
            "Contacts being handled by an agent (at scrape)",
            ["channel"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.webhook_events = Counter(
            "contactd_webhook_events",
            "Inbound webhook events run (IVR, Twilio and other systems), by source, event type "
            "and result (the instruction's action, or the error code); repeats of an event "
            "already answered are counted as result=repeat",
            ["source", "type", "result"],
            registry=r,
        )
        self.payouts = Counter(
            "contactd_payouts",
            "Compensation payouts by outcome (paid, failed, refused, retried)",
            ["outcome"],
            registry=r,
        )
        # ---

        # --- bot ---
        self.bot_replies = Counter(
            "contactd_bot_replies",
            "Customer messages the bot handled, by outcome (answered, flow, missed, ...)",
            ["outcome"],
            registry=r,
        )
        self.bot_handoffs = Counter(
            "contactd_bot_handoffs",
            "Bot chats handed to a person, by reason",
            ["queue", "reason"],
            registry=r,
        )
        # --- voice ---

    def observe(self, event: BaseModel) -> None:
        """Bus listener: routing events → counters."""
        match event:
            case ev.ContactEnqueued(queue_id=q):
                child(self.enqueued, q).inc()
                child(self.offered, q).inc()
            case ev.OfferCreated(queue_id=q):
                child(self.offers, q, "created").inc()
            case ev.OfferAccepted(queue_id=q, waited_ms=w):
                child(self.offers, q, "accepted").inc()
                child(self.wait_seconds, q).observe(w / 1000)
                within = answered_in_sl(self.rules, q, w)
                child(self.answered, q, "true" if within else "false").inc()
            case ev.OfferDeclined(queue_id=q):
                child(self.offers, q, "declined").inc()
            case ev.OfferExpired(queue_id=q):
                child(self.offers, q, "expired").inc()
            case ev.OfferRevoked(queue_id=q):
                child(self.offers, q, "revoked").inc()
            case ev.ContactRequeued(queue_id=q, reason=reason, was=was):
                child(self.requeued, q, reason).inc()
                if was == "active":
                    child(self.offered, q).inc()
            case ev.ContactEnded(queue_id=q, handle_ms=h):
                child(self.finished, q, "ended").inc()
                child(self.handle_seconds, q).observe(h / 1000)
            case ev.ContactAbandoned(queue_id=q, waited_ms=w):
                child(self.finished, q, "abandoned").inc()
                child(self.abandoned, q, abandon_kind(self.rules, q, w)).inc()
            case ev.ContactOverflowed(queue_id=q, to="message"):
                child(self.finished, q, "left_message").inc()
            case ev.ContactOverflowed(queue_id=q, to=to) | ev.ContactMoved(queue_id=q, to=to):
                how = "moved" if isinstance(event, ev.ContactMoved) else "overflow"
                child(self.moved, q, how).inc()
                child(self.offered, to).inc()
            case ev.AgentStateChanged(state=state, reason=reason):
                child(self.agent_state_changes, state, _bounded_reason(reason)).inc()
            case _:
                pass

    def set_queue_depths(self, depths: Iterable[tuple[str, int]]) -> None:
        for queue, n in depths:
            self.queue_waiting.labels(queue).set(n)

    def set_agent_states(self, counts: dict[str, int]) -> None:
        for state in ("offline", "available", "away", "wrap_up"):
            self.agents.labels(state).set(counts.get(state, 0))

    def routing_call(self, op: str, seconds: float) -> None:
        child(self.dispatch_seconds, op if op in SCRIPT_NAMES else "other").observe(seconds)

    def set_active_sessions(self, counts: dict[str, int]) -> None:
        for channel in ("chat", "voice"):
            self.active_sessions.labels(channel).set(counts.get(channel, 0))

    def render(self) -> bytes:
        """The exposition: this process's registry, or every worker's values when the
        process is one of several (``PROMETHEUS_MULTIPROC_DIR``)."""
        flush_tallies()
        shared = os.environ.get(MULTIPROC_DIR)
        if shared:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


_KNOWN_REASONS = frozenset(
    {
        "",
        "no_answer",
        "logout",
        "heartbeat_expired",
        "disconnected",
        "break",
        "lunch",
        "meeting",
        "training",
        "supervisor",
        "draining",
        "drained",
    }
)


def _bounded_reason(reason: str) -> str:
    # away reasons are free text from agents: keep the label set bounded
    return reason if reason in _KNOWN_REASONS else "other"
