"""Compensation orders (赔付单): states, request bodies and views (no I/O)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contactd.cases.compensation_config import AssetType
from contactd.directory.models import mask_phone

Stage = Literal["l1", "l2"]
PayoutState = Literal["pending", "succeeded", "failed"]
ORDER_NO_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_BATCH = 200


class Status(StrEnum):
    pending_review = "pending_review"  # 待审核 (stage l1 business, then l2 finance)
    rejected = "rejected"  # 审核未通过: edit and resubmit, or close
    approved = "approved"  # 已审核通过待赔付
    paid = "paid"  # 已赔付完成
    closed = "closed"  # 关闭

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Status.pending_review: "待审核",
    Status.rejected: "审核未通过",
    Status.approved: "已审核通过待赔付",
    Status.paid: "已赔付完成",
    Status.closed: "已关闭",
}
CUSTOMER_LABELS = {
    Status.pending_review: "处理中",
    Status.rejected: "处理中",
    Status.approved: "发放中",
    Status.paid: "已到账",
    Status.closed: "已关闭",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Body):
    sku: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    qty: int = Field(ge=1, le=10_000)
    amount: int = Field(default=0, ge=0, description="fen the customer paid for these units")


class Attachment(_Body):
    name: str = Field(min_length=1, max_length=255)
    url: str = Field(min_length=1, max_length=1000, description="an upload URL or a link")


class CompensationFields(_Body):
    """What the creator fills in (and edits before resubmitting)."""

    customer_phone: str | None = Field(
        default=None,
        min_length=5,
        max_length=32,
        description="the customer's phone; may be left out when session_id names the chat",
    )
    order_no: str | None = Field(default=None, pattern=ORDER_NO_PATTERN)
    after_sales_no: str | None = Field(
        default=None, pattern=ORDER_NO_PATTERN, description="required for after-sales scenes"
    )
    items: list[Item] = Field(default_factory=list, max_length=100)
    scene: str = Field(min_length=1, max_length=48, description="second-level scene id")
    asset_type: AssetType
    amount: int = Field(gt=0, description="fen")
    reason: str = Field(min_length=1, max_length=2000)
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)
    region: str | None = Field(
        default=None, max_length=32, description="province; taken from the customer if omitted"
    )


class CompensationCreate(CompensationFields):
    session_id: str | None = Field(
        default=None, max_length=32, description="the service session it came from"
    )


class CompensationEdit(CompensationFields):
    version: int = Field(ge=0, description="the version you edited (optimistic lock)")


class ReviewBody(_Body):
    version: int = Field(ge=0, description="the version you reviewed (optimistic lock)")
    comment: str = Field(default="", max_length=500)


class RejectBody(ReviewBody):
    comment: str = Field(min_length=1, max_length=500, description="why (shown to the creator)")


class BatchItem(_Body):
    id: str = Field(min_length=1, max_length=32)
    version: int = Field(ge=0)


class BatchBody(_Body):
    action: Literal["approve", "reject", "close"]
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)
    comment: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _reject_needs_reason(self) -> BatchBody:
        if self.action == "reject" and not self.comment.strip():
            raise ValueError("a batch reject needs a comment (the reason)")
        ids = [i.id for i in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("each order may appear once in a batch")
        return self


class QuoteBody(_Body):
    scene: str = Field(min_length=1, max_length=48)
    order_no: str = Field(pattern=ORDER_NO_PATTERN)
    items: list[Item] = Field(default_factory=list, max_length=100, description="none = all")


class QuoteOut(_Body):
    scene: str
    basis: int = Field(description="fen paid for the affected items")
    amount: int = Field(description="suggested compensation, fen")
    rule: str


class CompensationView(_Body):
    id: str
    version: int
    status: Status
    status_label: str
    stage: Stage | None
    needs_l1: bool
    needs_l2: bool
    manual_review: bool
    region: str
    customer_phone: str
    customer_id: str | None
    order_no: str | None
    after_sales_no: str | None
    items: list[Item]
    scene_group: str
    scene: str
    asset_type: AssetType
    amount: int
    reason: str
    attachments: list[Attachment]
    session_id: str | None
    creator_id: str
    creator_name: str
    creator_kind: Literal["staff", "api_key"]
    submissions: int
    l1_by: str | None
    l1_at: datetime | None
    l2_by: str | None
    l2_at: datetime | None
    rejected_by: str | None
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    paid_at: datetime | None
    closed_at: datetime | None
    payout_id: str | None
    payout_state: PayoutState | None


class CompensationPage(_Body):
    items: list[CompensationView]
    total: int


class BatchResult(_Body):
    id: str
    ok: bool
    status: Status | None = None
    version: int | None = None
    error: dict[str, str] | None = None


class BatchOut(_Body):
    results: list[BatchResult]
    succeeded: int
    failed: int


class PayoutView(_Body):
    id: str
    compensation_id: str
    asset_type: AssetType
    amount: int
    account: str
    connector: str
    state: PayoutState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    external_ref: str | None
    created_at: datetime
    paid_at: datetime | None


class CustomerNoticeView(_Body):
    """What the customer's widget shows about one order."""

    compensation_id: str
    status: Status
    label: str
    asset_type: AssetType
    asset_label: str
    amount: int


class DeliveryView(_Body):
    """One outgoing webhook or customer notification and how its delivery went."""

    id: int
    kind: str
    topic: str
    target: str
    subject_id: str
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime
    delivered_at: datetime | None


def masked(view: CompensationView, *, pii: bool) -> CompensationView:
    """The view as a caller without ``pii.view`` may see it: the phone masked
    (``138****8000``), as everywhere else staff see customers."""
    if pii:
        return view
    return view.model_copy(update={"customer_phone": mask_phone(view.customer_phone)})
