"""The agent console in headless Chromium with one agent in two tabs, and the message list's gaps:
what one tab does shows in the other (accepting, answering), and a latest page that does not reach
what is shown (a hub restart while the customer kept writing) leaves no hole in the chat."""
from __future__ import annotations

from playwright.async_api import expect

from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import make_user, server_url
from tests.test_console_browser import go_online, log_in, new_page
from tests.test_realtime import desk  # noqa: F401 - a fixture
from tests.wechat_client import text_xml


async def test_accepting_and_answering_in_one_tab_shows_in_the_other(client, hub, wecom, browser):  # noqa: ANN001
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    errors: list[str] = []
    a = await new_page(browser, errors)
    await log_in(a, server_url(client), "alice")
    await go_online(a, hub, alice.id)
    b = await a.context.new_page()
    await b.goto(server_url(client) + "/console")
    await expect(b.locator("#conn")).to_have_attribute("data-state", "connected")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmTabs", "你好", 52001))
    await b.locator("#session-list li.session", has_text="wmTabs").click()
    await expect(b.locator("#accept-btn")).to_be_visible()
    await a.locator("#session-list li.session", has_text="wmTabs").click()
    await a.click("#accept-btn")
    await expect(b.locator("#accept-btn")).to_be_hidden()  # it offered 接入 until a reload
    # tab B looks at another session while the customer writes, then tab A answers
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmOther", "在吗", 52002))
    await b.locator("#session-list li.session", has_text="wmOther").click()
    for i in (3, 4):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmTabs", f"还在吗{i}", 52000 + i))
    tabs_item = b.locator("#session-list li.session", has_text="wmTabs")
    await expect(tabs_item.locator(".unread")).to_have_text("2")
    await a.fill("#reply", "在的，请讲")
    await a.press("#reply", "Enter")
    await expect(tabs_item.locator(".unread")).to_have_count(0)  # answered in tab A: nothing unread
    assert errors == []


async def test_a_latest_page_that_does_not_reach_what_is_shown_leaves_no_hole(client, hub, browser):  # noqa: ANN001
    """After a hub restart the console reads each session's latest 20 messages again; the customer had
    written 25 meanwhile: merged with what was shown, the 5 between were missing, and 加载更早 (which
    pages from the oldest shown) never brought them."""
    await make_user(hub, "alice")
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "alice")
    got = await page.evaluate("""() => {
      const msg = (id) => ({ id: id, direction: "in", sender: "customer", created_at: id });
      const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => msg(a + i));
      const entry = () => ({ s: { state: "active" }, msgs: range(1, 10), pend: [], hasOlder: false });
      const apart = entry(), overlapping = entry(), whole = entry();
      HubSessionMsgs.merge(apart, range(31, 50), true);        // 11-30 are not shown: no hole
      HubSessionMsgs.merge(overlapping, range(10, 29), true);  // reaches what is shown: merged
      HubSessionMsgs.merge(whole, range(9, 12), true);         // less than a page: all there is
      const ids = (e) => e.msgs.map((m) => m.id);
      return { apart: ids(apart), apartOlder: apart.hasOlder, overlapping: ids(overlapping),
               overlappingOlder: overlapping.hasOlder, whole: ids(whole) };
    }""")
    assert got["apart"] == list(range(31, 51)) and got["apartOlder"] is True
    assert got["overlapping"] == list(range(1, 30)) and got["overlappingOlder"] is False
    assert got["whole"] == list(range(1, 13))
    assert errors == []


async def test_a_supervisors_list_follows_the_sessions_of_other_agents(client, hub, wecom, browser, desk):  # noqa: ANN001
    """A supervisor's console lists every open session, but the events of other agents' sessions go to
    those agents: a session handed to alice after the supervisor loaded the page never appeared, and
    one she closed stayed listed."""
    await make_user(hub, "alice")
    await make_user(hub, "sam", role="supervisor", groups=())
    await hub.settings.set("default_group", "presales")
    alice = await desk("alice")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "sam")
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmSeen", "你好", 52101))
    [bundle] = await alice.wait("session.new")
    item = page.locator("#session-list li.session", has_text="wmSeen")
    await expect(item).to_be_visible(timeout=12000)
    assert (await alice.call("close", {"session_id": bundle["session"]["id"]}))["ok"]
    await expect(item).to_have_count(0, timeout=12000)
    assert errors == []


async def test_going_offline_with_sessions_asks_first_and_what_left_is_not_called_closed(client, hub, wecom, browser, desk):  # noqa: ANN001
    """离线 requeued every session at once without a word, and the chat left on screen said 已结束 (it
    was requeued, not closed). A colleague's handover says who and why in the banner."""
    alice = await make_user(hub, "alice")
    await make_user(hub, "bob", display_name="小博")
    await hub.settings.set("default_group", "presales")
    bob = await desk("bob")
    assert (await bob.call("status", {"status": "online"}))["ok"]
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmNote", "发票开错了", 52201))
    [bundle] = await bob.wait("session.new")
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "alice")
    await go_online(page, hub, alice.id)
    assert (await bob.call("transfer", {"session_id": bundle["session"]["id"], "to_agent": alice.id,
                                        "note": "客户要重开专票"}))["ok"]
    await page.locator("#session-list li.session", has_text="wmNote").click()
    await expect(page.locator("#chat-banner")).to_contain_text("转接自 小博：客户要重开专票")
    asked: list[str] = []

    async def dismiss(dialog) -> None:  # noqa: ANN001
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", dismiss)
    await page.select_option("#status", "offline")
    await expect(page.locator("#status")).to_have_value("online")
    assert asked and "1 个会话" in asked[0]
    page.once("dialog", lambda dialog: dialog.accept())
    await page.select_option("#status", "offline")
    await expect(page.locator("#chat-badges .state")).to_have_text("已移出")
    assert errors == []


