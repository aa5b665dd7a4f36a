"""The generic IVR webhook end to end: a scripted IVR platform (signed JSON posts) against
the real server, agents on real sockets, real Redis and SQL. Contract: docs/protocol.md."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from contactd.app import create_app
from contactd.channels.ivr.client import IvrClient
from contactd.keys import AUDIT, DB, SETTINGS
from contactd.storage.tables import ivr_calls
from tests.chat_helpers import Payload, wait_for
from tests.ivr_helpers import (
    DIRECT,
    HOTLINE,
    OLD_SECRET,
    SECRET,
    STRANGER,
    ZHANG_SAN,
    MakeVoice,
    Voice,
    make_voice,
)
from tests.test_chat_sockets import shutdown_guard

__all__ = ["make_voice", "shutdown_guard"]  # fixtures


async def _calls(voice: Voice) -> list[Payload]:
    async with voice.app[DB].connect() as conn:
        rows = (await conn.execute(sa.select(ivr_calls))).mappings().all()
    return [dict(r) for r in rows]


async def _sessions_of(voice: Voice, phone: str) -> list[Payload]:
    status, body = await voice.rest(f"/api/v1/sessions?phone={phone}", "super1")
    assert status == 200, body
    items: list[Payload] = body["items"]
    return items


async def test_call_queues_is_offered_with_screen_pop_connects_and_is_recorded(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    agent = await voice.voice_agent("agent1", ["phone"])
    first = (await ivr.incoming("CA1", ZHANG_SAN, DIRECT)).instruction
    assert first["action"] == "enqueue"
    assert first["queue_id"] == "phone" and first["position"] == 0
    assert first["text"].startswith("张三您好")  # known caller greeted by name
    sid = first["session_id"]

    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    assert offer["session"]["channel"] == "voice"
    pop = offer["screen_pop"]
    assert pop["customer"]["id"] == "u1001"  # looked up by the caller's number
    assert pop["customer"]["phone"] == "138****1234"
    assert any(o["order_no"] == "O2026112300000001" for o in pop["orders"])

    # ringing the agent: the caller still holds
    assert (await ivr.waiting("CA1")).instruction["action"] == "enqueue"
    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    connect = (await ivr.waiting("CA1")).instruction
    assert connect["action"] == "connect"
    # the caller is bridged to agent1 by the IVR: the workspace cannot move the call
    moved = {"session_id": sid, "queue_id": "phone", "note": ""}
    assert await agent.error("session.transfer", moved) == "invalid_state"
    assert connect["agent_id"] == "agent1" and connect["endpoint"] == "client:agent1"

    mark = agent.mark()
    assert (await ivr.answered("CA1")).instruction["action"] == "connect"
    note = await agent.wait("message", lambda d: d["message"]["session_id"] == sid, since=mark)
    assert "Call connected" in note["message"]["text"]

    assert (await ivr.ended("CA1", duration_s=42)).instruction == {"action": "hangup"}
    session = (await voice.session(sid))["session"]
    assert session["channel"] == "voice" and session["state"] == "ended"
    assert session["end_reason"] == "resolved" and session["agents"] == ["agent1"]
    assert session["customer_phone"] == ZHANG_SAN
    agent_view = await agent.wait("agent.updated", lambda d: not d["agent"]["slots"], since=mark)
    assert agent_view["agent"]["state"] == "available"
    [call] = await _calls(voice)
    assert call["call_id"] == "CA1" and call["outcome"] == "agent" and call["session_id"] == sid
    # anything more about the call changes nothing
    assert (await ivr.waiting("CA1")).instruction == {"action": "hangup"}
    # the next caller hears a wait estimate from the queue's measured rate (1 call a minute)
    nxt = (await ivr.incoming("CA1b", STRANGER, DIRECT)).instruction
    assert nxt["estimated_wait_s"] == 60 and "预计等待1分钟" in nxt["text"]


async def test_self_service_menu_answers_from_the_directory(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    menu = (await ivr.incoming("CA2", ZHANG_SAN, HOTLINE)).instruction
    assert menu["action"] == "gather" and menu["menu"] == "main"
    assert "按1" in menu["prompt"] and "人工服务请按0" in menu["prompt"]

    orders = (await ivr.menu("CA2", "main", digits="1")).instruction
    assert orders["action"] == "gather" and orders["menu"] == "main"
    assert "订单尾号0 0 0 2，待付款" in orders["prompt"]
    assert "订单尾号0 0 0 1，已发货" in orders["prompt"]

    logistics = (await ivr.menu("CA2", "main", speech="我的快递到哪了")).instruction
    assert "顺丰速运" in logistics["prompt"] and "上海转运中心" in logistics["prompt"]

    cases = (await ivr.menu("CA2", "main", digits="3")).instruction
    assert "没有处理中的售后" in cases["prompt"]

    # the caller asks for a person: the agent sees what the IVR already told them
    agent = await voice.voice_agent("agent1", ["phone"])
    queued = (await ivr.menu("CA2", "main", speech="转人工")).instruction
    assert queued["action"] == "enqueue"
    offer = await agent.wait("offer")
    said = " ".join(m["text"] or "" for m in offer["screen_pop"]["transcript"])
    assert "[main] 1" in said and "顺丰速运" in said
    detail = await voice.session(queued["session_id"])
    log = " ".join(m["text"] or "" for m in detail["messages"])
    assert "IVR" in log and "顺丰速运" in log and "[main] 3" in log


async def test_a_known_caller_hears_their_open_after_sales_tickets(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    async with voice.http.post(
        voice.base + "/api/v1/tickets",
        json={"type": "complaint", "customer_id": "u1001", "reason": "配送员态度差"},
        headers={"Authorization": "Bearer " + await voice.token("super1")},
    ) as r:
        assert r.status == 201, await r.text()
        ticket = (await r.json())["ticket"]
    await voice.ivr.incoming("CK1", ZHANG_SAN, HOTLINE)
    heard = (await voice.ivr.menu("CK1", "main", digits="3")).instruction["prompt"]
    assert ticket["type_label"] in heard and ticket["customer_status"] in heard
    # a number on no account hears nobody's cases
    await voice.ivr.incoming("CK2", STRANGER, HOTLINE)
    nothing = (await voice.ivr.menu("CK2", "main", digits="3")).instruction["prompt"]
    assert ticket["type_label"] not in nothing and "没有处理中的售后" in nothing


async def test_unknown_caller_reads_an_order_by_number(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    menu = (await ivr.incoming("CA3", STRANGER, HOTLINE)).instruction
    assert menu["prompt"].startswith("您好，欢迎致电")
    ask = (await ivr.menu("CA3", "main", digits="2")).instruction
    assert ask["action"] == "gather" and ask["menu"] == "order_no"
    assert ask["num_digits"] is None and ask["finish_on_key"] == "#"
    # a number on no account must prove the order is theirs: its phone's last four digits
    proof = (await ivr.menu("CA3", "order_no", digits="2026112300000001#")).instruction
    assert proof["menu"] == "order_phone" and "后四位" in proof["prompt"]
    assert proof["num_digits"] == 4 and "顺丰速运" not in proof["prompt"]
    wrong = (await ivr.menu("CA3", "order_phone", digits="9999")).instruction
    assert (
        wrong["menu"] == "main" and "不符" in wrong["prompt"] and "顺丰速运" not in wrong["prompt"]
    )
    await ivr.menu("CA3", "main", digits="2")
    await ivr.menu("CA3", "order_no", digits="2026112300000001#")
    found = (await ivr.menu("CA3", "order_phone", digits=ZHANG_SAN[-4:])).instruction
    assert found["menu"] == "main" and "顺丰速运" in found["prompt"]
    await ivr.menu("CA3", "main", digits="1")
    missing = (await ivr.menu("CA3", "order_no", digits="999#")).instruction
    assert "没有找到这个订单" in missing["prompt"]
    assert (await ivr.menu("CA3", "main", digits="*")).instruction["menu"] == "main"
    assert (await ivr.ended("CA3")).instruction["action"] == "hangup"
    [call] = await _calls(voice)
    assert call["outcome"] == "self_service" and call["session_id"] is None
    assert [s["menu"] for s in call["menu_log"]] == [
        "main",
        "order_no",
        "order_phone",
        "main",
        "order_no",
        "order_phone",
        "main",
        "order_no",
    ]
    # the digits are a secret: never kept in the call's log
    assert ZHANG_SAN[-4:] not in str(call["menu_log"]) and "9999" not in str(call["menu_log"])
    # the supervisors' figure: how many calls the IVR served alone
    await ivr.incoming("CA3b", ZHANG_SAN, HOTLINE)
    await ivr.menu("CA3b", "main", digits="0")
    await ivr.abandoned("CA3b")
    status, summary = await voice.rest("/api/v1/ivr/summary", "super1")
    assert status == 200
    assert (summary["calls"], summary["self_service"], summary["abandoned"]) == (2, 1, 1)
    assert summary["self_service_rate"] == 0.5
    _, empty = await voice.rest("/api/v1/ivr/summary?since=2020-01-01&until=2020-01-02", "super1")
    assert empty["calls"] == 0 and empty["self_service_rate"] is None
    assert (await voice.rest("/api/v1/ivr/summary?since=yesterday", "super1"))[0] == 422
    assert (await voice.rest("/api/v1/ivr/summary", "agent1"))[0] == 403


async def test_guessing_an_orders_phone_digits_locks_it_for_calls_and_chats(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    for i in range(5):
        call = f"CG{i}"
        await ivr.incoming(call, STRANGER, HOTLINE)
        await ivr.menu(call, "main", digits="1")
        await ivr.menu(call, "order_no", digits="2026112300000001#")
        out = (await ivr.menu(call, "order_phone", digits=f"000{i}")).instruction
        assert "不符" in out["prompt"]
    # five wrong tries in the hour: even the right digits no longer read the order out
    await ivr.incoming("CG9", STRANGER, HOTLINE)
    await ivr.menu("CG9", "main", digits="1")
    locked = (await ivr.menu("CG9", "order_no", digits="2026112300000001#")).instruction
    assert locked["menu"] == "main" and "次数过多" in locked["prompt"]
    assert "顺丰速运" not in locked["prompt"]
    # and 0 still reaches a person
    assert (await ivr.menu("CG9", "main", digits="0")).instruction["action"] == "enqueue"


async def test_zero_always_reaches_an_agent_and_misses_hand_over(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    await ivr.incoming("CA4", STRANGER, HOTLINE)
    await ivr.menu("CA4", "main", digits="1")
    out = (await ivr.menu("CA4", "order_no", digits="0")).instruction
    assert out["action"] == "enqueue" and out["queue_id"] == "phone"

    await ivr.incoming("CA5", STRANGER, HOTLINE)
    first = (await ivr.menu("CA5", "main", digits="7")).instruction
    assert first["action"] == "gather" and first["prompt"].startswith("输入有误")
    assert (await ivr.menu("CA5", "main", digits="")).instruction["action"] == "gather"
    third = (await ivr.menu("CA5", "main", speech="嗯……")).instruction
    assert third["action"] == "enqueue"  # never trapped: three misses and a person takes over


async def test_signatures_unsigned_altered_stale_replayed_refused_without_effect(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    event = ivr.event("call.incoming", "CA6", caller=ZHANG_SAN, dialled=DIRECT)
    body = json.dumps(event).encode()

    unsigned = await ivr.send(event, headers={"Content-Type": "application/json"})
    assert (unsigned.status, unsigned.error_code) == (401, "signature_invalid")
    altered = await ivr.send(event, headers=ivr.sign(body), body=body.replace(b"CA6", b"CA7"))
    assert (altered.status, altered.error_code) == (401, "signature_invalid")
    wrong_key = await ivr.send(event, headers={**ivr.sign(body), "X-Contactd-Signature": "v1=00"})
    assert wrong_key.error_code == "signature_invalid"
    for skew in (-301, 301):
        stale = await ivr.send(event, headers=ivr.sign(body, int(time.time()) + skew))
        assert (stale.status, stale.error_code) == (401, "signature_stale")
    assert await _sessions_of(voice, ZHANG_SAN) == []
    assert (await ivr.waiting("CA6")).error_code == "unknown_call"  # no call was created

    headers = ivr.sign(body)
    accepted = await ivr.send(event, headers=headers, body=body)
    assert accepted.status == 200
    replay = await ivr.send(event, headers=headers, body=body)
    assert (replay.status, replay.error_code) == (401, "replayed")
    assert len(await _sessions_of(voice, ZHANG_SAN)) == 1

    # a key being rotated out still signs valid requests
    rotated = ivr.event("call.waiting", "CA6")
    raw = json.dumps(rotated).encode()
    ok = await ivr.send(rotated, headers=ivr.sign(body=raw) | _signed_with(OLD_SECRET, raw))
    assert ok.status == 200 and ok.instruction["action"] == "enqueue"


def _signed_with(secret: str, raw: bytes) -> dict[str, str]:
    from contactd.channels.ivr.signing import signed_headers

    return signed_headers(secret, int(time.time()), raw)


async def test_retried_event_has_one_effect_and_the_same_answer(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    event = ivr.event("call.incoming", "CA8", caller=ZHANG_SAN, dialled=DIRECT)
    first = await ivr.send(event)
    again = await ivr.retry(event, 1)
    assert first.status == again.status == 200
    assert again.body == first.body and again.repeated and not first.repeated
    # several copies at once, e.g. from a platform retrying across our nodes
    other = ivr.event("call.incoming", "CA9", caller=ZHANG_SAN, dialled=DIRECT)
    replies = await asyncio.gather(*(ivr.retry(other, n) for n in range(6)))
    assert {json.dumps(r.body, sort_keys=True) for r in replies} == {
        json.dumps(replies[0].body, sort_keys=True)
    }
    assert sum(not r.repeated for r in replies) == 1
    sessions = await _sessions_of(voice, ZHANG_SAN)
    assert len(sessions) == 2
    status, snap = await voice.rest("/api/v1/queues/phone", "super1")
    assert status == 200 and snap["waiting"] == 2

    async with voice.http.get(voice.base + "/metrics") as r:
        metrics = await r.text()
    ivr_events = 'contactd_webhook_events_total{result="%s",source="ivr",type="call.incoming"}'
    assert ivr_events % "enqueue" + " 2.0" in metrics
    assert ivr_events % "repeat" + " 6.0" in metrics
    reused = await ivr.send({**event, "caller": "13900000000"})
    assert (reused.status, reused.error_code) == (409, "event_conflict")
    ended = ivr.event("call.ended", "CA8")
    assert (await ivr.send(ended)).instruction == (await ivr.retry(ended, 1)).instruction
    assert len(await _calls(voice)) == 1


async def test_a_call_announced_again_under_new_event_ids_is_queued_once(
    make_voice: MakeVoice,
) -> None:
    """A platform that announces one call several times (each time a new event id), at
    once: one session and one queued call, whichever announcement creates it."""
    voice = await make_voice()
    ivr = voice.ivr
    events = [
        ivr.event("call.incoming", "CA30", caller=ZHANG_SAN, dialled=DIRECT) for _ in range(5)
    ]
    replies = await asyncio.gather(*(ivr.send(e) for e in events))
    assert all(r.status == 200 and not r.repeated for r in replies)
    queued = [r.instruction for r in replies if r.instruction["action"] == "enqueue"]
    assert queued and len({q["session_id"] for q in queued}) == 1
    sessions = await _sessions_of(voice, ZHANG_SAN)
    assert [s["id"] for s in sessions] == [queued[0]["session_id"]]
    status, snap = await voice.rest("/api/v1/queues/phone", "super1")
    assert status == 200 and snap["waiting"] == 1
    # the call goes on: a later announcement, once it is queued, says the same
    later = await ivr.send(ivr.event("call.incoming", "CA30", caller=ZHANG_SAN, dialled=DIRECT))
    assert later.instruction["action"] == "enqueue"
    assert later.instruction["session_id"] == queued[0]["session_id"]


async def test_service_numbers_follow_the_calls_without_gaps(make_voice: MakeVoice) -> None:
    """A call straight to a queue takes its service number with its claim; a burst of calls
    gets consecutive numbers, a call announced again takes none, and a caller in the
    self-service menu takes one only when they ask for an agent."""
    voice = await make_voice()
    ivr = voice.ivr

    def seq(session_id: str) -> int:
        assert session_id.startswith("S") and session_id[9] == "-"
        return int(session_id[10:])

    burst = await asyncio.gather(*(ivr.incoming(f"CA6{i}", STRANGER, DIRECT) for i in range(8)))
    numbers = sorted(seq(r.instruction["session_id"]) for r in burst)
    assert numbers == list(range(numbers[0], numbers[0] + 8))
    again = await asyncio.gather(
        *(
            ivr.send(ivr.event("call.incoming", "CA60", caller=STRANGER, dialled=DIRECT))
            for _ in range(3)
        )
    )
    assert {seq(r.instruction["session_id"]) for r in again} <= set(numbers)
    await ivr.incoming("CA70", STRANGER, HOTLINE)  # the menu: no session yet
    assert (await ivr.menu("CA70", "main", digits="1")).instruction["action"] == "gather"
    direct = (await ivr.incoming("CA71", STRANGER, DIRECT)).instruction
    assert seq(direct["session_id"]) == numbers[-1] + 1
    asked = (await ivr.menu("CA70", "order_no", digits="0")).instruction
    assert asked["action"] == "enqueue" and seq(asked["session_id"]) == numbers[-1] + 2


async def test_abandon_while_offered_withdraws_the_offer_at_once(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    agent = await voice.voice_agent("agent1", ["phone"])
    sid = (await voice.ivr.incoming("CA10", STRANGER, DIRECT)).instruction["session_id"]
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    mark = agent.mark()
    assert (await voice.ivr.abandoned("CA10")).instruction == {"action": "hangup"}
    revoked = await agent.wait("offer.revoked", since=mark)
    assert revoked["offer_id"] == offer["offer_id"]
    assert await agent.error("offer.accept", {"offer_id": offer["offer_id"]}) in {
        "offer_not_found",
        "offer_expired",
        "contact_finished",
    }
    session = (await voice.session(sid))["session"]
    assert session["state"] == "ended" and session["end_reason"] == "abandoned_in_queue"
    [call] = await _calls(voice)
    assert call["outcome"] == "abandoned"


async def test_a_call_and_a_chat_compete_for_one_agent(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    agent = await voice.voice_agent("agent1", ["sales", "phone"], chat=2)
    sid = (await voice.ivr.incoming("CA11", ZHANG_SAN, DIRECT)).instruction["session_id"]
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    # on a call: no new chat (routing.chat_during_voice is off), and no second call
    customer = await voice.customer()
    chat = await voice.start(customer, queue_id="sales")
    assert chat["state"] == "queued"
    second = (await voice.ivr.incoming("CA12", STRANGER, DIRECT)).instruction
    assert second["action"] == "enqueue" and second["position"] == 0
    _, snap = await voice.rest("/api/v1/queues/sales", "super1")
    assert snap["waiting"] == 1
    # the call ends: the waiting chat (first in line) is offered, and the second call
    mark = agent.mark()
    await voice.ivr.answered("CA11")
    await voice.ivr.ended("CA11")
    await agent.wait(
        "offer", lambda d: d["session"]["session_id"] == chat["session_id"], since=mark
    )
    await agent.wait(
        "offer", lambda d: d["session"]["session_id"] == second["session_id"], since=mark
    )


async def test_a_busy_line_takes_a_voicemail_that_becomes_a_callback(make_voice: MakeVoice) -> None:
    voice = await make_voice(ivr={"numbers": {DIRECT: "tiny"}})
    ivr = voice.ivr
    assert (await ivr.incoming("CA13", ZHANG_SAN, DIRECT)).instruction["action"] == "enqueue"
    full = (await ivr.incoming("CA14", STRANGER, DIRECT)).instruction
    assert full["action"] == "voicemail" and "线路繁忙" in full["text"]
    assert full["max_length_s"] == 120
    # it never entered the queue; its session records a call asked for a message
    [busy] = await _sessions_of(voice, STRANGER)
    assert busy["state"] == "ended" and busy["end_reason"] == "left_message"
    _, snap = await voice.rest("/api/v1/queues/tiny", "super1")
    assert snap["waiting"] == 1
    again = (await ivr.waiting("CA14")).instruction  # a repeated question, the same request
    assert again["action"] == "voicemail" and "线路繁忙" in again["text"]
    thanks = (await ivr.recorded("CA14", "https://rec.example/1.wav", 17)).instruction
    assert thanks["action"] == "say" and "留言" in thanks["text"]
    await ivr.recorded("CA14", "https://rec.example/1.wav", 17)  # another event: same callback
    await ivr.ended("CA14")

    status, page = await voice.rest("/api/v1/ivr/callbacks?state=open", "super1")
    assert status == 200
    [cb] = page["items"]
    assert cb["caller"] == STRANGER and cb["reason"] == "queue_full"
    assert cb["session_id"] == busy["id"]
    assert cb["recording_url"] == "https://rec.example/1.wav" and cb["recording_s"] == 17
    assert (await voice.rest("/api/v1/ivr/callbacks", "agent1"))[0] == 403
    token = await voice.token("super1")
    async with voice.http.post(
        f"{voice.base}/api/v1/ivr/callbacks/{cb['id']}/done",
        headers={"Authorization": f"Bearer {token}"},
    ) as r:
        assert r.status == 200 and (await r.json())["state"] == "done"
    [entry] = await voice.app[AUDIT].query(action="ivr.callback_done")
    assert entry.actor_name == "super1" and entry.target_id == str(cb["id"])
    [call] = [c for c in await _calls(voice) if c["call_id"] == "CA14"]
    assert call["outcome"] == "voicemail"


async def test_malformed_events_are_refused_and_change_nothing(make_voice: MakeVoice) -> None:
    voice = await make_voice()
    ivr = voice.ivr
    raw = b"{not json"
    bad = await ivr.send({}, headers=ivr.sign(raw), body=raw)
    assert (bad.status, bad.error_code) == (400, "bad_request")
    for event in (
        {"id": "x1", "type": "call.exploded", "call_id": "CA15"},
        {"id": "x2", "type": "call.incoming", "call_id": "CA15", "caller": "abc", "dialled": "1"},
        {"id": "x3", "type": "call.incoming", "call_id": "CA 15", "caller": "1", "dialled": "1"},
        {"id": "x4", "type": "call.menu", "call_id": "CA15", "menu": "main", "extra": 1},
    ):
        reply = await ivr.send(event)
        assert (reply.status, reply.error_code) == (422, "validation_failed"), event
    unknown = await ivr.menu("CA404", "main", digits="1")
    assert (unknown.status, unknown.error_code) == (404, "unknown_call")
    text = json.dumps(ivr.event("call.waiting", "CA15")).encode()
    async with voice.http.post(
        voice.base + "/ivr/v1/events",
        data=text,
        headers={**ivr.sign(text), "Content-Type": "text/plain"},
    ) as r:
        assert r.status == 415
    assert await _calls(voice) == []


async def test_webhooks_are_off_until_a_secret_is_configured(make_voice: MakeVoice) -> None:
    voice = await make_voice(ivr={"secrets": []})
    reply = await voice.ivr.incoming("CA16", ZHANG_SAN, DIRECT)
    assert (reply.status, reply.error_code) == (503, "ivr_not_configured")
    await wait_for(lambda: True)


async def test_the_same_event_on_two_nodes_has_one_effect(
    make_voice: MakeVoice, aiohttp_server: Any
) -> None:
    """Two app instances (as two processes: their own Redis clients, engines and caches)
    sharing the site's Redis and database get the same event at once."""
    one = await make_voice()
    other = await aiohttp_server(create_app(one.app[SETTINGS]))
    ivr_b = IvrClient(f"http://{other.host}:{other.port}", SECRET, one.http)
    event = one.ivr.event("call.incoming", "CA20", caller=ZHANG_SAN, dialled=DIRECT)
    nodes = (one.ivr, ivr_b)
    replies = await asyncio.gather(*(nodes[n % 2].retry(event, n) for n in range(8)))
    assert len({json.dumps(r.body, sort_keys=True) for r in replies}) == 1
    assert sum(not r.repeated for r in replies) == 1
    assert len(await _sessions_of(one, ZHANG_SAN)) == 1
    # and the call goes on wherever its next event lands
    assert (await ivr_b.waiting("CA20")).instruction["action"] == "enqueue"
    assert (await one.ivr.abandoned("CA20")).instruction == {"action": "hangup"}
    assert (await ivr_b.waiting("CA20")).instruction == {"action": "hangup"}


