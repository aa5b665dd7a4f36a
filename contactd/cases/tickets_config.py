"""Configuration of after-sales tickets (``[tickets]`` in the config file,
``CONTACTD_TICKETS__*`` in the environment): stall warnings, urging, and the automatic
approval rules ("fast review" 极速审核 and "lightning refund" 闪电退款). No I/O.

Money is integer fen (1/100 yuan).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class TicketType(StrEnum):
    refund = "refund"  # 退款 (before picking is done: the whole order)
    return_refund = "return_refund"  # 退货退款
    reshipment = "reshipment"  # 补货
    partial_refund = "partial_refund"  # 部分退款
    exchange = "exchange"  # 换货
    compensation = "compensation"  # 赔付
    complaint = "complaint"  # 投诉

    @property
    def label(self) -> str:
        return _TYPE_LABELS[self]

    @property
    def label_en(self) -> str:
        return self.value.replace("_", " ").capitalize()


_TYPE_LABELS = {
    TicketType.refund: "退款",
    TicketType.return_refund: "退货退款",
    TicketType.reshipment: "补货",
    TicketType.partial_refund: "部分退款",
    TicketType.exchange: "换货",
    TicketType.compensation: "赔付",
    TicketType.complaint: "投诉",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FastReviewRule(_Frozen):
    """极速审核: a new ticket of one of ``types`` whose amount is at most ``max_amount``
    (and whose order is in one of ``order_statuses``, when given) is approved at once by
    the system."""

    types: tuple[TicketType, ...] = Field(min_length=1)
    max_amount: int = Field(ge=0, description="fen")
    order_statuses: tuple[str, ...] = ()


class LightningRefund(_Frozen):
    """闪电退款: refunds on chosen orders skip review *and* the finance step: the system
    approves them and hands them to the payment centre at once."""

    order_nos: tuple[str, ...] = ()
    member_levels: tuple[str, ...] = Field(
        default=(), description="e.g. diamond: every order of these members"
    )
    max_amount: int = Field(default=50_000, ge=0, description="fen")


class TicketSettings(_Frozen):
    default_queue: str | None = Field(
        default=None, description="the pool new tickets land in; None = the first queue"
    )
    stall_after_s: float = Field(
        default=4 * 3600, gt=0, description="no progress this long on an open ticket: a warning"
    )
    stall_check_s: float = Field(default=60.0, gt=0, le=3600)
    urge_interval_s: float = Field(
        default=1800.0, ge=0, description="a customer may urge the same ticket once per this"
    )
    urge_priority_step: int = Field(default=1, ge=0, le=9)
    fast_review: tuple[FastReviewRule, ...] = (
        FastReviewRule(
            types=(TicketType.refund,), max_amount=20_000, order_statuses=("paid", "picking")
        ),
    )
    lightning_refund: LightningRefund = LightningRefund()
