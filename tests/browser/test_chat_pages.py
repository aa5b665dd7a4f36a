"""The chat from both sides, in a real browser: the widget on /demo and the agent workspace
on /agent talking through a real contactd server (docs/protocol.md)."""

from __future__ import annotations

import base64
import re
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import DEMO_PASSWORD, Pages, Server

ORDER_NO = "O2026112300000001"
QUESTION = "耳机左边没有声音，想换一副"
# a 1×1 PNG, as a phone camera would send a photo of the broken earbud
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


# --- the customer's side -----------------------------------------------------------------


def start_chat(page: Page, path: str = "/demo", question: str = QUESTION) -> None:
    page.goto(path)
    page.get_by_test_id("cd-launcher").click()
    expect(page.get_by_test_id("cd-start-view")).to_be_visible()
    page.get_by_test_id("cd-question").fill(question)
    page.get_by_test_id("cd-start").click()
    expect(page.get_by_test_id("cd-queue")).to_be_visible()
    expect(page.get_by_test_id("cd-queue-position")).to_have_text(
        re.compile(r"马上为您接入|您前面还有 \d+ 位|You are next|\d+ ahead of you")
    )


def agent_texts(page: Page) -> Any:
    """What the agent said, as the customer's widget shows it."""
    return page.locator('[data-testid="cd-message"][data-sender="agent"] [data-testid="cd-text"]')


# --- the agent's side --------------------------------------------------------------------


def sign_in(page: Page, username: str) -> None:
    page.goto("/agent")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("me")).to_have_text(username)
    expect(page.get_by_test_id("connection")).to_have_text("已连接")


def go_available(page: Page) -> None:
    page.get_by_test_id("state-available").click()
    expect(page.get_by_test_id("agent-state")).to_contain_text("在线")
    expect(page.get_by_test_id("agent-load")).to_contain_text("/ 3")


def customer_texts(page: Page) -> Any:
    """What the customer said, as the agent's workspace shows it."""
    return page.locator('#messages li.msg.customer [data-testid="message-text"]')


def send_as_agent(page: Page, text: str) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("composer-input").press("Enter")
    expect(page.locator("#messages li.msg.pending")).to_have_count(0)


def accept_offer(page: Page) -> str:
    offer = page.get_by_test_id("offer-card")
    expect(offer).to_have_count(1)
    session_id = offer.get_attribute("data-session-id")
    assert session_id and re.fullmatch(r"S\d{8}-\d{6}", session_id), session_id
    offer.get_by_test_id("offer-accept").click()
    expect(offer).to_have_count(0)
    expect(page.get_by_test_id("conv-session-id")).to_have_text(session_id)
    expect(page.get_by_test_id("conv-state")).to_have_text("接待中")
    return session_id


def chat_in_progress(pages: Pages) -> tuple[Page, Page, str]:
    customer = pages.new("customer")
    start_chat(customer)
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    session_id = accept_offer(agent)
    expect(customer.get_by_test_id("cd-status")).to_contain_text("客服一 Agent One")
    return customer, agent, session_id


# --- tests -------------------------------------------------------------------------------


