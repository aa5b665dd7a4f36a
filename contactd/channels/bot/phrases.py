"""What the bot itself says, in Chinese and English, and the self-service intents it knows
(matched through the same search as the FAQ entries, under negative keys)."""

from __future__ import annotations

from dataclasses import dataclass

from contactd.channels.bot.models import Lang


@dataclass(frozen=True)
class Intent:
    key: int  # negative: never a FAQ id
    name: str
    label: dict[str, str]  # the chip
    phrases: tuple[str, ...]  # ways people ask for it (both languages)


INTENTS: tuple[Intent, ...] = (
    Intent(
        -1,
        "order_status",
        {"zh": "查订单", "en": "Order status"},
        ("查订单", "订单状态", "查询订单", "我的订单", "order status", "check my order"),
    ),
    Intent(
        -2,
        "logistics",
        {"zh": "查物流", "en": "Track my parcel"},
        (
            "查物流",
            "物流信息",
            "快递到哪了",
            "什么时候发货",
            "track my parcel",
            "where is my package",
        ),
    ),
    Intent(
        -3,
        "refund",
        {"zh": "申请退款", "en": "Request a refund"},
        (
            "申请退款",
            "我要退款",
            "退货退款",
            "request a refund",
            "i want a refund",
            "return an item",
        ),
    ),
    Intent(
        -4,
        "address_change",
        {"zh": "修改收货地址", "en": "Change delivery address"},
        ("修改收货地址", "改地址", "换收货地址", "change delivery address", "change my address"),
    ),
)
INTENT_BY_KEY = {i.key: i for i in INTENTS}
INTENT_BY_NAME = {i.name: i for i in INTENTS}
CANCEL_WORDS = ("取消", "算了", "cancel", "never mind")

