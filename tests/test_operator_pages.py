"""The operator pages (知识库 / 关键词回复 / 路由规则 / 用户) in a real browser: headless Chromium via
Playwright against the hub app on a local port; no outside services. An admin logs in through the login
page and drives each page as an operator would; agents and supervisors get the 403 page.
Screenshots go to artifacts/admin-*.png."""
from __future__ import annotations

from urllib.parse import urlsplit

import os
import re
import pathlib

import pytest

from hub.models import BotOutcome
from tests.conftest import auth
from tests.helpers import make_groups, wait_for
from tests.rt_helpers import make_user

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "artifacts"
VIEWPORT = {"width": 1440, "height": 900}


async def new_page(browser, errors: list[str]):  # noqa: ANN001, ANN201
    ctx = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await ctx.new_page()
    page.set_default_timeout(8000)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    # a refused save (400) is logged by Chromium as a failed resource load: expected, not a page error
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    return page


def base_url(client) -> str:  # noqa: ANN001
    return str(client.server.make_url("")).rstrip("/")


async def log_in(page, base: str, username: str, start: str) -> None:  # noqa: ANN001
    """Open ``start`` logged out: the login page comes first, then the page itself."""
    await page.goto(base + start)
    await page.wait_for_url(f"**/login?next={start}")
    await page.fill("#username", username)
    await page.fill("#password", f"{username}-password")
    await page.click("#login-submit")
    # the path itself: a glob on "**/admin/x" would match "/login?next=/admin/x" before the redirect
    await page.wait_for_url(lambda url: urlsplit(url).path == start)


async def shot(page, name: str, full: bool = True) -> None:  # noqa: ANN001
    await page.evaluate("document.getElementById('toasts') && document.getElementById('toasts').replaceChildren()")
    await page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=full)


async def seed_unanswered(hub) -> None:  # noqa: ANN001
    now = hub.clock.now()
    rows = [("可以开发票吗", 5, None), ("你们的实体店在哪里", 3, 21.5), ("能不能送货上门安装", 2, 30.0)]
    async with hub.db.write() as conn:
        n = 0
        for text, count, score in rows:
            for i in range(count):
                n += 1
                await conn.execute(BotOutcome.__table__.insert().values(
                    message_id=900000 + n, conversation_id=1, account_id="acme-wecom", outcome="unanswered",
                    rule_id=None, faq_id=None, score=score, text=text, normalized=text, at=now - 3600 * (i + 1)))


