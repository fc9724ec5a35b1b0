"""The supervisors' archive search page (/supervisor/search): who may open it, and in headless Chromium a
supervisor searching across jieba word boundaries, filtering by account, paging with "more", opening a
conversation and downloading its CSV, sharing the URL, and a keyword watch added in the page getting a live
hit when a customer writes the word. Screenshots: /tmp/shots/search*.png."""
from __future__ import annotations

import pathlib
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.async_api import expect

from hub.archive.search.wiring import INDEXER
from tests.conftest import OA, WECOM
from tests.helpers import post
from tests.rt_helpers import make_user
from tests.test_operator_pages import base_url, log_in, new_page
from tests.test_search import archive
from tests.wechat_client import text_xml

SHOTS = pathlib.Path("/tmp/shots")


@pytest.fixture
def hub(client):  # noqa: F811 - the conftest hub plus a handle on the search indexer (tests.test_search.archive)
    from hub.app import HUB
    h = client.server.app[HUB]
    h.app_indexer = client.server.app[INDEXER]
    return h


async def shot(page, name: str) -> None:  # noqa: ANN001
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


async def test_page_access_by_role(client, hub):  # noqa: ANN001
    await make_user(hub, "ann")
    await make_user(hub, "sue", role="supervisor", groups=())
    await make_user(hub, "boss", role="admin", groups=())
    resp = await client.get("/supervisor/search?q=过敏", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login?next=/supervisor/search"
    for who, status, marker in (("ann", 403, "没有权限访问记录搜索"), ("sue", 200, 'id="search-form"'),
                                ("boss", 200, 'id="search-form"')):
        client.session.cookie_jar.clear()
        assert (await client.post("/api/login", json={"username": who, "password": f"{who}-password"})).status == 200
        resp = await client.get("/supervisor/search", allow_redirects=False)
        body = await resp.text()
        assert resp.status == status and marker in body, (who, resp.status)
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "<script>" not in body  # no inline script: everything comes from search.js
        if status == 200:
            assert ("运营后台" in body) == (who == "boss")
    # the supervisor's other pages link here; agents' console does not
    client.session.cookie_jar.clear()
    await client.post("/api/login", json={"username": "sue", "password": "sue-password"})
    assert 'href="/supervisor/search"' in await (await client.get("/supervisor")).text()
    assert 'href="/supervisor/search"' in await (await client.get("/console")).text()
    client.session.cookie_jar.clear()
    await client.post("/api/login", json={"username": "ann", "password": "ann-password"})
    assert 'href="/supervisor/search"' not in await (await client.get("/console")).text()


async def test_search_filter_page_open_and_export_in_a_browser(client, hub, browser, tmp_path):  # noqa: ANN001
    await make_user(hub, "sue", role="supervisor", groups=())
    # 33 WeCom messages and 3 OA ones contain 款到 inside 退款|到账 (jieba splits there); noise around them
    await archive(hub, [f"第{i}单全额退款到账了吗" for i in range(33)], peer="wm-amy")
    await archive(hub, ["什么时候发货", "<b>款到</b>即发货 & 包邮"], peer="wm-bob", start=100)
    await archive(hub, ["公众号这边退款到了没有"] * 3, account=OA["id"], peer="oa-cat", channel="oa")
    await archive(hub, ["已为您办理，退款到账请留意"], peer="wm-amy", direction="out", sender="bot", start=200)
    base, errors = base_url(client), []
    page = await new_page(browser, errors)
    await log_in(page, base, "sue", "/supervisor/search")
    await expect(page.locator("#results-empty .empty-title")).to_have_text("搜索全部聊天记录")

    # an empty query: the API's field error beside the box
    await page.click("#search-submit")
    await expect(page.locator('.field-error[data-for="q"]')).to_have_text("请输入要搜索的内容，或选择一个筛选条件")

    await page.fill("#q", "款到")
    await page.press("#q", "Enter")
    hits = page.locator("#hits li.hit")
    await expect(hits).to_have_count(30)
    assert parse_qs(urlparse(page.url).query) == {"q": ["款到"]}
    await expect(page.locator('.field-error[data-for="q"]')).to_be_hidden()
    first = hits.first
    await expect(first.locator(".hit-text mark")).to_have_text("款到")
    assert await first.locator(".hit-text").text_content() == "已为您办理，退款到账请留意"  # newest first
    await expect(first.locator(".hit-dir")).to_have_text("机器人")
    # the HTML in a customer's message is shown as text, only the API's <mark> is markup
    tagged = page.locator("#hits li.hit", has_text="即发货")
    await expect(tagged.locator(".hit-text")).to_have_text("<b>款到</b>即发货 & 包邮")
    assert await tagged.locator(".hit-text b").count() == 0 and await tagged.locator(".hit-text mark").count() == 1
    await expect(page.locator("#more")).to_be_visible()
    await shot(page, "search-results")

    # the account filter searches again at once; "more" pages on to the end
    await page.select_option("#f-account", WECOM["id"])
    await expect(page.locator("#results-note")).to_have_text("已显示 30 条，还有更多 · 从新到旧")
    await expect(hits.filter(has_text="公众号")).to_have_count(0)
    assert parse_qs(urlparse(page.url).query) == {"q": ["款到"], "account": [WECOM["id"]]}
    await page.click("#more")
    await expect(hits).to_have_count(35)  # 33 + the bot's reply + <b>款到</b>
    await expect(page.locator("#more")).to_be_hidden()
    await expect(page.locator("#results-end")).to_be_visible()
    ids = [int(x) for x in await hits.evaluate_all("els => els.map(e => e.dataset.message)")]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 35
    accounts = set(await page.locator("#hits .hit-account").all_text_contents())
    assert accounts == {"Acme WeCom"}

    # open the oldest hit's conversation: the whole conversation, the hit marked, export links
    last = hits.last
    await last.locator("a.hit-open").click()
    drawer = page.locator("#conv-drawer")
    await expect(drawer).to_be_visible()
    await expect(page.locator("#conv-messages li.msg")).to_have_count(34)  # amy's 33 + the bot's reply
    hit_msg = page.locator("#conv-messages li.msg-hit")
    await expect(hit_msg).to_have_count(1)
    await expect(hit_msg.locator("mark")).to_have_text("款到")
    await expect(hit_msg.locator(".text")).to_have_text("第0单全额退款到账了吗")
    assert parse_qs(urlparse(page.url).query)["conv"] == [await last.locator("a.hit-open").get_attribute("data-conv")]
    await shot(page, "search-conversation")
    async with page.expect_download() as info:
        await page.click("#export-csv")
    download = await info.value
    path = tmp_path / "export.csv"
    await download.save_as(str(path))
    csv = path.read_bytes().decode("utf-8")
    assert download.suggested_filename.startswith("conversation-") and download.suggested_filename.endswith(".csv")
    assert csv.startswith("\ufeff") and "第0单全额退款到账了吗" in csv and "第32单全额退款到账了吗" in csv
    json_href = await page.get_attribute("#export-json", "href")
    assert json_href.endswith("/export?format=json")

    # the URL is the search: a reload (a shared link) restores query, filter and the open conversation
    await page.reload()
    await expect(page.locator("#conv-drawer")).to_be_visible()
    await expect(page.locator("#conv-messages li.msg-hit")).to_have_count(1)
    assert await page.input_value("#q") == "款到" and await page.input_value("#f-account") == WECOM["id"]
    await page.keyboard.press("Escape")
    await expect(page.locator("#conv-drawer")).to_be_hidden()
    assert "conv" not in parse_qs(urlparse(page.url).query)
    await expect(hits).to_have_count(30)

    # a bad filter value: the API's field error beside the field
    await page.fill("#f-customer", "abc")
    await page.press("#q", "Enter")
    await expect(page.locator('.field-error[data-for="customer"]')).to_have_text("客户 ID 须为整数")
    await expect(page.locator("#f-customer")).to_have_class("invalid")

    # a date range is local calendar days, both ends included; an empty range says so
    await page.fill("#f-customer", "")
    today = await page.evaluate("(() => { const d = new Date(); return d.getFullYear() + '-' + "
                                "String(d.getMonth() + 1).padStart(2, '0') + '-' + String(d.getDate()).padStart(2, '0'); })()")
    await page.fill("#f-since", today)
    await page.fill("#f-until", today)
    await page.press("#q", "Enter")
    await expect(page.locator("#results-note")).to_have_text("已显示 30 条，还有更多 · 从新到旧")
    assert parse_qs(urlparse(page.url).query)["until"] == [today]
    await page.fill("#f-since", "2020-01-01")
    await page.fill("#f-until", "2020-01-31")
    await page.press("#q", "Enter")
    await expect(page.locator("#results-empty .empty-title")).to_have_text("没有找到相关消息")
    await expect(hits).to_have_count(0)
    await shot(page, "search-empty")
    assert not errors, errors


async def test_watch_added_in_the_page_gets_a_live_hit(client, hub, browser, wecom):  # noqa: ANN001
    await make_user(hub, "sue", role="supervisor", groups=())
    base, errors = base_url(client), []
    page = await new_page(browser, errors)
    await log_in(page, base, "sue", "/supervisor/search")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#watches-empty")).to_be_visible()
    for word in ("过敏", "急用"):
        await page.fill("#watch-word", word)
        await page.press("#watch-word", "Enter")
        await expect(page.locator("#watches li.watch", has_text=word)).to_have_count(1)
    await page.fill("#watch-word", "过敏")
    await page.click("#watch-add")
    await expect(page.locator('.field-error[data-for="word"]')).to_have_text("已经在监控这个词了")
    await expect(page.locator("#watch-count")).to_have_text("2")

    # 急用 switched off: a message with both words hits 过敏 only
    await page.locator("#watches li.watch", has_text="急用").locator(".switch").click()
    await expect(page.locator("#watches li.watch.off", has_text="急用")).to_have_count(1)
    await expect(page.locator("#watch-count")).to_have_text("1")

    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmAllergy", "用了你们的面霜过敏了，急用！", 77001))).status == 200
    item = page.locator("#watch-hits li.watch-hit")
    await expect(item).to_have_count(1, timeout=8000)
    await expect(item.locator(".watch-tag")).to_have_text("过敏")
    await expect(item.locator(".watch-hit-text mark")).to_have_text("过敏")
    await expect(page.locator("#toasts .toast.warn")).to_contain_text("关键词“过敏”")
    await shot(page, "search-watch-hit")
    await item.locator("a.hit-open").click()
    await expect(page.locator("#conv-messages li.msg-hit .text")).to_have_text("用了你们的面霜过敏了，急用！")
    await page.keyboard.press("Escape")

    # a hit stays after a reload (GET /api/watch-hits); deleting a watch asks first
    await page.reload()
    await expect(page.locator("#watch-hits li.watch-hit")).to_have_count(1)
    await page.locator("#watches li.watch", has_text="急用").locator(".watch-del").click()
    await page.click("#confirm-ok")
    await expect(page.locator("#watches li.watch")).to_have_count(1)
    listed = [w["word"] for w in (await (await client.get("/api/watches", headers={"Authorization": "Bearer test-api-token"})).json())["watches"]]
    assert listed == ["过敏"]
    # clicking a watched word searches the archive for it
    await page.locator("#watches .watch-word", has_text="过敏").click()
    await expect(page.locator("#q")).to_have_value("过敏")
    assert parse_qs(urlparse(page.url).query) == {"q": ["过敏"]}
    assert not errors, errors
