"""After-sales tickets (no I/O): the state machine of every type, the simple status the
customer sees, and the shapes callers read and send.

Each type has its own graph of ``(state, action) -> state``; an action not in the graph
for the ticket's current state is refused (``ticket_invalid_transition``). Agents see every
step as a timeline node (who, when, what); customers see one short label per state, e.g.
退款中 / 退款成功, taken from the seed's "对客视角".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.auth.models import Principal
from contactd.cases.tickets_config import TicketType
from contactd.directory.models import Sku
from contactd.sessions.models import Attachment

T = TicketType
MAX_PRIORITY = 9
TicketState = Literal[
    "pending_review",  # 待审核
    "approved",  # 审核通过
    "refunding",  # 支付中心受理退款
    "refunded",  # 退款完成
    "pickup",  # 取件中
    "returned",  # 取件完成 (goods back)
    "picking",  # 拣货中
    "shipping",  # 配送中
    "delivered",  # 已签收
    "paying",  # 赔付发放中
    "paid",  # 赔付完成
    "processing",  # 投诉处理中
    "resolved",  # 已解决
    "rejected",  # 审核驳回
    "cancelled",  # 已取消
]
Action = Literal[
    "approve",
    "reject",
    "cancel",
    "start_refund",
    "complete_refund",
    "start_pickup",
    "receive_return",
    "start_picking",
    "ship",
    "deliver",
    "start_payout",
    "complete_payout",
    "start_processing",
    "resolve",
]
FINAL_STATES: frozenset[str] = frozenset(
    {"refunded", "delivered", "paid", "resolved", "rejected", "cancelled"}
)
STATE_LABELS: dict[str, str] = {
    "pending_review": "待审核",
    "approved": "审核通过",
    "refunding": "退款处理中",
    "refunded": "退款完成",
    "pickup": "取件中",
    "returned": "取件完成",
    "picking": "拣货中",
    "shipping": "配送中",
    "delivered": "已签收",
    "paying": "赔付发放中",
    "paid": "赔付完成",
    "processing": "处理中",
    "resolved": "已解决",
    "rejected": "已驳回",
    "cancelled": "已取消",
}
ACTION_LABELS: dict[str, str] = {
    "create": "发起申请",
    "approve": "审核通过",
    "reject": "审核驳回",
    "cancel": "取消",
    "start_refund": "支付中心受理退款",
    "complete_refund": "退款完成",
    "start_pickup": "安排取件",
    "receive_return": "取件完成",
    "start_picking": "拣货中",
    "ship": "已发货 配送中",
    "deliver": "已签收",
    "start_payout": "赔付发放中",
    "complete_payout": "赔付完成",
    "start_processing": "开始处理",
    "resolve": "已解决",
    "claim": "领取",
    "assign": "分配",
    "transfer": "转移",
    "dispatch": "调度",
    "urge": "客户催单",
    "priority": "调整优先级",
    "note": "备注",
    "stalled": "停滞提醒",
}

_REVIEW = {
    ("pending_review", "approve"): "approved",
    ("pending_review", "reject"): "rejected",
    ("pending_review", "cancel"): "cancelled",
}
_REFUND = {
    ("approved", "start_refund"): "refunding",
    ("refunding", "complete_refund"): "refunded",
}
_RETURN = {
    ("approved", "start_pickup"): "pickup",
    ("pickup", "receive_return"): "returned",
    ("approved", "cancel"): "cancelled",
    ("pickup", "cancel"): "cancelled",
}
_SHIP = {
    ("picking", "ship"): "shipping",
    ("shipping", "deliver"): "delivered",
}
TRANSITIONS: dict[TicketType, dict[tuple[str, str], str]] = {
    T.refund: {**_REVIEW, **_REFUND, ("approved", "cancel"): "cancelled"},
    T.partial_refund: {**_REVIEW, **_REFUND, ("approved", "cancel"): "cancelled"},
    T.return_refund: {**_REVIEW, **_RETURN, ("returned", "start_refund"): "refunding", **_REFUND},
    T.reshipment: {
        **_REVIEW,
        ("approved", "start_picking"): "picking",
        ("approved", "cancel"): "cancelled",
        **_SHIP,
    },
    T.exchange: {**_REVIEW, **_RETURN, ("returned", "start_picking"): "picking", **_SHIP},
    T.compensation: {
        **_REVIEW,
        ("approved", "start_payout"): "paying",
        ("paying", "complete_payout"): "paid",
        ("approved", "cancel"): "cancelled",
    },
    T.complaint: {
        ("pending_review", "start_processing"): "processing",
        ("pending_review", "cancel"): "cancelled",
        ("processing", "resolve"): "resolved",
    },
}

# what the customer sees, per type and state (对客视角)
_CUSTOMER_REFUND = {
    "pending_review": "退款中",
    "approved": "退款中",
    "refunding": "退款中",
    "refunded": "退款成功 已到账",
}
_CUSTOMER_RETURN = {
    "pending_review": "退货申请已受理",
    "approved": "退货申请已通过",
    "pickup": "取件中",
    "returned": "取件完成",
}
_CUSTOMER_SHIP = {"picking": "拣货中", "shipping": "配送中", "delivered": "已签收"}
CUSTOMER_STATUS: dict[TicketType, dict[str, str]] = {
    T.refund: _CUSTOMER_REFUND,
    T.partial_refund: _CUSTOMER_REFUND,
    T.return_refund: {**_CUSTOMER_RETURN, "refunding": "退款中", "refunded": "退款成功 已到账"},
    T.reshipment: {
        "pending_review": "补货申请已受理",
        "approved": "补货订单已生成",
        **_CUSTOMER_SHIP,
    },
    T.exchange: {
        **_CUSTOMER_RETURN,
        "pending_review": "换货申请已受理",
        "approved": "换货申请已通过",
        **_CUSTOMER_SHIP,
    },
    T.compensation: {
        "pending_review": "赔付审核中",
        "approved": "赔付审核通过",
        "paying": "赔付发放中",
        "paid": "赔付成功 已到账",
    },
    T.complaint: {"pending_review": "已受理", "processing": "处理中", "resolved": "已解决"},
}
_CUSTOMER_COMMON = {"rejected": "申请未通过", "cancelled": "已取消"}

# the order statuses a new ticket of each type is allowed on (None: no order needed)
ORDER_STATUSES: dict[TicketType, frozenset[str] | None] = {
    T.refund: frozenset({"paid", "picking"}),
    T.partial_refund: frozenset({"delivered", "completed"}),
    T.return_refund: frozenset({"delivered", "completed"}),
    T.reshipment: frozenset({"delivered", "completed"}),
    T.exchange: frozenset({"delivered", "completed"}),
    T.compensation: frozenset({"shipped", "delivered", "completed"}),
    T.complaint: None,
}
MONEY_TYPES = frozenset({T.refund, T.partial_refund, T.return_refund, T.compensation})


def next_state(ticket_type: TicketType, state: str, action: str) -> str | None:
    """The state ``action`` leads to, or None when the type's graph has no such edge."""
    return TRANSITIONS[ticket_type].get((state, action))


