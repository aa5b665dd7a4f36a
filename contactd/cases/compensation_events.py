"""Domain events of compensation orders (the bus carries them to the socket layer and the
workers; payloads forbid unknown fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from contactd.cases.compensation_models import CompensationView, CustomerNoticeView


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CompensationChanged(_Event):
    """An order was created or changed state. ``reviewer_roles``: who reviews it next."""

    type: Literal["compensation.changed"] = "compensation.changed"
    topic: str  # the webhook event name, e.g. compensation.approved
    order: CompensationView
    creator_username: str | None  # staff creator (for the live push), None for API keys
    reviewer_roles: tuple[str, ...] = ()


class CustomerNotified(_Event):
    """A notice for the customer's widget (delivered from the outbox)."""

    type: Literal["compensation.customer_notice"] = "compensation.customer_notice"
    session_id: str
    notice: CustomerNoticeView


class PayoutsDue(_Event):
    """New payouts or outbox rows are waiting: wake the workers now."""

    type: Literal["compensation.work_due"] = "compensation.work_due"
