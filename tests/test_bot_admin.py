"""The knowledge base through the admin REST API (permissions, validation, audit, what the
bot then answers), and an external bot plugged in over a webhook — a real aiohttp service
in the test, called by the real adapter."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from contactd.api.openapi import build_openapi
from contactd.api.registry import api
from tests.test_bot import (
    MakeBotChat,
    bot_says,
    send,
    start_with_bot,
)
from tests.test_bot import bot_shutdown_guard as bot_shutdown_guard  # (fixture)
from tests.test_bot import make_bot_chat as make_bot_chat  # (fixture)

FAQ = {
    "question": "支持花呗分期吗？",
    "variants": ["可以分期付款吗", "花呗分期"],
    "answer": "支持花呗 3/6/12 期分期，结算页选择「花呗分期」即可。",
    "tags": ["支付"],
    "suggested": True,
}


async def _call(
    base: str, method: str, path: str, token: str | None, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, base + path, json=body, headers=headers, **kw) as r,
    ):
        text = await r.text()
        return r.status, (json.loads(text) if text else None)


async def test_faq_crud_is_audited_and_changes_what_the_bot_answers(
    make_bot_chat: MakeBotChat,
) -> None:
    chat = await make_bot_chat()
    admin = await chat.token("admin1")
    base = chat.base

    # before: the bot knows nothing about instalments
    status, tried = await _call(base, "POST", "/api/v1/bot/search", admin, {"text": "能分期吗"})
    assert status == 200 and tried["answer"] is None

    status, faq = await _call(base, "POST", "/api/v1/bot/faqs", admin, FAQ)
    assert status == 201, faq
    assert faq["question"] == FAQ["question"] and faq["lang"] == "zh" and faq["hits"] == 0
    assert faq["updated_by"] == "admin1"
    status, tried = await _call(base, "POST", "/api/v1/bot/search", admin, {"text": "能花呗分期吗"})
    assert tried["answer"]["faq_id"] == faq["id"]

    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "可以花呗分期吗？")
    await bot_says(cust, lambda t: t == FAQ["answer"])

    # change it: the next answer is the new one
    new_answer = "支持花呗 3/6/12/24 期分期。"
    status, changed = await _call(
        base, "PATCH", f"/api/v1/bot/faqs/{faq['id']}", admin, {"answer": new_answer}
    )
    assert status == 200 and changed["answer"] == new_answer
    assert changed["variants"] == FAQ["variants"]  # untouched fields stay
    mark = cust.mark()
    await send(cust, sid, "花呗分期")
    await bot_says(cust, lambda t: t == new_answer, since=mark)

    status, listed = await _call(base, "GET", "/api/v1/bot/faqs?tag=支付", admin)
    assert status == 200 and [f["id"] for f in listed] == [faq["id"]]
    assert listed[0]["hits"] == 2

    status, _ = await _call(base, "DELETE", f"/api/v1/bot/faqs/{faq['id']}", admin)
    assert status == 204
    status, gone = await _call(base, "GET", f"/api/v1/bot/faqs/{faq['id']}", admin)
    assert status == 404 and gone["error"]["code"] == "faq_not_found"
    status, tried = await _call(base, "POST", "/api/v1/bot/search", admin, {"text": "花呗分期"})
    assert tried["answer"] is None

    status, audit = await _call(base, "GET", "/api/v1/audit?target_type=faq", admin)
    assert status == 200
    actions = [(e["action"], e["actor_id"] is not None) for e in audit]
    assert actions == [("faq.deleted", True), ("faq.updated", True), ("faq.created", True)]
    updated = audit[1]
    assert updated["before"]["answer"] == FAQ["answer"]
    assert updated["after"]["answer"] == new_answer


async def test_bad_faq_requests_change_nothing(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    base = chat.base
    admin = await chat.token("admin1")
    agent = await chat.token("agent1")
    status, before = await _call(base, "GET", "/api/v1/bot/faqs", admin)
    assert status == 200 and len(before) == 10  # the demo entries

    assert (await _call(base, "GET", "/api/v1/bot/faqs", None))[0] == 401
    status, body = await _call(base, "POST", "/api/v1/bot/faqs", agent, FAQ)
    assert status == 403 and body["error"]["code"] == "forbidden"
    for bad in (
        {**FAQ, "question": "   "},
        {**FAQ, "answer": ""},
        {**FAQ, "lang": "fr"},
        {**FAQ, "surprise": 1},
        {**FAQ, "variants": ["x" * 301]},
        {"question": "only a question"},
    ):
        status, body = await _call(base, "POST", "/api/v1/bot/faqs", admin, bad)
        assert status == 422 and body["error"]["code"] == "validation_failed", bad
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            base + "/api/v1/bot/faqs",
            data=b"{nope",
            headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
        ) as r,
    ):
        assert r.status == 400 and (await r.json())["error"]["code"] == "bad_request"
    for path in ("/api/v1/bot/faqs/999999", "/api/v1/bot/faqs/abc", "/api/v1/bot/faqs/-1"):
        status, body = await _call(base, "PATCH", path, admin, {"answer": "x"})
        assert status == 404 and body["error"]["code"] == "faq_not_found", path
    first = before[0]["id"]
    status, body = await _call(base, "PATCH", f"/api/v1/bot/faqs/{first}", admin, {"answer": ""})
    assert status == 422
    status, body = await _call(base, "GET", "/api/v1/bot/faqs?limit=x", admin)
    assert status == 422
    status, after = await _call(base, "GET", "/api/v1/bot/faqs", admin)
    assert after == before
    status, audit = await _call(base, "GET", "/api/v1/audit?target_type=faq", admin)
    assert audit == []


async def test_import_adds_replaces_and_is_all_or_nothing(make_bot_chat: MakeBotChat) -> None:
    chat = await make_bot_chat()
    base = chat.base
    admin = await chat.token("admin1")
    _, before = await _call(base, "GET", "/api/v1/bot/faqs", admin)
    changed = {**FAQ, "question": "运费怎么算？", "answer": "全场包邮。"}
    body = {"entries": [FAQ, changed]}
    status, out = await _call(base, "POST", "/api/v1/bot/faqs/import", admin, body)
    assert status == 200, out
    assert out == {"created": 1, "updated": 1, "unchanged": 0}
    status, out = await _call(base, "POST", "/api/v1/bot/faqs/import", admin, body)
    assert out == {"created": 0, "updated": 0, "unchanged": 2}  # importing again: no change
    _, after = await _call(base, "GET", "/api/v1/bot/faqs", admin)
    assert len(after) == len(before) + 1
    shipping = next(f for f in after if f["question"] == "运费怎么算？")
    assert shipping["answer"] == "全场包邮。"

    cust, sid = await start_with_bot(chat)
    await send(cust, sid, "运费怎么算？")
    await bot_says(cust, lambda t: t == "全场包邮。")
    _, after = await _call(base, "GET", "/api/v1/bot/faqs", admin)

    # one bad entry: nothing is imported
    bad = {"entries": [{**FAQ, "question": "新问题"}, {**FAQ, "answer": ""}]}
    status, err = await _call(base, "POST", "/api/v1/bot/faqs/import", admin, bad)
    assert status == 422 and err["error"]["code"] == "validation_failed"
    assert (await _call(base, "POST", "/api/v1/bot/faqs/import", admin, {"entries": []}))[0] == 422
    agent = await chat.token("agent1")
    assert (await _call(base, "POST", "/api/v1/bot/faqs/import", agent, body))[0] == 403
    _, final = await _call(base, "GET", "/api/v1/bot/faqs", admin)
    assert final == after
    _, audit = await _call(base, "GET", "/api/v1/audit?target_type=faq", admin)
    assert sorted(e["action"] for e in audit) == ["faq.created", "faq.updated"]


def test_bot_routes_are_in_the_openapi_document() -> None:
    doc = build_openapi(api)
    paths = doc["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/bot/faqs"])
    assert {"get", "patch", "delete"} <= set(paths["/api/v1/bot/faqs/{faq_id}"])
    assert "post" in paths["/api/v1/bot/search"] and "get" in paths["/api/v1/bot/requests"]
    assert "post" in paths["/api/v1/bot/faqs/import"]
    assert "get" in paths["/api/v1/bot/summary"]


# the external bot ----------------------------------------------------------------------
SECRET = "bot-webhook-secret"


class FakeBot:
    """A small external bot: checks contactd's signature and answers from a table."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.broken = False

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        sig = request.headers.get("X-Contactd-Signature", "")
        parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
        mac = hmac.new(SECRET.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256)
        if not hmac.compare_digest(mac.hexdigest(), parts.get("v1", "")):
            return web.json_response({"error": "bad signature"}, status=401)
        data = json.loads(body)
        self.calls.append(data)
        if self.broken:
            await asyncio.sleep(2)  # longer than contactd waits
        text = data["text"]
        if "hello" in text:
            return web.json_response(
                {
                    "texts": ["Hello from the external bot"],
                    "suggestions": [{"label": "Prices", "text": "prices"}],
                }
            )
        if "prices" in text:
            return web.json_response({"texts": ["Prices start at ¥9.9"], "matched": True})
        return web.json_response({"texts": ["Hmm?"], "matched": False})


