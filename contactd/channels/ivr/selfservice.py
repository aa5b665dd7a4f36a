"""IVR self-service: the menu and the answers read out without an agent (order status,
logistics, after-sales/compensation status). Pure text building, no I/O.

Texts come in Chinese and English; ``ivr.language`` picks one (zh-* → Chinese)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contactd.channels.ivr.cases import CaseStatus
from contactd.directory.models import Order

Choice = Literal["order", "logistics", "cases", "voicemail", "agent", "repeat"]

MAIN = "main"
ORDER_NO = "order_no"
ORDER_PHONE = "order_phone"  # an unknown caller proves the order is theirs

KEYS: dict[str, Choice] = {
    "1": "order",
    "2": "logistics",
    "3": "cases",
    "9": "voicemail",
    "0": "agent",
    "*": "repeat",
}
# spoken choices (speech recognition results), checked in order
WORDS: tuple[tuple[Choice, tuple[str, ...]], ...] = (
    ("agent", ("人工", "客服", "转人工", "agent", "human", "operator", "representative")),
    ("logistics", ("物流", "快递", "配送", "logistics", "delivery", "shipping", "tracking")),
    ("cases", ("售后", "退款", "赔付", "理赔", "refund", "after-sales", "compensation", "claim")),
    ("order", ("订单", "order")),
    ("voicemail", ("留言", "回电", "message", "call back", "callback")),
)


def choice_of(digits: str | None, speech: str | None) -> Choice | None:
    if digits:
        return KEYS.get(digits[:1])
    if speech:
        said = speech.lower()
        for choice, words in WORDS:
            if any(w in said for w in words):
                return choice
    return None


@dataclass(frozen=True)
class Texts:
    welcome: str
    welcome_back: str
    menu: str
    ask_order_no: str
    ask_phone_tail: str
    phone_wrong: str
    too_many_tries: str
    no_order: str
    no_orders: str
    order_line: str
    logistics_line: str
    no_logistics: str
    no_cases: str
    case_line: str
    invalid: str
    queued: str
    queued_wait: str
    connecting: str
    queue_full: str
    overflow: str
    voicemail: str
    voicemail_thanks: str
    goodbye: str
    unavailable: str


ZH = Texts(
    welcome="您好，欢迎致电客户服务中心。",
    welcome_back="{name}您好，欢迎致电客户服务中心。",
    menu="查询订单请按1，查询物流请按2，查询售后或赔付进度请按3，留言请按9，人工服务请按0。",
    ask_order_no="请输入订单号的数字部分，以井号键结束。返回主菜单请按星号键，人工服务请按0。",
    ask_phone_tail="为保护您的信息，请输入下单手机号的后四位。",
    phone_wrong="手机号后四位不符，无法查询这个订单。",
    too_many_tries="这个订单的验证错误次数过多，请按0转人工服务。",
    no_order="没有找到这个订单。",
    no_orders="您的号码下没有查到订单。",
    order_line="订单尾号{tail}，{status}，金额{amount}元。",
    logistics_line="订单尾号{tail}，{carrier}，运单号尾号{track}，最新进展：{event}。",
    no_logistics="订单尾号{tail}还没有物流信息，状态是{status}。",
    no_cases="您目前没有处理中的售后或赔付。",
    case_line="{title}，单号尾号{tail}，{status}。",
    invalid="输入有误。",
    queued="正在为您转接人工客服，您前面还有{ahead}位。",
    queued_wait="正在为您转接人工客服，您前面还有{ahead}位，预计等待{minutes}分钟。",
    connecting="正在为您接通客服。",
    queue_full="现在线路繁忙，请在提示音后留言，我们会尽快回电。",
    overflow="抱歉让您久等了。请在提示音后留言，我们会尽快回电。",
    voicemail="请在提示音后留言，按井号键结束，我们会尽快回电。",
    voicemail_thanks="已收到您的留言，我们会尽快回电。再见。",
    goodbye="感谢您的来电，再见。",
    unavailable="抱歉，暂时无法查询，请稍后再试。",
)
EN = Texts(
    welcome="Hello, and thank you for calling customer service.",
    welcome_back="Hello {name}, thank you for calling customer service.",
    menu="For order status press 1, for delivery press 2, for refunds and compensation "
    "press 3, to leave a message press 9, to speak to an agent press 0.",
    ask_order_no="Enter the digits of your order number, then the hash key. Press star for "
    "the main menu or 0 for an agent.",
    ask_phone_tail="To protect your details, enter the last four digits of the phone number "
    "on the order.",
    phone_wrong="Those digits do not match, so we cannot read out this order.",
    too_many_tries="Too many wrong tries for this order. Press 0 for an agent.",
    no_order="We could not find that order.",
    no_orders="We found no orders for your number.",
    order_line="Order ending {tail}: {status}, {amount} yuan.",
    logistics_line="Order ending {tail}: {carrier}, tracking number ending {track}, "
    "latest: {event}.",
    no_logistics="Order ending {tail} has no delivery information yet; it is {status}.",
    no_cases="You have no refunds or compensations in progress.",
    case_line="{title}, number ending {tail}: {status}.",
    invalid="Sorry, that is not an option.",
    queued="Connecting you to an agent. There are {ahead} callers ahead of you.",
    queued_wait="Connecting you to an agent. There are {ahead} callers ahead of you; "
    "the wait is about {minutes} minutes.",
    connecting="Connecting you now.",
    queue_full="All our lines are busy. Please leave a message after the tone and we "
    "will call you back.",
    overflow="Sorry to keep you waiting. Please leave a message after the tone and we "
    "will call you back.",
    voicemail="Please leave a message after the tone, then press the hash key. We will "
    "call you back.",
    voicemail_thanks="Thank you, we have your message and will call you back. Goodbye.",
    goodbye="Thank you for calling. Goodbye.",
    unavailable="Sorry, we cannot look that up right now. Please try again later.",
)


def texts_for(language: str) -> Texts:
    return ZH if language.lower().startswith("zh") else EN


def _tail(value: str, n: int = 4) -> str:
    return " ".join(value[-n:])  # read digit by digit


def order_answer(t: Texts, orders: list[Order]) -> str:
    if not orders:
        return t.no_orders
    return "".join(
        t.order_line.format(
            tail=_tail(o.order_no),
            status=o.status.label if t is ZH else o.status.value.replace("_", " "),
            amount=f"{o.total / 100:.2f}",
        )
        for o in orders
    )


def logistics_answer(t: Texts, orders: list[Order]) -> str:
    if not orders:
        return t.no_orders
    parts = []
    for o in orders:
        status = o.status.label if t is ZH else o.status.value.replace("_", " ")
        if o.logistics is None:
            parts.append(t.no_logistics.format(tail=_tail(o.order_no), status=status))
        else:
            parts.append(
                t.logistics_line.format(
                    tail=_tail(o.order_no),
                    carrier=o.logistics.carrier,
                    track=_tail(o.logistics.tracking_no),
                    event=o.logistics.last_event or status,
                )
            )
    return "".join(parts)


def cases_answer(t: Texts, cases: list[CaseStatus]) -> str:
    if not cases:
        return t.no_cases
    return "".join(
        t.case_line.format(title=c.title, tail=_tail(c.number), status=c.status) for c in cases
    )


def queued_text(t: Texts, position: int, wait_s: int | None) -> str:
    if wait_s is None:
        return t.queued.format(ahead=position)
    return t.queued_wait.format(ahead=position, minutes=max(1, round(wait_s / 60)))
