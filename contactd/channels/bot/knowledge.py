"""The knowledge base: FAQ entries in SQL (SQLite or PostgreSQL, the same statements), and
an in-memory search index per process, rebuilt when the entries change — on this process
at once, on the others at their next search (a version counter in Redis)."""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Literal, get_args

import sqlalchemy as sa
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext
from contactd.channels.bot.models import Faq, FaqIn, FaqPatch, Lang, Match, SearchOut
from contactd.channels.bot.phrases import INTENT_BY_KEY, INTENTS
from contactd.channels.bot.text import TfIdfIndex
from contactd.clock import Clock
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import BotSettings
from contactd.storage.db import write_transaction
from contactd.storage.keyspace import SiteKeys
from contactd.storage.tables import bot_faqs as t
from contactd.tasks import every

log = logging.getLogger(__name__)


UseCounter = Literal["hits", "helpful", "unhelpful"]
_COUNTERS: tuple[str, ...] = get_args(UseCounter)


def _parse_counts(raw: dict[Any, Any]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for key, value in raw.items():
        faq_id, _, field = (key.decode() if isinstance(key, bytes) else str(key)).partition(":")
        if faq_id.isdigit() and field in _COUNTERS:
            out.setdefault(int(faq_id), {})[field] = int(value)
    return out


def new_row(body: FaqIn, now: int, by: str | None) -> dict[str, Any]:
    """The values of a new entry's row."""
    return {
        **body.model_dump(),
        "hits": 0,
        "helpful": 0,
        "unhelpful": 0,
        "created_at": now,
        "updated_at": now,
        "updated_by": by,
    }


def _faq(row: RowMapping) -> Faq:
    data = dict(row)
    data["variants"] = list(data["variants"] or [])
    data["tags"] = list(data["tags"] or [])
    return Faq.model_validate(data)


class KnowledgeBase:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis,
        keys: SiteKeys,
        clock: Clock,
        settings: BotSettings,
        audit: AuditLog,
    ) -> None:
        self.engine = engine
        self.audit = audit
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.settings = settings
        self._index: TfIdfIndex | None = None
        self._entries: dict[int, Faq] = {}
        self._version: bytes | str | None = None
        self._lock = asyncio.Lock()

    # CRUD ---------------------------------------------------------------------
    async def entries(
        self, *, q: str | None = None, tag: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[Faq]:
        query = sa.select(t).order_by(t.c.id)
        if q:
            like = f"%{q.lower()}%"
            query = query.where(
                sa.or_(sa.func.lower(t.c.question).like(like), sa.func.lower(t.c.answer).like(like))
            )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
        faqs = await self._with_pending([_faq(r) for r in rows])
        if tag:  # JSON lists differ between SQLite and PostgreSQL: filter here
            faqs = [f for f in faqs if tag in f.tags]
        return faqs[offset : offset + limit]

    async def get(self, faq_id: int) -> Faq:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.id == faq_id))).mappings().first()
        if row is None:
            raise ContactdError(ErrorCode.faq_not_found, f"no FAQ entry {faq_id}")
        return (await self._with_pending([_faq(row)]))[0]

    async def create(self, body: FaqIn, ctx: AuditContext) -> Faq:
        async with write_transaction(self.engine) as conn:
            faq_id = await self._insert(conn, body, ctx)
        await self._changed()
        return await self.get(faq_id)

    async def _insert(self, conn: AsyncConnection, body: FaqIn, ctx: AuditContext) -> int:
        values = new_row(body, self.clock.now_ms(), ctx.actor.name if ctx.actor else None)
        result = await conn.execute(sa.insert(t).values(**values).returning(t.c.id))
        faq_id = int(result.scalar_one())
        await self._audit(conn, ctx, "faq.created", faq_id, None, body.model_dump())
        return faq_id

    async def import_many(self, bodies: list[FaqIn], ctx: AuditContext) -> tuple[int, int]:
        """Add entries, or replace the ones with the same question (so importing a file
        twice changes nothing), all in one transaction; returns (created, updated)."""
        created = updated = 0
        by = ctx.actor.name if ctx.actor else None
        async with write_transaction(self.engine) as conn:
            rows = (await conn.execute(sa.select(t))).mappings().all()
            existing = {r["question"]: _faq(r) for r in rows}
            for body in bodies:
                old = existing.get(body.question)
                if old is None:
                    existing[body.question] = await self._get_in(
                        conn, await self._insert(conn, body, ctx)
                    )
                    created += 1
                    continue
                before = old.model_dump(include=set(FaqIn.model_fields))
                if before == body.model_dump():
                    continue
                values = {**body.model_dump(), "updated_at": self.clock.now_ms(), "updated_by": by}
                await conn.execute(sa.update(t).where(t.c.id == old.id).values(**values))
                await self._audit(conn, ctx, "faq.updated", old.id, before, body.model_dump())
                updated += 1
        if created or updated:
            await self._changed()
        return created, updated

    @staticmethod
    async def _get_in(conn: AsyncConnection, faq_id: int) -> Faq:
        row = (await conn.execute(sa.select(t).where(t.c.id == faq_id))).mappings().one()
        return _faq(row)

    async def update(self, faq_id: int, patch: FaqPatch, ctx: AuditContext) -> Faq:
        before = await self.get(faq_id)
        merged = FaqIn.model_validate(
            {
                **before.model_dump(include=set(FaqIn.model_fields)),
                **patch.model_dump(exclude_unset=True),
            }
        )
        values = {
            **merged.model_dump(),
            "updated_at": self.clock.now_ms(),
            "updated_by": ctx.actor.name if ctx.actor else None,
        }
        async with write_transaction(self.engine) as conn:
            done = await conn.execute(sa.update(t).where(t.c.id == faq_id).values(**values))
            if done.rowcount == 0:
                raise ContactdError(ErrorCode.faq_not_found, f"no FAQ entry {faq_id}")
            old = before.model_dump(include=set(FaqIn.model_fields))
            await self._audit(conn, ctx, "faq.updated", faq_id, old, merged.model_dump())
        await self._changed()
        return await self.get(faq_id)

    async def delete(self, faq_id: int, ctx: AuditContext) -> None:
        before = await self.get(faq_id)
        async with write_transaction(self.engine) as conn:
            done = await conn.execute(sa.delete(t).where(t.c.id == faq_id))
            if done.rowcount == 0:
                raise ContactdError(ErrorCode.faq_not_found, f"no FAQ entry {faq_id}")
            old = before.model_dump(include=set(FaqIn.model_fields))
            await self._audit(conn, ctx, "faq.deleted", faq_id, old, None)
        await self._changed()

    async def _audit(
        self,
        conn: AsyncConnection,
        ctx: AuditContext,
        action: str,
        faq_id: int,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        await self.audit.record(
            ctx.actor,
            action,
            "faq",
            str(faq_id),
            before=before,
            after=after,
            ip=ctx.ip,
            request_id=ctx.request_id,
            conn=conn,
        )

    # usage counters -------------------------------------------------------------
    # Counted in Redis (one HINCRBY on the answer's path, no SQL write to wait for) and
    # moved to SQL in the background; reads add what is still pending, so they are exact.
    async def count_use(self, faq_id: int, field: UseCounter) -> None:
        await self.redis.hincrby(self.keys.bot_faq_counts, f"{faq_id}:{field}", 1)

    async def _with_pending(self, faqs: list[Faq]) -> list[Faq]:
        pending = _parse_counts(await self.redis.hgetall(self.keys.bot_faq_counts))
        if not pending:
            return faqs
        return [
            f.model_copy(update={k: getattr(f, k) + n for k, n in pending.get(f.id, {}).items()})
            for f in faqs
        ]

    async def flush_counts(self) -> int:
        """Move the pending counters to SQL; returns how many entries changed. The hash is
        renamed away first, so each increment is applied by exactly one process."""
        batch = f"{self.keys.bot_faq_counts}:flush:{secrets.token_hex(8)}"
        try:
            await self.redis.rename(self.keys.bot_faq_counts, batch)
        except ResponseError:  # no such key: nothing counted since the last flush
            return 0
        counts = _parse_counts(await self.redis.hgetall(batch))
        async with write_transaction(self.engine) as conn:
            for faq_id, fields in counts.items():
                values = {k: t.c[k] + n for k, n in fields.items()}
                await conn.execute(sa.update(t).where(t.c.id == faq_id).values(values))
        await self.redis.delete(batch)
        return len(counts)

    async def run_flusher(self, interval_s: float = 5.0) -> None:
        await every(interval_s, self.flush_counts, "moving FAQ usage counters to SQL")

    async def _changed(self) -> None:
        self._version = None
        await self.redis.incr(self.keys.bot_kb_version)

    # search -------------------------------------------------------------------
    async def _current(self) -> tuple[TfIdfIndex, dict[int, Faq]]:
        version = await self.redis.get(self.keys.bot_kb_version) or b"0"
        if self._index is None or version != self._version:
            async with self._lock:
                if self._index is None or version != self._version:
                    async with self.engine.connect() as conn:
                        rows = (
                            (await conn.execute(sa.select(t).where(t.c.enabled.is_(True))))
                            .mappings()
                            .all()
                        )
                    entries = {f.id: f for f in map(_faq, rows)}
                    docs = [(f.id, v) for f in entries.values() for v in [f.question, *f.variants]]
                    docs += [(i.key, p) for i in INTENTS for p in i.phrases]
                    # a big knowledge base takes a moment: build it off the event loop
                    index = await asyncio.to_thread(TfIdfIndex, docs)
                    self._index, self._entries = index, entries
                    self._version = version
        assert self._index is not None
        return self._index, self._entries

    async def search(self, text: str, limit: int = 5) -> SearchOut:
        index, entries = await self._current()
        matches = []
        for h in index.search(text, limit):
            if h.score < self.settings.suggest_floor:
                continue
            intent = INTENT_BY_KEY.get(h.key)
            if intent is not None:
                question, action = intent.label["zh"] + " / " + intent.label["en"], intent.name
            elif h.key in entries:
                question, action = entries[h.key].question, None
            else:
                continue
            matches.append(
                Match(
                    faq_id=h.key,
                    action=action,
                    question=question,
                    matched_variant=h.variant,
                    score=round(h.score, 4),
                )
            )
        best = matches[0] if matches else None
        answer = best if best and best.score >= self.settings.min_confidence else None
        return SearchOut(answer=answer, matches=matches)

    async def entry(self, faq_id: int) -> Faq | None:
        _, entries = await self._current()
        return entries.get(faq_id)

    async def suggested(self, lang: Lang, limit: int) -> list[Faq]:
        """The entries marked as suggested, in the customer's language first, most used
        first."""
        _, all_entries = await self._current()
        entries = [f for f in all_entries.values() if f.suggested]
        entries.sort(key=lambda f: (f.lang != lang, -f.hits, f.id))
        return [f for f in entries if f.lang == lang][:limit] or entries[:limit]
