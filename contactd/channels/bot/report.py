"""How the bot did over a period: chats it started, how many ended with it (contained),
how many it handed over and why, and the self-service requests it recorded. Read from SQL
(sessions and requests), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.storage.tables import bot_requests, service_sessions


class BotSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    since: int
    until: int
    bot_chats: int = Field(description="chats of the period that started with the bot")
    ended_with_bot: int = Field(description="ended without a person (contained)")
    ended_with_bot_by_reason: dict[str, int]
    handed_over: int
    handed_over_by_reason: dict[str, int]
    still_with_bot: int
    containment_rate: float | None = Field(description="ended_with_bot ÷ (that + handed_over)")
    requests: dict[str, int] = Field(description="self-service requests recorded, by kind")


async def summary(engine: AsyncEngine, since: int, until: int) -> BotSummary:
    s = service_sessions
    query = sa.select(s.c.state, s.c.queued_at, s.c.end_reason, s.c.meta).where(
        s.c.created_at >= since, s.c.created_at < until, s.c.channel == "chat"
    )
    r = bot_requests
    kinds = (
        sa.select(r.c.kind, sa.func.count())
        .where(r.c.created_at >= since, r.c.created_at < until)
        .group_by(r.c.kind)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        requests = {str(k): int(n) for k, n in (await conn.execute(kinds)).all()}
    ended: Counter[str] = Counter()
    handed: Counter[str] = Counter()
    still = 0
    for state, queued_at, end_reason, meta in rows:
        bot = (meta or {}).get("bot")
        if isinstance(bot, dict):
            handed[str(bot.get("handoff_reason"))] += 1
        elif queued_at is None and state == "ended":
            ended[str(end_reason)] += 1
        elif queued_at is None:
            still += 1
    n_ended, n_handed = sum(ended.values()), sum(handed.values())
    decided = n_ended + n_handed
    return BotSummary(
        since=since,
        until=until,
        bot_chats=decided + still,
        ended_with_bot=n_ended,
        ended_with_bot_by_reason=dict(ended),
        handed_over=n_handed,
        handed_over_by_reason=dict(handed),
        still_with_bot=still,
        containment_rate=round(n_ended / decided, 4) if decided else None,
        requests=requests,
    )
