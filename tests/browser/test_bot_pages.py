"""The bot front line in a real browser: the widget on /demo talks to the bot (chips,
answers, feedback), the customer taps "talk to a person", and the agent workspace on
/agent gets the offer with the bot transcript and the reason; then the admin FAQ page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Pages, Server
from tests.browser.test_chat_pages import accept_offer, go_available, send_as_agent, sign_in

SHIPPING_ZH = "单笔订单满 99 元包邮"
REFUND_ZH = "1-3 个工作日原路退回"
SHIPPED = "O2026112300000001"  # 张三's (u1001), on its way: no ticket type fits a refund


@pytest.fixture
def server_env() -> dict[str, str]:
    return {"CONTACTD_BOT__FIRST_QUEUES": json.dumps(["presales", "aftersales"])}


@pytest.fixture
def checked(pages: Pages) -> Iterator[Pages]:
    yield pages
    assert pages.js_errors() == []


def bot_texts(page: Page) -> object:
    return page.locator('[data-testid="cd-message"][data-sender="bot"] [data-testid="cd-text"]')


def test_bot_answers_then_hands_over_to_an_agent(checked: Pages) -> None:
    customer = checked.new("customer")
    customer.goto("/demo")
    customer.get_by_test_id("cd-launcher").click()
    customer.get_by_test_id("cd-start").click()

    # the bot greets, offers chips, and the human button is there from the start
    expect(bot_texts(customer).first).to_contain_text("转人工")
    expect(customer.get_by_test_id("cd-status")).to_have_text("智能助手为您服务")
    expect(customer.get_by_test_id("cd-bot-human")).to_be_visible()
    expect(customer.get_by_test_id("cd-queue")).to_be_hidden()
    chip = customer.get_by_test_id("cd-bot-chip").filter(has_text="运费怎么算？")
    chip.click()
    expect(bot_texts(customer).last).to_contain_text(SHIPPING_ZH)
    feedback = customer.get_by_test_id("cd-bot-feedback")
    expect(feedback).to_be_visible()
    feedback.get_by_test_id("cd-bot-helpful").click()
    expect(feedback).to_have_text("感谢反馈")
    expect(bot_texts(customer).last).to_contain_text("很高兴")

    customer.get_by_test_id("cd-input").fill("退款一般几天能到账？")
    customer.get_by_test_id("cd-input").press("Enter")
    expect(bot_texts(customer).last).to_contain_text(REFUND_ZH)

    # an agent comes online; nothing is offered while the bot has the chat
    agent = checked.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    expect(agent.get_by_test_id("offer-card")).to_have_count(0)

    customer.get_by_test_id("cd-bot-human").click()
    expect(customer.get_by_test_id("cd-bot-bar")).to_be_hidden()
    expect(customer.get_by_test_id("cd-status")).not_to_have_text("智能助手为您服务")

    offer = agent.get_by_test_id("offer-card")
    expect(offer).to_have_count(1)
    pop = offer.get_by_test_id("offer-screen-pop")
    expect(pop.get_by_test_id("pop-bot-reason")).to_have_text("客户要求转人工")
    expect(pop.get_by_test_id("pop-transcript")).to_contain_text("退款一般几天能到账？")
    expect(pop.get_by_test_id("pop-transcript")).to_contain_text(REFUND_ZH)
    accept_offer(agent)
    expect(customer.get_by_test_id("cd-status")).to_contain_text("为您服务")
    send_as_agent(agent, "您好，我来帮您看看退款进度")
    agent_line = customer.locator('[data-testid="cd-message"][data-sender="agent"]')
    expect(agent_line.last).to_contain_text("退款进度")
    # the customer's whole conversation is still on their screen, bot part included
    expect(bot_texts(customer).filter(has_text=REFUND_ZH)).to_have_count(1)

    # the knowledge-base page counts this chat as handed over on request
    admin = checked.new("admin")
    admin.goto("/admin/faq")
    admin.get_by_test_id("login-username").fill("admin")
    admin.get_by_test_id("login-password").fill("contactd-demo")
    admin.get_by_test_id("login-submit").click()
    expect(admin.get_by_test_id("stat-chats")).to_have_text("1")
    expect(admin.get_by_test_id("stat-handed")).to_have_text("1")
    expect(admin.get_by_test_id("stat-reasons")).to_have_text("客户要求 1")


def test_admin_edits_the_knowledge_base_on_its_page(checked: Pages) -> None:
    admin = checked.new("admin")
    admin.goto("/admin/faq")
    admin.get_by_test_id("login-username").fill("admin")
    admin.get_by_test_id("login-password").fill("contactd-demo")
    admin.get_by_test_id("login-submit").click()
    rows = admin.get_by_test_id("faq-row")
    expect(rows.first).to_be_visible()
    count = rows.count()

    admin.get_by_test_id("faq-new").click()
    admin.get_by_test_id("faq-question").fill("支持花呗分期吗？")
    admin.get_by_test_id("faq-variants").fill("可以分期吗\n花呗分期")
    admin.get_by_test_id("faq-answer").fill("支持花呗 3/6/12 期分期。")
    admin.get_by_test_id("faq-tags").fill("支付")
    admin.get_by_test_id("faq-save").click()
    expect(rows).to_have_count(count + 1)
    expect(rows.filter(has_text="支持花呗分期吗？")).to_have_count(1)

    # try it the way a customer would ask
    admin.get_by_test_id("faq-try").fill("能用花呗分期吗")
    admin.get_by_test_id("faq-try").press("Enter")
    expect(admin.get_by_test_id("faq-try-result")).to_contain_text("支持花呗分期吗？")

    rows.filter(has_text="支持花呗分期吗？").get_by_test_id("faq-edit").click()
    admin.get_by_test_id("faq-answer").fill("支持花呗 3/6/12/24 期分期。")
    admin.get_by_test_id("faq-save").click()
    expect(rows.filter(has_text="3/6/12/24")).to_have_count(1)

    admin.once("dialog", lambda d: d.accept())
    rows.filter(has_text="支持花呗分期吗？").get_by_test_id("faq-delete").click()
    expect(rows).to_have_count(count)


def test_english_customer_reloads_and_still_reaches_a_person(checked: Pages) -> None:
    customer = checked.new("customer", locale="en-US")
    customer.goto("/demo")
    customer.get_by_test_id("cd-launcher").click()
    customer.get_by_test_id("cd-question").fill("How much is shipping?")
    customer.get_by_test_id("cd-start").click()
    expect(bot_texts(customer).last).to_contain_text("Shipping is free on orders over ¥99")
    expect(customer.get_by_test_id("cd-status")).to_have_text("Our assistant is helping you")
    expect(customer.get_by_test_id("cd-bot-human")).to_contain_text("Talk to a person")

    # a reload (or a dropped connection) keeps the conversation, the chips and the button
    customer.reload()
    customer.get_by_test_id("cd-launcher").click()
    expect(bot_texts(customer).last).to_contain_text("Shipping is free on orders over ¥99")
    expect(customer.get_by_test_id("cd-bot-chip").first).to_be_visible()
    expect(customer.get_by_test_id("cd-bot-feedback")).to_be_visible()

    customer.get_by_test_id("cd-input").fill("I want a human please")
    customer.get_by_test_id("cd-input").press("Enter")
    expect(customer.get_by_test_id("cd-bot-bar")).to_be_hidden()
    expect(customer.get_by_test_id("cd-queue")).to_be_visible()
    expect(bot_texts(customer).last).to_contain_text("Connecting you to a person")


def test_admin_exports_and_imports_the_knowledge_base(checked: Pages, tmp_path: Path) -> None:
    admin = checked.new("admin")
    admin.goto("/admin/faq")
    admin.get_by_test_id("login-username").fill("admin")
    admin.get_by_test_id("login-password").fill("contactd-demo")
    admin.get_by_test_id("login-submit").click()
    rows = admin.get_by_test_id("faq-row")
    expect(rows.first).to_be_visible()
    count = rows.count()

    with admin.expect_download() as download:
        admin.get_by_test_id("faq-export").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert len(exported["entries"]) == count
    assert {"question", "variants", "answer", "tags", "lang"} <= set(exported["entries"][0])

    # edit one answer in the file, add one entry, import it back
    exported["entries"][0]["answer"] = "导入后的新答案"
    exported["entries"].append({"question": "可以开专票吗？", "answer": "可以，请联系客服。"})
    upload = tmp_path / "faqs.json"
    upload.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")
    admin.get_by_test_id("faq-import").set_input_files(str(upload))
    expect(admin.get_by_test_id("faq-notice")).to_contain_text(
        f"新增 1 条，更新 1 条，未变 {count - 1} 条"
    )
    expect(rows).to_have_count(count + 1)
    expect(rows.filter(has_text="导入后的新答案")).to_have_count(1)

    # a broken file changes nothing and says so
    upload.write_text('{"entries": [{"question": "x"}]}', encoding="utf-8")
    admin.get_by_test_id("faq-import").set_input_files(str(upload))
    expect(admin.get_by_test_id("faq-notice")).to_contain_text("导入失败")
    expect(rows).to_have_count(count + 1)


def test_the_desk_follows_up_a_refund_the_bot_could_not_finish(
    checked: Pages, server: Server
) -> None:
    """A refund on an order on its way: the bot records it for a person. It waits in the
    ticket desk's follow-up list until an agent marks it handled with what they did."""
    customer = checked.identified("customer")
    customer.goto("/demo")
    customer.get_by_test_id("cd-launcher").click()
    customer.get_by_test_id("cd-start").click()
    expect(bot_texts(customer).first).to_contain_text("转人工")
    for text, reply in (("申请退款", "选择"), (SHIPPED, "原因"), ("太慢了", SHIPPED)):
        said = bot_texts(customer).count()
        customer.get_by_test_id("cd-input").fill(text)
        customer.get_by_test_id("cd-input").press("Enter")
        expect(bot_texts(customer).nth(said)).to_be_visible()
        expect(bot_texts(customer).last).to_contain_text(reply)
    request_id = re.search(r"R\d{8}-[0-9A-F]{8}", bot_texts(customer).last.inner_text())
    assert request_id is not None

    desk = checked.new("desk")
    sign_in(desk, "agent1")
    desk.goto("/cases")
    nav = desk.get_by_test_id("nav-followups")
    expect(desk.locator("#count-followups")).to_have_text("1")
    nav.click()
    row = desk.get_by_test_id("followup-row")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(SHIPPED)
    expect(row).to_contain_text("机器人无法办理")
    row.click()
    detail = desk.get_by_test_id("ticket-detail")
    expect(detail).to_contain_text(request_id.group())
    expect(detail).to_contain_text("太慢了")
    detail.get_by_test_id("mark-handled").click()  # the note is required: nothing is sent
    expect(row).to_have_count(1)
    detail.get_by_test_id("handled-note").fill("已电话联系客户，拦截快递后退款")
    detail.get_by_test_id("mark-handled").click()
    expect(desk.get_by_test_id("toast").filter(has_text="已处理")).to_have_count(1)
    expect(row).to_have_count(0)
    expect(desk.locator("#count-followups")).to_have_text("0")
    expect(desk.locator("#list-empty")).to_have_text("没有待跟进的机器人请求")
    [done] = server.api(
        "GET", f"/api/v1/bot/requests?order_no={SHIPPED}", token=server.token("super1")
    )
    assert (done["status"], done["handled_by"], done["handled_note"]) == (
        "handled",
        "agent1",
        "已电话联系客户，拦截快递后退款",
    )