def test_customer_and_agent_chat_with_screen_pop_and_typing(pages: Pages) -> None:
    customer = pages.new("customer")
    customer.goto("/demo")
    expect(customer.get_by_test_id("order-summary")).to_contain_text(ORDER_NO)
    # the host page's loud button style does not reach into the widget
    expect(customer.get_by_test_id("cd-launcher")).to_have_css(
        "background-color", "rgb(22, 98, 214)"
    )
    start_chat(customer)
    expect(customer.get_by_test_id("cd-order-chip")).to_have_count(1)

    agent = pages.new("agent")
    sign_in(agent, "agent1")
    expect(agent.get_by_test_id("agent-state")).to_contain_text("离线")
    go_available(agent)

    offer = agent.get_by_test_id("offer-card")
    expect(offer).to_be_visible()
    expect(offer.get_by_test_id("offer-countdown")).to_have_text(re.compile(r"^\d+s$"))
    pop = offer.get_by_test_id("offer-screen-pop")
    # an anonymous visitor: no name, no phone, but the order they asked from and the question
    expect(pop.get_by_test_id("customer-name")).to_have_text("访客 Visitor")
    expect(pop.get_by_test_id("customer-phone")).to_have_count(0)
    expect(pop).not_to_contain_text("****")
    expect(pop.get_by_test_id("pop-order-no")).to_have_text(ORDER_NO)
    expect(pop.get_by_test_id("entry-point")).to_have_text("订单页")
    expect(pop.get_by_test_id("pop-transcript")).to_contain_text(QUESTION)
    expect(pop.get_by_test_id("pop-order").first).to_contain_text("已发货")

    session_id = accept_offer(agent)
    panel = agent.get_by_test_id("customer-panel")
    expect(panel.get_by_test_id("customer-name")).to_have_text("访客 Visitor")
    expect(panel.get_by_test_id("customer-phone")).to_have_count(0)
    expect(panel.get_by_test_id("pop-logistics").first).to_contain_text("顺丰")
    tab = agent.get_by_test_id("session-tab")
    expect(tab).to_have_count(1)
    expect(tab).to_have_attribute("data-session-id", session_id)
    expect(customer_texts(agent)).to_have_text([QUESTION])

    # the customer sees the agent join, and no longer a queue
    expect(customer.get_by_test_id("cd-status")).to_contain_text("客服一 Agent One")
    expect(customer.get_by_test_id("cd-queue")).to_be_hidden()

    # agent → customer, with the typing indicator first
    agent.get_by_test_id("composer-input").press_sequentially("您好，我是客服一", delay=30)
    expect(customer.get_by_test_id("cd-typing")).to_be_visible()
    expect(customer.get_by_test_id("cd-typing")).to_contain_text("正在输入")
    agent.get_by_test_id("composer-input").press("Enter")
    expect(agent_texts(customer)).to_have_text(["您好，我是客服一"])
    expect(customer.get_by_test_id("cd-typing")).to_be_hidden()

    # customer → agent, with the typing indicator first
    customer.get_by_test_id("cd-input").press_sequentially("好的，订单号在上面", delay=30)
    expect(agent.get_by_test_id("customer-typing")).to_be_visible()
    customer.get_by_test_id("cd-send").click()
    expect(customer_texts(agent)).to_have_text([QUESTION, "好的，订单号在上面"])
    expect(agent.get_by_test_id("customer-typing")).to_be_hidden()
    # acknowledged: the customer's own message carries its seq, nothing is left pending
    mine = customer.locator('[data-testid="cd-message"][data-sender="customer"]')
    expect(mine.last).to_have_attribute("data-seq", re.compile(r"^\d+$"))
    expect(customer.locator("li.msg.pending")).to_have_count(0)

    # an order card from the widget reaches the agent as a card
    customer.get_by_test_id("cd-send-order").click()
    expect(agent.locator("#messages").get_by_test_id("order-card")).to_contain_text(ORDER_NO)

    send_as_agent(agent, "已为您查询到订单")
    expect(agent_texts(customer)).to_have_text(["您好，我是客服一", "已为您查询到订单"])

    # a photo: uploaded over REST, sent as an image message, shown inline on both sides
    customer.locator('input[type="file"]').set_input_files(
        files=[{"name": "earbud.png", "mimeType": "image/png", "buffer": PNG}]
    )
    image = customer.get_by_test_id("cd-image")
    expect(image).to_have_count(1)
    expect(image).to_have_attribute("src", re.compile(r"/api/v1/im/attachments/"))
    expect(customer.locator("li.msg.pending")).to_have_count(0)
    agent_image = agent.locator("#messages li.msg.customer img")
    expect(agent_image).to_have_count(1)
    # loaded and decoded (decode() waits for the download and fails on a broken image)
    assert agent_image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 1
    assert pages.js_errors() == []