def actions_from(ticket_type: TicketType, state: str) -> list[str]:
    return [a for (s, a) in TRANSITIONS[ticket_type] if s == state]


# the customer's labels for an English-language widget
CUSTOMER_LABELS_EN: dict[str, str] = {
    "取件中": "Pickup arranged",
    "取件完成": "Picked up",
    "处理中": "In progress",
    "已取消": "Cancelled",
    "已受理": "Received",
    "已签收": "Delivered",
    "已解决": "Resolved",
    "拣货中": "Being picked",
    "换货申请已受理": "Exchange request received",
    "换货申请已通过": "Exchange approved",
    "申请未通过": "Request declined",
    "补货申请已受理": "Reshipment request received",
    "补货订单已生成": "Reshipment order created",
    "赔付发放中": "Compensation on its way",
    "赔付审核中": "Compensation under review",
    "赔付审核通过": "Compensation approved",
    "赔付成功 已到账": "Compensation credited",
    "退款中": "Refund in progress",
    "退款成功 已到账": "Refunded, credited",
    "退货申请已受理": "Return request received",
    "退货申请已通过": "Return approved",
    "配送中": "Out for delivery",
}
Lang = Literal["zh", "en"]


def customer_status(ticket_type: TicketType, state: str, lang: Lang = "zh") -> str:
    label = CUSTOMER_STATUS[ticket_type].get(state) or _CUSTOMER_COMMON.get(state, "处理中")
    return CUSTOMER_LABELS_EN.get(label, label) if lang == "en" else label


def happy_path(ticket_type: TicketType) -> list[str]:
    """The states of the type's successful course, in order (never reject or cancel)."""
    path, state = ["pending_review"], "pending_review"
    while state not in FINAL_STATES:
        state = next(
            target
            for (s, action), target in TRANSITIONS[ticket_type].items()
            if s == state and action not in ("reject", "cancel")
        )
        path.append(state)
    return path


