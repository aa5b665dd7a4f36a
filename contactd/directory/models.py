"""Customers, member levels, products and orders as the rest of contactd sees them (no I/O).

Money is always an integer number of **fen** (分, 1/100 yuan): ``price=19900`` is
¥199.00. Integers add up exactly and survive JSON unchanged; format with
:func:`format_yuan` only when showing a number to a person.

Datetimes are tz-aware (``AwareDatetime``): a naive timestamp from a company's system is
refused rather than guessed. Phone numbers are stored and compared in the normal form of
:func:`normalize_phone`; show them through :func:`mask_phone` unless the viewer may see
them in full.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, NewType

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, model_validator

CustomerId = NewType("CustomerId", str)
OrderNo = NewType("OrderNo", str)
Sku = NewType("Sku", str)
Fen = int  # money: integer fen (1/100 yuan)

Gender = Literal["male", "female", "unknown"]
MASK = "****"


class MemberLevel(StrEnum):
    regular = "regular"
    silver = "silver"
    gold = "gold"
    diamond = "diamond"

    @property
    def label(self) -> str:
        """The name customers and agents know it by, e.g. 金卡会员."""
        return _LEVEL_LABELS[self]


_LEVEL_LABELS: dict[MemberLevel, str] = {
    MemberLevel.regular: "普通会员",
    MemberLevel.silver: "银卡会员",
    MemberLevel.gold: "金卡会员",
    MemberLevel.diamond: "钻石会员",
}


class OrderStatus(StrEnum):
    """An order's place in the e-commerce lifecycle.

    ``pending_payment → paid → picking → shipped → delivered → completed``; an unpaid
    order may end ``cancelled``; a paid one may go ``refunding → refunded``.
    """

    pending_payment = "pending_payment"
    paid = "paid"
    picking = "picking"
    shipped = "shipped"
    delivered = "delivered"
    completed = "completed"
    cancelled = "cancelled"
    refunding = "refunding"
    refunded = "refunded"

    @property
    def label(self) -> str:
        """The Chinese name shown to agents, e.g. 已发货."""
        return _STATUS_LABELS[self]

    @property
    def final(self) -> bool:
        """No further change is expected (the order is over)."""
        return self in (OrderStatus.completed, OrderStatus.cancelled, OrderStatus.refunded)


_STATUS_LABELS: dict[OrderStatus, str] = {
    OrderStatus.pending_payment: "待付款",
    OrderStatus.paid: "待发货",
    OrderStatus.picking: "拣货中",
    OrderStatus.shipped: "已发货",
    OrderStatus.delivered: "已签收",
    OrderStatus.completed: "已完成",
    OrderStatus.cancelled: "已取消",
    OrderStatus.refunding: "退款中",
    OrderStatus.refunded: "已退款",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Region(_Model):
    province: str = Field(max_length=32)  # 省 / 直辖市, e.g. 广东省, 上海市
    city: str = Field(max_length=32)  # 市, e.g. 深圳市


class Customer(_Model):
    id: CustomerId = Field(min_length=1, max_length=64)
    name: str = Field(max_length=120)
    phone: str = Field(max_length=32)  # full number, see normalize_phone; mask before showing
    member_level: MemberLevel = MemberLevel.regular
    region: Region | None = None
    gender: Gender = "unknown"
    birth_year: int | None = Field(default=None, ge=1900, le=2100)
    registered_at: AwareDatetime
    tags: tuple[str, ...] = ()
    vip: bool = False

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)


class Product(_Model):
    sku: Sku = Field(min_length=1, max_length=64)
    name: str = Field(max_length=200)
    price: Fen = Field(ge=0)  # list price in fen
    category: str | None = Field(default=None, max_length=32)


class OrderItem(_Model):
    sku: Sku = Field(min_length=1, max_length=64)
    name: str = Field(max_length=200)
    qty: int = Field(ge=1)
    unit_price: Fen = Field(ge=0)  # fen
    amount: Fen = Field(ge=0)  # fen actually charged for this line (after discounts)


class Logistics(_Model):
    carrier: str = Field(max_length=32)  # e.g. 顺丰速运
    tracking_no: str = Field(max_length=64)
    last_event: str | None = None  # e.g. 【上海市】快件已到达 上海转运中心
    last_event_at: AwareDatetime | None = None


class Address(_Model):
    receiver: str = Field(max_length=120)
    phone: str = Field(max_length=32)  # full number: mask it like the customer's
    province: str = Field(max_length=32)
    city: str = Field(max_length=32)
    district: str = Field(default="", max_length=32)
    detail: str = Field(max_length=200)

    @property
    def one_line(self) -> str:
        return f"{self.province}{self.city}{self.district}{self.detail}"


class Order(_Model):
    """An order. ``total`` is what the customer paid (or is to pay), in fen."""

    order_no: OrderNo = Field(min_length=1, max_length=64)  # e.g. O2026112300001234
    customer_id: CustomerId = Field(min_length=1, max_length=64)
    status: OrderStatus
    items: tuple[OrderItem, ...] = ()
    total: Fen = Field(ge=0)
    created_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    shipped_at: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None  # completed, cancelled or refunded
    logistics: Logistics | None = None
    address: Address | None = None


class DirectorySettings(_Model):
    """Where customer, order and product data comes from (``[directory]`` in the config,
    ``CONTACTD_DIRECTORY__*`` in the environment)."""

    kind: Literal["embedded", "http"] = "embedded"
    base_url: str | None = Field(default=None, max_length=500)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    cache_ttl_s: float = Field(default=30.0, ge=0, le=3600, description="0 = no cache")
    cache_max_entries: int = Field(default=1000, ge=1, le=1_000_000)
    token: SecretStr | None = None  # sent as "Authorization: Bearer <token>"

    @model_validator(mode="after")
    def _http_needs_base_url(self) -> DirectorySettings:
        if self.kind == "http":
            if not self.base_url:
                raise ValueError("directory kind 'http' needs base_url")
            if not self.base_url.startswith(("http://", "https://")):
                raise ValueError("directory base_url must start with http:// or https://")
        return self


def normalize_phone(phone: str) -> str:
    """The digits of ``phone``, with a Chinese mobile number reduced to its 11 digits.

    ``+86 138-1234-1234``, ``008613812341234`` and ``013812341234`` all become
    ``13812341234``; other numbers keep their digits (country code included).
    """
    digits = "".join(ch for ch in phone if ch.isascii() and ch.isdigit())
    if digits.startswith("00"):
        digits = digits[2:]
    if len(digits) == 13 and digits.startswith("861"):
        return digits[2:]
    if len(digits) == 12 and digits.startswith("01"):
        return digits[1:]
    return digits


def mask_phone(phone: str) -> str:
    """``13812341234`` → ``138****1234``: the first 3 and last 4 digits, never more.

    Works on the normal form (see :func:`normalize_phone`), so spaces, dashes and a
    ``+86`` prefix make no difference. A number too short to keep 7 digits and still hide
    some is masked entirely (``****``); an empty input gives ``""``.
    """
    digits = normalize_phone(phone)
    if len(digits) < 8:
        return MASK if phone.strip() else ""
    return f"{digits[:3]}{MASK}{digits[-4:]}"


def format_yuan(fen: Fen) -> str:
    """``19900`` → ``¥199.00``."""
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), 100)
    return f"{sign}¥{yuan:,}.{cents:02d}"