def test_customer_reconnects_and_gets_exactly_the_missed_messages(pages: Pages) -> None:
    customer, agent, _ = chat_in_progress(pages)
    send_as_agent(agent, "在线时的消息")
    expect(agent_texts(customer)).to_have_text(["在线时的消息"])

    customer.context.set_offline(True)
    expect(customer.get_by_test_id("cd-connection")).to_be_visible()
    missed = ["离线消息 1", "离线消息 2", "离线消息 3"]
    for text in missed:
        send_as_agent(agent, text)
    customer.wait_for_timeout(500)
    expect(agent_texts(customer)).to_have_text(["在线时的消息"])

    customer.context.set_offline(False)
    expect(customer.get_by_test_id("cd-connection")).to_be_hidden(timeout=30_000)
    expect(agent_texts(customer)).to_have_text(["在线时的消息", *missed])
    # and nothing arrives twice afterwards
    customer.wait_for_timeout(1500)
    expect(agent_texts(customer)).to_have_text(["在线时的消息", *missed])
    seqs = customer.locator('[data-testid="cd-message"]').evaluate_all(
        "els => els.map(e => Number(e.dataset.seq))"
    )
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs)), seqs

    # the conversation goes on both ways after the reconnect
    customer.get_by_test_id("cd-input").fill("我回来了")
    customer.get_by_test_id("cd-input").press("Enter")
    expect(customer_texts(agent)).to_have_text([QUESTION, "我回来了"])
    assert pages.js_errors() == []