def customer_steps(ticket_type: TicketType, state: str, lang: Lang = "zh") -> list[CustomerStep]:
    """The whole course as the customer sees it (用户视角全流程): one step per distinct label
    of the successful path, those passed marked done, the one the ticket is at current.
    A rejected or cancelled ticket shows the steps it passed and then how it ended."""
    path = happy_path(ticket_type)
    labels: list[str] = []
    at: dict[str, int] = {}
    for s in path:
        label = customer_status(ticket_type, s, lang)
        if not labels or labels[-1] != label:
            labels.append(label)
        at[s] = len(labels) - 1
    if state in at:
        here = at[state]
        return [
            CustomerStep(label=label, done=i < here or state in FINAL_STATES, current=i == here)
            for i, label in enumerate(labels)
        ]
    return [
        CustomerStep(label=labels[0], done=True, current=False),
        CustomerStep(label=customer_status(ticket_type, state, lang), done=True, current=True),
    ]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TicketItem(_Model):
    sku: Sku = Field(min_length=1, max_length=64)
    qty: int = Field(ge=1, le=10_000)
    name: str | None = Field(default=None, max_length=200, description="filled from the order")
    amount: int | None = Field(
        default=None, ge=0, description="fen of this line covered (filled from the order)"
    )


class TimelineNode(_Model):
    """One step of a ticket, as agents see it."""

    at: int
    action: str
    label: str
    actor_type: Literal["staff", "api_key", "system", "customer"]
    actor_id: str | None
    actor_name: str | None
    from_state: str | None
    to_state: str | None
    to_state_label: str | None = None
    note: str | None = None
    data: dict[str, Any] | None = None


class TicketView(_Model):
    id: str
    version: int
    type: TicketType
    type_label: str
    state: str
    state_label: str
    customer_status: str
    final: bool
    priority: int
    queue_id: str
    owner_id: str | None
    owner_name: str | None
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None = Field(description="masked")
    order_no: str | None
    session_id: str | None
    items: list[TicketItem]
    attachments: list[Attachment] = Field(description="evidence from the chat")
    amount: int = Field(description="fen")
    reason: str
    auto_rule: str | None = Field(description="fast_review | lightning_refund when automatic")
    urges: int
    last_urged_at: int | None
    created_by: str
    created_at: int
    updated_at: int
    claimed_at: int | None
    first_action_at: int | None
    closed_at: int | None
    stalled: bool
    actions: list[str] = Field(description="what may be done next")


class TicketDetail(_Model):
    ticket: TicketView
    timeline: list[TimelineNode]


class CustomerStep(_Model):
    label: str
    done: bool
    current: bool


class CustomerTicket(_Model):
    """What the widget shows: the simple status and the course, never internal detail."""

    id: str
    type: TicketType
    type_label: str
    status: str
    final: bool
    order_no: str | None
    amount: int
    created_at: int
    updated_at: int
    can_urge: bool
    urge_available_at: int | None
    steps: list[CustomerStep]


class PoolSummary(_Model):
    queue_id: str
    count: int
    oldest_created_at: int | None
    oldest_age_s: int | None
    urgent: int = Field(description="tickets of priority 5 and above")


class PrefillOrder(_Model):
    order_no: str
    status: str
    status_label: str
    total: int
    created_at: str
    items: list[TicketItem]
    types: list[TicketType] = Field(description="ticket types possible on this order now")


class TicketPrefill(_Model):
    """What the "new ticket" form starts from, for a chat."""

    session_id: str
    queue_id: str
    customer_id: str | None
    customer_name: str | None
    customer_phone: str | None = Field(description="masked")
    order_no: str | None = Field(description="the order the chat is about")
    orders: list[PrefillOrder]
    types: list[TicketType]
    attachments: list[Attachment] = Field(description="images and files sent in the chat")


def types_for_order(status: str | None) -> list[TicketType]:
    """The ticket types an order in ``status`` allows (no order: those needing none)."""
    return [
        t
        for t, allowed in ORDER_STATUSES.items()
        if (allowed is None) or (status is not None and status in allowed)
    ]


class TicketDraft(BaseModel):
    """A new ticket. From a session, the customer and order come from it when omitted."""

    model_config = ConfigDict(extra="forbid")

    type: TicketType
    order_no: str | None = Field(default=None, min_length=1, max_length=64)
    items: list[TicketItem] = Field(default_factory=list, max_length=100)
    amount: int | None = Field(
        default=None, ge=0, le=100_000_000, description="fen; refund: the order total"
    )
    reason: str = Field(min_length=1, max_length=1000)
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY)
    queue_id: str | None = Field(default=None, max_length=64)
    customer_id: str | None = Field(default=None, min_length=1, max_length=64)
    customer_phone: str | None = Field(default=None, min_length=5, max_length=32)
    session_id: str | None = Field(default=None, max_length=32)
    attachments: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list,
        max_length=10,
        description="ids of images or files the customer sent in the chat (session_id)",
    )


class Actor(BaseModel):
    """Who acts: staff, an API key, the system, or a customer (from the widget)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["staff", "api_key", "system", "customer"]
    id: str | None
    name: str | None
    principal: Principal | None = None


SYSTEM = Actor(kind="system", id=None, name="系统 System")


def actor_of(who: Principal, display_name: str | None = None) -> Actor:
    return Actor(kind=who.kind, id=who.name, name=display_name or who.name, principal=who)
