"""The built-in bot: answers from the knowledge base and runs the self-service flows
(order status, logistics, start a refund, change the delivery address) on the directory.

An anonymous visitor proves an order is theirs with the last 4 digits of its phone number
before the bot says anything about it; an identified customer picks among their orders.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from contactd.channels.bot.knowledge import KnowledgeBase
from contactd.channels.bot.models import BotReply, Faq, Lang, Prompt, Suggestion
from contactd.channels.bot.phrases import CANCEL_WORDS, INTENT_BY_NAME, INTENTS, say
from contactd.channels.bot.requests import SelfServiceRequests
from contactd.channels.bot.text import contains_phrase
from contactd.directory.base import Directory
from contactd.directory.models import Order, OrderStatus
from contactd.directory.verification import PhoneCheck
from contactd.sessions.models import SessionRecord
from contactd.sessions.screenpop import order_card
from contactd.storage.keyspace import SiteKeys

_ORDER_NO = re.compile(r"[A-Za-z]?\d{6,63}")
_NOT_REFUNDABLE = (OrderStatus.pending_payment, OrderStatus.cancelled, OrderStatus.refunded)
_ADDRESS_CHANGEABLE = (OrderStatus.pending_payment, OrderStatus.paid, OrderStatus.picking)


class Conversation(BaseModel):
    """A bot conversation's state (kept in Redis while the bot has the chat)."""

    model_config = ConfigDict(extra="forbid")

    lang: Lang = "zh"
    misses: int = 0
    last_seq: int = 0
    flow: str | None = None  # an intent name while a self-service flow is open
    step: str | None = None  # pick_order | ask_order | ask_phone | ask_reason | ask_address
    order_no: str | None = None
    answers: dict[int, int] = Field(default_factory=dict)  # bot message seq → FAQ id
    rated: list[int] = Field(default_factory=list)  # answers the customer gave feedback on
    requests: list[str] = Field(default_factory=list)  # self-service requests recorded
    tickets: list[str] = Field(default_factory=list)  # the after-sales tickets they opened
    prompt: dict[str, Any] | None = None  # the chips on show (a Prompt)

    def prompt_suggestions(self) -> list[Suggestion]:
        return Prompt.model_validate(self.prompt).suggestions if self.prompt else []