async def test_times_and_days_are_the_brands_whatever_the_browsers_timezone(client, hub, browser):  # noqa: ANN001
    """A supervisor abroad (browser in New York) saw alerts and chat times in New York time beside a header
    in Shanghai time, and picking the brand's today in search found nothing (New York's midnight)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    await make_user(hub, "alice")
    ctx = await browser.new_context(locale="zh-CN", timezone_id="America/New_York")
    try:
        page = await ctx.new_page()
        await log_in(page, server_url(client), "alice")
        ts = datetime(2026, 12, 7, 9, 53, 5, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
        got = await page.evaluate("""ts => [HubUtil.zone, HubUtil.fullTime(ts), HubUtil.zoneMidnight(2026, 12, 7),
                                            HubUtil.zoneMidnight(2026, 12, 32), HubUtil.dayKey(ts)]""", ts)
        midnight = datetime(2026, 12, 7, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
        assert got == ["Asia/Shanghai", "2026-12-07 09:53:05", midnight,
                       datetime(2027, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp(), 20261207]
    finally:
        await ctx.close()


async def test_a_dashboard_link_opens_the_session_in_the_console(client, hub, wecom, browser, desk):  # noqa: ANN001
    """The dashboard's session numbers were plain text: a supervisor could not get from an alert or a
    waiting customer to the conversation."""
    await make_user(hub, "alice")
    await make_user(hub, "sam", role="supervisor", groups=())
    await hub.settings.set("default_group", "presales")
    alice = await desk("alice")
    assert (await alice.call("status", {"status": "online"}))["ok"]
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLinked", "快递三天没动了", 52301))
    [bundle] = await alice.wait("session.new")
    errors: list[str] = []
    board = await new_page(browser, errors)
    await log_in(board, server_url(client), "sam")
    await board.goto(server_url(client) + "/supervisor")
    link = board.locator("#awaiting-table a.session-link")
    await expect(link).to_have_attribute("href", f"/console?session={bundle['session']['id']}")
    page = await board.context.new_page()
    await page.goto(server_url(client) + await link.get_attribute("href"))
    await expect(page.locator("#chat-name")).to_have_text("wmLinked")
    assert errors == []


async def test_closing_a_popup_with_esc_gives_the_reply_box_the_keys(client, hub, wecom, browser):  # noqa: ANN001
    """Esc in the quick replies or the tag input left the focus on the page: the agent's next keys went nowhere."""
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    await hub.settings.set("quick_replies", ["您好，请问有什么可以帮您？"])
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "alice")
    await go_online(page, hub, alice.id)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmKeys", "在吗", 52401))
    await page.locator("#session-list li.session", has_text="wmKeys").click()
    await page.click("#accept-btn")
    for opener in ("#quick-btn", "#tag-add"):
        await page.click(opener)
        await page.keyboard.press("Escape")
        await expect(page.locator("#reply")).to_be_focused()
    await page.keyboard.type("好的")
    await expect(page.locator("#reply")).to_have_value("好的")
    assert errors == []


async def test_what_the_customer_writes_while_the_agent_reads_older_messages_is_announced(client, hub, wecom, browser):  # noqa: ANN001
    """Scrolled up to read the history, the agent was not told the customer wrote more (the view stays put,
    rightly, and the message counted as read)."""
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "alice")
    await go_online(page, hub, alice.id)
    for i in range(30):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmLong", f"第{i}条：我想问一下这个产品的成分和用法", 52500 + i))
    await page.locator("#session-list li.session", has_text="wmLong").click()
    await expect(page.locator("#message-list")).to_contain_text("第29条")
    await page.eval_on_selector("#messages", "box => { box.scrollTop = 0; }")
    pill = page.locator("#new-below")
    await expect(pill).to_be_hidden()
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLong", "还在吗？", 52600))
    await expect(pill).to_have_text("↓ 1 条新消息")
    assert await page.eval_on_selector("#messages", "box => box.scrollTop") < 50  # the view stayed
    await pill.click()
    await expect(pill).to_be_hidden()
    assert await page.eval_on_selector("#messages", "box => box.scrollHeight - box.scrollTop - box.clientHeight") < 80
    assert errors == []


async def test_links_in_a_customers_text_open_and_nothing_else_becomes_one(client, hub, wecom, browser):  # noqa: ANN001
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), "alice")
    await go_online(page, hub, alice.id)
    text = "订单在这https://shop.example.com/o/123?x=1，还有javascript:alert(1) 和 <a href=x>x</a>"
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLink", text, 52701))
    await page.locator("#session-list li.session", has_text="wmLink").click()
    bubble = page.locator("#message-list .text", has_text="订单在这")
    await expect(bubble).to_contain_text(text)
    links = await bubble.locator("a").evaluate_all("as => as.map(a => [a.getAttribute('href'), a.target, a.rel])")
    assert links == [["https://shop.example.com/o/123?x=1", "_blank", "noopener noreferrer nofollow"]]
    assert errors == []
