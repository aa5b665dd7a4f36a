"""A phone call in the agent workspace, in a real browser: a scripted IVR (signed webhooks)
places a call that picks "0 for an agent", the call is offered beside chats with the
caller's screen-pop, accepted, connected by the IVR, ended by the agent, and recorded."""

from __future__ import annotations

import json
import re
import secrets
import time
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from contactd.channels.ivr.signing import signed_headers
from tests.browser.conftest import Pages, Server
from tests.browser.test_chat_pages import go_available, sign_in

SECRET = "browser-ivr-secret"
CALLER = "13812341234"  # 张三 (u1001) in the demo directory


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"CONTACTD_IVR__SECRETS": json.dumps([SECRET])}


def ivr(server: Server, step: str, call_id: str, **fields: Any) -> dict[str, Any]:
    """One signed IVR event, posted as an IVR platform would (docs/protocol.md)."""
    body = json.dumps({"id": secrets.token_hex(8), "type": step, "call_id": call_id, **fields})
    raw = body.encode()
    req = urllib.request.Request(
        server.url + "/ivr/v1/events",
        data=raw,
        method="POST",
        headers=signed_headers(SECRET, int(time.time()), raw),
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        instruction: dict[str, Any] = json.loads(resp.read())["instruction"]
    return instruction


def test_a_call_is_offered_accepted_connected_ended_and_recorded(
    pages: Pages, server: Server
) -> None:
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)

    call_id = f"CA{int(time.time() * 1000)}"
    menu = ivr(server, "call.incoming", call_id, caller=CALLER, dialled="4008001234")
    assert menu["action"] == "gather" and menu["prompt"].startswith("张三您好")
    queued = ivr(server, "call.menu", call_id, menu="main", digits="0")
    assert queued["action"] == "enqueue" and queued["queue_id"] == "hotline"
    session_id = queued["session_id"]

    offer = agent.get_by_test_id("offer-card")
    expect(offer).to_have_count(1)
    expect(offer).to_have_attribute("data-channel", "voice")
    expect(offer).to_contain_text("来电")
    expect(offer.get_by_test_id("offer-caller")).to_have_text("来电号码 138****1234")
    expect(offer.get_by_test_id("offer-screen-pop")).to_contain_text("张三")
    offer.get_by_test_id("offer-accept").click()
    expect(offer).to_have_count(0)
    expect(agent.get_by_test_id("conv-session-id")).to_have_text(session_id)
    panel = agent.get_by_test_id("call-panel")
    expect(panel).to_be_visible()
    expect(agent.get_by_test_id("call-state")).to_contain_text("正在接通")
    expect(agent.get_by_test_id("composer-input")).to_be_hidden()
    # the IVR log reached the agent with the call
    expect(agent.get_by_test_id("messages")).to_contain_text("IVR")

    connect = ivr(server, "call.waiting", call_id)
    assert connect["action"] == "connect" and connect["agent_id"] == "agent1"
    ivr(server, "call.answered", call_id)
    expect(agent.get_by_test_id("call-state")).to_contain_text("已接通")
    expect(agent.get_by_test_id("call-timer")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))

    panel.get_by_test_id("call-end").click()
    dialog = agent.get_by_test_id("end-dialog")
    dialog.get_by_test_id("end-disposition").select_option("answered")
    dialog.get_by_test_id("end-submit").click()
    expect(agent.get_by_test_id("call-state")).to_contain_text("通话已结束")
    expect(agent.get_by_test_id("wrapup-banner")).to_be_visible()
    assert ivr(server, "call.waiting", call_id)["action"] == "say"  # the IVR says goodbye
    assert ivr(server, "call.ended", call_id) == {"action": "hangup"}
    agent.get_by_test_id("wrapup-done").click()
    expect(agent.get_by_test_id("session-tab")).to_have_count(0)
    expect(agent.get_by_test_id("agent-state")).to_contain_text("在线")

    record = server.api("GET", f"/api/v1/sessions/{session_id}", token=server.token("admin"))
    session = record["session"]
    assert session["channel"] == "voice" and session["state"] == "ended"
    assert session["agents"] == ["agent1"] and session["disposition"] == "answered"
    assert session["customer_id"] == "u1001" and session["customer_phone"] == CALLER
    assert pages.js_errors() == []