_PHRASES: dict[str, tuple[str, str]] = {
    # key: (zh, en)
    "greeting": (
        "您好，我是智能助手，可以帮您查订单、查物流、申请退款或解答常见问题。"
        "随时点「转人工」或发送“人工”即可联系客服。",
        "Hi, I'm the assistant: I can check orders and deliveries, start a refund or answer "
        "common questions. Tap “Talk to a person” or type “human” at any time to reach an agent.",
    ),
    "miss": (
        "抱歉，我没有完全理解您的问题。您是想问下面这些吗？也可以换个说法，或者点「转人工」。",
        "Sorry, I did not quite get that. Did you mean one of these? You can also rephrase it "
        "or tap “Talk to a person”.",
    ),
    "no_answer": (
        "这个问题我暂时回答不了，正在为您转接人工客服。",
        "I cannot answer that one, so I am getting you a person.",
    ),
    "handoff": (
        "正在为您转接人工客服，请稍候。您和我的对话客服都能看到，不用重复描述。",
        "Connecting you to a person now. They will see our conversation, so no need to repeat.",
    ),
    "handoff_refused": (
        "当前排队人数已满，暂时无法转接，请稍后再试；我可以继续为您解答。",
        "The queue is full right now; please try again in a moment. I can keep helping meanwhile.",
    ),
    "glad": ("很高兴能帮到您！还有其他问题吗？", "Glad I could help! Anything else?"),
    "text_only": (
        "我只能读文字消息；图片和文件请在转人工后发送给客服。",
        "I can only read text; send pictures or files once you are with an agent.",
    ),
    "pick_order": ("请选择要查询的订单：", "Which order is it about?"),
    "ask_order": (
        "请发送订单号（例如 O2026112300000001）。",
        "Please send the order number (like O2026112300000001).",
    ),
    "order_unknown": (
        "没有找到这个订单，请核对订单号后重新发送。",
        "I could not find that order; please check the number and send it again.",
    ),
    "ask_phone": (
        "为了保护您的信息，请发送下单手机号的后四位。",
        "To keep your data safe, please send the last 4 digits of the phone number on the order.",
    ),
    "phone_wrong": (
        "手机号后四位不匹配，请再试一次。",
        "Those digits do not match the order; please try again.",
    ),
    "status": ("订单 {order_no} 当前状态：{status}。", "Order {order_no} is now: {status}."),
    "logistics": (
        "订单 {order_no} 由{carrier}承运，运单号 {tracking_no}。最新动态：{event}",
        "Order {order_no} travels with {carrier}, tracking number {tracking_no}. Latest: {event}",
    ),
    "not_shipped": (
        "订单 {order_no} 还没有发货（{status}），发货后这里就能查到物流。",
        "Order {order_no} has not shipped yet ({status}); tracking shows here once it does.",
    ),
    "no_event": ("暂无", "none yet"),
    "refund_not_possible": (
        "订单 {order_no} 当前状态为{status}，不能在线申请退款。需要的话请点「转人工」。",
        "Order {order_no} is {status}, so a refund cannot be started here. Tap “Talk to a "
        "person” if you need one.",
    ),
    "ask_reason": (
        "请简单说明退款原因（例如：不想要了、商品损坏、发错货）。",
        "Please tell me briefly why (e.g. changed my mind, damaged, wrong item).",
    ),
    "refund_recorded": (
        "已为订单 {order_no} 提交退款申请，申请号 {request_id}。售后专员会在 24 小时内处理，"
        "进度会通知您。",
        "Your refund request {request_id} for order {order_no} is in. An after-sales agent "
        "handles it within 24 hours and keeps you posted.",
    ),
    "refund_ticket_opened": (
        "已为订单 {order_no} 提交退款申请，售后工单号 {ticket_id}。售后专员会在 24 小时内处理，"
        "您可以在「我的售后」随时查看进度。",
        "Your refund for order {order_no} is in: after-sales ticket {ticket_id}. An after-sales "
        "agent handles it within 24 hours; follow it any time under “My after-sales”.",
    ),
    "refund_ticket_pending": (
        "已为订单 {order_no} 提交退款申请，申请号 {request_id}。售后工单正在生成，稍后可在"
        "「我的售后」查看进度。",
        "Your refund request {request_id} for order {order_no} is in; its after-sales ticket "
        "is on its way and will show under “My after-sales”.",
    ),
    "already_ticket": (
        "订单 {order_no} 已提交过退款申请，售后工单号 {ticket_id}，无需重复提交，进度可在"
        "「我的售后」查看。",
        "Order {order_no} already has a refund request: after-sales ticket {ticket_id}. No "
        "need to repeat; follow it under “My after-sales”.",
    ),
    "already_requested": (
        "订单 {order_no} 已有进行中的申请（{request_id}），无需重复提交。",
        "Order {order_no} already has a request in progress ({request_id}); no need to repeat.",
    ),
    "address_not_possible": (
        "订单 {order_no} 已{status}，无法再修改收货地址。需要的话请点「转人工」。",
        "Order {order_no} is {status}, so the address can no longer change. Tap “Talk to a "
        "person” if you need help.",
    ),
    "ask_address": (
        "请发送新的收货地址（收货人、电话、省市区和详细地址）。",
        "Please send the new address (name, phone, city and street).",
    ),
    "address_too_short": (
        "地址太短了，请发送完整的收货地址。",
        "That address looks incomplete; please send the full address.",
    ),
    "address_recorded": (
        "已提交订单 {order_no} 的改地址申请（{request_id}），我们会在发货前为您修改并通知您。",
        "Your address change {request_id} for order {order_no} is in; we update it before "
        "shipping and let you know.",
    ),
    "too_many_tries": (
        "验证失败次数过多，为保护订单信息，正在为您转接人工客服。",
        "Too many wrong answers: to protect the order's details, a person will help you.",
    ),
    "no_orders": (
        "没有找到您名下的订单。请发送订单号。",
        "I found no orders under your account. Please send the order number.",
    ),
    "cancelled": ("好的，已取消。还有什么可以帮您？", "OK, cancelled. What else can I do for you?"),
    "idle_closed": (
        "由于长时间没有收到您的消息，本次对话已结束。",
        "This chat ended after a long silence.",
    ),
}


def say(key: str, lang: Lang, **values: object) -> str:
    zh, en = _PHRASES[key]
    return (zh if lang == "zh" else en).format(**values)