def test_agent_ends_chat_and_customer_rates_it(pages: Pages, server: Server) -> None:
    customer, agent, session_id = chat_in_progress(pages)
    send_as_agent(agent, "还有其他问题吗？")
    expect(agent_texts(customer)).to_have_text(["还有其他问题吗？"])

    agent.get_by_test_id("end").click()
    dialog = agent.get_by_test_id("end-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_test_id("end-disposition").select_option("answered")
    dialog.get_by_test_id("end-submit").click()
    expect(dialog).to_be_hidden()
    expect(agent.get_by_test_id("wrapup-banner")).to_be_visible()
    expect(agent.get_by_test_id("conv-state")).to_have_text("整理中")
    expect(agent.get_by_test_id("composer-input")).to_be_disabled()

    # the customer gets the survey
    expect(customer.get_by_test_id("cd-status")).to_have_text("对话已结束")
    expect(customer.get_by_test_id("cd-rating")).to_be_visible()
    expect(customer.get_by_test_id("cd-input")).to_be_hidden()
    stars = customer.get_by_test_id("cd-star")
    expect(stars).to_have_count(5)
    expect(customer.get_by_test_id("cd-rating-submit")).to_be_disabled()
    stars.nth(4).click()
    expect(customer.locator(".star.on")).to_have_count(5)
    customer.get_by_test_id("cd-rating-comment").fill("很快就解决了，谢谢")
    customer.get_by_test_id("cd-rating-submit").click()
    expect(customer.get_by_test_id("cd-rating-thanks")).to_be_visible()

    # the agent finishes wrap-up and is ready for the next customer
    agent.get_by_test_id("wrapup-done").click()
    expect(agent.get_by_test_id("session-tab")).to_have_count(0)
    expect(agent.get_by_test_id("agent-state")).to_contain_text("在线")
    expect(agent.get_by_test_id("agent-load")).to_contain_text("0 / 3")

    detail = server.api("GET", f"/api/v1/sessions/{session_id}", token=server.token("admin"))
    record = detail["session"]
    assert record["state"] == "ended"
    assert record["rating"] == 5
    assert record["rating_comment"] == "很快就解决了，谢谢"
    assert record["disposition"] == "answered"

    # the same visitor comes back with a new question: agent1's offer says it was theirs
    customer.get_by_test_id("cd-new-chat").click()
    customer.get_by_test_id("cd-question").fill("还想再问一下发票的事")
    customer.get_by_test_id("cd-start").click()
    offer = agent.get_by_test_id("offer-card")
    expect(offer.get_by_test_id("offer-returning")).to_have_text("回头客 · 上次由您接待")
    expect(offer.get_by_test_id("pop-previous")).to_contain_text(session_id)
    assert pages.js_errors() == []


def test_identified_customer_screen_pop_masks_the_phone_until_unmasked(
    pages: Pages, server: Server
) -> None:
    # the host site signs its customer's identity (u1001 张三 in the demo directory) and
    # hands it to the widget in script, before the widget's tag runs
    customer = pages.identified("customer", locale="en-US")  # the widget follows the browser
    customer.goto("/demo")
    expect(customer.get_by_test_id("cd-launcher")).to_have_text("Chat with us")
    start_chat(customer, question="发票怎么开？")

    agent = pages.new("agent")
    sign_in(agent, "super1")  # a supervisor who takes chats and may see personal data
    go_available(agent)
    pop = agent.get_by_test_id("offer-card").get_by_test_id("offer-screen-pop")
    expect(pop.get_by_test_id("customer-name")).to_have_text("张三")
    expect(pop.get_by_test_id("member-level")).to_have_text("金卡会员")
    expect(pop.get_by_test_id("customer-phone")).to_have_text("138****1234")
    accept_offer(agent)

    panel = agent.get_by_test_id("customer-panel")
    expect(panel.get_by_test_id("customer-phone")).to_have_text("138****1234")
    expect(panel.get_by_test_id("pop-previous")).to_be_visible()
    panel.get_by_test_id("unmask-phone").click()
    expect(panel.get_by_test_id("customer-phone")).to_have_text("13812341234")
    expect(panel.get_by_test_id("unmask-phone")).to_have_count(0)
    expect(customer.get_by_test_id("cd-status")).to_have_text("主管 Supervisor is helping you")
    assert pages.js_errors() == []


def test_agent_reload_restores_open_chats(pages: Pages) -> None:
    customer, agent, session_id = chat_in_progress(pages)
    send_as_agent(agent, "请稍等，我查一下")
    agent.reload()
    tab = agent.get_by_test_id("session-tab")
    expect(tab).to_have_count(1)
    expect(tab).to_have_attribute("data-session-id", session_id)
    tab.click()
    expect(agent.locator("#messages li.msg.agent")).to_have_text([re.compile("请稍等，我查一下")])
    send_as_agent(agent, "查到了")
    expect(agent_texts(customer)).to_have_text(["请稍等，我查一下", "查到了"])
    assert pages.js_errors() == []


def test_transfer_to_another_agent_with_a_note(pages: Pages) -> None:
    customer, agent1, session_id = chat_in_progress(pages)
    agent2 = pages.new("agent2")
    sign_in(agent2, "agent2")
    go_available(agent2)

    agent1.get_by_test_id("transfer").click()
    dialog = agent1.get_by_test_id("transfer-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_text("转给客服").click()
    dialog.get_by_test_id("transfer-agent").fill("agent2")
    dialog.get_by_test_id("transfer-note").fill("客户要换货，已核实订单")
    dialog.get_by_test_id("transfer-submit").click()
    expect(dialog).to_be_hidden()
    expect(agent1.get_by_test_id("session-tab")).to_have_count(0)

    offer = agent2.get_by_test_id("offer-card")
    expect(offer).to_have_attribute("data-session-id", session_id)
    expect(offer.get_by_test_id("pop-transfer-note")).to_have_text("客户要换货，已核实订单")
    accept_offer(agent2)
    expect(customer.get_by_test_id("cd-status")).to_contain_text("客服二 Agent Two")
    send_as_agent(agent2, "您好，我是客服二")
    expect(agent_texts(customer)).to_have_text(["您好，我是客服二"])

    # agent1, free again, steps away for lunch
    agent1.get_by_test_id("state-away").click()
    agent1.get_by_test_id("away-menu").get_by_text("用餐").click()
    expect(agent1.get_by_test_id("agent-state")).to_contain_text("小休 · 用餐")
    expect(agent1.get_by_test_id("agent-load")).to_contain_text("0 / 3")
    assert pages.js_errors() == []
