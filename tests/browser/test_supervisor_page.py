"""The supervisor's live monitor in a real browser against a real server: it shows the floor
moving (a customer waiting, an agent taking the chat), alerts when a queue's longest wait
crosses the configured line, and its actions change routing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import DEMO_PASSWORD, Pages, Server
from tests.browser.test_chat_pages import accept_offer, go_available, sign_in, start_chat


def open_monitor(page: Page, username: str = "super1") -> None:
    page.goto("/supervisor")
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("me")).to_have_text(username)
    expect(page.get_by_test_id("connection")).to_have_text("实时 Live")


@pytest.mark.server_env(CONTACTD_MONITOR__ALERTS__LONGEST_WAIT_S="2")
def test_supervisor_watches_the_floor_and_acts_on_it(pages: Pages, server: Server) -> None:
    monitor = pages.new("monitor")
    open_monitor(monitor)
    aftersales = monitor.get_by_test_id("queue-aftersales")
    presales = monitor.get_by_test_id("queue-presales")
    expect(aftersales.get_by_test_id("waiting")).to_have_text("0")
    expect(monitor.get_by_test_id("chart-states")).to_be_visible()

    # a customer starts a chat from an order page: it waits in after-sales, live on the monitor
    customer = pages.new("customer")
    start_chat(customer)
    expect(aftersales.get_by_test_id("waiting")).to_have_text("1")
    expect(aftersales.get_by_test_id("offered")).to_have_text("1")
    row = monitor.locator("#waiting tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("order_page")
    # ...and once it has waited past the line (2 s here), the queue turns red with an alert
    expect(monitor.get_by_test_id("alert-aftersales-longest_wait")).to_be_visible()
    expect(aftersales).to_have_class(re.compile(r"\balert\b"))

    # the supervisor moves it to pre-sales (only chat queues are offered for a chat)
    options = row.get_by_test_id("move-queue").locator("option")
    expect(options).to_have_text(["售前咨询 Pre-sales", "VIP 专属 VIP desk"])
    row.get_by_test_id("move-queue").select_option("presales")
    row.get_by_test_id("move").click()
    expect(presales.get_by_test_id("waiting")).to_have_text("1")
    expect(aftersales.get_by_test_id("waiting")).to_have_text("0")
    # it keeps its wait, so the alert moves along with it
    expect(monitor.get_by_test_id("alert-presales-longest_wait")).to_be_visible()
    expect(monitor.get_by_test_id("alert-aftersales-longest_wait")).to_have_count(0)

    # an agent comes in and takes it: the monitor shows the agent busy and the session
    agent = pages.new("agent")
    sign_in(agent, "agent1")
    go_available(agent)
    session_id = accept_offer(agent)
    sessions = monitor.get_by_test_id("sessions-table")
    expect(sessions).to_contain_text(session_id)
    agent_row = monitor.get_by_test_id("agent-agent1")
    expect(agent_row).to_contain_text("1 / 3")
    expect(presales.get_by_test_id("answered")).to_have_text("1")
    expect(monitor.get_by_test_id("alert-presales-longest_wait")).to_have_count(0)

    # the supervisor joins the chat visibly and writes to the customer
    sessions.get_by_test_id("join").click()
    expect(monitor.get_by_test_id("watch-messages")).to_contain_text("耳机左边没有声音")
    monitor.get_by_test_id("watch-input").fill("您好，我是主管，马上为您处理")
    monitor.get_by_test_id("watch-send").click()
    expect(customer.get_by_test_id("cd-text").last).to_have_text("您好，我是主管，马上为您处理")
    expect(monitor.get_by_test_id("watch-messages")).to_contain_text("马上为您处理")

    # the supervisor drains the agent: they keep the chat, take nothing new
    agent_row.get_by_test_id("drain").click()
    expect(agent_row.get_by_test_id("state")).to_contain_text("draining")
    expect(agent.get_by_test_id("agent-state")).to_contain_text("小休")
    expect(monitor.get_by_test_id("count-away")).to_have_text("1")

    # and the audit log has both actions, by the supervisor
    admin = server.token("admin")
    moved = server.api("GET", "/api/v1/audit?action=monitor.contact_moved", token=admin)
    drained = server.api("GET", "/api/v1/audit?action=monitor.agent_drained", token=admin)
    assert [e["actor_name"] for e in moved + drained] == ["super1", "super1"], (moved, drained)
    assert pages.js_errors() == []


def test_an_agent_cannot_open_the_monitor(pages: Pages) -> None:
    page = pages.new("agent")
    page.goto("/supervisor")
    page.get_by_test_id("login-username").fill("agent1")
    page.get_by_test_id("login-password").fill(DEMO_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("monitor")
    expect(page.locator("#app")).to_be_hidden()