class FaqBot:
    def __init__(
        self,
        kb: KnowledgeBase,
        directory: Directory,
        requests: SelfServiceRequests,
        suggestions: int,
        redis: Redis,
        keys: SiteKeys,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.phone_check = PhoneCheck(redis, keys, directory)
        self.kb = kb
        self.directory = directory
        self.requests = requests
        self.n_suggestions = suggestions

    async def starters(self, lang: Lang) -> list[Suggestion]:
        """Chips at the start and after answers: suggested FAQs, then self-service."""
        faqs = await self.kb.suggested(lang, self.n_suggestions)
        chips = [Suggestion(label=f.question, text=f.question) for f in faqs]
        chips += [Suggestion(label=i.label[lang], text=i.label[lang]) for i in INTENTS]
        return chips

    async def reply(self, c: Conversation, s: SessionRecord, text: str) -> BotReply:
        if c.flow is not None:
            if any(contains_phrase(text, w) for w in CANCEL_WORDS):
                c.flow = c.step = c.order_no = None
                return BotReply(
                    texts=[say("cancelled", c.lang)], suggestions=await self.starters(c.lang)
                )
            return await self._step(c, s, text)
        return await self._search(c, s, text)

    async def on_order(self, c: Conversation, s: SessionRecord, order_no: str) -> BotReply:
        """The customer sent an order card: in a flow it answers "which order?"; otherwise
        it is a question about that order's status."""
        if c.step not in ("pick_order", "ask_order"):
            c.flow, c.step = "order_status", "ask_order"
        return await self._step(c, s, order_no)

    async def _search(self, c: Conversation, s: SessionRecord, text: str) -> BotReply:
        found = await self.kb.search(text, limit=5)
        if found.answer is not None and found.answer.action is not None:
            return await self._begin(c, s, found.answer.action)
        if found.answer is not None:
            faq = await self.kb.entry(found.answer.faq_id)
            if faq is not None:
                return await self._answer(c, faq, [m.faq_id for m in found.matches[1:]])
        if not found.matches:
            return BotReply(matched=False, no_answer=True, texts=[say("no_answer", c.lang)])
        chips = [Suggestion(label=m.question, text=m.matched_variant) for m in found.matches[:4]]
        return BotReply(matched=False, texts=[say("miss", c.lang)], suggestions=chips)

    async def _answer(self, c: Conversation, faq: Faq, related: list[int]) -> BotReply:
        chips: list[Suggestion] = []
        for faq_id in related:
            other = await self.kb.entry(faq_id)
            if other is not None and faq_id > 0:
                chips.append(Suggestion(label=other.question, text=other.question))
        if not chips:
            chips = [x for x in await self.starters(c.lang) if x.text != faq.question]
        await self.kb.count_use(faq.id, "hits")
        return BotReply(texts=[faq.answer], suggestions=chips[:6], ask_feedback=True, faq_id=faq.id)

    # self-service -------------------------------------------------------------------
    async def _begin(self, c: Conversation, s: SessionRecord, flow: str) -> BotReply:
        c.flow, c.order_no = flow, None
        if s.customer_id:
            found = await self.directory.orders_of(s.customer_id, 5)
            orders = sorted(found, key=lambda o: o.order_no != s.order_no)  # the page's first
            if len(orders) == 1:
                return await self._with_order(c, s, orders[0])
            if orders:
                c.step = "pick_order"
                chips = [
                    Suggestion(label=f"{o.order_no} · {o.status.label}", text=o.order_no)
                    for o in orders
                ]
                return BotReply(texts=[say("pick_order", c.lang)], suggestions=chips)
            c.step = "ask_order"
            return BotReply(texts=[say("no_orders", c.lang)])
        c.step = "ask_order"
        chips = [Suggestion(label=s.order_no, text=s.order_no)] if s.order_no else []
        return BotReply(texts=[say("ask_order", c.lang)], suggestions=chips)

    async def _step(self, c: Conversation, s: SessionRecord, text: str) -> BotReply:
        match c.step:
            case "pick_order" | "ask_order":
                order = await self._order_in(text)
                if order is None or (s.customer_id and order.customer_id != s.customer_id):
                    return await self._off_script(c, s, text, "order_unknown")
                if s.customer_id:
                    return await self._with_order(c, s, order)
                c.step, c.order_no = "ask_phone", order.order_no
                return BotReply(texts=[say("ask_phone", c.lang)])
            case "ask_phone":
                if await self.phone_check.locked(c.order_no or ""):
                    c.flow = c.step = c.order_no = None  # no more guessing, right or wrong
                    return BotReply(
                        texts=[say("too_many_tries", c.lang)],
                        handoff=True,
                        handoff_reason="verification",
                    )
                order = await self.directory.order(c.order_no or "")
                if order is None or not await self.phone_check.passes(order, text):
                    return BotReply(matched=False, texts=[say("phone_wrong", c.lang)])
                return await self._with_order(c, s, order)
            case "ask_reason":
                return await self._record(c, s, "refund", {"reason": text.strip()[:500]})
            case "ask_address":
                if len(text.strip()) < 8:
                    return BotReply(matched=False, texts=[say("address_too_short", c.lang)])
                return await self._record(
                    c, s, "address_change", {"new_address": text.strip()[:500]}
                )
        c.flow = c.step = None
        return await self._search(c, s, text)

    async def _off_script(
        self, c: Conversation, s: SessionRecord, text: str, problem: str
    ) -> BotReply:
        """The answer does not fit the step: maybe it is a new question."""
        found = await self.kb.search(text, limit=1)
        if found.answer is not None:
            c.flow = c.step = c.order_no = None
            return await self._search(c, s, text)
        return BotReply(matched=False, texts=[say(problem, c.lang)])

    async def _order_in(self, text: str) -> Order | None:
        for candidate in _ORDER_NO.findall(text):
            order = await self.directory.order(candidate.upper())
            if order is not None:
                return order
        return None

    async def _with_order(self, c: Conversation, s: SessionRecord, o: Order) -> BotReply:
        """The order is known (and the customer's): do what the flow is for."""
        c.order_no = o.order_no
        values = {"order_no": o.order_no, "status": o.status.label}
        card = order_card(o)
        match c.flow:
            case "order_status":
                return self._done(c, [say("status", c.lang, **values)], card)
            case "logistics":
                if o.logistics is None:
                    return self._done(c, [say("not_shipped", c.lang, **values)], card)
                lg = o.logistics
                text = say(
                    "logistics",
                    c.lang,
                    **values,
                    carrier=lg.carrier,
                    tracking_no=lg.tracking_no,
                    event=lg.last_event or say("no_event", c.lang),
                )
                return self._done(c, [text], card)
            case "refund" | "address_change" as kind:
                earlier = await self.requests.open_one(kind, o.order_no)
                if earlier is not None and earlier.ticket_id is not None:
                    text = say("already_ticket", c.lang, **values, ticket_id=earlier.ticket_id)
                    return self._done(c, [text], card)
                if earlier is not None:
                    text = say("already_requested", c.lang, **values, request_id=earlier.id)
                    return self._done(c, [text], card)
                if kind == "refund" and o.status in _NOT_REFUNDABLE:
                    return self._done(c, [say("refund_not_possible", c.lang, **values)], card)
                if kind == "address_change" and o.status not in _ADDRESS_CHANGEABLE:
                    return self._done(c, [say("address_not_possible", c.lang, **values)], card)
                c.step = "ask_reason" if kind == "refund" else "ask_address"
                return BotReply(texts=[say(c.step, c.lang)], order=card)
        return self._done(c, [say("status", c.lang, **values)], card)

    async def _record(
        self, c: Conversation, s: SessionRecord, kind: str, details: dict[str, str]
    ) -> BotReply:
        assert kind in ("refund", "address_change") and c.order_no is not None
        order_no = c.order_no
        req, _ = await self.requests.record(
            "refund" if kind == "refund" else "address_change",
            session_id=s.id,
            order_no=order_no,
            customer_id=s.customer_id,
            details=details,
        )
        if req.id not in c.requests:
            c.requests.append(req.id)
        if req.ticket_id is not None and req.ticket_id not in c.tickets:
            c.tickets.append(req.ticket_id)
        key = (
            {
                "ticket_opened": "refund_ticket_opened",
                "ticket_pending": "refund_ticket_pending",
            }.get(req.status, "refund_recorded")
            if kind == "refund"
            else "address_recorded"
        )
        text = say(key, c.lang, order_no=order_no, request_id=req.id, ticket_id=req.ticket_id)
        return self._done(c, [text], None)

    def _done(self, c: Conversation, texts: list[str], card: dict[str, object] | None) -> BotReply:
        flow = INTENT_BY_NAME.get(c.flow or "")
        c.flow = c.step = c.order_no = None
        chips = [
            Suggestion(label=i.label[c.lang], text=i.label[c.lang]) for i in INTENTS if i != flow
        ]
        return BotReply(texts=texts, order=card, suggestions=chips)