async def test_operator_pages_as_admin(client, hub, browser, tmp_path):  # noqa: ANN001
    from playwright.async_api import expect

    await make_user(hub, "boss", role="admin", groups=())
    await make_groups(hub, "vip")
    await make_user(hub, "alice", groups=("presales",))
    await make_user(hub, "sue", role="supervisor", groups=("presales", "aftersales"), cap=8)
    await hub.kb.create_many([{"question": "怎么申请退货？", "similar": ["我要退货", "退货流程"], "answer": "订单页点“申请售后”，选择退货即可。",
                               "category": "售后", "enabled": True},
                              {"question": "支持哪些支付方式？", "similar": ["能用花呗吗"], "answer": "支持微信支付、支付宝和花呗分期。",
                               "category": "支付", "enabled": True}])
    await seed_unanswered(hub)
    base = base_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)

    # ---- 知识库 ------------------------------------------------------------------------------
    await log_in(page, base, "boss", "/admin/faq")
    await expect(page.locator("#faq-rows tr")).to_have_count(2)
    await expect(page.locator(".admin-nav a.active")).to_have_text("知识库")

    # create: an empty answer is refused by the server, the error shows beside the answer field
    await page.click("#faq-new")
    await expect(page.locator("#faq-drawer")).to_be_visible()
    await page.fill("#faq-question", "下单后多久发货？")
    await page.fill("#faq-similar input >> nth=0", "什么时候发货")
    await page.click("#faq-similar .list-add")
    await page.fill("#faq-similar input >> nth=1", "付款后几天能发出")
    await page.fill("#faq-category", "物流")
    await page.click("#faq-save")
    answer_error = page.locator('#faq-form .field-error[data-for="answer"]')
    await expect(answer_error).to_be_visible()
    await expect(answer_error).to_contain_text("答案")
    await expect(page.locator("#faq-answer")).to_have_class(re.compile(r"\binvalid\b"))
    await expect(page.locator("#faq-drawer")).to_be_visible()
    await shot(page, "faq-editor", full=False)
    await page.fill("#faq-answer", "现货商品付款后 48 小时内发货，大促期间 72 小时内发货。")
    await page.click("#faq-save")
    await expect(page.locator("#faq-drawer")).to_be_hidden()
    await expect(page.locator("#faq-rows tr")).to_have_count(3)
    created = [f for f in await hub.kb.list() if f["question"] == "下单后多久发货？"]
    assert created and created[0]["similar"] == ["什么时候发货", "付款后几天能发出"] and created[0]["category"] == "物流"

    # search and category filter
    await page.fill("#faq-q", "退货")
    await expect(page.locator("#faq-rows tr")).to_have_count(1)
    await page.fill("#faq-q", "")
    await page.select_option("#faq-cat", "物流")
    await expect(page.locator("#faq-rows tr")).to_have_count(1)
    await page.select_option("#faq-cat", "")
    await expect(page.locator("#faq-rows tr")).to_have_count(3)

    # import a CSV with one bad row (no answer, line 3): two imported, the bad line reported
    csv_path = tmp_path / "faq.csv"
    csv_path.write_text("question,similar,answer,category\n"
                        "快递一般几天能到？,多久能收到货|物流要几天,江浙沪 1-2 天，其他地区 3-5 天。,物流\n"
                        "可以改地址吗？,,,售后\n"
                        "发票怎么开？,可以开发票吗|能开专票吗,下单时填写发票抬头，发货后 7 天内开具电子发票。,发票\n",
                        encoding="utf-8")
    await page.set_input_files("#import-file", str(csv_path))
    await expect(page.locator("#import-dialog")).to_be_visible()
    await expect(page.locator("#import-ok")).to_have_text("2")
    await expect(page.locator("#import-bad")).to_have_text("1")
    rejected = page.locator("#import-rejected tbody tr")
    await expect(rejected).to_have_count(1)
    await expect(rejected.locator("td").nth(0)).to_have_text("3")
    await expect(rejected.locator("td").nth(1)).to_have_text("可以改地址吗？,,,售后")
    await expect(rejected.locator("td").nth(2)).to_have_text("答案")
    await shot(page, "faq-import", full=False)
    await page.click("#import-dialog .modal-foot [data-close]")
    await expect(page.locator("#faq-rows tr")).to_have_count(5)
    # the same from a CSV as Excel/WPS save it on a Chinese Windows (GBK): read, not garbled
    gbk_path = tmp_path / "faq-gbk.csv"
    gbk_path.write_bytes("question,similar,answer,category\n"
                         "支持货到付款吗？,能货到付款吗,暂不支持货到付款，可使用花呗分期。,支付\n"
                         "积分怎么用？,,,会员\n".encode("gbk"))
    await page.set_input_files("#import-file", str(gbk_path))
    await expect(page.locator("#import-ok")).to_have_text("1")
    await expect(rejected.locator("td").nth(1)).to_have_text("积分怎么用？,,,会员")
    await page.click("#import-dialog .modal-foot [data-close]")
    await expect(page.locator("#faq-rows tr")).to_have_count(6)
    assert [f["similar"] for f in await hub.kb.list() if f["question"] == "支持货到付款吗？"] == [["能货到付款吗"]]

    # 试一试: a similar question finds the FAQ, with scores and whether the bot answers
    await page.fill("#try-text", "什么时候发货")
    await page.click("#try-submit")
    await expect(page.locator("#try-matches li").first).to_contain_text("下单后多久发货？")
    await expect(page.locator("#try-verdict")).to_have_attribute("data-verdict", "ok")
    await expect(page.locator("#try-matches .score-n").first).to_have_text(re.compile(r"^\d+\.\d$"))

    # 机器人答不上来的问题 -> 转为 FAQ opens the editor with the question filled in
    # ("可以开发票吗" is a similar question of the imported 发票 FAQ: already covered)
    await expect(page.locator('#unanswered li[data-question="可以开发票吗"] .badge')).to_have_text("已有 FAQ")
    item = page.locator('#unanswered li[data-question="你们的实体店在哪里"]')
    await item.locator("button.to-faq").click()
    await expect(page.locator("#faq-drawer")).to_be_visible()
    await expect(page.locator("#faq-question")).to_have_value("你们的实体店在哪里")
    await page.fill("#faq-answer", "目前只有线上店铺，暂无实体店。")
    await page.click("#faq-save")
    await expect(page.locator("#faq-drawer")).to_be_hidden()
    await expect(item.locator(".badge")).to_have_text("已有 FAQ")

    # brand dictionary
    await page.fill("#words-input", "小米手环 AirPods")
    await page.click("#words-form button[type=submit]")
    await expect(page.locator("#words .word", has_text="小米手环")).to_be_visible()
    assert set(await hub.kb.words()) >= {"小米手环", "AirPods"}
    await page.fill("#try-text", "")
    await page.fill("#try-text", "多久能收到货")
    await page.click("#try-submit")
    await expect(page.locator("#try-matches li").first).to_contain_text("快递一般几天能到？")
    await shot(page, "faq")

    # ---- 关键词回复 --------------------------------------------------------------------------
    await page.click('.admin-nav a[data-page="keywords"]')
    await page.wait_for_url("**/admin/keywords")
    await page.click("#kw-new")
    await page.click('#kw-match label:has-text("正则")')
    await page.fill("#kw-pattern", "(营业|上班")
    await page.fill("#kw-text", "我们的营业时间是每天 9:00–21:00。")
    await page.click("#kw-save")
    pattern_error = page.locator('#kw-form .field-error[data-for="pattern"]')
    await expect(pattern_error).to_be_visible()
    await expect(pattern_error).to_contain_text("正则表达式无效")
    await expect(page.locator("#kw-pattern")).to_have_class(re.compile(r"\binvalid\b"))
    await shot(page, "keywords-editor", full=False)
    await page.fill("#kw-pattern", "(营业|上班)时间")
    await page.fill("#kw-priority", "10")
    await page.click("#kw-save")
    await expect(page.locator("#kw-drawer")).to_be_hidden()
    await expect(page.locator("#kw-rows tr")).to_have_count(1)
    rule = (await hub.keywords.list())[0]
    assert rule["match_type"] == "regex" and rule["pattern"] == "(营业|上班)时间" and rule["priority"] == 10

    # a second, link reply rule
    await page.click("#kw-new")
    await page.fill("#kw-pattern", "优惠券")
    await page.click('#kw-reply-type label:has-text("图文链接")')
    await page.fill("#kw-title-in", "本周优惠券")
    await page.fill("#kw-url", "https://shop.example.com/coupons")
    await page.click("#kw-save")
    await expect(page.locator("#kw-rows tr")).to_have_count(2)

    await page.fill("#kt-text", "请问你们上班时间是几点？")
    await page.click("#kt-submit")
    await expect(page.locator("#kt-verdict")).to_have_attribute("data-verdict", "hit")
    await expect(page.locator("#kt-verdict")).to_have_attribute("data-rule", str(rule["id"]))
    await shot(page, "keywords")
    await page.fill("#kt-text", "你好")
    await page.click("#kt-submit")
    await expect(page.locator("#kt-verdict")).to_have_attribute("data-verdict", "none")

    # ---- 路由规则 ----------------------------------------------------------------------------
    await page.click('.admin-nav a[data-page="routing"]')
    await page.wait_for_url("**/admin/routing")
    await expect(page.locator("#rt-empty")).to_be_visible()

    await page.click("#rt-new")
    await page.fill("#rt-name", "VIP 客户优先")
    await page.click("#rt-save")  # a rule without any action is refused: the error shows under 动作
    await expect(page.locator('#rt-form .field-error[data-for="actions"]')).to_be_visible()
    await page.select_option("#rt-add-kind", "vip_min")
    await page.click("#rt-add-cond")
    await page.fill("#rt-conds .cond-row input[type=number]", "3")
    await page.fill("#rt-group", "vip")
    await page.fill("#rt-priority", "80")
    await page.click("#rt-save")
    await expect(page.locator("#rt-drawer")).to_be_hidden()

    await page.click("#rt-new")
    await page.fill("#rt-name", "售后问题")
    await page.select_option("#rt-add-kind", "keywords_any")
    await page.click("#rt-add-cond")
    entry = page.locator("#rt-conds .cond-row .token-entry")
    await entry.fill("退货")
    await entry.press("Enter")
    await entry.fill("退款")
    await entry.press("Enter")
    await page.select_option("#rt-add-kind", "platform")
    await page.click("#rt-add-cond")
    await page.check('#rt-conds .cond-row input[value="wecom"]')
    await page.fill("#rt-group", "aftersales")
    await page.fill("#rt-add-tags .token-entry", "售后")
    await shot(page, "routing-editor", full=False)
    await page.click("#rt-save")
    await expect(page.locator("#rt-drawer")).to_be_hidden()
    await expect(page.locator("#rt-list .rule")).to_have_count(2)

    resp = await client.get("/api/routing/rules", headers=auth())
    rules = (await resp.json())["rules"]
    assert [r["name"] for r in rules] == ["VIP 客户优先", "售后问题"]
    vip_id, after_id = rules[0]["id"], rules[1]["id"]
    assert rules[1]["conditions"] == [{"kind": "keywords_any", "value": ["退货", "退款"]},
                                      {"kind": "platform", "value": ["wecom"]}]
    assert rules[1]["actions"]["add_tags"] == ["售后"]

    # drag "售后问题" above "VIP 客户优先"
    source = page.locator(f'#rt-list .rule[data-id="{after_id}"]')
    target = page.locator(f'#rt-list .rule[data-id="{vip_id}"]')
    await source.drag_to(target, target_position={"x": 60, "y": 8})
    await expect(page.locator("#rt-list .rule").first).to_have_attribute("data-id", str(after_id))

    async def order_is(expected: list[int]) -> bool:
        resp = await client.get("/api/routing/rules", headers=auth())
        return [r["id"] for r in (await resp.json())["rules"]] == expected
    await wait_for(lambda: order_is([after_id, vip_id]))

    # the tester follows the new order: a VIP writing about a return goes to aftersales
    await page.select_option("#rtt-account", "acme-wecom")
    await expect(page.locator("#rtt-platform")).to_have_value("wecom")
    await page.fill("#rtt-vip", "5")
    await page.fill("#rtt-message", "我要退货")
    await page.click("#rtt-submit")
    await expect(page.locator("#rtt-group")).to_have_text("aftersales")
    await expect(page.locator("#rtt-rule")).to_contain_text("售后问题")
    await expect(page.locator("#rtt-trace li.hit")).to_have_count(1)
    await shot(page, "routing")

    # disable the first rule: now the VIP rule decides
    await page.locator(f'#rt-list .rule[data-id="{after_id}"] .switch input').uncheck()
    await expect(page.locator(f'#rt-list .rule[data-id="{after_id}"]')).to_have_class("rule off")
    await page.click("#rtt-submit")
    await expect(page.locator("#rtt-group")).to_have_text("vip")
    await expect(page.locator("#rtt-priority")).to_have_text("80")

    # keyboard reordering: ↑ on the handle of the second rule moves it back to the top
    await page.locator(f'#rt-list .rule[data-id="{vip_id}"] .drag-handle').press("ArrowUp")
    await expect(page.locator("#rt-list .rule").first).to_have_attribute("data-id", str(vip_id))
    await wait_for(lambda: order_is([vip_id, after_id]))
    await expect(page.locator(f'#rt-list .rule[data-id="{vip_id}"] .drag-handle')).to_be_focused()

    # editing shows the saved conditions; a bad VIP level is refused beside its input
    await page.locator(f'#rt-list .rule[data-id="{vip_id}"] button', has_text="编辑").click()
    await expect(page.locator("#rt-conds .cond-row input[type=number]")).to_have_value("3")
    await page.fill("#rt-conds .cond-row input[type=number]", "-1")
    await page.click("#rt-save")
    await expect(page.locator('#rt-form .field-error[data-for="conditions[0].value"]')).to_be_visible()
    await page.fill("#rt-conds .cond-row input[type=number]", "4")
    await page.click("#rt-save")
    await expect(page.locator("#rt-drawer")).to_be_hidden()
    await expect(page.locator(f'#rt-list .rule[data-id="{vip_id}"] .cond')).to_have_text("VIP 等级至少4")

    # ---- 用户 --------------------------------------------------------------------------------
    await page.click('.admin-nav a[data-page="users"]')
    await page.wait_for_url("**/admin/users")
    await expect(page.locator("#user-rows tr")).to_have_count(3)
    await page.click("#user-new")
    await page.fill("#uf-username", "carol")
    await page.fill("#uf-display", "卡罗")
    await page.fill("#uf-password", "short")
    await page.select_option("#uf-role", "agent")
    await page.fill("#uf-cap", "4")
    await page.fill("#uf-groups .token-entry", "presales")
    await page.press("#uf-groups .token-entry", "Enter")
    await page.click("#uf-save")
    await expect(page.locator('#user-form .field-error[data-for="password"]')).to_contain_text("8")
    await page.fill("#uf-password", "carol-password")
    await page.click("#uf-save")
    await expect(page.locator("#user-dialog")).to_be_hidden()
    carol = page.locator('#user-rows tr[data-username="carol"]')
    await expect(carol).to_contain_text("卡罗")
    await expect(carol).to_contain_text("presales")
    await expect(carol).to_contain_text("0 / 4")

    # disable alice (confirm), then reset her password
    alice = page.locator('#user-rows tr[data-username="alice"]')
    await alice.locator("button", has_text="停用").click()
    await page.click("#confirm-ok")
    await expect(alice).to_contain_text("已停用")
    await alice.locator("button", has_text="重置密码").click()
    await page.fill("#pw-new", "new-password-1")
    await page.fill("#pw-again", "new-password-1")
    await page.click("#pw-save")
    await expect(page.locator("#password-dialog")).to_be_hidden()
    await shot(page, "users")

    resp = await client.get("/api/users", headers=auth())
    users = {u["username"]: u for u in (await resp.json())["users"]}
    assert users["carol"]["role"] == "agent" and users["carol"]["groups"] == ["presales"] and users["carol"]["cap"] == 4
    assert users["carol"]["display_name"] == "卡罗" and users["alice"]["disabled"] is True
    assert not errors, errors


