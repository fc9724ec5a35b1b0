"""Operator console, round 2, in headless Chromium: an admin adds an SLA rule with a bad time limit (the
error shows beside the field) then a good one, adds a quality rule, a work-order routing rule, edits a
skill group's members and an agent's concurrency cap (a bad cap refused beside it), turns a question the
bot could not answer into an FAQ, and the changes are live and in the audit log. Then a screenshot of
every admin page: /tmp/shots/admin-*.png."""
from __future__ import annotations

import pathlib

from agent_ui.views import ADMIN_PAGES
from hub.supervisor.api import SUPERVISION
from hub.tickets.api import TICKETS
from hub.users import list_users
from tests.conftest import auth
from tests.rt_helpers import make_user
from tests.test_operator_pages import base_url, log_in, new_page, seed_unanswered

SHOTS = pathlib.Path("/tmp/shots")


async def _shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(exist_ok=True)
    await page.evaluate("document.getElementById('toasts') && document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(SHOTS / f"admin-{name}.png"), full_page=True)


async def test_sla_quality_tickets_groups_and_faq_pages(client, hub, browser):  # noqa: ANN001
    from playwright.async_api import expect

    await make_user(hub, "olivia", role="admin", groups=())
    alice = await make_user(hub, "alice", groups=("presales",), cap=5)
    await make_user(hub, "bob", groups=("aftersales",), cap=4)
    sue = await make_user(hub, "sue", role="supervisor", groups=("presales",))
    await seed_unanswered(hub)
    sup = client.server.app[SUPERVISION]
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "olivia", "/admin/sla")
    await expect(page.locator('.admin-nav a.active')).to_have_text("SLA 与质检")

    # an SLA rule: 0 minutes is refused beside the time-limit field, 2 minutes is saved and live at once
    await page.click("#sla-new")
    await page.select_option("#sf-kind", "first_reply")
    await page.fill("#sf-seconds", "0")
    await page.select_option("#sf-escalation", "notify")
    await page.select_option("#sf-notify", str(sue.id))
    await page.click("#sf-save")
    await expect(page.locator('.field-error[data-for="seconds"]')).to_be_visible()
    await expect(page.locator('.field-error[data-for="seconds"]')).to_contain_text("秒数")
    await _shot(page, "sla-error")
    await page.fill("#sf-name", "首响 2 分钟")
    await page.fill("#sf-seconds", "2")
    await page.click("#sf-save")
    await expect(page.locator("#sla-rows tr")).to_have_count(1)
    await expect(page.locator("#sla-rows tr")).to_contain_text("2 分钟")
    rule = sup.alerts.rules[0]
    assert (rule.name, rule.seconds, rule.escalation, rule.notify_user_id) == ("首响 2 分钟", 120.0, "notify", sue.id)

    # a quality rule: no words is refused beside the words, then saved
    await page.click("#qr-new")
    await page.select_option("#qf-kind", "forbidden_words")
    await page.click("#qf-save")
    await expect(page.locator('.field-error[data-for="params.words"]')).to_be_visible()
    await _shot(page, "quality-error")
    await page.fill("#qf-words .token-entry", "不知道, 自己看")
    await page.press("#qf-words .token-entry", "Enter")
    await page.click("#qf-save")
    await expect(page.locator("#qr-rows tr")).to_have_count(1)
    await expect(page.locator("#qr-rows tr")).to_contain_text("不知道、自己看")
    assert sup.quality.rules[0].params == {"words": ["不知道", "自己看"]}
    await _shot(page, "sla")

    # a work-order routing rule
    await page.goto(base + "/admin/tickets")
    await expect(page.locator("#tt-rows tr")).to_have_count(4)
    await page.click("#tr-new")
    await page.fill("#rf-name", "投诉交给售后")
    await page.click("#rf-save")
    await expect(page.locator('#tr-form .field-error[data-for="group"]')).to_be_visible()
    await page.fill("#rf-group", "aftersales")
    await page.check('#rf-types input[value="complaint"]')
    await page.select_option("#rf-priority", "high")
    await page.click("#rf-save")
    await expect(page.locator("#tr-rows tr")).to_have_count(1)
    await expect(page.locator("#tr-rows tr")).to_contain_text("类型：投诉")
    tickets = client.server.app[TICKETS]
    assert [(r.name, r.group, sorted(r.types)) for r in tickets.rules] == [("投诉交给售后", "aftersales", ["complaint"])]
    await _shot(page, "tickets")

    # skill groups: a new group with alice; a cap of 500 is refused beside alice's cap, 3 is saved
    await page.goto(base + "/admin/routing")
    await expect(page.locator("#grp-rows tr")).to_have_count(2)
    await page.click("#grp-new")
    await page.fill("#grp-name", "vip")
    await page.fill("#grp-display", "VIP 专席")
    row = page.locator(f'#grp-members .member-row[data-user="{alice.id}"]')
    await row.locator('input[type="checkbox"]').check()
    await row.locator("input.cap-input").fill("500")
    await page.click("#grp-save")
    await expect(page.locator(f'.field-error[data-for="members.{alice.id}.cap"]')).to_be_visible()
    await _shot(page, "routing-group-error")
    await row.locator("input.cap-input").fill("3")
    await page.click("#grp-save")
    await expect(page.locator("#grp-rows tr")).to_have_count(3)
    await expect(page.locator('#grp-rows tr[data-name="vip"]')).to_contain_text("alice")
    users = {u.username: u for u in await list_users(hub.db)}
    assert sorted(users["alice"].groups) == ["presales", "vip"] and users["alice"].cap == 3
    assert hub.sessions.agents[alice.id].cap == 3  # the router uses the new cap without a restart
    # take bob into presales from the group's editor
    await page.click('#grp-rows tr[data-name="presales"] button:has-text("编辑")')
    await page.locator('#grp-members .member-row:has-text("bob") input[type="checkbox"]').check()
    await page.click("#grp-save")
    await expect(page.locator('#grp-rows tr[data-name="presales"]')).to_contain_text("bob")
    # customers no rule matches go to the new group (made since the page loaded: offered all the same)
    await page.focus("#rt-default-group")
    await expect(page.locator('#rt-default-group option[value="vip"]')).to_have_count(1)
    await page.select_option("#rt-default-group", "vip")
    await expect(page.locator(".toast", has_text="VIP 专席")).to_be_visible()
    assert await hub.settings.get("default_group") == "vip"
    await _shot(page, "routing")

    # the bot's unanswered question becomes an FAQ in one click
    await page.goto(base + "/admin/faq")
    item = page.locator('#unanswered li[data-question="可以开发票吗"]')
    await item.locator("button.to-faq").click()
    await expect(page.locator("#faq-question")).to_have_value("可以开发票吗")
    await page.fill("#faq-answer", "可以，下单后在订单页申请电子发票。")
    await page.click("#faq-save")
    await expect(item.locator(".badge")).to_have_text("已有 FAQ")
    assert any(f["question"] == "可以开发票吗" for f in await hub.kb.list())

    # every change is in the audit log
    entries = (await (await client.get("/api/audit", headers=auth())).json())["entries"]
    actions = {e["action"] for e in entries}
    assert {"sla_rule.create", "quality_rule.create", "ticket_rule.create", "group.create", "group.update",
            "user.update", "faq.create"} <= actions, actions

    for key, path, _, _ in ADMIN_PAGES:
        await page.goto(base + path)
        await page.wait_for_load_state("networkidle")
        await expect(page.locator(f'.admin-nav a[data-page="{key}"]')).to_have_class("active")
        await _shot(page, "page-" + key.replace("_", "-"))
    assert not errors, errors