async def test_a_caller_who_waits_too_long_leaves_a_message(make_voice: MakeVoice) -> None:
    voice = await make_voice(ivr={"numbers": {DIRECT: "patient"}})
    ivr = voice.ivr
    sid = (await ivr.incoming("CA21", STRANGER, DIRECT)).instruction["session_id"]
    # nobody answers; the queue's max_wait_s (0.3 s) sends the caller to leave a message
    session = await wait_for_session(voice, sid, lambda s: s["state"] == "ended")
    assert session["end_reason"] == "left_message"
    leave = (await ivr.waiting("CA21")).instruction
    assert leave["action"] == "voicemail" and "久等" in leave["text"]
    await ivr.recorded("CA21", "https://rec.example/2.wav", 30)
    _, page = await voice.rest("/api/v1/ivr/callbacks", "super1")
    [cb] = page["items"]
    assert cb["reason"] == "overflow" and cb["session_id"] == sid


async def wait_for_session(voice: Voice, sid: str, pred: Any) -> Payload:
    deadline = time.monotonic() + 10
    while True:
        session: Payload = (await voice.session(sid))["session"]
        if pred(session):
            return session
        assert time.monotonic() < deadline, f"session {sid} stayed {session['state']}"
        await asyncio.sleep(0.05)


async def test_with_chat_during_voice_an_agent_on_a_call_still_gets_chats(
    make_voice: MakeVoice,
) -> None:
    voice = await make_voice(routing={"chat_during_voice": True})
    agent = await voice.voice_agent("agent1", ["sales", "phone"], chat=2)
    sid = (await voice.ivr.incoming("CA22", ZHANG_SAN, DIRECT)).instruction["session_id"]
    offer = await agent.wait("offer", lambda d: d["session"]["session_id"] == sid)
    await agent.ok("offer.accept", {"offer_id": offer["offer_id"]})
    chat = await voice.start(await voice.customer(), queue_id="sales")
    await agent.wait("offer", lambda d: d["session"]["session_id"] == chat["session_id"])
    # but never a second call
    second = (await voice.ivr.incoming("CA23", STRANGER, DIRECT)).instruction
    assert second["action"] == "enqueue"
    _, snap = await voice.rest("/api/v1/queues/phone", "super1")
    assert snap["waiting"] == 1


async def test_the_scripted_platform_forgets_signatures_once_they_could_only_be_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long-running simulator or load generator keeps only the signatures contactd could
    still take for a replay, not every one it ever made."""
    import aiohttp

    from contactd.channels.ivr import client as ivr_client

    now = [1000.0]
    monkeypatch.setattr(ivr_client.time, "monotonic", lambda: now[0])
    async with aiohttp.ClientSession() as http:
        platform = ivr_client.IvrClient("http://127.0.0.1:9", "s", http)
        for n in range(50):
            platform.sign(f"event {n}".encode(), 1_700_000_000 + n)
        assert len(platform._signed) == 50
        now[0] += ivr_client.REMEMBER_SIGNED_S + 1
        platform.sign(b"a later event", 1_700_001_000)
        assert list(platform._signed) == [
            (ivr_client.hashlib.sha256(b"a later event").digest(), 1_700_001_000)
        ]
