"""The console's work orders in headless Chromium: 转工单 from the open session, the agent's ticket list with
status moves, and the overdue alert arriving live."""
from __future__ import annotations

import os

import pytest
from playwright.async_api import expect

from hub.clock import FakeClock
from hub.service.sessions import Handover
from tests.rt_helpers import make_user
from tests.test_console_browser import go_online, log_in, new_page
from tests.test_dashboard_api import new_conversation
from tests.test_operator_pages import base_url

T0 = 1_732_500_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


async def test_agent_turns_a_session_into_a_ticket_and_works_it(client, hub, browser):  # noqa: ANN001
    alice = await make_user(hub, "alice", groups=("presales",))
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "alice")
    await go_online(page, hub, alice.id)
    await hub.sessions.route(Handover(await new_conversation(hub, "oLin"), "acme-wecom", "收到的面霜瓶子破了", [],
                                      group="presales"))
    await page.locator("#session-list li.session").first.click()

    await page.click("#ticket-btn")
    await expect(page.locator("#ticket-title")).to_have_value("收到的面霜瓶子破了")
    await page.select_option("#ticket-type", "return")
    await page.fill("#ticket-desc", "客户要求退货退款，已拍照")
    await page.click("#ticket-submit")
    await expect(page.locator("#ticket-dialog")).to_have_count(0)
    tickets = (await (await client.get("/api/tickets", headers={"Authorization": "Bearer test-api-token"})).json())["tickets"]
    assert len(tickets) == 1 and tickets[0]["type"] == "return" and tickets[0]["group"] == "presales"
    assert tickets[0]["created_by"] == alice.id and tickets[0]["description"] == "客户要求退货退款，已拍照"

    await page.click("#tickets-btn")
    item = page.locator("#ticket-list li").first
    await expect(item).to_contain_text("待处理")
    await item.locator("button[data-move=in_progress]").click()
    await expect(item).to_contain_text("处理中")

    # due in 30 s (the type's default is 24 h; only the ticket's timer is due when the clock moves 31 s)
    r = await client.patch(f"/api/tickets/{tickets[0]['id']}", headers={"Authorization": "Bearer test-api-token"},
                           json={"due_at": T0 + 30})
    assert r.status == 200
    hub.clock.advance(31)
    assert await hub.timers.fire_due() == 1
    await expect(page.locator("#tickets-btn")).to_have_text("工单（1 超时）")
    await expect(item).to_contain_text("已超时")
    os.makedirs("/tmp/shots", exist_ok=True)
    await page.screenshot(path="/tmp/shots/console-tickets.png")
    assert not [e for e in errors if "Failed to load resource" not in e], errors
