"""The bot front line: a bot-first chat talks to the bot until the customer is helped or
handed to a person. The rules that keep people from being trapped live here, above any
engine (built-in or external): "Talk to a person" is one tap or the words 人工 / 转人工 /
human / agent; two misses in a row, negative feedback, no answer at all, or a failing
engine hand the chat over by themselves. Every bot message goes through the session's
message log (sender ``bot``), so the customer's replay and the agent's transcript are whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import weakref
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Protocol

from redis.asyncio import Redis

from contactd.bus import Bus
from contactd.channels.bot.events import BotHandedOver, BotPrompted
from contactd.channels.bot.flows import Conversation
from contactd.channels.bot.knowledge import KnowledgeBase
from contactd.channels.bot.models import (
    BotReply,
    FeedbackBody,
    HandoffReason,
    Lang,
    Prompt,
    Suggestion,
)
from contactd.channels.bot.phrases import say
from contactd.channels.bot.text import contains_phrase, language
from contactd.channels.bot.webhook import BotUnavailable
from contactd.channels.im import ChatService
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.metrics import Metrics
from contactd.sessions.models import Message, NewMessage, Sender, SessionRecord
from contactd.settings import Settings
from contactd.storage.keyspace import SiteKeys

log = logging.getLogger(__name__)
BOT_NAME = "智能助手 Assistant"
_STATE_TTL_S = 2 * 86400
_KEEP_ANSWERS = 20
_LEASE_WAIT_S = 5.0
# KEYS[1] the lease, ARGV[1] the owner's token → 1 when released, 0 when not ours any more
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Engine(Protocol):
    async def starters(self, lang: Lang) -> list[Suggestion]: ...

    async def reply(self, c: Conversation, s: SessionRecord, text: str) -> BotReply: ...

    async def on_order(self, c: Conversation, s: SessionRecord, order_no: str) -> BotReply: ...


class BotService:
    def __init__(
        self,
        chat: ChatService,
        engine: Engine,
        kb: KnowledgeBase,
        redis: Redis,
        keys: SiteKeys,
        clock: Clock,
        bus: Bus,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.chat = chat
        self.engine = engine
        self.kb = kb
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.bus = bus
        self.settings = settings
        self.cfg = settings.bot
        self.metrics = metrics
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._release = redis.register_script(_RELEASE)
        # longer than a turn can take (an external bot's call is the slow part)
        self._lease_ms = int((self.cfg.webhook_timeout_s + 10) * 1000)

    # the FrontLine interface of ChatService ---------------------------------------
    def takes(self, queue_id: str) -> bool:
        return queue_id in self.cfg.first_queues

    async def begin(
        self, record: SessionRecord, question: Message | None, lang: str | None
    ) -> None:
        first = language(question.text or "") if question else None
        c = Conversation(lang="en" if (first or lang) == "en" else "zh")
        async with self._lock(record.id):
            words = self.cfg.greeting.get(c.lang) or say("greeting", c.lang)
            greeting = await self._post(record, "greet", words)
            await self._touch(record.id)
            if question is not None:
                await self._handle(record, question, c)
                return
            await self._prompt(record.id, c, greeting.seq, await self.engine.starters(c.lang))

    async def on_customer_message(self, record: SessionRecord, msg: Message) -> None:
        async with self._lock(record.id):
            # a conversation whose state is gone (expired, Redis replaced) starts afresh:
            # the customer is answered either way, never left talking to nobody
            c = await self._load(record.id) or Conversation()
            try:
                await self._handle(record, msg, c)
            except Exception:
                # the customer's message is stored; whatever broke, a person answers it
                log.exception("the bot failed on %s seq %s: handing over", record.id, msg.seq)
                await self._hand_over(record.id, c, "bot_unavailable")

    # customer actions (socket events) ---------------------------------------------
    async def handoff(self, visitor_id: str, session_id: str) -> SessionRecord:
        """The "Talk to a person" button. Pressing it again is harmless."""
        record = await self.chat.customer_session(visitor_id, session_id)
        if record.state == "ended":
            raise ContactdError(ErrorCode.contact_finished, "this conversation has ended")
        if record.state == "bot":
            async with self._lock(record.id):
                c = await self._load(record.id) or Conversation()
                await self._hand_over(record.id, c, "asked")
        return await self.chat.sessions.get(session_id)

    async def feedback(self, visitor_id: str, body: FeedbackBody) -> SessionRecord:
        """👍 / 👎 on an answer; 👎 hands the chat to a person."""
        record = await self.chat.customer_session(visitor_id, body.session_id)
        if record.state != "bot":
            raise ContactdError(ErrorCode.not_with_bot, "the bot is not in this conversation")
        async with self._lock(record.id):
            c = await self._load(record.id)
            faq_id = c.answers.get(body.seq) if c else None
            if c is None or faq_id is None:
                raise ContactdError(ErrorCode.not_found, f"no bot answer with seq {body.seq}")
            if body.seq in c.rated:
                return record
            c.rated.append(body.seq)
            await self.kb.count_use(faq_id, "helpful" if body.helpful else "unhelpful")
            if not body.helpful:
                await self._hand_over(record.id, c, "negative_feedback")
            else:
                c.misses = 0
                msg = await self._post(record, f"glad.{body.seq}", say("glad", c.lang))
                await self._prompt(record.id, c, msg.seq, await self.engine.starters(c.lang))
        return await self.chat.sessions.get(body.session_id)

    async def prompt_of(self, visitor_id: str, session_id: str) -> Prompt | None:
        """The chips on show (for a widget that reconnects)."""
        record = await self.chat.customer_session(visitor_id, session_id)
        if record.state != "bot":
            return None
        c = await self._load(record.id)
        return Prompt.model_validate(c.prompt) if c and c.prompt else None

    # the conversation ---------------------------------------------------------------
    async def _handle(self, record: SessionRecord, msg: Message, c: Conversation) -> None:
        if msg.seq <= c.last_seq:
            return  # a resend: already answered
        c.last_seq = msg.seq
        await self._touch(record.id)
        text = msg.text or ""
        order_no = str((msg.order or {}).get("order_no") or "")
        if msg.kind == "order_card" and order_no:
            await self._answer(record, msg, c, self.engine.on_order(c, record, order_no))
            return
        if msg.kind != "text" or not text.strip():
            note = await self._post(record, f"{msg.seq}.0", say("text_only", c.lang))
            await self._prompt(record.id, c, note.seq, c.prompt_suggestions())
            return
        c.lang = language(text) or c.lang
        if any(contains_phrase(text, w) for w in self.cfg.handoff_words):
            await self._hand_over(record.id, c, "asked")
            return
        if c.answers and any(contains_phrase(text, w) for w in self.cfg.negative_words):
            await self._hand_over(record.id, c, "negative_feedback")
            return
        await self._answer(record, msg, c, self.engine.reply(c, record, text))

    async def _answer(
        self,
        record: SessionRecord,
        msg: Message,
        c: Conversation,
        pending: Coroutine[Any, Any, BotReply],
    ) -> None:
        """Say what the engine answers, and apply the miss / no-answer rules to it."""
        try:
            reply = await pending
        except BotUnavailable:
            await self._hand_over(record.id, c, "bot_unavailable")
            return
        outcome = "answered" if reply.faq_id else ("missed" if not reply.matched else "flow")
        self.metrics.bot_replies.labels(outcome).inc()
        if reply.handoff or reply.no_answer:
            for i, line in enumerate(reply.texts):
                await self._post(record, f"{msg.seq}.{i}", line)
            await self._hand_over(record.id, c, reply.handoff_reason or "no_answer")
            return
        if not reply.matched:
            c.misses += 1
            if c.misses >= self.cfg.max_misses:
                await self._hand_over(record.id, c, "misses")
                return
        else:
            c.misses = 0
        last = await self._say(record, msg.seq, reply)
        if reply.faq_id is not None and last is not None:
            c.answers[last.seq] = reply.faq_id
            for old in sorted(c.answers)[:-_KEEP_ANSWERS]:
                del c.answers[old]
        seq = last.seq if last else msg.seq
        await self._prompt(record.id, c, seq, reply.suggestions, feedback=reply.ask_feedback)

    async def _say(self, record: SessionRecord, seq: int, reply: BotReply) -> Message | None:
        last = None
        for i, line in enumerate(reply.texts):
            last = await self._post(record, f"{seq}.{i}", line)
        if reply.order is not None:
            card = await self._post(record, f"{seq}.card", None, order=dict(reply.order))
            if last is None or reply.faq_id is None:
                last = card
        return last

    async def _hand_over(self, session_id: str, c: Conversation, reason: HandoffReason) -> None:
        record = await self.chat.sessions.get(session_id)
        if record.state != "bot":
            return
        claim = self.keys.bot_handoff(session_id)
        if not await self.redis.set(claim, reason, nx=True, ex=_STATE_TTL_S):
            return  # another process is handing it over right now
        await self._post(record, f"handoff.{c.last_seq}", say("handoff", c.lang))
        bot: dict[str, Any] = {
            "handoff_reason": reason,
            "misses": c.misses,
            "requests": c.requests,
            "tickets": c.tickets,
            "answered_faqs": sorted(set(c.answers.values())),
        }
        try:
            await self.chat.hand_over(record, bot)
        except ContactdError as exc:
            await self.redis.delete(claim)
            log.info("hand-over of %s refused: %s", session_id, exc.code)
            msg = await self._post(record, f"refused.{c.last_seq}", say("handoff_refused", c.lang))
            await self._prompt(session_id, c, msg.seq, c.prompt_suggestions())
            return
        self.metrics.bot_handoffs.labels(record.queue_id, reason).inc()
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self.keys.bot_state(session_id))
            pipe.zrem(self.keys.bot_idle, session_id)
            await pipe.execute()
        empty = Prompt(session_id=session_id, after_seq=c.last_seq, suggestions=[], feedback=False)
        await self.bus.publish(
            [
                BotPrompted(prompt=empty),
                BotHandedOver(session_id=session_id, queue_id=record.queue_id, reason=reason),
            ]
        )

    async def _post(
        self,
        record: SessionRecord,
        key: str,
        text: str | None,
        order: dict[str, Any] | None = None,
    ) -> Message:
        return await self.chat.sessions.post(
            NewMessage(
                session_id=record.id,
                client_msg_id=f"bot.{key}",
                sender=Sender(type="bot", id="bot", name=BOT_NAME),
                kind="order_card" if order is not None else "text",
                text=text,
                order=order,
            )
        )

    async def _prompt(
        self,
        session_id: str,
        c: Conversation,
        after_seq: int,
        suggestions: list[Suggestion],
        *,
        feedback: bool = False,
    ) -> None:
        prompt = Prompt(
            session_id=session_id,
            after_seq=after_seq,
            suggestions=suggestions[:8],
            feedback=feedback,
        )
        c.prompt = prompt.model_dump(mode="json")
        await self._save(session_id, c)
        await self.bus.publish([BotPrompted(prompt=prompt)])

    # state --------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _lock(self, session_id: str) -> AsyncIterator[None]:
        """One conversation turn at a time: in this process (an asyncio lock, in order of
        arrival) and across processes (a Redis lease with an owner token, released by
        compare-and-delete). A lease not won within _LEASE_WAIT_S is gone without: the
        customer is answered late rather than never."""
        lock = self._locks.get(session_id)
        if lock is None:
            lock = self._locks[session_id] = asyncio.Lock()
        async with lock:
            key, token = self.keys.bot_lock(session_id), secrets.token_hex(8)
            deadline = time.monotonic() + _LEASE_WAIT_S
            held = False
            while not held and time.monotonic() < deadline:
                held = bool(await self.redis.set(key, token, nx=True, px=self._lease_ms))
                if not held:
                    await asyncio.sleep(0.01)
            try:
                yield
            finally:
                if held:
                    await self._release(keys=[key], args=[token])

    async def _load(self, session_id: str) -> Conversation | None:
        raw = await self.redis.get(self.keys.bot_state(session_id))
        return Conversation.model_validate_json(raw) if raw else None

    async def _save(self, session_id: str, c: Conversation) -> None:
        await self.redis.set(self.keys.bot_state(session_id), c.model_dump_json(), ex=_STATE_TTL_S)

    async def _touch(self, session_id: str) -> None:
        deadline = self.clock.now_ms() + int(self.cfg.idle_close_s * 1000)
        await self.redis.zadd(self.keys.bot_idle, {session_id: deadline})

    # idle chats ---------------------------------------------------------------------
    async def close_idle(self) -> int:
        """End bot chats whose customer went quiet; each is claimed by one process."""
        now = self.clock.now_ms()
        due = await self.redis.zrangebyscore(self.keys.bot_idle, "-inf", now, start=0, num=100)
        closed = 0
        for raw in due:
            sid = raw.decode() if isinstance(raw, bytes) else str(raw)
            if not await self.redis.zrem(self.keys.bot_idle, sid):
                continue
            async with self._lock(sid):
                try:
                    record = await self.chat.sessions.get(sid)
                except ContactdError:
                    continue
                if record.state != "bot":  # ended by the customer meanwhile: tidy up
                    await self.redis.delete(self.keys.bot_state(sid))
                    continue
                c = await self._load(sid) or Conversation()
                await self._post(record, "idle", say("idle_closed", c.lang))
                await self.chat.end_with_bot(record, "timeout")
                await self.redis.delete(self.keys.bot_state(sid))
                closed += 1
        return closed

    async def run_idle(self) -> None:
        interval = min(5.0, max(0.05, self.cfg.idle_close_s / 4))
        while True:
            try:
                await self.close_idle()
            except Exception:
                log.exception("closing idle bot chats failed")
            await asyncio.sleep(interval)
