"""Prometheus counters of compensation orders, on the app's registry (a bus listener).
Labels are bounded: topics and asset types are enums, never order or customer ids."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from pydantic import BaseModel

from contactd.cases.compensation_events import CompensationChanged

# webhook topic → outcome of the app-wide ``contactd_payouts`` counter (contactd/metrics.py)
_PAYOUT_OUTCOMES = {
    "compensation.paid": "paid",
    "compensation.payout_failed": "failed",
    "compensation.payout_retried": "retried",
}


class CompensationMetrics:
    def __init__(self, registry: CollectorRegistry, payouts: Counter) -> None:
        self.payouts = payouts
        self.changes = Counter(
            "contactd_compensation_changes",
            "Compensation order changes by topic (created, approved, paid, payout_failed...)",
            ["topic"],
            registry=registry,
        )
        self.paid_fen = Counter(
            "contactd_compensation_paid_fen",
            "Money paid out by asset type, in fen",
            ["asset"],
            registry=registry,
        )

    def observe(self, event: BaseModel) -> None:
        if isinstance(event, CompensationChanged):
            self.changes.labels(event.topic.removeprefix("compensation.")).inc()
            if (outcome := _PAYOUT_OUTCOMES.get(event.topic)) is not None:
                self.payouts.labels(outcome).inc()
            if event.topic == "compensation.paid":
                self.paid_fen.labels(event.order.asset_type.value).inc(event.order.amount)
