"""The supervisor dashboard page in headless Chromium: agents get the 403 page; a supervisor sees today's
figures, the health figures coloured, waiting sessions, and the queue updating live over Socket.IO."""
from __future__ import annotations

import os

import pytest
from playwright.async_api import expect

from hub.clock import FakeClock
from hub.service.sessions import Handover
from tests.rt_helpers import make_user
from tests.test_dashboard_api import new_conversation
from tests.test_operator_pages import base_url, log_in, new_page
from tests.test_stats import T0, seed_archive

SHOTS = "/tmp/shots"


@pytest.fixture
def clock():
    return FakeClock(T0)


async def test_supervisor_dashboard_renders_and_updates_live(client, hub, browser):  # noqa: ANN001
    alice = await make_user(hub, "alice", groups=("presales",), cap=3)
    await make_user(hub, "sam", role="supervisor", groups=(), cap=0)
    await seed_archive(hub, agent_a=alice.id, agent_b=alice.id)
    base = base_url(client)

    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "alice", "/supervisor")
    await expect(page.locator("h1")).to_have_text("没有权限访问主管看板")  # (the login page's URL ends alike)
    await page.context.close()

    page = await new_page(browser, errors)
    await log_in(page, base, "sam", "/supervisor")
    await expect(page.locator("#kpi-sessions [data-v]")).to_have_text("3")
    await page.wait_for_selector("#conn[data-state=connected]")
    assert await page.text_content("#kpi-reply [data-v]") == "1:20"  # 80 s
    assert await page.text_content("#kpi-bot [data-v]") == "50%"
    assert await page.text_content("#kpi-csat [data-v]") == "—"
    assert "unhealthy" in await page.get_attribute("#health-48h", "class")
    assert await page.text_content("#health-48h [data-v]") == "85.7%"
    assert await page.text_content("#health-orders [data-v]") == "75%"
    rows = await page.locator("#agents-table tbody tr").all_text_contents()
    assert len(rows) == 1 and "alice" in rows[0]
    assert await page.locator("#awaiting-table tbody tr").count() == 1
    groups = await page.locator("#groups-table tbody tr").all_text_contents()
    assert any(g.startswith("presales") for g in groups) and any(g.startswith("aftersales") for g in groups)

    # a waiting session past the SLA turns red; a handover shows up in the queue without a reload
    hub.clock.advance(60)
    for peer in ("q1", "q2"):
        await hub.sessions.route(Handover(await new_conversation(hub, peer), "acme-wecom", "有人吗", [], group="vip"))
    await expect(page.locator("#kpi-queue [data-v]")).to_have_text("2")
    await page.wait_for_selector("#awaiting-table tr.over-sla")
    assert await page.locator("#queue-table tbody tr").count() == 2
    alerts_empty = await page.text_content("#alerts-empty")
    assert alerts_empty in ("暂无告警", "告警功能未启用")
    os.makedirs(SHOTS, exist_ok=True)
    await page.screenshot(path=f"{SHOTS}/dashboard.png", full_page=True)
    assert not errors, errors