async def test_operator_pages_access(client, hub, browser):  # noqa: ANN001
    from playwright.async_api import expect

    resp = await client.get("/admin/faq", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login?next=/admin/faq"

    await make_user(hub, "alice", groups=("presales",))
    await make_user(hub, "sue", role="supervisor", groups=("presales",))
    await hub.keywords.create({"match_type": "contains", "pattern": "营业时间", "priority": 5,
                               "reply": {"type": "text", "text": "每天 9:00–21:00 在线。"}})
    base = base_url(client)

    errors: list[str] = []
    page = await new_page(browser, errors)
    await page.goto(base + "/login")
    await page.fill("#username", "alice")
    await page.fill("#password", "alice-password")
    await page.click("#login-submit")
    await page.wait_for_url("**/console")
    answer = await page.goto(base + "/admin/faq")
    assert answer.status == 403
    await expect(page.locator("h1")).to_have_text("没有权限访问运营管理")
    await shot(page, "forbidden", full=False)

    # the operator pages are the admin's (issue #9): a supervisor gets the 403 page too
    page2 = await new_page(browser, errors)
    await log_in(page2, base, "sue", "/admin/keywords")
    for path in ("/admin/keywords", "/admin/users"):
        answer = await page2.goto(base + path)
        assert answer.status == 403
        await expect(page2.locator("h1")).to_have_text("没有权限访问运营管理")
    assert not [e for e in errors if "403" not in e], errors
