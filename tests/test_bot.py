"""The bot front line over real sockets: a real server, real Redis, a real database, the
demo knowledge base, python-socketio clients as customers and agents. Contract:
docs/protocol.md ("Bot front line")."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contactd.app import create_app
from contactd.channels.bot.demo import DEMO_FAQS, seed_demo_faqs
from contactd.channels.bot.service import BotService
from contactd.clock import SystemClock
from contactd.directory.demo import seed_demo_directory
from contactd.keys import AUTH, BOT, DB, ENGINE
from contactd.settings import QueueConfig
from tests.chat_helpers import (
    BACKGROUND_TASKS,
    Payload,
    Peer,
    identity,
    recancel_swallowed,
    wait_for,
)
from tests.conftest import make_settings
from tests.test_chat_sockets import PASSWORD, PNG, SECRET, STAFF, Chat, _upload

ORDER = "O2026112300000001"  # u1001's, shipped with 顺丰速运
ANSWER = {f.question: f.answer for f in DEMO_FAQS}
REFUND_ZH = ANSWER["退款多久到账？"]
REFUND_EN = ANSWER["How long does a refund take?"]

MakeBotChat = Callable[..., Awaitable[Chat]]


def _queues() -> list[QueueConfig]:
    return [
        QueueConfig(id="sales", name="Sales", strategy="idle", wrap_up_s=0),
        QueueConfig(id="support", name="Support", strategy="idle", wrap_up_s=0),
        QueueConfig(id="tiny", name="Tiny", strategy="idle", wrap_up_s=0, max_waiting=1),
    ]


@pytest.fixture
async def bot_shutdown_guard() -> AsyncIterator[None]:
    """The chat tests' guard (see recancel_swallowed), covering the bot's tasks too."""
    names = BACKGROUND_TASKS | {"bot-idle", "bot-faq-counts", "bot-request-tickets"}
    task = asyncio.create_task(recancel_swallowed(names))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


@pytest.fixture
async def make_bot_chat(
    bot_shutdown_guard: None,  # set up before the server, so torn down after it
    aiohttp_server: Callable[..., Any],
    redis_url: str,
    site: str,
    tmp_path: Path,
    redis: Any,
) -> AsyncIterator[MakeBotChat]:
    chats: list[Chat] = []

    async def make(**bot: Any) -> Chat:
        settings = make_settings(
            site,
            _queues(),
            redis_url=redis_url,
            data_dir=tmp_path,
            im={"identity_secret": SECRET, "entry_points": {"home": "sales"}},
            routing={"sweep_interval_s": 0.05},
            bot={"first_queues": ["sales", "tiny"], **bot},
        )
        server = await aiohttp_server(create_app(settings))
        app = server.app
        for username, (role, name) in {**STAFF, "admin1": ("admin", "Admin")}.items():
            await app[AUTH].create_user(username, PASSWORD, role, name)
        await seed_demo_directory(app[DB], customers=2)
        await seed_demo_faqs(app[DB], SystemClock())
        chat = Chat(f"http://{server.host}:{server.port}", app)
        chats.append(chat)
        return chat

    yield make
    for chat in chats:
        await chat.close()


def bot_texts(peer: Peer, since: int = 0) -> list[str]:
    return [
        str(d["message"].get("text") or "")
        for d in peer.got("message", since)
        if d["message"]["sender"]["type"] == "bot"
    ]


async def bot_says(peer: Peer, pred: Callable[[str], bool], since: int = 0) -> Payload:
    found = await peer.wait(
        "message",
        lambda d: d["message"]["sender"]["type"] == "bot" and pred(d["message"].get("text") or ""),
        since=since,
    )
    return dict(found["message"])


async def send(peer: Peer, sid: str, text: str, n: list[int] = [0]) -> Payload:  # noqa: B006
    n[0] += 1
    ack = await peer.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": f"c-{n[0]}", "kind": "text", "text": text},
    )
    return dict(ack["message"])


async def start_with_bot(chat: Chat, auth: Payload | None = None, **req: Any) -> tuple[Peer, str]:
    cust = await chat.customer(auth)
    session = await chat.start(cust, **req)
    assert session["state"] == "bot", session
    assert session.get("position") is None
    return cust, str(session["session_id"])


# -------------------------------------------------------------------------------------
async def test_bot_greets_offers_chips_and_answers_chinese_and_english(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    greeting = await bot_says(cust, lambda t: "人工" in t)
    assert greeting["seq"] == 1 and greeting["sender"]["name"]
    prompt = await cust.wait("bot.prompt")
    labels = [s["label"] for s in prompt["suggestions"]]
    assert "退款多久到账？" in labels and "查订单" in labels  # suggested FAQ + self-service
    assert prompt["session_id"] == sid and prompt["after_seq"] == 1

    mark = cust.mark()
    await send(cust, sid, "退款一般几天能到账？")
    answer = await bot_says(cust, lambda t: t == REFUND_ZH, since=mark)
    prompt = await cust.wait("bot.prompt", lambda p: p["after_seq"] == answer["seq"], since=mark)
    assert prompt["feedback"] is True

    mark = cust.mark()
    await send(cust, sid, "how long until my refund arrives?")
    await bot_says(cust, lambda t: t == REFUND_EN, since=mark)

    # the whole conversation is in the log, in order, bot messages included
    sync = await cust.ok("sync", {"session_id": sid, "after_seq": 0})
    senders = [m["sender"]["type"] for m in sync["messages"]]
    assert senders == ["bot", "customer", "bot", "customer", "bot"]
    assert [m["seq"] for m in sync["messages"]] == [1, 2, 3, 4, 5]
    assert sync["session"]["state"] == "bot"
    state = await cust.ok("bot.state", {"session_id": sid})
    assert state["prompt"]["after_seq"] == 5


async def test_the_greeting_is_the_site_s_own(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat(greeting={"zh": "欢迎光临小店！"})
    cust, _ = await start_with_bot(chat)
    greeting = await bot_says(cust, lambda t: bool(t))
    assert greeting["text"] == "欢迎光临小店！"


async def test_question_at_start_is_answered_in_english(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, _ = await start_with_bot(chat, question="How much is shipping?", lang="en")
    greeting = await bot_says(cust, lambda t: "human" in t)  # English because the customer is
    answer = await bot_says(cust, lambda t: t == ANSWER["How much is shipping?"])
    assert greeting["seq"] < answer["seq"]


@pytest.mark.parametrize("words", ["人工", "我要转人工", "human please", "Can I talk to an agent?"])
async def test_handoff_words_reach_an_agent_with_the_transcript(
    make_bot_chat: MakeBotChat, words: str
) -> None:
    chat = await make_bot_chat()
    agent = await chat.agent("agent1", ["sales"])
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    await bot_says(cust, lambda t: bool(t))
    await send(cust, sid, "怎么开发票？")
    await bot_says(cust, lambda t: t == ANSWER["怎么开发票？"])
    assert not agent.got("offer")  # the bot has it: nobody is offered anything yet

    await send(cust, sid, words)
    await cust.wait("session.updated", lambda d: d["session"]["state"] in ("queued", "offered"))
    await cust.wait("bot.prompt", lambda p: p["suggestions"] == [])  # chips go away
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    pop = offer["screen_pop"]
    assert pop["bot"]["handoff_reason"] == "asked"
    said = [(m["sender"]["type"], m.get("text")) for m in pop["transcript"]]
    assert ("customer", "怎么开发票？") in said
    assert ("bot", ANSWER["怎么开发票？"]) in said
    assert ("customer", words) in said
    assert pop["customer"]["id"] == "u1001"

    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "active")
    # from now on the bot is quiet: messages go to the agent
    mark = cust.mark()
    await send(cust, sid, "退款多久到账？")
    await agent.wait("message", lambda d: d["message"].get("text") == "退款多久到账？")
    assert bot_texts(cust, mark) == []


async def test_handoff_button_is_one_tap_and_harmless_twice(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    ack = await cust.ok("bot.handoff", {"session_id": sid})
    assert ack["session"]["state"] == "queued" and ack["session"]["position"] == 0
    again = await cust.ok("bot.handoff", {"session_id": sid})
    assert again["session"]["state"] == "queued"
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "asked"
    handoffs = [t for t in bot_texts(cust) if "转接人工" in t]
    assert len(handoffs) == 1
    async with aiohttp.ClientSession() as http, http.get(chat.base + "/metrics") as r:
        metrics = await r.text()
    assert 'contactd_bot_handoffs_total{queue="sales",reason="asked"} 1.0' in metrics


async def test_two_misses_in_a_row_hand_over(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    mark = cust.mark()
    await send(cust, sid, "会员卡能借给朋友用吗")  # close to an entry, not close enough
    miss = await bot_says(cust, lambda t: "没有完全理解" in t, since=mark)
    prompt = await cust.wait("bot.prompt", lambda p: p["after_seq"] == miss["seq"], since=mark)
    assert "会员积分怎么用？" in [s["label"] for s in prompt["suggestions"]]
    await send(cust, sid, "会员卡丢了补办要多久")
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "misses"


async def test_a_good_answer_resets_the_misses(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "会员卡能借给朋友用吗")
    await bot_says(cust, lambda t: "没有完全理解" in t)
    await send(cust, sid, "积分过期了吗")
    await bot_says(cust, lambda t: t == ANSWER["会员积分怎么用？"])
    mark = cust.mark()
    await send(cust, sid, "会员卡丢了补办要多久")
    await bot_says(cust, lambda t: "没有完全理解" in t, since=mark)
    sync = await cust.ok("sync", {"session_id": sid, "after_seq": 0})
    assert sync["session"]["state"] == "bot"


async def test_no_answer_at_all_hands_over_at_once(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "今天天气怎么样")
    await bot_says(cust, lambda t: "暂时回答不了" in t)
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "no_answer"


@pytest.mark.parametrize("how", ["button", "words"])
async def test_negative_feedback_hands_over(make_bot_chat: MakeBotChat, how: str) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "运费怎么算？")
    answer = await bot_says(cust, lambda t: t == ANSWER["运费怎么算？"])
    if how == "button":
        ack = await cust.ok(
            "bot.feedback", {"session_id": sid, "seq": answer["seq"], "helpful": False}
        )
        assert ack["session"]["state"] == "queued"
    else:
        await send(cust, sid, "没用")
        await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    status, faqs = await chat.rest("/api/v1/bot/faqs?q=运费", "admin1")
    assert status == 200
    assert [f["unhelpful"] for f in faqs if f["question"] == "运费怎么算？"] == [
        1 if how == "button" else 0
    ]
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "negative_feedback"


async def test_positive_feedback_keeps_the_bot_and_counts(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "运费怎么算？")
    answer = await bot_says(cust, lambda t: t == ANSWER["运费怎么算？"])
    ref = {"session_id": sid, "seq": answer["seq"]}
    ack = await cust.ok("bot.feedback", {**ref, "helpful": True})
    assert ack["session"]["state"] == "bot"
    await bot_says(cust, lambda t: "很高兴" in t)
    await cust.ok("bot.feedback", {**ref, "helpful": True})  # counted once
    assert await cust.error("bot.feedback", {**ref, "seq": 1, "helpful": True}) == "not_found"
    assert await cust.error("bot.feedback", {**ref, "helpful": "meh"}) == "validation_failed"
    _, faqs = await chat.rest("/api/v1/bot/faqs?q=运费", "admin1")
    assert [(f["hits"], f["helpful"]) for f in faqs if f["question"] == "运费怎么算？"] == [(1, 1)]


async def test_logistics_for_an_identified_customer(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    mark = cust.mark()
    await send(cust, sid, "查物流")
    await bot_says(cust, lambda t: "选择" in t, since=mark)
    prompt = await cust.wait(
        "bot.prompt", lambda p: any(ORDER in s["text"] for s in p["suggestions"]), since=mark
    )
    assert len(prompt["suggestions"]) > 1
    mark = cust.mark()
    await send(cust, sid, ORDER)
    text = await bot_says(cust, lambda t: "顺丰" in t, since=mark)
    card = await cust.wait("message", lambda d: d["message"]["kind"] == "order_card", since=mark)
    assert card["message"]["order"]["order_no"] == ORDER
    assert card["message"]["sender"]["type"] == "bot"
    assert ORDER in (text["text"] or "")


async def test_anonymous_order_status_needs_the_phone_digits(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "查订单")
    await bot_says(cust, lambda t: "订单号" in t)
    await send(cust, sid, "O2099000000000000")
    await bot_says(cust, lambda t: "没有找到" in t)
    await send(cust, sid, f"我的订单是 {ORDER}")
    await bot_says(cust, lambda t: "后四位" in t)
    mark = cust.mark()
    await send(cust, sid, "0000")
    await bot_says(cust, lambda t: "不匹配" in t, since=mark)
    await send(cust, sid, "9999")  # wrong again: a second miss in a row hands over
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued", since=mark)
    assert not cust.got("message", mark) or all(
        m["message"]["kind"] != "order_card" for m in cust.got("message", mark)
    )


async def test_anonymous_order_status_with_the_right_digits(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "查订单")
    await send(cust, sid, ORDER)
    await bot_says(cust, lambda t: "后四位" in t)
    mark = cust.mark()
    await send(cust, sid, "1234")
    await bot_says(cust, lambda t: "已发货" in t, since=mark)


async def test_refund_request_is_recorded_once(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    await send(cust, sid, "申请退款")
    await bot_says(cust, lambda t: "选择" in t)
    await send(cust, sid, ORDER)
    await bot_says(cust, lambda t: "原因" in t)
    mark = cust.mark()
    await send(cust, sid, "商品损坏")
    done = await bot_says(cust, lambda t: "申请号" in t, since=mark)
    status, found = await chat.rest(f"/api/v1/bot/requests?order_no={ORDER}", "super1")
    assert status == 200 and len(found) == 1
    req = found[0]
    assert req["kind"] == "refund" and req["details"] == {"reason": "商品损坏"}
    assert req["session_id"] == sid and req["status"] == "recorded" and req["id"] in done["text"]
    # asking again finds the open request instead of recording a second one
    await send(cust, sid, "申请退款")
    await send(cust, sid, ORDER)
    await bot_says(cust, lambda t: req["id"] in t and "无需重复" in t)
    _, found = await chat.rest(f"/api/v1/bot/requests?order_no={ORDER}", "super1")
    assert len(found) == 1
    # the agent who takes over sees it
    await cust.ok("bot.handoff", {"session_id": sid})
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["requests"] == [req["id"]]


async def test_human_first_queue_skips_the_bot(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust = await chat.customer()
    session = await chat.start(cust, queue_id="support")
    assert session["state"] == "queued"
    await send(cust, session["session_id"], "人工")
    assert bot_texts(cust) == []


async def test_customer_ends_a_bot_chat_and_can_rate(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    ack = await cust.ok("chat.end", {"session_id": sid})
    assert ack["session"]["state"] == "ended" and ack["session"]["end_reason"] == "customer_left"
    assert await cust.error("bot.handoff", {"session_id": sid}) == "contact_finished"
    await cust.ok("rating.submit", {"session_id": sid, "score": 4})
    # a new chat is a new session
    again = await chat.start(cust)
    assert again["session_id"] != sid and again["state"] == "bot"


async def test_full_queue_keeps_the_customer_with_the_bot(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    first, sid1 = await start_with_bot(chat, queue_id="tiny")
    await first.ok("bot.handoff", {"session_id": sid1})
    second, sid2 = await start_with_bot(chat, queue_id="tiny")
    ack = await second.ok("bot.handoff", {"session_id": sid2})
    assert ack["session"]["state"] == "bot"
    await bot_says(second, lambda t: "排队人数已满" in t)
    # and the chat goes on: the bot still answers
    await send(second, sid2, "运费怎么算？")
    await bot_says(second, lambda t: t == ANSWER["运费怎么算？"])


async def test_strangers_cannot_touch_a_bot_chat(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    _, sid = await start_with_bot(chat)
    other = await chat.customer()
    assert await other.error("bot.handoff", {"session_id": sid}) == "not_found"
    assert await other.error("bot.state", {"session_id": sid}) == "not_found"
    refused = await other.error("bot.feedback", {"session_id": sid, "seq": 1, "helpful": False})
    assert refused == "not_found"
    assert await other.error("bot.handoff", {"session_id": sid, "x": 1}) == "validation_failed"
    assert await other.error("bot.handoff", []) == "validation_failed"


async def test_quiet_bot_chats_close(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat(idle_close_s=0.3)
    cust, sid = await start_with_bot(chat)
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "ended", timeout=10)
    await bot_says(cust, lambda t: "长时间" in t)
    sync = await cust.ok("sync", {"session_id": sid, "after_seq": 0})
    assert sync["session"]["end_reason"] == "timeout"


async def test_a_picture_gets_a_note_and_an_order_card_its_status(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    token = cust.got("hello")[0]["visitor_token"]
    status, att = await _upload(chat.base, token, sid, PNG, "image/png", "耳机.png")
    assert status == 201, att
    await cust.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": "img-1", "kind": "image", "attachment_id": att["id"]},
    )
    await bot_says(cust, lambda t: "只能读文字" in t)
    mark = cust.mark()
    ack = await cust.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": "card-1", "kind": "order_card", "order_no": ORDER},
    )
    assert ack["message"]["kind"] == "order_card"
    await bot_says(cust, lambda t: "已发货" in t, since=mark)  # their own order: no questions
    await wait_for(lambda: cust.got("bot.prompt", mark), what="prompt")


async def test_a_resent_message_is_answered_once(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    req = {"session_id": sid, "client_msg_id": "same-1", "kind": "text", "text": "运费怎么算？"}
    first = await cust.ok("message.send", req)
    again = await cust.ok("message.send", req)  # e.g. the ack was lost on a flaky network
    assert first["message"]["seq"] == again["message"]["seq"]
    sync = await cust.ok("sync", {"session_id": sid, "after_seq": 0})
    answers = [m for m in sync["messages"] if m.get("text") == ANSWER["运费怎么算？"]]
    assert len(answers) == 1


async def test_lost_bot_state_still_gets_an_answer(make_bot_chat: MakeBotChat, redis: Any) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    await redis.delete(chat.app[ENGINE].keys.bot_state(sid))  # expired, or Redis replaced
    await send(cust, sid, "运费怎么算？")
    await bot_says(cust, lambda t: t == ANSWER["运费怎么算？"])


async def test_address_change_only_before_shipping(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    await send(cust, sid, "修改收货地址")
    await bot_says(cust, lambda t: "选择" in t)
    await send(cust, sid, ORDER)  # shipped
    await bot_says(cust, lambda t: "无法再修改" in t)

    unpaid = "O2026112300000002"
    await send(cust, sid, "改地址")
    await send(cust, sid, unpaid)
    await bot_says(cust, lambda t: "新的收货地址" in t)
    await send(cust, sid, "北京")
    await bot_says(cust, lambda t: "地址太短" in t)
    new_address = "李四 13900001111 北京市海淀区中关村大街 1 号"
    await send(cust, sid, new_address)
    await bot_says(cust, lambda t: "改地址申请" in t)
    _, found = await chat.rest(f"/api/v1/bot/requests?order_no={unpaid}", "super1")
    assert [(r["kind"], r["details"]) for r in found] == [
        ("address_change", {"new_address": new_address})
    ]
    # a refund cannot start on an unpaid order
    await send(cust, sid, "申请退款")
    await send(cust, sid, unpaid)
    await bot_says(cust, lambda t: "不能在线申请退款" in t)
    _, found = await chat.rest(f"/api/v1/bot/requests?order_no={unpaid}&kind=refund", "super1")
    assert found == []


async def test_a_flow_can_be_left_and_someone_elses_order_is_refused(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, auth=identity(SECRET, "u1002", "李娜"))
    await send(cust, sid, "查物流")
    mark = cust.mark()
    await send(cust, sid, ORDER)  # u1001's order: not shown to u1002
    said = await bot_says(cust, lambda t: bool(t), since=mark)
    assert "顺丰" not in (said["text"] or "") and "没有找到" in (said["text"] or "")
    await send(cust, sid, "取消")
    await bot_says(cust, lambda t: "已取消" in t)
    mark = cust.mark()
    await send(cust, sid, "运费怎么算？")
    await bot_says(cust, lambda t: t == ANSWER["运费怎么算？"], since=mark)
    assert all(m["message"]["kind"] != "order_card" for m in cust.got("message"))


class _BrokenEngine:
    """An engine that fails (a bug, a database outage): the customer must still get a
    person."""

    async def starters(self, lang: str) -> list[Any]:
        return []

    async def reply(self, *args: Any) -> Any:
        raise RuntimeError("the knowledge base is down")


async def test_a_failing_bot_hands_over_instead_of_going_silent(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat)
    chat.app[BOT].service.engine = _BrokenEngine()
    ack = await cust.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": "x-1", "kind": "text", "text": "运费怎么算？"},
    )
    assert ack["message"]["text"] == "运费怎么算？"  # stored and acknowledged
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "bot_unavailable"


async def test_an_order_card_asks_about_that_order(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    cust, sid = await start_with_bot(chat, order_no=ORDER)  # anonymous, on the order's page
    await send(cust, sid, "查物流")
    mark = cust.mark()
    prompt = await cust.wait("bot.prompt", lambda p: p["suggestions"], since=mark - 1)
    assert [s["text"] for s in prompt["suggestions"]] == [ORDER]  # the page's order, one tap
    await send(cust, sid, "取消")
    await bot_says(cust, lambda t: "已取消" in t)

    mark = cust.mark()
    await cust.ok(
        "message.send",
        {"session_id": sid, "client_msg_id": "card-1", "kind": "order_card", "order_no": ORDER},
    )
    await bot_says(cust, lambda t: "后四位" in t, since=mark)  # still proven first
    await send(cust, sid, "1234")
    await bot_says(cust, lambda t: "已发货" in t, since=mark)


async def test_one_turn_at_a_time_across_processes(make_bot_chat: MakeBotChat) -> None:
    """Two processes' bot services (here: two instances on the same Redis) never run the
    same conversation's turns at once; a lease another owner holds is never released."""
    chat = await make_bot_chat()
    a = chat.app[BOT].service
    b = BotService(a.chat, a.engine, a.kb, a.redis, a.keys, a.clock, a.bus, a.settings, a.metrics)
    order: list[str] = []
    in_a = asyncio.Event()

    async def turn_a() -> None:
        async with a._lock("S1"):
            in_a.set()
            order.append("a in")
            await asyncio.sleep(0.3)
            order.append("a out")

    async def turn_b() -> None:
        await in_a.wait()
        async with b._lock("S1"):
            order.append("b in")

    await asyncio.gather(turn_a(), turn_b())
    assert order == ["a in", "a out", "b in"]
    assert await a.redis.get(a.keys.bot_lock("S1")) is None  # released
    await a.redis.set(a.keys.bot_lock("S2"), "someone-else", px=200)
    async with b._lock("S2"):  # waits for the other owner's lease to lapse
        pass
    assert await a.redis.get(a.keys.bot_lock("S2")) is None


