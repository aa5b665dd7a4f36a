"""Demo knowledge base for ``contactd seed-demo``: the questions a shop's bot gets most,
in Chinese and English."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.channels.bot.knowledge import new_row
from contactd.channels.bot.models import FaqIn
from contactd.clock import Clock
from contactd.storage.db import write_transaction
from contactd.storage.tables import bot_faqs

DEMO_FAQS: tuple[FaqIn, ...] = (
    FaqIn(
        question="退款多久到账？",
        variants=["退款什么时候到账", "钱什么时候退回来", "退款要几天", "退款还没收到"],
        answer="退款审核通过后，1-3 个工作日原路退回您的支付账户；银行卡最长 7 个工作日。",
        tags=["退款"],
        suggested=True,
    ),
    FaqIn(
        question="怎么开发票？",
        variants=["开发票", "可以开增值税发票吗", "发票怎么申请", "电子发票"],
        answer="订单完成后，在「我的订单 → 订单详情 → 申请开票」填写抬头和税号，"
        "电子发票 24 小时内发到您的邮箱。",
        tags=["发票"],
        suggested=True,
    ),
    FaqIn(
        question="运费怎么算？",
        variants=["包邮吗", "邮费多少", "满多少包邮", "运费险"],
        answer="单笔订单满 99 元包邮，不满 99 元收取 8 元运费；"
        "偏远地区（新疆、西藏等）另加 10 元。",
        tags=["物流", "运费"],
        suggested=True,
    ),
    FaqIn(
        question="七天无理由退货怎么退？",
        variants=["可以退货吗", "退货流程", "不想要了能退吗", "无理由退货"],
        answer="签收后 7 天内、商品完好不影响二次销售即可无理由退货："
        "在订单详情点「申请售后」，审核通过后按提示寄回。",
        tags=["退货", "售后"],
    ),
    FaqIn(
        question="会员积分怎么用？",
        variants=["积分有什么用", "积分抵现", "积分兑换", "积分过期"],
        answer="100 积分可抵 1 元，下单时在结算页勾选「使用积分」；积分在获得后次年年底过期。",
        tags=["会员"],
    ),
    FaqIn(
        question="商品有质量问题怎么办？",
        variants=["收到的东西坏了", "商品破损", "质量问题", "发错货了"],
        answer="非常抱歉！请在订单详情点「申请售后」并上传照片，质量问题我们承担来回运费，"
        "审核通过后可换货或退款。",
        tags=["售后"],
    ),
    FaqIn(
        question="How long does a refund take?",
        variants=[
            "when will I get my money back",
            "refund not received",
            "how many days for a refund",
        ],
        answer="Once approved, refunds go back to your original payment method within 1-3 "
        "business days (up to 7 for bank cards).",
        tags=["refund"],
        lang="en",
        suggested=True,
    ),
    FaqIn(
        question="Do you ship internationally?",
        variants=["can you ship abroad", "shipping to other countries", "overseas delivery"],
        answer="We currently deliver within mainland China, Hong Kong and Macau only.",
        tags=["shipping"],
        lang="en",
        suggested=True,
    ),
    FaqIn(
        question="How much is shipping?",
        variants=["is shipping free", "delivery fee", "free shipping threshold"],
        answer="Shipping is free on orders over ¥99; below that it is ¥8 (remote regions +¥10).",
        tags=["shipping"],
        lang="en",
        suggested=True,
    ),
    FaqIn(
        question="How do I get an invoice?",
        variants=["I need a VAT invoice", "request an invoice", "electronic invoice"],
        answer="When the order is complete, open Orders → Order details → Request invoice; "
        "the e-invoice reaches your email within 24 hours.",
        tags=["invoice"],
        lang="en",
    ),
)


async def seed_demo_faqs(engine: AsyncEngine, clock: Clock) -> int:
    """Add the demo entries to an empty knowledge base; returns how many were added."""
    async with write_transaction(engine) as conn:
        existing = (await conn.execute(sa.select(sa.func.count()).select_from(bot_faqs))).scalar()
        if existing:
            return 0
        now = clock.now_ms()
        await conn.execute(sa.insert(bot_faqs), [new_row(f, now, "seed-demo") for f in DEMO_FAQS])
    return len(DEMO_FAQS)
