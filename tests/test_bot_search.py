"""Knowledge-base search: the tokeniser and ranking (pure), and the knowledge base on the
real databases (SQLite and PostgreSQL) with its cross-process index refresh through Redis."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext
from contactd.channels.bot.demo import seed_demo_faqs
from contactd.channels.bot.knowledge import KnowledgeBase
from contactd.channels.bot.models import FaqIn, FaqPatch, SelfServiceRequest
from contactd.channels.bot.requests import SelfServiceRequests
from contactd.channels.bot.text import TfIdfIndex, contains_phrase, language, tokens
from contactd.clock import ManualClock
from contactd.sessions import repository as sessions_repo
from contactd.settings import BotSettings
from contactd.storage.db import write_transaction
from contactd.storage.keyspace import SiteKeys


def test_chinese_is_cut_into_bigrams_and_english_is_stemmed() -> None:
    assert tokens("怎么申请退款") == ["申请", "请退", "退款"]  # 怎么 carries no topic
    assert tokens("Refunds for my ORDERS, please") == ["refund", "order"]
    assert tokens("ＡＢＣ１２３") == ["abc123"]  # full-width folds to ASCII
    assert tokens("的") == []


def test_language_and_phrases() -> None:
    assert language("我要退款") == "zh" and language("refund please") == "en"
    assert language("O2026112300000001") is None and language("1234") is None
    assert contains_phrase("我要转人工客服", "人工")
    assert contains_phrase("Can I talk to an AGENT?", "agent")
    assert not contains_phrase("agentic workflows", "agent")


def test_ranking_prefers_the_entry_that_means_the_same() -> None:
    index = TfIdfIndex(
        [
            (1, "退款多久到账"),
            (1, "钱什么时候退回来"),
            (2, "怎么开发票"),
            (3, "How long does a refund take"),
            (4, "Do you ship internationally"),
        ]
    )
    assert index.search("退款一般几天能到账")[0].key == 1
    assert index.search("how long until I get my refund")[0].key == 3
    hits = index.search("钱什么时候退回来")
    assert hits[0].key == 1 and hits[0].score == pytest.approx(1.0)
    assert hits[0].variant == "钱什么时候退回来"
    assert index.search("今天天气怎么样") == []
    assert [h.key for h in index.search("refund", limit=5)] == [3]  # one hit per entry


async def test_knowledge_base_on_the_database(db: AsyncEngine, redis: Redis, site: str) -> None:
    clock = ManualClock()
    keys = SiteKeys(site)
    audit = AuditLog(db, clock)
    kb = KnowledgeBase(db, redis, keys, clock, BotSettings(), audit)
    other = KnowledgeBase(db, redis, keys, clock, BotSettings(), audit)  # another process
    assert await seed_demo_faqs(db, clock) == 10
    assert await seed_demo_faqs(db, clock) == 0  # once

    zh = await kb.search("退款一般几天能到账？")
    assert zh.answer is not None and zh.answer.question == "退款多久到账？"
    en = await other.search("how long until my refund arrives?")
    assert en.answer is not None and en.answer.question == "How long does a refund take?"
    intent = await kb.search("我想申请退款")
    assert intent.answer is not None and intent.answer.action == "refund"

    ctx = AuditContext(actor=None, ip=None, request_id=None)
    faq = await kb.create(FaqIn(question="支持花呗分期吗？", answer="支持。"), ctx)
    found = await other.search("花呗分期")  # the other process sees it at once
    assert found.answer is not None and found.answer.faq_id == faq.id
    await kb.update(faq.id, FaqPatch(enabled=False), ctx)
    assert (await other.search("花呗分期")).answer is None  # disabled: not answered
    await kb.delete(faq.id, ctx)
    assert await kb.entries(q="花呗") == []
    faq_id = zh.answer.faq_id
    await kb.count_use(faq_id, "hits")
    await asyncio.gather(*(other.count_use(faq_id, "hits") for _ in range(5)))
    await kb.count_use(faq_id, "unhelpful")
    assert (await kb.get(faq_id)).hits == 6  # pending counts are read too
    assert await kb.flush_counts() == 1
    assert await other.flush_counts() == 0  # nothing counted twice
    stored = await kb.get(faq_id)
    assert (stored.hits, stored.unhelpful) == (6, 1)
    await other.count_use(faq_id, "helpful")
    assert (await kb.entries(q="退款多久"))[0].helpful == 1
    suggested = await kb.suggested("en", 3)
    assert suggested and all(f.lang == "en" and f.suggested for f in suggested)


class _CaseModule:
    """Stands in for the case module on the other branch: opens tickets for refunds."""

    def __init__(self) -> None:
        self.opened: list[SelfServiceRequest] = []

    async def open_ticket(self, request: SelfServiceRequest) -> str | None:
        if request.kind != "refund":
            return None
        self.opened.append(request)
        return f"T-{len(self.opened)}"


async def _session(db: AsyncEngine, sid: str) -> None:
    values = {
        "id": sid,
        "contact_id": sid,
        "channel": "chat",
        "entry_point": "home",
        "queue_id": "sales",
        "state": "bot",
        "visitor_id": "v1",
        "customer_id": "u1001",
        "customer_name": None,
        "customer_phone": None,
        "order_no": None,
        "agent_id": None,
        "agent_name": None,
        "agents": [],
        "created_at": 1,
        "queued_at": None,
        "last_seq": 0,
        "transfers": 0,
        "responses": 0,
        "response_total_ms": 0,
        "meta": None,
    }
    async with write_transaction(db) as conn:
        await sessions_repo.insert(conn, values)


async def test_requests_are_recorded_once_and_open_tickets(db: AsyncEngine) -> None:
    clock = ManualClock()
    cases = _CaseModule()
    requests = SelfServiceRequests(db, clock, "Asia/Shanghai", after_sales=cases)
    await _session(db, "S20261123-000001")
    ref = {"session_id": "S20261123-000001", "order_no": "O1", "customer_id": "u1001"}
    refund, created = await requests.record("refund", **ref, details={"reason": "坏了"})
    assert created and refund.status == "ticket_opened" and refund.ticket_id == "T-1"
    again, created = await requests.record("refund", **ref, details={"reason": "again"})
    assert not created and again.id == refund.id and len(cases.opened) == 1
    address, created = await requests.record(
        "address_change", **ref, details={"new_address": "北京市海淀区"}
    )
    assert created and address.status == "recorded" and address.ticket_id is None
    stored = await requests.search(session_id="S20261123-000001")
    assert {(r.kind, r.status, r.ticket_id) for r in stored} == {
        ("refund", "ticket_opened", "T-1"),
        ("address_change", "recorded", None),
    }