async def test_guessing_the_phone_digits_stops_after_five_tries(make_bot_chat: MakeBotChat) -> None:
    """Over several chats (as someone guessing would open them), five wrong checks of an
    order's phone digits in an hour end the guessing, even a right guess after them."""
    chat = await make_bot_chat()
    wrong = iter(["0000", "1111", "2222", "3333", "4444"])
    for _ in range(2):  # two chats, two wrong guesses each: handed over for misses
        cust, sid = await start_with_bot(chat)
        await send(cust, sid, "查订单")
        await send(cust, sid, ORDER)
        await send(cust, sid, next(wrong))
        await send(cust, sid, next(wrong))
        await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
        await cust.ok("chat.end", {"session_id": sid})
    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "查订单")
    await send(cust, sid, ORDER)
    await send(cust, sid, next(wrong))  # the fifth
    await bot_says(cust, lambda t: "不匹配" in t)
    mark = cust.mark()
    await send(cust, sid, "1234")  # right, but too late
    await bot_says(cust, lambda t: "验证失败次数过多" in t, since=mark)
    assert all(m["message"]["kind"] != "order_card" for m in cust.got("message"))
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "verification"


async def test_summary_counts_what_the_bot_contained_and_handed_over(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    a, sid_a = await start_with_bot(chat)
    await send(a, sid_a, "转人工")  # handed over
    await a.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    b, sid_b = await start_with_bot(chat)
    await b.ok("chat.end", {"session_id": sid_b})  # ended with the bot
    c, sid_c = await start_with_bot(chat, auth=identity(SECRET, "u1001", "张三"))
    await send(c, sid_c, "申请退款")
    await send(c, sid_c, ORDER)
    await send(c, sid_c, "不想要了")
    await bot_says(c, lambda t: "申请号" in t)  # still with the bot, a request recorded
    d = await chat.customer()
    await chat.start(d, queue_id="support")  # human-first: not the bot's

    status, out = await chat.rest("/api/v1/bot/summary", "super1")
    assert status == 200, out
    assert out["bot_chats"] == 3 and out["still_with_bot"] == 1
    assert out["ended_with_bot"] == 1 and out["ended_with_bot_by_reason"] == {"customer_left": 1}
    assert out["handed_over"] == 1 and out["handed_over_by_reason"] == {"asked": 1}
    assert out["containment_rate"] == 0.5 and out["requests"] == {"refund": 1}
    status, empty = await chat.rest("/api/v1/bot/summary?until=2020-01-01", "super1")
    assert status == 200 and empty["bot_chats"] == 0 and empty["containment_rate"] is None
    assert (await chat.rest("/api/v1/bot/summary?since=yesterday", "super1"))[0] == 422
    assert (await chat.rest("/api/v1/bot/summary", "agent1"))[0] == 403


async def test_an_ended_bot_chat_leaves_no_state_behind(
    make_bot_chat: MakeBotChat, redis: Any
) -> None:
    chat = await make_bot_chat(idle_close_s=0.3)
    cust, sid = await start_with_bot(chat)
    keys = chat.app[ENGINE].keys
    assert await redis.exists(keys.bot_state(sid))
    await cust.ok("chat.end", {"session_id": sid})

    async def leftovers() -> int:
        return int(await redis.exists(keys.bot_state(sid))) + int(
            await redis.zscore(keys.bot_idle, sid) is not None
        )

    for _ in range(100):  # the idle sweeper tidies up at the chat's idle deadline
        if not await leftovers():
            break
        await asyncio.sleep(0.05)
    assert await leftovers() == 0
    sync = await cust.ok("sync", {"session_id": sid, "after_seq": 0})
    assert sync["session"]["end_reason"] == "customer_left"  # not re-closed as a timeout
