"""The new admin console pages in headless Chromium: an admin creates a channel code against the
stand-in platform API, downloads its QR image and decodes it (zbarimg) back to the URL the stand-in
returned; adds a platform account with generated Token / key and sees a field error beside the field;
saves bot settings; reads the change in the audit log. Screenshots: /tmp/shots/admin-*.png."""
from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
from sqlalchemy import select

from hub.models.channels import ChannelCode
from tests.helpers import wait_for
from tests.rt_helpers import make_user
from tests.test_operator_pages import base_url, log_in, new_page

SHOTS = pathlib.Path("/tmp/shots")


async def _shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(exist_ok=True)
    await page.evaluate("document.getElementById('toasts') && document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)


@pytest.mark.skipif(shutil.which("zbarimg") is None, reason="zbar-tools not installed")
async def test_admin_console_pages(client, hub, browser, tmp_path):  # noqa: ANN001
    from playwright.async_api import expect

    await make_user(hub, "olivia", role="admin", groups=())
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/channels")

    # a channel code for the Official Account: the hub creates it on the (stand-in) platform
    await page.click("#ch-new")
    await page.select_option("#cf-account", "acme-oa")
    await page.fill("#cf-name", "静安店收银台")
    await page.fill("#cf-tags", "门店, 静安")
    await page.fill("#cf-welcome", "欢迎光临静安店！")
    await page.click("#cf-save")
    await expect(page.locator("#ch-rows tr")).to_have_count(1)
    await expect(page.locator("#ch-detail")).to_be_visible()
    await expect(page.locator("#ch-qr-url")).to_have_text("http://weixin.qq.com/q/standin1")
    await expect(page.locator("#ch-chart svg rect")).to_have_count(60)
    await _shot(page, "channels")
    png = await page.request.get(base + (await page.locator("#ch-png").get_attribute("href")))
    assert png.status == 200 and png.headers["content-type"] == "image/png"
    path = tmp_path / "code.png"
    path.write_bytes(await png.body())
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True)
    async with hub.db.read() as conn:
        stored = (await conn.execute(select(ChannelCode.__table__.c.qr_url))).scalar()
    assert decoded.stdout.strip() == stored == "http://weixin.qq.com/q/standin1"
    svg = await page.request.get(base + (await page.locator("#ch-svg").get_attribute("href")))
    assert svg.status == 200 and b"<svg" in await svg.body()

    # accounts: generated Token and 43-character key, a bad CorpID shown beside its field, then saved
    await page.goto(base + "/admin/accounts")
    await expect(page.locator("#acct-rows tr")).to_have_count(2)
    await page.click("#acct-new")
    await wait_for(lambda: page.locator("#af-key").input_value(), timeout=5)
    assert len(await page.locator("#af-key").input_value()) == 43
    assert len(await page.locator("#af-token").input_value()) == 32
    await page.fill("#af-id", "shop-wecom")
    await page.fill("#af-name", "门店企业微信")
    await page.fill("#af-receive", "ww bad id")
    await expect(page.locator("#af-url")).to_have_text(base + "/callbacks/wecom/shop-wecom")
    await page.click("#af-save")
    await expect(page.locator('.field-error[data-for="receive_id"]')).to_be_visible()
    await _shot(page, "accounts-error")
    await page.fill("#af-receive", "ww0123456789abcdef")
    await page.click("#af-save")
    await expect(page.locator("#acct-rows tr")).to_have_count(3)
    await expect(page.locator('#acct-rows tr[data-id="shop-wecom"]')).to_contain_text("尚未收到")
    await _shot(page, "accounts")

    # bot settings: a bad holiday is refused beside the field, a good one saved
    await page.goto(base + "/admin/bot-settings")
    # the stored settings have filled the form (its weekday fields are made then): an edit made before
    # that was overwritten, and the holidays field hidden again under a slow server
    await expect(page.locator("#bs-day-0")).to_have_count(1)
    await page.uncheck("#bs-always")
    await page.fill("#bs-handover", "转人工\n找店长")
    await page.fill("#bs-holidays", "2025-10-01\n十月二日")
    await page.click("#bs-save")
    await expect(page.locator('.field-error[data-for="business_hours.holidays"]')).to_be_visible()
    await page.fill("#bs-holidays", "2025-10-01\n2025-10-02")
    await page.click("#bs-save")
    # each setting reaches this process's cache on its own (config bus): wait for both
    await wait_for(lambda: hub.settings.cached("handover_words") == ["转人工", "找店长"]
                   and (hub.settings.cached("business_hours") or {}).get("holidays") == ["2025-10-01", "2025-10-02"],
                   timeout=5)
    await _shot(page, "bot-settings")

    # the audit log shows each change; filter by action
    await page.goto(base + "/admin/audit")
    await expect(page.locator("#audit-rows tr")).to_have_count(3)
    await page.fill("#af-action", "account")
    await page.click("#af-apply")
    await expect(page.locator("#audit-rows tr")).to_have_count(1)
    await page.click("#audit-rows tr button")
    await expect(page.locator("#audit-after")).to_contain_text("门店企业微信")
    await expect(page.locator("#audit-after")).to_contain_text('"token": "***"')
    await _shot(page, "audit")

    # an Official Account: its message mode (WeCom has none), safe by default for a new one
    await page.goto(base + "/admin/accounts")
    await page.click("#acct-new")
    await expect(page.locator("#af-mode")).to_be_hidden()
    await page.select_option("#af-platform", "oa")
    await expect(page.locator("#af-mode")).to_have_value("safe")
    await page.fill("#af-id", "shop-oa")
    await page.fill("#af-receive", "wx0123456789abcdef")
    await page.click("#af-save")
    await expect(page.locator("#acct-rows tr")).to_have_count(4)
    assert (await hub.accounts.get("shop-oa")).message_mode == "safe"
    for name in ("faq", "keywords", "routing", "users"):
        await page.goto(base + f"/admin/{name}")
        await page.wait_for_load_state("networkidle")
        await _shot(page, name)
    assert not errors, errors