async def _fake_bot(aiohttp_server: Callable[..., Any]) -> tuple[FakeBot, str]:
    bot = FakeBot()
    app = web.Application()
    app.router.add_post("/bot", bot.handle)
    server = await aiohttp_server(app)
    return bot, f"http://{server.host}:{server.port}/bot"


async def test_external_bot_over_a_signed_webhook(
    make_bot_chat: MakeBotChat, aiohttp_server: Callable[..., Any]
) -> None:
    fake, url = await _fake_bot(aiohttp_server)
    chat = await make_bot_chat(engine="webhook", webhook_url=url, webhook_secret=SECRET)
    cust, sid = await start_with_bot(chat, auth=None, lang="en")
    await send(cust, sid, "hello there")
    await bot_says(cust, lambda t: t == "Hello from the external bot")
    prompt = await cust.wait("bot.prompt", lambda p: p["suggestions"])
    assert prompt["suggestions"] == [{"label": "Prices", "text": "prices"}]
    await send(cust, sid, "prices")
    await bot_says(cust, lambda t: t.startswith("Prices start"))
    assert fake.calls[0]["session_id"] == sid and fake.calls[0]["text"] == "hello there"

    # two misses in a row still hand over: the rule is contactd's, not the bot's
    await send(cust, sid, "blah")
    await bot_says(cust, lambda t: t == "Hmm?")
    await send(cust, sid, "blah blah")
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer")
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "misses"


async def test_external_bot_cannot_trap_anyone(
    make_bot_chat: MakeBotChat, aiohttp_server: Callable[..., Any]
) -> None:
    fake, url = await _fake_bot(aiohttp_server)
    chat = await make_bot_chat(
        engine="webhook", webhook_url=url, webhook_secret=SECRET, webhook_timeout_s=0.5
    )
    # the hand-over words never reach the external bot
    cust, sid = await start_with_bot(chat, lang="en")
    await send(cust, sid, "agent")
    await cust.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    assert fake.calls == []
    await cust.ok("chat.end", {"session_id": sid})

    # a bot that does not answer in time: the customer gets a person at once
    fake.broken = True
    other, sid2 = await start_with_bot(chat, lang="en")
    await send(other, sid2, "hello")
    await other.wait("session.updated", lambda d: d["session"]["state"] == "queued")
    agent = await chat.agent("agent1", ["sales"])
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid2)
    assert offer["screen_pop"]["bot"]["handoff_reason"] == "bot_unavailable"
