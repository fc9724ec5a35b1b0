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
