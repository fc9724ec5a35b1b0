"""Operator console in headless Chromium: what an operator saves is what the hub keeps, without undoing
changes someone else made meanwhile."""
from __future__ import annotations

from tests.conftest import auth
from tests.rt_helpers import make_user
from tests.test_operator_pages import base_url, log_in, new_page


async def _user(client, username: str) -> dict:  # noqa: ANN001
    users = (await (await client.get("/api/users", headers=auth())).json())["users"]
    return next(u for u in users if u["username"] == username)


async def test_editing_a_user_keeps_a_group_added_while_the_form_was_open(client, hub, browser):  # noqa: ANN001
    from playwright.async_api import expect

    await make_user(hub, "olivia", role="admin", groups=())
    alice = await make_user(hub, "alice", groups=("presales",))
    assert (await client.post("/api/groups", json={"name": "vip", "display_name": "VIP 专席"},
                              headers=auth())).status == 201
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/users")
    row = page.locator('#user-rows tr[data-username="alice"]')
    await row.get_by_role("button", name="编辑").click()
    await expect(page.locator("#user-dialog")).to_be_visible()
    # meanwhile another operator puts alice in the VIP group (the skill-group editor)
    assert (await client.put("/api/groups/vip", json={"members": [alice.id]}, headers=auth())).status == 200
    await page.fill("#uf-display", "小爱")
    await page.click("#uf-save")
    await expect(page.locator("#user-dialog")).to_be_hidden()
    saved = await _user(client, "alice")
    assert saved["display_name"] == "小爱" and sorted(saved["groups"]) == ["presales", "vip"], saved
    await expect(row).to_contain_text("vip")

    # the operator's own group change is still saved
    await row.get_by_role("button", name="编辑").click()
    await page.locator("#uf-groups .token-entry").fill("aftersales")
    await page.locator("#uf-groups .token-entry").press("Enter")
    await page.click("#uf-save")
    await expect(page.locator("#user-dialog")).to_be_hidden()
    assert sorted((await _user(client, "alice"))["groups"]) == ["aftersales", "presales", "vip"]
    assert not errors, errors


async def test_deleting_a_group_in_use_says_what_uses_it(client, hub, browser, standin):  # noqa: ANN001
    from playwright.async_api import expect

    from tests.channel_helpers import OA_CODE, create

    await make_user(hub, "olivia", role="admin", groups=())
    assert (await client.post("/api/groups", json={"name": "live", "display_name": "直播组"}, headers=auth())).status == 201
    await create(client, {**OA_CODE, "route_group": "live"})
    assert (await client.put("/api/settings", json={"default_group": "live"}, headers=auth())).status == 200
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/routing")
    await page.locator('#grp-rows tr[data-name="live"]').get_by_role("button", name="删除").click()
    await page.click("#confirm-ok")
    toast = page.locator("#toasts .toast.error")
    await expect(toast).to_contain_text("渠道活码“直播间”")
    await expect(toast).to_contain_text("默认技能组")
    await expect(page.locator('#grp-rows tr[data-name="live"]')).to_have_count(1)
    assert not errors, errors


async def test_bot_settings_refusals_are_shown_in_chinese_beside_the_field(client, hub, browser):  # noqa: ANN001
    """PUT /api/settings answers in English ("queue_text: must contain {n} ..."); the page showed that text as it
    was. Each refusal is now in Chinese beside its field, and what is saved is what the page shows after a reload."""
    from playwright.async_api import expect

    await make_user(hub, "olivia", role="admin", groups=())
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/bot-settings")
    await expect(page.locator("#bs-queue")).to_have_value("您前面还有 {n} 位，请稍候，客服马上为您服务。")
    cases = [("#bs-queue", "请稍候，马上为您服务", "queue_text", "必须包含 {n}（客户前面还有几位）"),
             ("#bs-handover", "转人工\n" + "我要找一个真正的人工客服来帮我处理一下这个问题", "handover_words", "第 2 项须为 1–20 个字")]
    for selector, value, field, text in cases:
        before = await page.locator(selector).input_value()
        await page.fill(selector, value)
        await page.click("#bs-save")
        slot = page.locator(f'.field-error[data-for="{field}"]')
        await expect(slot).to_be_visible()
        await expect(slot).to_have_text(text)
        await page.fill(selector, before)
    await page.uncheck("#bs-always")
    await page.fill("#bs-day-0", "25:00-18:00")
    await page.click("#bs-save")
    slot = page.locator('.field-error[data-for="business_hours.weekly"]')
    await expect(slot).to_have_text("时间“25:00”格式不对，应为 HH:MM（如 09:00）")
    await page.fill("#bs-day-0", "09:00-12:00, 13:30-18:00")
    await page.fill("#bs-queue", "前面还有 {n} 位，请稍候")
    await page.click("#bs-save")
    await expect(page.locator("#toasts .toast.ok")).to_contain_text("已保存")
    await page.reload()
    await expect(page.locator("#bs-queue")).to_have_value("前面还有 {n} 位，请稍候")
    await expect(page.locator("#bs-day-0")).to_have_value("09:00-12:00, 13:30-18:00")
    assert hub.settings.cached("queue_text") == "前面还有 {n} 位，请稍候"
    assert not errors, errors


