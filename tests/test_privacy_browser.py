"""The console shows personal data masked to an agent; 「显示」 reveals it (audited). Screenshots:
/tmp/shots/privacy-masked.png and /tmp/shots/privacy-revealed.png."""
from __future__ import annotations

import pathlib

import pytest

import agent_ui.views
from hub.app import create_app
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.test_console_browser import agent_online
from tests.wechat_client import text_xml

SHOTS = pathlib.Path("/tmp/shots")
PII = "我的手机13812345678，身份证11010519491231002X，麻烦改一下收货地址"


@pytest.fixture
async def client(aiohttp_client, hub_config, clock):
    app = create_app(hub_config, clock)
    agent_ui.views.setup(app)
    return await aiohttp_client(app)


async def test_agent_sees_masked_and_reveals(client, hub, wecom, browser):
    from playwright.async_api import expect
    SHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    page = await agent_online(client, hub, browser, errors)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmPii", PII, 30001))
    item = page.locator("#session-list li.session").first
    await expect(item).to_contain_text("wmPii")
    await page.reload()  # a fresh console reads sessions and history through the masked views
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await page.locator("#session-list li.session").first.click()
    msg = page.locator(".msg.in").last
    await expect(msg).to_contain_text("138****5678")
    await expect(msg).not_to_contain_text("13812345678")
    await expect(msg.locator("button.reveal")).to_be_visible()
    await page.screenshot(path=str(SHOTS / "privacy-masked.png"))
    await msg.locator("button.reveal").click()
    await expect(msg).to_contain_text("13812345678")
    await expect(msg.locator(".revealed")).to_have_text("已显示")
    await page.screenshot(path=str(SHOTS / "privacy-revealed.png"))
    audit = await (await client.get("/api/audit", params={"kind": "access", "action": "pii.reveal"},
                                    headers=auth())).json()
    assert [e["actor_name"] for e in audit["entries"]] == ["alice"]
    assert not errors, errors
