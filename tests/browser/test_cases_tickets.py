"""After-sales tickets in a real browser: an agent opens a ticket from a chat, claims and
moves it on the ticket desk, the customer follows and urges it in the widget, and the
dashboard counts it."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Pages, Server
from tests.browser.test_chat_pages import PNG, accept_offer, go_available, sign_in, start_chat

ORDER_NO = "O2026112300000001"  # the demo page's order: 张三's, shipped


def identified_customer(pages: Pages, server: Server) -> Page:
    customer = pages.identified("customer")
    start_chat(customer, question="快递太慢了，能补偿一下吗？")
    return customer


def open_ticket_from_chat(agent: Page) -> str:
    agent.get_by_test_id("open-ticket").click()
    dialog = agent.get_by_test_id("ticket-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("张三")
    expect(dialog.get_by_test_id("ticket-order")).to_have_value(ORDER_NO)
    # a shipped order allows compensation or a complaint, not a refund before picking
    options = dialog.get_by_test_id("ticket-type").locator("option")
    expect(options).to_have_count(2)
    dialog.get_by_test_id("ticket-type").select_option("compensation")
    dialog.get_by_test_id("ticket-amount").fill("500")  # more than the order: refused
    dialog.get_by_test_id("ticket-reason").fill("物流延迟 3 天")
    expect(dialog.get_by_test_id("ticket-evidence").locator("img")).to_have_count(1)
    dialog.get_by_test_id("ticket-submit").click()
    expect(dialog.get_by_test_id("ticket-error")).to_contain_text("199")
    dialog.get_by_test_id("ticket-amount").fill("10")
    dialog.get_by_test_id("ticket-submit").click()
    expect(dialog).to_have_count(0)
    toast = agent.get_by_test_id("toast").filter(has_text="工单已创建")
    expect(toast).to_have_count(1)
    ticket_id = toast.inner_text().split()[-1]
    assert ticket_id.startswith("T"), ticket_id
    return ticket_id


def test_chat_to_ticket_claim_advance_and_customer_urges(pages: Pages, server: Server) -> None:
    customer = identified_customer(pages, server)
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    accept_offer(agent)
    # the customer sends a photo of the damage; the ticket takes it as evidence
    customer.locator('input[type="file"]').set_input_files(
        files=[{"name": "box.png", "mimeType": "image/png", "buffer": PNG}]
    )
    expect(agent.locator("#messages img")).to_have_count(1)
    ticket_id = open_ticket_from_chat(agent)

    # the customer sees it in the widget with the simple status
    bar = customer.get_by_test_id("cd-tickets-bar")
    expect(bar).to_contain_text("1 个处理中")
    bar.click()
    card = customer.get_by_test_id("cd-ticket")
    expect(card).to_have_attribute("data-id", ticket_id)
    expect(card.get_by_test_id("cd-ticket-status")).to_have_text("赔付审核中")
    steps = card.get_by_test_id("cd-ticket-steps").locator("li")
    expect(steps).to_have_text(["赔付审核中", "赔付审核通过", "赔付发放中", "赔付成功 已到账"])
    expect(steps.first).to_have_class("current")

    # the desk: the ticket waits in the after-sales pool; claiming moves it to my queue
    agent.goto("/cases")
    expect(agent.get_by_test_id("me")).to_have_text("agent1")
    expect(agent.get_by_test_id("desk-live")).to_be_visible()  # pushed, polled once a minute
    pool = agent.get_by_test_id("pool-aftersales")
    expect(agent.get_by_test_id("pool-count-aftersales")).to_have_text("1")
    pool.click()
    row = agent.get_by_test_id("ticket-row").filter(has_text=ticket_id)
    expect(row).to_have_count(1)
    row.click()
    detail = agent.get_by_test_id("ticket-detail")
    expect(detail.get_by_test_id("customer-status")).to_have_text("赔付审核中")
    expect(detail.get_by_test_id("ticket-attachments").locator("img")).to_have_count(1)
    expect(detail.get_by_test_id("action-approve")).to_have_count(0)  # not mine yet
    detail.get_by_test_id("claim").click()
    expect(agent.get_by_test_id("pool-count-aftersales")).to_have_text("0")
    agent.get_by_test_id("nav-mine").click()
    expect(agent.get_by_test_id("ticket-row").filter(has_text=ticket_id)).to_have_count(1)
    detail.get_by_test_id("action-approve").click()
    expect(detail.get_by_test_id("ticket-state")).to_have_text("审核通过")
    expect(detail.get_by_test_id("timeline").locator("li")).to_have_count(3)
    expect(detail.get_by_test_id("timeline")).to_contain_text("领取")

    # the widget follows live; the customer urges once, then must wait
    expect(card.get_by_test_id("cd-ticket-status")).to_have_text("赔付审核通过")
    workspace = pages.new("workspace")  # agent1's workspace, open beside the desk
    sign_in(workspace, "agent1")
    expect(workspace.get_by_test_id("open-desk")).to_have_attribute("data-live", "1")
    card.get_by_test_id("cd-urge").click()
    expect(card.get_by_test_id("cd-urge-note")).to_have_text("已提醒客服加急处理")
    expect(card.get_by_test_id("cd-urge")).to_be_disabled()
    urged = workspace.get_by_test_id("toast").filter(has_text=f"客户催单：{ticket_id}")
    expect(urged).to_have_count(1)
    expect(urged).to_contain_text("P1")
    # the desk shows it at once, without a reload (within the test's 15 s, not the poll's 60)
    expect(detail.get_by_test_id("timeline")).to_contain_text("客户催单")
    expect(agent.get_by_test_id("ticket-row").filter(has_text=ticket_id)).to_contain_text("催单")

    detail.get_by_test_id("action-start_payout").click()
    expect(detail.get_by_test_id("ticket-state")).to_have_text("赔付发放中")
    detail.get_by_test_id("action-complete_payout").click()
    expect(detail.get_by_test_id("ticket-state")).to_have_text("赔付完成")
    expect(card.get_by_test_id("cd-ticket-status")).to_have_text("赔付成功 已到账")
    expect(card.get_by_test_id("cd-urge")).to_have_count(0)
    assert pages.js_errors() == []


def test_dashboard_page_shows_the_counts(pages: Pages, server: Server) -> None:
    token = server.token("agent1")
    server.api(
        "POST",
        "/api/v1/tickets",
        {"type": "complaint", "customer_id": "u1001", "reason": "态度不好"},
        token,
    )
    page = pages.new("supervisor")
    page.goto("/dashboard")
    page.get_by_test_id("login-username").fill("super1")
    page.get_by_test_id("login-password").fill("contactd-demo")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("kpi-tickets")).to_contain_text("1")
    by_type = page.get_by_test_id("dash-by-type")
    expect(by_type.locator(".bar-row")).to_have_count(1)
    expect(by_type).to_contain_text("投诉")
    expect(page.get_by_test_id("dash-trend").locator("rect")).to_have_count(1)
    page.get_by_test_id("dash-range").select_option("7")
    expect(page.get_by_test_id("dash-by-state")).to_contain_text("待审核")
    expect(page.get_by_test_id("audit-export")).to_be_hidden()  # supervisors cannot

    # the desk finds the customer's tickets; the admin exports the audit log from the board
    page.goto("/cases")
    page.get_by_test_id("ticket-search").fill("u1001")
    page.get_by_test_id("ticket-search").press("Enter")
    expect(page.get_by_test_id("ticket-row")).to_have_count(1)
    expect(page.get_by_test_id("ticket-row")).to_contain_text("投诉")

    admin = pages.new("admin")
    admin.goto("/dashboard")
    admin.get_by_test_id("login-username").fill("admin")
    admin.get_by_test_id("login-password").fill("contactd-demo")
    admin.get_by_test_id("login-submit").click()
    with admin.expect_download() as download:
        admin.get_by_test_id("audit-export").click()
    assert download.value.suggested_filename.startswith("audit-")
    csv_text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert csv_text.startswith("id,at,actor_type")
    assert "ticket.created" in csv_text and "态度不好" in csv_text
    assert pages.js_errors() == []


def test_english_widget_shows_the_ticket_in_english(pages: Pages, server: Server) -> None:
    customer = pages.identified("customer", display_name="Zhang San", locale="en-US")
    start_chat(customer, question="My parcel is late")
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    session_id = accept_offer(agent)
    token = server.token("agent1")
    body = {"type": "compensation", "session_id": session_id, "amount": 300, "reason": "late"}
    ticket = server.api("POST", "/api/v1/tickets", body, token)["ticket"]

    bar = customer.get_by_test_id("cd-tickets-bar")
    expect(bar).to_contain_text("1 in progress")
    bar.click()
    card = customer.get_by_test_id("cd-ticket")
    expect(card.get_by_test_id("cd-ticket-status")).to_have_text("Compensation under review")
    server.api("POST", f"/api/v1/tickets/{ticket['id']}/claim", None, token)
    server.api("POST", f"/api/v1/tickets/{ticket['id']}/actions", {"action": "approve"}, token)
    expect(card.get_by_test_id("cd-ticket-status")).to_have_text("Compensation approved")
    expect(card.get_by_test_id("cd-urge")).to_have_text("Urge")
    assert pages.js_errors() == []
