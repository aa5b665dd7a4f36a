"""An external bot over a webhook (docs/protocol.md, "External bot webhook").

contactd POSTs each customer message as JSON, signed like the IVR webhooks the other way
round: ``X-Contactd-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``
with ``bot.webhook_secret``. The bot answers ``{"texts": [...], "suggestions": [...],
"matched": bool, "handoff": bool}``. Whatever the bot says, the hand-over words, the
button and the miss counter stay contactd's: an external bot cannot trap anyone. A bot
that times out, fails or answers nonsense hands the chat to a person at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contactd.channels.bot.flows import Conversation
from contactd.channels.bot.models import BotReply, Lang, Suggestion
from contactd.clock import Clock
from contactd.sessions.models import SessionRecord
from contactd.settings import BotSettings

log = logging.getLogger(__name__)


class BotUnavailable(Exception):
    """The external bot did not give a usable answer."""


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    texts: list[str] = Field(default_factory=list, max_length=10)
    suggestions: list[Suggestion] = Field(default_factory=list, max_length=10)
    matched: bool = True
    handoff: bool = False


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookBot:
    def __init__(self, http: aiohttp.ClientSession, settings: BotSettings, clock: Clock) -> None:
        assert settings.webhook_url is not None
        self.http = http
        self.clock = clock
        self.url = settings.webhook_url
        self.secret = settings.webhook_secret
        self.timeout = aiohttp.ClientTimeout(total=settings.webhook_timeout_s)

    async def starters(self, lang: Lang) -> list[Suggestion]:
        return []

    async def on_order(self, c: Conversation, s: SessionRecord, order_no: str) -> BotReply:
        return await self.reply(c, s, order_no)

    async def reply(self, c: Conversation, s: SessionRecord, text: str) -> BotReply:
        payload = {
            "session_id": s.id,
            "customer": {"id": s.customer_id, "name": s.customer_name},
            "entry_point": s.entry_point,
            "order_no": s.order_no,
            "lang": c.lang,
            "text": text,
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            headers["X-Contactd-Signature"] = sign(self.secret, self.clock.now_ms() // 1000, body)
        try:
            async with self.http.post(
                self.url, data=body, headers=headers, timeout=self.timeout
            ) as r:
                if r.status != 200:
                    raise BotUnavailable(f"the bot answered HTTP {r.status}")
                answer = _Answer.model_validate(await r.json(content_type=None))
        except (aiohttp.ClientError, TimeoutError, ValueError, ValidationError) as exc:
            log.warning("external bot failed for %s: %s", s.id, exc)
            raise BotUnavailable(str(exc)) from exc
        if not answer.texts and not answer.handoff:
            raise BotUnavailable("the bot said nothing")
        return BotReply(
            texts=answer.texts,
            suggestions=answer.suggestions,
            matched=answer.matched,
            handoff=answer.handoff,
        )
