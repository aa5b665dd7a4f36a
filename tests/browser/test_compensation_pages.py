"""The compensation path in a real browser (the issue's done-when): an agent turns a chat
into a compensation order, a reviewer (L1) and finance (L2) approve it on the review
page, the payout lands once in the ledger (finance view), and the customer's widget
shows "已到账"."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import DEMO_PASSWORD, Pages, Server
from tests.browser.test_chat_pages import PNG, accept_offer, go_available, sign_in, start_chat

ORDER_NO = "O2026112300000001"  # u1001 张三's earphones, ¥199.00


def identified_customer(pages: Pages, server: Server) -> Page:
    customer = pages.identified("customer")
    start_chat(customer, question="耳机左边没声音，能补偿一下吗？")
    return customer


def staff_page(pages: Pages, name: str, path: str, username: str) -> Page:
    page = pages.new(name)
    page.goto(path)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("me")).to_have_text(username)
    return page


def test_chat_to_compensation_reviewed_paid_once_and_shown_to_the_customer(
    pages: Pages, server: Server
) -> None:
    customer = identified_customer(pages, server)
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    session_id = accept_offer(agent)
    # the customer sends a photo of the fault: evidence for the order
    customer.locator('input[type="file"]').set_input_files(
        files=[{"name": "earbud.png", "mimeType": "image/png", "buffer": PNG}]
    )
    expect(agent.locator("#messages li.msg.customer img")).to_have_count(1)

    # the agent opens the form from the chat: customer and order come from the session
    agent.get_by_test_id("open-compensation").click()
    form = agent.get_by_test_id("comp-dialog")
    expect(form.get_by_test_id("comp-customer")).to_contain_text("张三")
    expect(form.get_by_test_id("comp-customer")).to_contain_text("138****1234")
    expect(form.get_by_test_id("comp-order")).to_have_value(ORDER_NO)
    form.get_by_test_id("comp-item").first.check()
    form.get_by_test_id("comp-scene").select_option("defect")
    form.get_by_test_id("comp-asset").select_option("balance")
    form.get_by_test_id("comp-calc").click()  # the calculator: 30% of ¥199.00
    expect(form.get_by_test_id("comp-amount")).to_have_value("59.70")
    form.get_by_test_id("comp-amount").fill("150")  # above ¥100: finance must approve too
    form.get_by_test_id("comp-reason").fill("耳机左耳无声，客户不退货，补偿余额")
    expect(form.get_by_test_id("comp-evidence").locator("input:checked")).to_have_count(1)
    form.get_by_test_id("comp-submit").click()
    expect(agent.get_by_test_id("toast").filter(has_text="已提交")).to_be_visible()
    expect(form).to_have_count(0)
    token = server.token("finance1")
    [order] = server.api("GET", f"/api/v1/compensations?session_id={session_id}", token=token)[
        "items"
    ]
    assert (order["amount"], order["customer_id"], order["order_no"]) == (15_000, "u1001", ORDER_NO)
    assert order["needs_l1"] and order["needs_l2"]
    [photo] = order["attachments"]
    assert photo["name"] == "earbud.png" and "/api/v1/im/attachments/" in photo["url"]

    # the reviewer (L1) approves on the review page
    reviewer = staff_page(pages, "reviewer", "/review", "review1")
    row = reviewer.locator(f'[data-testid="comp-row"][data-id="{order["id"]}"]')
    expect(row.get_by_test_id("row-stage")).to_contain_text("一级")
    row.locator("td.mono").click()  # the details: the photo is there to look at
    expect(reviewer.get_by_test_id("comp-attachments").get_by_role("link")).to_have_text(
        "earbud.png"
    )
    row.get_by_test_id("row-approve").click()
    expect(row.get_by_test_id("row-stage")).to_contain_text("二级")
    expect(row.get_by_test_id("row-approve")).to_have_count(0)  # L2 is not the reviewer's
    expect(agent.get_by_test_id("toast").filter(has_text="等待财务审核")).to_be_visible()

    # finance (L2) follows the link to what waits for them and approves
    finance = staff_page(pages, "finance", "/finance", "finance1")
    expect(finance.get_by_test_id("l2-count")).to_have_text("1")
    finance.get_by_test_id("to-l2").click()
    expect(finance).to_have_url(re.compile(r"/review\?status=pending_review&stage=l2"))
    row = finance.locator(f'[data-testid="comp-row"][data-id="{order["id"]}"]')
    row.get_by_test_id("row-select").check()
    expect(finance.get_by_test_id("selected-count")).to_have_text("1")
    finance.get_by_test_id("batch-approve").click()
    expect(finance.get_by_test_id("toast").filter(has_text="成功 1 单")).to_be_visible()

    # the payout lands: the customer sees it in the widget...
    notice = customer.get_by_test_id("cd-compensation")
    expect(notice).to_have_text("赔付 ¥150.00（余额）已到账")
    expect(notice).to_have_attribute("data-status", "paid")
    expect(agent.get_by_test_id("toast").filter(has_text="已发放到账")).to_be_visible()
    # a customer who comes back later still sees it (read when the widget reconnects)
    customer.reload()
    expect(customer.get_by_test_id("cd-compensation")).to_have_count(1)
    expect(customer.get_by_test_id("cd-compensation")).to_have_text("赔付 ¥150.00（余额）已到账")
    # ...and finance sees it paid, once, with a balanced ledger
    finance.goto("/finance")
    payout = finance.locator(f'[data-testid="payout-row"][data-compensation="{order["id"]}"]')
    expect(payout.get_by_test_id("payout-state")).to_have_text("已到账")
    expect(finance.get_by_test_id("reconciliation")).to_contain_text("平衡")
    account = server.api("GET", "/api/v1/ledger/accounts/u1001", token=token)
    assert account["balances"]["available"] == 15_000
    assert len(account["journal"]) == 1
    paid = server.api("GET", f"/api/v1/compensations/{order['id']}", token=token)
    assert (paid["status"], paid["l1_by"], paid["l2_by"]) == ("paid", "review1", "finance1")
    assert pages.js_errors() == []


def test_the_reviewer_sees_refusals_per_order_in_a_batch(pages: Pages, server: Server) -> None:
    token = server.token("agent3")
    body = {
        "customer_phone": "13812341234",
        "order_no": ORDER_NO,
        "scene": "late",
        "asset_type": "coupon",
        "amount": 1_000,
        "reason": "配送超时",
    }
    first = server.api("POST", "/api/v1/compensations", body, token=token)
    second = server.api("POST", "/api/v1/compensations", body, token=token)
    reviewer = staff_page(pages, "reviewer", "/review?creator=agent3", "review1")
    expect(reviewer.get_by_test_id("comp-row")).to_have_count(2)
    # someone else rejects the first meanwhile: the reviewer's copy is now stale
    server.api(
        "POST",
        f"/api/v1/compensations/{first['id']}/reject",
        {"version": 1, "comment": "重复"},
        token=server.token("super1"),
    )
    reviewer.get_by_test_id("select-all").check()
    reviewer.get_by_test_id("batch-reject").click()
    reviewer.get_by_test_id("reject-comment").fill("请补充物流截图")
    reviewer.get_by_test_id("reject-submit").click()
    expect(reviewer.get_by_test_id("toast").filter(has_text="失败 1 单")).to_be_visible()
    second_row = reviewer.locator(f'[data-testid="comp-row"][data-id="{second["id"]}"]')
    expect(second_row.get_by_test_id("row-status")).to_have_text("审核未通过")
    reviewer.get_by_test_id("filter-status").select_option("rejected")
    reviewer.get_by_test_id("filter-apply").click()
    expect(reviewer.get_by_test_id("comp-row")).to_have_count(2)
    second_row.locator("td.mono").click()
    expect(reviewer.get_by_test_id("comp-detail")).to_contain_text("请补充物流截图")
    expect(reviewer.get_by_test_id("comp-history")).to_contain_text("rejected")
    assert pages.js_errors() == []