async def test_account_form_refusals_are_in_chinese(client, hub, browser):  # noqa: ANN001
    """The accounts API answers "CorpID / AppID: letters, digits, '-' and '_'", "Token: 3 to 32 ..."; the form
    showed that English beside the field."""
    from playwright.async_api import expect

    await make_user(hub, "olivia", role="admin", groups=())
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/accounts")
    await page.click("#acct-new")
    await expect(page.locator("#af-key")).not_to_have_value("")
    await page.fill("#af-id", "门店")
    await page.fill("#af-receive", "ww0123456789abcdef")
    await page.click("#af-save")
    await expect(page.locator('.field-error[data-for="id"]')).to_have_text(
        "账号 ID 为 1–64 位英文字母、数字、“-” 或 “_”（是回调地址的一部分）")
    await page.fill("#af-id", "shop-wecom")
    await page.fill("#af-receive", "ww bad id")
    await page.click("#af-save")
    await expect(page.locator('.field-error[data-for="receive_id"]')).to_have_text(
        "请填写 CorpID / AppID（英文字母、数字、“-” 或 “_”）")
    await page.fill("#af-receive", "ww0123456789abcdef")
    await page.fill("#af-token", "门店令牌")
    await page.click("#af-save")
    await expect(page.locator('.field-error[data-for="token"]')).to_have_text("Token 为 3–32 位英文字母或数字（可点“生成”）")
    await page.fill("#af-token", "Shop0Token")
    await page.fill("#af-key", "short")
    await page.click("#af-save")
    await expect(page.locator('.field-error[data-for="encoding_aes_key"]')).to_have_text(
        "EncodingAESKey 为 43 位英文字母或数字（可点“生成”）")
    assert not errors, errors


async def test_a_double_click_on_save_creates_one_channel_code(client, hub, browser, standin):  # noqa: ANN001
    """保存并生成二维码 stayed enabled while the request ran: a double click created two codes, each
    registered on the platform (and a second account or settings save was sent too)."""
    from playwright.async_api import expect

    from tests.conftest import OA
    await make_user(hub, "olivia", role="admin", groups=())
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "olivia", "/admin/channels")
    standin.delay = 0.5  # the platform takes a moment: the second click lands while the first is on its way
    await page.click("#ch-new")
    await page.select_option("#cf-account", OA["id"])
    await page.fill("#cf-name", "双击测试")
    await page.dblclick("#cf-save")
    await expect(page.locator("#ch-dialog")).to_be_hidden()
    codes = (await (await client.get("/api/channels", headers=auth())).json())["channels"]
    assert [c["name"] for c in codes] == ["双击测试"]
    assert not errors, errors


async def test_every_page_of_the_nav_is_reachable_at_1024_px(client, hub, browser):  # noqa: ANN001
    """At 1024 px the nav hid five pages, the current one too, behind an overflow nobody could scroll."""
    await make_user(hub, "olivia", role="admin", groups=())
    errors: list[str] = []
    page = await new_page(browser, errors)
    await page.set_viewport_size({"width": 1024, "height": 768})
    await log_in(page, base_url(client), "olivia", "/admin/privacy")
    # each link is what a click at its middle hits (not cut off by the nav, nor under the top bar's other parts)
    hits = await page.eval_on_selector_all(".admin-nav a", """links => links.map(a => {
      const r = a.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
      const hit = x >= 0 && x <= innerWidth && document.elementFromPoint(x, y);
      return [a.textContent, !!hit && a.contains(hit)];
    })""")
    assert len(hits) >= 11 and all(ok for _, ok in hits), hits
    assert not errors, errors
