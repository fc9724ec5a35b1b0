"""SLA alerts in real browsers: a supervisor has the dashboard (/supervisor) open and an agent the
console; a 2-second first-response deadline passes (a scheduled timer, real clock), the alert turns
red on both at once; the agent's reply clears it on both. Screenshots: /tmp/shots/sla-*.png and
artifacts/sla-*.png."""
from __future__ import annotations

import asyncio
import pathlib

import pytest

from hub.app import create_app
from tests.conftest import ARTIFACTS, WECOM, auth
from tests.helpers import post, wait_for
from tests.rt_helpers import make_user, server_url
from tests.wechat_client import text_xml

SHOTS = pathlib.Path("/tmp/shots")
RED = "rgb(209, 52, 43)"  # --red in console.css


@pytest.fixture
async def client(aiohttp_client, hub_config, clock):
    return await aiohttp_client(create_app(hub_config, clock))


async def page_for(browser, base: str, username: str, path: str, errors: list[str]):  # noqa: ANN001, ANN201
    ctx = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN",
                                    timezone_id="Asia/Shanghai")
    page = await ctx.new_page()
    page.set_default_timeout(8000)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", f"{username}-password")
    await page.click("#login-submit")
    await page.wait_for_url("**/console")
    if path != "/console":
        await page.goto(base + path)
    return page


async def shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"sla-{name}.png"))
    await page.screenshot(path=str(ARTIFACTS / f"sla-{name}.png"))


async def test_dashboard_and_console_turn_red_when_a_deadline_passes(client, hub, browser, wecom):
    from playwright.async_api import expect
    await hub.settings.set("default_group", "presales")
    alice = await make_user(hub, "alice")
    await make_user(hub, "sam", role="supervisor", groups=("presales",))
    resp = await client.post("/api/sla/rules", json={"kind": "first_reply", "seconds": 2, "name": "首响 2 秒"},
                             headers=auth())
    assert resp.status == 201
    resp = await client.post("/api/sla/rules", json={"kind": "avg_reply", "seconds": 1, "window": 1, "min_samples": 1,
                                                     "name": "均响 1 秒"}, headers=auth())
    assert resp.status == 201
    base, errors = server_url(client), []
    console = await page_for(browser, base, "alice", "/console", errors)
    await expect(console.locator("#conn")).to_have_attribute("data-state", "connected")
    await console.select_option("#status", "online")
    await wait_for(lambda: any(a.id == alice.id and a.status == "online" for a in hub.sessions.dispatcher.agents()))
    board = await page_for(browser, base, "sam", "/supervisor", errors)
    await expect(board.locator("#alerts-empty")).to_be_visible()

    await post(client, wecom, text_xml(WECOM["receive_id"], "wmBrowser", "我的快递三天没动了", 41001))
    row = console.locator("#session-list li.session").first
    await expect(row).to_be_visible()
    await expect(row).not_to_have_class("sla-alert")
    await row.click()
    # the deadline passes: both turn red within a second of it
    item = board.locator("#alerts li.alert-open", has_text="首响 2 秒")
    await expect(item).to_have_count(1, timeout=6000)
    await expect(item.locator(".alert-title")).to_contain_text("首响 2 秒")
    assert await item.evaluate("e => getComputedStyle(e).borderLeftColor") == RED
    assert await item.locator(".alert-title").evaluate("e => getComputedStyle(e).color") == RED
    await expect(board.locator("#alerts-count")).to_have_text("1")
    await expect(row).to_have_class("session current sla-alert")
    assert await row.evaluate("e => getComputedStyle(e).borderTopColor") == RED
    await expect(console.locator("#chat-alert")).to_contain_text("首次响应超时")
    await shot(board, "dashboard-red")
    await shot(console, "console-red")

    # the agent replies in the console: met, cleared on both
    await console.fill("#reply", "您好，我马上帮您查一下物流")
    await console.keyboard.press("Enter")
    await expect(item).to_have_count(0)
    await expect(row).not_to_have_class("sla-alert")
    await expect(console.locator("#chat-alert")).to_be_hidden()
    # ... and that reply took over 2 s: her rolling average (1 reply) is over 1 s, an agent-wide alert
    await expect(console.locator("#avg-alert")).to_be_visible()
    await expect(console.locator("#avg-alert")).to_contain_text("超过 1 秒")
    average = board.locator("#alerts li.alert-open", has_text="均响 1 秒")
    await expect(average).to_have_count(1)
    await expect(board.locator("#alerts-count")).to_have_text("1")
    await shot(console, "console-avg")
    await average.locator("button.alert-ack").click()  # the supervisor acknowledges it from the dashboard
    await expect(average).to_have_count(0)
    await expect(board.locator("#alerts-count")).to_have_text("0")
    alerts = (await (await client.get("/api/alerts?state=all&kind=first_reply", headers=auth())).json())["alerts"]
    [alert] = alerts
    assert alert["clear_reason"] == "replied"
    [acknowledged] = (await (await client.get("/api/alerts?state=all&kind=avg_reply", headers=auth())).json())["alerts"]
    assert acknowledged["state"] == "cleared" and acknowledged["clear_reason"] == "acknowledged"
    assert [e["kind"] for e in alert["timeline"]] == ["raised", "cleared"]
    assert alert["raised_at"] - alert["deadline"] < 1.0  # fired by its timer, not a sweep
    await shot(board, "dashboard-cleared")
    await asyncio.sleep(0)
    assert errors == []
